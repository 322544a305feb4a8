//! Running a test in this process (`perfornium run`): engine, progress line, summary, verdict.

use crate::config::{self, TestFile};
use crate::engine::{self, Options};
use crate::metrics::collector::Live;
use crate::report::{self, RunSummary};
use std::sync::Arc;
use tokio::sync::watch;

/// Runs `test`, prints progress to stderr, and returns the summary (thresholds evaluated).
pub async fn run(
    test: TestFile,
    stop: engine::StopToken,
) -> Result<RunSummary, engine::EngineError> {
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
    let mut summary = RunSummary::build(
        &test.name,
        &outcome.step_names,
        &t.steps,
        t.elapsed.as_secs_f64(),
        t.dropped,
        t.timeline.clone(),
        &rules,
    )
    .with_checks(&test);
    summary.debug_samples = outcome.captured.clone();
    for why in &outcome.failures {
        summary.thresholds.push(report::ThresholdResult {
            threshold: why.clone(),
            step: None,
            actual: None,
            passed: false,
        });
        summary.passed = false;
    }
    Ok(summary)
}
