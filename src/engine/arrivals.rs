//! The open model. Arrival k is due at `k / rate` seconds whatever the target is doing, and its first
//! request is timed from that intended instant, not from when a task got round to sending it: if the
//! target stalls, the wait shows up in the percentiles instead of being hidden (coordinated omission).
//! At most `max_virtual_users` iterations run at once; an arrival that finds them all busy is counted
//! as dropped, never silently lost.

use super::schedule::Arrivals;
use super::{vu, Shared};
use crate::config::ArrivalShape;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Dispatches arrivals for `duration`, then waits for the iterations still running. With a
/// `vu_duration`, each arrival loops over its scenario that long from its intended start.
pub async fn run(
    shared: Arc<Shared>,
    rate: f64,
    duration: Duration,
    shape: &ArrivalShape,
    max_vus: u64,
    origin: Option<std::time::Instant>,
) {
    let slots = Arc::new(Semaphore::new(
        max_vus.min(Semaphore::MAX_PERMITS as u64) as usize
    ));
    let start = origin.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std);
    let mut tasks = tokio::task::JoinSet::new();
    let lasts = shape.vu_duration;
    // From now on the intervals carry the schedule's target (the arrivals due in each).
    shared.gauges.open.store(true, Ordering::Relaxed);
    for (k, at) in Arrivals::new(rate, duration, shape).enumerate() {
        let k = k as u64;
        let due = start + at;
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = shared.cancel.cancelled() => break,
        }
        shared.gauges.due.fetch_add(1, Ordering::Relaxed);
        // Paused (live control): arrivals due meanwhile do not happen; they are not dropped.
        if shared.paused() {
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared.gauges.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let shared = shared.clone();
        let intended = due.into_std();
        tasks.spawn(async move {
            // How late the iteration starts after its due time: the scheduler's delay.
            shared.samples.start_lag(intended.elapsed());
            shared.gauges.active_vus.fetch_add(1, Ordering::Relaxed);
            let scenario = shared.picker.pick(k);
            let mut vars = shared.initial_vars(scenario, k % max_vus);
            vars.iteration = k;
            let mut client = shared.take_client();
            match lasts {
                None => {
                    vu::run_iteration(
                        &shared,
                        &mut client,
                        scenario,
                        &mut vars,
                        Some(intended),
                        None,
                        true,
                    )
                    .await;
                }
                Some(d) => {
                    let until = intended + d;
                    let mut origin = Some(intended);
                    // The arrival is counted once, by its first iteration.
                    let mut arrival = true;
                    let mut iteration = 0;
                    // The first iteration runs if the arrival was due before the run's end
                    // (see `vu::run_iteration`); the next ones while the run and `until` last.
                    while !shared.cancel.is_cancelled()
                        && (origin.is_some()
                            || (!shared.stopped() && std::time::Instant::now() < until))
                    {
                        vars.iteration = iteration;
                        let ended = vu::run_iteration(
                            &shared,
                            &mut client,
                            scenario,
                            &mut vars,
                            origin.take(),
                            Some(until),
                            std::mem::take(&mut arrival),
                        )
                        .await;
                        iteration += 1;
                        if ended {
                            break;
                        }
                    }
                }
            }
            shared.return_client(client);
            shared.gauges.active_vus.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
        // Reap finished iterations so a long run does not keep their handles.
        while tasks.try_join_next().is_some() {}
    }
    drop(shared);
    while tasks.join_next().await.is_some() {}
}
