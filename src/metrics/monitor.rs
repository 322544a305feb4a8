//! What the controller measures about each worker of a distributed run besides its requests: the
//! round trip and failures of its calls to the worker (communication latency), the worker's CPU and
//! memory as the worker reports them ([`super::resources`]), its planned and actual share of the
//! requests (load distribution), and its health history. Kept per worker in the run record, shown
//! as `workers[].monitor` in the run's summary (`GET /runs/{id}`, `summary.json`), and exported by
//! the master's `/metrics` with worker labels. The alerts the controller raised from them are the
//! summary's `alerts` ([`Alert`]).

use super::resources::Resources;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many recent control calls are kept per worker (for windowed rules).
pub const RECENT_CALLS: usize = 60;
/// How many health changes are kept per worker.
pub const HEALTH_HISTORY: usize = 100;

/// One control call to a worker (a pull).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// When it ended, controller clock (Unix ms).
    pub at_ms: u64,
    /// Round trip, ms (until it failed, for a failed call).
    pub rtt_ms: f64,
    pub ok: bool,
}

/// A change of a worker's health: its state, or whether it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthChange {
    /// Controller clock, Unix ms.
    pub at_ms: u64,
    /// The worker's state (`running`, `failed`...), or `unreachable` while its calls fail.
    pub state: String,
}

/// Per-worker measurements (summary field `workers[].monitor`). Every figure the
/// `monitoring.metrics` block turned off stays at its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerMonitor {
    /// Control calls made (pulls), and how many failed.
    pub calls: u64,
    pub failed_calls: u64,
    /// Round trip of the last call, the mean over all calls, and the slowest, ms.
    pub rtt_last_ms: f64,
    pub rtt_mean_ms: f64,
    pub rtt_max_ms: f64,
    /// The last [`RECENT_CALLS`] calls.
    #[serde(default)]
    pub recent: VecDeque<Call>,
    /// The worker's last resources sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// The highest process and host CPU seen, percent of the host.
    #[serde(default)]
    pub peak_process_cpu_pct: f64,
    #[serde(default)]
    pub peak_host_cpu_pct: f64,
    /// Samples taken, and how many said saturated (≥ 90 % CPU).
    #[serde(default)]
    pub samples: u64,
    #[serde(default)]
    pub saturated_samples: u64,
    /// Its planned share of the load and its actual share of the requests so far, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_share_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_share_pct: Option<f64>,
    /// State changes, oldest first (the last [`HEALTH_HISTORY`]).
    #[serde(default)]
    pub health: Vec<HealthChange>,
    /// Log records the worker dropped because its buffer was full.
    #[serde(default)]
    pub logs_dropped: u64,
    /// Since when each alert condition has held (controller clock), while it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_since_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imbalanced_since_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated_since_ms: Option<u64>,
}

impl WorkerMonitor {
    /// Counts a control call of `rtt_ms` that ended at `at_ms`.
    pub fn call(&mut self, at_ms: u64, rtt_ms: f64, ok: bool) {
        self.calls += 1;
        if !ok {
            self.failed_calls += 1;
        }
        self.rtt_last_ms = rtt_ms;
        self.rtt_mean_ms += (rtt_ms - self.rtt_mean_ms) / self.calls as f64;
        self.rtt_max_ms = self.rtt_max_ms.max(rtt_ms);
        self.recent.push_back(Call { at_ms, rtt_ms, ok });
        while self.recent.len() > RECENT_CALLS {
            self.recent.pop_front();
        }
    }

    /// Keeps a resources sample.
    pub fn sample(&mut self, r: Resources) {
        self.samples += 1;
        if r.saturated {
            self.saturated_samples += 1;
        }
        self.peak_process_cpu_pct = self.peak_process_cpu_pct.max(r.process_cpu_pct);
        self.peak_host_cpu_pct = self.peak_host_cpu_pct.max(r.host_cpu_pct);
        self.resources = Some(r);
    }

    /// Notes the worker's health at `at_ms`, when it changed.
    pub fn health(&mut self, at_ms: u64, state: &str) {
        if self.health.last().map(|h| h.state.as_str()) == Some(state) {
            return;
        }
        self.health.push(HealthChange {
            at_ms,
            state: state.into(),
        });
        if self.health.len() > HEALTH_HISTORY {
            self.health.remove(0);
        }
    }

    /// Mean round trip and failed share (percent) of the calls that ended after `since_ms`, and
    /// how many there were.
    pub fn window(&self, since_ms: u64) -> (f64, f64, usize) {
        let calls: Vec<&Call> = self.recent.iter().filter(|c| c.at_ms > since_ms).collect();
        if calls.is_empty() {
            return (0.0, 0.0, 0);
        }
        let n = calls.len() as f64;
        let mean = calls.iter().map(|c| c.rtt_ms).sum::<f64>() / n;
        let failed = calls.iter().filter(|c| !c.ok).count() as f64 * 100.0 / n;
        (mean, failed, calls.len())
    }
}

/// An alert the controller raised during a run (summary field `alerts`). Each (rule, worker)
/// fires at most once per run; it is saved in the run record before any webhook is called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `<run id>/<rule>/<worker>`: unique in the run, sent as the webhooks' `Idempotency-Key`.
    pub id: String,
    /// `worker_failures`, `communication_issues`, `load_imbalance` or `saturation`.
    pub rule: String,
    /// The worker it is about (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    pub message: String,
    /// When it fired, controller clock (Unix ms).
    pub at_ms: u64,
    /// The webhook URLs that acknowledged it (2xx).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_averages_only_recent_calls() {
        let mut m = WorkerMonitor::default();
        m.call(1_000, 10.0, true);
        m.call(2_000, 300.0, true);
        m.call(3_000, 500.0, false);
        assert_eq!(m.calls, 3);
        assert_eq!(m.failed_calls, 1);
        assert_eq!(m.rtt_max_ms, 500.0);
        assert!((m.rtt_mean_ms - 270.0).abs() < 1e-9);
        let (mean, failed, n) = m.window(1_500);
        assert_eq!((mean, failed, n), (400.0, 50.0, 2));
        for k in 0..100 {
            m.call(4_000 + k, 1.0, true);
        }
        assert_eq!(m.recent.len(), RECENT_CALLS);
    }

    #[test]
    fn health_keeps_changes_only() {
        let mut m = WorkerMonitor::default();
        m.health(1, "running");
        m.health(2, "running");
        m.health(3, "unreachable");
        m.health(4, "running");
        let states: Vec<_> = m.health.iter().map(|h| h.state.as_str()).collect();
        assert_eq!(states, ["running", "unreachable", "running"]);
    }
}
