//! The master API's handlers, served on the same port as the raft RPC: `GET /health` (open even
//! with a token), `GET /metrics` (Prometheus), `GET /cluster` (any replica), `POST /runs`,
//! `GET /runs`, `GET /runs/{id}`, `GET /runs/{id}/logs`, `POST /runs/{id}/stop`, `PATCH /runs/{id}`
//! (live control of the load: [`crate::control::rescale`]), and the pool's `POST /workers`/`GET /workers`
//! (`pool.rs`). The bodies are [`crate::api::master`]'s.
//! A follower asked to write answers 307 with the leader's address in `Location` (and in a
//! [`NotLeader`] body), and clients follow it. A bad body gets a 4xx naming what is wrong and
//! changes no stored state.

use super::leader::Drivers;
use super::store::RaftStore;
use crate::api::master::{
    ClusterView, Member, NotLeader, RunBrief, RunPatch, Stopping, Submit, Submitted,
};
use crate::api::{ApiError, HealthOk};
use crate::control::client::Credentials;
use crate::control::plan;
use crate::control::store::RunStore;
use crate::control::submit;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tracing::{info, warn};

/// What the handlers share.
#[derive(Clone)]
pub struct Master {
    pub store: RaftStore,
    pub drivers: Drivers,
    /// How the leader calls workers (token, TLS).
    pub workers: Credentials,
    /// `coordinator.max_workers`: the most workers with a live lease the pool admits.
    pub max_workers: Option<u32>,
}

/// The master API's routes.
pub fn router(master: Master) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(HealthOk::default()) }))
        .route("/cluster", get(cluster))
        .route("/metrics", get(metrics))
        .route("/runs", get(list_runs).post(submit_run))
        .route("/runs/{id}", get(get_run).patch(patch_run))
        .route("/runs/{id}/logs", get(run_logs))
        .route("/runs/{id}/stop", post(stop_run))
        .route(
            "/workers",
            get(super::pool::get_workers).post(super::pool::register),
        )
        .route("/runs/{id}/stream", get(super::stream::stream))
        .with_state(master)
}

/// The cluster as this replica sees it.
pub fn cluster_view(store: &RaftStore) -> ClusterView {
    let s = store.replica.status();
    ClusterView {
        id: s.id,
        role: s.role,
        leader_id: s.leader_id,
        leader_addr: s.leader_addr,
        term: s.term,
        members: s
            .members
            .into_iter()
            .map(|(id, addr)| Member { id, addr })
            .collect(),
        last_applied: s.last_applied,
        last_log_index: s.last_log_index,
        last_purged: s.last_purged,
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
pub(super) fn to_leader(m: &Master, path: &str) -> Response {
    let status = m.store.replica.status();
    match status.leader_addr {
        Some(leader_addr) => {
            // A TLS cluster serves HTTPS on every replica and calls out with TLS too.
            let scheme = crate::tls::scheme(m.workers.tls.as_ref());
            let location = format!("{scheme}://{leader_addr}{path}");
            let body = NotLeader {
                error: "not the leader".into(),
                leader_id: status.leader_id,
                leader_addr,
            };
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
                Json(body),
            )
                .into_response()
        }
        None => ApiError::reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "no leader right now (election in progress); retry",
        ),
    }
}

/// Refuses a submission: logged, answered, nothing stored.
fn refuse_submit(code: StatusCode, message: String) -> Response {
    warn!(status = code.as_u16(), %message, "run submission refused");
    ApiError::reply(code, message)
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
            return refuse_submit(code, format!("malformed run request: {}", e.body_text()));
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
        Err(e) => return refuse_submit(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    if test.outputs.iter().any(|o| o.enabled) || test.report.as_ref().is_some_and(|r| r.generate) {
        return refuse_submit(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`outputs:` and `report:` are written by `perfornium run` and `perfornium distributed`, \
             not by a master cluster (its leader may change mid-run): set `enabled: false` / \
             `generate: false`, and use the console's `-o DIR` and `--report`"
                .into(),
        );
    }
    let masters = submit::Masters {
        replicas: m.store.replica.status().members.len(),
        election_max_ms: m.store.replica.raft().config().election_timeout_max,
    };
    if let Err(e) = submit::check_masters(&test, masters) {
        return refuse_submit(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    // The samples `least_loaded` plans by: the pool's, else read from each listed worker.
    let mut samples = Vec::new();
    let workers = if req.workers.is_empty() {
        let filter = req.pool.clone().unwrap_or_default();
        let (pool, pooled): (Vec<_>, Vec<_>) =
            super::pool::live_sampled(&m, &filter).into_iter().unzip();
        samples = pooled;
        if pool.is_empty() {
            return refuse_submit(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "`workers` is empty and no registered worker with a live lease matches {} \
                     (GET /workers lists the pool): name workers, or start workers with --master",
                    serde_json::to_string(&filter).unwrap_or_default()
                ),
            );
        }
        pool
    } else if req.pool.is_some() {
        return refuse_submit(
            StatusCode::UNPROCESSABLE_ENTITY,
            "give `workers` or `pool` (the registered workers), not both".into(),
        );
    } else {
        req.workers
    };
    if samples.is_empty() && crate::control::balance::wants_samples(&test) {
        samples = crate::control::balance::read_samples(&workers, &m.workers).await;
    }
    let rec = match crate::control::balance::new_record(
        submit::run_id(),
        test,
        &workers,
        &samples,
        req.strategy,
        req.sync_start,
    ) {
        Ok(r) => r,
        Err(e) => return refuse_submit(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    // A replacement worker must pass the same filter (`replacement_workers`).
    let rec = crate::control::run::RunRecord {
        pool: req.pool.clone(),
        ..rec
    };
    if let Err(e) = m.store.save(&rec).await {
        return refuse_submit(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the run could not be recorded: {e}"),
        );
    }
    info!(run_id = %rec.id, test = %rec.test.name, workers = rec.workers.len(), strategy = %rec.strategy, "run submitted");
    m.drivers.resume_all(&m.store, &m.workers);
    let answer = Submitted {
        plan: plan::text(&rec),
        run_id: rec.id,
    };
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn list_runs(State(m): State<Master>) -> Json<Vec<RunBrief>> {
    // Runs archived by retention first (they are the older ones), then those in the state.
    let archived = m.store.archived().into_iter().map(|a| RunBrief {
        id: a.id,
        name: a.name,
        phase: a.phase,
        created_ms: a.created_ms,
        finished_ms: a.finished_ms,
        archived: Some(a.location),
    });
    let kept = m.store.runs().into_iter().map(|r| RunBrief {
        name: r.test.name.clone(),
        phase: r.phase,
        created_ms: r.created_ms,
        finished_ms: r.finished_ms,
        id: r.id,
        archived: None,
    });
    let mut all: Vec<RunBrief> = archived.chain(kept).collect();
    all.sort_by_key(|b| b.created_ms);
    Json(all)
}

async fn get_run(State(m): State<Master>, Path(id): Path<String>) -> Response {
    // Rendering a large record takes a while: off the async workers, which drive the run.
    let store = m.store.clone();
    let key = id.clone();
    match tokio::task::spawn_blocking(move || store.view_json(&key)).await {
        Ok(Some(body)) => {
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok(None) => {}
        Err(e) => {
            return ApiError::reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("run `{id}` could not be rendered: {e}"),
            )
        }
    }
    match m.store.read_archived(&id).await {
        Some(Ok((rec, entry))) => {
            let mut view = rec.view(m.store.replica.id());
            view.archived = Some(entry.location);
            Json(view).into_response()
        }
        Some(Err(e)) => ApiError::reply(
            StatusCode::BAD_GATEWAY,
            format!("run `{id}` was archived and cannot be read back: {e}"),
        ),
        None => ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{id}`")),
    }
}

async fn stop_run(State(m): State<Master>, Path(id): Path<String>) -> Response {
    if !m.store.replica.status().is_leader {
        return to_leader(&m, &format!("/runs/{id}/stop"));
    }
    let Some(mut rec) = m.store.run(&id) else {
        return ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{id}`"));
    };
    if rec.phase.is_final() {
        return Json(Stopping {
            run_id: id,
            stopping: false,
            phase: Some(rec.phase),
        })
        .into_response();
    }
    info!(run_id = %id, "stop requested");
    if !m.drivers.stop(&id) {
        // No driver here yet (it is about to resume): record the request so it stops when it does.
        rec.stop_requested = true;
        if let Err(e) = m.store.save(&rec).await {
            return ApiError::reply(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    }
    (
        StatusCode::ACCEPTED,
        Json(Stopping {
            run_id: id,
            stopping: true,
            phase: None,
        }),
    )
        .into_response()
}

/// How long a live change may wait for the driver to record it.
const CHANGE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `PATCH /runs/{id}`: a new total of VUs or arrivals per second, or pause/resume. 400 for a body
/// that is not a [`RunPatch`], 422 for values out of range or not fitting the run's load, 409 when
/// the run is not running, 202 with the recorded [`crate::api::master::LoadControl`] once the
/// change is in the replicated record (the workers get it within about a second).
async fn patch_run(
    State(m): State<Master>,
    Path(id): Path<String>,
    body: Result<Json<RunPatch>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(patch) = match body {
        Ok(b) => b,
        Err(e) => {
            let code = match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => e.status(),
                _ => StatusCode::BAD_REQUEST,
            };
            return refuse_change(code, format!("malformed change: {}", e.body_text()));
        }
    };
    if let Err(e) = patch.check() {
        return refuse_change(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    if !m.store.replica.status().is_leader {
        return to_leader(&m, &format!("/runs/{id}"));
    }
    let Some(rec) = m.store.run(&id) else {
        return ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{id}`"));
    };
    if rec.phase.is_final() {
        return refuse_change(
            StatusCode::CONFLICT,
            format!("run `{id}` has already ended ({})", rec.phase),
        );
    }
    if rec.phase != crate::phase::Phase::Started {
        return refuse_change(
            StatusCode::CONFLICT,
            format!(
                "run `{id}` has not started yet ({}); change it once it runs",
                rec.phase
            ),
        );
    }
    let Some(handle) = m.drivers.control(&id) else {
        return refuse_change(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("run `{id}` has no driver on this leader yet (it is resuming); retry"),
        );
    };
    match tokio::time::timeout(CHANGE_WAIT, handle.change(patch)).await {
        Ok(Some(Ok(control))) => {
            info!(run_id = %id, generation = control.generation, target = control.target, paused = control.paused, "live change recorded");
            (StatusCode::ACCEPTED, Json(control)).into_response()
        }
        Ok(Some(Err(refusal))) => refuse_change(
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::CONFLICT),
            refusal.error,
        ),
        Ok(None) => refuse_change(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("run `{id}`'s driver ended before it took the change; retry"),
        ),
        Err(_) => refuse_change(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("run `{id}`'s driver did not take the change within {} s (it may still be starting the run); retry", CHANGE_WAIT.as_secs()),
        ),
    }
}

/// Refuses a live change: logged, answered, nothing changed.
fn refuse_change(code: StatusCode, message: String) -> Response {
    warn!(status = code.as_u16(), %message, "live change refused");
    ApiError::reply(code, message)
}

/// `GET /runs/{id}/logs`: the run's central log stream (`distributed.logging.centralized`), in time
/// order, as JSON lines (`application/x-ndjson`) or, with `structured_logging: false`, text lines.
async fn run_logs(State(m): State<Master>, Path(id): Path<String>) -> Response {
    let Some(rec) = m.store.run(&id) else {
        return ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{id}`"));
    };
    let Some(logging) = crate::config::monitoring::Logging::of(&rec.test).filter(|l| l.centralized)
    else {
        return ApiError::reply(
            StatusCode::NOT_FOUND,
            format!("run `{id}` keeps no central log: its test has no `distributed.logging.centralized: true`"),
        );
    };
    let structured = logging.structured();
    let kind = if structured {
        "application/x-ndjson"
    } else {
        "text/plain; charset=utf-8"
    };
    (
        [(header::CONTENT_TYPE, kind)],
        rec.monitoring.log.render(structured),
    )
        .into_response()
}
