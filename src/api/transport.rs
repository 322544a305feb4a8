//! Wire types of the worker transports besides HTTP/JSON (`distributed.communication.protocol`).
//!
//! - gRPC: the service and messages of `proto/worker.proto` ([`grpc`]), generated at build time.
//!   Bodies are the HTTP API's JSON documents ([`super::worker`]) carried as bytes; a refusal is a
//!   gRPC status whose metadata keeps the HTTP status ([`STATUS_KEY`]), so the controller reads
//!   the same refusals whatever the transport.
//! - WebSocket: the batch stream at `GET /metrics` with an upgrade: the worker sends
//!   `GET /metrics` answers (text frames, or gzip-compressed binary frames when the controller asks
//!   with `compress=gzip`), the controller sends [`WsAck`]s.

use serde::{Deserialize, Serialize};

/// The generated gRPC code of `proto/worker.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod grpc {
    tonic::include_proto!("perfornium.worker");
}

/// The gRPC metadata key that carries the HTTP status a refusal would have had.
pub const STATUS_KEY: &str = "x-perfornium-status";

/// The gRPC code for an HTTP refusal.
pub fn grpc_code(http_status: u16) -> tonic::Code {
    use tonic::Code;
    match http_status {
        400 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::FailedPrecondition,
        413 => Code::ResourceExhausted,
        429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// The HTTP status a gRPC refusal stands for: the one in its metadata, else the code's nearest.
pub fn http_status(status: &tonic::Status) -> u16 {
    if let Some(s) = status
        .metadata()
        .get(STATUS_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
    {
        return s;
    }
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument => 422,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 413,
        Code::Unimplemented => 501,
        _ => 500,
    }
}

/// What the controller sends on a WebSocket batch stream: everything up to `since` is merged,
/// so the worker may forget it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsAck {
    pub ack: u64,
}

/// The query of the WebSocket upgrade at `GET /metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamQuery {
    /// The last sequence number the controller merged: the stream starts after it.
    #[serde(default)]
    pub since: u64,
    /// For a plain pull: what the controller has saved (durably) up to, which the worker may
    /// forget; batches between `ack` and `since` are kept for a controller that takes over from
    /// the saved record. Absent: `since` (everything merged counts as saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<u64>,
    /// How often the worker sends when nothing new happened, ms (0: [`DEFAULT_STREAM_MS`]).
    #[serde(default)]
    pub interval_ms: u32,
    /// `gzip`: frames are gzip-compressed JSON in binary frames.
    #[serde(default)]
    pub compress: Option<String>,
}

/// How often a worker sends on a batch stream when not told.
pub const DEFAULT_STREAM_MS: u32 = 250;

/// The fastest a worker checks for new batches on a stream (a new batch closes once a second).
pub const STREAM_CHECK_MS: u64 = 50;
