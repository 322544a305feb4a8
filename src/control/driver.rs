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

/// How often workers are polled for metrics (each answer is also a heartbeat).
pub const POLL: Duration = Duration::from_secs(1);

/// The least time a `/start` call (or a clock estimate) is given when the coordination deadline is
/// near: workers are started one after another, so a late one still gets one real try.
const MIN_CALL: Duration = Duration::from_secs(1);

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
}

impl<S: RunStore> Driver<S> {
    /// A driver for `rec`; `creds` authenticate to the workers; `stop` asks the run to stop.
    pub fn new(store: S, rec: RunRecord, creds: &Credentials, stop: CancellationToken) -> Self {
        let timeout = Duration::from_millis(rec.settings.heartbeat_ms.clamp(500, 5_000));
        let clients: Vec<WorkerClient> = rec
            .workers
            .iter()
            .map(|w| WorkerClient::new(&w.addr, creds, timeout))
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
        }
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
            // Seconds since the start (the agreed one, else the first worker's), rounded up as the
            // timeline counts them; 0 before it.
            let first = self
                .rec
                .workers
                .iter()
                .filter_map(|w| w.started_at_ms)
                .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))));
            let start = self.rec.start_at_ms.or(first.map(|t| t as u64));
            let second = start.map_or(0, |start| now_ms().saturating_sub(start).div_ceil(1000));
            self.rec.event_seconds.push(second);
        }
    }

    fn fail_worker(&mut self, i: usize, why: String) {
        let w = &mut self.rec.workers[i];
        w.state = WorkerState::Failed;
        w.error = Some(why.clone());
        let addr = w.addr.addr();
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
            // What each worker's batches are merged up to in the saved record: every pass ends
            // with a save, and the record a driver starts from is a saved one.
            let saved: Vec<u64> = self.rec.workers.iter().map(|w| w.last_seq).collect();
            for i in 0..self.clients.len() {
                if self.rec.workers[i].is_active() {
                    self.poll_worker(i).await;
                } else if self.rec.workers[i].state == WorkerState::Failed {
                    self.poll_failed(i).await;
                }
            }
            test_hook::exit_after_pull(&self.rec, &saved);
            self.watch();
            self.close_reported_seconds();
            self.update_skew();
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
            self.save().await?;
            // Marked as soon as delivered: the window in which a new leader would send an alert
            // again is this one save.
            if self.deliver_alerts().await {
                self.save().await?;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
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

    /// `load_balancing.algorithm: adaptive`: a running worker whose p95 latency at its last pull
    /// exceeds `response_time_threshold` gives half its share to the running workers under it (in
    /// proportion to their shares), the total unchanged; at most once every 5 s, and not while a
    /// change is still being applied. Recorded as a live change and a run event.
    fn adapt(&mut self) {
        use super::rescale;
        const EVERY_MS: u64 = 5_000;
        let Some(limit) = self
            .rec
            .test
            .distributed
            .as_ref()
            .and_then(|d| d.load_balancing.as_ref())
            .and_then(|l| l.adaptive_threshold_ms())
        else {
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
        let limit = limit as f64;
        let mut c = self.current_control();
        for w in 0..self.rec.workers.len() {
            if !rescale::running(&self.rec, w) {
                c.shares[w] = 0;
            }
        }
        let p95 = |w: usize| self.recent_p95.get(w).copied().flatten();
        let over: Vec<usize> = (0..self.rec.workers.len())
            .filter(|&w| c.shares[w] >= 2 && p95(w).is_some_and(|p| p > limit))
            .collect();
        let under: Vec<usize> = (0..self.rec.workers.len())
            .filter(|&w| rescale::running(&self.rec, w) && p95(w).is_some_and(|p| p <= limit))
            .collect();
        if over.is_empty() || under.is_empty() {
            return;
        }
        let mut why = Vec::new();
        for &w in &over {
            let give = c.shares[w] / 2;
            c.shares[w] -= give;
            let weights: Vec<u64> = under.iter().map(|&u| c.shares[u].max(1)).collect();
            for (k, part) in rescale::proportional(give, &weights)
                .into_iter()
                .enumerate()
            {
                c.shares[under[k]] += part;
            }
            why.push(format!(
                "{} p95 {:.0} ms > {limit:.0} ms",
                self.rec.workers[w].addr.addr(),
                p95(w).unwrap_or(0.0)
            ));
        }
        c.generation += 1;
        c.change_id = None;
        c.applied = false;
        c.changed_ms = now_ms();
        let line = rescale::describe(
            &self.rec,
            c.target,
            &c,
            &format!("adaptive: {}", why.join(", ")),
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
                let shares = super::rescale::replan(&self.rec, total);
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
            let parts = match super::redistribute::plan_for(&self.rec, d) {
                Ok(p) => p,
                Err(why) => {
                    self.event(format!("the share of {addr} was not redistributed: {why}"));
                    continue;
                }
            };
            for (j, test, units) in parts {
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
        }
    }

    /// `recovery.auto_restart`: failed worker `i` answers without any run (it was restarted), so it
    /// is prepared and started again with its share for the time left, as a new entry of the record
    /// (what it measured before it failed stays in its old entry, so every batch is still merged
    /// once). Not when its share went to the survivors or was dropped, nor when the run has less
    /// than a second left or is bounded by iterations.
    async fn restart(&mut self, i: usize) {
        let w = &self.rec.workers[i];
        if w.restarted_as.is_some() || w.redistributed || w.scaled_down || w.results.is_some() {
            return;
        }
        let addr = w.addr.addr();
        let left = match super::redistribute::remaining(&self.rec) {
            Some(left) if left >= Duration::from_secs(1) => left,
            _ => {
                self.event(format!("worker {addr} came back restarted but was not given its share again: its share is defined by iterations or less than a second of the run is left"));
                return;
            }
        };
        let units = super::plan::units(&w.load);
        let mut test = self.rec.test.clone();
        super::data::apply_rows(&mut test, &self.rec.workers, i);
        test.load = super::redistribute::scaled(&w.load, units, units, left);
        let fresh = super::run::WorkerRun {
            addr: w.addr.clone(),
            load: test.load.clone(),
            state: WorkerState::Prepared,
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
            restart_of: Some(i),
            late: None,
            monitor: Default::default(),
        };
        let budget = Duration::from_millis(self.rec.settings.coordination_timeout_ms).max(MIN_CALL);
        let prepare = api::Prepare {
            run_id: self.rec.id.clone(),
            test,
            worker: Some(addr.clone()),
        };
        let start = api::Start {
            run_id: self.rec.id.clone(),
            start_at_ms: None,
        };
        let client = self.clients[i].clone();
        let outcome = tokio::time::timeout(budget, async {
            client.prepare(&prepare).await?;
            client.start(&start).await
        })
        .await;
        match outcome {
            Ok(Ok(_)) => {
                let j = self.rec.workers.len();
                self.rec.workers.push(fresh);
                self.rec.workers[j].state = WorkerState::Started;
                self.rec.workers[i].restarted_as = Some(j);
                self.clients.push(client);
                self.clients_view.send_replace(self.clients.clone());
                self.next_late_probe.push(0);
                self.event(format!(
                    "worker {addr} came back restarted; prepared and started again with its share for the {:.1} s left (auto_restart)",
                    left.as_secs_f64()
                ));
            }
            Ok(Err(e)) => self.event(format!("worker {addr} came back restarted but could not be prepared again: {e}")),
            Err(_) => self.event(format!("worker {addr} came back restarted but was not prepared again within the coordination timeout")),
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
    }

    async fn finish(&mut self, phase: Phase) -> Result<(), StoreError> {
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

    async fn poll_worker(&mut self, i: usize) {
        let since = self.rec.workers[i].last_seq;
        let began = std::time::Instant::now();
        let pulled = self.clients[i].pull(since).await;
        self.observe(i, began.elapsed(), &pulled);
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
        // A restarted worker's batches belong to its new entry.
        if self.rec.workers[i].results.is_some()
            || !self.rec.settings.auto_reconnect
            || self.rec.workers[i].restarted_as.is_some()
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
        let Ok(m) = self.clients[i].metrics(self.rec.workers[i].last_seq).await else {
            return;
        };
        if m.run_id.as_deref() != Some(self.rec.id.as_str()) {
            if self.rec.settings.auto_restart && m.run_id.is_none() {
                self.restart(i).await;
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
            if self.rec.workers[i].redistributed {
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
mod test_hook {
    use super::RunRecord;
    use std::sync::OnceLock;

    pub const EXIT_AFTER_PULL: &str = "PERFORNIUM_TEST_EXIT_AFTER_PULL";

    pub fn exit_after_pull(rec: &RunRecord, saved: &[u64]) {
        static PATH: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();
        let Some(path) = PATH.get_or_init(|| std::env::var_os(EXIT_AFTER_PULL)) else {
            return;
        };
        let unsaved = rec
            .workers
            .iter()
            .zip(saved)
            .any(|(w, &s)| s >= 2 && w.last_seq > s);
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
