//! The shared counters of `state_backend: raft` on the controller side: block leasing. The
//! controller holds each counter's high-water mark (the highest value granted to anyone). A few
//! times a second it reads every worker's counters (`GET /leases`: values left, claimed, VUs
//! waiting), decides which workers need more values, raises the marks and saves them through the
//! run store — a raft write on the HA master, so it succeeds only on the leader with a quorum —
//! and only then sends each worker its new range (`POST /leases`). A leader that dies after the
//! save loses the range (a gap), never hands it out twice: the next leader starts from the saved
//! marks. Workers never call the controller; everything travels on its calls.
//!
//! A range is sized to the rate the worker claims at: four rounds' worth of what it claimed in
//! the last round (at least [`MIN_BLOCK`]), granted when what it holds would last less than two
//! rounds or a VU is waiting.

use super::client::WorkerClient;
use super::store::RunStore;
use crate::api::worker as api;
use crate::config::{Step, TestFile};
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How often the workers' counters are read.
pub const ROUND: Duration = Duration::from_millis(100);

/// The fewest values granted at once.
pub const MIN_BLOCK: u64 = 16;

/// The most values granted at once (a runaway rate cannot exhaust the counter's range quickly).
pub const MAX_BLOCK: u64 = 1 << 20;

/// The counters `test` increments through the controller (`{{state.incr(NAME)}}` with shared
/// state on and the `raft` backend); empty when it needs no grants.
pub fn counters(test: &TestFile) -> Vec<String> {
    let raft = test
        .distributed
        .as_ref()
        .and_then(|d| d.data_consistency.as_ref())
        .and_then(|d| d.state_management.as_ref())
        .is_some_and(|s| s.on() && s.state_backend.as_deref() != Some("redis"));
    if !raft {
        return Vec::new();
    }
    let mut names: Vec<String> = test
        .scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .filter(|step| matches!(step, Step::Http(_)))
        .flat_map(crate::config::step_state_refs)
        .filter(|r| r.op == "incr")
        .map(|r| r.name)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// How many values to grant a worker holding `c`, which claimed `delta` values in the last round.
pub fn block_for(c: &api::CounterLease, delta: u64) -> Option<u64> {
    let low = delta.saturating_mul(2);
    if c.waiting == 0 && (c.left > low || (c.left > 0 && delta == 0)) {
        return None;
    }
    if c.waiting == 0 && c.left == 0 && delta == 0 && c.granted_to > 0 {
        // Idle since its last range ran out: it gets more when a VU asks.
        return None;
    }
    Some(
        delta
            .saturating_mul(4)
            .max(c.waiting.saturating_mul(4))
            .clamp(MIN_BLOCK, MAX_BLOCK),
    )
}

/// Grants counter values to the workers until `stop`, or until a save fails (this controller is no
/// longer the leader). `clients` follows the run's workers, restarted ones included.
pub async fn coordinate<S: RunStore>(
    store: S,
    clients: watch::Receiver<Vec<WorkerClient>>,
    run_id: String,
    names: Vec<String>,
    stop: CancellationToken,
) {
    let mut marks = store.leases(&run_id);
    // By worker entry: claimed per counter at the last answer (for the rate and the totals).
    let mut claimed: Vec<BTreeMap<String, u64>> = Vec::new();
    let mut sent_totals: Vec<BTreeMap<String, u64>> = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(ROUND) => {}
        }
        let workers = clients.borrow().clone();
        claimed.resize(workers.len(), BTreeMap::new());
        sent_totals.resize(workers.len(), BTreeMap::new());
        let reports = join_all(workers.iter().map(|w| w.leases(&run_id))).await;
        let mut grants: Vec<BTreeMap<String, (u64, u64)>> = vec![BTreeMap::new(); workers.len()];
        let mut answered = vec![false; workers.len()];
        for (i, report) in reports.into_iter().enumerate() {
            let Ok(report) = report else { continue };
            answered[i] = true;
            // A counter no VU has touched yet gets its first range before anyone waits.
            let mut counters = report.counters;
            for name in &names {
                counters.entry(name.clone()).or_default();
            }
            for (name, c) in &counters {
                let before = claimed[i].insert(name.clone(), c.claimed).unwrap_or(0);
                if !report.active {
                    continue;
                }
                let Some(n) = block_for(c, c.claimed.saturating_sub(before)) else {
                    continue;
                };
                let mark = marks.entry(name.clone()).or_insert(0);
                // Never below what the worker already holds (a grant from a lost leader's
                // saved range is above the saved mark anyway; this is belt and braces).
                let first = (*mark).max(c.granted_to) + 1;
                let last = first.saturating_add(n - 1);
                *mark = last;
                grants[i].insert(name.clone(), (first, last));
            }
        }
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for c in &claimed {
            for (name, n) in c {
                *totals.entry(name.clone()).or_default() += n;
            }
        }
        if grants.iter().any(|g| !g.is_empty()) {
            if let Err(e) = store.save_leases(&run_id, &marks).await {
                warn!(run_id = %run_id, "shared counters: grants not saved, none sent: {e}");
                return;
            }
        }
        join_all(workers.iter().enumerate().filter_map(|(i, w)| {
            if !answered[i] || (grants[i].is_empty() && sent_totals[i] == totals) {
                return None;
            }
            sent_totals[i] = totals.clone();
            let body = api::LeaseGrant {
                run_id: run_id.clone(),
                grants: std::mem::take(&mut grants[i]),
                totals: totals.clone(),
            };
            Some(async move { w.grant(&body).await })
        }))
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(left: u64, waiting: u64, granted_to: u64) -> api::CounterLease {
        api::CounterLease {
            left,
            claimed: 0,
            waiting,
            granted_to,
        }
    }

    #[test]
    fn blocks_follow_the_rate_and_waiting_vus() {
        assert_eq!(block_for(&c(0, 3, 0), 0), Some(MIN_BLOCK));
        assert_eq!(block_for(&c(0, 10, 0), 0), Some(40));
        assert_eq!(block_for(&c(5, 0, 40), 0), None, "idle, holds some");
        assert_eq!(block_for(&c(0, 0, 40), 0), None, "idle, asks when needed");
        assert_eq!(block_for(&c(100, 0, 400), 40), None, "lasts 2+ rounds");
        assert_eq!(block_for(&c(50, 0, 400), 40), Some(160));
        assert_eq!(block_for(&c(0, 0, 0), 0), Some(MIN_BLOCK), "first grant");
    }
}
