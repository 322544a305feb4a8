//! The TypeScript tool's worker protocol, as its controller (`src/distributed/remote-worker.ts`)
//! sends and reads it and its worker (`src/cli/commands/worker.ts`) answers it: the same paths as
//! ours (`/health`, `/prepare`, `/start`, `/status`, `/results`, `/stop`) with other bodies. Our
//! worker answers these shapes ([`crate::worker::ts_compat`]) and our controller speaks them to TS
//! workers ([`crate::control::ts_worker`]). Field names are the TS tool's (camelCase where it uses
//! camelCase). Every field a TS peer may leave out has a default, and unknown fields are ignored:
//! the TS side sends more than either side needs.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The literal the TS controller requires in `GET /health`'s `status` before it uses a worker.
pub const HEALTHY: &str = "healthy";

/// The TS worker keeps at most this many raw results per run (its `ResultStorage` default); our
/// worker reconstructs at most as many for the TS controller.
pub const MAX_RESULTS: usize = 50_000;

/// `GET /health`, answered to either controller: the TS fields (`status: "healthy"`, `timestamp`,
/// `uptime`) and ours (`now_ms`, read by our controller's clock-offset estimate).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TsHealth {
    pub status: String,
    /// ISO 8601 (UTC, ms).
    #[serde(default)]
    pub timestamp: String,
    /// Seconds since the worker process started.
    #[serde(default)]
    pub uptime: f64,
    /// Our worker's clock (ms since the epoch); absent from a TS worker's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now_ms: Option<f64>,
}

/// `POST /start` from a TS controller: `{"startTime": <its Date.now()-based ms>}` with sync start,
/// `{}` without.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TsStart {
    #[serde(rename = "startTime", default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
}

/// The answer to `/prepare`, `/start` and `/stop`: `prepared`, `started` or `stopped`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TsAck {
    pub status: String,
    #[serde(rename = "testName", default, skip_serializing_if = "Option::is_none")]
    pub test_name: Option<String>,
    #[serde(
        rename = "virtualUsers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_users: Option<u64>,
    #[serde(default)]
    pub timestamp: String,
}

/// A TS worker's refusal body (any status from 400 up).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TsError {
    pub error: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub timestamp: String,
}

/// `GET /status` as the TS controller reads it: done when `running` is false and `activeRunner`
/// is `idle`. Our worker adds these fields to its own [`crate::api::worker::Status`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TsStatus {
    #[serde(default)]
    pub connected: bool,
    #[serde(default)]
    pub running: bool,
    #[serde(rename = "virtualUsers", default)]
    pub virtual_users: u64,
    #[serde(rename = "requestsPerSecond", default)]
    pub requests_per_second: f64,
    /// Mean response time, ms.
    #[serde(rename = "responseTime", default)]
    pub response_time: f64,
    /// Percent of requests that failed.
    #[serde(rename = "errorRate", default)]
    pub error_rate: f64,
    /// `running` or `idle`.
    #[serde(rename = "activeRunner", default)]
    pub active_runner: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub uptime: f64,
}

/// `GET /results`: the last completed run's summary and its per-request results (the TS
/// controller counts requests from `results`, not from `summary`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TsResults {
    pub summary: TsSummary,
    #[serde(default)]
    pub results: Vec<TsResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<TsWorkerInfo>,
}

/// Who answered `/results`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TsWorkerInfo {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub timestamp: String,
}

/// A run's summary (times in ms, rates in percent). Only the fields both tools use are typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TsSummary {
    #[serde(default)]
    pub total_requests: u64,
    #[serde(default)]
    pub successful_requests: u64,
    #[serde(default)]
    pub failed_requests: u64,
    #[serde(default)]
    pub success_rate: f64,
    #[serde(default)]
    pub avg_response_time: f64,
    #[serde(default)]
    pub min_response_time: f64,
    #[serde(default)]
    pub max_response_time: f64,
    /// By percentile (`"50"`, `"95"`, ...).
    #[serde(default)]
    pub percentiles: BTreeMap<String, f64>,
    #[serde(default)]
    pub requests_per_second: f64,
    /// ms.
    #[serde(default)]
    pub total_duration: f64,
    #[serde(default)]
    pub status_distribution: BTreeMap<String, u64>,
    #[serde(default)]
    pub error_distribution: BTreeMap<String, u64>,
    #[serde(default)]
    pub step_statistics: Vec<TsStepStatistics>,
    /// VU start events; our worker records none and sends an empty list.
    #[serde(default)]
    pub vu_ramp_up: Vec<serde_json::Value>,
    /// Set by our worker only: how its `results` were made (see [`ReconstructedNote`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perfornium: Option<ReconstructedNote>,
}

/// Said by our worker beside the results it gives a TS controller: ours keeps HDR histograms, not
/// raw results, so the per-request `results` are rebuilt from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconstructedNote {
    /// Always false: response times are histogram buckets (≤0.1 % off), each result's status and
    /// timestamp are not the real request's (counts per step, per status and of failures are).
    pub exact: bool,
    /// Requests the run made but that are not in `results` (beyond [`MAX_RESULTS`]).
    pub results_left_out: u64,
    pub note: String,
}

/// One step's totals in a TS summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TsStepStatistics {
    pub step_name: String,
    #[serde(default)]
    pub scenario: String,
    #[serde(default)]
    pub total_requests: u64,
    #[serde(default)]
    pub successful_requests: u64,
    #[serde(default)]
    pub failed_requests: u64,
    #[serde(default)]
    pub avg_response_time: f64,
    #[serde(default)]
    pub percentiles: BTreeMap<String, f64>,
    #[serde(default)]
    pub status_distribution: BTreeMap<String, u64>,
}

/// One request's result as the TS tool records it (the fields either tool reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TsResult {
    #[serde(default)]
    pub vu_id: u64,
    #[serde(default)]
    pub scenario: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_name: Option<String>,
    /// ms since the epoch.
    #[serde(default)]
    pub timestamp: f64,
    /// ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time: Option<f64>,
    #[serde(default)]
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_size: Option<u64>,
}

impl TsResult {
    /// The result's response time in ms (`duration`, else `response_time`, else 0).
    pub fn ms(&self) -> f64 {
        self.duration.or(self.response_time).unwrap_or(0.0)
    }

    /// The step it measured (`step_name`, else `action`, else the scenario).
    pub fn step(&self) -> &str {
        self.step_name
            .as_deref()
            .or(self.action.as_deref())
            .unwrap_or(&self.scenario)
    }
}

/// `ms` (since the epoch) as the TS tool writes instants: ISO 8601, UTC, milliseconds.
pub fn iso(ms: f64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
