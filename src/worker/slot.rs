//! A worker's one run slot: the state machine behind the API (idle → prepared → scheduled →
//! running → finished/stopped). Every transition is idempotent per run id, so a controller (or a new
//! leader) can repeat a call without starting a second run; a call for a different run while one is
//! active is a conflict.
//!
//! A run may grow: when another worker dies, the controller can `scale` this one with extra load
//! (its share of the dead worker's), which runs as a second engine inside the same run. The slot
//! numbers every interval batch itself, whichever engine produced it, and keeps each batch until
//! the controller acknowledges it; the run finishes when its last engine does.

use crate::api::worker::{self as api, WorkerPhase};
use crate::config::TestFile;
use crate::engine::globals::Globals;
use crate::engine::rendezvous::Rendezvous;
use crate::engine::{self, Options, StopToken};
use crate::metrics::collector::{Interval, Live};
use crate::metrics::StepStats;
use crate::time::now_ms;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

/// Why a call was refused.
#[derive(Debug, Error, PartialEq)]
pub enum SlotError {
    #[error("run `{active}` is active; stop it before starting `{requested}`")]
    Busy { active: String, requested: String },
    #[error("no run `{0}` here (prepare it first)")]
    Unknown(String),
    #[error("the test was refused: {0}")]
    BadTest(#[from] crate::config::Invalid),
    #[error("run `{0}` has not finished yet")]
    NotFinished(String),
    #[error("run `{0}` is not running, so it cannot take more load")]
    NotRunning(String),
    #[error("target `{0}` cannot be checked against --allow-target")]
    UncheckableTarget(String),
    #[error("target `{0}` is not in this worker's --allow-target list")]
    TargetNotAllowed(String),
    #[error("`start_at_ms` must be ms since the epoch, at most 365 days from now, got {0}")]
    BadStart(f64),
}

struct Run {
    id: String,
    test: Arc<TestFile>,
    phase: WorkerPhase,
    started_at_ms: Option<f64>,
    started: Option<Instant>,
    batches: BTreeMap<u64, Interval>,
    next_seq: u64,
    lives: Vec<watch::Receiver<Live>>,
    stop: StopToken,
    /// Engines still running; the run ends when this drops to zero after the start.
    engines: u32,
    /// `scale` requests already applied, so a repeated one adds nothing.
    scales: BTreeSet<String>,
    totals: Vec<StepStats>,
    elapsed_s: f64,
    dropped: u64,
    /// Shared by the run's engines; released by the controller, which sees every worker.
    rendezvous: Arc<Rendezvous>,
    /// Global variables shared by the run's engines; merged with other workers' by the controller.
    globals: Arc<Globals>,
    /// Shared counters (`state_backend: raft`) of the run's engines; granted by the controller.
    leases: Arc<crate::engine::leases::Leases>,
    /// The engines' failures (`fail_test`, `abort`, `stop_test`), each once.
    failures: Vec<String>,
    aborted: bool,
    /// The engines' `debug` captures, the first 100.
    captured: Vec<serde_json::Value>,
    /// Each running engine's own stop (a child of `stop`), so live control can replace them.
    engine_stops: Vec<StopToken>,
    /// The live-control generation applied last (0: none), and the share it set.
    live_gen: u64,
    live_units: Option<u64>,
    /// The run's pause switch, read by every engine of the run.
    pause: watch::Sender<bool>,
    /// `format.raw_data`: the run's raw sample writer, held until the last engine ends (its
    /// engines hold clones), so the spool is complete when the run is.
    raw: Option<crate::metrics::raw::RawSink>,
    /// What the test's `beforeTest` left (run once for the run, maybe on another worker): every
    /// VU of every engine starts with these variables.
    test_variables: std::collections::HashMap<String, String>,
}

impl Run {
    fn is_active(&self) -> bool {
        matches!(self.phase, WorkerPhase::Scheduled | WorkerPhase::Running)
    }

    fn live(&self) -> Live {
        let mut l = Live::default();
        for rx in &self.lives {
            let x = rx.borrow();
            l.requests += x.requests;
            l.errors += x.errors;
            l.rps += x.rps;
            l.active_vus += x.active_vus;
            l.dropped += x.dropped;
            l.elapsed_s = l.elapsed_s.max(x.elapsed_s);
            l.p95_ms = l.p95_ms.max(x.p95_ms);
        }
        if let Some(s) = self.started {
            l.elapsed_s = s.elapsed().as_secs_f64();
        }
        l
    }

    fn results(&self) -> api::Results {
        api::Results {
            run_id: self.id.clone(),
            phase: self.phase,
            step_names: engine::step_names(&self.test),
            steps: self.totals.clone(),
            elapsed_s: self.elapsed_s,
            dropped: self.dropped,
            started_at_ms: self.started_at_ms,
            last_seq: self.next_seq - 1,
            failures: self.failures.clone(),
            aborted: self.aborted,
            captured: self.captured.clone(),
        }
    }
}

/// The worker's state, shared by its handlers.
#[derive(Clone, Default)]
pub struct Slot {
    run: Arc<Mutex<Option<Run>>>,
    /// Added to this machine's clock wherever the worker reads it (tests only: a worker with a
    /// deliberately wrong clock, to show the controller's offset compensation at work).
    clock_offset_ms: f64,
    /// Hosts tests may target (`host` or `host:port`); empty allows any.
    allow_targets: Arc<Vec<String>>,
    /// When a controller last pulled metrics (Unix ms), to see from outside who is driving.
    last_poll_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Where runs with `raw_data` spool their samples.
    spool: Option<crate::worker::spool::Spool>,
    /// The test hooks run here lately (run id and which), with what they gave: a repeated call
    /// answers it again instead of running the hooks twice. Held while hooks run, so a repeat
    /// that arrives meanwhile waits for the first.
    test_hooks: Arc<tokio::sync::Mutex<Vec<TestHookRan>>>,
}

/// One [`Slot::test_hook`] call's answer, kept for its repeats.
type TestHookRan = ((String, api::TestHookKind), api::TestHookDone);

/// How many test hook answers a worker keeps for repeated calls.
const TEST_HOOKS_KEPT: usize = 16;

impl Slot {
    /// A slot that refuses tests aiming outside `allow_targets` (empty allows any).
    pub fn new(allow_targets: Vec<String>) -> Self {
        Self::with_clock_offset(allow_targets, 0.0)
    }

    /// Like [`Slot::new`], on a clock `offset_ms` off this machine's (tests only).
    pub fn with_clock_offset(allow_targets: Vec<String>, offset_ms: f64) -> Self {
        Self {
            clock_offset_ms: offset_ms,
            allow_targets: Arc::new(allow_targets),
            ..Default::default()
        }
    }

    /// Spools the samples of runs with `format.raw_data` into `spool`.
    pub fn with_spool(mut self, spool: crate::worker::spool::Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    /// This worker's clock: ms since the epoch with µs precision (plus the test-only offset).
    pub fn now_ms(&self) -> f64 {
        crate::time::precise_now_ms() + self.clock_offset_ms
    }

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
            if run.is_active() {
                return Err(SlotError::Busy {
                    active: run.id.clone(),
                    requested: req.run_id,
                });
            }
        }
        crate::config::check(&req.test)?;
        check_targets(&req.test, &self.allow_targets)?;
        let steps = engine::step_names(&req.test).len();
        info!(run_id = %req.run_id, test = %req.test.name, "run prepared");
        let globals = Arc::new(Globals::for_test(&req.test));
        let raw = self.raw_sink(&req)?;
        *guard = Some(Run {
            id: req.run_id,
            test: Arc::new(with_worker_header(req.test, req.worker.as_deref())),
            phase: WorkerPhase::Prepared,
            started_at_ms: None,
            started: None,
            batches: BTreeMap::new(),
            next_seq: 1,
            lives: Vec::new(),
            stop: StopToken::new(),
            engines: 0,
            scales: BTreeSet::new(),
            totals: vec![StepStats::default(); steps],
            elapsed_s: 0.0,
            dropped: 0,
            rendezvous: Arc::new(Rendezvous::coordinated()),
            globals,
            leases: Arc::new(crate::engine::leases::Leases::granted()),
            failures: Vec::new(),
            aborted: false,
            captured: Vec::new(),
            engine_stops: Vec::new(),
            live_gen: 0,
            live_units: None,
            pause: watch::channel(false).0,
            raw,
            test_variables: req.variables.into_iter().collect(),
        });
        Ok(WorkerPhase::Prepared)
    }

    /// Runs the test's own hooks of `req.hook` once for `req.run_id`, without load: a distributed
    /// run's `beforeTest` on one worker before any is prepared (and, when it fails, `onTestError`
    /// and `teardownTest`), or its `onTestError`/`teardownTest` after every worker ended. The
    /// hooks' failure is the answer's `error`. A repeated call for the same run and hook (a retry,
    /// or a new leader's) answers what the first gave without running the hooks again.
    pub async fn test_hook(&self, req: api::TestHook) -> Result<api::TestHookDone, SlotError> {
        let mut ran = self.test_hooks.clone().lock_owned().await;
        let key = (req.run_id.clone(), req.hook);
        if let Some((_, done)) = ran.iter().find(|(k, _)| *k == key) {
            info!(run_id = %req.run_id, hook = ?req.hook, "test hooks already ran here: their answer again");
            return Ok(done.clone());
        }
        crate::config::check(&req.test)?;
        check_targets(&req.test, &self.allow_targets)?;
        let test = Arc::new(with_worker_header(req.test, req.worker.as_deref()));
        let role = match req.hook {
            api::TestHookKind::Before => engine::TestHookRole::Before,
            api::TestHookKind::After => engine::TestHookRole::After {
                variables: req.variables.into_iter().collect(),
                failures: req.failures,
            },
        };
        info!(run_id = %req.run_id, hook = ?req.hook, "running the test's own hooks");
        let opts = Options {
            run_id: Some(req.run_id.clone()),
            test_hooks: role,
            ..Default::default()
        };
        // A task of its own: a controller that dies (or gives up) mid-call does not cut the hooks
        // short, and what they gave is kept for the repeat a new leader sends.
        let running = tokio::spawn(async move {
            let done = match engine::run(test, opts).await {
                Ok(o) => api::TestHookDone {
                    variables: o.test_variables.into_iter().collect(),
                    error: (!o.failures.is_empty()).then(|| o.failures.join("\n")),
                },
                Err(engine::EngineError::BeforeTest(e)) => api::TestHookDone {
                    variables: BTreeMap::new(),
                    error: Some(e),
                },
                Err(e) => api::TestHookDone {
                    variables: BTreeMap::new(),
                    error: Some(format!("the test's hooks could not run: {e}")),
                },
            };
            if ran.len() >= TEST_HOOKS_KEPT {
                ran.remove(0);
            }
            ran.push((key, done.clone()));
            done
        });
        Ok(running.await.unwrap_or_else(|e| api::TestHookDone {
            variables: BTreeMap::new(),
            error: Some(format!("the test's hooks stopped: {e}")),
        }))
    }

    /// The raw sample writer of a run with `format.raw_data`, spooling to this worker's disk.
    fn raw_sink(
        &self,
        req: &api::Prepare,
    ) -> Result<Option<crate::metrics::raw::RawSink>, SlotError> {
        let Some(results) = crate::config::results::Results::of(&req.test) else {
            return Ok(None);
        };
        if !results.raw_data() {
            return Ok(None);
        }
        let Some(spool) = &self.spool else {
            return Err(SlotError::BadTest(crate::config::Invalid(
                "results.collection.format.raw_data: this worker has no spool directory".into(),
            )));
        };
        spool
            .start(
                &req.run_id,
                engine::step_names(&req.test),
                req.worker.clone().unwrap_or_else(|| "worker".into()),
                results.worker_cleanup(),
            )
            .map(Some)
            .map_err(|e| {
                SlotError::BadTest(crate::config::Invalid(format!(
                    "results.collection.format.raw_data: {e}"
                )))
            })
    }

    /// Schedules the prepared run at `start_at_ms` (this machine's clock). Repeating it is harmless.
    pub fn start(&self, req: api::Start) -> Result<WorkerPhase, SlotError> {
        let mut guard = self.lock();
        let run = match guard.as_mut() {
            Some(r) if r.id == req.run_id => r,
            Some(r) if r.is_active() => {
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
        let at = req.start_at_ms.unwrap_or(0.0);
        check_start_at(at, self.now_ms())?;
        run.phase = WorkerPhase::Scheduled;
        run.engines = 1;
        info!(run_id = %run.id, start_at_ms = at, "run scheduled");
        let (live_tx, live_rx) = watch::channel(Live::default());
        run.lives.push(live_rx);
        let stop = run.stop.child_token();
        run.engine_stops.push(stop.clone());
        tokio::spawn(self.clone().execute(
            run.id.clone(),
            run.test.clone(),
            stop,
            at,
            (live_tx, run.rendezvous.clone(), run.globals.clone()),
        ));
        Ok(WorkerPhase::Scheduled)
    }

    /// Adds load to the running run: `test` (the same steps, with the extra load and rows) runs as one
    /// more engine until its own duration ends. Repeating the same `scale_id` adds nothing.
    pub fn scale(&self, req: api::Scale) -> Result<WorkerPhase, SlotError> {
        let mut guard = self.lock();
        let run = match guard.as_mut() {
            Some(r) if r.id == req.run_id => r,
            _ => return Err(SlotError::Unknown(req.run_id)),
        };
        if let Some(live) = req.live {
            return self.clone().live(run, req.test, live);
        }
        if run.scales.contains(&req.scale_id) {
            return Ok(run.phase);
        }
        if !run.is_active() {
            return Err(SlotError::NotRunning(req.run_id));
        }
        crate::config::check(&req.test)?;
        check_targets(&req.test, &self.allow_targets)?;
        if engine::step_names(&req.test) != engine::step_names(&run.test) {
            return Err(SlotError::BadTest(crate::config::Invalid(
                "extra load must run the same steps as the run".into(),
            )));
        }
        info!(run_id = %run.id, scale_id = %req.scale_id, "extra load added");
        run.scales.insert(req.scale_id);
        run.engines += 1;
        let (live_tx, live_rx) = watch::channel(Live::default());
        run.lives.push(live_rx);
        // The extra load is named like the run's own.
        let name = run.test.global.headers.get(api::WORKER_HEADER).cloned();
        let stop = run.stop.child_token();
        run.engine_stops.push(stop.clone());
        tokio::spawn(self.clone().execute(
            run.id.clone(),
            Arc::new(with_worker_header(req.test, name.as_deref())),
            stop,
            0.0,
            (live_tx, run.rendezvous.clone(), run.globals.clone()),
        ));
        Ok(run.phase)
    }

    /// Live control: `test` (this worker's whole new share for the time left) replaces every
    /// engine of the run, unless the share is what the worker already runs; the run is paused or
    /// resumed as `live` says. A generation at or below the last one applied changes nothing. A
    /// share of 0 keeps the run open without load until the time `test` covers has passed.
    fn live(
        self,
        run: &mut Run,
        test: TestFile,
        live: api::LiveShare,
    ) -> Result<WorkerPhase, SlotError> {
        if live.generation <= run.live_gen {
            return Ok(run.phase);
        }
        // Before the start instant there is nothing to replace yet: the controller sends it again.
        if run.phase != WorkerPhase::Running || run.stop.is_cancelled() {
            return Err(SlotError::NotRunning(run.id.clone()));
        }
        let current = run.live_units.unwrap_or(live.base_units);
        if live.units != current {
            crate::config::check(&test)?;
            check_targets(&test, &self.allow_targets)?;
            if engine::step_names(&test) != engine::step_names(&run.test) {
                return Err(SlotError::BadTest(crate::config::Invalid(
                    "a new share must run the same steps as the run".into(),
                )));
            }
            let old = std::mem::take(&mut run.engine_stops);
            let stop = run.stop.child_token();
            run.engine_stops.push(stop.clone());
            run.engines += 1;
            if live.units == 0 {
                let left = crate::engine::schedule::duration(&test.load).unwrap_or_default();
                tokio::spawn(self.clone().hold(run.id.clone(), stop, left));
            } else {
                let (live_tx, live_rx) = watch::channel(Live::default());
                run.lives.push(live_rx);
                let name = run.test.global.headers.get(api::WORKER_HEADER).cloned();
                tokio::spawn(self.clone().execute(
                    run.id.clone(),
                    Arc::new(with_worker_header(test, name.as_deref())),
                    stop,
                    0.0,
                    (live_tx, run.rendezvous.clone(), run.globals.clone()),
                ));
            }
            // The old engines end (their requests in flight finish and are counted).
            for s in old {
                s.cancel();
            }
            run.live_units = Some(live.units);
        }
        run.pause.send_replace(live.paused);
        run.live_gen = live.generation;
        info!(run_id = %run.id, generation = live.generation, units = live.units, paused = live.paused, "live change applied");
        Ok(run.phase)
    }

    /// An engine with no load (a live share of 0): keeps the run open until `left` has passed.
    async fn hold(self, id: String, stop: StopToken, left: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            _ = stop.cancelled() => {}
        }
        let mut guard = self.lock();
        if let Some(run) = guard.as_mut().filter(|r| r.id == id) {
            run.engines -= 1;
            if run.engines == 0 {
                // The spool is complete once the engines' clones are gone too.
                run.raw = None;
                run.phase = if run.stop.is_cancelled() {
                    WorkerPhase::Stopped
                } else {
                    WorkerPhase::Finished
                };
                info!(run_id = %id, phase = %run.phase, "run ended");
            }
        }
    }

    async fn execute(
        self,
        id: String,
        test: Arc<TestFile>,
        stop: StopToken,
        at_ms: f64,
        (live, rendezvous, globals): (watch::Sender<Live>, Arc<Rendezvous>, Arc<Globals>),
    ) {
        tokio::select! {
            _ = wait_until(at_ms - self.clock_offset_ms) => {}
            _ = stop.cancelled() => {}
        }
        let (offset_s, leases, variables) = {
            let mut guard = self.lock();
            let Some(run) = guard.as_mut().filter(|r| r.id == id) else {
                return;
            };
            let leases = run.leases.clone();
            let variables = run.test_variables.clone();
            if run.started.is_none() && !stop.is_cancelled() {
                info!(run_id = %id, "run started");
                run.phase = WorkerPhase::Running;
                run.started_at_ms = Some(self.now_ms());
                run.started = Some(Instant::now());
            }
            let offset_s = run
                .started
                .map(|s| s.elapsed().as_secs_f64())
                .unwrap_or(0.0);
            (offset_s, leases, variables)
        };
        let outcome = if stop.is_cancelled() {
            None
        } else {
            let (sink, intervals) = mpsc::unbounded_channel::<Interval>();
            let keeper = tokio::spawn(self.clone().keep(id.clone(), offset_s, intervals));
            // `phase_synchronization`: the schedule is timed from the shared start instant (this
            // machine's clock), not from when this worker's engine is ready.
            let origin = (at_ms > 0.0 && phase_synchronized(&test)).then(|| {
                let late_ms = (crate::time::precise_now_ms() - (at_ms - self.clock_offset_ms))
                    .clamp(0.0, 60_000.0);
                let now = Instant::now();
                now.checked_sub(Duration::from_secs_f64(late_ms / 1000.0))
                    .unwrap_or(now)
            });
            let pause = {
                let guard = self.lock();
                guard.as_ref().map(|r| r.pause.subscribe())
            };
            let raw = self.lock().as_ref().and_then(|r| r.raw.clone());
            let outcome = engine::run_from(
                test,
                Options {
                    sink: Some(sink),
                    live: Some(live),
                    stop: stop.clone(),
                    rendezvous: Some(rendezvous),
                    globals: Some(globals),
                    run_id: Some(id.to_string()),
                    leases: Some(leases),
                    pause,
                    raw,
                    // The test's own hooks run once for the run, through `test_hook`.
                    test_hooks: engine::TestHookRole::Load { variables },
                },
                origin,
            )
            .await;
            let _ = keeper.await;
            outcome
                .map_err(|e| error!(run_id = %id, "the engine could not run: {e}"))
                .ok()
        };
        let mut guard = self.lock();
        let Some(run) = guard.as_mut().filter(|r| r.id == id) else {
            return;
        };
        if let Some(o) = outcome {
            for (t, s) in run.totals.iter_mut().zip(&o.totals.steps) {
                t.merge(s);
            }
            run.elapsed_s = run.elapsed_s.max(offset_s + o.totals.elapsed.as_secs_f64());
            run.dropped += o.totals.dropped;
            for why in o.failures {
                if !run.failures.contains(&why) {
                    run.failures.push(why);
                }
            }
            run.aborted |= o.aborted;
            let room = engine::DEBUG_CAPTURES.saturating_sub(run.captured.len());
            run.captured.extend(o.captured.into_iter().take(room));
        }
        run.engines -= 1;
        if run.engines == 0 {
            // The spool is complete once the engines' clones are gone too.
            run.raw = None;
            run.phase = if run.stop.is_cancelled() {
                WorkerPhase::Stopped
            } else {
                WorkerPhase::Finished
            };
            let requests: u64 = run.totals.iter().map(|t| t.count).sum();
            info!(run_id = %id, phase = %run.phase, requests, elapsed_s = run.elapsed_s, "run ended");
        }
    }

    /// Numbers and stores an engine's batches; `offset_s` places them on the run's own time axis.
    async fn keep(
        self,
        id: String,
        offset_s: f64,
        mut intervals: mpsc::UnboundedReceiver<Interval>,
    ) {
        while let Some(mut iv) = intervals.recv().await {
            if let Some(run) = self.lock().as_mut().filter(|r| r.id == id) {
                iv.seq = run.next_seq;
                iv.elapsed_s += offset_s;
                run.next_seq += 1;
                run.batches.insert(iv.seq, iv);
            }
        }
    }

    /// Who waits at each rendezvous point of run `run_id`.
    pub fn rendezvous(&self, run_id: &str) -> Result<api::RendezvousState, SlotError> {
        match self.lock().as_ref() {
            Some(r) if r.id == run_id => Ok(api::RendezvousState {
                run_id: run_id.to_string(),
                points: r.rendezvous.state(),
            }),
            _ => Err(SlotError::Unknown(run_id.to_string())),
        }
    }

    /// The run's global variables.
    pub fn globals(&self, run_id: &str) -> Result<api::Variables, SlotError> {
        match self.lock().as_ref() {
            Some(r) if r.id == run_id => Ok(api::Variables {
                run_id: run_id.to_string(),
                values: r.globals.snapshot(),
            }),
            _ => Err(SlotError::Unknown(run_id.to_string())),
        }
    }

    /// The run's shared counters (`state_backend: raft`), for the controller's grants.
    pub fn leases(&self, run_id: &str) -> Result<api::LeaseReport, SlotError> {
        match self.lock().as_ref() {
            Some(r) if r.id == run_id => Ok(lease_report(r)),
            _ => Err(SlotError::Unknown(run_id.to_string())),
        }
    }

    /// Adds the controller's grants to the run's shared counters.
    pub fn grant(&self, req: &api::LeaseGrant) -> Result<api::LeaseReport, SlotError> {
        match self.lock().as_ref() {
            Some(r) if r.id == req.run_id => {
                r.leases.grant(&req.grants, &req.totals);
                Ok(lease_report(r))
            }
            _ => Err(SlotError::Unknown(req.run_id.clone())),
        }
    }

    /// Merges global variables from the other workers into the run's.
    pub fn merge_globals(&self, req: &api::Variables) -> Result<api::Variables, SlotError> {
        match self.lock().as_ref() {
            Some(r) if r.id == req.run_id => {
                r.globals.merge(&req.values);
                Ok(api::Variables {
                    run_id: req.run_id.clone(),
                    values: r.globals.snapshot(),
                })
            }
            _ => Err(SlotError::Unknown(req.run_id.clone())),
        }
    }

    /// Releases one rendezvous point's waiters (see [`Rendezvous::release`]); how many went.
    pub fn release(&self, req: &api::Release) -> Result<u64, SlotError> {
        match self.lock().as_ref() {
            Some(r) if r.id == req.run_id => Ok(r.rendezvous.release(&req.point, req.generation)),
            _ => Err(SlotError::Unknown(req.run_id.clone())),
        }
    }

    /// Stops the run (requests in flight finish and are counted).
    pub fn stop(&self, run_id: &str) -> Result<WorkerPhase, SlotError> {
        let mut guard = self.lock();
        match guard.as_mut() {
            Some(r) if r.id == run_id => {
                if !r.stop.is_cancelled() {
                    info!(run_id, "stop requested");
                }
                r.stop.cancel();
                if r.phase == WorkerPhase::Prepared {
                    r.phase = WorkerPhase::Stopped;
                }
                Ok(r.phase)
            }
            _ => Err(SlotError::Unknown(run_id.to_string())),
        }
    }

    /// Batches after `since`; everything up to `since` counts as acknowledged and is dropped.
    pub fn metrics(&self, since: u64) -> api::Metrics {
        self.pull(since, since)
    }

    /// Batches after `since`; everything up to `ack` (at most `since`) counts as acknowledged
    /// and is dropped, and what lies between is kept for a controller resuming from `ack`.
    pub fn pull(&self, since: u64, ack: u64) -> api::Metrics {
        self.last_poll_ms
            .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
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
        run.batches = run.batches.split_off(&(ack.min(since) + 1));
        api::Metrics {
            run_id: Some(run.id.clone()),
            phase: run.phase,
            started_at_ms: run.started_at_ms,
            batches: run
                .batches
                .range(since + 1..)
                .map(|(_, b)| b.clone())
                .collect(),
            live: run.live(),
        }
    }

    /// The final results of `run_id`, once it has ended.
    pub fn results(&self, run_id: &str) -> Result<api::Results, SlotError> {
        let guard = self.lock();
        match guard.as_ref() {
            Some(r) if r.id == run_id && r.phase.is_done() => Ok(r.results()),
            Some(r) if r.id == run_id => Err(SlotError::NotFinished(run_id.to_string())),
            _ => Err(SlotError::Unknown(run_id.to_string())),
        }
    }

    /// The current phase, run and live view.
    pub fn status(&self) -> api::Status {
        let guard = self.lock();
        let last_poll_ms = self.last_poll_ms.load(std::sync::atomic::Ordering::Relaxed);
        match guard.as_ref() {
            None => api::Status {
                phase: WorkerPhase::Idle,
                run_id: None,
                started_at_ms: None,
                live: Live::default(),
                now_ms: now_ms(),
                last_poll_ms,
            },
            Some(r) => api::Status {
                phase: r.phase,
                run_id: Some(r.id.clone()),
                started_at_ms: r.started_at_ms,
                live: r.live(),
                now_ms: now_ms(),
                last_poll_ms,
            },
        }
    }
}

/// Refuses a test that would send requests outside `allowed` (hosts or host:port). A URL still
/// holding a template cannot be checked before it runs, so it is refused too.
pub fn check_targets(test: &TestFile, allowed: &[String]) -> Result<(), SlotError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let base = test.global.base_url.as_deref();
    let mut urls: Vec<&str> = base.into_iter().collect();
    for s in &test.scenarios {
        for step in &s.steps {
            if let crate::config::Step::Http(h) = step {
                if h.target.starts_with("http://")
                    || h.target.starts_with("https://")
                    || h.target.starts_with("{{")
                {
                    urls.push(&h.target);
                }
            }
        }
    }
    for u in urls {
        let parsed = url::Url::parse(u).map_err(|_| SlotError::UncheckableTarget(u.to_string()))?;
        let host = parsed.host_str().unwrap_or("");
        let with_port = format!("{host}:{}", parsed.port_or_known_default().unwrap_or(0));
        if !allowed.iter().any(|a| a == host || *a == with_port) {
            return Err(SlotError::TargetNotAllowed(host.to_string()));
        }
    }
    Ok(())
}

/// Refuses a start instant that is not a finite time from the epoch or lies more than
/// [`crate::config::duration::MAX`] (365 days) after `now_ms`: a controller never sends one, and waiting
/// for it would panic (`1e300`) or keep the slot `Scheduled` for ever.
fn check_start_at(at_ms: f64, now_ms: f64) -> Result<(), SlotError> {
    let latest = now_ms + crate::config::duration::MAX.as_secs_f64() * 1000.0;
    if at_ms.is_finite() && at_ms >= 0.0 && at_ms <= latest {
        Ok(())
    } else {
        Err(SlotError::BadStart(at_ms))
    }
}

/// Names this worker on every load request of the run (see [`api::WORKER_HEADER`]), unless the
/// test sets that header itself.
fn with_worker_header(mut test: TestFile, worker: Option<&str>) -> TestFile {
    if let Some(name) = worker {
        test.global
            .headers
            .entry(api::WORKER_HEADER.to_string())
            .or_insert_with(|| name.to_string());
    }
    test
}

/// Whether the test asks for `orchestration.synchronization.phase_synchronization`.
fn phase_synchronized(test: &TestFile) -> bool {
    test.distributed
        .as_ref()
        .and_then(|d| d.orchestration.as_ref())
        .and_then(|o| o.synchronization.as_ref())
        .and_then(|s| s.phase_synchronization)
        == Some(true)
}

/// How early the timer wakes before a start instant; the rest is waited by yielding, because
/// tokio's timer only has millisecond resolution and several workers must start together.
const START_SPIN_MS: f64 = 2.0;

/// Returns at `at_ms` (this machine's clock, ms since the epoch) to within a few µs, or at once
/// if that instant has passed.
async fn wait_until(at_ms: f64) {
    let early = at_ms - crate::time::precise_now_ms() - START_SPIN_MS;
    if early > 0.0 {
        // `check_start_at` bounds `at_ms`; the fallback only keeps a bad value from panicking here.
        let early = Duration::try_from_secs_f64(early / 1000.0).unwrap_or(Duration::ZERO);
        tokio::time::sleep(early).await;
    }
    while crate::time::precise_now_ms() < at_ms {
        tokio::task::yield_now().await;
    }
}

/// What the controller needs to know of a run's shared counters.
fn lease_report(r: &Run) -> api::LeaseReport {
    api::LeaseReport {
        run_id: r.id.clone(),
        active: matches!(r.phase, WorkerPhase::Prepared) || r.is_active(),
        counters: r
            .leases
            .report()
            .into_iter()
            .map(|(k, c)| {
                let c = api::CounterLease {
                    left: c.left,
                    claimed: c.claimed,
                    waiting: c.waiting,
                    granted_to: c.granted_to,
                };
                (k, c)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_absurd_start_instant_is_refused_and_the_run_stays_prepared() {
        let slot = Slot::new(Vec::new());
        let test = crate::config::from_str(
            "name: t\nload:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\n\
             scenarios:\n  - name: s\n    steps:\n      - url: http://127.0.0.1:9/\n",
        )
        .expect("a valid test");
        let prepare = api::Prepare {
            run_id: "r".into(),
            test,
            worker: None,
            variables: Default::default(),
        };
        assert_eq!(slot.prepare(prepare).unwrap(), WorkerPhase::Prepared);
        let now = crate::time::precise_now_ms();
        for at in [
            1e300,
            f64::INFINITY,
            f64::NAN,
            -1.0,
            now + 366.0 * 86_400_000.0,
        ] {
            let start = api::Start {
                run_id: "r".into(),
                start_at_ms: Some(at),
            };
            let e = slot.start(start).unwrap_err().to_string();
            assert!(e.contains("start_at_ms"), "{at}: {e}");
        }
        let start = api::Start {
            run_id: "r".into(),
            start_at_ms: Some(now + 60_000.0),
        };
        assert_eq!(slot.start(start).unwrap(), WorkerPhase::Scheduled);
        assert!(
            check_start_at(0.0, now).is_ok(),
            "a past instant starts at once"
        );
    }
}
