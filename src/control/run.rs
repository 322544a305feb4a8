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
    /// A failed worker that answered again (a partition healed): requests merged since then.
    /// Its batches are merged like anyone's, by sequence number, so nothing counts twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<u64>,
}

impl WorkerRun {
    /// The numbers to count for this worker: its final totals, or what was pulled before it failed.
    pub fn totals(&self) -> &[StepStats] {
        match &self.results {
            Some(r) => &r.steps,
            None => &self.merged,
        }
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
}

/// A distributed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub test: TestFile,
    pub strategy: Strategy,
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
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    /// Why the run failed or what went wrong along the way, in order.
    pub events: Vec<String>,
    /// Set by a client asking the run to stop.
    #[serde(default)]
    pub stop_requested: bool,
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
        true
    }

    /// Turns pending seconds up to `upto` into timeline points.
    pub fn close_seconds(&mut self, upto: u64) {
        let rest = match upto.checked_add(1) {
            Some(next) => self.pending.split_off(&next),
            None => Default::default(),
        };
        for (second, steps) in std::mem::replace(&mut self.pending, rest) {
            let iv = Interval {
                seq: second,
                elapsed_s: second as f64,
                steps,
                active_vus: 0,
                dropped: 0,
            };
            let mut p = Point::from_interval(&iv);
            p.active_vus = self.live().active_vus;
            self.timeline.push(p);
        }
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
        let mut rec =
            crate::control::submit::new_record("r".into(), test, &workers, Strategy::Even, false)
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
}
