//! A virtual user: picks its scenario, keeps its own variables, and runs iterations of the
//! scenario's steps until its iterations are done, the test's deadline passes or the run is stopped.
//! A failed step is recorded and the VU goes on, as load tests do.

use super::client::VuClient;
use super::http::{self, Target};
use super::template::Vars;
use super::Shared;
use crate::config::{Step, ThinkTime};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A closed-model VU: loops until done.
pub async fn run_closed(shared: std::sync::Arc<Shared>, vu: u64, iterations: Option<u64>) {
    shared.gauges.active_vus.fetch_add(1, Ordering::Relaxed);
    let scenario = shared.picker.pick(vu);
    let mut vars = shared.initial_vars(scenario, vu);
    let mut client = shared.client();
    let mut iteration = 0;
    while iterations.is_none_or(|n| iteration < n) && !shared.stopped() {
        vars.iteration = iteration;
        run_iteration(&shared, &mut client, scenario, &mut vars, None).await;
        iteration += 1;
    }
    shared.gauges.active_vus.fetch_sub(1, Ordering::Relaxed);
}

/// One iteration of a scenario (its steps, `loop` times). `origin` is the open model's intended start,
/// which the first request is timed from.
pub async fn run_iteration(
    shared: &Shared,
    client: &mut VuClient,
    scenario: usize,
    vars: &mut Vars,
    mut origin: Option<Instant>,
) {
    let sc = &shared.test.scenarios[scenario];
    if let Some(feeder) = &shared.feeders[scenario] {
        if let Some(row) = feeder.row(vars.vu, vars.iteration) {
            vars.values
                .extend(row.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let think = sc.think_time.or(shared.test.global.think_time);
    let target = Target {
        base_url: shared.test.global.base_url.as_deref(),
    };
    for _ in 0..sc.repeat.max(1) {
        for (i, step) in sc.steps.iter().enumerate() {
            if shared.stopped() {
                return;
            }
            match step {
                Step::Http(h) => {
                    let id = shared.step_ids[scenario][i].expect("every HTTP step has an id");
                    let (sample, extracted) = http::send(
                        client,
                        &target,
                        (h, shared.prepared[id].as_ref(), &shared.compiled[id]),
                        id,
                        vars,
                        origin.take(),
                    )
                    .await;
                    let _ = shared.samples.send(sample);
                    vars.values.extend(extracted);
                    if let Some(t) = think {
                        pause(shared, t).await;
                    }
                }
                Step::Wait { duration, .. } => pause(shared, *duration).await,
                Step::Rendezvous(r) => {
                    tokio::select! {
                        _ = shared.rendezvous.wait(&r.point, r.count, r.timeout) => {}
                        _ = shared.cancel.cancelled() => return,
                    }
                }
            }
        }
    }
}

/// Sleeps for a think time, cut short by the deadline or a stop.
async fn pause(shared: &Shared, t: ThinkTime) {
    let pause = t.sample();
    // A zero pause must not touch the timer: tokio's timer wheel rounds up to the next millisecond,
    // which would cap every VU at about a thousand requests per second.
    if pause.is_zero() {
        return;
    }
    let until = tokio::time::Instant::now() + pause;
    let until = match shared.deadline {
        Some(d) => until.min(tokio::time::Instant::from_std(d)),
        None => until,
    };
    tokio::select! {
        _ = tokio::time::sleep_until(until) => {}
        _ = shared.cancel.cancelled() => {}
    }
}
