//! The seed document's load distribution (`load.distributed`, `distributed.geographic`) on real
//! worker processes, with the mock's own counts as the reference; and every seed `distributed:`
//! block of the distribution, orchestration and fault-tolerance sections placed in a test.

use crate::support::*;

/// 11 VUs over regions of 40/30/30 %: floor gives 4/3/3 and the remainder goes to the first
/// region written, so us-east runs 5 (3 + 2 over its two workers, named by `id`), us-west 3 (its
/// one worker, named `worker-3`) and europe 3 (the worker whose workers-file `region` is
/// `europe`). The strategy comes from the seed's `load.distributed` spelling.
#[test]
fn geographic_regions_split_the_load_by_percentage_and_the_plan_shows_their_time_zones() {
    let mock = mock(0);
    let (a, b, c, d) = (worker(None), worker(None), worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let entry = |w: &Proc, extra: &str| {
        let (host, port) = w.addr.rsplit_once(':').unwrap();
        format!("{{\"host\": \"{host}\", \"port\": {port}{extra}}}")
    };
    let workers_file = write(
        dir.path(),
        "workers.json",
        &format!(
            "[{}, {}, {}, {}]",
            entry(&a, ", \"id\": \"worker-us-east-1\""),
            entry(&b, ", \"id\": \"worker-us-east-2\""),
            entry(&c, ""),
            entry(&d, ", \"region\": \"europe\"")
        ),
    );
    let regions = "distributed:\n  geographic:\n    enabled: true\n    regions:\n      - name: us-east\n        workers: [\"worker-us-east-1\", \"worker-us-east-2\"]\n        load_percentage: 40\n        timezone: \"America/New_York\"\n      - name: us-west\n        workers: [\"worker-3\"]\n        load_percentage: 30\n        timezone: \"America/Los_Angeles\"\n      - name: europe\n        load_percentage: 30\n        timezone: \"Europe/London\"\n    coordination:\n      synchronized_start: true\n      time_skew_tolerance: 5000\n";
    let file = yaml(&mock)
        .name("geo")
        .load("pattern: basic, virtual_users: 11, iterations: 3, distributed: { strategy: geographic }")
        .step("{ name: list, path: /users }")
        .extra(regions)
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&[
        "distributed",
        &file,
        "--workers-file",
        &workers_file,
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    for line in [
        "timezone America/New_York",
        "timezone America/Los_Angeles",
        "timezone Europe/London",
        "geographic, by the regions' load_percentage",
    ] {
        assert!(stderr.contains(line), "the plan shows `{line}`: {stderr}");
    }
    let region_line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("region us-east"))
        .unwrap_or_else(|| panic!("a line for region us-east: {stderr}"));
    assert!(
        region_line.contains("40%") && region_line.contains(" 5 "),
        "{region_line}"
    );
    let s = summary(&out);
    assert_merged_exactly_once(&s);
    let planned: Vec<f64> = s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["planned"].as_f64().unwrap())
        .collect();
    assert_eq!(planned, [3.0, 2.0, 3.0, 3.0], "5 / 3 / 3 by region");
    assert_eq!(s["overall"]["count"], 33, "11 VUs x 3 iterations");
    assert_eq!(mock_stats(&mock)["total"], 33, "the mock saw exactly those");
    assert!(
        s["start_skew_ms"].as_f64().is_some_and(|k| k < 5000.0),
        "geographic.coordination.synchronized_start gave the run one start instant, its skew measured: {}",
        s["start_skew_ms"]
    );
}

/// The `distributed:` blocks of the seed's "Load Distribution", "Geographic Distribution",
/// "Coordination and Synchronization" and "Fault Tolerance" sections, as written, each in a test
/// given to `perfornium validate`. The seed's first block holds two alternatives (an even
/// `load.distributed` and a weighted top-level block, with different strategies), so it is placed
/// as two tests; given together they are refused as the same setting with two values. Two keys
/// are refused by name with their reason, and the blocks pass once those are taken out.
#[test]
fn the_seeds_distributed_blocks_validate_or_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name: seed\nglobal:\n  base_url: http://127.0.0.1:9\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n";
    let basic = "load:\n  pattern: basic\n  virtual_users: 1000\n  duration: 1s\n";
    let even = "load:\n  pattern: \"basic\"\n  virtual_users: 1000\n\n  distributed:\n    strategy: \"even\"  # even, weighted, geographic, custom\n\n    # Even distribution\n    distribution:\n      worker-1: 200\n      worker-2: 200\n      worker-3: 200\n      worker-4: 200\n      worker-5: 200\n";
    let weighted = "distributed:\n  strategy: \"weighted\"\n  weights:\n    us-east-workers: 40    # 40% of load\n    us-west-workers: 30    # 30% of load\n    eu-workers: 20         # 20% of load\n    asia-workers: 10       # 10% of load\n";
    let geographic = "distributed:\n  geographic:\n    enabled: true\n\n    regions:\n      - name: \"us-east\"\n        workers: [\"worker-us-east-1\", \"worker-us-east-2\"]\n        load_percentage: 40\n        timezone: \"America/New_York\"\n\n      - name: \"us-west\"\n        workers: [\"worker-us-west-1\", \"worker-us-west-2\"]\n        load_percentage: 30\n        timezone: \"America/Los_Angeles\"\n\n      - name: \"europe\"\n        workers: [\"worker-eu-1\", \"worker-eu-2\"]\n        load_percentage: 20\n        timezone: \"Europe/London\"\n\n      - name: \"asia\"\n        workers: [\"worker-asia-1\"]\n        load_percentage: 10\n        timezone: \"Asia/Tokyo\"\n\n    coordination:\n      synchronized_start: true\n      time_skew_tolerance: 5000  # 5 seconds\n";
    let orchestration = "distributed:\n  orchestration:\n    synchronization:\n      start_barrier: true      # Wait for all workers\n      phase_synchronization: true  # Sync load pattern phases\n      clock_sync: true         # Synchronize clocks\n\n    coordination_timeout: 60s\n    heartbeat_interval: 5s\n\n    failure_handling:\n      worker_failure_threshold: 20  # % of workers that can fail\n      continue_on_partial_failure: true\n      graceful_degradation: true\n";
    let worker_failures = "distributed:\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 30s\n      max_failure_rate: 20  # %\n      \n      recovery:\n        auto_restart: true\n        load_redistribution: true\n        replacement_workers: true\n      \n      graceful_degradation:\n        enabled: true\n        min_workers_threshold: 3\n        scale_down_load: true\n";
    let partitions = "distributed:\n  fault_tolerance:\n    network_partitions:\n      detection_method: \"heartbeat\"\n      detection_timeout: 60s\n      \n      recovery:\n        auto_reconnect: true\n        state_reconciliation: true\n        conflict_resolution: \"master_wins\"\n      \n      split_brain_prevention: true\n";
    let master = "distributed:\n  fault_tolerance:\n    master_failure:\n      high_availability: true\n      \n      failover:\n        backup_masters: 2\n        election_timeout: 30s\n        election_algorithm: \"raft\"\n      \n      state_persistence:\n        enabled: true\n        backend: \"etcd\"\n        backup_interval: 60s\n";
    let validate = |name: &str, text: String| {
        let file = write(dir.path(), name, &text);
        let res = run(&["validate", "--explain", &file]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
        (res.status.success(), all)
    };
    for (name, text) in [
        ("even.yaml", format!("{head}{even}")),
        ("weighted.yaml", format!("{head}{basic}{weighted}")),
        ("geographic.yaml", format!("{head}{basic}{geographic}")),
        ("partitions.yaml", format!("{head}{basic}{partitions}")),
        (
            "orchestration.yaml",
            format!("{head}{basic}{orchestration}"),
        ),
    ] {
        let (ok, out) = validate(name, text);
        assert!(ok, "{name}: {out}");
        assert!(
            out.contains("distributed: split"),
            "{name} is explained: {out}"
        );
    }
    let (_, out) = validate("geographic.yaml", format!("{head}{basic}{geographic}"));
    assert!(
        out.contains("region `asia`: 10% of the load")
            && out.contains("Asia/Tokyo")
            && out.contains("start skew over 5000ms"),
        "{out}"
    );
    let (_, out) = validate(
        "orchestration.yaml",
        format!("{head}{basic}{orchestration}"),
    );
    assert!(out.contains("(phase_synchronization)"), "{out}");
    let (_, out) = validate("partitions.yaml", format!("{head}{basic}{partitions}"));
    assert!(out.contains("raft log gives it"), "{out}");
    let (ok, out) = validate("both.yaml", format!("{head}{even}{weighted}"));
    assert!(
        !ok && out.contains("same setting with different values"),
        "{out}"
    );
    let (ok, out) = validate(
        "worker_failures.yaml",
        format!("{head}{basic}{worker_failures}"),
    );
    assert!(
        ok && out.contains("worker replacement: every failed worker"),
        "{out}"
    );
    let (ok, out) = validate("master.yaml", format!("{head}{basic}{master}"));
    assert!(
        !ok && out.contains("backend: `etcd` is not supported"),
        "master.yaml: {out}"
    );
    let text = master.replace("backend: \"etcd\"", "backend: \"raft\"");
    let (ok, out) = validate("master.yaml", format!("{head}{basic}{text}"));
    assert!(ok, "master.yaml without the refused key: {out}");
}

/// A region's percentages must add up to 100, and a time zone must be an IANA name; both are
/// refused with the key's path (and the zone with its line).
#[test]
fn region_percentages_and_time_zones_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name: seed\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: 10\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n";
    for (block, says) in [
        (
            "distributed:\n  geographic:\n    regions:\n      - { name: a, load_percentage: 60 }\n      - { name: b, load_percentage: 30 }\n",
            "add up to 90, not 100",
        ),
        (
            "distributed:\n  geographic:\n    regions:\n      - name: a\n        load_percentage: 100\n        timezone: Mars/Olympus\n",
            "t.yaml:16:9: distributed.geographic.regions[0]: `Mars/Olympus` is not an IANA time-zone name",
        ),
        (
            "distributed:\n  geographic:\n    regions:\n      - { name: a, load_percentage: 140 }\n",
            "at most 100, got 140",
        ),
        (
            "distributed:\n  strategy: even\n  geographic:\n    regions:\n      - { name: a, load_percentage: 100 }\n",
            "but distributed.strategy is `even`",
        ),
    ] {
        let file = write(dir.path(), "t.yaml", &format!("{head}{block}"));
        let res = run(&["validate", &file]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success() && err.contains(says), "{block}: {err}");
    }
}

/// `examples/seed-distribution.yaml` (the seed's blocks together) validates and runs on five
/// workers named by the ids its regions use: 20 VUs split 8 (4 + 4) / 6 / 4 / 2, every request
/// counted once and seen by the mock.
#[test]
fn the_seed_distribution_example_runs_on_five_named_workers() {
    let mock = mock(0);
    let workers: Vec<Proc> = (0..5).map(|_| worker(None)).collect();
    let dir = tempfile::tempdir().unwrap();
    let ids = [
        "worker-us-east-1",
        "worker-us-east-2",
        "worker-us-west-1",
        "worker-eu-1",
        "worker-asia-1",
    ];
    let entries: Vec<String> = workers
        .iter()
        .zip(ids)
        .map(|(w, id)| {
            let (host, port) = w.addr.rsplit_once(':').unwrap();
            format!("{{\"host\": \"{host}\", \"port\": {port}, \"id\": \"{id}\"}}")
        })
        .collect();
    let workers_file = write(
        dir.path(),
        "workers.json",
        &format!("[{}]", entries.join(", ")),
    );
    let example = format!(
        "{}/examples/seed-distribution.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let res = run(&["validate", &example]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let out = dir.path().join("out");
    let res = run(&[
        "distributed",
        &example,
        "--workers-file",
        &workers_file,
        "--base-url",
        &format!("http://{}", mock.addr),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains("timezone Asia/Tokyo"), "{stderr}");
    let s = summary(&out);
    assert_merged_exactly_once(&s);
    let planned: Vec<f64> = s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["planned"].as_f64().unwrap())
        .collect();
    assert_eq!(planned, [4.0, 4.0, 6.0, 4.0, 2.0]);
    assert_eq!(s["overall"]["count"], 40, "20 VUs x 2 iterations");
    assert_eq!(mock_stats(&mock)["total"], 40);
}
