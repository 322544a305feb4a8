//! Exactly once, observed on the merged path: a three-replica master drives two workers against the
//! mock, and its leader dies between a pull and the save that would have recorded it (the driver's
//! test-only `PERFORNIUM_TEST_EXIT_AFTER_PULL` hook). A new leader resumes from the saved record,
//! whose sequence numbers lie behind batches the dead leader had merged in memory; the workers
//! still keep those batches, so it pulls them again. At the end every worker's merged batches must
//! equal its own final totals and the mock's count: none merged twice, none skipped.

use crate::support::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const HOOK: &str = "PERFORNIUM_TEST_EXIT_AFTER_PULL";

/// Three replicas, every one with the hook set to `marker`: whichever leads dies at the first
/// chance, and only it (the marker is created atomically). As `Cluster::start` does, the ports are
/// chosen before the replicas bind, and the cluster starts again on new ones if one was taken.
fn cluster_with_hook(marker: &Path, rounds_per_save: Option<u32>) -> Cluster {
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let mut c = Cluster {
            addrs: free_ports(3)
                .into_iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect(),
            dir: tempfile::tempdir().expect("tempdir"),
            procs: vec![None, None, None],
            extra: vec![],
            token: None,
        };
        for i in 0..3 {
            let mut cmd = Command::new(BIN);
            cmd.args(c.node_args(i)).env(HOOK, marker);
            if let Some(n) = rounds_per_save {
                cmd.env("PERFORNIUM_TEST_ROUNDS_PER_SAVE", n.to_string());
            }
            let mut p = start_cmd(cmd);
            p.addr = c.addrs[i].clone();
            c.procs[i] = Some(p);
        }
        let health = |c: &Cluster, i: usize| {
            http_get(&format!("http://{}/health", c.addrs[i])).is_ok_and(|(code, _)| code == 200)
        };
        let mut exited = None;
        wait_for(20, || {
            for i in 0..3 {
                if let Ok(Some(_)) = c.procs[i].as_mut().unwrap().child.try_wait() {
                    exited = Some(c.procs[i].as_ref().unwrap().stderr_tail());
                    return true;
                }
            }
            (0..3).all(|i| health(&c, i))
        });
        match exited {
            None => return c,
            Some(e) if port_taken(&e) => last = e,
            Some(e) => panic!("a replica exited at start: {e}"),
        }
    }
    panic!("{last}")
}

fn run_body(mock: &Proc, workers: &[&Proc], protocol: &str) -> String {
    let yaml = format!(
        "name: once\nglobal:\n  base_url: \"http://{}\"\n  timeout: 5000\nload:\n  pattern: basic\n  virtual_users: 4\n  duration: 6s\nscenarios:\n  - name: s\n    steps:\n      - name: list\n        path: /users\ndistributed:\n  communication:\n    protocol: {protocol}\n",
        mock.addr
    );
    let workers: Vec<serde_json::Value> = workers
        .iter()
        .map(|w| {
            let (host, port) = w.addr.split_once(':').unwrap();
            serde_json::json!({"host": host, "port": port.parse::<u16>().unwrap()})
        })
        .collect();
    serde_json::json!({"test_yaml": yaml, "workers": workers, "strategy": "even"}).to_string()
}

/// The worker's own final count (`GET /results`), from the worker itself.
fn own_count(worker: &Proc, run_id: &str) -> u64 {
    let (code, body) =
        http_get(&format!("http://{}/results?run_id={run_id}", worker.addr)).expect("GET /results");
    assert_eq!(code, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_leader_dying_between_a_pull_and_its_save_loses_and_doubles_nothing() {
    leader_dies_between_pull_and_save("http");
}

/// The test above over `protocol` (`distributed.communication.protocol`; `transports.rs` runs it
/// over gRPC and WebSocket).
pub(crate) fn leader_dies_between_pull_and_save(protocol: &str) {
    leader_dies_with_unsaved_rounds(protocol, None);
}

/// The test above with the record saved every `rounds_per_save` rounds (the driver's test-only
/// `PERFORNIUM_TEST_ROUNDS_PER_SAVE`): the leader then dies with at least two batches of a worker
/// merged past the saved record, which the worker must still hold.
pub(crate) fn leader_dies_with_unsaved_rounds(protocol: &str, rounds_per_save: Option<u32>) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let marker = scratch.path().join("died-between-pull-and-save.json");
    let mut c = cluster_with_hook(&marker, rounds_per_save);
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let first = c.agreed_leader(20);
    let id = c.submit(first, &run_body(&mock, &[&a, &b], protocol));

    // The leader dies by itself once a pull has merged batches past a saved sequence number ≥ 2.
    assert!(
        wait_for(30, || marker.exists()
            && std::fs::metadata(&marker).is_ok_and(|m| m.len() > 0)),
        "no replica reached the hook"
    );
    let note: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&marker).unwrap()).expect("the hook's note");
    assert_eq!(note["run_id"], id.as_str());
    let pid = note["pid"].as_u64().unwrap() as u32;
    let dead = (0..3)
        .find(|&i| c.procs[i].as_ref().is_some_and(|p| p.child.id() == pid))
        .expect("the replica that died is one of ours");
    let mut proc = c.procs[dead].take().unwrap();
    let status = proc
        .exit_within(Duration::from_secs(10))
        .expect("the replica exits");
    assert_eq!(status.code(), Some(137), "it died at the hook");
    // The premise: batches were merged in memory beyond what the saved record holds.
    let unsaved: Vec<(u64, u64)> = note["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["saved_seq"].as_u64().unwrap(),
                w["merged_seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let gap = u64::from(rounds_per_save.is_some());
    assert!(
        unsaved
            .iter()
            .any(|&(saved, merged)| saved >= 2 && merged > saved + gap),
        "{note}"
    );

    let new = c.agreed_leader(15);
    assert_ne!(new, dead);
    let live: Vec<usize> = (0..3).filter(|&i| i != dead).collect();
    let view = c.wait_phase(&live, &id, "finished", 60);
    let s = &view["summary"];
    let rows = s["workers"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let mut own_total = 0;
    for w in [&a, &b] {
        let row = rows
            .iter()
            .find(|r| r["address"] == w.addr.as_str())
            .unwrap_or_else(|| panic!("a row for {}: {s}", w.addr));
        let own = own_count(w, &id);
        own_total += own;
        assert_eq!(row["state"], "finished", "{row}");
        assert_eq!(
            row["merged_count"].as_u64(),
            Some(own),
            "merged batches: {row}"
        );
        assert_eq!(
            row["final_count"].as_u64(),
            Some(own),
            "final totals: {row}"
        );
        assert_eq!(row["count"].as_u64(), Some(own), "{row}");
        assert_eq!(row["merged_errors"], row["final_errors"], "{row}");
        assert_eq!(row["merged_seq"], row["final_seq"], "{row}");
        assert_eq!(row["merged_matches_final"], true, "{row}");
        assert!(own > 0, "{row}");
    }
    let served = mock_stats(&mock)["total"].as_u64().unwrap();
    assert_eq!(
        own_total, served,
        "the workers' totals are the mock's count"
    );
    assert_eq!(s["overall"]["count"].as_u64(), Some(served));
    assert_merged_exactly_once(s);
    if protocol != "http" {
        // Both leaders streamed: the new one reopened the workers' streams from its saved record.
        let needle = format!("batch stream opened ({protocol})");
        let opened: Vec<usize> = [&a, &b]
            .iter()
            .map(|w| w.stderr_tail().matches(&needle).count())
            .collect();
        assert!(
            opened.iter().all(|&n| n >= 2),
            "streams opened per worker: {opened:?}"
        );
    }
}
