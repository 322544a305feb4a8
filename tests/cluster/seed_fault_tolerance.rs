//! The seed's orchestration and fault-tolerance keys on real worker processes: the coordination
//! timeout bounding prepare, and graceful degradation scaling the load down.

use crate::support::*;
use std::time::{Duration, Instant};

fn test_yaml(mock: &Proc, load: &str) -> Yaml {
    yaml(mock)
        .name("ft")
        .load(load)
        .step("{ name: list, path: /users }")
}

/// A worker that accepts connections and never answers (SIGSTOPped) fails the run when
/// `coordination_timeout` (2 s) ends, not when a call's own timeout (here 5 s, from the 5 s
/// heartbeat) would end it.
#[test]
fn an_unresponsive_worker_fails_the_run_at_the_coordination_timeout() {
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let extra = "distributed:\n  orchestration:\n    coordination_timeout: 2s\n    heartbeat_interval: 5s\n    failure_handling:\n      continue_on_partial_failure: false\n";
    let file = test_yaml(&mock, "pattern: basic, virtual_users: 2, duration: 3s")
        .extra(extra)
        .write(dir.path());
    let out = dir.path().join("out");
    let frozen = Frozen::new(&b);
    let began = Instant::now();
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
    let took = began.elapsed();
    frozen.thaw();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "the run fails: {stderr}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(4_500),
        "failed after {took:?}, expected the 2 s coordination timeout (plus the process' own start and stop), well before the 5 s call timeout: {stderr}"
    );
    let s = summary(&out);
    assert_eq!(s["phase"], "failed", "{s}");
    let events = s["events"].to_string();
    assert!(
        events.contains("not prepared within the coordination timeout (2000 ms)"),
        "{events}"
    );
    assert_eq!(
        mock_stats(&mock)["total"],
        0,
        "no load ran: the run failed at prepare"
    );
}

/// Three workers, `min_workers_threshold: 3` and `scale_down_load`: when one dies, two are left,
/// fewer than three, so its share is dropped instead of going to the survivors (even with
/// `load_redistribution` on) and the run goes on to finish with two thirds of the load.
#[test]
fn below_min_workers_a_failed_share_is_dropped_and_the_run_goes_on() {
    let mock = mock(5);
    let (a, b, mut c) = (worker(None), worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let extra = "distributed:\n  orchestration:\n    heartbeat_interval: 1s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 1s\n      max_failure_rate: 50\n      recovery:\n        load_redistribution: true\n      graceful_degradation:\n        enabled: true\n        min_workers_threshold: 3\n        scale_down_load: true\n";
    let file = test_yaml(&mock, "pattern: basic, virtual_users: 3, duration: 5s")
        .extra(extra)
        .write(dir.path());
    let out = dir.path().join("out");
    let child = start(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b, &c]),
        "-s",
        "even",
        "-o",
        out.to_str().unwrap(),
    ]);
    wait_running(&c, 20);
    c.kill();
    let res = child.wait_with_deadline(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&res.stderr);
    let s = summary(&out);
    assert_eq!(s["phase"], "finished", "{stderr}\n{s}");
    assert_merged_exactly_once(&s);
    let events = s["events"].to_string();
    assert!(
        events.contains("was dropped (scale_down_load: 2 of 3 workers running")
            && events.contains("the load is now 66.7% of the plan"),
        "{events}"
    );
    assert!(
        !events.contains("redistributed to the surviving"),
        "{events}"
    );
    assert_eq!(s["workers"][0]["planned"], 1.0, "no extra VU for a: {s}");
    assert_eq!(s["workers"][1]["planned"], 1.0, "no extra VU for b: {s}");
    // What the killed worker sent after its last pull reached the mock but was never counted.
    let counted: u64 = s["overall"]["count"].as_u64().unwrap();
    assert!(mock_stats(&mock)["total"].as_u64().unwrap() >= counted);
}

/// The stepping test of the phase-synchronization checks: nobody for 1.5 s, then one VU per worker.
const LEVELS: &str =
    "pattern: stepping, steps: [{ users: 0, duration: 1.5s }, { users: 2, duration: 1s }]";

/// `phase_synchronization: true` on two workers: the level change at 1.5 s (from 0 to 1 VU each)
/// reaches the mock from both within a bound, and 1.5 s after each worker's start.
#[test]
fn with_phase_synchronization_two_workers_level_changes_line_up_at_the_mock() {
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let extra =
        "distributed:\n  orchestration:\n    synchronization:\n      phase_synchronization: true\n";
    let file = test_yaml(&mock, LEVELS).extra(extra).write(dir.path());
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
    let first = mock_stats(&mock)["first_request_ms"].clone();
    let (fa, fb) = (
        first[a.addr.as_str()]
            .as_f64()
            .unwrap_or_else(|| panic!("{first}")),
        first[b.addr.as_str()]
            .as_f64()
            .unwrap_or_else(|| panic!("{first}")),
    );
    let apart = (fa - fb).abs();
    eprintln!("level change seen at the mock {apart:.2} ms apart");
    assert!(
        apart < 50.0,
        "the level changes {apart:.2} ms apart: {first}"
    );
    // When each worker says it started (its clock is this machine's).
    let start = [&a, &b]
        .iter()
        .map(|w| {
            let st = worker_status(w);
            st["started_at_ms"]
                .as_f64()
                .unwrap_or_else(|| panic!("{st}"))
        })
        .fold(f64::MAX, f64::min);
    // Not before the level change; how much after depends on how busy the host is (1515 ms
    // alone, 1928 ms once with the whole suite running: the mock is late for both alike).
    let after = fa.min(fb) - start;
    assert!(
        (1490.0..3000.0).contains(&after),
        "the first level change {after:.1} ms after the start, expected 1500"
    );
}

/// What `phase_synchronization` changes in the engine: with the schedule's origin a second in the
/// past, the level change due at 1.5 s comes 0.5 s after the engine starts; without it, 1.5 s
/// after. The mock's first-request time is the reference.
#[test]
fn the_schedule_origin_moves_the_level_change() {
    let mock = mock(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first_after = |name: &str, back: Option<Duration>| {
        let text = test_yaml(&mock, LEVELS).text().replace(
            "  timeout: 5000\n",
            &format!("  timeout: 5000\n  headers:\n    x-perfornium-worker: {name}\n"),
        );
        let test = std::sync::Arc::new(perfornium::config::from_str(&text).unwrap());
        let began = now_ms() as f64;
        let origin = back.map(|b| Instant::now() - b);
        rt.block_on(perfornium::engine::run_from(
            test,
            Default::default(),
            origin,
        ))
        .unwrap();
        mock_stats(&mock)["first_request_ms"][name]
            .as_f64()
            .unwrap()
            - began
    };
    let plain = first_after("plain", None);
    let moved = first_after("moved", Some(Duration::from_secs(1)));
    eprintln!("first request {plain:.1} ms after the engine started, {moved:.1} ms with the origin 1 s back");
    // Never before the level is due; a busy host delays both runs alike.
    assert!(plain >= 1490.0 && moved >= 490.0, "{plain} {moved}");
    assert!(
        moved + 700.0 < plain,
        "the origin moved the change: {moved} vs {plain}"
    );
}

/// `auto_restart`: a worker killed mid-run and started again on its port answers without the run;
/// it is prepared and started again with its share for the time left, as a new row of the
/// summary, and the run finishes. What the first process measured before it died stays in its
/// own row; every merged batch is counted once.
#[test]
fn a_restarted_worker_is_prepared_again_and_given_its_share() {
    let mock = mock(5);
    let (a, mut c) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let extra = "distributed:\n  orchestration:\n    heartbeat_interval: 1s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 1s\n      max_failure_rate: 50\n      recovery:\n        auto_restart: true\n";
    let file = test_yaml(&mock, "pattern: basic, virtual_users: 2, duration: 7s")
        .extra(extra)
        .write(dir.path());
    let out = dir.path().join("out");
    let child = start(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &c]),
        "-s",
        "even",
        "-o",
        out.to_str().unwrap(),
    ]);
    wait_running(&c, 20);
    let port = c.addr.rsplit_once(':').unwrap().1.to_string();
    c.kill();
    let again = spawn_server(
        &["worker", "--host", "127.0.0.1", "--port", &port],
        "/health",
    );
    wait_running(&again, 20);
    let res = child.wait_with_deadline(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&res.stderr);
    let s = summary(&out);
    assert_eq!(s["phase"], "finished", "{stderr}\n{s}");
    assert_merged_exactly_once(&s);
    let events = s["events"].to_string();
    assert!(
        events.contains("came back restarted; prepared and started again with its share"),
        "{events}"
    );
    let rows = s["workers"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "a, the first c, the restarted c: {s}");
    assert_eq!(rows[2]["address"], rows[1]["address"]);
    assert_eq!(rows[2]["planned"], 1.0, "its own share again: {s}");
    assert!(
        rows[2]["count"].as_u64().unwrap() > 0 && rows[2]["state"] == "finished",
        "the restarted worker ran: {}",
        rows[2]
    );
    let counted: u64 = s["overall"]["count"].as_u64().unwrap();
    let sum: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, sum);
    assert!(mock_stats(&mock)["total"].as_u64().unwrap() >= counted);
}

/// `master_failure` as the seed writes it (with `backend: raft`) is checked against the cluster that
/// takes the run: three replicas accept `backup_masters: 2` and refuse `backup_masters: 4`; the
/// embedded master of `perfornium distributed` refuses `high_availability: true`. The accepted run
/// also carries its geographic regions, with their time zones, in the run view.
#[test]
fn master_failure_is_checked_against_the_masters_that_take_the_run() {
    let c = Cluster::start();
    let leader = c.agreed_leader(20);
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let master_block = |backups: u32| {
        format!("distributed:\n  geographic:\n    regions:\n      - {{ name: east, workers: [worker-1], load_percentage: 75, timezone: America/New_York }}\n      - {{ name: west, workers: [worker-2], load_percentage: 25, timezone: America/Los_Angeles }}\n  fault_tolerance:\n    master_failure:\n      high_availability: true\n      failover:\n        backup_masters: {backups}\n        election_timeout: 30s\n        election_algorithm: \"raft\"\n      state_persistence:\n        enabled: true\n        backend: \"raft\"\n        backup_interval: 60s\n")
    };
    let body = |backups: u32| {
        let text = test_yaml(&mock, "pattern: basic, virtual_users: 4, iterations: 2")
            .extra(&master_block(backups))
            .text();
        let workers: Vec<serde_json::Value> = [&a, &b]
            .iter()
            .map(|w| {
                let (host, port) = w.addr.split_once(':').unwrap();
                serde_json::json!({"host": host, "port": port.parse::<u16>().unwrap()})
            })
            .collect();
        serde_json::json!({"test_yaml": text, "workers": workers}).to_string()
    };
    let url = format!("http://{}/runs", c.addrs[leader]);
    let (code, resp) = call("POST", &url, None, Some(&body(4))).expect("POST /runs");
    assert_eq!(code, 422, "{resp}");
    assert!(
        resp.contains(
            "backup_masters: 4, but the cluster taking this run has 3 masters (2 backups)"
        ),
        "{resp}"
    );
    let id = c.submit(leader, &body(2));
    let view = c.wait_phase(&[0, 1, 2], &id, "finished", 30);
    let regions = &view["regions"];
    assert_eq!(regions[0]["name"], "east", "{view}");
    assert_eq!(regions[0]["timezone"], "America/New_York");
    assert_eq!(regions[0]["planned_units"], 3, "75 % of 4 VUs");
    assert_eq!(regions[1]["timezone"], "America/Los_Angeles");
    assert_eq!(regions[1]["planned_units"], 1);
    assert_eq!(mock_stats(&mock)["total"], 8, "4 VUs x 2 iterations");

    let dir = tempfile::tempdir().unwrap();
    let file = test_yaml(&mock, "pattern: basic, virtual_users: 4, iterations: 2")
        .extra(&master_block(2))
        .write(dir.path());
    let res = run(&["distributed", &file, "-w", &worker_list(&[&a, &b])]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success()
            && stderr.contains("high_availability: needs a replica cluster of 3 or more masters"),
        "{stderr}"
    );
}

/// `network_partitions.recovery.auto_reconnect: false`: a worker frozen long enough to be failed
/// and then thawed is never asked again, so what it measures after the partition is not merged
/// (the mock saw more than was counted) and no re-attachment is reported. (With the default, the
/// partition tests show it re-attached and merged exactly once.)
#[test]
fn without_auto_reconnect_a_worker_back_from_a_partition_is_not_re_attached() {
    let mock = mock(5);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let extra = "distributed:\n  orchestration:\n    heartbeat_interval: 1s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 1s\n      max_failure_rate: 50\n    network_partitions:\n      recovery:\n        auto_reconnect: false\n";
    let file = test_yaml(&mock, "pattern: basic, virtual_users: 2, duration: 6s")
        .extra(extra)
        .write(dir.path());
    let out = dir.path().join("out");
    let child = start(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-s",
        "even",
        "-o",
        out.to_str().unwrap(),
    ]);
    wait_pulled(&b, 20);
    let frozen = Frozen::new(&b);
    let failed = wait_for(15, || child.stderr_line_at("failed workers 1").is_some());
    frozen.thaw();
    assert!(failed, "b was never failed: {}", child.stderr_tail());
    let res = child.wait_with_deadline(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&res.stderr);
    let s = summary(&out);
    let events = s["events"].to_string();
    assert!(!events.contains("answered again"), "{events}");
    assert_eq!(s["workers"][1]["state"], "failed", "{s}");
    // b goes on with its share once thawed; none of it is merged.
    assert!(
        wait_for(15, || worker_status(&b)["phase"] == "finished"),
        "{}",
        worker_status(&b)
    );
    let counted = s["overall"]["count"].as_u64().unwrap();
    let seen = mock_stats(&mock)["total"].as_u64().unwrap();
    assert!(
        seen > counted + 50,
        "the mock saw {seen}, {counted} counted: {stderr}"
    );
}
