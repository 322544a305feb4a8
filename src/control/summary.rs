//! What a run record looks like from outside: the [`RunSummary`] that reports, `summary.json` and the
//! exit code are made of, and the [`RunView`] the master API serves and consoles show. Both are
//! derived from the record on demand, never stored, so they can't disagree with it.

use super::plan;
use super::run::{Phase, RunRecord};
use crate::api::master::RunView;
use crate::metrics::collector::merged;
use crate::report::{RunSummary, WorkerSummary};

impl RunRecord {
    /// The summary of this run so far (final once the phase is).
    pub fn summary(&self) -> RunSummary {
        let steps = self.merged_steps();
        let started = self
            .workers
            .iter()
            .filter_map(|w| w.results.as_ref().map(|r| r.elapsed_s))
            .fold(0.0, f64::max);
        let seconds = if started > 0.0 {
            started
        } else {
            self.timeline.len() as f64
        };
        let dropped = self
            .workers
            .iter()
            .map(|w| {
                w.results
                    .as_ref()
                    .map(|r| r.dropped)
                    .unwrap_or(w.live.dropped)
            })
            .sum();
        let mut s = RunSummary::build(
            &self.test.name,
            &self.step_names,
            &steps,
            seconds,
            dropped,
            self.timeline.clone(),
            &crate::config::rules(&self.test),
        );
        let unit = plan::unit(&self.test.load);
        let short: u64 = self.workers.iter().map(|w| w.short_units).sum();
        s.short = (short > 0).then(|| plan::amount(short, unit));
        s.workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let all = merged(w.totals());
                let pulled = merged(&w.merged);
                let final_all = w.results.as_ref().map(|r| merged(&r.steps));
                WorkerSummary {
                    address: w.addr.addr(),
                    region: w.addr.region.clone(),
                    capacity: w.addr.capacity,
                    planned: plan::amount(super::rescale::current_units(self, i), unit),
                    state: w.state,
                    count: all.count,
                    errors: all.errors,
                    p50: all.latency.quantile_ms(0.5),
                    p95: all.latency.quantile_ms(0.95),
                    p99: all.latency.quantile_ms(0.99),
                    clock_offset_ms: w.offset.map(|o| o.offset_ms),
                    error: w.error.clone(),
                    active_vus: w.live.active_vus,
                    rps: w.average_rps(),
                    last_seen_ms: w.last_seen_ms,
                    merged_count: pulled.count,
                    merged_errors: pulled.errors,
                    merged_seq: w.last_seq,
                    final_count: final_all.as_ref().map(|f| f.count),
                    final_errors: final_all.as_ref().map(|f| f.errors),
                    final_seq: w.results.as_ref().map(|r| r.last_seq),
                    merged_matches_final: w.merged_matches_final(),
                    points: self.worker_points.get(i).cloned().unwrap_or_default(),
                    monitor: w.monitor.clone(),
                    steps: crate::report::WorkerStep::rows(&self.step_names, w.totals()),
                    exact: None,
                }
            })
            .collect();
        s = s.with_checks(&self.test);
        // A worker's `fail_test`, `abort` or CSV `stop_test` fails the whole run, as it would a
        // local one; each reason is named with the worker that saw it.
        let failures: Vec<String> = self
            .workers
            .iter()
            .filter_map(|w| w.results.as_ref().map(|r| (w.addr.addr(), &r.failures)))
            .flat_map(|(addr, f)| f.iter().map(move |why| format!("worker {addr}: {why}")))
            .collect();
        s.fail_for(&failures);
        // The test's own hooks that failed (`beforeTest`, `teardownTest`, `onTestError`).
        if let Some(h) = &self.test_hooks {
            s.fail_for(&h.failures);
        }
        // `monitoring.alerting.fail_run`: each alert fails the run (a JUnit failure each).
        s.alerts = self.monitoring.alerts.clone();
        let fail_run = crate::config::monitoring::Monitoring::of(&self.test)
            .and_then(|m| m.alerting().map(|a| a.fail_run))
            .unwrap_or(false);
        if fail_run {
            let alerts: Vec<String> = s
                .alerts
                .iter()
                .map(|a| format!("alert {}: {}", a.rule, a.message))
                .collect();
            s.fail_for(&alerts);
        }
        // `debug` captures: each worker's, marked with its address, the first 100 in all.
        s.debug_samples = self
            .workers
            .iter()
            .filter_map(|w| w.results.as_ref().map(|r| (w.addr.addr(), &r.captured)))
            .flat_map(|(addr, c)| {
                c.iter().map(move |v| {
                    let mut v = v.clone();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("worker".into(), addr.clone().into());
                    }
                    v
                })
            })
            .take(crate::engine::DEBUG_CAPTURES)
            .collect();
        s.start_skew_ms = self.skew_ms;
        s.phase = Some(self.phase);
        s.events = self.events.clone();
        s.event_seconds = self.event_seconds.clone();
        if self.phase != Phase::Finished {
            s.passed = false;
        }
        s
    }

    /// Whether a worker's `abort` or CSV `stop_test` stopped the run (rather than a user or a failure).
    pub fn stopped_by_test(&self) -> bool {
        self.phase == Phase::Stopped
            && self
                .workers
                .iter()
                .any(|w| w.results.as_ref().is_some_and(|r| r.aborted))
    }

    /// The view the master API serves for this record, kept by replica `driven_by`.
    pub fn view(&self, driven_by: u64) -> RunView {
        RunView {
            id: self.id.clone(),
            phase: self.phase,
            unit: plan::unit(&self.test.load),
            live: self.live(),
            summary: self.summary(),
            start_at_ms: self.start_at_ms,
            driven_by,
            regions: plan::region_views(self),
            control: self.control.clone(),
            views: Some(crate::config::monitoring::Dashboards::views(&self.test).into()),
            archived: None,
        }
    }
}
