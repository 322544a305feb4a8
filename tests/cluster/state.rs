//! `distributed.data_consistency.state_management` with `state_backend: redis`: a real
//! `redis-server` (Debian's `redis-server`, see .ci/run) started here on a free port in a temporary
//! directory, two real workers whose VUs claim IDs with `{{state.incr(ids)}}`, and the numbers read
//! back from the mock's own store and from redis itself (`redis-cli`). Keys that cannot act are
//! refused by name at `validate`.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

/// A redis-server in the foreground, without persistence, its files in a temporary directory;
/// killed when dropped.
struct Redis {
    proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// `redis-cli -p PORT ARGS`: its trimmed stdout.
    fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args);
        let out = start_cmd(cmd).wait_with_deadline(Duration::from_secs(10));
        assert!(
            out.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// Starts redis-server on a free port (retrying if the port was taken meanwhile) and waits until
/// it answers PING.
fn redis() -> Redis {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("redis-server").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`redis-server` is not installed (Debian package `redis-server`, see .ci/run)"
    );
    let mut last = String::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.path().display().to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]);
        let mut proc = start_cmd(cmd);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if proc.child.try_wait().unwrap().is_some() {
                break;
            }
            let ping = Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "ping"])
                .output();
            if ping.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG") {
                return Redis {
                    proc,
                    port,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = proc.child.kill();
        let _ = proc.child.wait();
        last = proc.stderr_tail();
    }
    panic!("redis-server never answered PING: {last}");
}

/// 6 VUs (3 on each of two workers, 2 ms think time, so the mock keeps every body: it keeps
/// 10 000) claim IDs for 2 s, each request posting
/// `{{state.incr(ids)}}` twice (one increment per request: both read the same value). Every ID the
/// mock stored is unique, they are exactly 1..=N with N the counter's value read from redis
/// itself, both workers claimed some, and the key carries the `state_ttl` expiry.
#[test]
fn two_workers_claim_unique_ids_through_a_redis_counter_with_its_ttl() {
    let redis = redis();
    let mock = mock(0);
    let a = worker_with_env(&[("PERF_WORKER", "a")]);
    let b = worker_with_env(&[("PERF_WORKER", "b")]);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("state")
        .load("pattern: basic, virtual_users: 6, duration: 2s")
        .scenario("think_time: 2ms")
        .steps("      - name: claim\n        method: POST\n        path: /users\n        json: { claimed: \"{{state.incr(ids)}}\", again: \"{{state.incr(ids)}}\", worker: \"{{env.PERF_WORKER}}\" }\n")
        .extra(&format!("distributed:\n  data_consistency:\n    state_management:\n      shared_state: true\n      state_backend: redis\n      state_ttl: 600\n      redis_url: \"{}\"\n", redis.url()))
        .write(dir.path());
    let t = Instant::now();
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-s",
        "even",
    ]);
    let took = t.elapsed();
    assert!(
        res.status.success(),
        "{}\nredis: {}",
        String::from_utf8_lossy(&res.stderr),
        redis.proc.stderr_tail()
    );
    let users = get_json(&format!("http://{}/users", mock.addr)).expect("the mock's /users");
    let mut ids = BTreeSet::new();
    let mut by_worker: BTreeMap<String, u64> = BTreeMap::new();
    let mut posted = 0u64;
    for u in users["users"].as_array().unwrap() {
        let (Some(id), Some(again), Some(w)) = (
            u["claimed"].as_str(),
            u["again"].as_str(),
            u["worker"].as_str(),
        ) else {
            continue;
        };
        posted += 1;
        assert_eq!(id, again, "one increment per request: {u}");
        let id: u64 = id
            .parse()
            .unwrap_or_else(|_| panic!("a number, not {id:?}"));
        assert!(ids.insert(id), "ID {id} claimed twice");
        *by_worker.entry(w.to_string()).or_default() += 1;
    }
    let keys = redis.cli(&["--scan", "--pattern", "perfornium:*:ids"]);
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 1, "one counter key for the run: {keys:?}");
    let counter: u64 = redis.cli(&["GET", keys[0]]).parse().unwrap();
    let ttl: i64 = redis.cli(&["TTL", keys[0]]).parse().unwrap();
    eprintln!(
        "{posted} IDs claimed in {took:?} ({by_worker:?}); redis counter {counter}, key {}, TTL {ttl} s",
        keys[0]
    );
    assert!(posted >= 20, "the VUs claimed IDs: {posted}");
    assert_eq!(counter, posted, "redis's counter = IDs the mock stored");
    assert_eq!(
        ids,
        (1..=counter).collect::<BTreeSet<u64>>(),
        "IDs are exactly 1..={counter}"
    );
    assert!(
        by_worker.len() == 2 && by_worker.values().all(|&n| n > 0),
        "both workers claimed IDs: {by_worker:?}"
    );
    assert!(
        (1..=600).contains(&ttl),
        "state_ttl: 600 set the key's expiry: TTL {ttl}"
    );
}

/// `perfornium validate` of a test with these steps and `distributed:` block: (success, stderr).
fn validate(steps: &str, block: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut y = Yaml::at("http://127.0.0.1:9").extra(block);
    if !steps.is_empty() {
        y = y.steps(steps);
    }
    let file = y.write(dir.path());
    let out = run(&["validate", &file]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn state_management_keys_that_cannot_act_are_refused_by_name() {
    let sm = "distributed:\n  data_consistency:\n    state_management:\n";
    let incr = "      - { name: claim, path: \"/users/{{state.incr(ids)}}\" }\n";
    for (steps, block, why) in [
        ("", format!("{sm}      shared_state: true\n      state_backend: etcd\n"), "state_backend: `etcd` is not supported"),
        ("", format!("{sm}      shared_state: true\n      state_backend: mongo\n"), "state_backend: unknown backend `mongo`"),
        ("", format!("{sm}      shared_state: true\n      state_ttl: 60\n"), "state_ttl: only acts with `state_backend: redis`; raft counters belong to one run"),
        ("", format!("{sm}      shared_state: true\n      state_backend: raft\n      redis_url: redis://x:1\n"), "redis_url: only acts with `state_backend: redis`"),
        ("", format!("{sm}      state_ttl: 60\n"), "state_ttl: only acts with `shared_state: true`"),
        ("", format!("{sm}      shared_state: true\n      state_backend: redis\n      state_ttl: 0\n"), "state_ttl: must be at least 1 second"),
        ("", format!("{sm}      shared_state: true\n      state_backend: redis\n      redis_url: http://x\n"), "redis_url: `http://x` is not a"),
        (incr, String::new(), "needs `distributed.data_consistency.state_management.shared_state: true`"),
        ("      - { name: pop, path: \"/users/{{state.pop(ids)}}\" }\n", format!("{sm}      shared_state: true\n      state_backend: redis\n"), "unknown state operation `pop`"),
    ] {
        let (ok, stderr) = validate(steps, &block);
        assert!(!ok && stderr.contains(why), "{block}{steps}: expected `{why}` in:\n{stderr}");
    }
    // A state reference in a scenario's variables would not be resolved per request: refused.
    let dir = tempfile::tempdir().unwrap();
    let file = Yaml::at("http://127.0.0.1:9")
        .scenario("variables: { n: \"{{state.incr(n)}}\" }")
        .extra(&format!(
            "{sm}      shared_state: true\n      state_backend: redis\n"
        ))
        .write(dir.path());
    let out = run(&["validate", &file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("variables: `{{state.incr(n)}}` acts only in a step's own text"),
        "{stderr}"
    );
    let (ok, stderr) = validate(
        incr,
        &format!("{sm}      shared_state: true\n      state_backend: redis\n      state_ttl: 60\n"),
    );
    assert!(ok, "{stderr}");
}

/// `examples/shared-state.yaml` validates, and `perfornium run` of it (aimed at the mock and this
/// redis, 1 s) claims order numbers 1..=N from a `perfornium:local-...` key, N read in redis.
#[test]
fn the_shared_state_example_runs_locally_against_redis() {
    let example = std::fs::read_to_string(format!(
        "{}/examples/shared-state.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let redis = redis();
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let text = example
        .replace("http://127.0.0.1:3000", &format!("http://{}", mock.addr))
        .replace("redis://127.0.0.1:6379/", &redis.url())
        .replace("duration: \"10s\"", "duration: \"1s\"")
        .replace("think_time: 200ms", "think_time: 20ms");
    let file = write(dir.path(), "shared-state.yaml", &text);
    let out = run(&["validate", &file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res = run(&["run", &file]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let users = get_json(&format!("http://{}/users", mock.addr)).expect("the mock's /users");
    let mut nos = BTreeSet::new();
    // The mock's own seeded users have no order number.
    for u in users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u.get("order_no").is_some())
    {
        // A value that is one whole template may be sent as a JSON number.
        let no = match &u["order_no"] {
            serde_json::Value::String(s) => s.parse::<u64>().unwrap(),
            v => v.as_u64().unwrap_or_else(|| panic!("an order number: {u}")),
        };
        assert_eq!(
            u["reference"],
            format!("ORD-{no}"),
            "one increment per request"
        );
        assert!(nos.insert(no), "order number {no} claimed twice");
    }
    let keys = redis.cli(&["--scan", "--pattern", "perfornium:local-*:order_no"]);
    let counter: u64 = redis.cli(&["GET", keys.trim()]).parse().unwrap();
    assert!(counter >= 10, "the VUs claimed numbers: {counter}");
    assert_eq!(nos, (1..=counter).collect::<BTreeSet<u64>>());
}
