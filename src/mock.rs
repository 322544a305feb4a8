//! `perfornium mock`: a small JSON API to aim tests at (users list/get/create, `/delay/{ms}`,
//! `/status/{code}`, `/health`). It counts every request it serves, by route and status, and reports
//! the counts at `GET /__stats`, so tests can check the engine's numbers against the server's.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the mock has served (requests to `/__stats` itself are not counted).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub total: u64,
    pub by_route: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
    /// Headers named `x-trace` seen, so a test can see what a step sent.
    pub last_x_trace: Option<String>,
    /// When the first request of each worker of a distributed run arrived (this machine's clock,
    /// ms since the epoch, µs precision), by the worker's name in `x-perfornium-worker`: the
    /// ground truth for how closely a synchronized start really started the workers together.
    #[serde(default)]
    pub first_request_ms: BTreeMap<String, f64>,
}

#[derive(Default)]
struct Inner {
    stats: Stats,
    users: Vec<Value>,
}

#[derive(Clone)]
struct Mock {
    inner: Arc<Mutex<Inner>>,
    delay: Duration,
}

/// The mock's routes; `delay` is added to every route but `/health` and `/__stats`.
pub fn router(delay: Duration) -> Router {
    let users = (1..=10).map(|i| json!({"id": i, "name": format!("user{i}"), "email": format!("user{i}@example.com")})).collect();
    let state = Mock {
        inner: Arc::new(Mutex::new(Inner {
            users,
            ..Default::default()
        })),
        delay,
    };
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user))
        .route("/delay/{ms}", get(delay_ms))
        .route("/status/{code}", get(status).post(status))
        .route("/echo", axum::routing::post(echo))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .route("/__stats", get(stats))
        .with_state(state)
}

/// Serves the mock on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    delay: Duration,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    crate::tls::serve(listener, router(delay), tls, stop).await
}

async fn count(State(m): State<Mock>, req: Request, next: Next) -> Response {
    let arrived_ms = crate::time::precise_now_ms();
    let worker = req
        .headers()
        .get(crate::api::worker::WORKER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let trace = req
        .headers()
        .get("x-trace")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if route != "/health" && !m.delay.is_zero() {
        tokio::time::sleep(m.delay).await;
    }
    let resp = next.run(req).await;
    let mut inner = m.inner.lock().expect("mock lock poisoned");
    inner.stats.total += 1;
    *inner.stats.by_route.entry(route).or_default() += 1;
    *inner
        .stats
        .by_status
        .entry(resp.status().as_u16())
        .or_default() += 1;
    if trace.is_some() {
        inner.stats.last_x_trace = trace;
    }
    if let Some(w) = worker {
        inner.stats.first_request_ms.entry(w).or_insert(arrived_ms);
    }
    resp
}

async fn stats(State(m): State<Mock>) -> Json<Stats> {
    Json(m.inner.lock().expect("mock lock poisoned").stats.clone())
}

async fn list_users(State(m): State<Mock>) -> Json<Value> {
    let users = m.inner.lock().expect("mock lock poisoned").users.clone();
    Json(json!({ "users": users, "total": users.len() }))
}

async fn get_user(State(m): State<Mock>, Path(id): Path<String>) -> Response {
    let inner = m.inner.lock().expect("mock lock poisoned");
    match inner
        .users
        .iter()
        .find(|u| u["id"] == id.parse::<u64>().unwrap_or(0))
    {
        Some(u) => Json(u.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such user", "id": id})),
        )
            .into_response(),
    }
}

async fn create_user(State(m): State<Mock>, body: Option<Json<Value>>) -> Response {
    let Some(Json(mut user)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "body must be JSON"})),
        )
            .into_response();
    };
    let mut inner = m.inner.lock().expect("mock lock poisoned");
    let id = inner.users.len() as u64 + 1;
    user["id"] = json!(id);
    // Keep the list bounded in long runs; the id still counts up.
    if inner.users.len() < 10_000 {
        inner.users.push(user.clone());
    }
    (StatusCode::CREATED, Json(user)).into_response()
}

async fn delay_ms(Path(ms): Path<u64>) -> Json<Value> {
    tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    Json(json!({"delayed_ms": ms}))
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (code, Json(json!({"status": code.as_u16()}))).into_response()
}

async fn echo(body: String) -> String {
    body
}
