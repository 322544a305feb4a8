//! The test's own hooks (`beforeTest`, `onTestError`, `teardownTest`) in distributed runs on two
//! workers, against the mock, whose `/__stats` per-route counts and `/__recorded` list are the
//! reference: `beforeTest` runs once for the run (not once per worker), before any load, and the
//! variable it sets reaches every VU on both workers; `teardownTest` runs once, after the load;
//! `onTestError` does not run when nothing failed. A failing `beforeTest` fails the run with its
//! name and file:line, no load is sent, and `onTestError` and `teardownTest` each run once. The
//! first goes through the 3-replica master, the second through `perfornium distributed` (its
//! embedded master drives the run with the same driver).

use crate::support::*;
use serde_json::Value;

/// What `/record/...` received: (path with query, the `x-perfornium-worker` header), in order.
fn recorded(mock: &Proc) -> Vec<(String, String)> {
    get_json(&format!("http://{}/__recorded", mock.addr))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("/__recorded; the mock's stderr:\n{}", mock.stderr_tail()))
        .iter()
        .map(|r| {
            let worker = r["headers"]["x-perfornium-worker"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (r["path"].as_str().unwrap_or("").to_string(), worker)
        })
        .collect()
}

#[test]
fn before_test_runs_once_per_run_its_variable_reaches_both_workers_and_teardown_runs_once_after() {
    let c = Cluster::start();
    let mock = mock(0);
    let a = worker(None);
    let b = worker(None);
    // `beforeTest` sets `tok` in a script step and requests `/users` (a route nothing else asks
    // for); every VU's request carries `tok`; `teardownTest` sends it back once.
    let body = yaml(&mock)
        .name("dhooks")
        .load("pattern: basic, virtual_users: 2, iterations: 3")
        .step("{ name: main, path: \"/record/load?t={{tok}}\" }")
        .extra(
            r#"hooks:
  beforeTest:
    type: steps
    steps:
      - { name: mk, type: custom, script: "context.variables.tok = 'T' + (40 + 2)" }
      - { name: login, path: /users }
  onTestError: { type: steps, steps: [{ name: e, path: /record/onerror }] }
  teardownTest: { type: steps, steps: [{ name: td, path: "/record/teardown?t={{tok}}" }] }
"#,
        )
        .submit_body(&[&a, &b]);
    let leader = c.agreed_leader(20);
    let id = c.submit(leader, &body);
    let view = c.wait_phase(&[0, 1, 2], &id, "finished", 30);
    let stats = mock_stats(&mock);
    assert_eq!(
        stats["by_route"]["/users"], 1,
        "beforeTest's request, once for the run: {stats}"
    );
    let got = recorded(&mock);
    let load: Vec<&(String, String)> = got
        .iter()
        .filter(|(p, _)| p.starts_with("/record/load"))
        .collect();
    assert!(
        load.iter().all(|(p, _)| p == "/record/load?t=T42"),
        "every VU started with beforeTest's variable: {got:?}"
    );
    let mut senders: Vec<&str> = load.iter().map(|(_, w)| w.as_str()).collect();
    senders.sort();
    senders.dedup();
    let mut both = vec![a.addr.as_str(), b.addr.as_str()];
    both.sort();
    assert_eq!(senders, both, "both workers sent load: {got:?}");
    assert_eq!(
        Some(load.len() as u64),
        view["summary"]["overall"]["count"].as_u64(),
        "the run counted what the mock received: {view}"
    );
    let last = got.last().map(|(p, _)| p.as_str());
    assert_eq!(
        last,
        Some("/record/teardown?t=T42"),
        "teardownTest last: {got:?}"
    );
    assert_eq!(
        got.iter()
            .filter(|(p, _)| p.starts_with("/record/teardown"))
            .count(),
        1,
        "teardownTest once: {got:?}"
    );
    assert!(
        !got.iter().any(|(p, _)| p == "/record/onerror"),
        "onTestError ran though nothing failed: {got:?}"
    );
    assert_eq!(
        stats["total"].as_u64(),
        Some(load.len() as u64 + 2),
        "{stats}"
    );
    let events = view["summary"]["events"].to_string();
    assert!(events.contains("beforeTest ran once"), "{events}");
}

#[test]
fn a_failing_before_test_fails_the_distributed_run_before_any_load_and_on_test_error_runs_once() {
    let mock = mock(0);
    let a = worker(None);
    let b = worker(None);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "setup.js",
        "module.exports = async function (context) {\n  context.variables.a = 1;\n  throw new Error('no token');\n};\n",
    );
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, iterations: 2")
        .step("{ name: main, path: /record/load }")
        .extra(
            r#"hooks:
  beforeTest: { type: file, file: setup.js, continueOnError: false }
  onTestError:
    type: steps
    steps:
      - { name: e, path: /record/onerror, condition: "context.error.includes('setup.js:3') && context.error.includes('no token')" }
  teardownTest: { type: steps, steps: [{ name: td, path: /record/teardown }] }
"#,
        )
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    let s: Value = summary(&out);
    let said = format!("{} {}", s["events"], s["thresholds"]);
    assert!(
        said.contains("hooks.beforeTest failed: setup.js:3: Error: no token"),
        "{said}"
    );
    let paths: Vec<String> = recorded(&mock).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["/record/onerror", "/record/teardown"]);
    assert_eq!(
        mock_stats(&mock)["total"],
        2,
        "no load request reached the mock"
    );
}

#[test]
fn on_test_error_and_teardown_test_run_once_when_a_step_threshold_aborts_the_workers() {
    let mock = mock(0);
    let a = worker(None);
    let b = worker(None);
    let dir = tempfile::tempdir().unwrap();
    // Every request breaks its threshold, so each worker aborts: two failures, one onTestError.
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, duration: 30s")
        .steps("      - name: judged\n        path: /record/load\n        thresholds:\n          - { metric: response_time, value: 0, operator: lt, action: abort }\n")
        .extra(
            r#"hooks:
  onTestError:
    type: steps
    steps:
      - { name: why, type: custom, script: "context.variables.why = context.error.includes('judged') ? 'abort' : 'other'" }
      - { name: e, path: /record/onerror }
  teardownTest: { type: steps, steps: [{ name: td, path: "/record/teardown?why={{why}}" }] }
"#,
        )
        .write(dir.path());
    let started = std::time::Instant::now();
    let out = dir.path().join("out");
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the abort ended the run"
    );
    let paths: Vec<String> = recorded(&mock).into_iter().map(|(p, _)| p).collect();
    let (last, rest) = paths.split_last().expect("requests");
    assert_eq!(last, "/record/teardown?why=abort", "{paths:?}");
    let (on_error, load) = rest.split_last().expect("requests");
    assert_eq!(
        on_error, "/record/onerror",
        "onTestError once, before teardownTest: {paths:?}"
    );
    assert!(load.iter().all(|p| p == "/record/load"), "{paths:?}");
    assert_eq!(summary(&out)["overall"]["count"], load.len() as u64);
}

#[test]
fn a_repeated_test_hook_call_answers_from_what_the_worker_kept_without_running_the_hook_again() {
    let mock = mock(0);
    let w = worker(None);
    // What a new leader sends when the old one died after the call and before saving its answer.
    let body = format!(
        r#"{{"run_id": "r1", "hook": "before", "test": {{"name": "t", "global": {{"base_url": "http://{}"}}, "load": {{"pattern": "basic", "virtual_users": 1, "iterations": 1}}, "scenarios": [{{"name": "s", "steps": [{{"name": "a", "path": "/record/load"}}]}}], "hooks": {{"beforeTest": {{"type": "steps", "steps": [{{"name": "mk", "type": "custom", "script": "context.variables.tok = 'T7'"}}, {{"name": "b", "path": "/record/before"}}]}}}}}}}}"#,
        mock.addr
    );
    let url = format!("http://{}/test-hook", w.addr);
    let answers: Vec<String> = (0..2)
        .map(|_| {
            let (code, text) = call("POST", &url, None, Some(&body)).expect("the worker answers");
            assert_eq!(code, 200, "{text}");
            text
        })
        .collect();
    assert_eq!(answers[0], answers[1]);
    let v: Value = serde_json::from_str(&answers[0]).unwrap();
    assert_eq!(v["variables"]["tok"], "T7", "{v}");
    assert!(v["error"].is_null(), "{v}");
    let paths: Vec<String> = recorded(&mock).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["/record/before"], "the hook ran once, and no load");
}

#[test]
fn a_worker_without_test_hooks_fails_the_run_with_that_said_before_any_load() {
    // The mock stands for a worker that predates test hooks in distributed runs: it answers
    // `/health` and 404 to `POST /test-hook`.
    let old = mock(0);
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 1")
        .step("{ name: main, path: /record/load }")
        .extra("hooks:\n  beforeTest: \"context.variables.a = 1\"\n")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &old.addr,
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    let events = summary(&out)["events"].to_string();
    assert!(
        events.contains("does not run a test's own hooks") && events.contains("404"),
        "{events}"
    );
    assert_eq!(mock_stats(&mock)["total"], 0, "no load");
}

#[test]
fn a_leader_killed_while_before_test_runs_leaves_the_new_leader_to_reuse_its_answer_not_run_it_again(
) {
    let mut c = Cluster::start();
    let mock = mock(0);
    let a = worker(None);
    let b = worker(None);
    // The hook's request reaches the mock, then it waits: the leader is killed meanwhile, before
    // it could save what the hook left.
    let body = yaml(&mock)
        .name("dhooks-failover")
        .load("pattern: basic, virtual_users: 2, iterations: 2")
        .step("{ name: main, path: \"/record/load?t={{tok}}\" }")
        .extra(
            r#"hooks:
  beforeTest:
    type: steps
    steps:
      - { name: mk, type: custom, script: "context.variables.tok = 'F1'" }
      - { name: login, path: /users }
      - { name: settle, type: wait, duration: 1500ms }
"#,
        )
        .submit_body(&[&a, &b]);
    let old = c.agreed_leader(20);
    let id = c.submit(old, &body);
    assert!(
        wait_for(20, || mock_stats(&mock)["by_route"]["/users"] == 1),
        "beforeTest did not start.\n{}",
        c.stderr_tails()
    );
    c.kill(old);
    let live: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let view = c.wait_phase(&live, &id, "finished", 40);
    let stats = mock_stats(&mock);
    assert_eq!(
        stats["by_route"]["/users"], 1,
        "beforeTest ran again: {stats}"
    );
    // The new leader asked again (the record held no answer), and the worker answered from what
    // it kept.
    assert!(
        [&a, &b]
            .iter()
            .any(|w| w.stderr_line_at("test hooks already ran here").is_some()),
        "{}\n{}",
        a.stderr_tail(),
        b.stderr_tail()
    );
    let load: Vec<(String, String)> = recorded(&mock);
    assert!(
        !load.is_empty() && load.iter().all(|(p, _)| p == "/record/load?t=F1"),
        "every VU started with the variable the first run of the hook left: {load:?}"
    );
    assert_eq!(
        Some(load.len() as u64),
        view["summary"]["overall"]["count"].as_u64(),
        "{view}"
    );
}

#[test]
fn a_teardown_test_that_throws_fails_the_distributed_runs_verdict_after_its_load() {
    let mock = mock(0);
    let a = worker(None);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .step("{ name: main, path: /record/load }")
        .extra("hooks:\n  teardownTest: { content: \"throw new Error('td broke')\", continueOnError: false }\n")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &a.addr,
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&res.stderr);
    // As in a local run: the verdict fails (exit code 1), the load was made and counted.
    assert_eq!(res.status.code(), Some(1), "{err}");
    let s: Value = summary(&out);
    assert_eq!(s["passed"], false, "{s}");
    assert!(
        s["thresholds"]
            .to_string()
            .contains("hooks.teardownTest failed")
            && s["thresholds"].to_string().contains("td broke"),
        "{s}"
    );
    assert_eq!(s["overall"]["count"], 2);
    assert_eq!(mock_stats(&mock)["total"], 2);
}
