//! The test file's `outputs:` and `report:` at run time. One task per run receives the run's
//! closed one-second intervals (the engine's sink in `perfornium run`, the controller's merged
//! seconds in a distributed run: the same stream `-o DIR`'s `timeline.ndjson` is made of), turns
//! each second into one [`Record`] per step, and hands them to every enabled sink; at the end it
//! writes the summary to each and the HTML report. The load never waits for an output: intervals
//! are queued without a bound, and a slow or failing server (each request bounded by a 3 s
//! timeout) only delays the outputs; at the end, the process waits for their last tries.
//!
//! What one record is: one step over one second — count, errors, mean, p50/p90/p95/p99 and max in
//! ms, stamped with the run's start plus that second. Individual requests are not kept.

mod files;
mod net;

use crate::config::outputs::{Output, OutputKind, Report};
use crate::config::TestFile;
use crate::metrics::collector::Interval;
use crate::metrics::StepStats;
use crate::report::{RunSummary, StepSummary};
use serde::Serialize;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

/// An output that cannot be written at all (a file that cannot be created); servers that do not
/// answer are logged and retried instead.
#[derive(Debug, Error)]
pub enum OutputError {
    #[error("output file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("report {path}: {source}")]
    Report {
        path: String,
        source: std::io::Error,
    },
    #[error("the outputs task failed: {0}")]
    Task(String),
}

/// One step's figures over one second of the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Record {
    /// Unix ms: the run's start plus `second`.
    pub timestamp: u64,
    /// 1, 2, 3...: second k covers elapsed time (k-1, k].
    pub second: u64,
    pub step: String,
    pub count: u64,
    pub errors: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Record {
    fn new(timestamp: u64, second: u64, step: &str, s: &StepStats) -> Record {
        let l = &s.latency;
        Record {
            timestamp,
            second,
            step: step.to_string(),
            count: s.count,
            errors: s.errors,
            mean_ms: finite(l.mean_ms()),
            p50_ms: finite(l.quantile_ms(0.5)),
            p90_ms: finite(l.quantile_ms(0.9)),
            p95_ms: finite(l.quantile_ms(0.95)),
            p99_ms: finite(l.quantile_ms(0.99)),
            max_ms: finite(l.max_ms()),
        }
    }

    /// `(name, value)` of each figure, percentiles only when `percentiles`.
    pub fn fields(&self, percentiles: bool) -> Vec<(&'static str, Value)> {
        let mut v = vec![
            ("count", Value::Int(self.count)),
            ("errors", Value::Int(self.errors)),
            ("mean_ms", Value::Float(self.mean_ms)),
        ];
        let tail = [self.p50_ms, self.p90_ms, self.p95_ms, self.p99_ms];
        push_latency_tail(&mut v, percentiles, tail, self.max_ms);
        v
    }
}

/// Appends p50, p90, p95 and p99 (when `percentiles`) and then the maximum: the latency fields
/// that a per-second record and a summary line end with.
fn push_latency_tail(
    v: &mut Vec<(&'static str, Value)>,
    percentiles: bool,
    [p50, p90, p95, p99]: [f64; 4],
    max_ms: f64,
) {
    if percentiles {
        v.extend([
            ("p50_ms", Value::Float(p50)),
            ("p90_ms", Value::Float(p90)),
            ("p95_ms", Value::Float(p95)),
            ("p99_ms", Value::Float(p99)),
        ]);
    }
    v.push(("max_ms", Value::Float(max_ms)));
}

/// A figure: a count or a measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// A step's (or the whole run's) figures in the final summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    pub step: String,
    pub count: u64,
    pub errors: u64,
    /// Percent.
    pub error_rate: f64,
    pub rps: f64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Figures {
    fn of(step: &str, s: &StepSummary) -> Figures {
        Figures {
            step: step.to_string(),
            count: s.count,
            errors: s.errors,
            error_rate: finite(s.error_rate),
            rps: finite(s.rps),
            min_ms: finite(s.min),
            mean_ms: finite(s.mean),
            p50_ms: finite(s.p50),
            p90_ms: finite(s.p90),
            p95_ms: finite(s.p95),
            p99_ms: finite(s.p99),
            max_ms: finite(s.max),
        }
    }

    /// `(name, value)` of each figure, percentiles only when `percentiles`.
    pub fn fields(&self, percentiles: bool) -> Vec<(&'static str, Value)> {
        let mut v = vec![
            ("count", Value::Int(self.count)),
            ("errors", Value::Int(self.errors)),
            ("error_rate", Value::Float(self.error_rate)),
            ("rps", Value::Float(self.rps)),
            ("min_ms", Value::Float(self.min_ms)),
            ("mean_ms", Value::Float(self.mean_ms)),
        ];
        let tail = [self.p50_ms, self.p90_ms, self.p95_ms, self.p99_ms];
        push_latency_tail(&mut v, percentiles, tail, self.max_ms);
        v
    }
}

/// The run's summary as the outputs write it (the histograms of summary.json left out).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub test: String,
    pub run_id: String,
    /// Unix ms when the run ended.
    pub timestamp: u64,
    pub passed: bool,
    pub duration_s: f64,
    /// The whole run (`step: "all"`).
    pub overall: Figures,
    pub steps: Vec<Figures>,
    /// Failed thresholds, as written.
    pub failed_thresholds: Vec<String>,
}

impl Summary {
    fn of(s: &RunSummary, run_id: &str) -> Summary {
        Summary {
            test: s.name.clone(),
            run_id: run_id.to_string(),
            timestamp: crate::time::now_ms(),
            passed: s.passed,
            duration_s: s.duration_s,
            overall: Figures::of("all", &s.overall),
            steps: s.steps.iter().map(|st| Figures::of(&st.name, st)).collect(),
            failed_thresholds: s
                .thresholds
                .iter()
                .filter(|t| !t.passed)
                .map(|t| t.threshold.clone())
                .collect(),
        }
    }
}

/// What every sink is told about the run.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub test: String,
    pub run_id: String,
    /// Unix ms of second 0.
    pub start_ms: u64,
}

/// The run's start (Unix ms) as the records are stamped with it: when the outputs started, until
/// the caller knows better ([`Outputs::start_clock`]: a distributed run's agreed start instant).
#[derive(Debug, Clone)]
pub struct StartClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl StartClock {
    /// Stamps the records of seconds not yet written as counted from `unix_ms`.
    pub fn set(&self, unix_ms: u64) {
        self.0.store(unix_ms, std::sync::atomic::Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A running set of outputs: feed it intervals through [`Outputs::sender`], then [`Outputs::finish`].
pub struct Outputs {
    tx: mpsc::UnboundedSender<Interval>,
    clock: StartClock,
    done: oneshot::Sender<RunSummary>,
    task: JoinHandle<Result<(), OutputError>>,
}

/// Starts the test's enabled outputs and its report for run `run_id`, or `None` when it has
/// neither. Files are created now, so a path that cannot be written fails before the load starts.
pub fn start(test: &TestFile, run_id: &str) -> Result<Option<Outputs>, OutputError> {
    let enabled: Vec<&Output> = test.outputs.iter().filter(|o| o.enabled).collect();
    let report = test.report.clone().filter(|r| r.generate);
    if enabled.is_empty() && report.is_none() {
        return Ok(None);
    }
    let info = RunInfo {
        test: test.name.clone(),
        run_id: run_id.to_string(),
        start_ms: crate::time::now_ms(),
    };
    let names = unique(crate::engine::step_names(test));
    let mut sinks = Vec::new();
    for o in enabled {
        sinks.push(match o.kind {
            OutputKind::Json | OutputKind::Csv => {
                Sink::File(Box::new(files::FileSink::create(o, &info)?))
            }
            OutputKind::Influxdb => Sink::Influx(net::Influx::new(o, &info)),
            OutputKind::Graphite => Sink::Graphite(net::Graphite::new(o, &info)),
            OutputKind::Webhook => Sink::Webhook(net::Webhook::new(o, &info)),
        });
    }
    let report_path = match &report {
        Some(r) => Some(prepare_report(r, &test.name)?),
        None => None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (done, done_rx) = oneshot::channel();
    let clock = StartClock(std::sync::Arc::new(info.start_ms.into()));
    let task = tokio::spawn(run_sinks(
        info,
        clock.clone(),
        names,
        sinks,
        rx,
        done_rx,
        report.zip(report_path),
    ));
    Ok(Some(Outputs {
        tx,
        clock,
        done,
        task,
    }))
}

impl Outputs {
    /// Where the run's closed seconds go (the engine's `sink`, or the controller's merged seconds).
    pub fn sender(&self) -> mpsc::UnboundedSender<Interval> {
        self.tx.clone()
    }

    /// Sets the instant second 0 is counted from (default: when the outputs started).
    pub fn start_clock(&self) -> StartClock {
        self.clock.clone()
    }

    /// Writes the last seconds, the summary and the report, and waits until every sink is done
    /// (a server that still refuses gets one more try, then its points are logged as lost).
    pub async fn finish(self, summary: &RunSummary) -> Result<(), OutputError> {
        drop(self.tx);
        let _ = self.done.send(summary.clone());
        self.task
            .await
            .map_err(|e| OutputError::Task(e.to_string()))?
    }
}

/// Step names made unique (`name`, `name#2`, ...) so two steps never share a series.
fn unique(names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    names
        .into_iter()
        .map(|n| {
            let k = seen.entry(n.clone()).or_default();
            *k += 1;
            if *k == 1 {
                n
            } else {
                format!("{n}#{k}")
            }
        })
        .collect()
}

/// `{{timestamp}}` (local time `YYYYMMDD-HHMMSS-mmm`), `{{timestamp:unix}}` (ms), `:iso` (UTC,
/// RFC 3339) and `:file` (the default) in a path.
pub fn expand_timestamp(path: &str) -> String {
    let now = chrono::Local::now();
    let re = regex::Regex::new(r"\{\{\s*timestamp(?::(\w+))?\s*\}\}").expect("a fixed pattern");
    re.replace_all(path, |c: &regex::Captures| {
        match c.get(1).map(|m| m.as_str()) {
            Some("unix") => now.timestamp_millis().to_string(),
            Some("iso") => now
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H-%M-%S%.3fZ")
                .to_string(),
            Some("readable") => now.format("%Y-%m-%d-%H-%M-%S").to_string(),
            _ => now.format("%Y%m%d-%H%M%S-%3f").to_string(),
        }
    })
    .into_owned()
}

/// Creates the report's directory now; returns the path it will be written to.
fn prepare_report(r: &Report, test: &str) -> Result<String, OutputError> {
    let path = expand_timestamp(&r.path(test));
    if let Some(dir) = std::path::Path::new(&path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| OutputError::Report {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(path)
}

enum Sink {
    File(Box<files::FileSink>),
    Influx(net::Influx),
    Graphite(net::Graphite),
    Webhook(net::Webhook),
}

impl Sink {
    async fn records(&mut self, recs: &[Record]) -> Result<(), OutputError> {
        match self {
            Sink::File(f) => f.records(recs),
            Sink::Influx(s) => {
                s.records(recs);
                Ok(())
            }
            Sink::Graphite(s) => {
                s.records(recs);
                Ok(())
            }
            Sink::Webhook(_) => Ok(()),
        }
    }

    async fn tick(&mut self) {
        match self {
            Sink::Influx(s) => s.flush_if_due().await,
            Sink::Graphite(s) => s.flush_if_due().await,
            Sink::File(_) | Sink::Webhook(_) => {}
        }
    }

    async fn finish(&mut self, summary: &Summary) -> Result<(), OutputError> {
        match self {
            Sink::File(f) => f.finish(summary),
            Sink::Influx(s) => {
                s.finish(summary).await;
                Ok(())
            }
            Sink::Graphite(s) => {
                s.finish(summary).await;
                Ok(())
            }
            Sink::Webhook(s) => {
                s.finish(summary).await;
                Ok(())
            }
        }
    }
}

/// Seconds of one step set not yet handed on: intervals of the same second are merged first (a
/// run's last, short interval belongs to its last second), so every second is written once.
struct Pending {
    second: u64,
    steps: Vec<StepStats>,
}

fn to_records(info: &RunInfo, names: &[String], p: &Pending) -> Vec<Record> {
    let ts = info.start_ms + p.second * 1000;
    p.steps
        .iter()
        .zip(names)
        .filter(|(s, _)| s.count > 0)
        .map(|(s, n)| Record::new(ts, p.second, n, s))
        .collect()
}

async fn run_sinks(
    mut info: RunInfo,
    clock: StartClock,
    names: Vec<String>,
    mut sinks: Vec<Sink>,
    mut rx: mpsc::UnboundedReceiver<Interval>,
    mut done: oneshot::Receiver<RunSummary>,
    report: Option<(Report, String)>,
) -> Result<(), OutputError> {
    let mut pending: Option<Pending> = None;
    let mut first_error: Option<OutputError> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    let summary = loop {
        tokio::select! {
            iv = rx.recv(), if open => match iv {
                Some(iv) => {
                    info.start_ms = clock.get();
                    if let Some(done) = absorb(&mut pending, iv, names.len()) {
                        hand_on(&mut sinks, &to_records(&info, &names, &done), &mut first_error).await;
                    }
                }
                None => open = false,
            },
            s = &mut done => match s {
                Ok(s) => break Some(s),
                Err(_) => break None,
            },
            _ = tick.tick() => {
                for s in &mut sinks {
                    s.tick().await;
                }
            }
        }
    };
    info.start_ms = clock.get();
    while let Ok(iv) = rx.try_recv() {
        if let Some(done) = absorb(&mut pending, iv, names.len()) {
            hand_on(
                &mut sinks,
                &to_records(&info, &names, &done),
                &mut first_error,
            )
            .await;
        }
    }
    if let Some(p) = pending.take() {
        hand_on(&mut sinks, &to_records(&info, &names, &p), &mut first_error).await;
    }
    let Some(summary) = summary else {
        warn!(run_id = %info.run_id, "outputs: the run ended without a summary");
        return first_error.map_or(Ok(()), Err);
    };
    let brief = Summary::of(&summary, &info.run_id);
    for s in &mut sinks {
        if let Err(e) = s.finish(&brief).await {
            first_error.get_or_insert(e);
        }
    }
    if let Some((r, path)) = report {
        let title = r.title.as_deref().unwrap_or(&summary.name);
        let html = crate::report::html::render_titled(&summary, title, r.description.as_deref());
        match std::fs::write(&path, html) {
            Ok(()) => tracing::info!(path = %path, "report written"),
            Err(source) => {
                first_error.get_or_insert(OutputError::Report { path, source });
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Adds `iv` to the pending second; returns the previous second when `iv` starts a new one.
fn absorb(pending: &mut Option<Pending>, iv: Interval, steps: usize) -> Option<Pending> {
    let second = iv.second();
    match pending {
        Some(p) if second <= p.second => {
            for (acc, s) in p.steps.iter_mut().zip(&iv.steps) {
                acc.merge(s);
            }
            None
        }
        _ => {
            let mut fresh = vec![StepStats::default(); steps];
            for (acc, s) in fresh.iter_mut().zip(&iv.steps) {
                acc.merge(s);
            }
            pending.replace(Pending {
                second,
                steps: fresh,
            })
        }
    }
}

async fn hand_on(sinks: &mut [Sink], recs: &[Record], first_error: &mut Option<OutputError>) {
    if recs.is_empty() {
        return;
    }
    for s in sinks.iter_mut() {
        if let Err(e) = s.records(recs).await {
            warn!("{e}");
            first_error.get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Sample;

    fn iv(seq: u64, elapsed_s: f64, counts: &[u64]) -> Interval {
        Interval {
            seq,
            elapsed_s,
            steps: counts
                .iter()
                .map(|&n| {
                    let mut s = StepStats::default();
                    for _ in 0..n {
                        s.record(&Sample {
                            step: 0,
                            latency_us: 1_000,
                            status: Some(200),
                            error: None,
                            checks_passed: 0,
                            failed_checks: Vec::new(),
                            bytes: 0,
                        });
                    }
                    s
                })
                .collect(),
            active_vus: 1,
            dropped: 0,
            arrivals: 0,
            target_arrivals: None,
        }
    }

    #[test]
    fn a_second_split_in_two_intervals_is_one_record_per_step() {
        let mut p = None;
        assert!(absorb(&mut p, iv(1, 1.01, &[3, 1]), 2).is_none());
        let first = absorb(&mut p, iv(2, 2.01, &[2, 0]), 2).expect("second 1 done");
        assert_eq!(first.second, 1);
        // The run's last, short interval closes in the same second.
        assert!(absorb(&mut p, iv(3, 2.2, &[5, 1]), 2).is_none());
        let last = p.take().unwrap();
        assert_eq!(last.second, 2);
        let info = RunInfo {
            test: "t".into(),
            run_id: "r".into(),
            start_ms: 1_000_000,
        };
        let recs = to_records(&info, &["a".into(), "b".into()], &last);
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].count, recs[1].count), (7, 1));
        assert_eq!(recs[0].timestamp, 1_002_000);
    }

    #[test]
    fn duplicate_step_names_get_a_suffix() {
        assert_eq!(
            unique(vec!["a".into(), "b".into(), "a".into()]),
            vec!["a", "b", "a#2"]
        );
    }

    #[test]
    fn timestamp_placeholders_are_expanded() {
        let p = expand_timestamp("r-{{timestamp}}.json");
        assert!(!p.contains("{{"), "{p}");
        assert_eq!(p.len(), "r-20261129-185012-345.json".len(), "{p}");
        assert!(expand_timestamp("{{timestamp:unix}}")
            .parse::<u64>()
            .is_ok());
    }
}
