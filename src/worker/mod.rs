//! `perfornium worker`: the worker HTTP API on one port, pull-based (a worker never connects to its
//! controller). `GET /health` is open; with a token configured every other call needs
//! `Authorization: Bearer T`, and with `--allow-from` only those networks get in ([`crate::guard`]).
//! Request bodies are limited in size, and `--allow-target` limits what tests may aim at. See [`crate::api::worker`] for the messages
//! and [`slot`] for the run state machine behind them.

pub mod logs;
pub mod register;
pub mod slot;
pub mod ts_compat;

use crate::api::worker as api;
use crate::api::ApiError;
use crate::guard::Guard;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use slot::{Slot, SlotError};

/// The largest request body a worker accepts (a test with inline CSV rows); larger ones get 413.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// How a worker is protected.
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// Token and allowed networks.
    pub guard: Guard,
    /// Hosts (`host` or `host:port`) tests may target; empty allows any.
    pub allow_targets: Vec<String>,
    /// Serve HTTPS with this configuration (which may require client certificates).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Tests only: this worker's clock runs this many ms off the machine's (see
    /// `perfornium worker --test-clock-offset`).
    pub clock_offset_ms: f64,
    /// `worker.capacity` of `--config`: a share over it is refused with 409.
    pub capacity: crate::config::cluster::Capacity,
}

#[derive(Clone)]
struct Worker {
    slot: Slot,
    capacity: crate::config::cluster::Capacity,
    /// CPU and memory of this process and host, sampled on every pull.
    resources: std::sync::Arc<crate::metrics::resources::Sampler>,
}

/// The worker's routes behind its guard.
pub fn router(opts: WorkerOptions) -> Router {
    let state = Worker {
        slot: Slot::with_clock_offset(opts.allow_targets, opts.clock_offset_ms),
        capacity: opts.capacity,
        resources: Default::default(),
    };
    let routes = Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/prepare", post(prepare))
        .route("/start", post(start))
        .route("/stop", post(stop))
        .route("/scale", post(scale))
        .route("/metrics", get(metrics))
        .route("/results", get(results))
        .route("/rendezvous", get(rendezvous).post(release))
        .route("/variables", get(variables).post(merge_variables))
        .route("/leases", get(leases).post(grant))
        .layer(axum::middleware::from_fn_with_state(
            ts_compat::TsCompat::new(state.slot.clone(), opts.capacity),
            ts_compat::intercept,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
    opts.guard.wrap(routes)
}

/// Serves the worker API on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: WorkerOptions,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let tls = opts.tls.clone();
    crate::tls::serve(listener, router(opts), tls, stop).await
}

fn refuse(e: SlotError) -> Response {
    let code = match e {
        SlotError::Busy { .. } => StatusCode::CONFLICT,
        SlotError::Unknown(_) => StatusCode::NOT_FOUND,
        SlotError::BadTest(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SlotError::NotFinished(_) => StatusCode::ACCEPTED,
        SlotError::NotRunning(_) => StatusCode::CONFLICT,
        // The test (or start instant) cannot run here: the same class of refusal as a bad test.
        SlotError::UncheckableTarget(_)
        | SlotError::TargetNotAllowed(_)
        | SlotError::BadStart(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    if code != StatusCode::ACCEPTED {
        tracing::warn!(status = code.as_u16(), "refused: {e}");
    }
    ApiError::reply(code, e.to_string())
}

fn phase(r: Result<api::WorkerPhase, SlotError>) -> Response {
    match r {
        Ok(phase) => Json(api::Ack { phase }).into_response(),
        Err(e) => refuse(e),
    }
}

async fn health(State(w): State<Worker>) -> Json<api::Health> {
    Json(api::Health {
        status: "ok".into(),
        now_ms: w.slot.now_ms(),
    })
}

async fn status(State(w): State<Worker>) -> Json<api::Status> {
    Json(w.slot.status())
}

async fn prepare(State(w): State<Worker>, Json(req): Json<api::Prepare>) -> Response {
    if let Some(why) = over_capacity(&req.test.load, w.capacity) {
        tracing::warn!(status = 409, run_id = %req.run_id, "refused: {why}");
        return ApiError::reply(StatusCode::CONFLICT, why);
    }
    // `distributed.logging.centralized`: this run's records go to the controller with the pulls.
    let logging = crate::config::monitoring::Logging::of(&req.test);
    let capture = (req.run_id.clone(), req.worker.clone(), logging);
    let r = w.slot.prepare(req);
    if let (Ok(_), (run_id, worker, Some(l))) = (&r, capture) {
        if l.centralized {
            let source = worker.unwrap_or_else(|| "worker".into());
            logs::start(&run_id, &source, l.worker_level());
        }
    }
    phase(r)
}

/// Why a share does not fit this worker's `capacity`, if it does not: its peak VUs (the VU cap
/// of an arrivals load, when it has one) over `max_vus`, or its arrival rate over `max_rps`.
pub fn over_capacity(
    load: &crate::config::Load,
    cap: crate::config::cluster::Capacity,
) -> Option<String> {
    use crate::api::master::LoadUnit;
    use crate::control::plan;
    let (vus, rate) = match plan::unit(load) {
        LoadUnit::Vus => (Some(plan::units(load)), None),
        LoadUnit::ArrivalsPerSecond => (
            plan::peak_arrival_vus(load),
            Some(plan::amount(plan::units(load), LoadUnit::ArrivalsPerSecond)),
        ),
    };
    if let (Some(v), Some(max)) = (vus, cap.max_vus) {
        if v > max {
            return Some(format!(
                "this share is {v} VUs but this worker's capacity.max_vus is {max} ({} over): plan with its capacity, or add workers",
                v - max
            ));
        }
    }
    if let (Some(r), Some(max)) = (rate, cap.max_rps) {
        if r > max as f64 {
            return Some(format!(
                "this share is {r} arrivals/s but this worker's capacity.max_rps is {max} ({} over): plan with its capacity, or add workers",
                r - max as f64
            ));
        }
    }
    None
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

async fn metrics(State(w): State<Worker>, Query(q): Query<Since>) -> Response {
    let metrics = w.slot.metrics(q.since);
    let (logs, logs_dropped) = match &metrics.run_id {
        Some(id) => logs::drain(id),
        None => (Vec::new(), 0),
    };
    let extras = api::PullExtras {
        resources: Some(w.resources.sample()),
        logs,
        logs_dropped,
    };
    // One JSON object: `Metrics`' fields, then the extras' (see `api::worker::Pull`).
    match (serde_json::to_value(metrics), serde_json::to_value(extras)) {
        (Ok(serde_json::Value::Object(mut m)), Ok(serde_json::Value::Object(x))) => {
            m.extend(x);
            Json(serde_json::Value::Object(m)).into_response()
        }
        _ => ApiError::reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics did not serialize",
        ),
    }
}

#[derive(Deserialize)]
struct RunQuery {
    run_id: String,
}

async fn rendezvous(State(w): State<Worker>, Query(q): Query<RunQuery>) -> Response {
    match w.slot.rendezvous(&q.run_id) {
        Ok(r) => Json(r).into_response(),
        Err(e) => refuse(e),
    }
}

async fn release(State(w): State<Worker>, Json(req): Json<api::Release>) -> Response {
    match w.slot.release(&req) {
        Ok(released) => Json(api::Released { released }).into_response(),
        Err(e) => refuse(e),
    }
}

async fn variables(State(w): State<Worker>, Query(q): Query<RunQuery>) -> Response {
    match w.slot.globals(&q.run_id) {
        Ok(v) => Json(v).into_response(),
        Err(e) => refuse(e),
    }
}

async fn merge_variables(State(w): State<Worker>, Json(req): Json<api::Variables>) -> Response {
    match w.slot.merge_globals(&req) {
        Ok(v) => Json(v).into_response(),
        Err(e) => refuse(e),
    }
}

async fn leases(State(w): State<Worker>, Query(q): Query<RunQuery>) -> Response {
    match w.slot.leases(&q.run_id) {
        Ok(v) => Json(v).into_response(),
        Err(e) => refuse(e),
    }
}

async fn grant(State(w): State<Worker>, Json(req): Json<api::LeaseGrant>) -> Response {
    match w.slot.grant(&req) {
        Ok(v) => Json(v).into_response(),
        Err(e) => refuse(e),
    }
}

async fn results(State(w): State<Worker>, Query(q): Query<RunQuery>) -> Response {
    match w.slot.results(&q.run_id) {
        Ok(r) => Json(r).into_response(),
        Err(e) => refuse(e),
    }
}
