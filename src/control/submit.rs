//! Turning a test and a worker list into a new [`RunRecord`]: the plan (each worker's share), the
//! settings from the test's `distributed:` block and the command line, and the CSV rows inlined.

use super::plan::{self, Strategy};
use super::run::{Phase, RunRecord, Settings, WorkerRun, WorkerState};
use super::workers::WorkerAddr;
use crate::config::{Load, TestFile};
use crate::engine;
use crate::time::now_ms;
use std::time::Duration;

fn ms(d: Option<Duration>, default_ms: u64) -> u64 {
    d.map(|d| d.as_millis() as u64).unwrap_or(default_ms)
}

/// Settings from the test's `distributed:` block; `sync_start` from the command line wins when set.
pub fn settings(test: &TestFile, sync_start: bool) -> Settings {
    let d = test.distributed.clone().unwrap_or_default();
    let coord = d.coordination.unwrap_or_default();
    let orch = d.orchestration.unwrap_or_default();
    let handling = orch.failure_handling.clone().unwrap_or_default();
    let failures = d
        .fault_tolerance
        .and_then(|f| f.worker_failures)
        .unwrap_or_default();
    let heartbeat_ms = ms(orch.heartbeat_interval, 5_000);
    let sync = orch.synchronization.clone().unwrap_or_default();
    Settings {
        sync_start: sync_start
            || coord.synchronized_start.unwrap_or(false)
            || sync.start_barrier.unwrap_or(false),
        heartbeat_ms,
        detection_timeout_ms: ms(failures.detection_timeout, 3 * heartbeat_ms),
        coordination_timeout_ms: ms(orch.coordination_timeout, 60_000),
        failure_threshold_pct: handling
            .worker_failure_threshold
            .or(failures.max_failure_rate)
            .unwrap_or(20.0),
        continue_on_partial_failure: handling.continue_on_partial_failure.unwrap_or(true),
        load_redistribution: failures
            .recovery
            .and_then(|r| r.load_redistribution)
            .unwrap_or(false),
        start_delay_ms: 5_000,
        time_skew_tolerance_ms: coord.time_skew_tolerance.map(|d| d.as_millis() as u64),
        clock_sync: sync.clock_sync.unwrap_or(true),
    }
}

/// True when a share gives a worker nothing to do.
fn is_empty(load: &Load) -> bool {
    plan::units(load) == 0
}

/// Why a run could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A scenario's CSV file could not be read.
    #[error(transparent)]
    Data(#[from] crate::engine::data::CsvError),
    /// The load cannot be split across these workers.
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
}

/// A new run record in phase `Submitted`.
pub fn new_record(
    id: String,
    mut test: TestFile,
    workers: &[WorkerAddr],
    strategy: Strategy,
    sync_start: bool,
) -> Result<RunRecord, SubmitError> {
    super::data::inline_rows(&mut test)?;
    let shares = plan::shares(&test.load, workers, strategy, test.distributed.as_ref())?;
    let step_names = engine::step_names(&test);
    let runs = workers
        .iter()
        .zip(shares)
        .map(|(addr, load)| WorkerRun {
            addr: addr.clone(),
            state: if is_empty(&load) {
                WorkerState::Idle
            } else {
                WorkerState::Pending
            },
            load,
            last_seq: 0,
            merged: vec![Default::default(); step_names.len()],
            results: None,
            offset: None,
            started_at_ms: None,
            last_seen_ms: now_ms(),
            error: None,
            live: Default::default(),
            csv_rows: Default::default(),
            extra_units: 0,
            redistributed: false,
            late: None,
        })
        .collect();
    Ok(RunRecord {
        id,
        settings: settings(&test, sync_start),
        test,
        strategy,
        phase: Phase::Submitted,
        workers: runs,
        step_names,
        start_at_ms: None,
        skew_ms: None,
        timeline: Vec::new(),
        pending: Default::default(),
        created_ms: now_ms(),
        finished_ms: None,
        events: Vec::new(),
        stop_requested: false,
    })
}

/// A fresh run id: time-ordered, unique.
pub fn run_id() -> String {
    format!(
        "run-{}-{}",
        now_ms(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
