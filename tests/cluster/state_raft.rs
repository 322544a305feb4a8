//! `state_management` with `state_backend: raft` (the default): the controller holds the shared
//! counters and leases ranges of values to the workers on its own calls. Real workers claim IDs
//! with `{{state.incr(ids)}}`, posting them to the mock, whose stored bodies are the reference:
//! every ID once, as many IDs as the mock received posts — with the embedded master of
//! `distributed`, and with a 3-replica cluster whose leader is killed mid-run.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};

/// The state block and a step posting one claimed ID (twice: one increment per request), the
/// worker's name, and the run-wide count `state.get` saw.
fn claiming(mock: &Proc, load: &str) -> Yaml {
    yaml(mock)
        .name("raft-state")
        .load(load)
        .scenario("think_time: 5ms")
        .steps("      - name: claim\n        method: POST\n        path: /users\n        json: { claimed: \"{{state.incr(ids)}}\", again: \"{{state.incr(ids)}}\", seen: \"{{state.get(ids)}}\", worker: \"{{env.PERF_WORKER}}\" }\n")
        .extra("distributed:\n  data_consistency:\n    state_management:\n      shared_state: true\n      state_backend: raft\n")
}

/// What the mock stored: each claimed ID (asserted unique and equal to `again`), by worker, and
/// the highest `state.get` value seen.
struct Claimed {
    ids: BTreeSet<u64>,
    by_worker: BTreeMap<String, u64>,
    posted: u64,
    max_seen: u64,
}

fn claimed(mock: &Proc) -> Claimed {
    let users = get_json(&format!("http://{}/users", mock.addr)).expect("the mock's /users");
    let mut c = Claimed {
        ids: BTreeSet::new(),
        by_worker: BTreeMap::new(),
        posted: 0,
        max_seen: 0,
    };
    for u in users["users"].as_array().unwrap() {
        let (Some(id), Some(again), Some(w)) = (
            u["claimed"].as_str(),
            u["again"].as_str(),
            u["worker"].as_str(),
        ) else {
            continue;
        };
        c.posted += 1;
        assert_eq!(id, again, "one increment per request: {u}");
        let id: u64 = id.parse().unwrap_or_else(|_| panic!("a number: {u}"));
        assert!(id >= 1, "values start at 1: {u}");
        assert!(c.ids.insert(id), "ID {id} claimed twice");
        *c.by_worker.entry(w.to_string()).or_default() += 1;
        let seen: u64 = u["seen"].as_str().unwrap_or("x").parse().unwrap();
        c.max_seen = c.max_seen.max(seen);
    }
    c
}

/// 6 VUs on two workers (3 each) claim IDs for 2 s through the embedded master's leases: every ID
/// the mock stored is unique, their number is the number of posts the mock counted and the run's
/// own request count, both workers claimed some, and `state.get` read a run-wide count no larger
/// than what was claimed.
#[test]
fn two_workers_claim_unique_ids_leased_by_the_controller() {
    let mock = mock(0);
    let a = worker_with_env(&[("PERF_WORKER", "a")]);
    let b = worker_with_env(&[("PERF_WORKER", "b")]);
    let dir = tempfile::tempdir().unwrap();
    let file = claiming(&mock, "pattern: basic, virtual_users: 6, duration: 2s").write(dir.path());
    let out = dir.path().join("out");
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-s",
        "even",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stats = mock_stats(&mock);
    let c = claimed(&mock);
    assert_eq!(
        Some(c.posted),
        stats["by_route"]["/users"].as_u64(),
        "{stats}"
    );
    assert_eq!(c.ids.len() as u64, c.posted);
    assert_eq!(summary(&out)["overall"]["count"].as_u64(), Some(c.posted));
    assert!(c.posted > 100, "the VUs claimed IDs: {}", c.posted);
    assert_eq!(
        c.by_worker.len(),
        2,
        "both workers claimed: {:?}",
        c.by_worker
    );
    assert!(
        c.max_seen > 0 && c.max_seen <= c.posted,
        "state.get: {} of {}",
        c.max_seen,
        c.posted
    );
}

/// `perfornium run` with the raft backend and no workers: this process holds the counter, so the
/// IDs are exactly 1..=N.
#[test]
fn a_local_run_claims_dense_ids() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = claiming(&mock, "pattern: basic, virtual_users: 3, duration: 1s").write(dir.path());
    let res = std::process::Command::new(env!("CARGO_BIN_EXE_perfornium"))
        .args(["run", &file])
        .env("PERF_WORKER", "local")
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let c = claimed(&mock);
    assert!(c.posted > 10, "{}", c.posted);
    assert_eq!(c.ids, (1..=c.posted).collect::<BTreeSet<u64>>());
}

/// The same across a failover: a 3-replica cluster drives two workers claiming IDs for 6 s; the
/// leader is killed once it has merged batches from both, and the new leader grants from the
/// saved marks. Every ID the mock stored is unique, and the run's count equals the mock's.
#[test]
fn ids_stay_unique_when_the_leader_dies_mid_run() {
    let mut c = Cluster::start();
    let mock = mock(0);
    let a = worker_with_env(&[("PERF_WORKER", "a")]);
    let b = worker_with_env(&[("PERF_WORKER", "b")]);
    let body =
        claiming(&mock, "pattern: basic, virtual_users: 4, duration: 6s").submit_body(&[&a, &b]);
    let old = c.agreed_leader(20);
    let id = c.submit(old, &body);
    c.wait_merged(old, &id, 2, 20);
    let before = claimed(&mock).posted;
    c.kill(old);
    let new = c.wait_leader(10).expect("a new leader within 10 s");
    assert_ne!(new, old);
    let live: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let view = c.wait_phase(&live, &id, "finished", 40);
    let got = claimed(&mock);
    assert_eq!(got.ids.len() as u64, got.posted);
    assert_eq!(
        view["summary"]["overall"]["count"].as_u64(),
        Some(got.posted),
        "{}",
        c.stderr_tails()
    );
    assert!(
        got.posted > before,
        "IDs were claimed after the failover too: {before} then {}",
        got.posted
    );
    assert_eq!(got.by_worker.len(), 2, "{:?}", got.by_worker);
}
