//! SOAP (WSDL mode and raw envelopes) and REST bodies and auth, end to end: the examples and small
//! tests run by the real binary against `perfornium mock`, with the mock's own counts (requests,
//! SOAP results, verified Digest answers) as the reference.

use crate::support::*;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// Runs `file` against `mock` (the base URL overridden) and returns the summary; panics on failure.
fn run_ok(file: &str, mock: &Proc, out: &std::path::Path) -> serde_json::Value {
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
        res.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    summary(out)
}

fn steps_by_name(s: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| (st["name"].as_str().unwrap().to_string(), st.clone()))
        .collect()
}

#[test]
fn the_protocol_examples_validate() {
    for name in ["soap-wsdl", "rest-bodies"] {
        let res = run(&["validate", &format!("{EXAMPLES}/{name}.yaml")]);
        assert!(
            res.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
    }
}

#[test]
fn the_soap_example_calls_the_wsdl_operations() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    // The example names the mock's default port in its WSDL URL; aim it at this mock.
    let text = std::fs::read_to_string(format!("{EXAMPLES}/soap-wsdl.yaml"))
        .unwrap()
        .replace("127.0.0.1:3000", &mock.addr);
    let file = write(dir.path(), "soap.yaml", &text);
    let s = run_ok(&file, &mock, &dir.path().join("out"));
    let stats = mock_stats(&mock);
    // 2 VUs x 5 iterations x 4 steps, plus the one WSDL fetch when the run started.
    assert_eq!(s["overall"]["count"], 40);
    assert_eq!(stats["total"], 41, "{stats}");
    assert_eq!(stats["by_route"]["/soap/calculator"], 41);
    assert_eq!(s["overall"]["errors"], 0, "an expected Fault is no error");
    assert_eq!(s["overall"]["checks_failed"], 0, "{s}");
    // Add, Subtract and the raw Add were answered with results; the bad input with a Fault.
    assert_eq!(stats["soap_ok"], 30);
    assert_eq!(stats["by_status"]["500"], 10);
    let steps = steps_by_name(&s);
    // The Subtract step's check compared the extracted sum minus 20 with the iteration number, so
    // the xpath extraction of `AddResult` carried 20 + __ITER for every iteration.
    assert_eq!(steps["Subtract the sum"]["checks_passed"], 10);
    assert_eq!(
        steps["Bad input is a Fault, expected here"]["checks_passed"],
        30
    );
}

#[test]
fn an_unexpected_fault_is_an_error_of_its_own_kind() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - name: bad\n        type: soap\n        wsdl: /WSDL\n        operation: Add\n        args: { intA: x, intB: 1 }\n"
        .replace("/WSDL", &format!("http://{}/soap/calculator?wsdl", mock.addr));
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 3")
        .steps(&steps)
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["steps"][0]["errors"], 3);
    assert_eq!(s["steps"][0]["errors_by_kind"]["soap_fault"], 3, "{s}");
    assert_eq!(mock_stats(&mock)["total"], 4);
}

#[test]
fn an_unknown_operation_stops_the_run_before_any_load() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .step(&format!(
            "{{ name: m, type: soap, wsdl: 'http://{}/soap/calculator?wsdl', operation: Multiply, args: {{ intA: 1 }} }}",
            mock.addr
        ))
        .write(dir.path());
    let res = run(&["run", &file]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("no operation `Multiply` (it has: `Add`, `Subtract`)"),
        "{err}"
    );
    assert_eq!(mock_stats(&mock)["total"], 1, "only the WSDL was fetched");
}

#[test]
fn the_rest_example_sends_forms_files_json_and_credentials() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let s = run_ok(
        &format!("{EXAMPLES}/rest-bodies.yaml"),
        &mock,
        &dir.path().join("out"),
    );
    let stats = mock_stats(&mock);
    // 2 VUs x 3 iterations x 8 steps. Each VU meets each digest step's 401 challenge once, answers
    // it on the same connection, and then authenticates at once with the next `nc`.
    assert_eq!(s["overall"]["count"], 48);
    assert_eq!(s["overall"]["errors"], 0, "{s}");
    assert_eq!(s["overall"]["checks_failed"], 0, "{s}");
    assert_eq!(stats["total"], 48 + 4, "{stats}");
    assert_eq!(stats["by_status"]["401"], 4);
    assert_eq!(stats["digest_ok"], 12, "every digest answer verified");
    assert_eq!(stats["by_route"]["/multipart"], 6);
    assert_eq!(stats["by_route"]["/form"], 6);
}

#[test]
fn bad_protocol_keys_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "      - { name: a, path: /x }\n      - name: b\n        path: /x\n        form: { a: 1 }\n        json: { b: 2 }\n",
            "a step takes one body, and this one has `json` and `form`",
        ),
        (
            "      - { name: a, path: /x }\n      - name: b\n        path: /x\n        auth: { type: digest, username: u }\n",
            "needs `password`",
        ),
        (
            "      - { name: a, path: /x }\n      - name: b\n        path: /x\n        auth: { type: ntlm, username: u }\n",
            "unknown variant `ntlm`",
        ),
        (
            "      - { name: a, path: /x }\n      - name: b\n        path: /x\n        operation: Add\n",
            "`operation` belongs to `type: soap` steps",
        ),
        (
            "      - { name: a, path: /x }\n      - name: b\n        path: /x\n        checks:\n          - { type: xpath, expression: '//q:R' }\n",
            "prefix `q` is not declared",
        ),
    ];
    for (steps, want) in cases {
        let file = Yaml::at("http://127.0.0.1:9")
            .steps(steps)
            .write(dir.path());
        let res = run(&["validate", &file]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "accepted: {steps}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(
            err.contains("t.yaml:10:") || err.contains("t.yaml:12:"),
            "the line of step `b` (or of the bad key): {err}"
        );
    }
    let missing = Yaml::at("http://127.0.0.1:9")
        .steps("      - { name: a, path: /x, jsonFile: nope.json }\n")
        .write(dir.path());
    let err = String::from_utf8_lossy(&run(&["validate", &missing]).stderr).into_owned();
    assert!(
        err.contains("jsonFile") && err.contains("nope.json"),
        "{err}"
    );
    let no_wsdl = Yaml::at("http://127.0.0.1:9")
        .steps("      - { name: a, type: soap, operation: Add }\n")
        .write(dir.path());
    let err = String::from_utf8_lossy(&run(&["validate", &no_wsdl]).stderr).into_owned();
    assert!(err.contains("needs `wsdl` (or `global.wsdl_url`)"), "{err}");
}

#[test]
fn a_wsdl_file_beside_the_test_and_a_name_with_an_ampersand() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let (status, wsdl) = http_get(&format!("http://{}/soap/calculator?wsdl", mock.addr)).unwrap();
    assert_eq!(status, 200);
    write(dir.path(), "calc.wsdl", &wsdl);
    // `who` is XML-escaped into the envelope; the mock would answer a broken envelope with a Fault.
    let steps = "      - name: add\n        type: soap\n        wsdl: calc.wsdl\n        operation: Add\n        args: { intA: 1, intB: 2, note: '{{who}}' }\n        checks:\n          - { type: xpath, expression: '//AddResult', expected: 3 }\n";
    let file = yaml(&mock)
        .scenario("variables: { who: 'Smith & <Sons>' }")
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
    assert_eq!(s["overall"]["checks_failed"], 0, "{s}");
    assert_eq!(s["overall"]["errors"], 0, "{s}");
    let stats = mock_stats(&mock);
    assert_eq!(stats["soap_ok"], 1);
    assert_eq!(
        stats["total"], 2,
        "the WSDL fetched by the test, and the call: {stats}"
    );
}
