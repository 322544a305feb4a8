//! Running a test in this process (`perfornium run`): engine, progress line, summary, verdict,
//! and the test file's `outputs:` and `report:` fed from the engine's closed seconds.

use crate::config::{self, TestFile};
use crate::engine::{self, Options};
use crate::metrics::collector::Live;
use crate::outputs;
use crate::report::{self, RunSummary};
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::watch;

/// Why a local run produced no summary, or its outputs could not be written.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Outputs(#[from] outputs::OutputError),
}

/// Runs `test`, prints progress to stderr, writes the test's outputs and report, and returns the
/// summary (thresholds evaluated).
pub async fn run(test: TestFile, stop: engine::StopToken) -> Result<RunSummary, RunError> {
    let rules = config::rules(&test);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let outs = outputs::start(&test, &run_id)?;
    if outs.is_some() {
        tracing::info!(run_id = %run_id, "writing the test's outputs");
    }
    let (live_tx, live_rx) = watch::channel(Live::default());
    let printer = tokio::spawn(report::progress::print(live_rx));
    let test = Arc::new(test);
    let outcome = engine::run(
        test.clone(),
        Options {
            live: Some(live_tx),
            sink: outs.as_ref().map(outputs::Outputs::sender),
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
    summary.fail_for(&outcome.failures);
    if let Some(o) = outs {
        o.finish(&summary).await?;
    }
    Ok(summary)
}
