//! A worker's one run slot: the state machine behind the API (idle → prepared → scheduled →
//! running → finished/stopped). Every transition is idempotent per run id, so a controller (or a new
//! leader) can repeat a call without starting a second run; a call for a different run while one is
//! active is a conflict. Interval batches stay here until the controller acknowledges them.

use super::api::{self, now_ms, WorkerPhase};
use crate::config::TestFile;
use crate::engine::{self, Options, StopToken};
use crate::metrics::collector::{Interval, Live};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, watch};

/// Why a call was refused.
#[derive(Debug, Error, PartialEq)]
pub enum SlotError {
    #[error("run `{active}` is active; stop it before starting `{requested}`")]
    Busy { active: String, requested: String },
    #[error("no run `{0}` here (prepare it first)")]
    Unknown(String),
    #[error("the test was refused: {0}")]
    BadTest(String),
    #[error("run `{0}` has not finished yet")]
    NotFinished(String),
}

struct Run {
    id: String,
    test: Arc<TestFile>,
    phase: WorkerPhase,
    started_at_ms: Option<u64>,
    batches: BTreeMap<u64, Interval>,
    acked: u64,
    live: watch::Receiver<Live>,
    live_tx: Option<watch::Sender<Live>>,
    stop: StopToken,
    results: Option<api::Results>,
}

/// The worker's state, shared by its handlers.
#[derive(Clone, Default)]
pub struct Slot {
    run: Arc<Mutex<Option<Run>>>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Run>> {
        self.run.lock().expect("worker slot lock poisoned")
    }

    /// Accepts a test for `run_id`. Repeating it for the same run changes nothing.
    pub fn prepare(&self, req: api::Prepare) -> Result<WorkerPhase, SlotError> {
        let mut guard = self.lock();
        if let Some(run) = guard.as_ref() {
            if run.id == req.run_id {
                return Ok(run.phase);
            }
            if matches!(run.phase, WorkerPhase::Scheduled | WorkerPhase::Running) {
                return Err(SlotError::Busy {
                    active: run.id.clone(),
                    requested: req.run_id,
                });
            }
        }
        crate::config::check(&req.test).map_err(SlotError::BadTest)?;
        let (live_tx, live) = watch::channel(Live::default());
        *guard = Some(Run {
            id: req.run_id,
            test: Arc::new(req.test),
            phase: WorkerPhase::Prepared,
            started_at_ms: None,
            batches: BTreeMap::new(),
            acked: 0,
            live,
            live_tx: Some(live_tx),
            stop: StopToken::new(),
            results: None,
        });
        Ok(WorkerPhase::Prepared)
    }

    /// Schedules the prepared run at `start_at_ms` (this machine's clock). Repeating it is harmless.
    pub fn start(&self, req: api::Start) -> Result<WorkerPhase, SlotError> {
        let mut guard = self.lock();
        let run = match guard.as_mut() {
            Some(r) if r.id == req.run_id => r,
            Some(r) if matches!(r.phase, WorkerPhase::Scheduled | WorkerPhase::Running) => {
                return Err(SlotError::Busy {
                    active: r.id.clone(),
                    requested: req.run_id,
                })
            }
            _ => return Err(SlotError::Unknown(req.run_id)),
        };
        if run.phase != WorkerPhase::Prepared {
            return Ok(run.phase);
        }
        run.phase = WorkerPhase::Scheduled;
        let delay = Duration::from_millis(req.start_at_ms.unwrap_or(0).saturating_sub(now_ms()));
        let live_tx = run
            .live_tx
            .take()
            .expect("a prepared run still has its live sender");
        tokio::spawn(self.clone().execute(
            run.id.clone(),
            run.test.clone(),
            run.stop.clone(),
            delay,
            live_tx,
        ));
        Ok(WorkerPhase::Scheduled)
    }

    async fn execute(
        self,
        id: String,
        test: Arc<TestFile>,
        stop: StopToken,
        delay: Duration,
        live: watch::Sender<Live>,
    ) {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => {}
        }
        let (sink, mut intervals) = mpsc::unbounded_channel::<Interval>();
        {
            let mut guard = self.lock();
            let Some(run) = guard.as_mut().filter(|r| r.id == id) else {
                return;
            };
            if stop.is_cancelled() {
                run.phase = WorkerPhase::Stopped;
                run.results = Some(empty_results(&id, &test));
                return;
            }
            run.phase = WorkerPhase::Running;
            run.started_at_ms = Some(now_ms());
        }
        let keeper = {
            let slot = self.clone();
            let id = id.clone();
            tokio::spawn(async move {
                while let Some(iv) = intervals.recv().await {
                    if let Some(run) = slot.lock().as_mut().filter(|r| r.id == id) {
                        run.batches.insert(iv.seq, iv);
                    }
                }
            })
        };
        let opts = Options {
            sink: Some(sink),
            live: Some(live),
            stop: stop.clone(),
        };
        let outcome = engine::run(test.clone(), opts).await;
        let _ = keeper.await;
        let mut guard = self.lock();
        let Some(run) = guard.as_mut().filter(|r| r.id == id) else {
            return;
        };
        run.phase = if stop.is_cancelled() {
            WorkerPhase::Stopped
        } else {
            WorkerPhase::Finished
        };
        run.results = Some(match outcome {
            Ok(o) => api::Results {
                run_id: id.clone(),
                phase: run.phase,
                step_names: o.step_names,
                steps: o.totals.steps,
                elapsed_s: o.totals.elapsed.as_secs_f64(),
                dropped: o.totals.dropped,
                started_at_ms: run.started_at_ms,
                last_seq: run.batches.keys().next_back().copied().unwrap_or(run.acked),
            },
            Err(_) => empty_results(&id, &test),
        });
    }

    /// Stops the run (requests in flight finish and are counted).
    pub fn stop(&self, run_id: &str) -> Result<WorkerPhase, SlotError> {
        let guard = self.lock();
        match guard.as_ref() {
            Some(r) if r.id == run_id => {
                r.stop.cancel();
                Ok(r.phase)
            }
            _ => Err(SlotError::Unknown(run_id.to_string())),
        }
    }

    /// Batches after `since`; everything up to `since` counts as acknowledged and is dropped.
    pub fn metrics(&self, since: u64) -> api::Metrics {
        let mut guard = self.lock();
        let Some(run) = guard.as_mut() else {
            return api::Metrics {
                run_id: None,
                phase: WorkerPhase::Idle,
                started_at_ms: None,
                batches: vec![],
                live: Live::default(),
            };
        };
        run.acked = run.acked.max(since);
        let keep = run.batches.split_off(&(since + 1));
        run.batches = keep;
        let live = run.live.borrow().clone();
        api::Metrics {
            run_id: Some(run.id.clone()),
            phase: run.phase,
            started_at_ms: run.started_at_ms,
            batches: run.batches.values().cloned().collect(),
            live,
        }
    }

    /// The final results of `run_id`, once it has ended.
    pub fn results(&self, run_id: &str) -> Result<api::Results, SlotError> {
        let guard = self.lock();
        match guard.as_ref() {
            Some(r) if r.id == run_id => r
                .results
                .clone()
                .ok_or_else(|| SlotError::NotFinished(run_id.to_string())),
            _ => Err(SlotError::Unknown(run_id.to_string())),
        }
    }

    /// The current phase, run and live view.
    pub fn status(&self) -> api::Status {
        let guard = self.lock();
        match guard.as_ref() {
            None => api::Status {
                phase: WorkerPhase::Idle,
                run_id: None,
                started_at_ms: None,
                live: Live::default(),
                now_ms: now_ms(),
            },
            Some(r) => api::Status {
                phase: r.phase,
                run_id: Some(r.id.clone()),
                started_at_ms: r.started_at_ms,
                live: r.live.borrow().clone(),
                now_ms: now_ms(),
            },
        }
    }
}

fn empty_results(id: &str, test: &TestFile) -> api::Results {
    let names = engine::step_names(test);
    api::Results {
        run_id: id.to_string(),
        phase: WorkerPhase::Stopped,
        steps: vec![Default::default(); names.len()],
        step_names: names,
        elapsed_s: 0.0,
        dropped: 0,
        started_at_ms: None,
        last_seq: 0,
    }
}
