//! The run summary: what SPEC's Results section lists, per step and overall, and the thresholds'
//! verdicts. The overall figures come from the merged step histograms, never from averaging.

use crate::config::threshold::Rule;
use crate::metrics::collector::{merged, Point};
use crate::metrics::{Latency, StepStats};
use crate::phase::{Phase, WorkerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Figures for one step or for the whole run. Latencies are in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepSummary {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    /// Percent of requests that failed.
    pub error_rate: f64,
    pub rps: f64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub bytes: u64,
    pub status_codes: BTreeMap<u16, u64>,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub check_failures: BTreeMap<String, u64>,
    /// The exact histogram (HDR V2 deflate, base64), so summaries can be merged later.
    pub histogram: Latency,
    /// The step's checks by label (the name failures are counted under).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
}

impl StepSummary {
    /// Summarizes `stats` measured over `seconds`.
    pub fn from_stats(name: &str, stats: &StepStats, seconds: f64) -> Self {
        let l = &stats.latency;
        StepSummary {
            name: name.to_string(),
            count: stats.count,
            errors: stats.errors,
            error_rate: if stats.count == 0 {
                0.0
            } else {
                stats.errors as f64 * 100.0 / stats.count as f64
            },
            rps: if seconds > 0.0 {
                stats.count as f64 / seconds
            } else {
                0.0
            },
            min: l.min_ms(),
            mean: l.mean_ms(),
            p50: l.quantile_ms(0.5),
            p90: l.quantile_ms(0.9),
            p95: l.quantile_ms(0.95),
            p99: l.quantile_ms(0.99),
            p99_9: l.quantile_ms(0.999),
            max: l.max_ms(),
            bytes: stats.bytes,
            status_codes: stats.status.clone(),
            checks_passed: stats.checks_passed,
            checks_failed: stats.checks_failed,
            errors_by_kind: stats.errors_by_kind.clone(),
            check_failures: stats.check_failures.clone(),
            histogram: l.clone(),
            checks: Vec::new(),
        }
    }

    /// The value a threshold metric names.
    pub fn metric(&self, name: &str) -> Option<f64> {
        Some(match name {
            "p50" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "p99.9" | "p999" => self.p99_9,
            "min" => self.min,
            "mean" | "avg" => self.mean,
            "max" => self.max,
            "error_rate" => self.error_rate,
            "rps" => self.rps,
            "count" => self.count as f64,
            "errors" => self.errors as f64,
            _ => return None,
        })
    }
}

/// One threshold's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    pub threshold: String,
    pub step: Option<String>,
    pub actual: Option<f64>,
    pub passed: bool,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub name: String,
    pub duration_s: f64,
    pub overall: StepSummary,
    pub steps: Vec<StepSummary>,
    /// Open-model arrivals that found every VU busy.
    pub dropped_iterations: u64,
    pub thresholds: Vec<ThresholdResult>,
    pub passed: bool,
    pub timeline: Vec<Point>,
    /// Distributed runs: one row per worker, its share and its own percentiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerSummary>,
    /// Distributed runs: spread of the workers' actual start instants, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_skew_ms: Option<f64>,
    /// Distributed runs: the run's final phase and what happened along the way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// The timeline second of each of `events` (same order), where the run record kept it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_seconds: Vec<u64>,
    /// `debug` captures: requests (failing ones unless `capture_only_failures: false`) with what
    /// the test asked to capture of them, the first 100 of the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debug_samples: Vec<serde_json::Value>,
    /// Alerts the controller raised (`distributed.monitoring.alerting`), in order: each has its
    /// `rule` (`worker_failures`, `communication_issues`, `load_imbalance`, `saturation`), the
    /// `worker`, a `message`, when it fired (`at_ms`), and the webhooks that took it (`delivered`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<crate::metrics::monitor::Alert>,
    /// Distributed runs: load that a failed worker left and no running worker had the capacity
    /// (max_vus / max_rps) to take, so was not run: VUs, or arrivals per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<f64>,
}

/// One worker's part in a distributed run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerSummary {
    pub address: String,
    pub region: String,
    pub capacity: u32,
    /// VUs, or arrivals per second for the open model.
    pub planned: f64,
    pub state: WorkerState,
    pub count: u64,
    pub errors: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub clock_offset_ms: Option<f64>,
    pub error: Option<String>,
    /// VUs running at the worker's last answer.
    #[serde(default)]
    pub active_vus: u64,
    /// Requests per second over the worker's part: its count over its own elapsed seconds
    /// (`WorkerRun::average_rps`), not the last second's rate.
    #[serde(default)]
    pub rps: f64,
    /// When the worker last answered (controller clock, Unix ms).
    #[serde(default)]
    pub last_seen_ms: u64,
    /// Requests in the interval batches the controller merged from this worker (each batch once,
    /// by sequence number, across leader failovers). `count` is the worker's final totals once it
    /// finished; these are the same figures as pulled second by second, which the timeline and
    /// the live view are made of.
    #[serde(default)]
    pub merged_count: u64,
    /// Errors in the merged batches (see `merged_count`).
    #[serde(default)]
    pub merged_errors: u64,
    /// The sequence number this worker's batches were merged up to.
    #[serde(default)]
    pub merged_seq: u64,
    /// Requests in the worker's own final totals (`GET /results`), once it finished; `None` for a
    /// worker that never finished (failed, or still running).
    #[serde(default)]
    pub final_count: Option<u64>,
    /// Errors in the worker's final totals (see `final_count`).
    #[serde(default)]
    pub final_errors: Option<u64>,
    /// The worker's last batch sequence number as its final totals state it.
    #[serde(default)]
    pub final_seq: Option<u64>,
    /// Whether the merged batches equal the final totals, step by step (counts, errors, status
    /// codes, checks and latency histograms) and up to the same sequence number: `Some(true)` when
    /// every batch was merged exactly once, `Some(false)` when one was lost or merged twice (the
    /// run's events then say so too), `None` while there are no final totals to compare.
    #[serde(default)]
    pub merged_matches_final: Option<bool>,
    /// This worker's own seconds, on the run's timeline (for one line per worker in the report).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<WorkerPoint>,
    /// What the controller measured about this worker (see [`crate::metrics::monitor`]):
    /// `calls`/`failed_calls` and `rtt_last_ms`/`rtt_mean_ms`/`rtt_max_ms` of its control calls,
    /// `recent` calls, `resources` (last CPU/memory sample: `process_cpu_pct`, `host_cpu_pct`,
    /// `process_memory_bytes`, `host_memory_used_bytes`, `host_memory_total_bytes`, `saturated`),
    /// `peak_process_cpu_pct`, `peak_host_cpu_pct`, `samples`, `saturated_samples`,
    /// `planned_share_pct` vs `actual_share_pct`, `health` (state changes with `at_ms`), `logs_dropped`.
    #[serde(default)]
    pub monitor: crate::metrics::monitor::WorkerMonitor,
    /// This worker's own figures per step (the console's per-worker view).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<WorkerStep>,
    /// `Some(false)` for a TypeScript tool's worker (`ts+HOST:PORT`): its part was merged from its
    /// raw results, not from histograms, and the run's events say what could not be merged
    /// exactly. `None` for ours, whose histograms merge exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<bool>,
}

/// One second of one worker's part, as the controller merged its batches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerPoint {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    /// The p95 of this worker's batch (of the largest, when two batches fell into one second).
    pub p95_ms: f64,
    /// The batch's p50 and p99, taken like `p95_ms` (for the console's per-worker chart).
    #[serde(default)]
    pub p50_ms: f64,
    #[serde(default)]
    pub p99_ms: f64,
    /// Arrivals this worker made in this second (see `metrics::collector::Interval::arrivals`).
    #[serde(default)]
    pub arrivals: u64,
    /// Its share of the open model's target in this second; `None` for closed models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arrivals: Option<u64>,
}

/// One step's figures for one worker (its own totals; latencies in ms).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerStep {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl WorkerStep {
    /// One row per step, from a worker's per-step totals.
    pub fn rows(names: &[String], steps: &[StepStats]) -> Vec<WorkerStep> {
        names
            .iter()
            .zip(steps)
            .map(|(name, s)| WorkerStep {
                name: name.clone(),
                count: s.count,
                errors: s.errors,
                p50: s.latency.quantile_ms(0.5),
                p95: s.latency.quantile_ms(0.95),
                p99: s.latency.quantile_ms(0.99),
                max: s.latency.max_ms(),
            })
            .collect()
    }
}

impl WorkerPoint {
    /// Adds one batch's `steps` at `second` to a worker's points (seconds only move forward).
    pub fn add(points: &mut Vec<WorkerPoint>, second: u64, steps: &[StepStats]) {
        let all = merged(steps);
        let p95 = all.latency.quantile_ms(0.95);
        let (p50, p99) = (all.latency.quantile_ms(0.5), all.latency.quantile_ms(0.99));
        match points.last_mut() {
            Some(p) if p.second >= second => {
                p.requests += all.count;
                p.errors += all.errors;
                p.p95_ms = p.p95_ms.max(p95);
                p.p50_ms = p.p50_ms.max(p50);
                p.p99_ms = p.p99_ms.max(p99);
            }
            _ => points.push(WorkerPoint {
                second,
                requests: all.count,
                errors: all.errors,
                p95_ms: p95,
                p50_ms: p50,
                p99_ms: p99,
                arrivals: 0,
                target_arrivals: None,
            }),
        }
    }

    /// Adds one batch's arrivals (and target) to the point [`WorkerPoint::add`] placed it in.
    pub fn add_arrivals(
        points: &mut [WorkerPoint],
        second: u64,
        arrivals: u64,
        target: Option<u64>,
    ) {
        if let Some(p) = points.last_mut().filter(|p| p.second >= second) {
            p.arrivals += arrivals;
            p.target_arrivals = crate::metrics::collector::add_targets(p.target_arrivals, target);
        }
    }
}

impl RunSummary {
    /// Fails the verdict for reasons other than the thresholds (a step threshold's `fail_test` or
    /// `abort`, CSV `stop_test`): each is listed as a failed threshold without a step.
    pub fn fail_for(&mut self, reasons: &[String]) {
        for why in reasons {
            self.thresholds.push(ThresholdResult {
                threshold: why.clone(),
                step: None,
                actual: None,
                passed: false,
            });
            self.passed = false;
        }
    }

    /// Attaches each step's check labels from the test.
    pub fn with_checks(mut self, test: &crate::config::TestFile) -> Self {
        for (step, labels) in self.steps.iter_mut().zip(super::check_labels(test)) {
            step.checks = labels;
        }
        self
    }

    /// Builds the summary from per-step stats and checks the rules.
    pub fn build(
        name: &str,
        names: &[String],
        steps: &[StepStats],
        seconds: f64,
        dropped: u64,
        timeline: Vec<Point>,
        rules: &[Rule],
    ) -> Self {
        let overall = StepSummary::from_stats("overall", &merged(steps), seconds);
        let steps: Vec<StepSummary> = names
            .iter()
            .zip(steps)
            .map(|(n, s)| StepSummary::from_stats(n, s, seconds))
            .collect();
        let thresholds = evaluate(rules, &overall, &steps);
        RunSummary {
            name: name.to_string(),
            duration_s: seconds,
            passed: thresholds.iter().all(|t| t.passed),
            overall,
            steps,
            dropped_iterations: dropped,
            thresholds,
            timeline,
            workers: Vec::new(),
            start_skew_ms: None,
            phase: None,
            events: Vec::new(),
            event_seconds: Vec::new(),
            debug_samples: Vec::new(),
            alerts: Vec::new(),
            short: None,
        }
    }
}

/// Checks each rule against the overall figures or its step's. A rule naming a step that does not
/// exist fails, so a renamed step cannot silently disable a threshold.
pub fn evaluate(
    rules: &[Rule],
    overall: &StepSummary,
    steps: &[StepSummary],
) -> Vec<ThresholdResult> {
    rules
        .iter()
        .map(|r| {
            let target = match &r.step {
                None => Some(overall),
                Some(name) => steps.iter().find(|s| &s.name == name),
            };
            let actual = target.and_then(|t| t.metric(&r.metric));
            ThresholdResult {
                threshold: r.text.clone(),
                step: r.step.clone(),
                actual,
                passed: actual.is_some_and(|a| r.op.holds(a, r.value)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::threshold::parse;
    use crate::metrics::Sample;

    fn stats(latencies_ms: &[u64], errors: usize) -> StepStats {
        let mut s = StepStats::default();
        for (i, ms) in latencies_ms.iter().enumerate() {
            s.record(&Sample {
                step: 0,
                latency_us: ms * 1000,
                status: Some(if i < errors { 500 } else { 200 }),
                error: (i < errors).then(|| "status 500".into()),
                checks_passed: 1,
                failed_checks: vec![],
                bytes: 10,
            });
        }
        s
    }

    #[test]
    fn thresholds_pass_and_fail() {
        let a = stats(&[10; 100], 0);
        let b = stats(&[300; 100], 10);
        let names = vec!["fast".to_string(), "slow".to_string()];
        let rules = vec![
            parse("p95 < 500ms", None).unwrap(),
            parse("error_rate < 1%", None).unwrap(),
            parse("p95 < 100ms", Some("fast".into())).unwrap(),
            parse("p95 < 100ms", Some("missing".into())).unwrap(),
        ];
        let s = RunSummary::build("t", &names, &[a, b], 10.0, 0, vec![], &rules);
        assert_eq!(s.overall.count, 200);
        assert_eq!(s.overall.error_rate, 5.0);
        assert_eq!(s.overall.rps, 20.0);
        let verdicts: Vec<bool> = s.thresholds.iter().map(|t| t.passed).collect();
        assert_eq!(verdicts, [true, false, true, false]);
        assert!(!s.passed);
        // The overall p50 lies between the two steps' latencies: merged, not averaged.
        assert!(s.overall.p95 >= 299.0);
    }
}
