//! The run record: everything the controller knows about one distributed run, saved through a
//! [`super::store::RunStore`] at every transition so a driver (this one after a restart, or another
//! replica's) can resume from it. It holds the test, each worker's share and state, the phase, the
//! start instant, and what has been merged so far, with the sequence number each worker's batches
//! were merged up to — the key to delivering every batch exactly once.

use super::clock::Offset;
use super::workers::WorkerAddr;
use crate::api::worker as api;
use crate::config::{Load, Strategy, TestFile};
use crate::metrics::collector::{Interval, Live, Point};
use crate::metrics::StepStats;
pub use crate::phase::{Phase, WorkerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One worker's part of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRun {
    pub addr: WorkerAddr,
    /// Its share of the load.
    pub load: Load,
    pub state: WorkerState,
    /// Batches up to this sequence number are merged into `merged`.
    pub last_seq: u64,
    /// Everything merged from this worker's batches.
    pub merged: Vec<StepStats>,
    /// The worker's own totals once it finished (they equal `merged` when nothing was lost).
    pub results: Option<api::Results>,
    pub offset: Option<Offset>,
    /// When the worker says it started, in the controller's clock (Unix ms).
    pub started_at_ms: Option<f64>,
    /// When it last answered, controller clock (Unix ms).
    pub last_seen_ms: u64,
    pub error: Option<String>,
    #[serde(default)]
    pub live: Live,
    /// CSV rows sent to it, per scenario (partitioned or replicated).
    #[serde(default)]
    pub csv_rows: BTreeMap<usize, usize>,
    /// Units (VUs, or milli-arrivals/s) taken over from failed workers.
    #[serde(default)]
    pub extra_units: u64,
    /// This failed worker's share has been handed to the survivors.
    #[serde(default)]
    pub redistributed: bool,
    /// This failed worker's share was dropped (`scale_down_load`): the run goes on with less load.
    #[serde(default)]
    pub scaled_down: bool,
    /// This failed worker came back restarted and was prepared again (`auto_restart`): the entry
    /// that runs its share for the rest of the run. What this entry measured before stays here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_as: Option<usize>,
    /// This entry is a restarted worker's second life: the entry it continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_of: Option<usize>,
    /// This entry is another (idle, registered) worker that took over `restart_of`'s share when it
    /// failed (`replacement_workers`), not the same worker restarted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replacement: bool,
    /// A failed worker that answered again (a partition healed): requests merged since then.
    /// Its batches are merged like anyone's, by sequence number, so nothing counts twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<u64>,
    /// Control-call latency, resources, shares and health history (see `metrics::monitor`).
    #[serde(default)]
    pub monitor: crate::metrics::monitor::WorkerMonitor,
    /// Units of this failed worker's share that fit no running worker's capacity (max_vus /
    /// max_rps) when it was redistributed, so are not run (the summary's `short`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub short_units: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl WorkerRun {
    /// The numbers to count for this worker: its final totals, or what was pulled before it failed.
    pub fn totals(&self) -> &[StepStats] {
        match &self.results {
            Some(r) => &r.steps,
            None => &self.merged,
        }
    }

    /// Whether the batches merged from this worker add up to its final totals, step by step and
    /// up to its last sequence number: every batch it produced was merged, and merged once. `None`
    /// until it has final totals.
    pub fn merged_matches_final(&self) -> Option<bool> {
        self.results
            .as_ref()
            .map(|r| r.steps == self.merged && r.last_seq == self.last_seq)
    }

    /// Requests per second over the worker's whole part: its count over its own elapsed seconds (from
    /// its final results once it finished, else over the seconds measured up to its last answer).
    /// 0 when it measured nothing. Not `live.rps`, which is only the last second's rate.
    pub fn average_rps(&self) -> f64 {
        let count: u64 = self.totals().iter().map(|s| s.count).sum();
        let seconds = match &self.results {
            Some(r) => r.elapsed_s,
            None => self.live.elapsed_s,
        };
        if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        }
    }

    /// True while the worker is expected to be producing load.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            WorkerState::Pending
                | WorkerState::Prepared
                | WorkerState::Started
                | WorkerState::Running
        )
    }
}

/// What the controller needs to decide on failures and timing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub sync_start: bool,
    pub heartbeat_ms: u64,
    pub detection_timeout_ms: u64,
    pub coordination_timeout_ms: u64,
    /// Percent of workers that may fail before the run fails.
    pub failure_threshold_pct: f64,
    pub continue_on_partial_failure: bool,
    /// Hand a failed worker's share to the survivors.
    #[serde(default)]
    pub load_redistribution: bool,
    /// Lead time for a synchronized start.
    pub start_delay_ms: u64,
    pub time_skew_tolerance_ms: Option<u64>,
    /// Give each worker the start instant in its own clock (its estimated offset added); off, every
    /// worker gets the controller's instant as is.
    #[serde(default = "yes")]
    pub clock_sync: bool,
    /// Fewest workers that must be running (`graceful_degradation.min_workers_threshold`); 0: no
    /// such bound.
    #[serde(default)]
    pub min_workers: u32,
    /// Below `min_workers`, drop a failed worker's share instead of failing the run.
    #[serde(default)]
    pub scale_down_load: bool,
    /// Keep asking a failed worker for its batches, and re-attach it when it answers.
    #[serde(default = "yes")]
    pub auto_reconnect: bool,
    /// Prepare and start again for the time left a failed worker back as a new process (it answers
    /// without the run, or registered again under its id from another address).
    #[serde(default)]
    pub auto_restart: bool,
    /// How many failed workers an idle registered worker may replace in the run
    /// (`replacement_workers`); 0: none, `u32::MAX`: every one.
    #[serde(default)]
    pub replacements: u32,
}

fn yes() -> bool {
    true
}

/// A distributed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub test: TestFile,
    pub strategy: Strategy,
    /// The rule the load was split by, as the plan names it (`weighted`, `custom`, `even`, ...).
    #[serde(default)]
    pub split: String,
    pub settings: Settings,
    pub phase: Phase,
    pub workers: Vec<WorkerRun>,
    pub step_names: Vec<String>,
    /// The agreed start instant, controller clock (Unix ms).
    pub start_at_ms: Option<u64>,
    /// Spread of the workers' actual starts (max − min), controller clock.
    pub skew_ms: Option<f64>,
    /// Per-second points, merged across workers, for seconds every active worker has reported.
    pub timeline: Vec<Point>,
    /// Seconds not yet closed: merged step stats so far.
    pub pending: BTreeMap<u64, Vec<StepStats>>,
    /// Seconds not yet closed: arrivals made and the open model's target so far (summed over
    /// workers), placed like `pending`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_arrivals: BTreeMap<u64, (u64, Option<u64>)>,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    /// Why the run failed or what went wrong along the way, in order.
    pub events: Vec<String>,
    /// Set by a client asking the run to stop.
    #[serde(default)]
    pub stop_requested: bool,
    /// The second of the run (since `start_at_ms`, else the first worker's start; 0 before it) at
    /// which each of `events` happened, in the same order, for the report's time axis.
    #[serde(default)]
    pub event_seconds: Vec<u64>,
    /// Per worker (by index in `workers`): its own requests, errors and p95 second by second.
    #[serde(default)]
    pub worker_points: Vec<Vec<crate::report::WorkerPoint>>,
    /// The live control of the load (`PATCH /runs/{id}`, adaptive balancing), once changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<crate::api::master::LoadControl>,
    /// Alerts raised and the central log stream (see `alerts.rs`, `logs.rs`).
    #[serde(default)]
    pub monitoring: super::alerts::RunMonitoring,
    /// The live feed of merged figures, when the test asks for one (`results.aggregation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<super::stream::Feed>,
    /// The registered workers the run was submitted to (`POST /runs` with `pool`), whose filter a
    /// replacement worker must pass too; `None`: a run on listed workers, or the whole pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<crate::api::pool::PoolFilter>,
    /// The test's own hooks (`beforeTest`, `onTestError`, `teardownTest`): where and whether each
    /// ran once for the run, and what `beforeTest` left (see `run_hooks.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_hooks: Option<super::run_hooks::TestHooksRecord>,
}

impl RunRecord {
    /// Merges one batch from worker `w` exactly once: a batch at or below the worker's `last_seq`
    /// is a repeat and is ignored. Returns whether it was new.
    pub fn merge_batch(&mut self, w: usize, iv: &Interval) -> bool {
        let worker = &mut self.workers[w];
        if iv.seq <= worker.last_seq {
            return false;
        }
        for (total, s) in worker.merged.iter_mut().zip(&iv.steps) {
            total.merge(s);
        }
        worker.last_seq = iv.seq;
        // The interval's own second, unless that is already on the timeline (a late batch): then
        // the first open one, so every second appears once and the timeline adds up to the run.
        let open = self.timeline.last().map_or(1, |p| p.second + 1);
        let second = iv.second().max(open);
        let slot = self
            .pending
            .entry(second)
            .or_insert_with(|| vec![StepStats::default(); self.step_names.len()]);
        for (acc, s) in slot.iter_mut().zip(&iv.steps) {
            acc.merge(s);
        }
        if iv.arrivals > 0 || iv.target_arrivals.is_some() {
            let (made, target) = self.pending_arrivals.entry(second).or_default();
            *made += iv.arrivals;
            *target = crate::metrics::collector::add_targets(*target, iv.target_arrivals);
        }
        if self.worker_points.len() <= w {
            self.worker_points.resize_with(w + 1, Vec::new);
        }
        crate::report::WorkerPoint::add(&mut self.worker_points[w], second, &iv.steps);
        crate::report::WorkerPoint::add_arrivals(
            &mut self.worker_points[w],
            second,
            iv.arrivals,
            iv.target_arrivals,
        );
        let workers = self.workers.len();
        if let Some(feed) = &mut self.feed {
            feed.add(w, workers, second, &iv.steps);
        }
        true
    }

    /// Turns pending seconds up to `upto` into timeline points; returns them as merged intervals
    /// (one per second, in order) for the test's outputs.
    pub fn close_seconds(&mut self, upto: u64) -> Vec<Interval> {
        let rest = match upto.checked_add(1) {
            Some(next) => self.pending.split_off(&next),
            None => Default::default(),
        };
        let arrivals_rest = match upto.checked_add(1) {
            Some(next) => self.pending_arrivals.split_off(&next),
            None => Default::default(),
        };
        let mut arrivals = std::mem::replace(&mut self.pending_arrivals, arrivals_rest);
        let mut closed = Vec::new();
        for (second, steps) in std::mem::replace(&mut self.pending, rest) {
            let (made, target) = arrivals.remove(&second).unwrap_or_default();
            let iv = Interval {
                seq: second,
                elapsed_s: second as f64,
                steps,
                active_vus: 0,
                dropped: 0,
                arrivals: made,
                target_arrivals: target,
            };
            let mut p = Point::from_interval(&iv);
            p.active_vus = self.live().active_vus;
            if let Some(feed) = &mut self.feed {
                let ctx = super::stream::Context {
                    run_id: &self.id,
                    steps: &self.step_names,
                    workers: self.workers.iter().map(|w| w.addr.addr()).collect(),
                };
                feed.close(&ctx, second, &iv.steps, p.active_vus);
            }
            self.timeline.push(p);
            closed.push(iv);
        }
        // The run's end (every second closed): the last, partial interval becomes an event too.
        if upto == u64::MAX {
            if let Some(feed) = &mut self.feed {
                let ctx = super::stream::Context {
                    run_id: &self.id,
                    steps: &self.step_names,
                    workers: self.workers.iter().map(|w| w.addr.addr()).collect(),
                };
                feed.flush(&ctx);
            }
        }
        closed
    }

    /// Step totals merged over every worker — the run's numbers.
    pub fn merged_steps(&self) -> Vec<StepStats> {
        let mut out = vec![StepStats::default(); self.step_names.len()];
        for w in &self.workers {
            for (acc, s) in out.iter_mut().zip(w.totals()) {
                acc.merge(s);
            }
        }
        out
    }

    /// The live view summed over workers. Counts (requests, errors, dropped) include every worker;
    /// the rate, VUs and last-second p95 only those still producing load: a failed or finished
    /// worker's last answer is stale (after a redistribution its share runs on the survivors).
    pub fn live(&self) -> Live {
        let mut l = Live::default();
        for w in &self.workers {
            l.requests += w.live.requests;
            l.errors += w.live.errors;
            l.dropped += w.live.dropped;
            l.elapsed_s = l.elapsed_s.max(w.live.elapsed_s);
            if w.is_active() {
                l.rps += w.live.rps;
                l.active_vus += w.live.active_vus;
                l.p95_ms = l.p95_ms.max(w.live.p95_ms);
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::plan::Strategy;
    use crate::control::workers::parse_list;

    const TEST: &str = "name: t\nglobal:\n  base_url: \"http://127.0.0.1:1\"\nload:\n  pattern: basic\n  virtual_users: 30\n  duration: 12s\nscenarios:\n  - name: s\n    steps:\n      - name: list\n        path: /users\n";

    /// A started run over three workers.
    fn record() -> RunRecord {
        let test = crate::config::from_str(TEST).unwrap();
        let workers = parse_list("127.0.0.1:8101,127.0.0.1:8102,127.0.0.1:8103").unwrap();
        let mut rec = crate::control::submit::new_record(
            "r".into(),
            test,
            &workers,
            Some(Strategy::Even),
            false,
        )
        .unwrap();
        rec.phase = Phase::Started;
        for w in &mut rec.workers {
            w.state = WorkerState::Running;
        }
        rec
    }

    fn live(requests: u64, rps: f64, active_vus: u64, elapsed_s: f64) -> Live {
        Live {
            elapsed_s,
            requests,
            errors: 0,
            rps,
            p95_ms: 5.0,
            active_vus,
            dropped: 0,
        }
    }

    #[test]
    fn a_failed_workers_stale_rate_is_not_live() {
        // Three workers at 100/s; the third fails and its share goes to the other two (150/s each).
        let mut rec = record();
        rec.workers[0].live = live(1_500, 150.0, 15, 12.0);
        rec.workers[1].live = live(1_500, 150.0, 15, 12.0);
        rec.workers[2].live = live(600, 100.0, 10, 6.0);
        rec.workers[2].state = WorkerState::Failed;
        let l = rec.live();
        assert_eq!(
            l.rps, 300.0,
            "the failed worker's last rate is not load now"
        );
        assert_eq!(l.active_vus, 30);
        assert_eq!(l.requests, 3_600, "what it did still counts");
        assert_eq!(l.elapsed_s, 12.0);
        // A worker that finished produces no more load either.
        rec.workers[1].state = WorkerState::Finished;
        assert_eq!(rec.live().rps, 150.0);
        assert_eq!(rec.live().active_vus, 15);
    }

    fn counted(n: u64) -> Vec<StepStats> {
        vec![StepStats {
            count: n,
            ..Default::default()
        }]
    }

    #[test]
    fn a_workers_rate_is_its_average_not_its_last_second() {
        let mut rec = record();
        // Finished: 340,000 requests in 10 s; its last second (a fraction) had 10.
        let done = &mut rec.workers[0];
        done.state = WorkerState::Finished;
        done.live = live(340_000, 10.0, 0, 10.0);
        done.results = Some(api::Results {
            run_id: "r".into(),
            phase: api::WorkerPhase::Finished,
            step_names: vec!["list".into()],
            steps: counted(340_000),
            elapsed_s: 10.0,
            dropped: 0,
            started_at_ms: None,
            last_seq: 11,
            failures: Vec::new(),
            aborted: false,
            captured: Vec::new(),
        });
        assert_eq!(done.average_rps(), 34_000.0);
        assert_ne!(done.average_rps(), done.live.rps);
        // Failed after 6 s: what was merged, over the seconds measured up to its last answer.
        let failed = &mut rec.workers[1];
        failed.state = WorkerState::Failed;
        failed.merged = counted(600);
        failed.live = live(600, 100.0, 10, 6.0);
        assert_eq!(failed.average_rps(), 100.0);
        // Never measured: no rate.
        assert_eq!(rec.workers[2].average_rps(), 0.0);
    }

    fn batch(seq: u64, elapsed_s: f64, requests: u64) -> Interval {
        Interval {
            seq,
            elapsed_s,
            steps: counted(requests),
            active_vus: 10,
            dropped: 0,
            arrivals: 0,
            target_arrivals: None,
        }
    }

    /// Worker `w` finishes with the totals of the batches it sent.
    fn finish(rec: &mut RunRecord, w: usize, elapsed_s: f64) {
        let worker = &mut rec.workers[w];
        worker.state = WorkerState::Finished;
        worker.results = Some(api::Results {
            run_id: rec.id.clone(),
            phase: api::WorkerPhase::Finished,
            step_names: rec.step_names.clone(),
            steps: worker.merged.clone(),
            elapsed_s,
            dropped: 0,
            started_at_ms: None,
            last_seq: worker.last_seq,
            failures: Vec::new(),
            aborted: false,
            captured: Vec::new(),
        });
    }

    #[test]
    fn the_timeline_has_every_second_once_and_adds_up_to_the_run() {
        // Three workers, 10 s at 100 req/s each: a batch a little after every whole second, then
        // the remainder at the end. The driver closes seconds as the workers report past them.
        let mut rec = record();
        for k in 1..=10u64 {
            for w in 0..3 {
                assert!(rec.merge_batch(w, &batch(k, k as f64 + 0.003 * (w + 1) as f64, 100)));
            }
            if k > 1 {
                rec.close_seconds(k - 1);
            }
        }
        for w in 0..3 {
            rec.merge_batch(w, &batch(11, 10.02, 7));
            finish(&mut rec, w, 10.02);
        }
        rec.close_seconds(u64::MAX);
        rec.phase = Phase::Finished;
        let seconds: Vec<u64> = rec.timeline.iter().map(|p| p.second).collect();
        assert_eq!(seconds, (1..=10).collect::<Vec<_>>());
        assert_eq!(rec.timeline[0].requests, 300);
        assert_eq!(rec.timeline[9].requests, 321);
        let s = rec.summary();
        let on_timeline: u64 = s.timeline.iter().map(|p| p.requests).sum();
        assert_eq!(on_timeline, s.overall.count);
        assert_eq!(s.overall.count, 3_021);
    }

    #[test]
    fn arrivals_and_targets_merge_exactly_per_second_and_per_worker() {
        // Two workers of an open model, 3 s: worker 0 makes 10 of 10 due each second, worker 1
        // makes 8 of 10 (2 dropped); worker 1's second batch comes after its second closed.
        let mut rec = record();
        let with = |seq: u64, elapsed_s: f64, made: u64| Interval {
            arrivals: made,
            target_arrivals: Some(10),
            ..batch(seq, elapsed_s, made)
        };
        for k in 1..=3u64 {
            rec.merge_batch(0, &with(k, k as f64 + 0.01, 10));
            match k {
                1 => assert!(rec.merge_batch(1, &with(1, 1.02, 8))),
                3 => {
                    assert!(rec.merge_batch(1, &with(2, 2.02, 8)));
                    assert!(rec.merge_batch(1, &with(3, 3.02, 8)));
                }
                _ => {}
            }
            rec.close_seconds(k);
        }
        rec.close_seconds(u64::MAX);
        let made: Vec<u64> = rec.timeline.iter().map(|p| p.arrivals).collect();
        let target: Vec<Option<u64>> = rec.timeline.iter().map(|p| p.target_arrivals).collect();
        assert_eq!(
            made,
            [18, 10, 26],
            "the late batch is in the next open second"
        );
        assert_eq!(target, [Some(20), Some(10), Some(30)]);
        let per_worker =
            |w: usize| -> u64 { rec.worker_points[w].iter().map(|p| p.arrivals).sum() };
        assert_eq!((per_worker(0), per_worker(1)), (30, 24));
        assert!(rec.pending_arrivals.is_empty());
    }

    #[test]
    fn a_batch_for_a_closed_second_goes_to_the_next_one() {
        let mut rec = record();
        for k in 1..=3u64 {
            rec.merge_batch(0, &batch(k, k as f64 + 0.01, 100));
        }
        rec.close_seconds(3);
        // Late: placed in second 3, which is already on the timeline.
        rec.merge_batch(1, &batch(1, 3.2, 50));
        rec.merge_batch(0, &batch(4, 4.01, 100));
        rec.close_seconds(u64::MAX);
        let seconds: Vec<u64> = rec.timeline.iter().map(|p| p.second).collect();
        assert_eq!(seconds, [1, 2, 3, 4]);
        assert_eq!(rec.timeline[3].requests, 150);
        let on_timeline: u64 = rec.timeline.iter().map(|p| p.requests).sum();
        let merged: u64 = rec.merged_steps().iter().map(|s| s.count).sum();
        assert_eq!(on_timeline, merged);
    }

    /// Exactly once, modelled: one controller driving workers the way `driver.rs` does, against
    /// workers that behave like `worker/slot.rs`, through saves and crashes.
    mod exactly_once {
        use super::*;
        use crate::metrics::Sample;
        use proptest::prelude::{
            prop_assert, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig,
        };
        use proptest::strategy::Strategy as _;
        use std::collections::BTreeSet;

        /// A worker as `Slot` keeps its batches: numbered 1, 2, 3... without gaps, each kept until a
        /// pull's `since` acknowledges it (`metrics(since)` drops everything up to `since`, then
        /// answers with the rest).
        struct Worker {
            batches: Vec<Interval>,
            produced: usize,
            acked: u64,
        }

        impl Worker {
            fn metrics(&mut self, since: u64) -> Vec<Interval> {
                self.acked = self.acked.max(since);
                self.batches[..self.produced]
                    .iter()
                    .filter(|b| b.seq > self.acked)
                    .cloned()
                    .collect()
            }

            fn totals(&self) -> Vec<StepStats> {
                let mut t = vec![StepStats::default()];
                for b in &self.batches {
                    t[0].merge(&b.steps[0]);
                }
                t
            }
        }

        /// `requests` requests, `errors` of them failed, with distinct latencies so the histograms
        /// take part in every comparison.
        fn stats(requests: u64, errors: u64, salt: u64) -> StepStats {
            let mut s = StepStats::default();
            for i in 0..requests {
                s.record(&Sample {
                    step: 0,
                    latency_us: 1_000 + 37 * i + 1_009 * salt,
                    status: Some(if i < errors { 500 } else { 200 }),
                    error: (i < errors).then(|| "status 500".into()),
                    checks_passed: 0,
                    failed_checks: vec![],
                    bytes: 3,
                });
            }
            s
        }

        fn workers(batches: &[Vec<(u64, u64, u64)>]) -> Vec<Worker> {
            batches
                .iter()
                .enumerate()
                .map(|(w, list)| Worker {
                    batches: list
                        .iter()
                        .enumerate()
                        .map(|(k, &(requests, errors, jitter_ms))| Interval {
                            seq: k as u64 + 1,
                            elapsed_s: (k + 1) as f64 + jitter_ms as f64 / 1000.0,
                            steps: vec![stats(requests, errors.min(requests), w as u64)],
                            active_vus: 1,
                            dropped: 0,
                            arrivals: 0,
                            target_arrivals: None,
                        })
                        .collect(),
                    produced: 0,
                    acked: 0,
                })
                .collect()
        }

        #[derive(Debug, Clone)]
        enum Op {
            /// The worker closes up to this many more batches.
            Produce(usize, usize),
            /// The controller pulls `since` = its `last_seq` and merges the answer (once per worker
            /// between saves, as the driver does: each pass pulls every worker once, then saves).
            Pull(usize),
            /// The pull reaches the worker (which drops what `since` acknowledges) but the
            /// answer is lost (a timeout).
            LostAnswer(usize),
            /// An answer delivered again, late: batches the record has already merged.
            Repeat(usize),
            /// The end of a pass: the record is saved (a raft write: JSON).
            Save,
            /// The controller dies; another resumes from the last saved record.
            Crash,
            /// Seconds every worker has reported past are closed onto the timeline.
            Close(u64),
        }

        fn op(n: usize) -> impl proptest::strategy::Strategy<Value = Op> {
            prop_oneof![
                3 => (0..n, 1..4usize).prop_map(|(w, k)| Op::Produce(w, k)),
                4 => (0..n).prop_map(Op::Pull),
                1 => (0..n).prop_map(Op::LostAnswer),
                1 => (0..n).prop_map(Op::Repeat),
                3 => Just(Op::Save),
                1 => Just(Op::Crash),
                1 => (0..14u64).prop_map(Op::Close),
            ]
        }

        /// A record saved and read back as the replicated store does.
        fn through_store(rec: &RunRecord) -> RunRecord {
            serde_json::from_slice(&serde_json::to_vec(rec).unwrap()).unwrap()
        }

        fn merged_count(rec: &RunRecord, w: usize) -> u64 {
            rec.workers[w].merged.iter().map(|s| s.count).sum()
        }

        /// Requests in worker `w`'s batches up to `seq`: what merging each of them once gives.
        fn prefix_count(worker: &Worker, seq: u64) -> u64 {
            worker.batches[..seq as usize]
                .iter()
                .map(|b| b.steps[0].count)
                .sum()
        }

        /// Plays `ops`, then drives to the end (every batch produced, pulled and saved), checking
        /// after every step that the record holds exactly the batches up to its `last_seq`, once.
        fn play(batches: &[Vec<(u64, u64, u64)>], ops: &[Op]) -> (RunRecord, Vec<Worker>) {
            let mut ws = workers(batches);
            let mut rec = record();
            rec.workers.truncate(ws.len());
            let mut saved = through_store(&rec);
            let mut pulled = BTreeSet::new();
            let check = |rec: &RunRecord, ws: &[Worker]| {
                for (w, worker) in ws.iter().enumerate() {
                    let seq = rec.workers[w].last_seq;
                    assert!(seq as usize <= worker.produced);
                    // The driver acknowledges only what it saved, so a resumed record never lies
                    // behind what the worker has dropped.
                    assert!(
                        seq >= worker.acked,
                        "worker {w} dropped batches up to {} but the record has merged only up to {seq}",
                        worker.acked
                    );
                    assert_eq!(
                        merged_count(rec, w),
                        prefix_count(worker, seq),
                        "worker {w}"
                    );
                }
            };
            for op in ops {
                match *op {
                    Op::Produce(w, k) => {
                        ws[w].produced = (ws[w].produced + k).min(ws[w].batches.len())
                    }
                    Op::Pull(w) | Op::LostAnswer(w) if pulled.contains(&w) => {}
                    Op::Pull(w) => {
                        pulled.insert(w);
                        let since = rec.workers[w].last_seq;
                        for iv in ws[w].metrics(since) {
                            rec.merge_batch(w, &iv);
                        }
                    }
                    Op::LostAnswer(w) => {
                        pulled.insert(w);
                        let since = rec.workers[w].last_seq;
                        ws[w].metrics(since);
                    }
                    Op::Repeat(w) => {
                        let upto = rec.workers[w].last_seq as usize;
                        for iv in &ws[w].batches[..upto] {
                            assert!(!rec.merge_batch(w, iv), "batch {} merged twice", iv.seq);
                        }
                    }
                    Op::Save => {
                        saved = through_store(&rec);
                        pulled.clear();
                    }
                    Op::Crash => {
                        rec = through_store(&saved);
                        pulled.clear();
                    }
                    Op::Close(upto) => {
                        rec.close_seconds(upto);
                    }
                }
                check(&rec, &ws);
            }
            // To the end: everything produced, then passes of pull-everyone-and-save.
            for w in &mut ws {
                w.produced = w.batches.len();
            }
            // (The pass in progress ends with its save; a sequence that ends in a crash has
            // already restored the saved record.)
            rec = through_store(&rec);
            for _ in 0..2 {
                for (w, worker) in ws.iter_mut().enumerate() {
                    let since = rec.workers[w].last_seq;
                    for iv in worker.metrics(since) {
                        rec.merge_batch(w, &iv);
                    }
                }
                rec = through_store(&rec);
                check(&rec, &ws);
            }
            rec.close_seconds(u64::MAX);
            (rec, ws)
        }

        fn batches_strategy() -> impl proptest::strategy::Strategy<Value = Vec<Vec<(u64, u64, u64)>>>
        {
            proptest::collection::vec(
                proptest::collection::vec((0..20u64, 0..3u64, 0..400u64), 1..10),
                1..4,
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn every_batch_is_merged_once_through_any_pulls_saves_and_crashes(
                batches in batches_strategy(),
                ops in proptest::collection::vec(op(3), 0..60),
            ) {
                let ops: Vec<Op> = ops
                    .into_iter()
                    .map(|o| match o {
                        Op::Produce(w, k) => Op::Produce(w % batches.len(), k),
                        Op::Pull(w) => Op::Pull(w % batches.len()),
                        Op::LostAnswer(w) => Op::LostAnswer(w % batches.len()),
                        Op::Repeat(w) => Op::Repeat(w % batches.len()),
                        other => other,
                    })
                    .collect();
                let (mut rec, ws) = play(&batches, &ops);
                for (w, worker) in ws.iter().enumerate() {
                    prop_assert_eq!(rec.workers[w].last_seq, worker.batches.len() as u64);
                    prop_assert_eq!(&rec.workers[w].merged, &worker.totals(), "worker {}", w);
                }
                let merged: u64 = (0..ws.len()).map(|w| merged_count(&rec, w)).sum();
                let on_timeline: u64 = rec.timeline.iter().map(|p| p.requests).sum();
                prop_assert_eq!(on_timeline, merged);
                let seconds: Vec<u64> = rec.timeline.iter().map(|p| p.second).collect();
                prop_assert!(seconds.windows(2).all(|p| p[0] < p[1]), "{:?}", seconds);
                // The workers finish with their own totals: the summary shows both, and they agree.
                for (w, worker) in ws.iter().enumerate() {
                    finish(&mut rec, w, worker.batches.len() as f64);
                    let r = rec.workers[w].results.as_mut().unwrap();
                    r.steps = worker.totals();
                    r.last_seq = worker.batches.len() as u64;
                }
                let s = rec.summary();
                for (w, row) in s.workers.iter().enumerate() {
                    prop_assert_eq!(row.merged_matches_final, Some(true), "worker {}", w);
                    prop_assert_eq!(Some(row.merged_count), row.final_count);
                    prop_assert_eq!(row.count, row.merged_count);
                    prop_assert_eq!(Some(row.merged_seq), row.final_seq);
                }
                let on_timeline: u64 = s.timeline.iter().map(|p| p.requests).sum();
                prop_assert_eq!(on_timeline, s.overall.count);
            }
        }

        #[test]
        fn a_lost_or_repeated_batch_shows_in_the_summary() {
            let mut ws = workers(&[vec![(10, 1, 5), (20, 0, 5), (30, 2, 5)]]);
            ws[0].produced = 3;
            let mut rec = record();
            rec.workers.truncate(1);
            // Batch 2 is skipped (acknowledged elsewhere), 1 and 3 merged.
            rec.merge_batch(0, &ws[0].batches[0]);
            rec.merge_batch(0, &ws[0].batches[2]);
            finish(&mut rec, 0, 3.0);
            let r = rec.workers[0].results.as_mut().unwrap();
            r.steps = ws[0].totals();
            r.last_seq = 3;
            let row = &rec.summary().workers[0];
            assert_eq!((row.merged_count, row.final_count), (40, Some(60)));
            assert_eq!((row.merged_errors, row.final_errors), (3, Some(3)));
            assert_eq!(row.count, 60, "what is reported is still the final totals");
            assert_eq!(row.merged_matches_final, Some(false));
            // Final totals equal in count but not in content (a batch counted twice, another
            // lost) do not match either: the histograms and status codes differ.
            let mut twice = record();
            twice.workers.truncate(1);
            twice.merge_batch(0, &ws[0].batches[0]);
            twice.merge_batch(0, &ws[0].batches[1]);
            twice.workers[0].last_seq = 1;
            twice.merge_batch(0, &ws[0].batches[1]);
            twice.merge_batch(0, &ws[0].batches[2]);
            finish(&mut twice, 0, 3.0);
            twice.workers[0].results.as_mut().unwrap().steps = ws[0].totals();
            assert_eq!(twice.workers[0].merged_matches_final(), Some(false));
            // A worker without final totals has nothing to compare.
            let mut failed = record();
            failed.merge_batch(0, &ws[0].batches[0]);
            let row = &failed.summary().workers[0];
            assert_eq!(
                (row.merged_count, row.final_count, row.merged_matches_final),
                (10, None, None)
            );
        }

        /// Why a replica must never run two drivers of one run (`master::leader`'s
        /// `concurrent_resumes_start_one_driver_per_run`): each acknowledges with its own `since`,
        /// so one can drop a batch from the worker before the other has seen it.
        #[test]
        fn two_controllers_on_one_worker_can_skip_a_batch() {
            let mut ws = workers(&[vec![(10, 0, 5), (20, 0, 5), (30, 0, 5)]]);
            let mut one = record();
            one.workers.truncate(1);
            let mut two = one.clone();
            let pull = |rec: &mut RunRecord, w: &mut Worker| {
                let since = rec.workers[0].last_seq;
                for iv in w.metrics(since) {
                    rec.merge_batch(0, &iv);
                }
            };
            ws[0].produced = 1;
            pull(&mut two, &mut ws[0]); // 1
            ws[0].produced = 2;
            pull(&mut one, &mut ws[0]); // 1, 2
            pull(&mut one, &mut ws[0]); // acknowledges 2
            ws[0].produced = 3;
            pull(&mut two, &mut ws[0]); // 3: batch 2 is gone
            pull(&mut one, &mut ws[0]); // 3
            assert_eq!(merged_count(&one, 0), 60);
            assert_eq!(merged_count(&two, 0), 40);
            assert_eq!(
                two.workers[0].last_seq, 3,
                "merge_batch cannot see the hole; the driver's gap event does"
            );
        }

        /// The one rule the driver keeps for exactly-once: it acknowledges (sends as `since`) only
        /// what it has saved. Pulling twice between saves and then crashing loses batches; the
        /// property above holds because the model, like the driver, saves between two pulls.
        #[test]
        fn acknowledging_past_the_save_would_lose_batches() {
            let mut ws = workers(&[vec![(10, 0, 5), (20, 0, 5), (30, 0, 5)]]);
            let mut rec = record();
            rec.workers.truncate(1);
            let saved = through_store(&rec);
            ws[0].produced = 1;
            for iv in ws[0].metrics(rec.workers[0].last_seq) {
                rec.merge_batch(0, &iv);
            }
            ws[0].produced = 3;
            // A second pull without a save acknowledges batch 1...
            for iv in ws[0].metrics(rec.workers[0].last_seq) {
                rec.merge_batch(0, &iv);
            }
            // ...so a controller resuming from the saved record never sees it again.
            let mut resumed = through_store(&saved);
            for iv in ws[0].metrics(resumed.workers[0].last_seq) {
                resumed.merge_batch(0, &iv);
            }
            assert_eq!(merged_count(&rec, 0), 60);
            assert_eq!(merged_count(&resumed, 0), 50, "batch 1 lost");
        }
    }
}
