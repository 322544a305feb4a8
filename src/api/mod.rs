//! The wire contract: every request and response body of the worker API ([`worker`]) and the master
//! API ([`master`]), and the one error body both use ([`ApiError`]). Servers (`worker`, `master`)
//! and clients (`control`'s worker client, `console`) import these types from here and never from
//! each other, so either side can change its internals without the other noticing.
//!
//! The types are typed with the real enums ([`crate::phase::Phase`], [`crate::phase::WorkerState`],
//! [`master::Role`]) and serialize them in snake_case, so a client never parses a `Debug` string.

pub mod master;
pub mod pool;
pub mod stream;
pub mod transport;
pub mod ts_worker;
pub mod ui;
pub mod worker;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The body of every refusal: `{"error": "..."}`, with the status code that goes with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// What is wrong, in words a user can act on.
    pub error: String,
}

impl ApiError {
    /// A refusal with `message`, answered with `status`.
    pub fn reply(status: StatusCode, message: impl Into<String>) -> Response {
        (
            status,
            axum::Json(ApiError {
                error: message.into(),
            }),
        )
            .into_response()
    }
}

/// `GET /health` on workers and masters when no more is said; open even with a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthOk {
    /// Always `ok`.
    pub status: String,
}

impl Default for HealthOk {
    fn default() -> Self {
        HealthOk {
            status: "ok".into(),
        }
    }
}
