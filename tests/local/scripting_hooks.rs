//! Hooks of `type: steps` against the mock: each hook point that accepts them (`beforeScenario`,
//! `beforeLoop`, `afterLoop`, `teardownScenario`, `beforeStep`, `onStepError`, `teardownStep`)
//! sends its requests, in order, on the VU's connection; what a hook step extracts or sets is the
//! VU's; the hooks' requests are in the mock's counts but make no samples (as in the TypeScript
//! tool, whose hook steps never reach its results). A failing hook step with
//! `continueOnError: false` stops its hook, which is then logged (the hook's own default) or ends
//! the iteration (`continueOnError: false` on the hook), with the hook and the step named.

use crate::support::*;
use serde_json::Value;

fn recorded_paths(mock: &Proc) -> Vec<String> {
    get_json(&format!("http://{}/__recorded", mock.addr))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("/__recorded; the mock's stderr:\n{}", mock.stderr_tail()))
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect()
}

fn run_out(dir: &std::path::Path, test: &str) -> (std::process::Output, Value) {
    let out = dir.join("out");
    let res = run(&["run", test, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    (res, s)
}

#[test]
fn steps_hooks_send_their_requests_at_every_hook_point_without_samples() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .scenario("loop: 2")
        .scenario("hooks:")
        .scenario("  beforeScenario:")
        .scenario("    type: steps")
        .scenario("    steps:")
        .scenario("      - { name: mk, type: custom, script: \"context.variables.tok = 'T' + context.iteration\" }")
        .scenario("      - { name: login, path: \"/record/login?t={{tok}}\", extract: [{ name: m, type: custom, script: \"result.data.method\" }] }")
        .scenario("  beforeLoop: { type: steps, steps: [{ name: bl, path: \"/record/bl?m={{m}}\" }] }")
        .scenario("  afterLoop: { type: steps, steps: [{ name: al, path: /record/al }] }")
        .scenario("  teardownScenario: { type: steps, steps: [{ name: out, type: wait, duration: 10ms }, { name: out2, path: \"/record/out?t={{tok}}\" }] }")
        .steps(
            r#"      - name: main
        path: "/record/main?t={{tok}}"
        hooks:
          beforeStep: { type: steps, steps: [{ name: bs, path: /record/bs }] }
          teardownStep: { type: steps, steps: [{ name: ts, path: /record/ts }] }
      - name: fails
        path: /status/500
        hooks:
          onStepError: { type: steps, steps: [{ name: err, path: /record/err, condition: "context.last_response.status === 500" }] }
      - name: passes
        path: /users
        hooks:
          onStepError: { type: steps, steps: [{ name: never, path: /record/never }] }
"#,
        )
        .write(dir.path());
    let (_, s) = run_out(dir.path(), &test);
    let mut round = vec![
        "/record/bl?m=GET",
        "/record/bs",
        "/record/main?t=T0",
        "/record/ts",
    ];
    round.extend(["/record/err", "/record/al"]);
    let mut want = Vec::new();
    for i in 0..2 {
        want.push(format!("/record/login?t=T{i}"));
        for _ in 0..2 {
            want.extend(round.iter().map(|p| p.replace("T0", &format!("T{i}"))));
        }
        want.push(format!("/record/out?t=T{i}"));
    }
    assert_eq!(recorded_paths(&mock), want);
    let stats = mock_stats(&mock);
    // 2 iterations × (login + out + 2 rounds × (6 recorded + /status/500 + /users)).
    assert_eq!(stats["total"], 2 * (2 + 2 * 8), "{stats}");
    // Only the scenario's own steps make samples: 2 iterations × 2 rounds × 3 steps.
    assert_eq!(s["overall"]["count"], 12, "{s}");
    let names: Vec<&str> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main", "fails", "passes"]);
}

#[test]
fn a_failing_hook_step_stops_its_hook_which_is_logged_or_ends_the_iteration() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .scenario("hooks:")
        .scenario("  beforeScenario:")
        .scenario("    type: steps")
        .scenario("    steps:")
        .scenario("      - { name: soft, path: /status/404 }")
        .scenario("      - { name: bad, path: /status/500, continueOnError: false }")
        .scenario("      - { name: skipped, path: /record/never1 }")
        .steps(
            r#"      - name: gated
        path: /record/gated
        hooks:
          beforeStep:
            type: steps
            continueOnError: false
            steps:
              - { name: gate, path: /status/503, continueOnError: false }
              - { name: skipped2, path: /record/never2 }
      - { name: after, path: /record/after }
      - name: last
        path: /users
        hooks:
          teardownStep: { type: steps, continueOnError: false, steps: [{ name: stop, type: custom, continueOnError: false, script: "throw new Error('stop here')" }] }
      - { name: unreached, path: /record/never3 }
"#,
        )
        .write(dir.path());
    let (res, s) = run_out(dir.path(), &test);
    // beforeScenario failed but goes on (its default); the gate's hook failed without
    // continueOnError, so `gated` is skipped; the teardownStep's throw ends the iteration.
    assert_eq!(
        recorded_paths(&mock),
        vec!["/record/after".to_string(), "/record/after".to_string()]
    );
    let stats = mock_stats(&mock);
    assert_eq!(stats["total"], 2 * 5, "{stats}");
    assert_eq!(stats["by_status"]["500"], 2, "{stats}");
    assert_eq!(stats["by_status"]["503"], 2, "{stats}");
    assert_eq!(s["overall"]["count"], 4, "{s}");
    let err = String::from_utf8_lossy(&res.stderr);
    for needle in [
        "scenarios[0].hooks.beforeScenario step `bad`",
        "scenarios[0].steps[0].hooks.beforeStep step `gate`",
        "scenarios[0].steps[2].hooks.teardownStep step `stop`",
        "stop here",
    ] {
        assert!(err.contains(needle), "{needle} in:\n{err}");
    }
}

#[test]
fn steps_hooks_are_validated_by_name() {
    let base = Yaml::at("http://127.0.0.1:9");
    let dir = tempfile::tempdir().unwrap();
    for (hook, why) in [
        ("{ type: steps, steps: [] }", "at least one step"),
        (
            "{ type: steps, steps: [{ name: r, path: /, retry: { max_attempts: 2 } }] }",
            "`retry` is not supported in a hook's step",
        ),
        (
            "{ type: steps, steps: [{ name: r, type: rendezvous, rendezvous: p, count: 2 }] }",
            "cannot run in a hook",
        ),
        (
            "{ type: steps, content: \"x\", steps: [{ name: r, path: / }] }",
            "no `content`",
        ),
    ] {
        let file = base
            .clone()
            .scenario("hooks:")
            .scenario(&format!("  beforeScenario: {hook}"))
            .write(dir.path());
        let res = run(&["validate", &file]);
        assert_eq!(res.status.code(), Some(1), "{hook}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(why), "{hook}: {why} in:\n{err}");
    }
}

#[test]
fn in_a_distributed_run_steps_hooks_and_custom_thresholds_run_on_the_workers() {
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    // The hook's script step's file is read by the controller and travels with the test.
    write(
        dir.path(),
        "tok.js",
        "exports.tok = function (p) { return 'w' + p.__vu_id; };\n",
    );
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, iterations: 3")
        .scenario("hooks:")
        .scenario("  beforeScenario: { type: steps, steps: [{ name: t, type: script, file: tok.js, function: tok, returns: tok }, { name: login, path: \"/record/login?t={{tok}}\" }] }")
        .steps(
            r#"      - name: main
        path: /users/1
        thresholds:
          - { metric: custom, action: fail_test, custom_script: "return { pass: context.iteration < 2, message: 'late ' + context.iteration };" }
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
    assert_eq!(
        res.status.code(),
        Some(1),
        "fail_test on a worker fails the run: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["overall"]["count"], 6, "{s}");
    let mut logins = recorded_paths(&mock);
    logins.sort();
    // Each worker's one VU is its VU 0.
    assert_eq!(logins, vec!["/record/login?t=w0".to_string(); 6]);
    assert_eq!(mock_stats(&mock)["total"], 12);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("late 2"), "{junit}");
}
