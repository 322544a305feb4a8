//! Step thresholds of `metric: custom` with a `custom_script`, checked against each result as the
//! TypeScript tool checks its step thresholds: the script sees `result` (`status`, `duration`,
//! `response_body`, ...) and `context`; a true value holds, a number is compared with `value`, and
//! `{pass, message}` gives the breach its message. Each action acts as for the other metrics:
//! `fail_step` makes the result an error, `fail_test` fails the run (exit code 1, a JUnit failure
//! with the script's message). Counts against the mock's.

use crate::support::*;

#[test]
fn custom_script_thresholds_judge_each_result_with_the_scripts_verdict() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 3")
        .steps(
            r#"      - name: judged
        path: /users/1
        thresholds:
          - metric: custom
            action: fail_step
            custom_script: "return result.status === 200 && result.response_body.length > 0 && result.duration >= 0;"
          - metric: custom
            action: fail_step
            description: first two only
            custom_script: "return context.iteration < 2;"
          - metric: custom
            value: 5
            operator: lt
            action: fail_step
            custom_script: "return context.iteration * 3;"
      - name: verdict
        path: /users
        thresholds:
          - metric: custom
            action: fail_test
            custom_script: |
              const ok = result.status === 201;
              return { pass: ok, message: 'wanted 201, got ' + result.status };
      - { name: clean, path: /users/2, thresholds: [{ metric: custom, action: fail_step, custom_script: "return true" }] }
"#,
        )
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &test, "-o", out.to_str().unwrap()]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "fail_test fails the run: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_eq!(mock_stats(&mock)["total"], 9);
    let step = |n: &str| {
        s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} in {s}"))
    };
    // Iteration 2 breaks `first two only` and gives 6 (not < 5): one result, an error.
    assert_eq!(step("judged")["count"], 3, "{s}");
    assert_eq!(step("judged")["errors"], 1, "{s}");
    assert_eq!(step("verdict")["errors"], 3, "{s}");
    assert_eq!(step("clean")["errors"], 0, "{s}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<failure") && junit.contains("wanted 201, got 200"),
        "{junit}"
    );
}

#[test]
fn custom_thresholds_are_validated_and_a_syntax_error_names_its_line() {
    let base = Yaml::at("http://127.0.0.1:9");
    let dir = tempfile::tempdir().unwrap();
    for (t, why) in [
        ("{ metric: custom, value: 1 }", "needs `custom_script`"),
        (
            "{ metric: response_time, value: 1, custom_script: \"return 1\" }",
            "`custom_script` belongs to `metric: custom`",
        ),
        (
            "{ metric: custom, description: bad, custom_script: \"return (1 +;\" }",
            "thresholds `bad`.custom_script:1: SyntaxError",
        ),
    ] {
        let file = base
            .clone()
            .steps(&format!(
                "      - name: s\n        path: /\n        thresholds:\n          - {t}\n"
            ))
            .write(dir.path());
        let res = run(&["validate", &file]);
        assert_eq!(res.status.code(), Some(1), "{t}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(why), "{t}: {why} in:\n{err}");
    }
}
