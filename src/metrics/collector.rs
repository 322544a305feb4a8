//! The collector task: VUs record each request's [`Sample`] through a [`Recorder`] into the
//! [`StepStats`] of their thread's shard (no message and no wake-up per request); every second the
//! collector merges the shards into an [`Interval`] (one [`StepStats`] per step), adds it to the
//! run's totals, appends a [`Point`] to the timeline, publishes a [`Live`] view for progress
//! displays, and hands the interval to an optional sink (a worker keeps them for its controller).
//! Merges are exact, so the figures are those of recording every sample in one place. The
//! recorders' channel carries nothing: its closing (every recorder dropped) tells the collector that
//! every VU is done.

use super::{Sample, StepStats};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// One second (or the final fraction of one) of measurements.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Interval {
    /// 1, 2, 3... in the order the intervals were closed.
    pub seq: u64,
    /// Seconds since the run started when this interval closed.
    pub elapsed_s: f64,
    pub steps: Vec<StepStats>,
    pub active_vus: u64,
    /// Arrivals that could not start in this interval (open model only).
    pub dropped: u64,
    /// Arrivals made in this interval: iterations a closed-model VU started, or arrivals of the
    /// open model that started (found a free VU), each counted when its first step begins. Absent
    /// (0) in batches of older workers and of the TypeScript tool's.
    #[serde(default)]
    pub arrivals: u64,
    /// The open model's target in this interval: the arrivals its schedule made due (started,
    /// dropped or skipped while paused). `None` for closed models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arrivals: Option<u64>,
}

impl Interval {
    /// The second of the run this interval belongs to; see [`second_of`].
    pub fn second(&self) -> u64 {
        second_of(self.elapsed_s)
    }
}

/// The timeline second (1, 2, 3...; second k covers elapsed time (k-1, k]) of an interval closed
/// `elapsed_s` after the start. Intervals are closed once a second, each a little after its whole
/// second, so an interval is placed by its middle, half a second before it closed; the short
/// remainder closed when the run ends (the requests that were in flight) falls into the last
/// second, not a new one. `ceil(elapsed_s)` put every interval one second late: no second 1, and
/// the remainder doubled the last second.
pub fn second_of(elapsed_s: f64) -> u64 {
    (elapsed_s - 0.5).ceil().max(1.0) as u64
}

/// One line of the per-second timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub active_vus: u64,
    pub dropped: u64,
    /// Arrivals made in this second (see [`Interval::arrivals`]).
    #[serde(default)]
    pub arrivals: u64,
    /// The open model's target arrivals in this second (see [`Interval::target_arrivals`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arrivals: Option<u64>,
    pub p50_ms: f64,
    #[serde(default)]
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Per step: (requests, errors, p50, p95, p99).
    pub steps: Vec<StepPoint>,
    /// Responses by HTTP status code in this second (all steps).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub status: std::collections::BTreeMap<u16, u64>,
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
            second: iv.second(),
            requests: all.count,
            errors: all.errors,
            active_vus: iv.active_vus,
            dropped: iv.dropped,
            arrivals: iv.arrivals,
            target_arrivals: iv.target_arrivals,
            p50_ms: all.latency.quantile_ms(0.5),
            p90_ms: all.latency.quantile_ms(0.9),
            p95_ms: all.latency.quantile_ms(0.95),
            p99_ms: all.latency.quantile_ms(0.99),
            status: all.status.clone(),
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

/// The sum of two targets; `None` only when neither has one (a closed model's).
pub fn add_targets(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
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

/// What one thread's VUs recorded since the collector last merged it.
#[derive(Default)]
struct Shard {
    /// By step, allocated when the step is first recorded on this shard.
    steps: Vec<Option<StepStats>>,
    start_lag: Option<super::Latency>,
    /// Whether anything was recorded since the last merge.
    dirty: bool,
    /// Raw samples on their way to the run's writer (`format.raw_data`; see [`super::raw`]).
    raw: Option<super::raw::RawBuffer>,
}

/// VUs' handle on the collector: records samples and start lags into the calling thread's shard.
#[derive(Clone)]
pub struct Recorder {
    shards: Arc<[Mutex<Shard>]>,
    /// Never sent on: closed when the last recorder is dropped.
    _open: mpsc::UnboundedSender<()>,
}

impl Recorder {
    /// The calling thread's shard.
    fn shard(&self) -> std::sync::MutexGuard<'_, Shard> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        let i = INDEX.with(|i| *i) % self.shards.len();
        self.shards[i].lock().expect("metrics shard lock")
    }

    /// Records one request.
    pub fn record(&self, s: &Sample) {
        self.record_by(None, s)
    }

    /// Records one request sent by VU `vu` (named in raw samples).
    pub fn record_by(&self, vu: Option<u64>, s: &Sample) {
        let mut shard = self.shard();
        if let Some(raw) = shard.raw.as_mut() {
            raw.push(vu, s);
        }
        shard.dirty = true;
        if shard.steps.len() <= s.step {
            shard.steps.resize_with(s.step + 1, || None);
        }
        shard.steps[s.step]
            .get_or_insert_with(StepStats::default)
            .record(s);
    }

    /// Also keeps every sample from now on, handed in batches to `sink` (`format.raw_data`).
    pub fn spool(&self, sink: &super::raw::RawSink) {
        for shard in self.shards.iter() {
            shard.lock().expect("metrics shard lock").raw =
                Some(super::raw::RawBuffer::new(sink.clone()));
        }
    }

    /// Records how late a VU started a request it meant to start at a given instant: the end of a
    /// think time, an arrival's due time (the scheduler's delay, kept in [`Totals::start_lag`]).
    pub fn start_lag(&self, lag: Duration) {
        let mut shard = self.shard();
        shard.dirty = true;
        shard
            .start_lag
            .get_or_insert_with(super::Latency::new)
            .record_us(lag.as_micros() as u64);
    }
}

/// Counters the engine updates directly.
#[derive(Debug, Default)]
pub struct Gauges {
    pub active_vus: AtomicU64,
    pub dropped: AtomicU64,
    /// Arrivals made so far (see [`Interval::arrivals`]).
    pub arrivals: AtomicU64,
    /// The open model's arrivals due so far (see [`Interval::target_arrivals`]).
    pub due: AtomicU64,
    /// Set once an open-model schedule runs: the intervals carry its target from then on.
    pub open: std::sync::atomic::AtomicBool,
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
    /// The lag of intended starts over the run (see [`Recorder::start_lag`]).
    pub start_lag: super::Latency,
}

/// The collector's inputs and outputs; see the module comment.
pub struct Collector {
    rx: mpsc::UnboundedReceiver<()>,
    shards: Arc<[Mutex<Shard>]>,
    gauges: Arc<Gauges>,
    sink: Option<mpsc::UnboundedSender<Interval>>,
    live: watch::Sender<Live>,
    current: Vec<StepStats>,
    /// The steps of the timeline's last point, for a remainder that belongs to the same second.
    last: Vec<StepStats>,
    totals: Totals,
    seq: u64,
    started: Instant,
    dropped_seen: u64,
    arrivals_seen: u64,
    due_seen: u64,
}

impl Collector {
    /// A collector for `steps` HTTP steps; returns it with the recorder VUs record into.
    pub fn new(
        steps: usize,
        gauges: Arc<Gauges>,
        sink: Option<mpsc::UnboundedSender<Interval>>,
        live: watch::Sender<Live>,
    ) -> (Self, Recorder) {
        let (tx, rx) = mpsc::unbounded_channel();
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards: Arc<[Mutex<Shard>]> = (0..threads).map(|_| Mutex::default()).collect();
        let empty = vec![StepStats::default(); steps];
        let totals = Totals {
            steps: empty.clone(),
            timeline: Vec::new(),
            dropped: 0,
            elapsed: Duration::ZERO,
            start_lag: super::Latency::new(),
        };
        let recorder = Recorder {
            shards: shards.clone(),
            _open: tx,
        };
        let c = Collector {
            rx,
            shards,
            gauges,
            sink,
            live,
            current: empty.clone(),
            last: empty,
            totals,
            seq: 0,
            started: Instant::now(),
            dropped_seen: 0,
            arrivals_seen: 0,
            due_seen: 0,
        };
        (c, recorder)
    }

    /// Runs until every sender is dropped, then closes the last partial interval.
    pub async fn run(mut self) -> Totals {
        // Ticks fall on the whole seconds since `started`, the instant elapsed times count from.
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::from_std(self.started) + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.rx.recv() => break,
                _ = tick.tick() => {
                    self.merge_shards();
                    self.close_interval(self.started.elapsed().as_secs_f64());
                }
            }
        }
        self.merge_shards();
        self.close_interval(self.started.elapsed().as_secs_f64());
        self.totals.elapsed = self.started.elapsed();
        let lag = &self.totals.start_lag;
        if lag.count() > 0 {
            tracing::info!(
                count = lag.count(),
                p50_ms = lag.quantile_ms(0.5),
                p99_ms = lag.quantile_ms(0.99),
                max_ms = lag.max_ms(),
                "start lag: how late VUs started requests they meant to start at a given instant"
            );
        }
        self.totals
    }

    /// Moves what every shard recorded into the open interval (and the start lags into the totals).
    fn merge_shards(&mut self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().expect("metrics shard lock");
            if let Some(raw) = shard.raw.as_mut() {
                raw.flush();
            }
            if !std::mem::take(&mut shard.dirty) {
                continue;
            }
            for (cur, s) in self.current.iter_mut().zip(shard.steps.iter_mut()) {
                if let Some(s) = s.as_mut().filter(|s| s.count > 0) {
                    cur.merge(s);
                    s.reset();
                }
            }
            if let Some(lag) = shard.start_lag.as_mut() {
                self.totals
                    .start_lag
                    .merge(lag)
                    .expect("histograms share fixed bounds");
                lag.reset();
            }
        }
    }

    /// Closes the interval ending `elapsed_s` seconds after the start.
    fn close_interval(&mut self, elapsed_s: f64) {
        self.seq += 1;
        let dropped_now = self.gauges.dropped.load(Ordering::Relaxed);
        let arrivals_now = self.gauges.arrivals.load(Ordering::Relaxed);
        let due_now = self.gauges.due.load(Ordering::Relaxed);
        let iv = Interval {
            seq: self.seq,
            elapsed_s,
            steps: self.current.clone(),
            active_vus: self.gauges.active_vus.load(Ordering::Relaxed),
            dropped: dropped_now - self.dropped_seen,
            arrivals: arrivals_now - self.arrivals_seen,
            target_arrivals: self
                .gauges
                .open
                .load(Ordering::Relaxed)
                .then(|| due_now - self.due_seen),
        };
        self.dropped_seen = dropped_now;
        self.arrivals_seen = arrivals_now;
        self.due_seen = due_now;
        for (total, cur) in self.totals.steps.iter_mut().zip(&self.current) {
            total.merge(cur);
        }
        self.totals.dropped = dropped_now;
        // One point per second: an interval placed in the last point's second (the run's short
        // remainder) is merged into that point. Seconds only move forward.
        let second = iv.second();
        let point = match self.totals.timeline.last() {
            Some(prev) if second <= prev.second => {
                for (acc, cur) in self.last.iter_mut().zip(&iv.steps) {
                    acc.merge(cur);
                }
                let whole = Interval {
                    elapsed_s: prev.second as f64,
                    steps: self.last.clone(),
                    dropped: prev.dropped + iv.dropped,
                    arrivals: prev.arrivals + iv.arrivals,
                    target_arrivals: add_targets(prev.target_arrivals, iv.target_arrivals),
                    ..iv.clone()
                };
                self.totals.timeline.pop();
                Point::from_interval(&whole)
            }
            _ => {
                self.last.clone_from(&iv.steps);
                Point::from_interval(&iv)
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(step: usize) -> Sample {
        Sample {
            step,
            latency_us: 3_000,
            status: Some(200),
            error: None,
            checks_passed: 0,
            failed_checks: vec![],
            bytes: 10,
        }
    }

    fn collector() -> Collector {
        let (live, _) = watch::channel(Live::default());
        Collector::new(2, Arc::new(Gauges::default()), None, live).0
    }

    /// Records `n` requests into the open interval.
    fn requests(c: &mut Collector, n: u64) {
        for i in 0..n {
            c.current[(i % 2) as usize].record(&sample((i % 2) as usize));
        }
    }

    #[test]
    fn arrivals_and_the_open_models_target_add_up_over_the_timeline() {
        let mut c = collector();
        for k in 1..=3 {
            c.gauges.arrivals.fetch_add(10, Ordering::Relaxed);
            c.close_interval(k as f64 + 0.003);
        }
        // The run's remainder falls into its last second.
        c.gauges.arrivals.fetch_add(2, Ordering::Relaxed);
        c.close_interval(3.02);
        let arrivals: Vec<u64> = c.totals.timeline.iter().map(|p| p.arrivals).collect();
        assert_eq!(arrivals, [10, 10, 12]);
        assert!(c
            .totals
            .timeline
            .iter()
            .all(|p| p.target_arrivals.is_none()));
        // An open-model phase: 5 due, 4 made (1 dropped).
        c.gauges.open.store(true, Ordering::Relaxed);
        c.gauges.due.fetch_add(5, Ordering::Relaxed);
        c.gauges.arrivals.fetch_add(4, Ordering::Relaxed);
        c.gauges.dropped.fetch_add(1, Ordering::Relaxed);
        c.close_interval(4.003);
        let last = c.totals.timeline.last().unwrap();
        assert_eq!(
            (last.arrivals, last.target_arrivals, last.dropped),
            (4, Some(5), 1)
        );
    }

    #[test]
    fn a_run_of_n_seconds_has_n_rows_from_second_1() {
        // 10 s at 100 req/s: the ticks close each second a little late, then the run's end closes a
        // short remainder (the requests in flight) a few ms after the last tick.
        let mut c = collector();
        for k in 1..=10 {
            requests(&mut c, 100);
            c.close_interval(k as f64 + 0.003);
        }
        requests(&mut c, 7);
        c.close_interval(10.02);
        let t = &c.totals.timeline;
        let seconds: Vec<u64> = t.iter().map(|p| p.second).collect();
        assert_eq!(seconds, (1..=10).collect::<Vec<_>>());
        assert_eq!(t.iter().map(|p| p.requests).sum::<u64>(), 1_007);
        assert_eq!(t[0].requests, 100);
        assert_eq!(
            t[9].requests, 107,
            "the remainder belongs to the last second"
        );
        assert_eq!(merged(&c.totals.steps).count, 1_007);
        // The local summary is built from these totals: its timeline adds up to its count.
        let names = ["a".to_string(), "b".to_string()];
        let s = crate::report::RunSummary::build(
            "t",
            &names,
            &c.totals.steps,
            10.02,
            0,
            c.totals.timeline.clone(),
            &[],
        );
        let on_timeline: u64 = s.timeline.iter().map(|p| p.requests).sum();
        assert_eq!(on_timeline, s.overall.count);
    }
}
