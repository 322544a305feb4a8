//! The test format, whole: each documented style (docs stepping, `steps[]` levels, rate profiles,
//! CSV policies, load phases) and each common step key run against the mock, with the run's count
//! equal to the mock's own (`/__stats`), and the validator's warnings and suggestions.

use crate::support::*;
use std::time::{Duration, Instant};

/// Runs `file` against `mock` (`--base-url`); returns the exit code and the summary.
fn run_at(mock: &Proc, file: &str, dir: &std::path::Path) -> (Option<i32>, serde_json::Value) {
    let out = dir.join("out");
    let base = format!("http://{}", mock.addr);
    let res = run(&[
        "run",
        file,
        "--base-url",
        &base,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        out.join("summary.json").exists(),
        "no summary: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    (res.status.code(), summary(&out))
}

fn count(s: &serde_json::Value) -> u64 {
    s["overall"]["count"].as_u64().unwrap()
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn each_example_style_validates_and_runs_with_the_mocks_count() {
    for (name, exact) in [
        ("stepping-levels", None),
        ("rate-profile", Some(45)),
        ("csv-policies", Some(4)),
        ("phases", None),
    ] {
        let res = run(&["validate", "--explain", &example(name)]);
        assert!(
            res.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let mock = mock(0);
        let dir = tempfile::tempdir().unwrap();
        let (code, s) = run_at(&mock, &example(name), dir.path());
        assert_eq!(code, Some(0), "{name}: {s}");
        let n = count(&s);
        assert!(n > 0, "{name}");
        assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap(), n, "{name}");
        if let Some(want) = exact {
            assert_eq!(n, want, "{name}");
        }
        assert_eq!(s["overall"]["checks_failed"], 0, "{name}");
    }
}

#[test]
fn docs_stepping_with_hold_final_and_ramp_step_runs() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    for load in [
        "pattern: stepping, start_users: 1, step_users: 1, step_duration: 300ms, max_users: 3, hold_final: 300ms",
        "pattern: stepping, start_users: 1, step_users: 2, step_duration: 400, max_users: 3, duration: 1200, ramp_step: 200",
    ] {
        let file = yaml(&mock)
            .load(load)
            .scenario("think_time: 20ms")
            .write(dir.path());
        let before = mock_stats(&mock)["total"].as_u64().unwrap();
        let started = Instant::now();
        let (code, s) = run_at(&mock, &file, dir.path());
        assert_eq!(code, Some(0));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap() - before, count(&s));
    }
}

#[test]
fn basic_without_duration_or_iterations_runs_once_per_vu() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, users: 3")
        .write(dir.path());
    let (code, s) = run_at(&mock, &file, dir.path());
    assert_eq!(code, Some(0));
    assert_eq!(count(&s), 3);
    assert_eq!(mock_stats(&mock)["total"], 3);
}

#[test]
fn retries_resend_failed_requests_and_every_attempt_counts() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, vus: 2, iterations: 2")
        .step("{ name: flaky, path: /status/503, retry: { max_attempts: 3, delay: 5, backoff: exponential } }")
        .step("{ name: fine, path: /users, retry: { max_attempts: 3 } }")
        .write(dir.path());
    let (_, s) = run_at(&mock, &file, dir.path());
    assert_eq!(
        s["steps"][0]["count"], 12,
        "2 VUs x 2 iterations x 3 attempts"
    );
    assert_eq!(s["steps"][1]["count"], 4, "a passing request is sent once");
    assert_eq!(mock_stats(&mock)["total"], 16);
}

#[test]
fn on_error_continue_false_ends_the_iteration() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, vus: 1, iterations: 3")
        .step("{ name: broken, path: /status/500, on_error: { continue: false } }")
        .step("{ name: never, path: /users }")
        .step("{ name: again, path: /status/500, continueOnError: true }")
        .write(dir.path());
    let (_, s) = run_at(&mock, &file, dir.path());
    assert_eq!(s["steps"][0]["count"], 3);
    assert_eq!(s["steps"][1]["count"], 0);
    assert_eq!(mock_stats(&mock)["total"], 3);
}

#[test]
fn a_step_timeout_applies_to_its_request() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, vus: 1, iterations: 1")
        .step("{ name: slow, path: /delay/1500, timeout: 200 }")
        .step("{ name: patient, path: /delay/50, timeout: 2s }")
        .write(dir.path());
    let started = Instant::now();
    let (_, s) = run_at(&mock, &file, dir.path());
    assert_eq!(s["steps"][0]["errors_by_kind"]["timeout"], 1, "{s}");
    assert_eq!(s["steps"][1]["errors"], 0);
    assert!(started.elapsed() < Duration::from_millis(1400) + Duration::from_secs(2));
}

#[test]
fn step_thresholds_act_per_result() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    // fail_step marks the result as an error; fail_test keeps running and fails the verdict.
    let file = yaml(&mock)
        .load("pattern: basic, vus: 1, iterations: 4")
        .steps("      - name: judged\n        path: /users\n        thresholds:\n          - { metric: status_code, value: 200, operator: ne, action: fail_step }\n          - { metric: response_time, value: 0, operator: lt, action: fail_test, description: never fast enough }\n")
        .write(dir.path());
    let (code, s) = run_at(&mock, &file, dir.path());
    assert_eq!(code, Some(1), "fail_test fails the run");
    assert_eq!(s["steps"][0]["count"], 4);
    assert_eq!(s["steps"][0]["errors"], 4);
    assert_eq!(mock_stats(&mock)["total"], 4);
    // abort stops a long run at once, cleanly, with a summary and exit code 1.
    let file = yaml(&mock)
        .load("pattern: basic, vus: 2, duration: 60s")
        .steps("      - name: judged\n        path: /users\n        thresholds:\n          - { metric: response_time, value: 0, operator: lt, action: abort }\n")
        .write(dir.path());
    let started = Instant::now();
    let (code, s) = run_at(&mock, &file, dir.path());
    assert_eq!(code, Some(1));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(count(&s) <= 2, "{s}");
}

#[test]
fn loops_sla_and_run_checks_from_the_typescript_format() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, vus: 1, iterations: 1")
        .scenario("loop: { count: 3 }")
        .scenario("sla_requirements: { p95_response_time: 2000, availability: 99 }")
        .extra("checks:\n  - { type: error_rate, value: 1 }\n  - { type: throughput, min_value: 100000 }\n")
        .write(dir.path());
    let (code, s) = run_at(&mock, &file, dir.path());
    assert_eq!(count(&s), 3);
    assert_eq!(
        code,
        Some(1),
        "the throughput check cannot pass: {}",
        s["thresholds"]
    );
    let failed: Vec<&serde_json::Value> = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{}", s["thresholds"]);
    let file = yaml(&mock)
        .load("pattern: basic, vus: 1, iterations: 1")
        .scenario("loop: { duration: 300ms }")
        .scenario("think_time: 50ms")
        .write(dir.path());
    let before = mock_stats(&mock)["total"].as_u64().unwrap();
    let (_, s) = run_at(&mock, &file, dir.path());
    let n = count(&s);
    assert!((3..=8).contains(&n), "300 ms of 50 ms pauses: {n}");
    assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap() - before, n);
}

#[test]
fn csv_exhaustion_with_stop_test_ends_the_run() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rows.csv", "id\n1\n2\n3\n");
    let file = yaml(&mock)
        .load("pattern: basic, vus: 2, duration: 30s")
        .scenario("csv_data: { file: rows.csv, distribution: { scope: global, on_exhausted: stop_test } }")
        .step("{ name: one, path: '/users/{{id}}' }")
        .write(dir.path());
    let started = Instant::now();
    let (code, s) = run_at(&mock, &file, dir.path());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(code, Some(1), "stop_test fails the run");
    // Three rows, each used once. The VU that finds the rows exhausted stops the run; the other VU may
    // have drawn the third row and not yet sent it (a request not yet started when the run stops is
    // not sent), so 2 or 3 requests, never a row twice, and the target saw exactly those.
    let n = count(&s);
    assert!((2..=3).contains(&n), "each of 3 rows at most once: {n}");
    assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap(), n);
}

#[test]
fn validate_warns_suggests_and_explains() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name: t\nload: { pattern: basic, vus: 1, duration: 1000 }\nscenarios:\n  - name: s\n    steps:\n      - { name: a, path: /users }\n";
    let file = write(dir.path(), "rel.yaml", text);
    let res = run(&["validate", "--explain", &file]);
    assert!(res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("warning") && err.contains("--base-url"),
        "{err}"
    );
    let out = String::from_utf8_lossy(&res.stdout);
    assert!(
        out.contains("load: basic, 1 VUs, ramp_up 0ms, duration 1s"),
        "{out}"
    );
    // The run needs a base URL from somewhere.
    let res = run(&["run", &file]);
    assert_eq!(
        res.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let mock = mock(0);
    let (code, s) = run_at(&mock, &file, dir.path());
    assert_eq!(code, Some(0));
    assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap(), count(&s));
    let typo = write(
        dir.path(),
        "typo.yaml",
        &text
            .replace("      - {", "    think_tim: 1\n      - {")
            .replace(
                "    steps:\n    think_tim: 1\n",
                "    think_tim: 1\n    steps:\n",
            ),
    );
    let res = run(&["validate", &typo]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1));
    assert!(
        err.contains("did you mean `think_time`?") && err.contains("typo.yaml:"),
        "{err}"
    );
}

#[test]
fn debug_captures_failing_requests_into_the_summary() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, vus: 1, iterations: 2")
        .step("{ name: broken, path: /status/503, headers: { X-Probe: yes } }")
        .step("{ name: fine, path: /users }")
        .extra("debug: { log_level: debug, capture_request_headers: true, capture_response_body: true, max_response_body_size: 5 }\n")
        .write(dir.path());
    let out = dir.path().join("out");
    let base = format!("http://{}", mock.addr);
    let res = run(&[
        "run",
        &file,
        "--base-url",
        &base,
        "-o",
        out.to_str().unwrap(),
    ]);
    let s = summary(&out);
    let samples = s["debug_samples"]
        .as_array()
        .expect("captures in summary.json");
    assert_eq!(samples.len(), 2, "only the failing requests: {samples:?}");
    assert_eq!(samples[0]["step"], "broken");
    assert_eq!(samples[0]["status"], 503);
    assert_eq!(samples[0]["request_headers"]["X-Probe"], "yes");
    assert!(samples[0]["response_body"].as_str().unwrap().len() <= 5);
    assert!(samples[0].get("request_body").is_none(), "not asked for");
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("DEBUG") && err.contains("request"),
        "log_level debug: {err}"
    );
}

#[test]
fn a_faker_seed_repeats_generated_values_run_to_run() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let bodies = |seed: u64| {
        let file = yaml(&mock)
            .load("pattern: basic, vus: 2, iterations: 2")
            .step("{ name: make, method: POST, path: /echo, json: { who: '{{faker.person.fullName}}', id: '{{uuid}}', n: '{{randomInt(1, 1000000)}}' } }")
            .extra("debug: { capture_only_failures: false, capture_request_body: true }\n")
            .write(dir.path());
        let text = std::fs::read_to_string(&file).unwrap().replace(
            "  timeout: 5000\n",
            &format!("  timeout: 5000\n  faker: {{ locale: en, seed: {seed} }}\n"),
        );
        std::fs::write(&file, text).unwrap();
        let (_, s) = run_at(&mock, &file, dir.path());
        let mut got: Vec<String> = s["debug_samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["request_body"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        got
    };
    let a = bodies(42);
    assert_eq!(a.len(), 4);
    assert_eq!(a, bodies(42), "the same seed, the same values");
    assert_ne!(a, bodies(43));
}

#[test]
fn phases_levels_and_rate_profiles_split_across_workers() {
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    // Phases split one by one: 4 VUs x 2 iterations, then levels of 2 and 4 VUs, then 20 arrivals/s
    // for 1 s in a profile (10 on each worker).
    let file = yaml(&mock).load("x: y").write(dir.path());
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "load: { x: y }\n",
        "load:\n  - { name: warm, pattern: basic, vus: 4, iterations: 2 }\n  - { pattern: stepping, steps: [{users: 2, duration: 300ms}, {users: 4, duration: 300ms}] }\n  - { pattern: arrivals, rate_profile: [{rate: 20, duration: 1s}], max_virtual_users: 10 }\n",
    );
    std::fs::write(&file, text).unwrap();
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
    let s = summary(&out);
    let n = count(&s);
    assert!(n >= 8 + 20 + 2, "{n}");
    assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap(), n);
}

#[test]
fn change_policy_each_vu_keeps_a_vus_first_row() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ids.csv", "id\n11\n22\n33\n");
    let file = yaml(&mock)
        .load("pattern: basic, vus: 2, iterations: 3")
        .scenario("csv_data: { file: ids.csv, mode: shared, change_policy: each_vu }")
        .step("{ name: one, path: '/users/{{id}}' }")
        .extra("debug: { capture_only_failures: false }\n")
        .write(dir.path());
    let (_, s) = run_at(&mock, &file, dir.path());
    assert_eq!(count(&s), 6);
    assert_eq!(mock_stats(&mock)["total"], 6);
    let mut urls: Vec<String> = s["debug_samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["url"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    urls.sort();
    urls.dedup();
    assert_eq!(urls, ["11", "22"], "two VUs, one row each");
}
