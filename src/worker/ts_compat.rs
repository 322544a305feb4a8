//! Our worker answering the TypeScript tool's controller, so a team can move one machine at a time.
//!
//! Both protocols use the same paths; a layer in front of the worker's routes tells them apart by
//! shape and answers the TS calls itself (see [`crate::api::ts_worker`] for the bodies):
//!
//! * `GET /health` answers both at once: `status: "healthy"` (the literal the TS controller
//!   requires), its `timestamp` and `uptime`, and our `now_ms`.
//! * `GET /status` answers our status with the TS fields added (`running`, `activeRunner`,
//!   `virtualUsers`, ...).
//! * `POST /prepare`, `/start`, `/stop`: a JSON body with `run_id` is ours and goes on; any other
//!   body (a TS test configuration, `{"startTime": ms}`, `{}` or nothing) is the TS controller's.
//! * `GET /results` without `?run_id=` is the TS controller's.
//!
//! A TS prepare becomes one of our runs (`ts-<uuid>`) through the same slot, checks (targets,
//! capacity) and engine as ours; the test is read by our test-file reader, which accepts the TS
//! format. The TS controller counts requests from per-request `results`, which we do not keep: they
//! are rebuilt from the run's histograms and status counts, and the summary says so
//! ([`api::ReconstructedNote`]).

use super::slot::{Slot, SlotError};
use crate::api::ts_worker as api;
use crate::api::worker::{Prepare, Results, Start, WorkerPhase};
use crate::config::{Step, TestFile};
use crate::metrics::{Latency, StepStats};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The TS side of one worker: the TS run it prepared last.
#[derive(Clone)]
pub struct TsCompat {
    slot: Slot,
    capacity: crate::config::cluster::Capacity,
    since: Instant,
    run: Arc<Mutex<Option<TsRun>>>,
}

#[derive(Clone)]
struct TsRun {
    id: String,
    test: TestFile,
}

impl TsCompat {
    /// The TS face of the worker whose runs live in `slot`.
    pub fn new(slot: Slot, capacity: crate::config::cluster::Capacity) -> Self {
        Self {
            slot,
            capacity,
            since: Instant::now(),
            run: Arc::default(),
        }
    }

    fn current(&self) -> Option<TsRun> {
        self.run.lock().expect("ts run lock poisoned").clone()
    }

    fn now_iso(&self) -> String {
        api::iso(crate::time::precise_now_ms())
    }
}

/// The layer: answers the TS controller's calls and passes ours on.
pub async fn intercept(State(ts): State<TsCompat>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let ours_query = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("run_id=")));
    match (method, path.as_str()) {
        (Method::GET, "/health") => ts.health(),
        (Method::GET, "/status") => ts.status(),
        (Method::GET, "/results") if !ours_query => ts.results(),
        (Method::POST, "/prepare" | "/start" | "/stop") => {
            let (parts, body) = req.into_parts();
            let bytes = match to_bytes(body, super::BODY_LIMIT).await {
                Ok(b) => b,
                Err(e) => return refuse(&ts, StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            };
            if is_ours(&bytes) {
                return next
                    .run(Request::from_parts(parts, Body::from(bytes)))
                    .await;
            }
            match path.as_str() {
                "/prepare" => ts.prepare(&bytes),
                "/start" => ts.start(&bytes),
                _ => ts.stop(),
            }
        }
        _ => next.run(req).await,
    }
}

/// Our calls carry a JSON object with `run_id`; the TS controller's never do.
fn is_ours(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|v| v.get("run_id").is_some())
}

fn refuse(ts: &TsCompat, code: StatusCode, message: String) -> Response {
    tracing::warn!(
        status = code.as_u16(),
        "refused a TS controller call: {message}"
    );
    (
        code,
        Json(api::TsError {
            error: code.canonical_reason().unwrap_or("Error").to_string(),
            message,
            timestamp: ts.now_iso(),
        }),
    )
        .into_response()
}

fn slot_refusal(ts: &TsCompat, e: SlotError) -> Response {
    let code = match e {
        SlotError::Busy { .. } | SlotError::NotRunning(_) => StatusCode::CONFLICT,
        SlotError::Unknown(_) | SlotError::NotFinished(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    refuse(ts, code, e.to_string())
}

/// The share's VUs as the TS tool counts them (the peak VUs of a closed load, else 0).
fn vus(test: &TestFile) -> u64 {
    use crate::api::master::LoadUnit;
    use crate::control::plan;
    match plan::unit(&test.load) {
        LoadUnit::Vus => plan::units(&test.load),
        LoadUnit::ArrivalsPerSecond => plan::peak_arrival_vus(&test.load).unwrap_or(0),
    }
}

impl TsCompat {
    fn health(&self) -> Response {
        Json(api::TsHealth {
            status: api::HEALTHY.into(),
            timestamp: self.now_iso(),
            uptime: self.since.elapsed().as_secs_f64(),
            now_ms: Some(self.slot.now_ms()),
        })
        .into_response()
    }

    fn status(&self) -> Response {
        let ours = self.slot.status();
        let running = matches!(ours.phase, WorkerPhase::Scheduled | WorkerPhase::Running);
        let ts_run = self
            .current()
            .filter(|r| ours.run_id.as_deref() == Some(r.id.as_str()));
        let done = ts_run
            .as_ref()
            .and_then(|r| self.slot.results(&r.id).ok())
            .map(|r| merged(&r.steps));
        let live = &ours.live;
        let ts = api::TsStatus {
            connected: true,
            running,
            virtual_users: ts_run
                .as_ref()
                .map(|r| vus(&r.test))
                .unwrap_or(live.active_vus),
            requests_per_second: live.rps,
            response_time: done.as_ref().map(|s| s.latency.mean_ms()).unwrap_or(0.0),
            error_rate: match live.requests {
                0 => 0.0,
                n => live.errors as f64 * 100.0 / n as f64,
            },
            active_runner: if running { "running" } else { "idle" }.into(),
            timestamp: self.now_iso(),
            uptime: self.since.elapsed().as_secs_f64(),
        };
        match (serde_json::to_value(&ours), serde_json::to_value(ts)) {
            (Ok(serde_json::Value::Object(mut m)), Ok(serde_json::Value::Object(t))) => {
                m.extend(t);
                Json(serde_json::Value::Object(m)).into_response()
            }
            _ => refuse(
                self,
                StatusCode::INTERNAL_SERVER_ERROR,
                "status did not serialize".into(),
            ),
        }
    }

    fn prepare(&self, body: &[u8]) -> Response {
        let text = String::from_utf8_lossy(body);
        let test = match crate::config::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                return refuse(
                    self,
                    StatusCode::BAD_REQUEST,
                    format!("Invalid test configuration: {e}"),
                )
            }
        };
        if let Some(why) = super::over_capacity(&test.load, self.capacity) {
            return refuse(self, StatusCode::CONFLICT, why);
        }
        self.prepare_test(test)
    }

    fn prepare_test(&self, test: TestFile) -> Response {
        if let Err(why) = crate::config::script::refuse_ts(&test, "a TypeScript controller") {
            return refuse(self, StatusCode::BAD_REQUEST, why);
        }
        let id = format!("ts-{}", uuid::Uuid::new_v4());
        let name = test.name.clone();
        let prepared = self.slot.prepare(Prepare {
            run_id: id.clone(),
            test: test.clone(),
            worker: None,
            variables: Default::default(),
        });
        if let Err(e) = prepared {
            return slot_refusal(self, e);
        }
        tracing::info!(run_id = %id, test = %name, "run prepared by a TS controller");
        *self.run.lock().expect("ts run lock poisoned") = Some(TsRun { id, test });
        Json(api::TsAck {
            status: "prepared".into(),
            test_name: Some(name),
            virtual_users: None,
            timestamp: self.now_iso(),
        })
        .into_response()
    }

    fn start(&self, body: &[u8]) -> Response {
        let start: api::TsStart = if body.iter().all(u8::is_ascii_whitespace) {
            api::TsStart::default()
        } else {
            match serde_json::from_slice(body) {
                Ok(s) => s,
                Err(e) => {
                    return refuse(
                        self,
                        StatusCode::BAD_REQUEST,
                        format!("Invalid start options: {e}"),
                    )
                }
            }
        };
        let Some(mut run) = self.current() else {
            return refuse(
                self,
                StatusCode::BAD_REQUEST,
                "No test configuration prepared. Call /prepare first.".into(),
            );
        };
        let ours = self.slot.status();
        if ours.run_id.as_deref() == Some(run.id.as_str()) {
            match ours.phase {
                WorkerPhase::Scheduled | WorkerPhase::Running => {
                    return refuse(self, StatusCode::CONFLICT, "Test is already running".into())
                }
                // The TS worker runs its prepared test again on every `/start`: so do we, as a new run.
                WorkerPhase::Finished | WorkerPhase::Stopped => {
                    let again = self.prepare_test(run.test.clone());
                    if !again.status().is_success() {
                        return again;
                    }
                    run = self.current().expect("just prepared");
                }
                WorkerPhase::Idle | WorkerPhase::Prepared => {}
            }
        }
        // The TS controller's `startTime` is its `Date.now()` + 5 s: an instant on the shared wall
        // clock, the same reading of it our own `start_at_ms` has.
        let started = self.slot.start(Start {
            run_id: run.id.clone(),
            start_at_ms: start.start_time,
        });
        if let Err(e) = started {
            return slot_refusal(self, e);
        }
        Json(api::TsAck {
            status: "started".into(),
            test_name: Some(run.test.name.clone()),
            virtual_users: Some(vus(&run.test)),
            timestamp: self.now_iso(),
        })
        .into_response()
    }

    fn stop(&self) -> Response {
        let ours = self.slot.status();
        let run = self
            .current()
            .filter(|r| ours.run_id.as_deref() == Some(r.id.as_str()))
            .filter(|_| matches!(ours.phase, WorkerPhase::Scheduled | WorkerPhase::Running));
        let Some(run) = run else {
            return refuse(
                self,
                StatusCode::BAD_REQUEST,
                "No test is currently running".into(),
            );
        };
        if let Err(e) = self.slot.stop(&run.id) {
            return slot_refusal(self, e);
        }
        Json(api::TsAck {
            status: "stopped".into(),
            test_name: None,
            virtual_users: None,
            timestamp: self.now_iso(),
        })
        .into_response()
    }

    fn results(&self) -> Response {
        let done = self
            .current()
            .and_then(|r| self.slot.results(&r.id).ok().map(|res| (r, res)));
        let Some((run, res)) = done else {
            return refuse(
                self,
                StatusCode::NOT_FOUND,
                "No completed test results available".into(),
            );
        };
        let mut out = to_ts(&run.test, &res);
        out.worker = Some(api::TsWorkerInfo {
            host: String::new(),
            port: 0,
            timestamp: self.now_iso(),
        });
        Json(out).into_response()
    }
}

/// All steps' totals in one.
fn merged(steps: &[StepStats]) -> StepStats {
    let mut all = StepStats::default();
    for s in steps {
        all.merge(s);
    }
    all
}

fn percentiles(l: &Latency) -> std::collections::BTreeMap<String, f64> {
    [
        ("50", 0.5),
        ("90", 0.9),
        ("95", 0.95),
        ("99", 0.99),
        ("99.9", 0.999),
    ]
    .into_iter()
    .map(|(k, q)| (k.to_string(), l.quantile_ms(q)))
    .collect()
}

fn statuses(s: &StepStats) -> std::collections::BTreeMap<String, u64> {
    s.status.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Our results as the TS controller reads them: the summary from the totals, and one result per
/// request rebuilt from each step's histogram (at most [`api::MAX_RESULTS`]).
pub fn to_ts(test: &TestFile, res: &Results) -> api::TsResults {
    let scenarios: Vec<&str> = test
        .scenarios
        .iter()
        .flat_map(|s| {
            s.steps
                .iter()
                .filter(|st| matches!(st, Step::Http(_)))
                .map(|_| s.name.as_str())
        })
        .collect();
    let all = merged(&res.steps);
    let elapsed_ms = res.elapsed_s * 1000.0;
    let start = res.started_at_ms.unwrap_or(0.0);
    let vus = vus(test).max(1);
    let mut results = Vec::new();
    let mut left_out = 0u64;
    let mut steps = Vec::new();
    for (i, s) in res.steps.iter().enumerate() {
        let name = res.step_names.get(i).cloned().unwrap_or_default();
        let scenario = scenarios.get(i).copied().unwrap_or_default().to_string();
        steps.push(api::TsStepStatistics {
            step_name: name.clone(),
            scenario: scenario.clone(),
            total_requests: s.count,
            successful_requests: s.count - s.errors.min(s.count),
            failed_requests: s.errors,
            avg_response_time: s.latency.mean_ms(),
            percentiles: percentiles(&s.latency),
            status_distribution: statuses(s),
        });
        let room = api::MAX_RESULTS.saturating_sub(results.len());
        left_out += s.count.saturating_sub(room as u64);
        results.extend(rebuild(s, &name, &scenario, start, elapsed_ms, vus).take(room));
    }
    let count = all.count;
    api::TsResults {
        summary: api::TsSummary {
            total_requests: count,
            successful_requests: count - all.errors.min(count),
            failed_requests: all.errors,
            success_rate: if count == 0 {
                0.0
            } else {
                (count - all.errors.min(count)) as f64 * 100.0 / count as f64
            },
            avg_response_time: all.latency.mean_ms(),
            min_response_time: all.latency.min_ms(),
            max_response_time: all.latency.max_ms(),
            percentiles: percentiles(&all.latency),
            requests_per_second: if res.elapsed_s > 0.0 {
                count as f64 / res.elapsed_s
            } else {
                0.0
            },
            total_duration: elapsed_ms,
            status_distribution: statuses(&all),
            error_distribution: all.errors_by_kind.clone().into_iter().collect(),
            step_statistics: steps,
            vu_ramp_up: Vec::new(),
            perfornium: Some(api::ReconstructedNote {
                exact: false,
                results_left_out: left_out,
                note: "a Perfornium (Rust) worker keeps histograms, not raw results: each result is rebuilt from its step's histogram (response time at 0.1 % resolution); counts per step, per status and of failures are the run's, but which request had which status, its VU and its timestamp are not".into(),
            }),
        },
        results,
        worker: None,
    }
}

/// One step's requests, rebuilt: response times from the histogram (lowest first), the failures
/// last (the slowest), status codes handed out in code order, timestamps spread over the run.
fn rebuild<'a>(
    s: &'a StepStats,
    name: &'a str,
    scenario: &'a str,
    start_ms: f64,
    elapsed_ms: f64,
    vus: u64,
) -> impl Iterator<Item = api::TsResult> + 'a {
    let n = s.count;
    let ok = n - s.errors.min(n);
    let times = s
        .latency
        .recorded_ms()
        .into_iter()
        .flat_map(|(ms, c)| std::iter::repeat_n(ms, c as usize));
    let codes = s
        .status
        .iter()
        .flat_map(|(code, c)| std::iter::repeat_n(Some(*code), *c as usize))
        .chain(std::iter::repeat(None));
    let kinds = s
        .errors_by_kind
        .iter()
        .flat_map(|(k, c)| std::iter::repeat_n(Some(k.clone()), *c as usize))
        .chain(std::iter::repeat(None));
    let mut kinds = kinds;
    times.zip(codes).enumerate().map(move |(i, (ms, status))| {
        let i = i as u64;
        let success = i < ok;
        api::TsResult {
            vu_id: i % vus + 1,
            scenario: scenario.to_string(),
            action: Some(name.to_string()),
            step_name: Some(name.to_string()),
            timestamp: start_ms + elapsed_ms * i as f64 / n.max(1) as f64,
            duration: Some(ms),
            response_time: Some(ms),
            success,
            status,
            error: if success {
                None
            } else {
                kinds.next().flatten()
            },
            response_size: None,
        }
    })
}
