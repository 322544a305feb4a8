//! The live result feed (`distributed.results.aggregation`), built inside the run record so every
//! master replica holds the same events with the same sequence numbers: the driver adds each
//! merged batch per worker and per second, and when seconds close it folds them into intervals of
//! `interval` seconds, each turned into one [`FeedEvent`] with percentiles from the merged
//! histograms. The accumulators are saved with the record too, so a new leader resuming the run
//! goes on from the same state: the feed has no gap and no repeat across a leader change.

use crate::api::stream::{FeedEvent, Figures, StepFigures, WorkerFigures};
use crate::config::results::Metric;
use crate::config::TestFile;
use crate::metrics::collector::merged;
use crate::metrics::StepStats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The feed of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Feed {
    pub interval_s: u64,
    pub metrics: Vec<Metric>,
    /// Open seconds: per worker, its steps merged.
    #[serde(default)]
    pending: BTreeMap<u64, Vec<StepStats>>,
    /// The interval being filled: its index, steps and workers merged so far, its last second.
    #[serde(default)]
    open: Option<OpenInterval>,
    /// Every event so far, `seq` 1, 2, 3...
    #[serde(default)]
    pub events: Vec<FeedEvent>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OpenInterval {
    index: u64,
    last_s: u64,
    steps: Vec<StepStats>,
    workers: Vec<StepStats>,
    active_vus: u64,
}

impl Feed {
    /// The feed `test` asks for, if any.
    pub fn for_test(test: &TestFile) -> Option<Feed> {
        let a = test.distributed.as_ref()?.results.as_ref()?.feed()?;
        Some(Feed {
            interval_s: a.interval_s(),
            metrics: a.metrics(),
            ..Feed::default()
        })
    }

    /// Adds worker `w`'s batch (of `workers` in all), counted in `second`.
    pub fn add(&mut self, w: usize, workers: usize, second: u64, steps: &[StepStats]) {
        let slot = self
            .pending
            .entry(second)
            .or_insert_with(|| vec![StepStats::default(); workers]);
        if slot.len() < workers {
            slot.resize(workers, StepStats::default());
        }
        for s in steps {
            slot[w].merge(s);
        }
    }

    /// Folds the closed `second` (its steps merged over workers) into the open interval, and
    /// turns the interval into an event when it is complete.
    pub fn close(&mut self, ctx: &Context, second: u64, steps: &[StepStats], active_vus: u64) {
        let workers = self
            .pending
            .remove(&second)
            .unwrap_or_else(|| vec![StepStats::default(); ctx.workers.len()]);
        // Seconds closed without a pending entry of ours (before the feed existed) are still in
        // `steps`; workers' shares are then unknown and left at zero.
        let index = (second.max(1) - 1) / self.interval_s;
        if self.open.as_ref().is_some_and(|o| o.index != index) {
            self.flush(ctx);
        }
        let open = self.open.get_or_insert_with(|| OpenInterval {
            index,
            last_s: second,
            steps: vec![StepStats::default(); steps.len()],
            workers: vec![StepStats::default(); ctx.workers.len()],
            active_vus,
        });
        open.last_s = second;
        open.active_vus = active_vus;
        for (acc, s) in open.steps.iter_mut().zip(steps) {
            acc.merge(s);
        }
        // A restarted worker adds an entry to the run: every event names every worker.
        let n = workers.len().max(ctx.workers.len());
        if open.workers.len() < n {
            open.workers.resize(n, StepStats::default());
        }
        for (acc, s) in open.workers.iter_mut().zip(&workers) {
            acc.merge(s);
        }
        if second % self.interval_s == 0 {
            self.flush(ctx);
        }
    }

    /// Turns the open interval, if any, into an event.
    pub fn flush(&mut self, ctx: &Context) {
        let Some(o) = self.open.take() else {
            return;
        };
        let from_s = o.index * self.interval_s + 1;
        let seconds = (o.last_s + 1).saturating_sub(from_s).max(1) as f64;
        let figures = |s: &StepStats| self.figures(s, seconds);
        let event = FeedEvent {
            run_id: ctx.run_id.to_string(),
            seq: self.events.len() as u64 + 1,
            from_s,
            to_s: o.last_s,
            figures: figures(&merged(&o.steps)),
            active_vus: self
                .metrics
                .contains(&Metric::VirtualUserCounts)
                .then_some(o.active_vus),
            steps: o
                .steps
                .iter()
                .zip(ctx.steps)
                .map(|(s, name)| StepFigures {
                    step: name.clone(),
                    figures: figures(s),
                })
                .collect(),
            workers: o
                .workers
                .iter()
                .zip(&ctx.workers)
                .map(|(s, addr)| WorkerFigures {
                    worker: addr.clone(),
                    figures: figures(s),
                })
                .collect(),
        };
        self.events.push(event);
    }

    fn figures(&self, s: &StepStats, seconds: f64) -> Figures {
        let has = |m| self.metrics.contains(&m);
        let q = |p| has(Metric::ResponseTimes).then(|| s.latency.quantile_ms(p));
        Figures {
            requests: s.count,
            errors: s.errors,
            error_rate: has(Metric::ErrorRates).then(|| {
                if s.count == 0 {
                    0.0
                } else {
                    s.errors as f64 / s.count as f64
                }
            }),
            rps: has(Metric::Throughput).then(|| s.count as f64 / seconds),
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
        }
    }
}

/// What an event names: the run, its steps and its workers.
pub struct Context<'a> {
    pub run_id: &'a str,
    pub steps: &'a [String],
    pub workers: Vec<String>,
}
