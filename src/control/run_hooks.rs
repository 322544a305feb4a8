//! The test's own hooks (`beforeTest`, `onTestError`, `teardownTest`) in a distributed run, once
//! for the run as in a local one: `beforeTest` on the first worker of the plan while the run is
//! prepared, before any worker is (what it leaves in its variables is saved in the run's record
//! and sent to every worker in its `/prepare`, so every VU starts with it); `onTestError` (when the
//! run failed) and `teardownTest` after every worker ended, on one live worker. Both go through
//! the worker's `POST /test-hook`, which a worker that predates it answers 404: the run then fails
//! with that said, instead of running without its hooks.
//!
//! Exactly once across a change of leader: the record says whether each ran, so a new leader does
//! not run them again; a leader that dies after the call and before the record is saved leaves a
//! new leader to call again, and the worker answers that repeat from what it kept (the hooks run
//! again only if that worker restarted meanwhile, or another worker is asked).

use super::client::WorkerClient;
use super::run::{Phase, RunRecord, WorkerState};
use crate::api::worker as api;
use crate::time::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the record keeps of the test's own hooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestHooksRecord {
    /// `beforeTest` ran (or there is none) and left these variables; `None`: not yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<BTreeMap<String, String>>,
    /// The worker `beforeTest` ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_on: Option<String>,
    /// `onTestError`/`teardownTest` are done (they ran, or are not due).
    #[serde(default)]
    pub after_done: bool,
    /// The worker they ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_on: Option<String>,
    /// Why the hooks failed the run (each also fails the summary's verdict).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// The test's own hooks, when it has any.
fn hooks(rec: &RunRecord) -> Option<&crate::config::script::TestHooks> {
    crate::config::script::test_hooks(&rec.test)
}

/// What `beforeTest` left, for every worker's `/prepare` (empty when none ran).
pub fn variables(rec: &RunRecord) -> BTreeMap<String, String> {
    rec.test_hooks
        .as_ref()
        .and_then(|h| h.variables.clone())
        .unwrap_or_default()
}

/// How long one `/test-hook` call may take: every hook's own time-out (30 s when not given) and
/// the coordination time-out on top.
fn wait(rec: &RunRecord) -> Duration {
    let hooks: Duration = hooks(rec)
        .map(|h| {
            h.all()
                .map(|(_, h)| h.timeout.unwrap_or(crate::config::script::DEFAULT_TIMEOUT))
                .sum()
        })
        .unwrap_or_default();
    hooks + Duration::from_millis(rec.settings.coordination_timeout_ms)
}

/// One `/test-hook` call, sent again on a transient failure until the coordination time-out (the
/// worker answers a repeat from what it kept): `Err` says why it could not be had.
async fn call(
    rec: &RunRecord,
    client: &WorkerClient,
    body: &api::TestHook,
) -> Result<api::TestHookDone, String> {
    let deadline = now_ms() + rec.settings.coordination_timeout_ms;
    loop {
        match client.test_hook(body, wait(rec)).await {
            Ok(done) => return Ok(done),
            Err(e) if e.status() == Some(404) => {
                return Err(format!(
                    "worker {} does not run a test's own hooks (`POST /test-hook` answered 404: a perfornium \
                     older than this controller?): {e}",
                    client.addr
                ))
            }
            Err(e) if e.is_permanent() || now_ms() >= deadline => return Err(e.to_string()),
            Err(e) => {
                tracing::warn!(worker = %client.addr, "test hook call failed, sending it again: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Runs `beforeTest` once for the run, on the first pending worker of the plan, unless the record
/// says it ran. `Ok(Some(event))` when it ran now; `Err(why)` when it failed (its `onTestError` and
/// `teardownTest` then ran on that worker) or could not run: the run fails before any load.
pub async fn before(
    rec: &mut RunRecord,
    clients: &[WorkerClient],
) -> Result<Option<String>, String> {
    let Some(h) = hooks(rec) else {
        return Ok(None);
    };
    let has_before = h.before_test.is_some();
    let state = rec.test_hooks.get_or_insert_with(Default::default);
    if state.variables.is_some() {
        return Ok(None);
    }
    if !has_before {
        state.variables = Some(BTreeMap::new());
        return Ok(None);
    }
    let Some(i) = rec
        .workers
        .iter()
        .position(|w| w.state == WorkerState::Pending)
    else {
        return Err("beforeTest: no worker to run it on".into());
    };
    let addr = rec.workers[i].addr.addr();
    let body = api::TestHook {
        run_id: rec.id.clone(),
        hook: api::TestHookKind::Before,
        test: rec.test.clone(),
        worker: Some(addr.clone()),
        variables: BTreeMap::new(),
        failures: Vec::new(),
    };
    let answer = call(rec, &clients[i], &body).await;
    let state = rec.test_hooks.get_or_insert_with(Default::default);
    state.before_on = Some(addr.clone());
    match answer {
        Ok(api::TestHookDone {
            error: None,
            variables,
        }) => {
            let event = format!(
                "beforeTest ran once, on worker {addr}: {} variable(s) for every worker's VUs",
                variables.len()
            );
            state.variables = Some(variables);
            Ok(Some(event))
        }
        Ok(api::TestHookDone { error: Some(e), .. }) => {
            // That worker ran `onTestError` and `teardownTest` right after, as a local run does.
            state.after_done = true;
            state.after_on = Some(addr.clone());
            state.failures.push(e.clone());
            Err(format!("worker {addr}: {e}"))
        }
        Err(e) => {
            state.after_done = true;
            let why = format!("beforeTest could not run: {e}");
            state.failures.push(why.clone());
            Err(why)
        }
    }
}

/// Why the run failed, for `onTestError`'s `context.error` (empty: it did not): the workers'
/// recorded failures (`fail_test`, `abort`, CSV `stop_test`) and, for a failed run, its failed
/// workers.
fn failures(rec: &RunRecord, phase: Phase) -> Vec<String> {
    let mut out: Vec<String> = rec
        .workers
        .iter()
        .filter_map(|w| w.results.as_ref().map(|r| (w.addr.addr(), &r.failures)))
        .flat_map(|(addr, f)| f.iter().map(move |why| format!("worker {addr}: {why}")))
        .collect();
    if phase == Phase::Failed {
        out.extend(
            rec.workers
                .iter()
                .filter(|w| w.state == WorkerState::Failed)
                .map(|w| {
                    format!(
                        "worker {} failed: {}",
                        w.addr.addr(),
                        w.error.clone().unwrap_or_default()
                    )
                }),
        );
        if out.is_empty() {
            out.push("the run failed".into());
        }
    }
    out
}

/// Runs `onTestError` (when the run failed) and `teardownTest` once after every worker ended, on
/// the first live worker that answers, unless the record says they ran. Returns the events to
/// record; their failures are kept in the record, where each fails the summary's verdict (as a
/// local run's do: exit code 1).
pub async fn after(rec: &mut RunRecord, clients: &[WorkerClient], phase: Phase) -> Vec<String> {
    let Some(h) = hooks(rec) else {
        return Vec::new();
    };
    // Not prepared (refused before `beforeTest`), or done already.
    match &rec.test_hooks {
        Some(s) if !s.after_done => {}
        _ => return Vec::new(),
    }
    let why = failures(rec, phase);
    let due = h.teardown_test.is_some() || (h.on_test_error.is_some() && !why.is_empty());
    if !due {
        if let Some(s) = rec.test_hooks.as_mut() {
            s.after_done = true;
        }
        return Vec::new();
    }
    let body = api::TestHook {
        run_id: rec.id.clone(),
        hook: api::TestHookKind::After,
        test: rec.test.clone(),
        worker: None,
        variables: variables(rec),
        failures: why,
    };
    let live: Vec<usize> = (0..rec.workers.len().min(clients.len()))
        .filter(|&i| {
            !matches!(
                rec.workers[i].state,
                WorkerState::Failed | WorkerState::Idle
            )
        })
        .collect();
    let mut events = Vec::new();
    let mut outcome = None;
    for i in live {
        let addr = rec.workers[i].addr.addr();
        let body = api::TestHook {
            worker: Some(addr.clone()),
            ..body.clone()
        };
        match call(rec, &clients[i], &body).await {
            Ok(done) => {
                outcome = Some((addr, done));
                break;
            }
            Err(e) => events.push(format!(
                "test hooks after the load not run on worker {addr}: {e}"
            )),
        }
    }
    let state = rec.test_hooks.get_or_insert_with(Default::default);
    state.after_done = true;
    match outcome {
        Some((addr, done)) => {
            state.after_on = Some(addr.clone());
            match done.error {
                None => {
                    events.push(format!(
                        "onTestError/teardownTest ran once, on worker {addr}"
                    ));
                }
                Some(e) => {
                    events.push(format!(
                        "test hooks after the load failed on worker {addr}: {e}"
                    ));
                    state.failures.extend(e.lines().map(str::to_string));
                }
            }
        }
        None => {
            let why = "teardownTest/onTestError could not run: no live worker answered".to_string();
            events.push(why.clone());
            state.failures.push(why);
        }
    }
    events
}
