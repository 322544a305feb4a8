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
    #[error("results.collection.format.raw_data: writing {path}: {source}")]
    Raw {
        path: String,
        source: std::io::Error,
    },
}

/// Runs `test`, prints progress to stderr, writes the test's outputs and report, and returns the
/// summary (thresholds evaluated).
pub async fn run(test: TestFile, stop: engine::StopToken) -> Result<RunSummary, RunError> {
    run_keeping(test, stop, None).await
}

/// [`run`], also writing every request sample to `raw_file` (`format.raw_data`; zstd NDJSON, see
/// [`crate::metrics::raw`]) when given.
pub async fn run_keeping(
    test: TestFile,
    stop: engine::StopToken,
    raw_file: Option<&std::path::Path>,
) -> Result<RunSummary, RunError> {
    let raw = match raw_file {
        Some(path) => {
            let target =
                crate::metrics::raw::FileTarget::create(path).map_err(|source| RunError::Raw {
                    path: path.display().to_string(),
                    source,
                })?;
            let (sink, writer) = crate::metrics::raw::spawn_writer(
                engine::step_names(&test),
                "local".into(),
                target,
            );
            Some((sink, writer))
        }
        None => None,
    };
    let (raw_sink, raw_writer) = raw.unzip();
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
            raw: raw_sink,
            ..Default::default()
        },
    )
    .await?;
    if let (Some(w), Some(path)) = (raw_writer, raw_file) {
        let written = tokio::task::spawn_blocking(move || w.join())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| Err(std::io::Error::other("the raw data writer stopped")));
        written.map_err(|source| RunError::Raw {
            path: path.display().to_string(),
            source,
        })?;
    }
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
