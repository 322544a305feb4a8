//! The master API, served on the same port as the raft RPC: `GET /health` (open even with a token),
//! `GET /metrics` (Prometheus), `GET /cluster` (any replica),
//! `POST /runs`, `GET /runs`, `GET /runs/{id}`, `POST /runs/{id}/stop`. A follower asked to write
//! answers 307 with the leader's address in `Location` (and in the body), and clients follow it.
//! A bad body gets a 4xx naming what is wrong and changes no stored state.

use super::leader::Drivers;
use super::store::RaftStore;
use crate::config::TestFile;
use crate::control::client::Credentials;
use crate::control::plan::Strategy;
use crate::control::run::RunRecord;
use crate::control::store::RunStore;
use crate::control::submit;
use crate::control::workers::WorkerAddr;
use crate::metrics::collector::Live;
use crate::report::RunSummary;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What the handlers share.
#[derive(Clone)]
pub struct Master {
    pub store: RaftStore,
    pub drivers: Drivers,
    /// How the leader calls workers (token, TLS).
    pub workers: Credentials,
}

/// `GET /cluster`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterView {
    pub id: u64,
    pub role: String,
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
    pub term: u64,
    pub members: Vec<Member>,
    pub last_applied: Option<u64>,
}

/// One replica of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub addr: String,
}

/// `POST /runs`: the test as a parsed object or as YAML text, and where to run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submit {
    #[serde(default)]
    pub test: Option<TestFile>,
    #[serde(default)]
    pub test_yaml: Option<String>,
    pub workers: Vec<WorkerAddr>,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub sync_start: bool,
}

/// `GET /runs` entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunBrief {
    pub id: String,
    pub name: String,
    pub phase: String,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
}

/// `GET /runs/{id}`: phase, plan and per-worker health (in `summary.workers`), live and merged numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunView {
    pub id: String,
    pub phase: String,
    pub live: Live,
    pub summary: RunSummary,
    pub start_at_ms: Option<u64>,
    pub driven_by: u64,
}

/// The master API's routes.
pub fn router(master: Master) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/cluster", get(cluster))
        .route("/metrics", get(metrics))
        .route("/runs", get(list_runs).post(submit_run))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/stop", post(stop_run))
        .with_state(master)
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

/// The cluster as this replica sees it.
pub fn cluster_view(store: &RaftStore) -> ClusterView {
    let m = store.replica.metrics().borrow().clone();
    let members: Vec<Member> = m
        .membership_config
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            addr: node.addr.clone(),
        })
        .collect();
    let leader_addr = m
        .current_leader
        .and_then(|l| members.iter().find(|x| x.id == l).map(|x| x.addr.clone()));
    ClusterView {
        id: m.id,
        role: format!("{:?}", m.state).to_lowercase(),
        leader_id: m.current_leader,
        leader_addr,
        term: m.current_term,
        members,
        last_applied: m.last_applied.map(|l| l.index),
    }
}

async fn metrics(State(m): State<Master>) -> Response {
    let text = super::prometheus::render(&m.store);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn cluster(State(m): State<Master>) -> Json<ClusterView> {
    Json(cluster_view(&m.store))
}

/// 307 to the leader, or 503 while there is none.
fn to_leader(m: &Master, path: &str) -> Response {
    let view = cluster_view(&m.store);
    match view.leader_addr {
        Some(addr) => {
            // A TLS cluster serves HTTPS on every replica and calls out with TLS too.
            let scheme = crate::tls::scheme(m.workers.tls.as_ref());
            let location = format!("{scheme}://{addr}{path}");
            let body = json!({ "error": "not the leader", "leader_id": view.leader_id, "leader_addr": addr });
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
                Json(body),
            )
                .into_response()
        }
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no leader right now (election in progress); retry",
        ),
    }
}

async fn submit_run(
    State(m): State<Master>,
    body: Result<Json<Submit>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            // Keep the rejection's own status where it is more precise (413 for a body over the
            // limit, 415 without a JSON content type).
            let code = match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => e.status(),
                _ => StatusCode::BAD_REQUEST,
            };
            return error(code, format!("malformed run request: {}", e.body_text()));
        }
    };
    if !m.store.replica.status().is_leader {
        return to_leader(&m, "/runs");
    }
    let test = match (req.test, req.test_yaml) {
        (Some(t), None) => crate::config::check(&t)
            .map(|_| t)
            .map_err(|e| format!("test: {e}")),
        (None, Some(y)) => crate::config::from_str(&y).map_err(|e| e.to_string()),
        _ => Err("send exactly one of `test` (object) or `test_yaml` (text)".to_string()),
    };
    let test = match test {
        Ok(t) => t,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    if req.workers.is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "`workers` is empty");
    }
    let rec = match submit::new_record(
        submit::run_id(),
        test,
        &req.workers,
        req.strategy,
        req.sync_start,
    ) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    if let Err(e) = m.store.save(&rec).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the run could not be recorded: {e}"),
        );
    }
    m.drivers.resume_all(&m.store, &m.workers);
    (
        StatusCode::CREATED,
        Json(json!({ "run_id": rec.id, "plan": crate::distributed::plan_text(&rec) })),
    )
        .into_response()
}

async fn list_runs(State(m): State<Master>) -> Json<Vec<RunBrief>> {
    Json(
        m.store
            .runs()
            .into_iter()
            .map(|r| RunBrief {
                name: r.test.name.clone(),
                phase: format!("{:?}", r.phase).to_lowercase(),
                created_ms: r.created_ms,
                finished_ms: r.finished_ms,
                id: r.id,
            })
            .collect(),
    )
}

/// The view of a run record clients see.
pub fn run_view(rec: &RunRecord, driven_by: u64) -> RunView {
    RunView {
        id: rec.id.clone(),
        phase: format!("{:?}", rec.phase).to_lowercase(),
        live: rec.live(),
        summary: crate::distributed::summarize(rec),
        start_at_ms: rec.start_at_ms,
        driven_by,
    }
}

async fn get_run(State(m): State<Master>, Path(id): Path<String>) -> Response {
    match m.store.run(&id) {
        Some(rec) => Json(run_view(&rec, m.store.replica.id())).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no run `{id}`")),
    }
}

async fn stop_run(State(m): State<Master>, Path(id): Path<String>) -> Response {
    if !m.store.replica.status().is_leader {
        return to_leader(&m, &format!("/runs/{id}/stop"));
    }
    let Some(mut rec) = m.store.run(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no run `{id}`"));
    };
    if rec.phase.is_final() {
        return Json(json!({ "run_id": id, "phase": format!("{:?}", rec.phase).to_lowercase() }))
            .into_response();
    }
    if !m.drivers.stop(&id) {
        // No driver here yet (it is about to resume): record the request so it stops when it does.
        rec.stop_requested = true;
        if let Err(e) = m.store.save(&rec).await {
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "run_id": id, "stopping": true })),
    )
        .into_response()
}
