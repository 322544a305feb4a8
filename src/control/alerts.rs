//! Alerts of a distributed run: the rules of `distributed.monitoring.alerting` checked after every
//! round of pulls against what the controller measured per worker ([`WorkerMonitor`]), and their
//! delivery to webhooks.
//!
//! Rules: `worker_failures` (a worker marked failed), `communication_issues` (mean round trip of
//! the worker's control calls over `window` above `latency_threshold`, or more than
//! `error_rate_pct` of them failed), `load_imbalance` (its share of the requests off its planned
//! share by more than `imbalance_tolerance_pct` of the planned share), `saturation` (process or
//! host CPU at or above `cpu_saturation_pct`). A condition must hold for `window` (a failure fires
//! at once). Each (rule, worker) fires at most once per run.
//!
//! Delivery guarantee: **at least once, with an idempotency key**. An alert is written into the
//! run record — through raft on a master — before any webhook is called; a driver sends only after
//! the save succeeded, and marks each webhook that answered 2xx in the record, saved on the next
//! save. A new leader resumes from the saved record and sends what is recorded and not marked. A
//! leader that dies after a webhook's 2xx and before that mark is saved makes the next leader send
//! it again: no protocol can close that gap without the receiver's help, so every request carries
//! `Idempotency-Key: <alert id>` (`<run id>/<rule>/<worker>`) and the JSON body its `id`, for the
//! receiver to drop repeats. Without a failover each webhook gets each alert once.

use super::run::{RunRecord, WorkerState};
use crate::config::monitoring::{Alerting, Monitoring, Webhook, WebhookFormat};
use crate::metrics::monitor::Alert;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What monitoring keeps for the whole run (record field `monitoring`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMonitoring {
    /// Alerts raised, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
    /// The run's central log stream.
    #[serde(default)]
    pub log: super::logs::RunLog,
}

/// Fewest requests in the run before shares are compared (a run's first requests say little).
const MIN_REQUESTS_FOR_SHARES: u64 = 20;

/// Updates each worker's planned and actual share. Shares are among the workers producing load
/// now (not failed, not idle), from their requests so far.
pub fn update_shares(rec: &mut RunRecord) {
    let producing = |s: WorkerState| s != WorkerState::Failed && s != WorkerState::Idle;
    let planned: Vec<u64> = rec
        .workers
        .iter()
        .map(|w| super::plan::units(&w.load) + w.extra_units)
        .collect();
    let counts: Vec<u64> = rec
        .workers
        .iter()
        .map(|w| w.totals().iter().map(|s| s.count).sum())
        .collect();
    let (mut p_total, mut c_total) = (0u64, 0u64);
    for (i, w) in rec.workers.iter().enumerate() {
        if producing(w.state) {
            p_total += planned[i];
            c_total += counts[i];
        }
    }
    for (i, w) in rec.workers.iter_mut().enumerate() {
        if !producing(w.state) || p_total == 0 {
            w.monitor.planned_share_pct = None;
            w.monitor.actual_share_pct = None;
            continue;
        }
        w.monitor.planned_share_pct = Some(planned[i] as f64 * 100.0 / p_total as f64);
        w.monitor.actual_share_pct =
            (c_total > 0).then(|| counts[i] as f64 * 100.0 / c_total as f64);
    }
}

/// Checks the rules at `now_ms`; new alerts are appended to the record and their messages
/// returned (the driver makes each a run event).
pub fn evaluate(rec: &mut RunRecord, now_ms: u64) -> Vec<String> {
    let Some(rules) = Monitoring::of(&rec.test).and_then(|m| m.alerting().cloned()) else {
        return Vec::new();
    };
    let total: u64 = rec
        .workers
        .iter()
        .map(|w| w.totals().iter().map(|s| s.count).sum::<u64>())
        .sum();
    let window = rules.window_ms();
    let mut fired = Vec::new();
    for i in 0..rec.workers.len() {
        let addr = rec.workers[i].addr.addr();
        let w = &mut rec.workers[i];
        let mut candidates: Vec<(&str, String)> = Vec::new();
        if rules.worker_failures && w.state == WorkerState::Failed {
            let why = w.error.clone().unwrap_or_default();
            candidates.push(("worker_failures", format!("worker {addr} failed: {why}")));
        }
        let active = w.is_active();
        let slow = active && communication_issue(&rules, w, now_ms);
        if held(&mut w.monitor.slow_since_ms, slow, now_ms, window).is_some() {
            let (mean, failed, n) = w.monitor.window(now_ms.saturating_sub(window));
            candidates.push((
                "communication_issues",
                format!(
                    "worker {addr}: control calls average {mean:.0} ms (threshold {:.0} ms), {failed:.0}% failed (threshold {}%) over the last {n} calls",
                    rules.latency_threshold_ms(),
                    rules.error_rate()
                ),
            ));
        }
        let off = match (w.monitor.planned_share_pct, w.monitor.actual_share_pct) {
            (Some(p), Some(a)) if p > 0.0 && active && total >= MIN_REQUESTS_FOR_SHARES => {
                Some((p, a, (a - p).abs() * 100.0 / p))
            }
            _ => None,
        };
        let imbalanced = off.is_some_and(|(_, _, dev)| dev > rules.imbalance_tolerance());
        if held(
            &mut w.monitor.imbalanced_since_ms,
            imbalanced,
            now_ms,
            window,
        )
        .is_some()
        {
            let (p, a, dev) = off.unwrap_or_default();
            candidates.push((
                "load_imbalance",
                format!(
                    "worker {addr}: {a:.1}% of the requests against a planned {p:.1}% ({dev:.0}% off, tolerance {}%)",
                    rules.imbalance_tolerance()
                ),
            ));
        }
        let hot = active
            && w.monitor
                .resources
                .is_some_and(|r| r.above(rules.cpu_saturation()));
        if rules.saturation
            && held(&mut w.monitor.saturated_since_ms, hot, now_ms, window).is_some()
        {
            let r = w.monitor.resources.unwrap_or_default();
            candidates.push((
                "saturation",
                format!(
                    "worker {addr} is saturated: process CPU {:.0}%, host CPU {:.0}% (threshold {}%); its latencies include its own queueing",
                    r.process_cpu_pct,
                    r.host_cpu_pct,
                    rules.cpu_saturation()
                ),
            ));
        }
        for (rule, message) in candidates {
            let on = match rule {
                "communication_issues" => rules.communication_issues,
                "load_imbalance" => rules.load_imbalance,
                _ => true,
            };
            let id = format!("{}/{rule}/{addr}", rec.id);
            if !on || rec.monitoring.alerts.iter().any(|a| a.id == id) {
                continue;
            }
            fired.push(format!("alert {rule}: {message}"));
            rec.monitoring.alerts.push(Alert {
                id,
                rule: rule.into(),
                worker: Some(addr.clone()),
                message,
                at_ms: now_ms,
                delivered: Vec::new(),
            });
        }
    }
    fired
}

fn communication_issue(rules: &Alerting, w: &super::run::WorkerRun, now_ms: u64) -> bool {
    let (mean, failed, n) = w.monitor.window(now_ms.saturating_sub(rules.window_ms()));
    n > 0 && (mean > rules.latency_threshold_ms() || failed > rules.error_rate())
}

/// Tracks since when a condition holds; `Some` once it has held for `window_ms`.
fn held(since: &mut Option<u64>, now_true: bool, now_ms: u64, window_ms: u64) -> Option<()> {
    if !now_true {
        *since = None;
        return None;
    }
    let start = *since.get_or_insert(now_ms);
    (now_ms.saturating_sub(start) >= window_ms).then_some(())
}

/// The body `hook` gets for `alert` of run `rec`.
pub fn body(hook: &Webhook, rec: &RunRecord, alert: &Alert) -> serde_json::Value {
    match hook.format {
        WebhookFormat::Json => serde_json::json!({
            "id": alert.id,
            "run_id": rec.id,
            "test": rec.test.name,
            "rule": alert.rule,
            "worker": alert.worker,
            "message": alert.message,
            "at_ms": alert.at_ms,
        }),
        WebhookFormat::Slack => serde_json::json!({
            "text": format!(":rotating_light: Perfornium run `{}` ({}): {}", rec.id, rec.test.name, alert.message),
        }),
    }
}

/// Sends every recorded alert not yet delivered to each webhook; returns (alert index, URL) for
/// each 2xx, for the caller to mark in the record. Failures are retried on the next call.
pub async fn deliver(http: &reqwest::Client, rec: &RunRecord) -> Vec<(usize, String)> {
    let Some(rules) = Monitoring::of(&rec.test).and_then(|m| m.alerting().cloned()) else {
        return Vec::new();
    };
    let mut done = Vec::new();
    for (i, alert) in rec.monitoring.alerts.iter().enumerate() {
        for hook in &rules.webhooks {
            if alert.delivered.contains(&hook.url) {
                continue;
            }
            let sent = http
                .post(&hook.url)
                .header("idempotency-key", &alert.id)
                .timeout(Duration::from_secs(2))
                .json(&body(hook, rec, alert))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => done.push((i, hook.url.clone())),
                Ok(r) => {
                    tracing::warn!(alert = %alert.id, url = %hook.url, status = r.status().as_u16(), "webhook refused the alert; sending it again later")
                }
                Err(e) => {
                    tracing::warn!(alert = %alert.id, url = %hook.url, "webhook unreachable, sending the alert again later: {e}")
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::plan::Strategy;
    use crate::control::workers::parse_list;
    use crate::metrics::StepStats;

    const TEST: &str = "name: t\nglobal:\n  base_url: \"http://127.0.0.1:1\"\nload:\n  pattern: basic\n  virtual_users: 20\n  duration: 12s\nscenarios:\n  - name: s\n    steps:\n      - name: list\n        path: /users\ndistributed:\n  monitoring:\n    alerting:\n      load_imbalance: true\n      communication_issues: true\n      fail_run: true\n      imbalance_tolerance_pct: 30\n      latency_threshold: 100ms\n      window: 2s\n";

    fn record() -> RunRecord {
        let test = crate::config::from_str(TEST).unwrap();
        let workers = parse_list("127.0.0.1:8101,127.0.0.1:8102").unwrap();
        let mut rec = crate::control::submit::new_record(
            "r".into(),
            test,
            &workers,
            Some(Strategy::Even),
            false,
        )
        .unwrap();
        for w in &mut rec.workers {
            w.state = WorkerState::Running;
        }
        rec
    }

    fn count(rec: &mut RunRecord, w: usize, n: u64) {
        rec.workers[w].merged = vec![StepStats {
            count: n,
            ..Default::default()
        }];
    }

    #[test]
    fn an_imbalance_fires_once_after_the_window_and_fails_the_run_when_asked() {
        let mut rec = record();
        count(&mut rec, 0, 80);
        count(&mut rec, 1, 20);
        update_shares(&mut rec);
        assert_eq!(rec.workers[1].monitor.planned_share_pct, Some(50.0));
        assert_eq!(rec.workers[1].monitor.actual_share_pct, Some(20.0));
        // Off by 60% of the plan, but not yet for the whole window.
        assert!(evaluate(&mut rec, 10_000).is_empty());
        assert!(evaluate(&mut rec, 11_000).is_empty());
        let fired = evaluate(&mut rec, 12_000);
        assert_eq!(fired.len(), 2, "both workers are off plan: {fired:?}");
        assert!(evaluate(&mut rec, 13_000).is_empty(), "once per run");
        let s = rec.summary();
        assert_eq!(s.alerts.len(), 2);
        assert!(!s.passed);
        assert!(s
            .thresholds
            .iter()
            .any(|t| t.threshold.starts_with("alert load_imbalance")));
        // JUnit lists each alert as a failed test case.
        let xml = crate::report::junit::render(&s);
        let alert_cases = xml
            .lines()
            .filter(|l| {
                l.contains("name=\"threshold alert load_imbalance") && l.contains("<failure")
            })
            .count();
        assert_eq!(alert_cases, 2, "{xml}");
    }

    #[test]
    fn a_condition_that_stops_holding_starts_its_window_again() {
        let mut rec = record();
        rec.workers[0].monitor.call(10_000, 300.0, true);
        assert!(evaluate(&mut rec, 10_000).is_empty());
        // Fast again: the window restarts.
        rec.workers[0].monitor.call(11_500, 1.0, true);
        rec.workers[0].monitor.call(11_600, 1.0, true);
        rec.workers[0].monitor.call(11_700, 1.0, true);
        assert!(evaluate(&mut rec, 13_000).is_empty());
        rec.workers[0].monitor.call(14_000, 400.0, true);
        rec.workers[0].monitor.call(15_000, 400.0, true);
        assert!(evaluate(&mut rec, 15_000).is_empty());
        rec.workers[0].monitor.call(17_000, 400.0, true);
        let fired = evaluate(&mut rec, 17_000);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!(fired[0].contains("communication_issues"), "{fired:?}");
        assert_eq!(
            rec.monitoring.alerts[0].id,
            "r/communication_issues/127.0.0.1:8101"
        );
    }
}
