//! JavaScript in tests, end to end against the mock: `custom` and `script` steps, step
//! `condition`s, scenario hooks (`beforeScenario` from a file, `teardownScenario` in the string
//! form), legacy `setup`, step hooks (`beforeStep`, `onStepError`, `teardownStep`), `custom`
//! checks and extractors. What the scripts compute is checked in what the mock received (its
//! `/__recorded` paths) and its `/__stats` counts; a throwing or overlong script is its step's
//! error with the script's key and line; `validate` reports a syntax error with the file and line.

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

fn step<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("step `{name}` in {s}"))
}

/// Runs `test` (in `dir`) to the end; returns the summary.
fn run_ok(dir: &std::path::Path, test: &str) -> Value {
    let out = dir.join("out");
    let res = run(&["run", test, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    summary(&out)
}

#[test]
fn custom_and_script_steps_hooks_setup_and_conditions_shape_the_requests_sent() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "auth.js",
        "function sign(p) {\n  return 'sig-' + p.key + '-' + p.__vu_id + '-' + p.__iteration;\n}\nmodule.exports = { sign };\n",
    );
    write(
        dir.path(),
        "hook.js",
        "module.exports = function (context, helpers) {\n  helpers.setVariable('hooked', 'yes' + context.vu_id);\n};\n",
    );
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, iterations: 3")
        .scenario("setup: \"context.variables.runs = String(Number(context.variables.runs || 0) + 1);\"")
        .scenario("hooks:")
        .scenario("  beforeScenario: { type: file, file: hook.js }")
        .scenario("  teardownScenario: \"console.log('done', context.iteration)\"")
        .steps(
            r#"      - name: mk
        type: custom
        script: |
          globalThis.n = (globalThis.n || 0) + 1;
          context.variables.token = 'tok' + globalThis.n;
      - name: sig
        type: script
        file: auth.js
        function: sign
        params: { key: abc }
        returns: signature
      - name: rec
        path: "/record/a?t={{token}}&s={{signature}}&h={{hooked}}&r={{runs}}"
        checks:
          - { type: custom, script: "result.status === 200 && result.data.path.startsWith('/record/a')" }
          - { type: custom, script: "result.status === 201", description: never }
        extract:
          - { name: m, type: custom, script: "result.data.method.toLowerCase()" }
      - name: first
        path: "/record/first?m={{m}}"
        condition: "context.iteration === 0"
"#,
        )
        .write(dir.path());
    let s = run_ok(dir.path(), &test);
    let mut paths = recorded_paths(&mock);
    paths.sort();
    let mut want = vec!["/record/first?m=get".to_string(); 1];
    want.push("/record/first?m=get".into());
    for vu in 0..2 {
        for i in 0..3 {
            // The context persists across a VU's iterations (globalThis.n, the setup's count).
            want.push(format!(
                "/record/a?t=tok{}&s=sig-abc-{vu}-{i}&h=yes{vu}&r={}",
                i + 1,
                i + 1
            ));
        }
    }
    want.sort();
    assert_eq!(paths, want);
    assert_eq!(mock_stats(&mock)["total"], 8);
    assert_eq!(step(&s, "mk")["count"], 6);
    assert_eq!(step(&s, "mk")["errors"], 0);
    assert_eq!(step(&s, "sig")["count"], 6);
    assert_eq!(step(&s, "rec")["checks_passed"], 6);
    assert_eq!(step(&s, "rec")["check_failures"]["never"], 6);
    assert_eq!(step(&s, "first")["count"], 2);
}

#[test]
fn step_hooks_run_before_the_step_on_its_error_and_after_it() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .steps(
            r#"      - name: fails
        path: /status/500
        hooks:
          beforeStep: "context.variables.before = String(Number(context.variables.before || 0) + 1)"
          onStepError: { type: inline, content: "setVariable('err', context.last_response.status)" }
          teardownStep: "context.variables.after = context.last_response.step"
      - name: passes
        path: /users
        hooks:
          onStepError: "context.variables.err = 'wrong'"
      - name: rec
        path: "/record/h?b={{before}}&e={{err}}&a={{after}}"
"#,
        )
        .write(dir.path());
    run_ok(dir.path(), &test);
    assert_eq!(
        recorded_paths(&mock),
        vec![
            "/record/h?b=1&e=500&a=fails".to_string(),
            "/record/h?b=2&e=500&a=fails".to_string()
        ]
    );
    assert_eq!(mock_stats(&mock)["total"], 6);
}

#[test]
fn a_throwing_or_overlong_script_fails_its_step_with_its_line_and_the_run_goes_on() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .steps(
            r#"      - name: boom
        type: custom
        script: |
          const x = 1;
          throw new Error('bad thing ' + x);
      - name: spin
        type: custom
        timeout: 150ms
        script: "while (true) {}"
      - name: node
        type: custom
        script: "require('fs')"
      - name: after
        path: /users
"#,
        )
        .write(dir.path());
    let s = run_ok(dir.path(), &test);
    let boom = step(&s, "boom");
    assert_eq!(boom["errors"], 2);
    assert_eq!(
        boom["errors_by_kind"]["scenarios[0].steps[0].script:2: Error: bad thing 1"], 2,
        "{boom}"
    );
    let spin = step(&s, "spin");
    assert_eq!(spin["errors"], 2);
    assert_eq!(
        spin["errors_by_kind"]["scenarios[0].steps[1].script: timed out after 150 ms"], 2,
        "{spin}"
    );
    assert!(spin["min"].as_f64().unwrap() >= 150.0, "{spin}");
    let node = step(&s, "node");
    let kinds = node["errors_by_kind"].as_object().unwrap();
    assert!(
        kinds
            .keys()
            .any(|k| k.contains("require('fs') is not available")),
        "{node}"
    );
    // The step after the failures ran in both iterations.
    assert_eq!(mock_stats(&mock)["total"], 2);
    assert_eq!(step(&s, "after")["count"], 2);
}

#[test]
fn a_failing_hook_without_continue_on_error_ends_the_iteration_and_one_with_it_does_not() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 3")
        .steps(
            r#"      - name: one
        path: /users
        hooks:
          beforeStep: "throw new Error('logged only')"
      - name: two
        path: /users/1
        hooks:
          teardownStep: { type: inline, content: "throw new Error('stop')", continueOnError: false }
      - name: three
        path: /users/2
"#,
        )
        .write(dir.path());
    run_ok(dir.path(), &test);
    let stats = mock_stats(&mock);
    assert_eq!(stats["total"], 6, "{stats}");
    assert_eq!(stats["by_route"]["/users/{id}"], 3, "{stats}");
}

#[test]
fn validate_reports_a_script_syntax_error_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.js",
        "function sign(p) {\n  return p.key +;\n}\nmodule.exports = { sign };\n",
    );
    let base = Yaml::at("http://127.0.0.1:9");
    let file = base
        .clone()
        .steps("      - { name: s, type: script, file: bad.js, function: sign }\n")
        .write(dir.path());
    let res = run(&["validate", &file]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("bad.js:2: SyntaxError"), "{err}");

    let file = base
        .clone()
        .steps("      - { name: c, path: /, condition: \"context.iteration ===\" }\n")
        .write(dir.path());
    let res = run(&["validate", &file]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("scenarios[0].steps[0].condition:1: SyntaxError"),
        "{err}"
    );

    let file = base
        .steps("      - { name: s, type: script, file: auth.ts, function: sign }\n")
        .write(dir.path());
    let res = run(&["validate", &file]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("auth.ts")
            && err.contains("TypeScript files are not supported")
            && err.contains("bench/results/typescript.md"),
        "{err}"
    );
}

#[test]
fn loop_hooks_run_around_each_round_of_the_scenario() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .scenario("loop: 2")
        .scenario("variables: { after: none }")
        .scenario("hooks:")
        .scenario("  beforeLoop: { type: inline, content: \"context.variables.rounds = String(Number(context.variables.rounds || 0) + 1)\", timeout: 1s }")
        .scenario("  afterLoop: \"setVariable('after', 'r' + context.variables.rounds)\"")
        .steps("      - { name: rec, path: \"/record/l?r={{rounds}}&a={{after}}\" }\n")
        .write(dir.path());
    run_ok(dir.path(), &test);
    assert_eq!(
        recorded_paths(&mock),
        vec![
            "/record/l?r=1&a=none".to_string(),
            "/record/l?r=2&a=r1".to_string()
        ]
    );
}

#[test]
fn a_failing_custom_step_without_continue_on_error_ends_its_iteration() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .steps(
            r#"      - { name: first, path: /users/1 }
      - name: gate
        type: custom
        continueOnError: false
        script: "throw new Error('closed')"
      - { name: never, path: /users }
"#,
        )
        .write(dir.path());
    let s = run_ok(dir.path(), &test);
    let stats = mock_stats(&mock);
    assert_eq!(stats["total"], 2, "{stats}");
    assert_eq!(stats["by_route"]["/users/{id}"], 2, "{stats}");
    assert_eq!(step(&s, "gate")["errors"], 2);
    assert_eq!(step(&s, "never")["count"], 0);
}
