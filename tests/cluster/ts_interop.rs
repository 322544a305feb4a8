//! Interoperability with the TypeScript tool's distributed protocol, in two layers:
//!
//! * the exchanges captured once from the real TS controller and worker
//!   (`tests/fixtures/ts-protocol/`, see its README): the controller's calls replayed against our
//!   worker, and the worker's answers served by a fake TS worker our controller drives, each with
//!   the request count checked against the mock's own `/__stats`;
//! * the real TS tool, built from its public source, when `PERFORNIUM_TS_DIR` points at a built
//!   checkout (its `dist/cli/cli.js`); skipped with a message otherwise.

use crate::support::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/ts-protocol/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

fn json_of(reply: &(u16, String)) -> Value {
    serde_json::from_str(&reply.1).unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.1))
}

/// Polls `GET /status` as the TS controller does until `running` is false and `activeRunner` is
/// `idle`; returns the last answer.
fn wait_idle(base: &str, w: &Proc) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = json_of(&call("GET", &format!("{base}/status"), None, None).unwrap());
        if s["running"] == false && s["activeRunner"] == "idle" {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "never idle: {s}; worker stderr:\n{}",
            w.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Our worker and the mock, and the TS controller's captured calls of one fixture to replay
/// against the worker.
struct Replay {
    mock: Proc,
    worker: Proc,
    /// `http://WORKER`.
    base: String,
    exchanges: Vec<Value>,
}

impl Replay {
    /// Starts the mock and our worker for the exchanges captured in `fixture_name`.
    fn start(fixture_name: &str) -> Replay {
        let worker = worker(None);
        Replay {
            mock: mock(0),
            base: format!("http://{}", worker.addr),
            worker,
            exchanges: fixture(fixture_name).as_array().unwrap().clone(),
        }
    }

    /// A captured `/prepare` body with its test aimed at the mock.
    fn aimed_at_the_mock(&self, prepare: &Value) -> Value {
        let mut body = prepare.clone();
        body["global"]["base_url"] = json!(format!("http://{}", self.mock.addr));
        body
    }

    /// `METHOD PATH` on our worker: (status, body).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        call(method, &format!("{}{path}", self.base), None, body).unwrap()
    }
}

#[test]
fn our_worker_answers_the_captured_ts_controller_calls_with_the_mocks_count() {
    let r = Replay::start("sync-run.json");
    let (mock, w, base) = (&r.mock, &r.worker, &r.base);
    let mut start_at = 0.0;
    for x in &r.exchanges {
        let (method, path) = (x["method"].as_str().unwrap(), x["path"].as_str().unwrap());
        let mut body = x["request"].clone();
        match path {
            "/prepare" => body = r.aimed_at_the_mock(&body),
            "/start" => {
                start_at = now_ms() as f64 + 400.0;
                body["startTime"] = json!(start_at);
            }
            _ => {}
        }
        let sent = (!body.is_null()).then(|| body.to_string());
        let reply = if path == "/status" {
            // The TS controller polls until idle; the capture holds one answer per poll it made.
            (200, wait_idle(base, w).to_string())
        } else {
            r.call(method, path, sent.as_deref())
        };
        assert_eq!(reply.0, x["status"], "{method} {path}: {}", reply.1);
        let got = json_of(&reply);
        let want = &x["response"];
        // Every field the TS controller reads, with the captured value where it is not per-run.
        match path {
            "/health" => assert_eq!(got["status"], "healthy"),
            "/prepare" => {
                assert_eq!(got["status"], "prepared");
                assert_eq!(got["testName"], want["testName"]);
            }
            "/start" => {
                assert_eq!(got["status"], "started");
                assert_eq!(got["virtualUsers"], want["virtualUsers"]);
            }
            "/status" => {
                assert_eq!(got["running"], false);
                assert_eq!(got["activeRunner"], "idle");
                // Synchronized start: nothing ran before the instant the controller gave.
                let started = got["started_at_ms"].as_f64().unwrap();
                assert!(started >= start_at - 1.0, "started {started} < {start_at}");
            }
            "/results" => {
                let stats = mock_stats(mock);
                let total = stats["total"].as_u64().unwrap();
                // 4 VUs x 3 iterations x 2 steps, as our engine reads `iterations`.
                assert_eq!(total, 24, "{stats}");
                assert_eq!(got["summary"]["total_requests"], total);
                assert_eq!(got["results"].as_array().unwrap().len() as u64, total);
                let per_step: Vec<u64> = got["summary"]["step_statistics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["total_requests"].as_u64().unwrap())
                    .collect();
                assert_eq!(
                    per_step,
                    vec![
                        stats["by_route"]["/users"].as_u64().unwrap(),
                        stats["by_route"]["/users/{id}"].as_u64().unwrap()
                    ]
                );
                assert_eq!(got["summary"]["perfornium"]["exact"], false);
                for key in want["summary"].as_object().unwrap().keys() {
                    if ["error_details", "timeline_data", "bytes_per_second"]
                        .contains(&key.as_str())
                    {
                        continue;
                    }
                    assert!(got["summary"].get(key).is_some(), "summary lacks {key}");
                }
            }
            _ => {}
        }
    }
}

#[test]
fn our_worker_stops_as_the_ts_controller_asks_and_keeps_the_counts() {
    let replay = Replay::start("stopped-run.json");
    let x = &replay.exchanges;
    let prepare = replay.aimed_at_the_mock(&x[1]["request"]);
    let r = replay.call("POST", "/prepare", Some(&prepare.to_string()));
    assert_eq!(r.0, 200, "{}", r.1);
    // Without --sync-start the TS controller sends `{}`.
    assert_eq!(x[2]["request"], json!({}));
    let r = replay.call("POST", "/start", Some("{}"));
    assert_eq!(r.0, 200, "{}", r.1);
    let r = replay.call("POST", "/start", Some("{}"));
    assert_eq!(r.0, 409, "a second start while it runs: {}", r.1);
    assert!(wait_for(10, || mock_stats(&replay.mock)["total"]
        .as_u64()
        .unwrap()
        > 0));
    // The TS controller's /stop has no body at all.
    assert!(x[5]["request"].is_null());
    let r = replay.call("POST", "/stop", None);
    assert_eq!(
        (r.0, json_of(&r)["status"].clone()),
        (x[5]["status"].as_u64().unwrap() as u16, json!("stopped"))
    );
    let idle = wait_idle(&replay.base, &replay.worker);
    assert_eq!(idle["phase"], "stopped");
    let r = replay.call("POST", "/stop", None);
    assert_eq!(r.0, 400, "nothing runs any more: {}", r.1);
    let res = json_of(&replay.call("GET", "/results", None));
    let total = mock_stats(&replay.mock)["total"].as_u64().unwrap();
    assert_eq!(res["summary"]["total_requests"], total);
    assert_eq!(res["results"].as_array().unwrap().len() as u64, total);
    // Our own protocol still works beside it: a body with `run_id` is ours.
    let r = replay.call("POST", "/stop", Some(r#"{"run_id":"nope"}"#));
    assert_eq!(r.0, 404, "{}", r.1);
    assert!(json_of(&r)["error"].as_str().unwrap().contains("nope"));
}

#[test]
fn a_ts_controller_body_that_is_not_a_test_is_refused_with_its_reason() {
    let w = worker(None);
    let base = format!("http://{}", w.addr);
    let r = call(
        "POST",
        &format!("{base}/prepare"),
        None,
        Some(r#"{"name":"x","load":{"pattern":"basic","virtual_users":"many"}}"#),
    )
    .unwrap();
    assert_eq!(r.0, 400, "{}", r.1);
    let body = json_of(&r);
    assert_eq!(body["error"], "Bad Request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid test configuration"),
        "{body}"
    );
    let r = call("POST", &format!("{base}/start"), None, Some("{}")).unwrap();
    assert_eq!(r.0, 400, "{}", r.1);
    assert!(r.1.contains("Call /prepare first"), "{}", r.1);
    let r = call("GET", &format!("{base}/results"), None, None).unwrap();
    assert_eq!(r.0, 404, "{}", r.1);
}

/// What the fake TS worker was sent.
#[derive(Default)]
struct Seen {
    prepare: Option<Value>,
    start: Option<Value>,
    /// When its /start was answered (after waiting for `startTime`, as the TS worker does).
    started_ms: Option<f64>,
    paths: Vec<String>,
}

/// A TS worker made of the captured answers (`sync-run.json`): on `/start` it waits for
/// `startTime`, then sends one request to the test's target per captured raw result (the step's
/// path), so the mock counts what its `/results` reports.
struct FakeTsWorker {
    addr: String,
    seen: Arc<Mutex<Seen>>,
}

fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value) {
    let text = body.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
}

impl FakeTsWorker {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let answers: Vec<Value> = fixture("sync-run.json").as_array().unwrap().clone();
        let answer = move |path: &str| -> Value {
            answers
                .iter()
                .find(|x| x["path"] == path)
                .map(|x| x["response"].clone())
                .unwrap()
        };
        let s = seen.clone();
        std::thread::spawn(move || {
            let done = Arc::new(Mutex::new(false));
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some((method, path, body)) = read_request(&mut stream) else {
                    continue;
                };
                s.lock().unwrap().paths.push(format!("{method} {path}"));
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match path.as_str() {
                    "/health" => {
                        // Its clock is this machine's: the adapter estimates the offset from it.
                        let mut h = answer("/health");
                        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
                        h["timestamp"] = json!(now.to_string());
                        respond(&mut stream, 200, &h);
                    }
                    "/prepare" => {
                        s.lock().unwrap().prepare = Some(body);
                        respond(&mut stream, 200, &answer("/prepare"));
                    }
                    "/start" => {
                        // Answered from its own thread: the TS worker holds /start until startTime.
                        let (s, done, ack) = (s.clone(), done.clone(), answer("/start"));
                        let captured = answer("/results");
                        std::thread::spawn(move || {
                            let at = body["startTime"].as_f64().unwrap_or(0.0);
                            let wait = at - now_ms() as f64;
                            if wait > 0.0 {
                                std::thread::sleep(Duration::from_millis(wait as u64));
                            }
                            let prep = {
                                let mut g = s.lock().unwrap();
                                g.start = Some(body);
                                g.started_ms = Some(now_ms() as f64);
                                g.prepare.clone().unwrap()
                            };
                            respond(&mut stream, 200, &ack);
                            drive(&prep, &captured);
                            *done.lock().unwrap() = true;
                        });
                    }
                    "/status" => {
                        let mut st = answer("/status");
                        let idle = *done.lock().unwrap();
                        st["running"] = json!(!idle);
                        st["activeRunner"] = json!(if idle { "idle" } else { "running" });
                        respond(&mut stream, 200, &st);
                    }
                    "/results" => {
                        let mut r = answer("/results");
                        let start = s.lock().unwrap().started_ms.unwrap();
                        for x in r["results"].as_array_mut().unwrap() {
                            x["timestamp"] = json!(start + 10.0);
                        }
                        respond(&mut stream, 200, &r);
                    }
                    _ => respond(
                        &mut stream,
                        404,
                        &json!({"error": "Not Found", "message": path}),
                    ),
                }
            }
        });
        FakeTsWorker { addr, seen }
    }
}

/// Sends one request per captured raw result to the prepared test's target: the step's path,
/// with the prepared test's headers (its worker name among them).
fn drive(prepared: &Value, captured: &Value) {
    let base = prepared["global"]["base_url"].as_str().unwrap();
    let steps: Vec<&Value> = prepared["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .collect();
    let headers = prepared["global"]["headers"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for x in captured["results"].as_array().unwrap() {
        let step = steps.iter().find(|s| s["name"] == x["step_name"]).unwrap();
        let url = format!("{base}{}", step["path"].as_str().unwrap());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.get(&url);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
        req.call().unwrap();
    }
}

#[test]
fn our_controller_drives_a_ts_worker_made_of_the_captured_answers_beside_ours() {
    let mock = mock(0);
    let ours = worker(None);
    let fake = FakeTsWorker::start();
    let dir = tempfile::tempdir().unwrap();
    let test = fixture_yaml(&mock, 4, "iterations: 3");
    let file = write(dir.path(), "test.yml", &test);
    let ts_name = format!("ts+{}", fake.addr);
    let list = format!("{ts_name},{}", ours.addr);
    let s = run_distributed(dir.path(), &file, &list, &["--sync-start", "-s", "even"]);
    let stats = mock_stats(&mock);
    // Ours ran 2 VUs x 3 iterations x 2 steps; the fake sent the 8 requests its results list.
    assert_eq!(stats["by_worker"][&ours.addr], 12, "{stats}");
    assert_eq!(stats["by_worker"][&ts_name], 8, "{stats}");
    assert_eq!(s["overall"]["count"], stats["total"], "{s}");
    let ts = summary_worker(&s, &ts_name);
    assert_eq!(ts["count"], 8);
    assert_eq!(ts["exact"], false);
    assert_eq!(ts["merged_matches_final"], true, "{ts}");
    let mine = summary_worker(&s, &ours.addr);
    assert!(mine.get("exact").is_none(), "{mine}");
    let note = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|e| e.contains(&ts_name))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        note.contains("exact: false") && note.contains("8 raw results"),
        "{note}"
    );
    // What the TS worker was sent: its share of the plan, and one start instant for both.
    let seen = fake.seen.lock().unwrap();
    let prep = seen.prepare.as_ref().unwrap();
    assert_eq!(prep["load"]["virtual_users"], 2, "{prep}");
    assert_eq!(
        prep["global"]["headers"]["x-perfornium-worker"],
        ts_name.as_str()
    );
    let start_time = seen.start.as_ref().unwrap()["startTime"].as_f64().unwrap();
    let first_ours = stats["first_request_ms"][&ours.addr].as_f64().unwrap();
    assert!(
        (first_ours - start_time).abs() < 1000.0,
        "ours first request at {first_ours}, TS startTime {start_time}"
    );
    assert!(
        seen.paths.iter().all(|p| !p.contains("run_id")),
        "{:?}",
        seen.paths
    );
}

#[test]
fn a_ts_entry_without_a_host_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock(0);
    let file = write(
        dir.path(),
        "t.yml",
        &fixture_yaml(&mock, 1, "iterations: 1"),
    );
    let bad = run(&["distributed", &file, "-w", "ts+:8080"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("needs a host after it"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// A TS worker cannot stand in for the one of ours a test's own hooks run on: the run is refused
/// by name before any worker is called (the TS entry's address answers nothing).
#[test]
fn a_test_with_its_own_hooks_and_a_ts_worker_is_refused_by_name_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock(0);
    let ours = worker(None);
    let test = format!(
        "{}hooks:\n  beforeTest: {{ type: steps, steps: [{{ name: b, path: /users }}] }}\n",
        fixture_yaml(&mock, 2, "iterations: 1")
    );
    let file = write(dir.path(), "t.yml", &test);
    let list = format!("{},ts+127.0.0.1:1", ours.addr);
    let bad = run(&["distributed", &file, "-w", &list]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{err}");
    assert!(
        err.contains("ts+127.0.0.1:1")
            && err.contains("beforeTest")
            && err.contains("a TypeScript worker"),
        "{err}"
    );
    assert_eq!(
        mock_stats(&mock)["total"],
        0,
        "no request before the refusal"
    );
}

/// The captured test (`sync-run.yml`) aimed at `mock`, with `vus` and `load` (e.g. `iterations: 3`).
fn fixture_yaml(mock: &Proc, vus: u64, load: &str) -> String {
    format!(
        "name: ts interop\nglobal:\n  base_url: http://{}\nload:\n  pattern: basic\n  virtual_users: {vus}\n  {load}\nscenarios:\n  - name: users\n    steps:\n      - name: list users\n        type: rest\n        method: GET\n        path: /users\n        checks:\n          - type: status\n            value: 200\n      - name: one user\n        type: rest\n        method: GET\n        path: /users/1\n",
        mock.addr
    )
}

/// The built TS tool's CLI (`$PERFORNIUM_TS_DIR/dist/cli/cli.js`), or `None` with a message.
fn ts_cli() -> Option<String> {
    let Ok(dir) = std::env::var("PERFORNIUM_TS_DIR") else {
        eprintln!("skipped: set PERFORNIUM_TS_DIR to a built checkout of testsmith-io/perfornium (see tests/fixtures/ts-protocol/README.md)");
        return None;
    };
    let cli = format!("{dir}/dist/cli/cli.js");
    assert!(
        std::path::Path::new(&cli).exists(),
        "PERFORNIUM_TS_DIR={dir} has no {cli}: build it (npm ci && npm run build)"
    );
    Some(cli)
}

#[test]
fn the_real_ts_controller_drives_our_worker() {
    let Some(cli) = ts_cli() else { return };
    let mock = mock(0);
    let ours = worker(None);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "test.yml",
        &fixture_yaml(&mock, 4, "iterations: 3"),
    );
    let out = dir.path().join("out.json");
    let mut cmd = std::process::Command::new("node");
    cmd.args([
        cli.as_str(),
        "distributed",
        &file,
        "-w",
        &ours.addr,
        "--sync-start",
        "-o",
        out.to_str().unwrap(),
    ]);
    cmd.current_dir(dir.path());
    let res = start_cmd(cmd).wait_with_deadline(Duration::from_secs(60));
    assert!(
        res.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    let agg: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let total = mock_stats(&mock)["total"].as_u64().unwrap();
    assert_eq!(total, 24);
    assert_eq!(
        agg["summary"]["total_requests"], total,
        "{}",
        agg["summary"]
    );
    assert_eq!(agg["summary"]["successful_requests"], total);
}

#[test]
fn our_controller_drives_the_real_ts_worker_beside_ours() {
    let Some(cli) = ts_cli() else { return };
    let mock = mock(0);
    let ours = worker(None);
    let port = free_port();
    let mut cmd = std::process::Command::new("node");
    cmd.args([
        cli.as_str(),
        "worker",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]);
    let mut tsw = start_cmd(cmd);
    tsw.addr = format!("127.0.0.1:{port}");
    tsw.wait_ready("/health");
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "test.yml",
        &fixture_yaml(&mock, 4, "duration: 2s"),
    );
    let out = dir.path().join("out");
    let ts_name = format!("ts+{}", tsw.addr);
    let list = format!("{ts_name},{}", ours.addr);
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &list,
        "--sync-start",
        "-s",
        "even",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}\nTS worker:\n{}",
        String::from_utf8_lossy(&res.stderr),
        tsw.stderr_tail()
    );
    let s = summary(&out);
    let stats = mock_stats(&mock);
    assert_eq!(s["overall"]["count"], stats["total"], "{s}\n{stats}");
    let ts = summary_worker(&s, &ts_name);
    assert_eq!(ts["exact"], false);
    assert!(ts["count"].as_u64().unwrap() > 0, "{ts}");
    assert_eq!(stats["by_worker"][&ts_name], ts["count"], "{stats}");
    // Sync start across the two tools, as the mock saw each one's first request: the TS worker
    // does not start before the shared instant (how long its runner takes to send its first
    // request after it is the TS tool's own start-up, printed, not bounded).
    let first = |w: &str| stats["first_request_ms"][w].as_f64().unwrap();
    let lag = first(&ts_name) - first(&ours.addr);
    eprintln!("the TS worker's first request came {lag:.1} ms after ours");
    assert!(
        lag > -50.0,
        "the TS worker started {} ms early: {stats}",
        -lag
    );
    assert_eq!(
        stats["by_worker"][&ours.addr],
        summary_worker(&s, &ours.addr)["count"]
    );
}

#[test]
fn run_g_sets_global_keys_as_the_ts_tools_run_g_does() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    // Aimed nowhere (port 1): only `-g base_url=...` makes the requests reach the mock.
    let text = fixture_yaml(&mock, 2, "iterations: 2").replace(&mock.addr, "127.0.0.1:1");
    let file = write(dir.path(), "t.yml", &text);
    let out = dir.path().join("out");
    let base = format!("base_url=http://{}", mock.addr);
    let res = run(&[
        "run",
        &file,
        "-g",
        &base,
        "-g",
        "timeout=5s",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(mock_stats(&mock)["total"], 8);
    assert_eq!(summary(&out)["overall"]["count"], 8);
    let bad = run(&["run", &file, "-g", "bse_url=http://x"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("did you mean `base_url`"), "{err}");
    assert_eq!(
        mock_stats(&mock)["total"],
        8,
        "a refused override sends nothing"
    );
}
