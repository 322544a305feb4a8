//! The collector task: VUs send a [`Sample`] per request; every second it closes an [`Interval`]
//! (one [`StepStats`] per step), adds it to the run's totals, appends a [`Point`] to the timeline,
//! publishes a [`Live`] view for progress displays, and hands the interval to an optional sink
//! (a worker keeps them for its controller). A channel keeps VUs free of locks on the hot path.

use super::{Sample, StepStats};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// One second (or the final fraction of one) of measurements.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interval {
    /// 1, 2, 3... in the order the intervals were closed.
    pub seq: u64,
    /// Seconds since the run started when this interval closed.
    pub elapsed_s: f64,
    pub steps: Vec<StepStats>,
    pub active_vus: u64,
    /// Arrivals that could not start in this interval (open model only).
    pub dropped: u64,
}

/// One line of the per-second timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub active_vus: u64,
    pub dropped: u64,
    pub p50_ms: f64,
    #[serde(default)]
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Per step: (requests, errors, p50, p95, p99).
    pub steps: Vec<StepPoint>,
}

/// A step's share of a timeline point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepPoint {
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl Point {
    /// Summarizes one interval; the overall percentiles come from the merged step histograms.
    pub fn from_interval(iv: &Interval) -> Point {
        let all = merged(&iv.steps);
        Point {
            second: iv.elapsed_s.ceil() as u64,
            requests: all.count,
            errors: all.errors,
            active_vus: iv.active_vus,
            dropped: iv.dropped,
            p50_ms: all.latency.quantile_ms(0.5),
            p90_ms: all.latency.quantile_ms(0.9),
            p95_ms: all.latency.quantile_ms(0.95),
            p99_ms: all.latency.quantile_ms(0.99),
            steps: iv
                .steps
                .iter()
                .map(|s| StepPoint {
                    requests: s.count,
                    errors: s.errors,
                    p50_ms: s.latency.quantile_ms(0.5),
                    p95_ms: s.latency.quantile_ms(0.95),
                    p99_ms: s.latency.quantile_ms(0.99),
                })
                .collect(),
        }
    }
}

/// All steps merged into one.
pub fn merged(steps: &[StepStats]) -> StepStats {
    let mut all = StepStats::default();
    for s in steps {
        all.merge(s);
    }
    all
}

/// Counters the engine updates directly.
#[derive(Debug, Default)]
pub struct Gauges {
    pub active_vus: AtomicU64,
    pub dropped: AtomicU64,
}

/// The latest view of a running test, for progress lines and consoles.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Live {
    pub elapsed_s: f64,
    pub requests: u64,
    pub errors: u64,
    /// Requests in the last closed second.
    pub rps: f64,
    /// p95 of the last closed second, in ms.
    pub p95_ms: f64,
    pub active_vus: u64,
    pub dropped: u64,
}

/// What the collector hands back when every VU is done.
#[derive(Debug, Clone)]
pub struct Totals {
    pub steps: Vec<StepStats>,
    pub timeline: Vec<Point>,
    pub dropped: u64,
    pub elapsed: Duration,
}

/// The collector's inputs and outputs; see the module comment.
pub struct Collector {
    rx: mpsc::UnboundedReceiver<Sample>,
    gauges: Arc<Gauges>,
    sink: Option<mpsc::UnboundedSender<Interval>>,
    live: watch::Sender<Live>,
    current: Vec<StepStats>,
    totals: Totals,
    seq: u64,
    started: Instant,
    dropped_seen: u64,
}

impl Collector {
    /// A collector for `steps` HTTP steps; returns it with the sender VUs record into.
    pub fn new(
        steps: usize,
        gauges: Arc<Gauges>,
        sink: Option<mpsc::UnboundedSender<Interval>>,
        live: watch::Sender<Live>,
    ) -> (Self, mpsc::UnboundedSender<Sample>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let empty = vec![StepStats::default(); steps];
        let totals = Totals {
            steps: empty.clone(),
            timeline: Vec::new(),
            dropped: 0,
            elapsed: Duration::ZERO,
        };
        let c = Collector {
            rx,
            gauges,
            sink,
            live,
            current: empty,
            totals,
            seq: 0,
            started: Instant::now(),
            dropped_seen: 0,
        };
        (c, tx)
    }

    /// Runs until every sender is dropped, then closes the last partial interval.
    pub async fn run(mut self) -> Totals {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                sample = self.rx.recv() => match sample {
                    Some(s) => self.current[s.step].record(&s),
                    None => break,
                },
                _ = tick.tick() => self.close_interval(),
            }
        }
        self.close_interval();
        self.totals.elapsed = self.started.elapsed();
        self.totals
    }

    fn close_interval(&mut self) {
        self.seq += 1;
        let dropped_now = self.gauges.dropped.load(Ordering::Relaxed);
        let iv = Interval {
            seq: self.seq,
            elapsed_s: self.started.elapsed().as_secs_f64(),
            steps: self.current.clone(),
            active_vus: self.gauges.active_vus.load(Ordering::Relaxed),
            dropped: dropped_now - self.dropped_seen,
        };
        self.dropped_seen = dropped_now;
        for (total, cur) in self.totals.steps.iter_mut().zip(&self.current) {
            total.merge(cur);
        }
        self.totals.dropped = dropped_now;
        let point = Point::from_interval(&iv);
        self.publish(&point);
        self.totals.timeline.push(point);
        if let Some(sink) = &self.sink {
            let _ = sink.send(iv);
        }
        self.current.iter_mut().for_each(StepStats::reset);
    }

    fn publish(&self, point: &Point) {
        let requests = self.totals.steps.iter().map(|s| s.count).sum();
        let errors = self.totals.steps.iter().map(|s| s.errors).sum();
        self.live.send_replace(Live {
            elapsed_s: self.started.elapsed().as_secs_f64(),
            requests,
            errors,
            rps: point.requests as f64,
            p95_ms: point.p95_ms,
            active_vus: point.active_vus,
            dropped: self.totals.dropped,
        });
    }
}
