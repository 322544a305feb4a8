//! Running a test in this process (`perfornium run`, and `demo` for now): engine, progress line,
//! summary, outputs, verdict.

use crate::config::{self, TestFile};
use crate::engine::{self, Options};
use crate::metrics::collector::Live;
use crate::report::{self, RunSummary};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Runs `test`, prints progress to stderr, and returns the summary (thresholds evaluated).
pub async fn run(
    test: TestFile,
    out: Option<&Path>,
    stop: engine::StopToken,
) -> anyhow::Result<RunSummary> {
    use anyhow::Context as _;
    let rules = config::rules(&test);
    let (live_tx, live_rx) = watch::channel(Live::default());
    let printer = tokio::spawn(report::progress::print(live_rx));
    let test = Arc::new(test);
    let outcome = engine::run(
        test.clone(),
        Options {
            live: Some(live_tx),
            stop,
            ..Default::default()
        },
    )
    .await?;
    let _ = printer.await;
    let t = &outcome.totals;
    let summary = RunSummary::build(
        &test.name,
        &outcome.step_names,
        &t.steps,
        t.elapsed.as_secs_f64(),
        t.dropped,
        t.timeline.clone(),
        &rules,
    );
    if let Some(dir) = out {
        report::write_outputs(dir, &summary)
            .with_context(|| format!("writing results to {}", dir.display()))?;
    }
    Ok(summary)
}
