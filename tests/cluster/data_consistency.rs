//! The seed's `distributed.data_consistency` on real worker processes: CSV rows partitioned by
//! each `partition_strategy` (which worker sent which row is read back from the mock's own store,
//! each worker tagging its requests with its `PERF_WORKER` environment variable), and the keys
//! refused by name.

use crate::support::*;
use std::collections::BTreeMap;

const ROWS: &str = "id,team\nu0,red\nu1,blue\nu2,green\nu3,red\nu4,blue\nu5,green\nu6,red\nu7,gold\nu8,blue\nu9,red\n";

/// FNV-1a 64, written out here as the reference for `hash`.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Runs the rows over `workers` with `csv_data` settings `settings` (block YAML under
/// `csv_data:`), and returns worker tag → ids it sent, from the mock's store.
fn rows_by_worker(
    mock: &Proc,
    workers: &[&Proc],
    tag: &str,
    settings: &str,
) -> BTreeMap<String, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rows.csv", ROWS);
    let file = yaml(mock)
        .name(tag)
        .load("pattern: basic, virtual_users: 3, iterations: 20")
        .scenario("csv_data: { file: rows.csv, mode: unique }")
        .steps(&format!("      - name: create\n        method: POST\n        path: /users\n        json: {{ row: \"{{{{id}}}}\", team: \"{{{{team}}}}\", worker: \"{{{{env.PERF_WORKER}}}}\", run: {tag} }}\n"))
        .extra(&format!("distributed:\n  data_consistency:\n    csv_data:\n{settings}"))
        .write(dir.path());
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &worker_list(workers),
        "-s",
        "even",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let users = get_json(&format!("http://{}/users", mock.addr)).expect("the mock's /users");
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in users["users"].as_array().unwrap() {
        if u["run"] == tag {
            by.entry(
                u["worker"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a worker tag: {u}"))
                    .to_string(),
            )
            .or_default()
            .push(
                u["row"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a row id: {u}"))
                    .to_string(),
            );
        }
    }
    for ids in by.values_mut() {
        ids.sort();
    }
    by
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Ten rows on three workers (one VU each, rows handed out once): `round_robin` deals them in
/// turn, `block` gives contiguous runs 4/3/3, `hash` of `team` puts each team on one worker (the
/// one FNV-1a of the team's name picks) — every row sent exactly once, by the worker it belongs to.
#[test]
fn csv_partition_strategies_give_each_worker_its_own_rows() {
    let mock = mock(0);
    let ws: Vec<Proc> = (0..3)
        .map(|i| worker_with_env(&[("PERF_WORKER", &format!("w{i}"))]))
        .collect();
    let workers: Vec<&Proc> = ws.iter().collect();

    let rr = rows_by_worker(
        &mock,
        &workers,
        "rr",
        "      distribution_mode: partition\n      partition_strategy: round_robin\n",
    );
    let want = BTreeMap::from([
        ("w0".to_string(), ids(&["u0", "u3", "u6", "u9"])),
        ("w1".to_string(), ids(&["u1", "u4", "u7"])),
        ("w2".to_string(), ids(&["u2", "u5", "u8"])),
    ]);
    assert_eq!(rr, want, "round_robin");

    let block = rows_by_worker(
        &mock,
        &workers,
        "block",
        "      distribution_mode: partition\n      partition_strategy: block\n",
    );
    let want = BTreeMap::from([
        ("w0".to_string(), ids(&["u0", "u1", "u2", "u3"])),
        ("w1".to_string(), ids(&["u4", "u5", "u6"])),
        ("w2".to_string(), ids(&["u7", "u8", "u9"])),
    ]);
    assert_eq!(block, want, "block");

    let hash = rows_by_worker(
        &mock,
        &workers,
        "hash",
        "      distribution_mode: partition\n      partition_strategy: hash\n      partition_key: team\n",
    );
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in ROWS.lines().skip(1) {
        let (id, team) = line.split_once(',').unwrap();
        want.entry(format!("w{}", fnv1a(team) % 3))
            .or_default()
            .push(id.to_string());
    }
    assert_eq!(hash, want, "hash of team");
    assert!(
        want.len() >= 2,
        "the teams spread over more than one worker: {want:?}"
    );
}

/// `perfornium validate` of a test with this `distributed:` block: (success, stderr).
fn validate(block: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = Yaml::at("http://127.0.0.1:9")
        .extra(block)
        .write(dir.path());
    let out = run(&["validate", &file]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn data_consistency_keys_that_cannot_act_are_refused_by_name() {
    for (block, says) in [
        ("distributed:\n  data_consistency:\n    csv_data:\n      distribution_mode: partition\n      partition_strategy: hash\n", "`hash` needs `partition_key`"),
        ("distributed:\n  data_consistency:\n    csv_data:\n      partition_strategy: block\n", "only acts with `distribution_mode: partition`"),
        ("distributed:\n  data_consistency:\n    csv_data:\n      distribution_mode: partition\n      partition_key: team\n", "partition_key: only acts with `partition_strategy: hash`"),
        ("distributed:\n  data_consistency:\n    csv_data:\n      distribution_mode: partition\n      partition_strategy: round_robbin\n", "round_robin"),
        ("distributed:\n  data_consistency:\n    variables:\n      variable_synchronization: true\n", "variable_synchronization: only acts with `global_variables: true`"),
        ("distributed:\n  data_consistency:\n    state_management:\n      shared_state: true\n      state_backend: etcd\n", "`etcd` is not supported"),
        ("distributed:\n  data_consistency:\n    state_management:\n      state_backend: database\n", "`database` is not supported"),
        ("distributed:\n  data_consistency:\n    state_management:\n      shared_state: true\n      state_ttl: 30\n", "state_ttl: only acts with `state_backend: redis`"),
    ] {
        let (ok, stderr) = validate(block);
        assert!(!ok, "refused:\n{block}");
        assert!(stderr.contains(says), "`{says}` for\n{block}\ngot: {stderr}");
    }
    let (ok, stderr) = validate("distributed:\n  data_consistency:\n    csv_data:\n      distribution_mode: partition\n      partition_strategy: contiguous\n    variables:\n      global_variables: false\n");
    assert!(
        ok,
        "`contiguous` is `block`; false variables accepted: {stderr}"
    );
}

/// A `partition_key` that is not a column of the CSV file stops the run before any worker
/// starts, naming the key and the file's columns.
#[test]
fn a_partition_key_that_is_not_a_column_is_refused_at_submission() {
    let mock = mock(0);
    let w = worker(None);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rows.csv", ROWS);
    let file = yaml(&mock)
        .scenario("csv_data: { file: rows.csv, mode: unique }")
        .extra("distributed:\n  data_consistency:\n    csv_data:\n      distribution_mode: partition\n      partition_strategy: hash\n      partition_key: region\n")
        .write(dir.path());
    let res = run(&["distributed", &file, "-w", &worker_list(&[&w])]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{stderr}");
    assert!(
        stderr.contains("partition_key `region` is not a column of this file (columns: id, team)"),
        "{stderr}"
    );
    assert_eq!(
        mock_stats(&mock)["by_route"]["/users"],
        serde_json::Value::Null,
        "no request reached the mock"
    );
}

/// `examples/csv-partition.yaml` runs on two workers: each of its 8 rows is posted exactly once
/// (the mock's store, beside the users it starts with, is the reference), and its `--explain` names the hash column.
#[test]
fn the_csv_partition_example_posts_every_row_once() {
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let example = format!("{}/examples/csv-partition.yaml", env!("CARGO_MANIFEST_DIR"));
    let res = run(&["validate", "--explain", &example]);
    let explained =
        String::from_utf8_lossy(&res.stdout).into_owned() + &String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{explained}");
    assert!(
        explained.contains("csv data: partition, hash of column `team`"),
        "{explained}"
    );
    let res = run(&[
        "distributed",
        &example,
        "-w",
        &worker_list(&[&a, &b]),
        "--base-url",
        &format!("http://{}", mock.addr),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let users = get_json(&format!("http://{}/users", mock.addr)).expect("the mock's /users");
    let mut emails: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["email"].as_str())
        .filter(|e| e.ends_with("@x.io"))
        .collect();
    emails.sort();
    let csv = std::fs::read_to_string(format!(
        "{}/examples/data/teams.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut want: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    want.sort();
    assert_eq!(emails, want);
}

/// Worker A extracts a new `global.token` (`tok-<its clock in ms>`) every iteration; worker B never
/// extracts one (its echo body has no `token` key) and posts what `{{global.token}}` holds every
/// iteration (50 ms think time), with its own clock. Every token B reports came from A, B sees several of A's changes,
/// and each reached B within 1 s of A setting it (the controller merges every 100 ms; both
/// workers run on this machine, so their clocks agree).
#[test]
fn a_global_variable_extracted_on_one_worker_reaches_the_other_within_a_second() {
    let mock = mock(0);
    let a = worker_with_env(&[("PERF_WORKER", "a"), ("PERF_KEY", "token")]);
    let b = worker_with_env(&[("PERF_WORKER", "b"), ("PERF_KEY", "other")]);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: set\n        method: POST\n        path: /echo\n        headers: { Content-Type: application/json }\n        body: '{\"{{env.PERF_KEY}}\": \"tok-{{timestamp:unix}}\"}'\n        think_time: 0ms\n        extract:\n          - { name: global.token, type: json_path, expression: \"$.token\" }\n      - name: report\n        method: POST\n        path: /users\n        json: { seen: \"{{global.token}}\", worker: \"{{env.PERF_WORKER}}\", at: \"{{timestamp:unix}}\" }\n";
    let file = yaml(&mock)
        .name("globals")
        .load("pattern: basic, virtual_users: 2, duration: 4s")
        .scenario("think_time: 50ms")
        .steps(steps)
        .extra("distributed:\n  data_consistency:\n    variables:\n      global_variables: true\n      variable_synchronization: true\n")
        .write(dir.path());
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-s",
        "even",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let users = get_json(&format!("http://{}/users", mock.addr)).expect("the mock's /users");
    let mut first_seen: BTreeMap<u64, u64> = BTreeMap::new();
    let mut a_tokens = std::collections::BTreeSet::new();
    for u in users["users"].as_array().unwrap() {
        let (Some(seen), Some(w), Some(at)) = (
            u["seen"].as_str(),
            u["worker"].as_str(),
            u["at"]
                .as_str()
                .and_then(|t| t.parse::<u64>().ok())
                .or(u["at"].as_u64()),
        ) else {
            continue;
        };
        let Some(set_at) = seen
            .strip_prefix("tok-")
            .and_then(|t| t.parse::<u64>().ok())
        else {
            continue;
        };
        if w == "a" {
            a_tokens.insert(set_at);
        } else {
            let e = first_seen.entry(set_at).or_insert(at);
            *e = (*e).min(at);
        }
    }
    let lat: Vec<u64> = first_seen
        .iter()
        .map(|(set, seen)| seen.saturating_sub(*set))
        .collect();
    eprintln!(
        "tokens set by A: {}; seen by B: {}; latencies (ms): {lat:?}",
        a_tokens.len(),
        first_seen.len()
    );
    assert!(
        first_seen.len() >= 3,
        "B saw at least 3 of A's changes: {first_seen:?} (A reported {a_tokens:?})"
    );
    for set in first_seen.keys() {
        assert!(
            a_tokens.contains(set),
            "B's token {set} is one A set: {a_tokens:?}"
        );
    }
    assert!(
        lat.iter().all(|&l| l <= 1000),
        "each change reached B within 1 s: {lat:?}"
    );
}

/// `variable_synchronization: false`: the first value set stays. One VU extracts a new
/// `global.token` every iteration and reports what `{{global.token}}` holds: always the first.
/// An extraction into `global.` without `global_variables: true` is refused by name.
#[test]
fn without_synchronization_the_first_global_value_stays() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: set\n        method: POST\n        path: /echo\n        headers: { Content-Type: application/json }\n        body: '{\"token\": \"tok-{{__ITER}}\"}'\n        extract:\n          - { name: global.token, type: json_path, expression: \"$.token\" }\n      - name: report\n        method: POST\n        path: /users\n        json: { seen: \"{{global.token}}\", iter: \"{{__ITER}}\" }\n";
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 4")
        .steps(steps)
        .extra("distributed:\n  data_consistency:\n    variables:\n      global_variables: true\n      variable_synchronization: false\n")
        .write(dir.path());
    let res = run(&["run", &file]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let users = get_json(&format!("http://{}/users", mock.addr)).expect("the mock's /users");
    let seen: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["seen"].as_str())
        .collect();
    assert_eq!(seen, ["tok-0", "tok-0", "tok-0", "tok-0"]);
    let (ok, stderr) = validate_steps(steps);
    assert!(!ok);
    assert!(
        stderr.contains("extraction `global.token` is global (its name starts with `global.`) and needs `distributed.data_consistency.variables.global_variables: true`"),
        "{stderr}"
    );
}

/// `perfornium validate` of a test with these steps and no `distributed:` block.
fn validate_steps(steps: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = Yaml::at("http://127.0.0.1:9")
        .steps(steps)
        .write(dir.path());
    let out = run(&["validate", &file]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A worker restarted mid-run (`auto_restart`) joins the global variables too: worker A extracts
/// a new `global.token` every iteration (from `/record/set`, so the mock keeps every token A
/// issued); worker C never extracts one and posts what
/// `{{global.token}}` holds. C is killed and started again on its port (as `c2`); once it is
/// prepared again, the tokens it posts are A's — the controller reads and feeds it like the
/// workers the run started with.
#[test]
fn a_worker_restarted_by_auto_restart_gets_the_global_variables() {
    let mock = mock(0);
    let a = worker_with_env(&[("PERF_WORKER", "a"), ("PERF_KEY", "token")]);
    let mut c = worker_with_env(&[("PERF_WORKER", "c"), ("PERF_KEY", "other")]);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: set\n        method: POST\n        path: /record/set\n        headers: { Content-Type: application/json }\n        body: '{\"{{env.PERF_KEY}}\": \"tok-{{timestamp:unix}}\"}'\n        think_time: 0ms\n        extract:\n          - { name: global.token, type: json_path, expression: \"$.body.token\" }\n      - name: report\n        method: POST\n        path: /users\n        json: { seen: \"{{global.token}}\", worker: \"{{env.PERF_WORKER}}\" }\n";
    let file = yaml(&mock)
        .name("globals-restart")
        .load("pattern: basic, virtual_users: 2, duration: 7s")
        .scenario("think_time: 50ms")
        .steps(steps)
        .extra("distributed:\n  orchestration:\n    heartbeat_interval: 1s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 1s\n      max_failure_rate: 50\n      recovery:\n        auto_restart: true\n  data_consistency:\n    variables:\n      global_variables: true\n      variable_synchronization: true\n")
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
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_perfornium"));
    cmd.args(["worker", "--host", "127.0.0.1", "--port", &port])
        .envs([("PERF_WORKER", "c2"), ("PERF_KEY", "other")]);
    let mut again = try_spawn_listening_cmd(cmd).unwrap_or_else(|e| panic!("{e}"));
    again.wait_ready("/health");
    wait_running(&again, 20);
    let res = child.wait_with_deadline(std::time::Duration::from_secs(60));
    let s = summary(&out);
    assert_eq!(
        s["phase"],
        "finished",
        "{}\n{s}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        s["events"].to_string().contains("came back restarted"),
        "{}",
        s["events"]
    );
    let users = get_json(&format!("http://{}/users", mock.addr)).expect("the mock's /users");
    // Every token A issued, as the mock received it (A's reports can lag its extractions: a VU
    // stopped by the run's end between its two steps never reports its last token).
    let recorded = get_json(&format!("http://{}/__recorded", mock.addr)).expect("/__recorded");
    let issued: std::collections::BTreeSet<String> = recorded
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["body"]["token"].as_str().map(String::from))
        .collect();
    let mut a_tokens = std::collections::BTreeSet::new();
    let (mut c2_reports, mut c2_tokens) = (0, std::collections::BTreeSet::new());
    for u in users["users"].as_array().unwrap() {
        let (Some(seen), Some(w)) = (u["seen"].as_str(), u["worker"].as_str()) else {
            continue;
        };
        match w {
            "a" => {
                a_tokens.insert(seen.to_string());
            }
            "c2" => {
                c2_reports += 1;
                if seen.starts_with("tok-") {
                    c2_tokens.insert(seen.to_string());
                }
            }
            _ => {}
        }
    }
    assert!(c2_reports > 5, "the restarted worker ran: {c2_reports}");
    assert!(
        c2_tokens.len() >= 2 && c2_tokens.iter().all(|t| issued.contains(t)),
        "the restarted worker saw A's tokens: {c2_tokens:?} of {} reports; A issued {issued:?}",
        c2_reports
    );
    assert!(
        a_tokens.iter().all(|t| issued.contains(t)),
        "A reported only tokens it issued"
    );
}
