//! The dynamic cluster's recovery on real processes: a registered worker with no part in a run
//! replaces a failed one (`replacement_workers`), the run falls back to its survivors once the
//! replacements allowed are used up, and a registered worker killed and started again under its
//! id from a new address rejoins the run (`auto_restart`) with the total re-planned. Counts are
//! checked against the mock's own, per worker.

use super::registry::{registering_worker, up};
use crate::support::*;
use serde_json::Value;

fn events(master: &Proc, id: &str) -> String {
    run_view(master, id)["summary"]["events"].to_string()
}

/// Waits until run `id`'s events hold `needle`; returns when it saw it (test clock, Unix ms).
fn wait_event(master: &Proc, id: &str, needle: &str, secs: u64) -> u64 {
    wait_run_event(master, id, needle, secs);
    now_ms()
}

fn count(row: &Value) -> u64 {
    row["count"].as_u64().unwrap_or(0)
}

/// Three listed workers of four registered: the fourth is idle. `b` is frozen until failed: the
/// idle worker takes over its share (2 of 6 VUs) at once, for the time left. Then `d` is frozen:
/// `replacement_workers: 1` is used up, so its share goes to the running workers. Both frozen
/// workers are thawed, told to stop, and their held batches merged: the run's total equals the
/// mock's, and each worker's count equals what the mock served it.
#[test]
fn an_idle_registered_worker_takes_over_a_failed_share_and_past_the_limit_the_survivors_do() {
    let dir = tempfile::tempdir().unwrap();
    let master = one_replica_master(dir.path());
    let mock = mock(5);
    let a = registering_worker(&master.addr, "r-a", &[]);
    let b = registering_worker(&master.addr, "r-b", &[]);
    let d = registering_worker(&master.addr, "r-d", &[]);
    let spare = registering_worker(&master.addr, "r-spare", &[]);
    assert!(
        wait_for(10, || up(&master.addr).len() == 4),
        "four registered: {:?}\n{}",
        up(&master.addr),
        master.stderr_tail()
    );
    let extra = "distributed:\n  orchestration:\n    heartbeat_interval: 1s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 1s\n      max_failure_rate: 50\n      recovery:\n        load_redistribution: true\n        replacement_workers: 1\n";
    let test = yaml(&mock)
        .name("replace")
        .load("pattern: basic, virtual_users: 6, duration: 12s")
        .step("{ name: list, path: /users }")
        .extra(extra);
    let id = submit_run(&master, &test.submit_body(&[&a, &b, &d]));
    wait_pulled(&b, 20);

    let frozen = Frozen::new(&b);
    let froze_at = now_ms();
    let seen = wait_event(&master, &id, "replaces it", 10);
    frozen.thaw();
    // The event is recorded as the spare is started; its first request reaches the mock just after.
    wait_for(5, || {
        mock_stats(&mock)["first_request_ms"][&spare.addr].is_f64()
    });
    let first = mock_stats(&mock)["first_request_ms"][&spare.addr]
        .as_f64()
        .unwrap_or_else(|| panic!("the spare sent nothing: {}", mock_stats(&mock)));
    let react = first - froze_at as f64;
    let line = events(&master, &id);
    eprintln!(
        "replacement: the spare's first request reached the mock {react:.0} ms after b was frozen (detection timeout 1 s); the event was seen after {} ms",
        seen - froze_at
    );
    assert!(
        line.contains(&format!(
            "worker {} failed; registered worker r-spare ({}) replaces it with its share, 2 VUs",
            b.addr, spare.addr
        )) && line.contains("ms after the failure was detected"),
        "{line}"
    );
    assert!(
        (1000.0..8000.0).contains(&react),
        "the spare started {react:.0} ms after the freeze"
    );

    let rows = run_view(&master, &id)["summary"]["workers"].clone();
    assert_eq!(rows[3]["address"], spare.addr.as_str(), "{rows}");
    assert_eq!(rows[3]["planned"], 2.0, "b's share: {rows}");
    wait_event(
        &master,
        &id,
        &format!("worker {} answered again", b.addr),
        10,
    );
    let frozen = Frozen::new(&d);
    wait_event(
        &master,
        &id,
        "is not replaced: replacement_workers allows 1 replacement in the run, all used",
        10,
    );
    wait_event(&master, &id, "redistributed to the surviving workers", 5);
    frozen.thaw();

    let view = wait_run_final(&master, &id, 40);
    let s = &view["summary"];
    assert_eq!(view["phase"], "finished", "{view}");
    assert_merged_exactly_once(s);
    let rows = s["workers"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "a, b, d and the spare: {s}");
    assert_eq!(rows[3]["address"], spare.addr.as_str());
    let running = rows[0]["planned"].as_f64().unwrap() + rows[3]["planned"].as_f64().unwrap();
    assert_eq!(running, 6.0, "a and the spare carry the whole load: {s}");
    assert!(count(&rows[3]) > 0, "{}", rows[3]);
    let stats = mock_stats(&mock);
    for (k, w) in [&a, &b, &d, &spare].iter().enumerate() {
        assert_eq!(
            rows[k]["count"], stats["by_worker"][&w.addr],
            "worker {} counted what the mock served it",
            w.addr
        );
    }
    let sum: u64 = rows.iter().map(count).sum();
    assert_eq!(s["overall"]["count"].as_u64(), Some(sum));
    assert_eq!(stats["total"].as_u64(), Some(sum), "the mock's total");
    eprintln!(
        "replacement run: {sum} requests; a {}, b {} (frozen, then stopped), d {} (frozen, share redistributed), spare {}",
        count(&rows[0]),
        count(&rows[1]),
        count(&rows[2]),
        count(&rows[3])
    );
}

/// `auto_restart` with registration: a pool run on `j-a` and `j-b`; `j-b`'s process is killed,
/// its share goes to `j-a` (`load_redistribution`), and a new process registers as `j-b` from
/// another port. It rejoins the run, and the total (4 VUs) is re-planned over both through the
/// live-control path: 2 and 2. What the killed process sent after its last pull reached the mock
/// but could not be counted; everything else is counted exactly.
#[test]
fn a_killed_registered_worker_registering_again_from_a_new_process_rejoins_with_the_total_kept() {
    let dir = tempfile::tempdir().unwrap();
    let master = one_replica_master(dir.path());
    let mock = mock(5);
    let a = registering_worker(&master.addr, "j-a", &[]);
    let mut b = registering_worker(&master.addr, "j-b", &[]);
    assert!(
        wait_for(10, || up(&master.addr) == ["j-a", "j-b"]),
        "{:?}",
        up(&master.addr)
    );
    let extra = "distributed:\n  orchestration:\n    heartbeat_interval: 1s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 1s\n      max_failure_rate: 50\n      recovery:\n        load_redistribution: true\n        auto_restart: true\n";
    let text = yaml(&mock)
        .name("rejoin")
        .load("pattern: basic, virtual_users: 4, duration: 12s")
        .step("{ name: list, path: /users }")
        .extra(extra)
        .text();
    let id = submit_run(
        &master,
        &serde_json::json!({"test_yaml": text, "strategy": "even"}).to_string(),
    );
    wait_pulled(&b, 20);
    let old = b.addr.clone();
    b.kill();
    let killed_at = now_ms();
    let moved = wait_event(&master, &id, "redistributed to the surviving workers", 10);
    let b2 = registering_worker(&master.addr, "j-b", &[]);
    assert_ne!(b2.addr, old, "a new process on another port");
    let registered_from = now_ms();
    let rejoined = wait_event(&master, &id, "registered again from", 15);
    eprintln!(
        "auto_restart: share redistributed {} ms after the kill; the new process rejoined {} ms after it started",
        moved - killed_at,
        rejoined - registered_from
    );
    let line = events(&master, &id);
    assert!(
        line.contains(&format!(
            "worker j-b ({old}) registered again from {} as a new process",
            b2.addr
        )) && line.contains("re-planned over all of them with the total unchanged"),
        "{line}"
    );
    let view = run_view(&master, &id);
    let c = &view["control"];
    assert_eq!(c["target"], 4.0, "{c}");
    assert_eq!(c["shares"], serde_json::json!([2, 0, 2]), "{c}");

    let view = wait_run_final(&master, &id, 40);
    let s = &view["summary"];
    assert_eq!(view["phase"], "finished", "{view}");
    assert_merged_exactly_once(s);
    let rows = s["workers"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "j-a, the killed j-b, the new j-b: {s}");
    assert_eq!(rows[2]["address"], b2.addr.as_str());
    let stats = mock_stats(&mock);
    assert_eq!(rows[0]["count"], stats["by_worker"][&a.addr]);
    assert_eq!(rows[2]["count"], stats["by_worker"][&b2.addr]);
    assert!(count(&rows[2]) > 0, "{}", rows[2]);
    let killed_served = stats["by_worker"][&old].as_u64().unwrap_or(0);
    assert!(count(&rows[1]) > 0 && count(&rows[1]) <= killed_served);
    let sum: u64 = rows.iter().map(count).sum();
    assert_eq!(s["overall"]["count"].as_u64(), Some(sum));
    eprintln!(
        "auto_restart run: {sum} requests counted, the mock served {}; the killed process's last {} were never pulled",
        stats["total"],
        killed_served - count(&rows[1])
    );
}

/// Redistribution within capacity: a pool run of 4 VUs on `c-a` (`--max-vus 3`) and `c-b`
/// (`--max-vus 2`) gives them 3 and 1. When `c-b` fails, `c-a` has no room for its VU: nothing is
/// handed over, the event says the load is short by 1 VU, and `c-a` keeps 3. `c-b` is frozen, not
/// killed, so once thawed it is stopped and merged and the counts equal the mock's.
#[test]
fn a_failed_share_that_does_not_fit_the_survivors_capacity_is_reported_short() {
    let dir = tempfile::tempdir().unwrap();
    let master = one_replica_master(dir.path());
    let mock = mock(5);
    let a = registering_worker(&master.addr, "c-a", &["--max-vus", "3"]);
    let b = registering_worker(&master.addr, "c-b", &["--max-vus", "2"]);
    assert!(
        wait_for(10, || up(&master.addr) == ["c-a", "c-b"]),
        "{:?}",
        up(&master.addr)
    );
    let extra = "distributed:\n  orchestration:\n    heartbeat_interval: 1s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 1s\n      max_failure_rate: 50\n      recovery:\n        load_redistribution: true\n";
    let text = yaml(&mock)
        .name("short")
        .load("pattern: basic, virtual_users: 4, duration: 8s")
        .step("{ name: list, path: /users }")
        .extra(extra)
        .text();
    let id = submit_run(
        &master,
        &serde_json::json!({ "test_yaml": text }).to_string(),
    );
    wait_pulled(&b, 20);
    let frozen = Frozen::new(&b);
    wait_event(
        &master,
        &id,
        &format!("the share of {} was not redistributed: no surviving worker has room under its capacity (max_vus / max_rps); the load is short by 1 VUs", b.addr),
        10,
    );
    frozen.thaw();
    let view = wait_run_final(&master, &id, 40);
    let s = &view["summary"];
    assert_eq!(view["phase"], "finished", "{view}");
    assert_merged_exactly_once(s);
    let rows = s["workers"].as_array().unwrap();
    assert_eq!(rows[0]["planned"], 3.0, "c-a kept its 3 VUs: {s}");
    assert_eq!(
        s["short"], 1.0,
        "the VU that fit nowhere is the summary's shortfall: {s}"
    );
    let stats = mock_stats(&mock);
    for (k, w) in [&a, &b].iter().enumerate() {
        assert_eq!(rows[k]["count"], stats["by_worker"][&w.addr], "{}", w.addr);
    }
    assert_eq!(s["overall"]["count"], stats["total"]);
}
