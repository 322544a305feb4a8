//! The run driver: takes a [`RunRecord`] from whatever phase it was saved in to a final phase,
//! saving it at every transition. Submitted → preparing (every worker gets its share; repeated calls
//! are harmless) → ready → started (one start instant, in each worker's own clock, when the start is
//! synchronized) → polling: every second each worker's new interval batches are merged exactly once,
//! silent workers are marked failed after the detection timeout, and the failure threshold decides
//! whether the run goes on → finished, failed or stopped, with every worker's final totals.
//!
//! The driver assumes nothing about being the only driver there ever was: it starts from the saved
//! record, and a save that fails (for the replicated store: this node lost leadership) stops it at once.

use super::client::{Credentials, WorkerClient};
use super::clock;
use super::run::{Phase, RunRecord, WorkerState};
use super::store::{RunStore, StoreError};
use crate::api::worker as api;
use crate::time::now_ms;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

/// How often workers are polled for metrics (each answer is also a heartbeat): a round starts
/// every `POLL`, counted from the previous round's start.
pub const POLL: Duration = Duration::from_secs(1);

/// How long after each second of the run a round starts: workers close a batch as each second of
/// their run ends, so a round just after finds it closed (a round just before would find it a
/// whole second later, every second).
const ROUND_PHASE_MS: u64 = 150;

/// The most workers pulled at the same time in a round.
const PULL_FANOUT: usize = 64;

/// A pull that fails this close before the worker's detection timeout runs out is tried once
/// more just after it (for at most [`LAST_CHANCE`]): rounds start a whole [`POLL`] apart, so the
/// failure would otherwise be judged only a round later, a second past the timeout.
const RETRY_WINDOW_MS: u64 = 250;
const LAST_CHANCE: Duration = Duration::from_millis(100);

/// Workers whose merged state is saved per round: a run on more is saved every
/// ⌈workers / SAVED_WORKERS_PER_ROUND⌉ rounds (at most [`MAX_ROUNDS_PER_SAVE`]) while nothing but
/// measurements changed, so what a save writes and replicates per second stays about this many
/// workers' worth however many there are.
const SAVED_WORKERS_PER_ROUND: usize = 200;

/// The most rounds between two saves of a running record.
const MAX_ROUNDS_PER_SAVE: u32 = 5;

/// The least time a `/start` call (or a clock estimate) is given when the coordination deadline is
/// near: workers are started one after another, so a late one still gets one real try.
const MIN_CALL: Duration = Duration::from_secs(1);

/// The registered pool as the leader's replica has applied it (each call reads it afresh): where
/// replacement workers come from, and where a restarted worker is found again by its id.
pub type PoolSource = std::sync::Arc<dyn Fn() -> Vec<crate::api::pool::PoolWorker> + Send + Sync>;

/// Drives one run.
pub struct Driver<S: RunStore> {
    store: S,
    clients: Vec<WorkerClient>,
    rec: RunRecord,
    view: watch::Sender<RunRecord>,
    stop: CancellationToken,
    stop_sent: bool,
    /// When each failed worker may next be asked whether it is back (controller clock, ms).
    next_late_probe: Vec<u64>,
    /// Receives each second once it is closed, merged over the workers (the test's outputs).
    seconds: Option<tokio::sync::mpsc::UnboundedSender<crate::metrics::collector::Interval>>,
    /// `clients` for the tasks that call every worker (variables, shared counters), so a worker
    /// restarted mid-run (`auto_restart`) reaches them too.
    clients_view: watch::Sender<Vec<WorkerClient>>,
    /// Live changes of the load ([`super::rescale`]), and the handle that sends them.
    changes: tokio::sync::mpsc::UnboundedReceiver<super::rescale::ControlRequest>,
    changer: super::rescale::ControlHandle,
    /// The live-control generation whose failure to reach a worker was last noted as an event.
    noted_unapplied: u64,
    /// By worker entry: the p95 latency (ms) of the batches its last pull merged.
    recent_p95: Vec<Option<f64>>,
    /// When `adaptive` balancing last moved load (controller clock, ms).
    last_adaptive_ms: u64,
    /// Calls webhooks and the log store (`distributed.monitoring`, `distributed.logging`).
    http: reqwest::Client,
    /// How the controller proves itself to workers, for workers that join mid-run.
    creds: Credentials,
    /// The registered pool, when the controller is a master with one.
    pool: Option<PoolSource>,
    /// By worker entry: the resource sample sent with its last pull (`adaptive` thresholds).
    recent_resources: Vec<Option<crate::metrics::resources::Resources>>,
    /// By worker entry: its pulls answered for this run since the run started. A sample covers
    /// the time since the worker's previous one, so only from the second pull on does it cover
    /// running alone (the first also covers the worker's start-up and its preparing the run).
    pulls_while_started: Vec<u32>,
    /// When this driver found each worker failed (controller clock, ms), by entry.
    failed_at: std::collections::HashMap<usize, u64>,
    /// Failed entries whose replacement was already looked for (once each).
    replace_tried: std::collections::HashSet<usize>,
    /// By worker entry: what its batches are merged up to in the last saved record. Only this is
    /// acknowledged to the worker, which keeps every later batch: a leader taking over from the
    /// saved record pulls them again, so no batch is lost or merged twice however rarely the
    /// record is saved.
    saved_seq: Vec<u64>,
    /// Rounds since the record was last saved, and what it held then that must be saved at once
    /// when it changes (see [`Marks`]).
    rounds_unsaved: u32,
    saved_marks: Option<Marks>,
}

/// What in a running record is saved in the round it changes (the rest, measurements, may wait
/// for a later round): its phase, events, workers' states and the live control.
#[derive(PartialEq)]
struct Marks {
    phase: Phase,
    events: usize,
    states: Vec<WorkerState>,
    stop_requested: bool,
    control: Option<crate::api::master::LoadControl>,
    alerts: usize,
}

impl<S: RunStore> Driver<S> {
    /// A driver for `rec`; `creds` authenticate to the workers; `stop` asks the run to stop.
    pub fn new(store: S, rec: RunRecord, creds: &Credentials, stop: CancellationToken) -> Self {
        let timeout = Duration::from_millis(rec.settings.heartbeat_ms.clamp(500, 5_000));
        let clients: Vec<WorkerClient> = rec
            .workers
            .iter()
            .map(|w| WorkerClient::for_test(&w.addr, creds, timeout, &rec.test))
            .collect();
        let (view, _) = watch::channel(rec.clone());
        let rec_workers = rec.workers.len();
        let (clients_view, _) = watch::channel::<Vec<WorkerClient>>(clients.clone());
        let (change_tx, changes) = tokio::sync::mpsc::unbounded_channel();
        Self {
            clients_view,
            store,
            clients,
            rec,
            view,
            stop,
            stop_sent: false,
            next_late_probe: vec![0; rec_workers],
            seconds: None,
            changes,
            changer: super::rescale::ControlHandle(change_tx),
            noted_unapplied: 0,
            recent_p95: vec![None; rec_workers],
            last_adaptive_ms: 0,
            http: reqwest::Client::new(),
            creds: creds.clone(),
            pool: None,
            recent_resources: vec![None; rec_workers],
            pulls_while_started: vec![0; rec_workers],
            failed_at: Default::default(),
            replace_tried: Default::default(),
            saved_seq: Vec::new(),
            rounds_unsaved: 0,
            saved_marks: None,
        }
        .saved_from_store()
    }

    /// The record a driver starts from was saved (at submission, or by the leader before).
    fn saved_from_store(mut self) -> Self {
        self.saved_seq = self.rec.workers.iter().map(|w| w.last_seq).collect();
        self
    }

    fn marks(&self) -> Marks {
        Marks {
            phase: self.rec.phase,
            events: self.rec.events.len(),
            states: self.rec.workers.iter().map(|w| w.state).collect(),
            stop_requested: self.rec.stop_requested,
            control: self.rec.control.clone(),
            alerts: self.rec.monitoring.alerts.len(),
        }
    }

    /// When the run started (controller clock, Unix ms): the agreed start, else the first worker's.
    fn run_start_ms(&self) -> Option<u64> {
        let first = self
            .rec
            .workers
            .iter()
            .filter_map(|w| w.started_at_ms)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))));
        self.rec.start_at_ms.or(first.map(|t| t as u64))
    }

    /// The thresholds of `load_balancing.algorithm: adaptive`, when the test balances so.
    fn adaptive(&self) -> Option<crate::config::balancing::Thresholds> {
        self.rec
            .test
            .distributed
            .as_ref()
            .and_then(|d| d.load_balancing.as_ref())
            .and_then(|l| l.adaptive())
    }

    /// When the round after the one begun at `round` begins: a [`POLL`] later, moved (by at most
    /// half of it, once) onto [`ROUND_PHASE_MS`] past a second of the run (counted from the agreed
    /// start, else the first worker's).
    fn next_round(&self, round: tokio::time::Instant) -> tokio::time::Instant {
        let next = round + POLL;
        let Some(anchor) = self.run_start_ms() else {
            return next;
        };
        let period = POLL.as_millis() as u64;
        let next_ms = now_ms()
            + next
                .saturating_duration_since(tokio::time::Instant::now())
                .as_millis() as u64;
        let late = (next_ms + period - (anchor + ROUND_PHASE_MS) % period) % period;
        if late < period / 2 {
            next - Duration::from_millis(late)
        } else {
            next + Duration::from_millis(period - late)
        }
    }

    /// What worker `i`'s batches may be acknowledged up to: what the saved record has merged.
    fn acked(&self, i: usize) -> u64 {
        self.saved_seq
            .get(i)
            .copied()
            .unwrap_or(0)
            .min(self.rec.workers[i].last_seq)
    }

    /// Saves the record of a running run when something other than measurements changed, or
    /// when it has gone unsaved for its rounds (one per [`SAVED_WORKERS_PER_ROUND`] workers).
    async fn save_if_due(&mut self) -> Result<(), StoreError> {
        self.rounds_unsaved += 1;
        let every = test_hook::rounds_per_save().unwrap_or_else(|| {
            self.rec
                .workers
                .len()
                .div_ceil(SAVED_WORKERS_PER_ROUND)
                .clamp(1, MAX_ROUNDS_PER_SAVE as usize) as u32
        });
        if self.rounds_unsaved >= every || self.saved_marks.as_ref() != Some(&self.marks()) {
            self.save().await?;
        }
        Ok(())
    }

    /// Gives the driver the registered pool (`replacement_workers`, and `auto_restart` of a
    /// worker that registers again from a new address).
    pub fn with_pool(mut self, pool: PoolSource) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Where live changes of this run's load go (`PATCH /runs/{id}`, the console's keys).
    pub fn control(&self) -> super::rescale::ControlHandle {
        self.changer.clone()
    }

    /// Sends every second closed from now on, merged over the workers, to `tx`.
    pub fn feed_seconds(
        &mut self,
        tx: tokio::sync::mpsc::UnboundedSender<crate::metrics::collector::Interval>,
    ) {
        self.seconds = Some(tx);
    }

    fn close_seconds(&mut self, upto: u64) {
        let closed = self.rec.close_seconds(upto);
        if let Some(tx) = &self.seconds {
            for iv in closed {
                let _ = tx.send(iv);
            }
        }
    }

    /// The record as it changes, for progress displays and the master API.
    pub fn subscribe(&self) -> watch::Receiver<RunRecord> {
        // Saves skip the copy while no one watches (the master never does): bring it up to date.
        self.view.send_replace(self.rec.clone());
        self.view.subscribe()
    }

    /// Runs to a final phase. `Err` means the record could no longer be saved: stop driving.
    /// Everything it logs is inside a `run` span carrying the run id.
    pub async fn drive(self) -> Result<RunRecord, StoreError> {
        let span = tracing::info_span!("run", run_id = %self.rec.id);
        self.drive_in_span().instrument(span).await
    }

    async fn drive_in_span(mut self) -> Result<RunRecord, StoreError> {
        info!(
            phase = %self.rec.phase,
            test = %self.rec.test.name,
            workers = self.rec.workers.len(),
            "driving run"
        );
        // A record past `submitted` was being driven elsewhere: a new leader took it over.
        if self.rec.phase != Phase::Submitted && !self.rec.phase.is_final() {
            self.event(format!(
                "leader changed: a new leader resumed driving the run in phase {}",
                self.rec.phase
            ));
        }
        let outcome = self.advance().await;
        if let Err(e) = &outcome {
            warn!("stopped driving: {e}");
        }
        outcome.map(|_| self.rec)
    }

    async fn advance(&mut self) -> Result<(), StoreError> {
        if self.rec.phase == Phase::Submitted {
            // A storage that cannot be opened (no credentials) is refused before any load runs.
            if let Some(s) = self.storage().map(|(s, _)| s) {
                if let Err(e) = super::storage::open(&s) {
                    self.event(format!("refused: {e}"));
                    return self.finish(Phase::Failed).await;
                }
            }
            if self.storage().is_none()
                && self
                    .rec
                    .test
                    .distributed
                    .as_ref()
                    .and_then(|d| d.results.as_ref())
                    .is_some_and(|r| r.raw_data())
            {
                self.event("refused: results.collection.format.raw_data: a distributed run stores the workers' raw data (raw/<worker>.ndjson.zst) in `storage`, and there is none: give one (backend: local writes to a directory)".into());
                return self.finish(Phase::Failed).await;
            }
        }
        if matches!(self.rec.phase, Phase::Submitted | Phase::Preparing) {
            self.prepare_all().await?;
        }
        if self.rec.phase == Phase::Ready {
            self.start_all().await?;
        }
        if self.rec.phase == Phase::Started {
            self.poll_until_done().await?;
        }
        Ok(())
    }

    async fn save(&mut self) -> Result<(), StoreError> {
        self.store.save(&self.rec).await?;
        self.saved_seq = self.rec.workers.iter().map(|w| w.last_seq).collect();
        self.rounds_unsaved = 0;
        self.saved_marks = Some(self.marks());
        // A copy of the whole record (every worker's histograms) only for someone watching.
        if self.view.receiver_count() > 0 {
            self.view.send_replace(self.rec.clone());
        }
        Ok(())
    }

    fn event(&mut self, text: String) {
        if self.rec.events.last() != Some(&text) {
            info!(event = %text, "run event");
            self.master_log("info", "perfornium::control::driver", &text);
            self.rec.events.push(text);
            // Seconds since the start, rounded up as the timeline counts them; 0 before it.
            let second = self
                .run_start_ms()
                .map_or(0, |start| now_ms().saturating_sub(start).div_ceil(1000));
            self.rec.event_seconds.push(second);
        }
    }

    fn fail_worker(&mut self, i: usize, why: String) {
        let w = &mut self.rec.workers[i];
        w.state = WorkerState::Failed;
        w.error = Some(why.clone());
        let addr = w.addr.addr();
        self.failed_at.insert(i, now_ms());
        warn!(worker = %addr, "worker failed: {why}");
        self.event(format!("worker {addr} failed: {why}"));
    }

    /// True when the failed share of workers is more than the run tolerates.
    fn too_many_failures(&self) -> bool {
        // A worker restarted by `auto_restart` counts once, as its new entry.
        let taking_part: Vec<_> = self
            .rec
            .workers
            .iter()
            .filter(|w| w.state != WorkerState::Idle && w.restarted_as.is_none())
            .collect();
        let failed = taking_part
            .iter()
            .filter(|w| w.state == WorkerState::Failed)
            .count();
        if failed == 0 {
            return false;
        }
        let pct = failed as f64 * 100.0 / taking_part.len().max(1) as f64;
        let running = taking_part.len() - failed;
        let too_few =
            running < self.rec.settings.min_workers as usize && !self.rec.settings.scale_down_load;
        !self.rec.settings.continue_on_partial_failure
            || pct > self.rec.settings.failure_threshold_pct
            || failed == taking_part.len()
            || too_few
    }

    async fn prepare_all(&mut self) -> Result<(), StoreError> {
        self.rec.phase = Phase::Preparing;
        info!("preparing workers");
        self.save().await?;
        // The test's own `beforeTest`: once for the run, before any worker is prepared.
        match super::run_hooks::before(&mut self.rec, &self.clients).await {
            Ok(Some(ran)) => {
                self.event(ran);
                self.save().await?;
            }
            Ok(None) => {}
            Err(why) => {
                self.event(format!("failed before any load: {why}"));
                return self.finish(Phase::Failed).await;
            }
        }
        // Every worker is prepared at once, so `coordination_timeout` bounds the whole phase: a
        // worker that accepts the connection and never answers fails at the deadline.
        let deadline = now_ms() + self.rec.settings.coordination_timeout_ms;
        let timeout_ms = self.rec.settings.coordination_timeout_ms;
        let pending: Vec<(usize, api::Prepare)> = (0..self.clients.len())
            .filter(|&i| self.rec.workers[i].state == WorkerState::Pending)
            .map(|i| {
                let body = api::Prepare {
                    run_id: self.rec.id.clone(),
                    test: self.worker_test(i),
                    worker: Some(self.rec.workers[i].addr.addr()),
                    variables: super::run_hooks::variables(&self.rec),
                };
                (i, body)
            })
            .collect();
        let clients = &self.clients;
        let outcomes = futures_util::future::join_all(pending.iter().map(|(i, body)| async move {
            loop {
                let left = Duration::from_millis(deadline.saturating_sub(now_ms()));
                match tokio::time::timeout(left, clients[*i].prepare(body)).await {
                    Ok(Ok(_)) => return (*i, Ok(())),
                    Ok(Err(e)) if e.is_permanent() || now_ms() >= deadline => {
                        return (*i, Err(e.to_string()))
                    }
                    Err(_) => {
                        let why = format!(
                            "not prepared within the coordination timeout ({timeout_ms} ms)"
                        );
                        return (*i, Err(why));
                    }
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }))
        .await;
        for (i, outcome) in outcomes {
            match outcome {
                Ok(()) => {
                    self.rec.workers[i].state = WorkerState::Prepared;
                    self.rec.workers[i].last_seen_ms = now_ms();
                }
                Err(why) => self.fail_worker(i, why),
            }
        }
        if self.too_many_failures() {
            return self.finish(Phase::Failed).await;
        }
        self.rec.phase = Phase::Ready;
        info!("every worker prepared");
        self.save().await
    }

    /// The test as worker `i` runs it: its share of the load and its CSV rows.
    fn worker_test(&self, i: usize) -> crate::config::TestFile {
        let mut test = self.rec.test.clone();
        test.load = self.rec.workers[i].load.clone();
        super::data::apply_rows(&mut test, &self.rec.workers, i);
        // `logging.correlation_id`: the system under test can join its logs to the run's.
        if crate::config::monitoring::Logging::of(&test).is_some_and(|l| l.correlation_id) {
            test.global
                .headers
                .entry(super::logs::CORRELATION_HEADER.into())
                .or_insert_with(|| self.rec.id.clone());
        }
        test
    }

    async fn start_all(&mut self) -> Result<(), StoreError> {
        let estimates_by = now_ms() + self.rec.settings.coordination_timeout_ms;
        for i in 0..self.clients.len() {
            if self.rec.workers[i].offset.is_none()
                && self.rec.workers[i].state == WorkerState::Prepared
            {
                let left =
                    Duration::from_millis(estimates_by.saturating_sub(now_ms())).max(MIN_CALL);
                if let Ok(Ok(o)) =
                    tokio::time::timeout(left, clock::estimate(&self.clients[i], 5)).await
                {
                    self.rec.workers[i].offset = Some(o);
                }
            }
        }
        if self.rec.settings.sync_start && self.rec.start_at_ms.is_none() {
            self.rec.start_at_ms = Some(now_ms() + self.rec.settings.start_delay_ms);
            self.save().await?;
        }
        for i in 0..self.clients.len() {
            if self.rec.workers[i].state != WorkerState::Prepared {
                continue;
            }
            // In the worker's clock, unless compensation is off (`clock_sync: false`).
            let offset = match self.rec.workers[i].offset {
                Some(o) if self.rec.settings.clock_sync => o.offset_ms,
                _ => 0.0,
            };
            let start_at_ms = self.rec.start_at_ms.map(|t| (t as f64 + offset).max(0.0));
            let body = api::Start {
                run_id: self.rec.id.clone(),
                start_at_ms,
            };
            // `/start` is idempotent: a call lost on a lossy link is sent again until the
            // coordination timeout, as `/prepare` is, instead of failing the worker at once.
            let deadline = now_ms() + self.rec.settings.coordination_timeout_ms;
            loop {
                let left = Duration::from_millis(deadline.saturating_sub(now_ms())).max(MIN_CALL);
                match tokio::time::timeout(left, self.clients[i].start(&body)).await {
                    Ok(Ok(_)) => {
                        self.rec.workers[i].state = WorkerState::Started;
                        break;
                    }
                    Ok(Err(e)) if e.is_permanent() || now_ms() >= deadline => {
                        self.fail_worker(i, e.to_string());
                        break;
                    }
                    Err(_) => {
                        let why = format!(
                            "not started within the coordination timeout ({} ms)",
                            self.rec.settings.coordination_timeout_ms
                        );
                        self.fail_worker(i, why);
                        break;
                    }
                    Ok(Err(e)) => {
                        warn!(worker = %self.clients[i].addr, "start not acknowledged, sending it again: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
        if self.too_many_failures() {
            self.stop_workers().await;
            return self.poll_until_done().await.map(|_| ());
        }
        self.rec.phase = Phase::Started;
        info!(start_at_ms = self.rec.start_at_ms, "run started");
        self.save().await
    }

    async fn stop_workers(&mut self) {
        if self.stop_sent {
            return;
        }
        self.stop_sent = true;
        for i in 0..self.clients.len() {
            if self.rec.workers[i].is_active() {
                let _ = self.clients[i].stop(&self.rec.id).await;
            }
        }
    }

    async fn poll_until_done(&mut self) -> Result<(), StoreError> {
        // Rendezvous points span workers: released by a task of their own, a few times a second.
        let rendezvous = CancellationToken::new();
        let _stop_rendezvous = rendezvous.clone().drop_guard();
        tokio::spawn(super::rendezvous::coordinate(
            self.clients.clone(),
            self.rec.id.clone(),
            super::rendezvous::points(&self.rec.test),
            rendezvous,
        ));
        // Global variables: merged and spread by a task of their own, a few times a second.
        let variables = CancellationToken::new();
        let _stop_variables = variables.clone().drop_guard();
        if super::variables::used(&self.rec.test) {
            tokio::spawn(super::variables::coordinate(
                self.clients_view.subscribe(),
                self.rec.id.clone(),
                crate::engine::globals::Globals::for_test(&self.rec.test).later_wins(),
                variables,
            ));
        }
        // Shared counters (`state_backend: raft`): granted by a task of their own, each grant saved
        // through the store before it is sent.
        let leases = CancellationToken::new();
        let _stop_leases = leases.clone().drop_guard();
        let counters = super::leases::counters(&self.rec.test);
        if !counters.is_empty() {
            tokio::spawn(super::leases::coordinate(
                self.store.clone(),
                self.clients_view.subscribe(),
                self.rec.id.clone(),
                counters,
                leases,
            ));
        }
        let mut failed_run = false;
        loop {
            let round = tokio::time::Instant::now();
            let saved = self.saved_seq.clone();
            // The active workers are pulled all at once (at most PULL_FANOUT calls in flight), then
            // each answer is merged in worker order: one after another, a round of 1,000 workers
            // lasted longer than the interval.
            let active: Vec<usize> = (0..self.clients.len())
                .filter(|&i| self.rec.workers[i].is_active())
                .collect();
            for (i, rtt, pulled) in self.pull_all(&active).await {
                self.take_pull(i, rtt, pulled).await;
            }
            for i in 0..self.clients.len() {
                if self.rec.workers[i].state == WorkerState::Failed && !active.contains(&i) {
                    self.poll_failed(i).await;
                }
            }
            test_hook::exit_after_pull(&self.rec, &saved);
            self.watch();
            self.close_reported_seconds();
            self.update_skew();
            if !failed_run {
                // Before the failure threshold is judged: a replaced worker is no failure.
                self.replace_failed().await;
                self.rejoin_registered().await;
            }
            if !failed_run && !self.too_many_failures() {
                self.redistribute_failed().await;
                self.adapt();
                self.apply_control().await;
            }
            if !failed_run && self.too_many_failures() {
                failed_run = true;
                self.event("too many workers failed: stopping the survivors".into());
                self.stop_workers().await;
            }
            if (self.stop.is_cancelled() || self.rec.stop_requested) && !self.stop_sent {
                self.rec.stop_requested = true;
                self.event("stop requested".into());
                self.stop_workers().await;
            }
            if !self.rec.workers.iter().any(|w| w.is_active())
                && !(0..self.rec.workers.len()).any(|i| self.draining(i))
            {
                self.report_late();
                break;
            }
            self.save_if_due().await?;
            // Marked as soon as delivered: the window in which a new leader would send an alert
            // again is this one save.
            if self.deliver_alerts().await {
                self.save().await?;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(self.next_round(round)) => {}
                _ = self.stop.cancelled(), if !self.stop_sent => {}
                Some(req) = self.changes.recv() => self.take_change(req).await?,
            }
        }
        let phase = if failed_run {
            Phase::Failed
        } else if self.stop_sent {
            Phase::Stopped
        } else {
            Phase::Finished
        };
        self.finish(phase).await
    }

    /// Records a live change of the load (or refuses it) and answers its sender once it is saved;
    /// the workers get it from [`Driver::apply_control`].
    async fn take_change(&mut self, req: super::rescale::ControlRequest) -> Result<(), StoreError> {
        use super::rescale;
        let decided = rescale::decide(&self.rec, &req.patch);
        let answer = match decided {
            Err(refusal) => {
                info!(status = refusal.status, "live change refused: {refusal}");
                Err(refusal)
            }
            Ok(None) => Ok(self.current_control()),
            Ok(Some(c)) => {
                let unit = c.unit;
                let before = super::plan::amount(rescale::current_total(&self.rec), unit);
                let why = match &c.change_id {
                    Some(id) => format!("asked for, change id {id}"),
                    None => "asked for".to_string(),
                };
                let line = rescale::describe(&self.rec, before, &c, &why);
                self.rec.control = Some(c.clone());
                self.event(line);
                if let Err(e) = self.save().await {
                    let _ = req.reply.send(Err(rescale::Refusal {
                        status: 503,
                        error: format!("the change could not be recorded: {e}"),
                    }));
                    return Err(e);
                }
                Ok(c)
            }
        };
        let _ = req.reply.send(answer);
        Ok(())
    }

    /// The recorded control, or what it would be with no change made yet.
    fn current_control(&self) -> crate::api::master::LoadControl {
        use super::rescale;
        self.rec.control.clone().unwrap_or_else(|| {
            let unit = super::plan::unit(&self.rec.test.load);
            crate::api::master::LoadControl {
                generation: 0,
                change_id: None,
                unit,
                target: super::plan::amount(rescale::current_total(&self.rec), unit),
                paused: false,
                shares: (0..self.rec.workers.len())
                    .map(|w| rescale::current_units(&self.rec, w))
                    .collect(),
                applied: true,
                changed_ms: 0,
                acked: vec![],
            }
        })
    }

    /// `load_balancing.algorithm: adaptive`: a running worker over a threshold — p95 latency at its
    /// last pull over `response_time_threshold`, or its process CPU / memory in the sample sent
    /// with that pull at or over `cpu_threshold` / `memory_threshold` (a sample that covers only
    /// the running phase: not the first after the start) — gives half its share to the
    /// running workers under every threshold (in proportion to their shares), the total unchanged;
    /// at most once every 5 s, and not while a change is still being applied. Recorded as a live
    /// change and a run event naming each mover's reasons.
    fn adapt(&mut self) {
        use super::rescale;
        const EVERY_MS: u64 = 5_000;
        let Some(t) = self.adaptive() else {
            return;
        };
        if self.rec.phase != Phase::Started
            || self.rec.stop_requested
            || self.rec.control.as_ref().is_some_and(|c| !c.applied)
            || now_ms() < self.last_adaptive_ms + EVERY_MS
            || super::redistribute::remaining(&self.rec).is_none_or(|l| l < Duration::from_secs(2))
        {
            return;
        }
        let mut c = self.current_control();
        c.shares.resize(self.rec.workers.len(), 0);
        for w in 0..self.rec.workers.len() {
            if !rescale::running(&self.rec, w) {
                c.shares[w] = 0;
            }
        }
        let n = self.rec.workers.len();
        let p95: Vec<Option<f64>> = (0..n)
            .map(|w| self.recent_p95.get(w).copied().flatten())
            .collect();
        // Only samples that cover running alone (see `pulls_while_started`).
        let res: Vec<Option<crate::metrics::resources::Resources>> = (0..n)
            .map(|w| {
                self.recent_resources
                    .get(w)
                    .copied()
                    .flatten()
                    .filter(|_| self.pulls_while_started.get(w).is_some_and(|&k| k >= 2))
            })
            .collect();
        let reasons: Vec<Vec<String>> = (0..n)
            .map(|w| over_thresholds(&t, p95[w], res[w]))
            .collect();
        // Under: measured by at least one of the thresholds given, and over none.
        let measured = |w: usize| {
            (t.response_time_ms.is_some() && p95[w].is_some())
                || ((t.cpu_pct.is_some() || t.memory_pct.is_some()) && res[w].is_some())
        };
        let over: Vec<usize> = (0..n)
            .filter(|&w| c.shares[w] >= 2 && !reasons[w].is_empty())
            .collect();
        let under: Vec<usize> = (0..n)
            .filter(|&w| rescale::running(&self.rec, w) && measured(w) && reasons[w].is_empty())
            .collect();
        if over.is_empty() || under.is_empty() {
            return;
        }
        let mut why = Vec::new();
        for &w in &over {
            // Within the receivers' capacity: what fits nowhere stays with the giver.
            let weights: Vec<u64> = under.iter().map(|&u| c.shares[u].max(1)).collect();
            let give =
                rescale::give_within(&self.rec, c.shares[w] / 2, &under, &weights, &mut c.shares);
            if give == 0 {
                continue;
            }
            c.shares[w] -= give;
            why.push(format!(
                "{} {}",
                self.rec.workers[w].addr.addr(),
                reasons[w].join(", ")
            ));
        }
        if why.is_empty() {
            return;
        }
        c.generation += 1;
        c.change_id = None;
        c.applied = false;
        c.changed_ms = now_ms();
        let line = rescale::describe(
            &self.rec,
            c.target,
            &c,
            &format!("adaptive: {}", why.join("; ")),
        );
        self.rec.control = Some(c);
        self.event(line);
        self.last_adaptive_ms = now_ms();
    }

    /// Sends every running worker that has not acknowledged the recorded live change its share
    /// (again: the calls are idempotent by generation, so a new leader simply re-sends).
    async fn apply_control(&mut self) {
        use super::rescale;
        let Some(c) = self.rec.control.clone() else {
            return;
        };
        if c.applied {
            return;
        }
        let Some(left) = super::redistribute::remaining(&self.rec) else {
            return;
        };
        let mut missing = Vec::new();
        for w in 0..self.rec.workers.len() {
            if !rescale::running(&self.rec, w) || c.acked.get(w).is_some_and(|&g| g >= c.generation)
            {
                continue;
            }
            let body = rescale::share_for(&self.rec, w, &c, left);
            match self.clients[w].scale(&body).await {
                Ok(_) => {
                    if let Some(ctl) = self.rec.control.as_mut() {
                        if ctl.acked.len() < self.rec.workers.len() {
                            ctl.acked.resize(self.rec.workers.len(), 0);
                        }
                        ctl.acked[w] = c.generation;
                    }
                }
                Err(e) => missing.push(format!("{}: {e}", self.clients[w].addr)),
            }
        }
        if missing.is_empty() {
            if let Some(ctl) = self.rec.control.as_mut() {
                ctl.applied = true;
            }
            self.event(format!(
                "live change {} is running on every running worker",
                c.generation
            ));
        } else if self.noted_unapplied < c.generation {
            self.noted_unapplied = c.generation;
            self.event(format!(
                "live change {} not yet taken by {} (sent again each second)",
                c.generation,
                missing.join("; ")
            ));
        }
    }

    /// Hands each newly failed worker's share to the survivors, when the test asks for it.
    async fn redistribute_failed(&mut self) {
        if !self.rec.settings.continue_on_partial_failure {
            return;
        }
        self.scale_down_failed();
        if !self.rec.settings.load_redistribution {
            return;
        }
        let dead: Vec<usize> = (0..self.rec.workers.len())
            .filter(|&i| {
                self.rec.workers[i].state == WorkerState::Failed
                    && !self.rec.workers[i].redistributed
                    && !self.rec.workers[i].scaled_down
                    && self.rec.workers[i].restarted_as.is_none()
            })
            .collect();
        for d in dead {
            self.rec.workers[d].redistributed = true;
            let addr = self.rec.workers[d].addr.addr();
            if let Some(c) = self.rec.control.clone() {
                // Under live control the survivors' whole shares are re-sent, the total unchanged.
                let total: u64 = c.shares.iter().sum();
                let (shares, short) = super::rescale::replan_within(&self.rec, total);
                if short > 0 {
                    self.rec.workers[d].short_units = short;
                    let unit = super::plan::unit(&self.rec.test.load);
                    self.event(format!(
                        "{} {} of {addr}'s share did not fit the running workers' capacity (max_vus / max_rps) and are not run: the load is short by that much",
                        super::plan::amount(short, unit),
                        unit.label()
                    ));
                }
                let next = crate::api::master::LoadControl {
                    generation: c.generation + 1,
                    change_id: None,
                    shares,
                    applied: false,
                    changed_ms: now_ms(),
                    ..c
                };
                let line = super::rescale::describe(
                    &self.rec,
                    next.target,
                    &next,
                    &format!("{addr} failed; its share goes to the running workers"),
                );
                self.rec.control = Some(next);
                self.event(line);
                continue;
            }
            let handover = match super::redistribute::plan_for(&self.rec, d) {
                Ok(h) => h,
                Err(why) => {
                    self.event(format!("the share of {addr} was not redistributed: {why}"));
                    continue;
                }
            };
            self.rec.workers[d].short_units = handover.shortfall;
            if handover.parts.is_empty() {
                let unit = super::plan::unit(&self.rec.test.load);
                self.event(format!(
                    "the share of {addr} was not redistributed: no surviving worker has room under its capacity (max_vus / max_rps); the load is short by {} {}",
                    super::plan::amount(handover.shortfall, unit),
                    unit.label()
                ));
                continue;
            }
            for (j, test, units) in handover.parts {
                let body = api::Scale {
                    run_id: self.rec.id.clone(),
                    scale_id: format!("redistribute-{d}"),
                    test,
                    live: None,
                };
                match self.clients[j].scale(&body).await {
                    Ok(_) => self.rec.workers[j].extra_units += units,
                    Err(e) => self.event(format!(
                        "could not hand part of {addr}'s share to {}: {e}",
                        self.clients[j].addr
                    )),
                }
            }
            self.event(format!(
                "the share of {addr} was redistributed to the surviving workers"
            ));
            if handover.shortfall > 0 {
                let unit = super::plan::unit(&self.rec.test.load);
                self.event(format!(
                    "{} {} of {addr}'s share did not fit the survivors' capacity (max_vus / max_rps) and are not run: the load is short by that much",
                    super::plan::amount(handover.shortfall, unit),
                    unit.label()
                ));
            }
        }
    }

    /// `recovery.auto_restart`: failed worker `i` is back as a new process without any run — at its
    /// old address (it answers there with no run), or at `addr` (it registered again under its id
    /// from a new address). It is prepared and started again for the time left, as a new entry of
    /// the record (what it measured before it failed stays in its old entry, so every batch is
    /// still merged once): with its own share when that was kept for it; when its share went to
    /// the survivors, with its planned share, and the running workers' shares are re-planned over
    /// all of them through the live-control path, the total unchanged. Not when its share was
    /// dropped (`scale_down_load`), nor when the run has less than a second left or is bounded by
    /// iterations.
    async fn rejoin(&mut self, i: usize, addr: crate::api::worker::WorkerAddr) {
        let w = &self.rec.workers[i];
        if w.restarted_as.is_some() || w.scaled_down || w.results.is_some() {
            return;
        }
        let old = w.addr.addr();
        let moved = addr.addr() != old;
        let who = match (&w.addr.id, moved) {
            (Some(id), true) => format!(
                "worker {id} ({old}) registered again from {} as a new process",
                addr.addr()
            ),
            _ => format!("worker {old} came back restarted"),
        };
        let left = match super::redistribute::remaining(&self.rec) {
            Some(left) if left >= Duration::from_secs(1) => left,
            _ => {
                self.event(format!("{who} but was not given its share again: its share is defined by iterations or less than a second of the run is left"));
                return;
            }
        };
        let redistributed = w.redistributed;
        let units = if redistributed {
            super::plan::units(&w.load)
        } else {
            super::rescale::current_units(&self.rec, i)
        };
        // What the survivors run now, before the rejoined worker adds its part.
        let total = super::rescale::current_total(&self.rec);
        let j = match self.take_over(i, addr, units, left, false).await {
            Ok(j) => j,
            Err(e) => {
                self.event(format!("{who} but could not be prepared again: {e}"));
                return;
            }
        };
        if !redistributed {
            self.event(format!(
                "{who}; prepared and started again with its share for the {:.1} s left (auto_restart)",
                left.as_secs_f64()
            ));
            return;
        }
        // Its share went to the survivors: all running workers, it included, split the same total.
        let c = self.current_control();
        let shares = super::rescale::replan(&self.rec, total);
        let next = crate::api::master::LoadControl {
            generation: c.generation + 1,
            change_id: None,
            target: super::plan::amount(total, c.unit),
            shares,
            applied: false,
            changed_ms: now_ms(),
            ..c
        };
        let line = super::rescale::describe(
            &self.rec,
            next.target,
            &next,
            &format!(
                "{who}; its share had gone to the running workers, so it is re-planned over all of them with the total unchanged, it included as {} (auto_restart)",
                self.rec.workers[j].addr.addr()
            ),
        );
        self.rec.control = Some(next);
        self.event(line);
    }

    /// Prepares and starts `addr` with `units` of failed entry `d`'s load for the time `left`, as
    /// a new entry continuing `d` (its CSV slice, its place in the shared counters and variables,
    /// a start at once as a late joiner's). Returns the new entry's index, or why not.
    async fn take_over(
        &mut self,
        d: usize,
        addr: crate::api::worker::WorkerAddr,
        units: u64,
        left: Duration,
        replacement: bool,
    ) -> Result<usize, String> {
        if units == 0 {
            return Err("its share is 0".into());
        }
        let w = &self.rec.workers[d];
        let load =
            super::redistribute::scaled(&w.load, units, super::plan::units(&w.load).max(1), left);
        let fresh = super::run::WorkerRun {
            addr: addr.clone(),
            load,
            state: WorkerState::Pending,
            last_seq: 0,
            merged: vec![Default::default(); self.rec.step_names.len()],
            results: None,
            offset: None,
            started_at_ms: None,
            last_seen_ms: now_ms(),
            error: None,
            live: Default::default(),
            csv_rows: w.csv_rows.clone(),
            extra_units: 0,
            redistributed: false,
            scaled_down: false,
            restarted_as: None,
            restart_of: Some(d),
            replacement,
            late: None,
            monitor: Default::default(),
            short_units: 0,
        };
        let j = self.rec.workers.len();
        self.rec.workers.push(fresh);
        // The test as the new entry runs it: its load, and `d`'s rows (it continues `d`).
        let test = self.worker_test(j);
        let timeout = Duration::from_millis(self.rec.settings.heartbeat_ms.clamp(500, 5_000));
        let client = WorkerClient::new(&addr, &self.creds, timeout);
        let budget = Duration::from_millis(self.rec.settings.coordination_timeout_ms).max(MIN_CALL);
        let prepare = api::Prepare {
            run_id: self.rec.id.clone(),
            test,
            worker: Some(addr.addr()),
            variables: super::run_hooks::variables(&self.rec),
        };
        let start = api::Start {
            run_id: self.rec.id.clone(),
            start_at_ms: None,
        };
        let outcome = tokio::time::timeout(budget, async {
            client.prepare(&prepare).await?;
            client.start(&start).await
        })
        .await;
        let why = match outcome {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "not prepared and started within the coordination timeout ({} ms)",
                budget.as_millis()
            )),
        };
        if let Some(why) = why {
            self.rec.workers.pop();
            // A worker that took the run but not the start must not run it later on its own.
            let _ = client.stop(&self.rec.id).await;
            return Err(why);
        }
        self.rec.workers[j].state = WorkerState::Started;
        self.rec.workers[d].restarted_as = Some(j);
        self.clients.push(client);
        self.clients_view.send_replace(self.clients.clone());
        self.next_late_probe.push(0);
        if let Some(c) = self.rec.control.as_mut() {
            // Under live control the new entry runs what `d` ran; `d` runs nothing now.
            let n = self.rec.workers.len();
            c.shares.resize(n, 0);
            c.shares[j] = units;
            c.shares[d] = 0;
            c.acked.resize(n, 0);
            c.acked[j] = c.generation;
        }
        Ok(j)
    }

    /// `replacement_workers` / `failover.worker_replacement`: each newly failed worker's share
    /// goes to an idle registered worker — live lease, no part in this run, passing the run's pool
    /// filter, with the capacity for the share; the least busy by its reported CPU first — which
    /// starts at once with it for the time left. With none (or the run's replacements used up),
    /// the share is left to the failure handling without replacement (`load_redistribution`,
    /// `scale_down_load`), and the event says so.
    async fn replace_failed(&mut self) {
        let limit = self.rec.settings.replacements;
        if limit == 0 || self.rec.phase != Phase::Started || self.rec.stop_requested {
            return;
        }
        let dead: Vec<usize> = (0..self.rec.workers.len())
            .filter(|&i| {
                let w = &self.rec.workers[i];
                w.state == WorkerState::Failed
                    && !w.redistributed
                    && !w.scaled_down
                    && w.restarted_as.is_none()
                    && w.results.is_none()
                    && !self.replace_tried.contains(&i)
            })
            .collect();
        for d in dead {
            self.replace_tried.insert(d);
            let addr = self.rec.workers[d].addr.addr();
            let fallback = if self.rec.settings.load_redistribution {
                "its share goes to the running workers (load_redistribution)"
            } else {
                "its share is not run (no load_redistribution)"
            };
            let used = self.rec.workers.iter().filter(|w| w.replacement).count() as u32;
            if used >= limit {
                self.event(format!("worker {addr} failed and is not replaced: replacement_workers allows {limit} replacement{} in the run, all used; {fallback}", if limit == 1 { "" } else { "s" }));
                continue;
            }
            match self.replace(d).await {
                Ok(line) => self.event(line),
                Err(why) => self.event(format!(
                    "worker {addr} failed and no idle registered worker replaced it: {why}; {fallback}"
                )),
            }
        }
    }

    /// Finds and starts a replacement for failed entry `d`: the event line, or why none.
    async fn replace(&mut self, d: usize) -> Result<String, String> {
        use crate::api::pool::Lease;
        let Some(pool) = self.pool.clone() else {
            return Err("this controller has no registered pool (a run of `perfornium distributed` on listed workers)".into());
        };
        let left = match super::redistribute::remaining(&self.rec) {
            Some(left) if left >= Duration::from_secs(1) => left,
            Some(_) => return Err("less than a second of the run is left".into()),
            None => return Err("its share is defined by iterations, not time".into()),
        };
        let units = super::rescale::current_units(&self.rec, d);
        let unit = super::plan::unit(&self.rec.test.load);
        let now = now_ms();
        let filter = self.rec.pool.clone().unwrap_or_default();
        let entries = pool();
        let live: Vec<&crate::api::pool::PoolWorker> = entries
            .iter()
            .filter(|p| p.health_at(now) == Lease::Up)
            .collect();
        let idle: Vec<&crate::api::pool::PoolWorker> = live
            .iter()
            .copied()
            .filter(|p| {
                let a = p.addr();
                !self.rec.workers.iter().any(|w| {
                    w.addr.addr() == a.addr() || (w.addr.id.is_some() && w.addr.id == a.id)
                }) && filter.admits(&p.registration)
            })
            .collect();
        let fits = |p: &crate::api::pool::PoolWorker| {
            let cap = &p.registration.capacity;
            match unit {
                crate::api::master::LoadUnit::Vus => cap.max_vus.is_none_or(|m| units <= m),
                crate::api::master::LoadUnit::ArrivalsPerSecond => {
                    cap.max_rps.is_none_or(|m| units <= m.saturating_mul(1000))
                }
            }
        };
        let mut fit: Vec<&crate::api::pool::PoolWorker> =
            idle.iter().copied().filter(|p| fits(p)).collect();
        if fit.is_empty() {
            return Err(format!(
                "of {} registered workers, {} hold a live lease, {} of them have no part in this run and pass its pool filter, {} with the capacity for its {} {}",
                entries.len(),
                live.len(),
                idle.len(),
                fit.len(),
                super::plan::amount(units, unit),
                unit.label()
            ));
        }
        // The least busy first, by the CPU each reported with its last renewal; then by id.
        let cpu = |p: &crate::api::pool::PoolWorker| {
            p.registration
                .resources
                .map_or(0.0, |r| r.process_cpu_pct.max(r.host_cpu_pct))
        };
        fit.sort_by(|a, b| {
            cpu(a)
                .total_cmp(&cpu(b))
                .then_with(|| a.registration.id.cmp(&b.registration.id))
        });
        let failed_at = self.failed_at.get(&d).copied();
        let mut refused = Vec::new();
        for p in fit {
            let addr = p.addr();
            let id = p.registration.id.clone();
            match self.take_over(d, addr.clone(), units, left, true).await {
                Ok(_) => {
                    let reacted = failed_at
                        .map(|t| {
                            format!(
                                "; started {} ms after the failure was detected",
                                now_ms().saturating_sub(t)
                            )
                        })
                        .unwrap_or_default();
                    return Ok(format!(
                        "worker {} failed; registered worker {id} ({}) replaces it with its share, {} {} for the {:.1} s left (replacement_workers){reacted}",
                        self.rec.workers[d].addr.addr(),
                        addr.addr(),
                        super::plan::amount(units, unit),
                        unit.label(),
                        left.as_secs_f64()
                    ));
                }
                Err(e) => refused.push(format!("{id}: {e}")),
            }
        }
        Err(format!(
            "every idle candidate refused: {}",
            refused.join("; ")
        ))
    }

    /// `auto_restart` of a registered worker: a failed entry whose id the pool now lists, with a
    /// live lease, at another address is the worker back as a new process; it rejoins
    /// ([`Driver::rejoin`]). (Back at its old address, [`Driver::poll_failed`] finds it.)
    async fn rejoin_registered(&mut self) {
        use crate::api::pool::Lease;
        let Some(pool) = self.pool.clone() else {
            return;
        };
        if !self.rec.settings.auto_restart
            || self.rec.phase != Phase::Started
            || self.rec.stop_requested
        {
            return;
        }
        let back: Vec<usize> = (0..self.rec.workers.len())
            .filter(|&i| {
                let w = &self.rec.workers[i];
                w.state == WorkerState::Failed
                    && w.addr.id.is_some()
                    && w.restarted_as.is_none()
                    && !w.scaled_down
                    && w.results.is_none()
            })
            .collect();
        if back.is_empty() {
            return;
        }
        let now = now_ms();
        let entries = pool();
        for i in back {
            let id = self.rec.workers[i].addr.id.clone();
            let Some(p) = entries
                .iter()
                .find(|p| Some(&p.registration.id) == id.as_ref() && p.health_at(now) == Lease::Up)
            else {
                continue;
            };
            let addr = p.addr();
            if addr.addr() != self.rec.workers[i].addr.addr() {
                self.rejoin(i, addr).await;
            }
        }
    }

    /// `graceful_degradation.scale_down_load`: once fewer than `min_workers_threshold` workers are
    /// running, each newly failed worker's share is dropped — the survivors keep their own shares,
    /// so the total load goes down by that share — and the run goes on.
    fn scale_down_failed(&mut self) {
        let s = &self.rec.settings;
        if !s.scale_down_load {
            return;
        }
        let taking_part = self
            .rec
            .workers
            .iter()
            .filter(|w| w.state != WorkerState::Idle && w.restarted_as.is_none())
            .count();
        let running = self
            .rec
            .workers
            .iter()
            .filter(|w| w.state != WorkerState::Idle && w.state != WorkerState::Failed)
            .count();
        if running >= s.min_workers as usize {
            return;
        }
        let total: u64 = self
            .rec
            .workers
            .iter()
            .map(|w| super::plan::units(&w.load))
            .sum();
        for i in 0..self.rec.workers.len() {
            let w = &self.rec.workers[i];
            if w.state != WorkerState::Failed
                || w.redistributed
                || w.scaled_down
                || w.restarted_as.is_some()
            {
                continue;
            }
            self.rec.workers[i].scaled_down = true;
            let dropped: u64 = self
                .rec
                .workers
                .iter()
                .filter(|w| w.scaled_down)
                .map(|w| super::plan::units(&w.load))
                .sum();
            let addr = self.rec.workers[i].addr.addr();
            let left = 100.0 * (total - dropped) as f64 / total.max(1) as f64;
            self.event(format!(
                "the share of {addr} was dropped (scale_down_load: {running} of {taking_part} workers running, fewer than min_workers_threshold {}); the load is now {left:.1}% of the plan",
                self.rec.settings.min_workers
            ));
        }
    }

    /// `results.collection.storage` and `format`, when the test stores its results.
    fn storage(
        &self,
    ) -> Option<(
        crate::config::results::Storage,
        crate::config::results::Format,
    )> {
        let c = self
            .rec
            .test
            .distributed
            .as_ref()?
            .results
            .as_ref()?
            .collection
            .as_ref()?;
        Some((c.storage.clone()?, c.format.clone().unwrap_or_default()))
    }

    /// Uploads the final results (before the final save, so a leader that dies first leaves the
    /// run to the next, which uploads them again under the same keys).
    async fn store_results(&mut self) {
        let Some((s, fmt)) = self.storage() else {
            return;
        };
        if self
            .rec
            .events
            .iter()
            .any(|e| e.starts_with("refused: results.collection"))
        {
            return;
        }
        match super::storage::upload(&s, &fmt, &self.rec).await {
            Ok(place) => self.event(format!("results stored under {place}")),
            Err(e) => self.event(format!("results could not be stored: {e}")),
        }
        if fmt.raw_data == Some(true) {
            self.store_raw(&s).await;
        }
    }

    /// `format.raw_data`: every worker's spool, pulled and stored under `<prefix>/raw/` (see
    /// [`super::raw`]), then acknowledged.
    async fn store_raw(&mut self, s: &crate::config::results::Storage) {
        let opened = match super::storage::open(s) {
            Ok(o) => o,
            Err(e) => return self.event(format!("raw data could not be stored: {e}")),
        };
        let prefix = s.prefix_for(&self.rec.id, &self.rec.test.name, self.rec.created_ms);
        for i in 0..self.rec.workers.len() {
            if self.rec.workers[i].state == WorkerState::Idle {
                continue;
            }
            let addr = self.rec.workers[i].addr.addr();
            let name = super::raw::file_name(&addr);
            let key = if prefix.is_empty() {
                format!("raw/{name}")
            } else {
                format!("{prefix}/raw/{name}")
            };
            let got =
                super::raw::collect(&self.clients[i], &self.rec.id, &*opened.store, &key).await;
            match got {
                Ok(super::raw::Collected::Stored {
                    key,
                    samples,
                    chunks,
                    bytes,
                }) => self.event(format!(
                    "raw data of worker {addr}: {samples} samples in {chunks} chunks ({bytes} bytes) stored under {}/{key}",
                    opened.place
                )),
                Ok(super::raw::Collected::AlreadyCollected) => self.event(format!(
                    "raw data of worker {addr}: already stored and acknowledged (the worker deleted its spool)"
                )),
                Err(e) => self.event(format!("raw data of worker {addr} could not be stored: {e}")),
            }
        }
    }

    async fn finish(&mut self, phase: Phase) -> Result<(), StoreError> {
        // The test's own `onTestError`/`teardownTest`: once, after every worker ended. Their
        // failures fail the summary's verdict, as a local run's do.
        for e in super::run_hooks::after(&mut self.rec, &self.clients, phase).await {
            self.event(e);
        }
        self.close_seconds(u64::MAX);
        self.rec.phase = phase;
        self.rec.finished_ms = Some(now_ms());
        self.store_results().await;
        let requests: u64 = self.rec.merged_steps().iter().map(|s| s.count).sum();
        if phase == Phase::Finished {
            info!(%phase, requests, "run finished");
        } else {
            warn!(%phase, requests, "run ended");
        }
        self.save().await?;
        // Alerts raised in the last round are saved now: send them, and save that they were.
        if self.deliver_alerts().await {
            self.save().await?;
        }
        Ok(())
    }

    /// Pulls workers `which` concurrently (at most [`PULL_FANOUT`] at a time), each from its last
    /// merged batch and acknowledging what the saved record holds; answers in the order of
    /// `which`, with how long each call took.
    async fn pull_all(
        &self,
        which: &[usize],
    ) -> Vec<(usize, Duration, Result<api::Pull, super::client::CallError>)> {
        use futures_util::stream::StreamExt;
        // Owned calls (a client clone shares its connections): a stream of closures borrowing
        // `self` would not be `Send` for the spawned driver.
        let calls: Vec<_> = which
            .iter()
            .map(|&i| {
                let client = self.clients[i].clone();
                let (since, ack) = (self.rec.workers[i].last_seq, self.acked(i));
                let deadline =
                    self.rec.workers[i].last_seen_ms + self.rec.settings.detection_timeout_ms;
                async move {
                    let began = std::time::Instant::now();
                    let mut pulled = client.pull(since, ack).await;
                    let left = deadline.saturating_sub(now_ms());
                    if pulled.is_err() && left > 0 && left <= RETRY_WINDOW_MS {
                        tokio::time::sleep(Duration::from_millis(left + 1)).await;
                        if let Ok(again) =
                            tokio::time::timeout(LAST_CHANCE, client.pull(since, ack)).await
                        {
                            pulled = again;
                        }
                    }
                    (i, began.elapsed(), pulled)
                }
            })
            .collect();
        futures_util::stream::iter(calls)
            .buffered(PULL_FANOUT)
            .collect()
            .await
    }

    /// Merges (or judges the silence of) worker `i`'s pull, which took `rtt`.
    async fn take_pull(
        &mut self,
        i: usize,
        rtt: Duration,
        pulled: Result<api::Pull, super::client::CallError>,
    ) {
        self.observe(i, rtt, &pulled);
        match pulled.map(|p| p.metrics) {
            Ok(m) if m.run_id.as_deref() != Some(self.rec.id.as_str()) => {
                self.fail_worker(i, "the worker no longer has this run (restarted?)".into());
            }
            Ok(m) => self.absorb(i, m).await,
            Err(e) => {
                let silent = now_ms().saturating_sub(self.rec.workers[i].last_seen_ms);
                if silent > self.rec.settings.detection_timeout_ms {
                    self.fail_worker(
                        i,
                        format!("no answer for {:.1}s ({e})", silent as f64 / 1000.0),
                    );
                }
            }
        }
    }

    /// Merges a pull's batches from worker `i`, each exactly once.
    fn merge_batches(&mut self, i: usize, batches: &[crate::metrics::collector::Interval]) {
        for iv in batches {
            // A worker keeps every batch after the last `since` it was sent and numbers them without
            // gaps, so a gap means someone else acknowledged batches this record never merged.
            let next = self.rec.workers[i].last_seq + 1;
            if iv.seq > next {
                let note = format!(
                    "worker {}: batches {next}..{} were acknowledged but never merged (lost)",
                    self.rec.workers[i].addr.addr(),
                    iv.seq - 1
                );
                self.event(note);
            }
            self.rec.merge_batch(i, iv);
        }
    }

    async fn absorb(&mut self, i: usize, m: api::Metrics) {
        self.merge_batches(i, &m.batches);
        // The p95 of this pull's batches, which only `adaptive` balancing reads: merging copies of
        // their histograms for every worker at every pull is most of what a pull costs otherwise.
        if self.adaptive().is_some() {
            let fresh: Vec<_> = m
                .batches
                .iter()
                .flat_map(|b| b.steps.iter().cloned())
                .collect();
            let fresh = crate::metrics::collector::merged(&fresh);
            if self.recent_p95.len() < self.rec.workers.len() {
                self.recent_p95.resize(self.rec.workers.len(), None);
            }
            if fresh.count > 0 {
                self.recent_p95[i] = Some(fresh.latency.quantile_ms(0.95));
            }
        }
        let offset = self.rec.workers[i]
            .offset
            .map(|o| o.offset_ms)
            .unwrap_or(0.0);
        let w = &mut self.rec.workers[i];
        w.last_seen_ms = now_ms();
        w.live = m.live;
        if let Some(s) = m.started_at_ms {
            w.started_at_ms = Some(s - offset);
        }
        if m.phase == api::WorkerPhase::Running {
            w.state = WorkerState::Running;
        }
        if m.phase.is_done() {
            match self.clients[i].results(&self.rec.id).await {
                // Not ready yet: the next pull asks again.
                Ok(None) => {}
                Ok(Some(r)) => {
                    // `abort` or CSV `stop_test` on one worker stops the test everywhere.
                    if r.aborted && !self.rec.stop_requested {
                        let why = r.failures.join("; ");
                        let addr = self.rec.workers[i].addr.addr();
                        self.event(format!(
                            "worker {addr} stopped the test ({why}): stopping the others"
                        ));
                        self.rec.stop_requested = true;
                    }
                    let w = &mut self.rec.workers[i];
                    w.results = Some(r);
                    w.state = WorkerState::Finished;
                    if w.merged_matches_final() == Some(false) {
                        let note = format!(
                            "worker {}: final totals differ from merged batches; using the totals",
                            w.addr.addr()
                        );
                        self.event(note);
                    }
                }
                Err(e) => self.event(format!(
                    "worker {}: results not ready: {e}",
                    self.clients[i].addr
                )),
            }
        }
    }

    /// Closes the seconds every active worker has reported past.
    fn close_reported_seconds(&mut self) {
        let reported = self
            .rec
            .workers
            .iter()
            .filter(|w| w.is_active())
            .map(|w| w.live.elapsed_s.floor() as u64)
            .min();
        match reported {
            Some(s) if s > 1 => self.close_seconds(s - 1),
            Some(_) => {}
            None => self.close_seconds(u64::MAX),
        }
    }

    fn update_skew(&mut self) {
        let starts: Vec<f64> = self
            .rec
            .workers
            .iter()
            .filter(|w| w.state != WorkerState::Idle && w.state != WorkerState::Failed)
            .filter(|w| w.restart_of.is_none())
            .filter_map(|w| w.started_at_ms)
            .collect();
        let taking_part = self
            .rec
            .workers
            .iter()
            .filter(|w| w.state != WorkerState::Idle && w.restart_of.is_none())
            .count();
        if starts.len() == taking_part && !starts.is_empty() && self.rec.skew_ms.is_none() {
            let max = starts.iter().cloned().fold(f64::MIN, f64::max);
            let min = starts.iter().cloned().fold(f64::MAX, f64::min);
            let skew = max - min;
            self.rec.skew_ms = Some(skew);
            if let Some(tolerance) = self.rec.settings.time_skew_tolerance_ms {
                if skew > tolerance as f64 {
                    self.event(format!(
                        "start skew {skew:.1} ms exceeds time_skew_tolerance {tolerance} ms"
                    ));
                }
            }
        }
    }

    /// A failed worker that answered again and has not handed in its final totals, and has not
    /// gone silent again: the run waits for its last batches.
    fn draining(&self, i: usize) -> bool {
        let w = &self.rec.workers[i];
        w.state == WorkerState::Failed
            && w.late.is_some()
            && w.results.is_none()
            && now_ms().saturating_sub(w.last_seen_ms) <= self.rec.settings.detection_timeout_ms
    }

    /// Pulls a worker marked failed, in case it comes back (a healed partition): what it measured
    /// meanwhile is merged exactly once (by sequence number, as for any worker) instead of being
    /// dropped. Its state stays failed. When its share went to the survivors it is told to stop,
    /// so the load is not run twice.
    async fn poll_failed(&mut self, i: usize) {
        // A restarted worker's batches belong to its new entry; a worker replaced by another may
        // come back (a healed partition) with batches of its own.
        let replaced = self.rec.workers[i]
            .restarted_as
            .is_some_and(|j| self.rec.workers[j].replacement);
        if self.rec.workers[i].results.is_some()
            || !self.rec.settings.auto_reconnect
            || (self.rec.workers[i].restarted_as.is_some() && !replaced)
        {
            return;
        }
        // Until it answers, a failed worker is asked once per detection timeout, so a worker that
        // stays away costs the other workers' pulls at most one call timeout now and then.
        if self.rec.workers[i].late.is_none() {
            if now_ms() < self.next_late_probe[i] {
                return;
            }
            self.next_late_probe[i] = now_ms() + self.rec.settings.detection_timeout_ms;
        }
        let Ok(m) = self.clients[i]
            .metrics(self.rec.workers[i].last_seq, self.acked(i))
            .await
        else {
            return;
        };
        if m.run_id.as_deref() != Some(self.rec.id.as_str()) {
            if self.rec.settings.auto_restart && m.run_id.is_none() && !replaced {
                let addr = self.rec.workers[i].addr.clone();
                self.rejoin(i, addr).await;
            }
            return;
        }
        let addr = self.rec.workers[i].addr.addr();
        let count = |w: &super::run::WorkerRun| w.totals().iter().map(|s| s.count).sum::<u64>();
        let before = count(&self.rec.workers[i]);
        if self.rec.workers[i].late.is_none() {
            self.rec.workers[i].late = Some(0);
            self.event(format!(
                "worker {addr} answered again after it was marked failed; merging its late batches"
            ));
            if self.rec.workers[i].redistributed || replaced {
                let _ = self.clients[i].stop(&self.rec.id).await;
            }
        }
        self.merge_batches(i, &m.batches);
        let w = &mut self.rec.workers[i];
        w.last_seen_ms = now_ms();
        w.live = m.live;
        if m.phase.is_done() {
            if let Ok(Some(r)) = self.clients[i].results(&self.rec.id).await {
                let w = &mut self.rec.workers[i];
                w.results = Some(r);
                if w.merged_matches_final() == Some(false) {
                    let note = format!(
                        "worker {}: final totals differ from merged batches; using the totals",
                        w.addr.addr()
                    );
                    self.event(note);
                }
            }
        }
        let w = &mut self.rec.workers[i];
        let after = count(w);
        w.late = Some(w.late.unwrap_or(0) + after.saturating_sub(before));
    }

    /// Names, per failed worker that came back, what it measured late and whether all of it is in.
    fn report_late(&mut self) {
        for i in 0..self.rec.workers.len() {
            let w = &self.rec.workers[i];
            let Some(late) = w.late else { continue };
            let addr = w.addr.addr();
            let note = if w.results.is_some() {
                format!("worker {addr}: {late} requests measured after it was marked failed were merged late; its final totals are counted")
            } else {
                format!("worker {addr}: {late} requests measured after it was marked failed were merged late; it went silent again before its final totals")
            };
            self.event(note);
        }
    }
}

/// Monitoring and central logs (`distributed.monitoring`, `distributed.logging`): what each pull
/// measured, the rules checked after each round, alerts sent once saved.
impl<S: RunStore> Driver<S> {
    fn keeps(
        &self,
        pick: fn(&crate::config::monitoring::MonitoredMetrics) -> Option<bool>,
    ) -> bool {
        let m = crate::config::monitoring::Monitoring::of(&self.rec.test);
        crate::config::monitoring::Monitoring::keeps(m.as_ref(), pick)
    }

    /// Keeps what pull `pulled` of worker `i`, which took `rtt`, says about the worker and the link.
    fn observe(
        &mut self,
        i: usize,
        rtt: Duration,
        pulled: &Result<api::Pull, super::client::CallError>,
    ) {
        let now = now_ms();
        let rtt_ms = rtt.as_secs_f64() * 1000.0;
        if self.keeps(|m| m.communication_latency) {
            self.rec.workers[i]
                .monitor
                .call(now, rtt_ms, pulled.is_ok());
        }
        let logging =
            crate::config::monitoring::Logging::of(&self.rec.test).filter(|l| l.centralized);
        let addr = self.rec.workers[i].addr.addr();
        let Ok(p) = pulled else {
            if let (Some(l), Err(e)) = (&logging, pulled) {
                if l.communication_level().passes("warn") {
                    self.add_logs(vec![self.record(
                        "warn",
                        "communication",
                        format!("pull of worker {addr} failed after {rtt_ms:.1} ms: {e}"),
                    )]);
                }
            }
            return;
        };
        if p.metrics.run_id.as_deref() != Some(self.rec.id.as_str()) {
            return;
        }
        if self.recent_resources.len() < self.rec.workers.len() {
            self.recent_resources.resize(self.rec.workers.len(), None);
        }
        self.recent_resources[i] = p.extras.resources;
        if self.pulls_while_started.len() < self.rec.workers.len() {
            self.pulls_while_started.resize(self.rec.workers.len(), 0);
        }
        if self.rec.phase == Phase::Started {
            self.pulls_while_started[i] = self.pulls_while_started[i].saturating_add(1);
        }
        if let Some(r) = p
            .extras
            .resources
            .filter(|_| self.keeps(|m| m.resource_utilization))
        {
            self.rec.workers[i].monitor.sample(r);
        }
        let Some(l) = logging else { return };
        self.rec.workers[i].monitor.logs_dropped = p.extras.logs_dropped;
        let offset = self.rec.workers[i].offset.map_or(0.0, |o| o.offset_ms);
        let mut records: Vec<_> = p
            .extras
            .logs
            .iter()
            .filter(|r| r.run_id == self.rec.id)
            .cloned()
            .map(|mut r| {
                r.ts_ms -= offset;
                r
            })
            .collect();
        if l.communication_level().passes("debug") {
            records.push(self.record(
                "debug",
                "communication",
                format!(
                    "pulled worker {addr}: {} batches, {} log records in {rtt_ms:.1} ms",
                    p.metrics.batches.len(),
                    p.extras.logs.len()
                ),
            ));
        }
        self.add_logs(records);
    }

    /// A record of the controller's, at `level`, for the run's stream.
    fn record(&self, level: &str, target: &str, message: String) -> api::LogRecord {
        api::LogRecord {
            ts_ms: crate::time::precise_now_ms(),
            level: level.into(),
            source: "master".into(),
            target: target.into(),
            message,
            run_id: self.rec.id.clone(),
            fields: Default::default(),
        }
    }

    /// A record of the controller's own about the run, when the stream is on and `level` passes
    /// `log_levels.master`.
    fn master_log(&mut self, level: &str, target: &str, message: &str) {
        let Some(l) =
            crate::config::monitoring::Logging::of(&self.rec.test).filter(|l| l.centralized)
        else {
            return;
        };
        if l.master_level().passes(level) {
            self.add_logs(vec![self.record(level, target, message.to_string())]);
        }
    }

    /// Adds records to the run's stream, and ships the kept ones to the log store if there is one
    /// (in the background: a slow store does not hold up the pulls).
    fn add_logs(&mut self, records: Vec<api::LogRecord>) {
        if records.is_empty() {
            return;
        }
        let kept = self.rec.monitoring.log.add(records);
        let agg =
            crate::config::monitoring::Logging::of(&self.rec.test).and_then(|l| l.log_aggregation);
        if let (Some(to), false) = (agg, kept.is_empty()) {
            let http = self.http.clone();
            tokio::spawn(async move {
                if let Err(e) = super::logs::ship(&http, &to, &kept).await {
                    warn!("log_aggregation: {} records not shipped: {e}", kept.len());
                }
            });
        }
    }

    /// After a round of pulls: health history, shares, and the alert rules.
    fn watch(&mut self) {
        let now = now_ms();
        if self.keeps(|m| m.worker_health) {
            for w in &mut self.rec.workers {
                let answering = w.monitor.recent.back().is_none_or(|c| c.ok);
                let state = if w.is_active() && !answering {
                    "unreachable".to_string()
                } else {
                    w.state.to_string()
                };
                w.monitor.health(now, &state);
            }
        }
        super::alerts::update_shares(&mut self.rec);
        for text in super::alerts::evaluate(&mut self.rec, now) {
            warn!("{text}");
            self.event(text);
        }
        if !self.keeps(|m| m.load_distribution) {
            for w in &mut self.rec.workers {
                w.monitor.planned_share_pct = None;
                w.monitor.actual_share_pct = None;
            }
        }
    }

    /// Sends saved alerts not yet delivered; true when any was (the record changed).
    async fn deliver_alerts(&mut self) -> bool {
        let done = super::alerts::deliver(&self.http, &self.rec).await;
        for (i, url) in &done {
            info!(alert = %self.rec.monitoring.alerts[*i].id, %url, "alert delivered");
            self.rec.monitoring.alerts[*i].delivered.push(url.clone());
        }
        !done.is_empty()
    }
}

/// Which of `adaptive`'s thresholds a worker is over, as text for the run event: its p95 latency
/// (ms) at its last pull, and the resource sample sent with it.
fn over_thresholds(
    t: &crate::config::balancing::Thresholds,
    p95: Option<f64>,
    res: Option<crate::metrics::resources::Resources>,
) -> Vec<String> {
    let mut over = Vec::new();
    if let (Some(limit), Some(p)) = (t.response_time_ms, p95) {
        if p > limit as f64 {
            over.push(format!("p95 {p:.0} ms > {limit} ms"));
        }
    }
    if let (Some(limit), Some(r)) = (t.cpu_pct, res) {
        if r.process_cpu_pct >= limit {
            over.push(format!("cpu {:.1}% >= {limit}%", r.process_cpu_pct));
        }
    }
    if let (Some(limit), Some(r)) = (t.memory_pct, res) {
        let pct = r.process_memory_bytes as f64 * 100.0 / r.host_memory_total_bytes.max(1) as f64;
        if r.host_memory_total_bytes > 0 && pct >= limit {
            over.push(format!("memory {pct:.2}% >= {limit}%"));
        }
    }
    over
}

/// A test-only hook to crash a controller between a pull and its save, the moment a failover has
/// to get right: batches are merged in memory but not saved, and the worker still keeps them (it
/// drops batches only up to the `since` of a later pull, which comes after the save).
///
/// When `PERFORNIUM_TEST_EXIT_AFTER_PULL=<path>` is set, the first driver to finish a round of
/// pulls that merged a batch past a saved sequence number of at least 2 (so the run resumes from
/// a non-trivial `last_seq`) creates `<path>` (atomically: only one process anywhere wins),
/// writes into it what it had saved and merged per worker, and exits with status 137 at once,
/// without saving. A driver that finds `<path>` already there carries on. Not for production use:
/// nothing sets it outside the test suite (`tests/exactly_once.rs`).
///
/// `PERFORNIUM_TEST_ROUNDS_PER_SAVE=<n>` saves a running record every n rounds whatever the
/// number of workers (as a run on more than 200 workers is), so the hook above fires only once
/// at least two batches of a worker are merged past the saved record
/// (`tests/cluster/save_cadence.rs`).
mod test_hook {
    use super::RunRecord;
    use std::sync::OnceLock;

    pub const EXIT_AFTER_PULL: &str = "PERFORNIUM_TEST_EXIT_AFTER_PULL";
    pub const ROUNDS_PER_SAVE: &str = "PERFORNIUM_TEST_ROUNDS_PER_SAVE";

    pub fn rounds_per_save() -> Option<u32> {
        static N: OnceLock<Option<u32>> = OnceLock::new();
        *N.get_or_init(|| {
            std::env::var(ROUNDS_PER_SAVE)
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n >= 1)
        })
    }

    pub fn exit_after_pull(rec: &RunRecord, saved: &[u64]) {
        static PATH: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();
        let Some(path) = PATH.get_or_init(|| std::env::var_os(EXIT_AFTER_PULL)) else {
            return;
        };
        let unsaved = rec
            .workers
            .iter()
            .zip(saved)
            .any(|(w, &s)| s >= 2 && w.last_seq > s + u64::from(rounds_per_save().is_some()));
        if !unsaved {
            return;
        }
        let Ok(mut file) = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        else {
            return;
        };
        let workers: Vec<serde_json::Value> = rec
            .workers
            .iter()
            .zip(saved)
            .map(|(w, &s)| {
                serde_json::json!({
                    "addr": w.addr.addr(),
                    "saved_seq": s,
                    "merged_seq": w.last_seq,
                    "merged_count": crate::metrics::collector::merged(&w.merged).count,
                })
            })
            .collect();
        let note = serde_json::json!({
            "pid": std::process::id(),
            "run_id": rec.id,
            "workers": workers,
        });
        use std::io::Write;
        let _ = file.write_all(note.to_string().as_bytes());
        let _ = file.sync_all();
        tracing::warn!(run_id = %rec.id, "{EXIT_AFTER_PULL}: exiting between a pull and its save");
        std::process::exit(137);
    }
}

#[cfg(test)]
mod tests {
    use super::over_thresholds;
    use crate::config::balancing::Thresholds;
    use crate::metrics::resources::Resources;

    #[test]
    fn a_worker_is_over_each_threshold_it_crosses_and_unmeasured_is_over_none() {
        let t = Thresholds {
            response_time_ms: Some(200),
            cpu_pct: Some(50.0),
            memory_pct: Some(10.0),
        };
        let r = Resources {
            process_cpu_pct: 50.0,
            process_memory_bytes: 5,
            host_memory_total_bytes: 100,
            ..Default::default()
        };
        assert_eq!(
            over_thresholds(&t, Some(250.0), Some(r)),
            vec!["p95 250 ms > 200 ms", "cpu 50.0% >= 50%"]
        );
        let big = Resources {
            process_memory_bytes: 20,
            ..r
        };
        assert_eq!(
            over_thresholds(&t, Some(200.0), Some(big)),
            vec!["cpu 50.0% >= 50%", "memory 20.00% >= 10%"]
        );
        let idle = Resources {
            process_cpu_pct: 1.0,
            ..r
        };
        assert!(over_thresholds(&t, Some(10.0), Some(idle)).is_empty());
        assert!(over_thresholds(&t, None, None).is_empty());
        // A sample without the host's memory size says nothing about memory.
        let unknown = Resources {
            host_memory_total_bytes: 0,
            process_cpu_pct: 0.0,
            ..r
        };
        assert!(over_thresholds(&t, None, Some(unknown)).is_empty());
    }
}
