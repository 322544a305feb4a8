//! Our controller driving the TypeScript tool's workers, so a team can move one machine at a time.
//!
//! A worker written `ts+HOST:PORT` (in `-w`, or `"host": "ts+HOST"` in a workers file) is a TS
//! worker. For each one the controller starts an adapter on `127.0.0.1` (an ephemeral port) that
//! answers our worker protocol and speaks the TS protocol ([`crate::api::ts_worker`]) to the TS
//! worker; the driver then plans, starts, polls and merges it like any of ours. What the adapter
//! does with each call:
//!
//! * `/health`: the TS worker's `/health` must say `healthy`; its ISO `timestamp` (ms) against our
//!   clock gives the TS worker's clock offset.
//! * `/prepare`: our test with this worker's share applied, as JSON without its null keys (the TS
//!   tool reads our format's keys: it is the format ours was made from), to the TS `/prepare`.
//! * `/start`: `{"startTime": start_at + offset}` to the TS `/start`, in the background: the TS
//!   worker answers only once that instant has come. Sync start is as close as the TS protocol
//!   allows: one wall-clock instant, ms resolution, the offset estimated from a ms timestamp.
//! * `/metrics`: the TS `/status` while it runs (rate and VUs only: a TS worker reports no
//!   measurements before it finishes); once it is done, its `/results` raw results rebuilt into
//!   our per-second batches and final totals (both from the same results, so they agree).
//! * `/stop`: the TS `/stop`. A TS worker keeps no results of a stopped run: its share counts 0.
//! * `/scale`, `/rendezvous`, `/variables`, `/leases`: refused by name (501), the TS protocol has
//!   no such calls.
//!
//! What cannot be merged exactly is said per worker in the summary (`exact: false`) with a note in
//! its events: TS latencies are whole milliseconds, checks are not counted, and a TS worker keeps
//! at most 50 000 raw results per run (beyond that its requests are missing from the merge).

use crate::api::ts_worker as ts;
use crate::api::worker::{self as api, WorkerAddr, WorkerPhase};
use crate::api::ApiError;
use crate::metrics::collector::{Interval, Live};
use crate::metrics::{Sample, StepStats};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// The prefix that marks a TS worker in `-w` and in a workers file's `host`.
pub const PREFIX: &str = "ts+";

/// How long one call to a TS worker may take (its own controller allows 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why TS workers cannot be driven.
#[derive(Debug, Error)]
pub enum TsWorkerError {
    #[error("worker {0}: a TypeScript worker speaks plain HTTP; drop --ca/--client-cert, or run it behind a TLS-terminating proxy and list the proxy")]
    Tls(String),
    #[error("worker {0}: `ts+` needs a host after it, e.g. ts+10.0.0.1:8080")]
    NoHost(String),
    #[error("worker {addr}: {why}")]
    Hooks { addr: String, why: String },
    #[error("cannot start the adapter for TypeScript worker {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// The adapters of one run's TS workers; they stop when this is dropped.
#[derive(Default)]
pub struct Adapters {
    adapters: Vec<(String, Arc<Adapter>)>,
    stop: CancellationToken,
}

impl Drop for Adapters {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// True when `w` is listed as a TS worker.
pub fn is_ts(w: &WorkerAddr) -> bool {
    w.host.starts_with(PREFIX)
}

/// Starts an adapter for each `ts+` worker of `workers` and puts the adapter's address in its
/// place (named `ts+HOST:PORT` unless it has an `id`). `tls`: the workers are called over HTTPS,
/// which TS workers do not serve. A test with its own hooks is refused before anything starts
/// (they run once per run on one of our workers, which a TS worker cannot stand in for).
pub async fn adapt(
    workers: Vec<WorkerAddr>,
    tls: bool,
    test: &crate::config::TestFile,
) -> Result<(Vec<WorkerAddr>, Adapters), TsWorkerError> {
    let mut out = Vec::with_capacity(workers.len());
    let mut adapters = Adapters::default();
    for mut w in workers {
        if !is_ts(&w) {
            out.push(w);
            continue;
        }
        let shown = w.addr();
        let host = w.host[PREFIX.len()..].to_string();
        if host.is_empty() {
            return Err(TsWorkerError::NoHost(shown));
        }
        if tls {
            return Err(TsWorkerError::Tls(shown));
        }
        if let Err(why) = crate::config::script::refuse_ts(test, "a TypeScript worker") {
            return Err(TsWorkerError::Hooks { addr: shown, why });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .and_then(|l| l.local_addr().map(|a| (l, a)));
        let (listener, local) = listener.map_err(|source| TsWorkerError::Bind {
            addr: shown.clone(),
            source,
        })?;
        let adapter = Arc::new(Adapter::new(
            format!("http://{host}:{}", w.port),
            shown.clone(),
        ));
        let router = adapter.clone().router();
        let stop = adapters.stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!("the adapter of a TypeScript worker stopped: {e}");
            }
        });
        tracing::info!(worker = %shown, adapter = %local, "driving a TypeScript worker through an adapter");
        w.id = Some(w.id.take().unwrap_or_else(|| shown.clone()));
        w.host = "127.0.0.1".into();
        w.port = local.port();
        adapters.adapters.push((w.addr(), adapter));
        out.push(w);
    }
    Ok((out, adapters))
}

impl Adapters {
    /// True when no worker is a TS worker.
    pub fn is_empty(&self) -> bool {
        self.adapters.is_empty()
    }

    /// Marks each TS worker in `summary`: `exact: false`, its name as listed, and an event saying
    /// what of its part was merged and what could not be.
    pub fn annotate(&self, summary: &mut crate::report::RunSummary) {
        for (local, adapter) in &self.adapters {
            let Some(w) = summary.workers.iter_mut().find(|w| &w.address == local) else {
                continue;
            };
            w.address = adapter.shown.clone();
            w.exact = Some(false);
            let merge = adapter.merge.lock().expect("ts merge lock").clone();
            summary.events.push(format!(
                "worker {} (TypeScript tool): {}",
                w.address,
                merge.note()
            ));
        }
    }
}

/// What was merged from one TS worker.
#[derive(Debug, Clone, Default)]
struct Merge {
    /// Raw results it returned.
    raw: u64,
    /// Requests its summary counts (more than `raw` when it kept only some).
    reported: u64,
    /// Raw results naming a step the test does not have (not merged).
    unmatched: u64,
    /// It was stopped: a TS worker keeps no results of a stopped run.
    stopped: bool,
    finished: bool,
}

impl Merge {
    fn note(&self) -> String {
        if self.stopped {
            return "exact: false; stopped, and a TypeScript worker keeps no results of a stopped run: its part counts 0".into();
        }
        if !self.finished {
            return "exact: false; it never finished: its part counts 0".into();
        }
        let mut s = format!(
            "exact: false; merged {} raw results of the {} requests it counted (latencies in whole ms, checks not counted, no live figures before it finished)",
            self.raw - self.unmatched,
            self.reported
        );
        if self.reported > self.raw {
            s += &format!(
                "; {} requests are missing: it keeps at most {} raw results per run",
                self.reported - self.raw,
                ts::MAX_RESULTS
            );
        }
        if self.unmatched > 0 {
            s += &format!(
                "; {} results named steps this test does not have",
                self.unmatched
            );
        }
        s
    }
}

/// One TS worker behind our protocol.
struct Adapter {
    base: String,
    /// `ts+HOST:PORT`, as listed.
    shown: String,
    http: reqwest::Client,
    /// The TS worker's clock minus ours, ms (from its `/health` timestamps).
    offset_ms: Mutex<f64>,
    run: Mutex<Option<Run>>,
    merge: Mutex<Merge>,
}

struct Run {
    id: String,
    steps: Vec<String>,
    vus: u64,
    phase: WorkerPhase,
    start_at_ms: Option<f64>,
    /// The TS `/start` answered: `Some(Ok)` started, `Some(Err)` refused or unreachable.
    started: Option<Result<(), String>>,
    /// The batches and totals, once it finished.
    done: Option<(Vec<Interval>, api::Results)>,
    live: Live,
}

fn refuse(code: StatusCode, message: impl Into<String>) -> Response {
    ApiError::reply(code, message)
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

#[derive(Deserialize)]
struct RunQuery {
    run_id: String,
}

/// `value` without its null keys, recursively.
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(without_nulls).collect())
        }
        v => v,
    }
}

impl Adapter {
    fn new(base: String, shown: String) -> Self {
        Self {
            base,
            shown,
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .build()
                .expect("a plain reqwest client builds"),
            offset_ms: Mutex::new(0.0),
            run: Mutex::new(None),
            merge: Mutex::new(Merge::default()),
        }
    }

    fn router(self: Arc<Self>) -> Router {
        let unsupported = |what: &'static str| {
            move || async move {
                refuse(
                    StatusCode::NOT_IMPLEMENTED,
                    format!("a TypeScript worker has no {what}: the test needs a Perfornium worker for it"),
                )
            }
        };
        Router::new()
            .route("/health", get(health))
            .route("/status", get(status))
            .route("/prepare", post(prepare))
            .route("/start", post(start))
            .route("/stop", post(stop))
            .route("/metrics", get(metrics))
            .route("/results", get(results))
            .route(
                "/scale",
                post(unsupported("/scale (adding load to a running run)")),
            )
            .route(
                "/rendezvous",
                get(unsupported("rendezvous points")).post(unsupported("rendezvous points")),
            )
            .route(
                "/variables",
                get(unsupported("shared variables")).post(unsupported("shared variables")),
            )
            .route(
                "/leases",
                get(unsupported("shared counters")).post(unsupported("shared counters")),
            )
            .with_state(self)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A call to the TS worker; its refusal's `message` (or `error`) as the error.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, (StatusCode, String)> {
        let resp = req
            .header("content-type", "application/json")
            .send()
            .await
            .map_err(|e| {
                (
                    StatusCode::BAD_GATEWAY,
                    format!("TypeScript worker {} unreachable: {e}", self.base),
                )
            })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let why = serde_json::from_str::<ts::TsError>(&text)
                .map(|e| {
                    if e.message.is_empty() {
                        e.error
                    } else {
                        e.message
                    }
                })
                .unwrap_or(text);
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("TypeScript worker answered {status}: {why}"),
            ));
        }
        serde_json::from_str(&text).map_err(|e| {
            (
                StatusCode::BAD_GATEWAY,
                format!("TypeScript worker {}: unreadable answer: {e}", self.base),
            )
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Run>> {
        self.run.lock().expect("ts adapter lock poisoned")
    }

    /// Asks the TS worker how it is doing; takes its results once it is done.
    async fn refresh(&self) -> Result<(), (StatusCode, String)> {
        let (started, id) = {
            let g = self.lock();
            match g.as_ref() {
                Some(r) if r.phase == WorkerPhase::Scheduled || r.phase == WorkerPhase::Running => {
                    (r.started.clone(), r.id.clone())
                }
                _ => return Ok(()),
            }
        };
        match started {
            Some(Err(why)) => return Err((StatusCode::BAD_GATEWAY, why)),
            // Its `/start` has not answered: it is waiting for the start instant.
            None => return Ok(()),
            Some(Ok(())) => {}
        }
        let st: ts::TsStatus = self.call(self.http.get(self.url("/status"))).await?;
        let now = crate::time::precise_now_ms();
        if st.running || st.active_runner == "running" {
            let mut g = self.lock();
            if let Some(r) = g.as_mut().filter(|r| r.id == id) {
                r.phase = WorkerPhase::Running;
                r.live.rps = st.requests_per_second;
                r.live.active_vus = st.virtual_users;
                r.live.elapsed_s = r.start_at_ms.map(|s| (now - s) / 1000.0).unwrap_or(0.0);
            }
            return Ok(());
        }
        let res: ts::TsResults = self.call(self.http.get(self.url("/results"))).await?;
        let mut g = self.lock();
        if let Some(r) = g.as_mut().filter(|r| r.id == id) {
            let (batches, totals, merge) = rebuild(r, &res);
            r.live = Live {
                elapsed_s: totals.elapsed_s,
                requests: totals.steps.iter().map(|s| s.count).sum(),
                errors: totals.steps.iter().map(|s| s.errors).sum(),
                ..Live::default()
            };
            r.done = Some((batches, totals));
            r.phase = WorkerPhase::Finished;
            *self.merge.lock().expect("ts merge lock") = merge;
        }
        Ok(())
    }
}

/// The TS worker's raw results as our per-second batches and final totals (the same samples in
/// both, so the merged batches equal the totals).
fn rebuild(r: &Run, res: &ts::TsResults) -> (Vec<Interval>, api::Results, Merge) {
    let index: HashMap<&str, usize> = r
        .steps
        .iter()
        .enumerate()
        .rev()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let start = r.start_at_ms.unwrap_or(0.0);
    let mut totals = vec![StepStats::default(); r.steps.len()];
    let mut seconds: BTreeMap<u64, Vec<StepStats>> = BTreeMap::new();
    let mut merge = Merge {
        raw: res.results.len() as u64,
        reported: res.summary.total_requests.max(res.results.len() as u64),
        finished: true,
        ..Merge::default()
    };
    let mut last_ms = start;
    for x in &res.results {
        let Some(&step) = index.get(x.step()) else {
            merge.unmatched += 1;
            continue;
        };
        let sample = Sample {
            step,
            latency_us: (x.ms().max(0.0) * 1000.0) as u64,
            status: x.status,
            error: (!x.success).then(|| x.error.clone().unwrap_or_else(|| "failed".into())),
            checks_passed: 0,
            failed_checks: Vec::new(),
            bytes: x.response_size.unwrap_or(0),
        };
        totals[step].record(&sample);
        let at = x.timestamp + x.ms();
        last_ms = last_ms.max(at);
        let second = (((at - start) / 1000.0).floor().max(0.0) as u64) + 1;
        seconds
            .entry(second)
            .or_insert_with(|| vec![StepStats::default(); r.steps.len()])[step]
            .record(&sample);
    }
    let batches: Vec<Interval> = seconds
        .into_iter()
        .enumerate()
        .map(|(i, (second, steps))| Interval {
            seq: i as u64 + 1,
            elapsed_s: second as f64,
            steps,
            active_vus: r.vus,
            dropped: 0,
            arrivals: 0,
            target_arrivals: None,
        })
        .collect();
    let elapsed_s = if res.summary.total_duration > 0.0 {
        res.summary.total_duration / 1000.0
    } else {
        (last_ms - start).max(0.0) / 1000.0
    };
    let results = api::Results {
        run_id: r.id.clone(),
        phase: WorkerPhase::Finished,
        step_names: r.steps.clone(),
        steps: totals,
        elapsed_s,
        dropped: 0,
        started_at_ms: r.start_at_ms,
        last_seq: batches.len() as u64,
        failures: Vec::new(),
        aborted: false,
        captured: Vec::new(),
    };
    (batches, results, merge)
}

async fn health(State(a): State<Arc<Adapter>>) -> Response {
    let t0 = crate::time::precise_now_ms();
    let h: Result<ts::TsHealth, _> = a.call(a.http.get(a.url("/health"))).await;
    let t1 = crate::time::precise_now_ms();
    match h {
        Ok(h) if h.status == ts::HEALTHY => {
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&h.timestamp) {
                *a.offset_ms.lock().expect("offset lock") =
                    at.timestamp_millis() as f64 - (t0 + t1) / 2.0;
            }
            Json(api::Health {
                status: "ok".into(),
                now_ms: crate::time::precise_now_ms(),
            })
            .into_response()
        }
        Ok(h) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("TypeScript worker {} is not healthy: {}", a.base, h.status),
        ),
        Err((code, why)) => refuse(code, why),
    }
}

async fn status(State(a): State<Arc<Adapter>>) -> Response {
    let g = a.lock();
    Json(api::Status {
        phase: g.as_ref().map(|r| r.phase).unwrap_or(WorkerPhase::Idle),
        run_id: g.as_ref().map(|r| r.id.clone()),
        started_at_ms: g.as_ref().and_then(|r| r.start_at_ms),
        live: g.as_ref().map(|r| r.live.clone()).unwrap_or_default(),
        now_ms: crate::time::now_ms(),
        last_poll_ms: 0,
    })
    .into_response()
}

async fn prepare(State(a): State<Arc<Adapter>>, Json(req): Json<api::Prepare>) -> Response {
    if let Some(r) = a.lock().as_ref() {
        if r.id == req.run_id {
            return Json(api::Ack { phase: r.phase }).into_response();
        }
    }
    if let Err(why) = crate::config::script::refuse_ts(&req.test, "a TypeScript worker") {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    // Its load requests carry its name as listed, as ours carry theirs (`api::WORKER_HEADER`).
    let mut test = req.test.clone();
    test.global
        .headers
        .entry(api::WORKER_HEADER.to_string())
        .or_insert_with(|| a.shown.clone());
    let body = match serde_json::to_value(&test) {
        Ok(v) => without_nulls(v),
        Err(e) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let acked: Result<ts::TsAck, _> = a.call(a.http.post(a.url("/prepare")).json(&body)).await;
    if let Err((code, why)) = acked {
        return refuse(code, why);
    }
    use crate::api::master::LoadUnit;
    let vus = match crate::control::plan::unit(&req.test.load) {
        LoadUnit::Vus => crate::control::plan::units(&req.test.load),
        LoadUnit::ArrivalsPerSecond => 0,
    };
    *a.lock() = Some(Run {
        id: req.run_id,
        steps: crate::engine::step_names(&req.test),
        vus,
        phase: WorkerPhase::Prepared,
        start_at_ms: None,
        started: None,
        done: None,
        live: Live::default(),
    });
    *a.merge.lock().expect("ts merge lock") = Merge::default();
    Json(api::Ack {
        phase: WorkerPhase::Prepared,
    })
    .into_response()
}

async fn start(State(a): State<Arc<Adapter>>, Json(req): Json<api::Start>) -> Response {
    let at = req.start_at_ms.unwrap_or_else(crate::time::precise_now_ms);
    {
        let mut g = a.lock();
        match g.as_mut() {
            Some(r) if r.id == req.run_id && r.phase == WorkerPhase::Prepared => {
                r.phase = WorkerPhase::Scheduled;
                r.start_at_ms = Some(at);
            }
            Some(r) if r.id == req.run_id => {
                return Json(api::Ack { phase: r.phase }).into_response()
            }
            _ => return refuse(StatusCode::NOT_FOUND, format!("unknown run {}", req.run_id)),
        }
    }
    let offset = *a.offset_ms.lock().expect("offset lock");
    let body = ts::TsStart {
        start_time: Some((at + offset).round()),
    };
    let wait = Duration::from_secs_f64(((at - crate::time::precise_now_ms()) / 1000.0).max(0.0));
    let adapter = a.clone();
    let id = req.run_id.clone();
    tokio::spawn(async move {
        let call = adapter
            .http
            .post(adapter.url("/start"))
            .timeout(wait + CALL_TIMEOUT)
            .json(&body);
        let answered: Result<ts::TsAck, _> = adapter.call(call).await;
        let mut g = adapter.lock();
        if let Some(r) = g.as_mut().filter(|r| r.id == id) {
            r.started = Some(answered.map(|_| ()).map_err(|(_, why)| why));
        }
    });
    Json(api::Ack {
        phase: WorkerPhase::Scheduled,
    })
    .into_response()
}

async fn stop(State(a): State<Arc<Adapter>>, Json(req): Json<api::Stop>) -> Response {
    let known = a.lock().as_ref().is_some_and(|r| r.id == req.run_id);
    if !known {
        return refuse(StatusCode::NOT_FOUND, format!("unknown run {}", req.run_id));
    }
    // 400 "No test is currently running" is an answer too: it has already ended.
    let _ = a
        .call::<serde_json::Value>(a.http.post(a.url("/stop")))
        .await;
    let mut g = a.lock();
    let Some(r) = g.as_mut() else {
        return refuse(StatusCode::NOT_FOUND, format!("unknown run {}", req.run_id));
    };
    if !r.phase.is_done() {
        r.phase = WorkerPhase::Stopped;
        r.done = Some((
            Vec::new(),
            api::Results {
                run_id: r.id.clone(),
                phase: WorkerPhase::Stopped,
                step_names: r.steps.clone(),
                steps: vec![StepStats::default(); r.steps.len()],
                elapsed_s: 0.0,
                dropped: 0,
                started_at_ms: r.start_at_ms,
                last_seq: 0,
                failures: Vec::new(),
                aborted: false,
                captured: Vec::new(),
            },
        ));
        a.merge.lock().expect("ts merge lock").stopped = true;
    }
    Json(api::Ack { phase: r.phase }).into_response()
}

async fn metrics(State(a): State<Arc<Adapter>>, Query(q): Query<Since>) -> Response {
    if let Err((code, why)) = a.refresh().await {
        return refuse(code, why);
    }
    let g = a.lock();
    let Some(r) = g.as_ref() else {
        return Json(api::Metrics {
            run_id: None,
            phase: WorkerPhase::Idle,
            started_at_ms: None,
            batches: Vec::new(),
            live: Live::default(),
        })
        .into_response();
    };
    Json(api::Metrics {
        run_id: Some(r.id.clone()),
        phase: r.phase,
        started_at_ms: r.start_at_ms,
        batches: r
            .done
            .as_ref()
            .map(|(b, _)| b.iter().filter(|i| i.seq > q.since).cloned().collect())
            .unwrap_or_default(),
        live: r.live.clone(),
    })
    .into_response()
}

async fn results(State(a): State<Arc<Adapter>>, Query(q): Query<RunQuery>) -> Response {
    let g = a.lock();
    match g.as_ref() {
        Some(r) if r.id == q.run_id => match &r.done {
            Some((_, res)) => Json(res.clone()).into_response(),
            None => refuse(
                StatusCode::ACCEPTED,
                format!("run {} has not finished", q.run_id),
            ),
        },
        _ => refuse(StatusCode::NOT_FOUND, format!("unknown run {}", q.run_id)),
    }
}
