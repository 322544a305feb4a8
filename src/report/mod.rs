//! Turning numbers into answers: the run summary (per step and overall, every figure from merged
//! histograms), threshold verdicts, the k6-style text on stdout, and the files under `-o DIR`.

pub mod html;
pub mod junit;
pub mod progress;
pub mod raw;
mod summary;
mod text;
pub mod ts;

pub use summary::{
    evaluate, RunSummary, StepSummary, ThresholdResult, WorkerPoint, WorkerStep, WorkerSummary,
};
pub use text::render as render_text;

use std::path::Path;

/// Writes `summary.json`, `timeline.ndjson` and `junit.xml` into `dir` (created if missing).
pub fn write_outputs(dir: &Path, summary: &RunSummary) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_vec_pretty(summary)?,
    )?;
    std::fs::write(dir.join("junit.xml"), junit::render(summary))?;
    let mut nd = String::new();
    for p in &summary.timeline {
        nd.push_str(&serde_json::to_string(p)?);
        nd.push('\n');
    }
    std::fs::write(dir.join("timeline.ndjson"), nd)
}

/// The check labels of every HTTP step, in step order (for JUnit's one testcase per check).
pub fn check_labels(test: &crate::config::TestFile) -> Vec<Vec<String>> {
    test.scenarios
        .iter()
        .flat_map(|s| s.steps.iter())
        .filter_map(|st| match st {
            crate::config::Step::Http(h) => {
                Some(h.checks.iter().map(crate::config::Check::label).collect())
            }
            _ => None,
        })
        .collect()
}
