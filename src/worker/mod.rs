//! `perfornium worker`: the worker HTTP API on one port, pull-based (a worker never connects to its
//! controller). `GET /health` is open; with a token configured every other call needs
//! `Authorization: Bearer T`, and with `--allow-from` only those networks get in ([`crate::guard`]).
//! Request bodies are limited in size, and `--allow-target` limits what tests may aim at. See [`crate::api::worker`] for the messages
//! and [`slot`] for the run state machine behind them.
//!
//! The same port serves the API as a gRPC service ([`grpc`], by its `/perfornium.worker.Worker/`
//! paths, HTTP/2) and the batch stream as a WebSocket (`GET /metrics` with an upgrade, [`ws`]), so
//! the controller's `communication.protocol` alone chooses the transport. Both go through the
//! same guard: a gRPC call is made as the HTTP call it stands for, with the caller's metadata.
//! Answers to `GET /metrics` are gzip- or zstd-compressed when the caller accepts it.

pub mod grpc;
pub mod logs;
pub mod register;
pub mod slot;
pub mod spool;
pub mod ts_compat;
pub mod ws;

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
    /// Where runs with `raw_data` spool their samples (default [`spool::Spool::default_dir`]).
    pub spool_dir: Option<std::path::PathBuf>,
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
    let spool = spool::Spool::new(opts.spool_dir.unwrap_or_else(spool::Spool::default_dir));
    let state = Worker {
        slot: Slot::with_clock_offset(opts.allow_targets, opts.clock_offset_ms)
            .with_spool(spool.clone()),
        capacity: opts.capacity,
        resources: Default::default(),
    };
    let routes = Router::new()
        .route(
            "/metrics",
            get(metrics).layer(
                tower_http::compression::CompressionLayer::new()
                    .no_br()
                    .no_deflate()
                    .compress_when(metrics_compressed()),
            ),
        )
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/resources", get(resources))
        .route("/prepare", post(prepare))
        .route("/test-hook", post(test_hook))
        .route("/start", post(start))
        .route("/stop", post(stop))
        .route("/scale", post(scale))
        .route("/results", get(results))
        .route("/rendezvous", get(rendezvous).post(release))
        .route("/variables", get(variables).post(merge_variables))
        .route("/leases", get(leases).post(grant))
        .layer(axum::middleware::from_fn_with_state(
            ts_compat::TsCompat::new(state.slot.clone(), opts.capacity),
            ts_compat::intercept,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state.clone())
        .merge(spool.router());
    let guarded = opts.guard.wrap(routes);
    // Outside the guard: each gRPC call goes through `guarded` as the HTTP call it stands for.
    let grpc = grpc::service(state, guarded.clone());
    guarded.route_service(grpc::PATH, grpc)
}

/// Which `GET /metrics` answers are compressed (for callers that accept it): any of 32 bytes or
/// more, but never the WebSocket upgrade.
fn metrics_compressed() -> impl tower_http::compression::Predicate {
    use tower_http::compression::{DefaultPredicate, Predicate};
    DefaultPredicate::new().and(
        |status: StatusCode,
         _: axum::http::Version,
         _: &axum::http::HeaderMap,
         _: &axum::http::Extensions| { status != StatusCode::SWITCHING_PROTOCOLS },
    )
}

/// Serves the worker API on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: WorkerOptions,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    // HTTP/2 for gRPC: offered in the TLS handshake beside HTTP/1.1 (plain connections are told
    // apart by their first bytes).
    let tls = opts.tls.clone().map(|c| {
        let mut c = (*c).clone();
        c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        std::sync::Arc::new(c)
    });
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

/// `GET /resources`: this process's and its host's CPU and memory now (`least_loaded` plans by it).
async fn resources(State(w): State<Worker>) -> Json<crate::metrics::resources::Resources> {
    Json(w.resources.sample())
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

/// `POST /test-hook`: the test's own hooks, once for the run (see [`slot::Slot::test_hook`]).
async fn test_hook(State(w): State<Worker>, Json(req): Json<api::TestHook>) -> Response {
    match w.slot.test_hook(req).await {
        Ok(done) => Json(done).into_response(),
        Err(e) => refuse(e),
    }
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

async fn metrics(
    State(w): State<Worker>,
    Query(q): Query<crate::api::transport::StreamQuery>,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Response {
    if let Ok(upgrade) = upgrade {
        return ws::upgrade(w, q, upgrade);
    }
    match w.pull(q.since, q.ack.unwrap_or(q.since)) {
        Some(body) => Json(body).into_response(),
        None => ApiError::reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics did not serialize",
        ),
    }
}

impl Worker {
    /// A `GET /metrics?since=N&ack=A` answer: batches after `since` (acknowledging up to `ack`),
    /// with what the worker measured about itself and its log records.
    fn pull(&self, since: u64, ack: u64) -> Option<serde_json::Value> {
        self.answer(self.slot.pull(since, ack))
    }

    /// `metrics` with this pull's extras, as one JSON object (see `api::worker::Pull`).
    fn answer(&self, metrics: api::Metrics) -> Option<serde_json::Value> {
        let (logs, logs_dropped) = match &metrics.run_id {
            Some(id) => logs::drain(id),
            None => (Vec::new(), 0),
        };
        let extras = api::PullExtras {
            resources: Some(self.resources.sample()),
            logs,
            logs_dropped,
        };
        // One JSON object: `Metrics`' fields, then the extras'.
        match (serde_json::to_value(metrics), serde_json::to_value(extras)) {
            (Ok(serde_json::Value::Object(mut m)), Ok(serde_json::Value::Object(x))) => {
                m.extend(x);
                Some(serde_json::Value::Object(m))
            }
            _ => None,
        }
    }

    /// The batch stream of the gRPC and WebSocket transports: `GET /metrics` answers, each batch
    /// after `sent` once, sent as soon as it closes (checked every `STREAM_CHECK_MS`) or when the
    /// phase changes, and at least every `every`. Nothing is acknowledged here: the worker keeps
    /// every batch until an ack (`since`) covers it, so a broken stream loses nothing.
    fn stream(
        &self,
        mut sent: u64,
        every: std::time::Duration,
    ) -> tokio::sync::mpsc::Receiver<serde_json::Value> {
        use crate::api::transport::STREAM_CHECK_MS;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let w = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(STREAM_CHECK_MS));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last: Option<(std::time::Instant, api::WorkerPhase)> = None;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                }
                // `since` 0 acknowledges nothing: what is left is what no ack covered yet.
                let mut m = w.slot.metrics(0);
                m.batches.retain(|b| b.seq > sent);
                let due = last.is_none_or(|(at, phase)| {
                    at.elapsed() >= every || phase != m.phase || !m.batches.is_empty()
                });
                if !due {
                    continue;
                }
                if let Some(b) = m.batches.last() {
                    sent = b.seq;
                }
                last = Some((std::time::Instant::now(), m.phase));
                let Some(body) = w.answer(m) else { continue };
                if tx.send(body).await.is_err() {
                    return;
                }
            }
        });
        rx
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
