//! `perfornium import`: each importer's fixture becomes a test that validates and runs, and the mock
//! sees exactly the requests the source describes — an OpenAPI file for part of the mock's API
//! (tests/fixtures/mock-openapi.yaml), a HAR recorded here from real requests to the mock, and the
//! mock's own WSDL.

use crate::support::*;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// Validates `test`, runs it against `mock`, and returns the mock's per-route counts of the run
/// (after minus before) with the run's own request and error counts.
fn run_counted(mock: &Proc, test: &str) -> (serde_json::Map<String, serde_json::Value>, u64, u64) {
    let v = run(&["validate", test]);
    ok(&v, &format!("validate {test}"));
    let before = mock_stats(mock);
    let out_dir = tempfile::tempdir().unwrap();
    let base = format!("http://{}", mock.addr);
    let out = run(&[
        "run",
        test,
        "--base-url",
        &base,
        "-o",
        out_dir.path().to_str().unwrap(),
    ]);
    ok(&out, &format!("run {test}"));
    let after = mock_stats(mock);
    let mut delta = serde_json::Map::new();
    for (route, n) in after["by_route"].as_object().unwrap() {
        let was = before["by_route"][route].as_u64().unwrap_or(0);
        let d = n.as_u64().unwrap() - was;
        if d > 0 {
            delta.insert(route.clone(), d.into());
        }
    }
    let s = summary(out_dir.path());
    let count = s["overall"]["count"].as_u64().unwrap();
    (delta, count, s["overall"]["errors"].as_u64().unwrap())
}

#[test]
fn an_openapi_file_becomes_a_test_that_calls_each_operation_once() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("api.yaml");
    let res = run(&[
        "import",
        "openapi",
        &fixture("mock-openapi.yaml"),
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&res, "import openapi");
    let test: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let scenarios: Vec<&str> = test["scenarios"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        scenarios,
        ["users", "misc", "health"],
        "one scenario per tag, then per path"
    );
    let (delta, count, errors) = run_counted(&mock, out.to_str().unwrap());
    assert_eq!(errors, 0);
    let expected = serde_json::json!({"/users": 2, "/users/{id}": 1, "/status/{code}": 1, "/echo": 1, "/health": 1});
    assert_eq!(serde_json::Value::Object(delta), expected);
    assert_eq!(count, 6);
    // Written again without --force: refused, the file kept.
    let again = run(&[
        "import",
        "openapi",
        &fixture("mock-openapi.yaml"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    // Without -o the same test goes to stdout.
    let stdout = run(&[
        "import",
        "openapi",
        &fixture("mock-openapi.yaml"),
        "--tags",
        "misc",
    ]);
    ok(&stdout, "import to stdout");
    let text = String::from_utf8_lossy(&stdout.stdout);
    assert!(text.contains("/echo") && !text.contains("/users"), "{text}");
}

/// One request made to the mock and recorded as a HAR entry.
fn record(mock: &Proc, method: &str, path: &str, body: Option<&str>) -> serde_json::Value {
    let url = format!("http://{}{path}", mock.addr);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("accept", "application/json");
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut resp = match body {
        Some(b) => agent.run(req.body(b.to_string()).unwrap()).unwrap(),
        None => agent.run(req.body(()).unwrap()).unwrap(),
    };
    let _ = resp.body_mut().read_to_string();
    let ms = clock.elapsed().as_secs_f64() * 1000.0;
    let mime = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let started = chrono::DateTime::<chrono::Utc>::from(started)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut request = serde_json::json!({
        "method": method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "headers": [
            {"name": "Host", "value": mock.addr},
            {"name": "Accept", "value": "application/json"}
        ],
        "queryString": [],
    });
    if let Some(b) = body {
        request["postData"] = serde_json::json!({"mimeType": "application/json", "text": b});
    }
    serde_json::json!({
        "startedDateTime": started,
        "time": ms,
        "request": request,
        "response": {"status": resp.status().as_u16(), "content": {"mimeType": mime}},
    })
}

#[test]
fn a_har_recorded_against_the_mock_replays_its_requests_in_order_with_the_pause() {
    let mock = mock(0);
    // The recording: a user lists users, pauses, creates one, opens one, the page loads a style.
    let mut entries = vec![record(&mock, "GET", "/users", None)];
    // The recorded user's pause, which the importer must turn into a think time (not a wait for
    // anything: the mock answered before this line).
    std::thread::sleep(Duration::from_millis(300));
    entries.push(record(
        &mock,
        "POST",
        "/users",
        Some(r#"{"name": "Ada", "email": "ada@example.com"}"#),
    ));
    entries.push(record(&mock, "GET", "/users/3", None));
    entries.push(record(&mock, "GET", "/static/app.css", None));
    entries.push(record(&mock, "GET", "/health", None));
    let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "tests/local/import.rs", "version": "1"}, "entries": entries}});
    let dir = tempfile::tempdir().unwrap();
    let har_path = write(dir.path(), "session.har", &har.to_string());
    let out = dir.path().join("session.yaml");
    let res = run(&["import", "har", &har_path, "-o", out.to_str().unwrap()]);
    ok(&res, "import har");
    assert!(String::from_utf8_lossy(&res.stderr).contains("1 static asset"));
    let test: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let steps = test["scenarios"][0]["steps"].as_sequence().unwrap();
    let paths: Vec<&str> = steps.iter().map(|s| s["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["/users", "/users", "/users/3", "/health"],
        "in order, static left out"
    );
    let think: u64 = steps[0]["think_time"]
        .as_str()
        .unwrap()
        .trim_end_matches("ms")
        .parse()
        .unwrap();
    assert!(
        (300..2_000).contains(&think),
        "the recorded pause, {think} ms"
    );
    assert_eq!(
        steps[1]["body"].as_str().unwrap(),
        r#"{"name": "Ada", "email": "ada@example.com"}"#
    );
    let started = Instant::now();
    let (delta, count, errors) = run_counted(&mock, out.to_str().unwrap());
    assert_eq!(errors, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the think time was kept"
    );
    let expected = serde_json::json!({"/users": 2, "/users/{id}": 1, "/health": 1});
    assert_eq!(serde_json::Value::Object(delta), expected);
    assert_eq!(count, 4);
    // --keep-static keeps the style request (answered 404 by the mock, as recorded).
    let all = dir.path().join("all.yaml");
    ok(
        &run(&[
            "import",
            "har",
            &har_path,
            "--keep-static",
            "-o",
            all.to_str().unwrap(),
        ]),
        "import har --keep-static",
    );
    let (delta, count, errors) = run_counted(&mock, all.to_str().unwrap());
    assert_eq!(
        delta.get("unmatched").and_then(|v| v.as_u64()),
        Some(1),
        "{delta:?}"
    );
    assert_eq!(count, 5);
    assert_eq!(
        errors, 0,
        "a recorded 404 replays as a success: its status check names it"
    );
}

#[test]
fn the_mocks_wsdl_becomes_a_soap_step_per_operation_that_the_mock_answers() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let (status, wsdl) = http_get(&format!("http://{}/soap/calculator?wsdl", mock.addr)).unwrap();
    assert_eq!(status, 200);
    let wsdl_path = write(dir.path(), "calculator.wsdl", &wsdl);
    let out = dir.path().join("generated/calculator.yaml");
    let res = run(&[
        "import",
        "wsdl",
        &wsdl_path,
        "-o",
        dir.path().join("generated").to_str().unwrap(),
    ]);
    ok(&res, "import wsdl");
    let text = std::fs::read_to_string(&out).unwrap();
    let test: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let steps = test["scenarios"][0]["steps"].as_sequence().unwrap();
    let ops: Vec<&str> = steps
        .iter()
        .map(|s| s["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["Add", "Subtract"]);
    assert_eq!(
        steps[0]["wsdl"].as_str(),
        Some("../calculator.wsdl"),
        "relative to the test"
    );
    assert_eq!(steps[0]["args"]["intA"].as_u64(), Some(1), "{text}");
    let soap_before = mock_stats(&mock)["soap_ok"].as_u64().unwrap();
    let (delta, count, errors) = run_counted(&mock, out.to_str().unwrap());
    assert_eq!(errors, 0);
    assert_eq!(
        serde_json::Value::Object(delta),
        serde_json::json!({"/soap/calculator": 2})
    );
    assert_eq!(count, 2);
    assert_eq!(
        mock_stats(&mock)["soap_ok"].as_u64().unwrap() - soap_before,
        2,
        "both answered, no Fault"
    );
}
