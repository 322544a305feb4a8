//! The live result feed's messages: what `GET /runs/{id}/stream` sends as Server-Sent Events. Each
//! `figures` event carries one [`FeedEvent`] with `id:` its sequence number; the last event of a
//! run that ended is `end` with a [`FeedEnd`].

use crate::phase::Phase;
use serde::{Deserialize, Serialize};

/// Counts and, as the test's `metrics` select, rates and percentiles (from merged histograms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    /// `error_rates`: errors / requests (0 without requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// `throughput`: requests per second over the event's seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// `response_times`: percentiles in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// One step's figures in an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFigures {
    pub step: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One worker's figures in an event (every step of its merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerFigures {
    /// `host:port`.
    pub worker: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One interval of merged figures: the seconds `from_s..=to_s` of the run (second 1 is the first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEvent {
    pub run_id: String,
    /// 1, 2, 3...: the SSE `id`, with no gaps.
    pub seq: u64,
    pub from_s: u64,
    pub to_s: u64,
    #[serde(flatten)]
    pub figures: Figures,
    /// `virtual_user_counts`: active VUs over every worker at the interval's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_vus: Option<u64>,
    pub steps: Vec<StepFigures>,
    pub workers: Vec<WorkerFigures>,
}

/// The `end` event: the run reached a final phase and every figures event was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEnd {
    pub run_id: String,
    pub phase: Phase,
    /// The last figures event's `seq` (0 when there was none).
    pub last_seq: u64,
    /// The run's totals (the summary's): equal to the sum of the figures events'.
    pub requests: u64,
    pub errors: u64,
}

/// One WebSocket text frame of the feed (`streaming.protocol: websocket`): the same events as
/// the SSE stream, `{"event": "figures", "id": N, "data": {...}}` then `{"event": "end", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FeedMessage {
    Figures { id: u64, data: FeedEvent },
    End { data: FeedEnd },
}
