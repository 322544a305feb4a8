//! `perfornium worker`: the worker HTTP API on one port, pull-based (a worker never connects to its
//! controller). `GET /health` is open; with a token configured every other call needs
//! `Authorization: Bearer T`. Request bodies are limited in size. See [`api`] for the messages and
//! [`slot`] for the run state machine behind them.

pub mod api;
pub mod slot;

use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use slot::{Slot, SlotError};

/// The largest request body a worker accepts (a test with inline CSV rows).
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Clone)]
struct Worker {
    slot: Slot,
    token: Option<String>,
}

/// The worker's routes, guarded by `token` when given.
pub fn router(token: Option<String>) -> Router {
    let state = Worker {
        slot: Slot::default(),
        token,
    };
    Router::new()
        .route("/status", get(status))
        .route("/prepare", post(prepare))
        .route("/start", post(start))
        .route("/stop", post(stop))
        .route("/scale", post(scale))
        .route("/metrics", get(metrics))
        .route("/results", get(results))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves the worker API on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    token: Option<String>,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(token))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

/// Compares without an early exit, so response timing does not reveal how much of a token matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

async fn authorize(State(w): State<Worker>, req: Request, next: Next) -> Response {
    if let Some(token) = &w.token {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        }
    }
    next.run(req).await
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (
        code,
        Json(api::ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

fn refuse(e: SlotError) -> Response {
    let code = match e {
        SlotError::Busy { .. } => StatusCode::CONFLICT,
        SlotError::Unknown(_) => StatusCode::NOT_FOUND,
        SlotError::BadTest(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SlotError::NotFinished(_) => StatusCode::ACCEPTED,
        SlotError::NotRunning(_) => StatusCode::CONFLICT,
    };
    error(code, e.to_string())
}

fn phase(r: Result<api::WorkerPhase, SlotError>) -> Response {
    match r {
        Ok(p) => Json(serde_json::json!({ "phase": p })).into_response(),
        Err(e) => refuse(e),
    }
}

async fn health() -> Json<api::Health> {
    Json(api::Health {
        status: "ok".into(),
        now_ms: api::now_ms(),
    })
}

async fn status(State(w): State<Worker>) -> Json<api::Status> {
    Json(w.slot.status())
}

async fn prepare(State(w): State<Worker>, Json(req): Json<api::Prepare>) -> Response {
    phase(w.slot.prepare(req))
}

async fn start(State(w): State<Worker>, Json(req): Json<api::Start>) -> Response {
    phase(w.slot.start(req))
}

async fn scale(State(w): State<Worker>, Json(req): Json<api::Scale>) -> Response {
    phase(w.slot.scale(req))
}

async fn stop(State(w): State<Worker>, Json(req): Json<api::Stop>) -> Response {
    phase(w.slot.stop(&req.run_id))
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn metrics(State(w): State<Worker>, Query(q): Query<Since>) -> Json<api::Metrics> {
    Json(w.slot.metrics(q.since))
}

#[derive(Deserialize)]
struct RunQuery {
    run_id: String,
}

async fn results(State(w): State<Worker>, Query(q): Query<RunQuery>) -> Response {
    match w.slot.results(&q.run_id) {
        Ok(r) => Json(r).into_response(),
        Err(e) => refuse(e),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
