//! End-to-end tests of `perfornium run` and `validate`: the real binary against `perfornium mock`
//! on a port from the OS, with the mock's own counts as the reference.

use crate::support::*;

#[test]
fn request_count_matches_the_servers_count() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 4, iterations: 25")
        .step("{ name: list, path: /users }")
        .step("{ name: one, path: /users/2 }")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["overall"]["count"], 200);
    assert_eq!(s["overall"]["errors"], 0);
    assert_eq!(
        mock_stats(&mock)["total"],
        200,
        "every request the engine counted reached the server"
    );
    assert_eq!(s["steps"][0]["count"], 100);
    assert_eq!(s["steps"][1]["status_codes"]["200"], 100);
    assert!(s["overall"]["p99"].as_f64().unwrap() > 0.0);
    assert!(out.join("timeline.ndjson").exists());
}

#[test]
fn a_duration_run_also_matches_the_server_and_stops_on_time() {
    let mock = mock(1);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 8, ramp_up: 1s, duration: 2s")
        .write(dir.path());
    let out = dir.path().join("out");
    let started = std::time::Instant::now();
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(res.status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let s = summary(&out);
    let count = s["overall"]["count"].as_u64().unwrap();
    assert!(
        count > 50,
        "8 VUs for 2s against a 1ms target made only {count} requests"
    );
    assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap(), count);
}

#[test]
fn failed_checks_and_5xx_are_counted_and_fail_thresholds() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: broken\n        path: /status/503\n        checks:\n          - { type: status, value: 200 }\n          - { type: text_contains, value: '503' }\n";
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, iterations: 10")
        .steps(steps)
        .thresholds(&["error_rate < 1%"])
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "a failed threshold gives exit code 1"
    );
    let s = summary(&out);
    let step = &s["steps"][0];
    assert_eq!(step["count"], 20);
    assert_eq!(step["errors"], 20);
    assert_eq!(step["status_codes"]["503"], 20);
    assert_eq!(step["checks_failed"], 20);
    assert_eq!(step["checks_passed"], 20);
    assert_eq!(step["errors_by_kind"]["status 503"], 20);
    assert_eq!(s["thresholds"][0]["passed"], false);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        stdout.contains("FAILED") && stdout.contains("✗ error_rate < 1%"),
        "{stdout}"
    );
}

#[test]
fn a_4xx_that_the_steps_status_check_names_is_not_an_error_and_one_it_does_not_name_is() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: expected\n        path: /status/404\n        checks:\n          - { type: status, value: \"404|410\" }\n      - name: unexpected\n        path: /status/404\n        checks:\n          - { type: status, value: 200 }\n      - name: unchecked\n        path: /status/404\n";
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 3")
        .steps(steps)
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        out.join("summary.json").exists(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    let by_name = |n: &str| {
        s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["name"] == n)
            .unwrap_or_else(|| panic!("step {n} in {s}"))
            .clone()
    };
    let expected = by_name("expected");
    assert_eq!(
        (expected["count"].as_u64(), expected["errors"].as_u64()),
        (Some(3), Some(0)),
        "{expected}"
    );
    assert_eq!(expected["checks_passed"], 3);
    for n in ["unexpected", "unchecked"] {
        let st = by_name(n);
        assert_eq!(st["errors_by_kind"]["status 404"], 3, "{st}");
    }
    assert_eq!(mock_stats(&mock)["total"], 9);
}

#[test]
fn a_ramp_longer_than_the_duration_ends_the_run_at_the_duration() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: a\n        path: /users\n        think_time: 0.1\n";
    // VU i of 4 is due at 5 s * i: only the first is due within the 500 ms.
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 4, ramp_up: 20s, duration: 30s")
        .steps(steps)
        .write(dir.path());
    let out = dir.path().join("out");
    let t0 = std::time::Instant::now();
    let res = run(&[
        "run",
        &file,
        "--duration",
        "500ms",
        "-o",
        out.to_str().unwrap(),
    ]);
    let took = t0.elapsed();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    // Waiting for the later VUs' starts kept it open until 15 s.
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let s = summary(&out);
    assert!(s["overall"]["count"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(mock_stats(&mock)["total"], s["overall"]["count"]);
}

#[test]
fn an_extracted_value_is_sent_by_the_next_step() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: list\n        path: /users\n        extract:\n          - { name: mail, type: json_path, expression: '$.users[2].email' }\n      - name: use\n        path: /users/1\n        headers:\n          x-trace: \"{{mail}}\"\n";
    let file = yaml(&mock).steps(steps).write(dir.path());
    let res = run(&["run", &file]);
    assert!(res.status.success());
    assert_eq!(mock_stats(&mock)["last_x_trace"], "user3@example.com");
}

#[test]
fn arrivals_that_find_every_vu_busy_are_counted_as_dropped() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: slow\n        path: /delay/300\n";
    let file = yaml(&mock)
        .load("pattern: arrivals, rate: 40, duration: 2s, max_virtual_users: 4")
        .steps(steps)
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    let (count, dropped) = (
        s["overall"]["count"].as_u64().unwrap(),
        s["dropped_iterations"].as_u64().unwrap(),
    );
    assert_eq!(
        count + dropped,
        80,
        "every arrival is either run or counted as dropped"
    );
    assert!(
        dropped > 40,
        "4 slots of 300ms cannot absorb 40/s, yet only {dropped} dropped"
    );
    assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap(), count);
}

#[test]
fn csv_rows_feed_the_requests() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "people.csv", "name,email\nA,a@x.io\nB,b@x.io\n");
    let steps = "      - name: create\n        method: POST\n        path: /users\n        json: { email: \"{{email}}\" }\n        checks:\n          - { type: status, value: 201 }\n          - { type: text_contains, value: \"{{email}}\" }\n";
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, iterations: 3")
        .csv("people.csv")
        .steps(steps)
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["overall"]["count"], 6);
    assert_eq!(
        s["overall"]["checks_failed"], 0,
        "the body echoed the CSV email back"
    );
}

#[test]
fn a_broken_test_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name: t\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: ten\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - path: /\n";
    let file = write(dir.path(), "broken.yaml", text);
    let res = run(&["validate", &file]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("broken.yaml:6:"), "{err}");
    assert!(err.contains("virtual_users"), "{err}");
    let res = run(&["run", &file]);
    assert_eq!(res.status.code(), Some(2), "run refuses it too");

    let typo = text
        .replace("ten", "1")
        .replace("      - path: /\n", "      - path: /\n        metod: GET\n");
    let file = write(dir.path(), "typo.yaml", &typo);
    let err = String::from_utf8_lossy(&run(&["validate", &file]).stderr).to_string();
    assert!(
        err.contains("typo.yaml:12:") && err.contains("unknown field `metod`"),
        "{err}"
    );
}

#[test]
fn the_examples_validate() {
    let root = env!("CARGO_MANIFEST_DIR");
    for name in ["basic", "stepping", "arrivals", "data-driven"] {
        let res = run(&["validate", &format!("{root}/examples/{name}.yaml")]);
        assert!(
            res.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
    }
    let res = run(&[
        "validate",
        &format!("{root}/examples/basic.yaml"),
        "--env",
        "ci",
    ]);
    assert!(res.status.success());
}

#[test]
fn the_data_driven_example_runs_against_the_mock() {
    let mock = mock(0);
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let base = format!("http://{}", mock.addr);
    let res = run(&[
        "run",
        &format!("{root}/examples/data-driven.yaml"),
        "--base-url",
        &base,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_eq!(
        s["overall"]["count"], 20,
        "4 VUs x 5 iterations x 1 request"
    );
    assert_eq!(
        s["steps"][0]["count"], 15,
        "weights 75/25 give 3 of 4 VUs to the CSV scenario"
    );
    assert_eq!(s["overall"]["checks_failed"], 0);
}

#[test]
fn the_typescript_tools_run_flags_work() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 3, iterations: 2")
        .step("{ name: a, path: /users }")
        .write(dir.path());
    // --dry-run: checked, nothing sent.
    let dry = run(&["run", &file, "--dry-run", "--max-users", "5"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&dry.stdout).trim(), "ok");
    assert_eq!(mock_stats(&mock)["total"], 0);
    // -d (debug logs), --max-users (= --vus), --ramp-up, -r with -o.
    let out = dir.path().join("out");
    let res = run(&[
        "run",
        &file,
        "-d",
        "--max-users",
        "1",
        "--ramp-up",
        "0s",
        "-r",
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(err.contains("DEBUG"), "-d shows debug lines: {err}");
    assert!(out.join("report.html").exists());
    assert_eq!(
        summary(&out)["overall"]["count"],
        2,
        "one VU, two iterations"
    );
    assert_eq!(mock_stats(&mock)["total"], 2);
    // -o FILE.json: the summary alone, in that file.
    let json = dir.path().join("res").join("results.json");
    let res = run(&["run", &file, "--vus", "1", "-o", json.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("results.json")).unwrap();
    assert_eq!(s["overall"]["count"], 2);
    assert!(!dir.path().join("res").join("junit.xml").exists());
    assert_eq!(mock_stats(&mock)["total"], 4);
    // A token without workers would go unused: refused.
    let tok = run(&["run", &file, "--dry-run", "--token", "abc"]);
    assert!(!tok.status.success());
    assert!(
        String::from_utf8_lossy(&tok.stderr).contains("authenticate to workers"),
        "{}",
        String::from_utf8_lossy(&tok.stderr)
    );
    // --ramp-up where it cannot apply is refused by name.
    let stepping = yaml(&mock)
        .name("stepping")
        .load("pattern: stepping, start_users: 1, step_users: 1, step_duration: 1s, max_users: 2, duration: 2s")
        .step("{ name: a, path: /users }")
        .write(dir.path());
    let bad = run(&["run", &stepping, "--dry-run", "--ramp-up", "5s"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--ramp-up applies to"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
