//! The test's own hooks (top-level `hooks:` — `beforeTest`, `onTestError`, `teardownTest`, and
//! the documentation's `afterTest` for `teardownTest`) against the mock, whose `/__recorded`
//! list and `/__stats` count are the reference: each hook runs once per run, outside any VU;
//! what `beforeTest` leaves in `context.variables` starts every VU's variables; a hook's requests
//! are seen by the mock but make no samples; a failing `beforeTest` stops the run before any load
//! (also past its `timeout`); `onTestError` runs when the run failed while it ran and not
//! otherwise; `teardownTest` runs after a Ctrl-C stop; a TypeScript controller's test with them
//! is refused (distributed runs: `tests/cluster/test_hooks_distributed.rs`).

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

fn recorded_paths(mock: &Proc) -> Vec<String> {
    get_json(&format!("http://{}/__recorded", mock.addr))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("/__recorded; the mock's stderr:\n{}", mock.stderr_tail()))
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect()
}

fn total(mock: &Proc) -> u64 {
    mock_stats(mock)["total"].as_u64().unwrap()
}

#[test]
fn before_and_teardown_test_run_once_around_the_vus_and_before_test_variables_reach_every_vu() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    // `tok` is set by a script step of the hook (from its context's vu_id, 0), `m` is extracted
    // from the hook's request; every VU's request carries both, and its JavaScript `condition`
    // sees them too. `afterTest` is the documentation's name of `teardownTest`. Each of the two
    // hooks waits 1.5 s, which the run's duration must not include.
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 3, iterations: 2")
        .steps(
            r#"      - name: main
        path: "/record/main?t={{tok}}&m={{m}}"
        condition: "context.variables.tok === 'T1' && context.variables.m === 'GET'"
"#,
        )
        .extra(
            r#"hooks:
  beforeTest:
    type: steps
    steps:
      - { name: settle, type: wait, duration: 1500ms }
      - { name: mk, type: custom, script: "context.variables.tok = 'T' + (context.vu_id + 1)" }
      - { name: login, path: /record/before, extract: [{ name: m, type: custom, script: "result.data.method" }] }
  onTestError: { type: steps, steps: [{ name: e, path: /record/onerror }] }
  afterTest: { type: steps, steps: [{ name: drain, type: wait, duration: 1500ms }, { name: td, path: "/record/teardown?t={{tok}}" }] }
"#,
        )
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &test, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let mut want = vec!["/record/before".to_string()];
    want.extend(std::iter::repeat_n(
        "/record/main?t=T1&m=GET".to_string(),
        6,
    ));
    want.push("/record/teardown?t=T1".into());
    assert_eq!(recorded_paths(&mock), want, "onTestError did not run");
    assert_eq!(total(&mock), 8);
    // Only the VUs' requests are samples: 3 VUs × 2 iterations.
    let s = summary(&out);
    assert_eq!(s["overall"]["count"], 6, "{s}");
    let took = s["duration_s"].as_f64().unwrap();
    assert!(
        took < 1.5,
        "the run's clock ran during a test hook: {took} s"
    );
}

#[test]
fn a_before_test_that_throws_stops_the_run_before_any_load_then_on_test_error_and_teardown_run() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "setup.js",
        "module.exports = async function (context) {\n  context.variables.a = 1;\n  throw new Error('no token');\n};\n",
    );
    let test = yaml(&mock)
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
    let res = run(&["run", &test]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{err}");
    assert!(
        err.contains("hooks.beforeTest failed: setup.js:3: Error: no token")
            && err.contains("stopped before any load"),
        "{err}"
    );
    assert_eq!(
        recorded_paths(&mock),
        ["/record/onerror", "/record/teardown"]
    );
    assert_eq!(total(&mock), 2, "no load request reached the mock");
}

#[test]
fn a_before_test_past_its_timeout_stops_the_run_with_the_time_out() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, iterations: 2")
        .extra("hooks:\n  beforeTest: { content: \"while (true) {}\", timeout: 300, continueOnError: false }\n")
        .write(dir.path());
    let started = std::time::Instant::now();
    let res = run(&["run", &test]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{err}");
    assert!(
        err.contains("hooks.beforeTest failed: hooks.beforeTest: timed out after 300 ms"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(total(&mock), 0);
}

#[test]
fn a_failing_before_test_with_continue_on_error_is_logged_and_the_load_runs() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    // The documentation's plain-string form: `continueOnError` defaults to true.
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .step("{ name: main, path: /record/load }")
        .extra(
            "hooks:\n  beforeTest: \"throw new Error('soft')\"\n  onTestError: { type: steps, steps: [{ name: e, path: /record/onerror }] }\n",
        )
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &test, "-o", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(
        err.contains("beforeTest failed") && err.contains("soft"),
        "{err}"
    );
    assert_eq!(recorded_paths(&mock), ["/record/load", "/record/load"]);
    assert_eq!(summary(&out)["overall"]["count"], 2);
}

#[test]
fn on_test_error_runs_when_a_step_threshold_aborts_the_run_then_teardown_test() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    // onTestError is inline code: it reads `context.error` and leaves `why` in the test hooks'
    // context, which teardownTest's request then carries.
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, duration: 30s")
        .steps("      - name: judged\n        path: /record/load\n        thresholds:\n          - { metric: response_time, value: 0, operator: lt, action: abort }\n")
        .extra(
            r#"hooks:
  onTestError: "context.variables.why = context.error.includes('judged') ? 'abort' : 'other'"
  teardownTest: { type: steps, steps: [{ name: td, path: "/record/teardown?why={{why}}" }] }
"#,
        )
        .write(dir.path());
    let started = std::time::Instant::now();
    let out = dir.path().join("out");
    let res = run(&["run", &test, "-o", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the abort ended the run"
    );
    let paths = recorded_paths(&mock);
    assert_eq!(
        paths.last().map(String::as_str),
        Some("/record/teardown?why=abort"),
        "{paths:?}"
    );
    let load = paths.iter().filter(|p| *p == "/record/load").count() as u64;
    assert_eq!(load + 1, paths.len() as u64, "{paths:?}");
    assert_eq!(summary(&out)["overall"]["count"], load);
}

#[test]
fn teardown_test_runs_once_after_a_ctrl_c_stop() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, duration: 30s")
        .steps("      - name: main\n        path: /record/load\n        think_time: 20ms\n")
        .extra("hooks:\n  teardownTest:\n    type: steps\n    steps:\n      - { name: pause, type: wait, duration: 10ms }\n      - { name: td, path: /record/teardown }\n")
        .write(dir.path());
    let out = dir.path().join("out");
    let child = start(&["run", &test, "-o", out.to_str().unwrap()]);
    assert!(
        wait_for(20, || total(&mock) >= 4),
        "no load; the run's stderr:\n{}",
        child.stderr_tail()
    );
    signal("-INT", child.pid());
    let res = child.wait_with_deadline(Duration::from_secs(20));
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let paths = recorded_paths(&mock);
    let (last, load) = paths.split_last().unwrap();
    assert_eq!(last, "/record/teardown", "{paths:?}");
    assert!(load.iter().all(|p| p == "/record/load"), "{paths:?}");
    let s: Value = summary(&out);
    assert_eq!(s["overall"]["count"], load.len() as u64);
}

#[test]
fn a_typescript_controllers_test_with_test_hooks_is_refused_by_name_before_any_load() {
    let mock = mock(0);
    let w = worker(None);
    // A TS controller's `/prepare` (the test itself, no `run_id`): its hooks would run on every
    // worker it prepares, not once for the run, so the worker refuses them by name.
    let body = format!(
        r#"{{"name": "t", "global": {{"base_url": "http://{}"}}, "load": {{"pattern": "basic", "virtual_users": 1, "iterations": 1}}, "scenarios": [{{"name": "s", "steps": [{{"name": "a", "path": "/record/load"}}]}}], "hooks": {{"beforeTest": "context.variables.a = 1"}}}}"#,
        mock.addr
    );
    let (code, text) = call(
        "POST",
        &format!("http://{}/prepare", w.addr),
        None,
        Some(&body),
    )
    .expect("the worker answers");
    assert!(
        code == 400 && text.contains("not supported with a TypeScript controller"),
        "{code} {text}"
    );
    assert_eq!(total(&mock), 0);
}

#[test]
fn validate_explains_test_hooks_and_reports_a_syntax_error_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = Yaml::at("http://127.0.0.1:9")
        .extra("hooks:\n  beforeTest: { type: file, file: setup.js }\n  teardownTest: \"context.variables.done = 1\"\n");
    write(
        dir.path(),
        "setup.js",
        "module.exports = function (context) {\n  context.variables.a = 1;\n};\n",
    );
    let test = base.write(dir.path());
    let res = run(&["validate", "--explain", &test]);
    let out = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        out.contains("test hooks (once per run;")
            && out.contains("in a distributed run beforeTest runs on the plan's first worker")
            && out.contains("beforeTest (file setup.js")
            && out.contains("teardownTest (inline"),
        "{out}"
    );
    write(
        dir.path(),
        "setup.js",
        "module.exports = function (context) {\n  let x = ;\n};\n",
    );
    let res = run(&["validate", &test]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(err.contains("setup.js:2"), "{err}");
}

#[test]
fn a_teardown_test_that_throws_without_continue_on_error_fails_the_finished_run() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .step("{ name: main, path: /record/load }")
        .extra("hooks:\n  teardownTest: { content: \"throw new Error('cleanup broke')\", continueOnError: false }\n")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &test, "-o", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    let s = summary(&out);
    assert_eq!(s["overall"]["count"], 1);
    assert_eq!(total(&mock), 1);
    assert!(s.to_string().contains("cleanup broke"), "{s}");
}
