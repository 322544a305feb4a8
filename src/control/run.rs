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
}

impl WorkerRun {
    /// The numbers to count for this worker: its final totals, or what was pulled before it failed.
    pub fn totals(&self) -> &[StepStats] {
        match &self.results {
            Some(r) => &r.steps,
            None => &self.merged,
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
        let second = iv.elapsed_s.ceil().max(1.0) as u64;
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
            p.active_vus = self.workers.iter().map(|w| w.live.active_vus).sum();
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

    /// The live view summed over workers.
    pub fn live(&self) -> Live {
        let mut l = Live::default();
        for w in &self.workers {
            l.requests += w.live.requests;
            l.errors += w.live.errors;
            l.rps += w.live.rps;
            l.active_vus += w.live.active_vus;
            l.dropped += w.live.dropped;
            l.elapsed_s = l.elapsed_s.max(w.live.elapsed_s);
            l.p95_ms = l.p95_ms.max(w.live.p95_ms);
        }
        l
    }
}
