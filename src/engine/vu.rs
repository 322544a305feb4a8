//! A virtual user: picks its scenario, keeps its own variables, and runs iterations of the
//! scenario's steps until its iterations are done, its own end (a level that stops it, a phase's
//! end), the test's deadline passes or the run is stopped. A failed step is recorded and the VU
//! goes on, as load tests do, unless the step says `on_error: {continue: false}`; a step's `retry`
//! sends a failed request again (every attempt is a sample), and its `thresholds` are checked
//! against each result with their action.

use super::client::VuClient;
use super::http::{self, Target};
use super::scripting;
use super::template::Vars;
use super::Shared;
use crate::config::step_options::{StepMetric, ThresholdAction};
use crate::config::{HttpStep, Step, ThinkTime};
use crate::metrics::Sample;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A closed-model VU: loops until done, or until `until`.
pub async fn run_closed(
    shared: std::sync::Arc<Shared>,
    vu: u64,
    iterations: Option<u64>,
    until: Option<Instant>,
) {
    shared.gauges.active_vus.fetch_add(1, Ordering::Relaxed);
    let scenario = shared.picker.pick(vu);
    let mut vars = shared.initial_vars(scenario, vu);
    let mut client = shared.client();
    let mut iteration = 0;
    while iterations.is_none_or(|n| iteration < n)
        && !shared.stopped()
        && until.is_none_or(|u| Instant::now() < u)
    {
        if !shared.unpaused(until).await {
            break;
        }
        vars.iteration = iteration;
        let end = run_iteration(&shared, &mut client, scenario, &mut vars, None, until, true).await;
        iteration += 1;
        if end {
            break;
        }
    }
    shared.gauges.active_vus.fetch_sub(1, Ordering::Relaxed);
}

/// What a step's result asks of its VU.
enum After {
    Next,
    /// End this iteration (a failed step with `continue: false`, a `fail_scenario` threshold).
    EndIteration,
}

/// One iteration of a scenario (its steps, `loop` times, or for the loop's `duration`). `origin` is
/// the open model's intended start, which the first request is timed from; `until` is the VU's own
/// end. Returns whether the VU must end now (its CSV rows are exhausted). With `arrival`, the
/// iteration counts as an arrival (the report's arrival rate) once its first step begins, so an
/// iteration the run's end cuts before it sends anything is not one.
pub async fn run_iteration(
    shared: &Shared,
    client: &mut VuClient,
    scenario: usize,
    vars: &mut Vars,
    mut origin: Option<Instant>,
    until: Option<Instant>,
    mut arrival: bool,
) -> bool {
    let sc = &shared.test.scenarios[scenario];
    if let Some(feeder) = shared.feeders[scenario]
        .as_ref()
        .filter(|f| !(f.keeps_row() && vars.has_row))
    {
        match feeder.row(vars.vu, vars.iteration) {
            super::data::Pick::Row(row) => {
                vars.has_row = true;
                vars.values
                    .extend(row.iter().map(|(k, v)| (k.clone(), v.clone())))
            }
            super::data::Pick::None => {}
            super::data::Pick::StopVu => return true,
            super::data::Pick::StopTest => {
                shared.abort("CSV data exhausted (on_exhausted: stop_test)".into());
                return true;
            }
        }
    }
    let think = sc.think_time.or(shared.test.global.think_time);
    let target = Target {
        base_url: shared.test.global.base_url.as_deref(),
    };
    // Whether the run (or the VU) has ended at `at`. The first step of an open-model arrival is
    // judged at the arrival's intended start: an arrival due before the run's end runs even when
    // the dispatcher or the VU got to it after the end, so every arrival due is made or dropped.
    let ends = |shared: &Shared, at: Instant| {
        shared.cancel.is_cancelled()
            || shared.deadline.is_some_and(|d| at >= d)
            || until.is_some_and(|u| at >= u)
    };
    let mut first = true;
    let loop_end = sc.looping.duration.map(|d| Instant::now() + d);
    // The scenario's JavaScript, when the test has any (one `Option` test otherwise).
    let js = shared.scripts.as_ref().map(|s| (s, &s.scenarios[scenario]));
    let wraps = js.filter(|(_, j)| j.wraps());
    // A `type: steps` hook's requests go through the VU's own connection.
    macro_rules! io {
        () => {
            &mut scripting::Io {
                shared,
                client: &mut *client,
                target: &target,
            }
        };
    }
    if let Some((all, j)) = wraps {
        if !scripting::begin(all, j, vars, io!()).await {
            scripting::end(all, j, vars, io!()).await;
            return false;
        }
    }
    let mut round = 0u32;
    'rounds: loop {
        if loop_end.is_some() {
            if loop_end.is_some_and(|e| Instant::now() >= e) {
                break;
            }
        } else if round >= sc.looping.count.max(1) {
            break;
        }
        round += 1;
        if let Some((all, j)) = wraps {
            if !scripting::before_round(all, j, vars, io!()).await {
                break;
            }
        }
        for (i, step) in sc.steps.iter().enumerate() {
            let at = match origin.filter(|_| std::mem::take(&mut first)) {
                Some(intended) => intended,
                None => Instant::now(),
            };
            if ends(shared, at) {
                break 'rounds;
            }
            if std::mem::take(&mut arrival) {
                shared.gauges.arrivals.fetch_add(1, Ordering::Relaxed);
            }
            shared
                .globals
                .copy_into(&mut vars.values, &mut vars.globals_seen);
            let step_js = js.and_then(|(all, j)| j.steps[i].as_ref().map(|s| (all, j, s)));
            if let Some((all, j, s)) = step_js {
                if !scripting::before_step(all, j, s, vars, io!()).await {
                    continue;
                }
            }
            match step {
                Step::Http(h) => {
                    let id = shared.step_ids[scenario][i].expect("every HTTP step has an id");
                    let after =
                        http_step(shared, client, &target, h, id, vars, origin.take()).await;
                    let mut end = matches!(after, After::EndIteration);
                    if let Some((all, j, s)) = step_js {
                        let failed = vars.js.last_failed();
                        end |= !scripting::after_step(all, j, s, vars, io!(), failed).await;
                    }
                    if let Some(t) = h.options.think_time.or(think) {
                        if !t.max.is_zero() {
                            client.idle();
                        }
                        pause(shared, t, until).await;
                    }
                    if end {
                        break 'rounds;
                    }
                }
                Step::Script(x) => {
                    if let Some((all, j, s)) = step_js {
                        let failed = scripting::script_step(all, j, s, x, vars, &shared.samples);
                        let hooks_ok = scripting::after_step(all, j, s, vars, io!(), failed).await;
                        if (failed && !x.continue_on_error) || !hooks_ok {
                            break 'rounds;
                        }
                    }
                }
                Step::Wait { duration, .. } => pause(shared, *duration, until).await,
                Step::Rendezvous(r) => {
                    tokio::select! {
                        _ = shared.rendezvous.wait(&r.point, r.count, r.timeout) => {}
                        _ = shared.cancel.cancelled() => break 'rounds,
                    }
                }
            }
        }
        if let Some((all, j)) = wraps {
            if !scripting::after_round(all, j, vars, io!()).await {
                break;
            }
        }
    }
    if let Some((all, j)) = wraps {
        scripting::end(all, j, vars, io!()).await;
    }
    false
}

/// Sends one HTTP step (with its retries), records every attempt, and applies its thresholds.
async fn http_step(
    shared: &Shared,
    client: &mut VuClient,
    target: &Target<'_>,
    h: &HttpStep,
    id: usize,
    vars: &mut Vars,
    mut origin: Option<Instant>,
) -> After {
    let attempts = h.options.retry.as_ref().map_or(1, |r| r.max_attempts);
    let previous = h.options.timeout.map(|t| client.set_timeout(t));
    let mut after = After::Next;
    for attempt in 1..=attempts {
        vars.next_request();
        if let (Some(state), refs) = (&shared.state, &shared.state_refs[id]) {
            if !refs.is_empty() {
                // A leased counter may wait for the controller's next grant: the run's stop ends
                // the wait (the request is not made).
                let resolved = tokio::select! {
                    r = state.resolve(refs, &mut vars.values) => r,
                    _ = shared.cancel.cancelled() => {
                        after = After::EndIteration;
                        break;
                    }
                };
                if let Err(e) = resolved {
                    // A counter that cannot be read or moved would give wrong data: the run stops.
                    shared.fail(format!("shared state: {e}"));
                    shared.cancel.cancel();
                    after = After::EndIteration;
                    break;
                }
            }
        }
        let mut captured = (shared.debug.is_some()
            || h.options.log_full_response
            || shared.scripts.is_some()
            || shared.compiled_thresholds[id]
                .iter()
                .any(|t| t.script.is_some()))
        .then(http::Captured::default);
        let (mut sample, extracted) = http::send(
            client,
            target,
            (h, shared.prepared[id].as_ref(), &shared.compiled[id]),
            id,
            vars,
            origin.take(),
            captured.as_mut(),
        )
        .await;
        let failed_request = sample.error.is_some() || !sample.failed_checks.is_empty();
        let body = captured.as_ref().and_then(|c| c.response.as_deref());
        let verdict = thresholds(shared, h, id, &mut sample, (vars, body));
        let failed = failed_request || sample.error.is_some();
        if shared.scripts.is_some() {
            vars.js.set_last_response(crate::script::LastResponse {
                step: h.name.clone(),
                status: sample.status,
                body: captured
                    .as_ref()
                    .and_then(|c| c.response.as_ref())
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
                response_time: sample.latency_us as f64 / 1000.0,
                error: failed.then(|| {
                    sample
                        .error
                        .clone()
                        .unwrap_or_else(|| sample.failed_checks.join("; "))
                }),
            });
        }
        tracing::debug!(
            step = %h.name,
            status = ?sample.status,
            latency_ms = sample.latency_us as f64 / 1000.0,
            error = ?sample.error,
            "request"
        );
        if failed && h.options.log_full_response {
            let body = captured
                .as_ref()
                .and_then(|c| c.response.as_ref())
                .map(|b| String::from_utf8_lossy(b).into_owned());
            tracing::warn!(
                step = %h.name,
                status = ?sample.status,
                error = ?sample.error,
                failed_checks = ?sample.failed_checks,
                body = body.as_deref().unwrap_or(""),
                "step failed"
            );
        }
        if let (Some(debug), Some(c)) = (&shared.debug, &captured) {
            if failed || debug.capture_only_failures == Some(false) {
                record_capture(shared, debug, h, &sample, c);
            }
        }
        shared.samples.record_by(Some(vars.vu), &sample);
        for (name, value) in extracted {
            match name.strip_prefix(super::globals::PREFIX) {
                // A global value is read back from the run's set, which may keep another.
                Some(global) => {
                    shared.globals.set(global, value);
                    vars.globals_seen = u64::MAX;
                }
                None => {
                    vars.values.insert(name, value);
                }
            }
        }
        shared
            .globals
            .copy_into(&mut vars.values, &mut vars.globals_seen);
        after = verdict;
        if !failed || attempt == attempts || shared.stopped() {
            after = match after {
                After::Next if failed && !h.options.continue_on_error => After::EndIteration,
                other => other,
            };
            break;
        }
        let delay = h
            .options
            .retry
            .as_ref()
            .and_then(|r| r.delay_before(attempt).ok())
            .unwrap_or_default();
        if !delay.is_zero() {
            pause(
                shared,
                ThinkTime {
                    min: delay,
                    max: delay,
                },
                None,
            )
            .await;
        }
    }
    if let Some(t) = previous {
        client.set_timeout(t);
    }
    after
}

/// Keeps what `debug` asks for of one request, the first 100 of a run.
fn record_capture(
    shared: &Shared,
    debug: &crate::config::Debug,
    h: &HttpStep,
    sample: &Sample,
    c: &http::Captured,
) {
    let mut all = shared.captured.lock().expect("captures lock");
    if all.len() >= super::DEBUG_CAPTURES {
        return;
    }
    let max = debug.max_response_body_size.unwrap_or(10_000);
    let cut = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned();
    let mut v = serde_json::json!({
        "step": h.name,
        "method": c.method,
        "url": c.url,
        "status": sample.status,
        "error": sample.error,
        "failed_checks": sample.failed_checks,
        "latency_ms": sample.latency_us as f64 / 1000.0,
    });
    if debug.capture_request_headers || debug.log_headers {
        v["request_headers"] = serde_json::json!(c
            .headers
            .iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>());
    }
    if debug.capture_request_body || debug.log_body {
        v["request_body"] = serde_json::json!(c.body.as_deref().map(|b| cut(b.as_bytes())));
    }
    if debug.capture_response_body || debug.log_body {
        v["response_body"] = serde_json::json!(c.response.as_deref().map(cut));
    }
    all.push(v);
}

/// Checks a result against its step's thresholds; marks it failed and acts as they say. A
/// `custom_script` sees the VU's context and the result (with its body).
fn thresholds(
    shared: &Shared,
    h: &HttpStep,
    id: usize,
    sample: &mut Sample,
    (vars, body): (&Vars, Option<&[u8]>),
) -> After {
    let mut after = After::Next;
    for t in &shared.compiled_thresholds[id] {
        let ms = sample.latency_us as f64 / 1000.0;
        let mut got = None;
        let actual = match t.metric {
            StepMetric::Custom => match scripting::custom_threshold(t, h, sample, vars, body) {
                Ok(()) => continue,
                Err(message) => {
                    got = Some(message);
                    f64::NAN
                }
            },
            StepMetric::ResponseTime => ms,
            StepMetric::StatusCode => f64::from(sample.status.unwrap_or(0)),
            StepMetric::ErrorRate => {
                if sample.error.is_some() || !sample.failed_checks.is_empty() {
                    100.0
                } else {
                    0.0
                }
            }
            StepMetric::Throughput => {
                if ms > 0.0 {
                    1000.0 / ms
                } else {
                    0.0
                }
            }
        };
        if got.is_none() && t.holds(actual) {
            continue;
        }
        let got = got.unwrap_or_else(|| format!("got {actual:.3}"));
        let what = format!("step `{}` threshold `{}` ({got})", h.name, t.label);
        if shared.threshold_logs.fetch_add(1, Ordering::Relaxed) < 20 {
            tracing::warn!(action = ?t.action, "{what}");
        }
        if t.action != ThresholdAction::Log && sample.error.is_none() {
            sample.error = Some("threshold".into());
        }
        match t.action {
            ThresholdAction::Log | ThresholdAction::FailStep => {}
            ThresholdAction::FailScenario => after = After::EndIteration,
            ThresholdAction::FailTest => shared.fail(format!("{what}: fail_test")),
            ThresholdAction::Abort => {
                shared.abort(format!("{what}: abort"));
                after = After::EndIteration;
            }
        }
    }
    after
}

/// Sleeps for a think time, cut short by the deadline, the VU's own end or a stop. How late the VU
/// runs again after the sleep's due end is recorded as a start lag (the scheduler's delay).
async fn pause(shared: &Shared, t: ThinkTime, until: Option<Instant>) {
    let pause = t.sample();
    // A zero pause must not touch the timer: tokio's timer wheel rounds up to the next millisecond,
    // which would cap every VU at about a thousand requests per second.
    if pause.is_zero() {
        return;
    }
    let mut end = tokio::time::Instant::now() + pause;
    for d in shared.deadline.iter().chain(until.iter()) {
        end = end.min(tokio::time::Instant::from_std(*d));
    }
    tokio::select! {
        _ = tokio::time::sleep_until(end) => {
            let lag = tokio::time::Instant::now().saturating_duration_since(end);
            shared.samples.start_lag(lag);
        }
        _ = shared.cancel.cancelled() => {}
    }
}
