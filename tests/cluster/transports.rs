//! The worker transports (`distributed.communication.protocol: http | grpc | websocket`): the same
//! distributed run over each, with the mock's `/__stats` as the reference for the counts; the
//! workers' own logs show which transport carried the batches; a wrong token is refused on gRPC
//! and on the WebSocket stream; batch answers are compressed when the controller asks; and the
//! leader-failover exactly-once test of `exactly_once.rs` passes over gRPC and WebSocket.

use crate::support::*;

/// Two workers, 4 VUs for 3 s (several batches per worker, so the stream carries more than one),
/// over `protocol` with `options` (YAML under `communication:`); the summary, checked exactly.
fn run_over(protocol: &str, options: &str, token: Option<&str>) -> (serde_json::Value, Vec<Proc>) {
    let mock = mock(0);
    let (a, b) = (worker(token), worker(token));
    let dir = tempfile::tempdir().unwrap();
    let mut comm = format!("distributed:\n  communication:\n    protocol: {protocol}\n");
    for line in options.lines() {
        comm.push_str(&format!("    {line}\n"));
    }
    let file = yaml(&mock)
        .name("transport")
        .load("pattern: basic, virtual_users: 4, duration: 3s")
        .step("{ name: list, path: /users }")
        .extra(&comm)
        .write(dir.path());
    let out = dir.path().join("out");
    let list = worker_list(&[&a, &b]);
    let mut args = vec![
        "distributed",
        &file,
        "-w",
        &list,
        "-o",
        out.to_str().unwrap(),
    ];
    if let Some(t) = token {
        args.extend(["--token", t]);
    }
    let res = run(&args);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "{stderr}\nworker a:\n{}",
        a.stderr_tail()
    );
    let s = summary(&out);
    assert_eq!(s["phase"], "finished", "{s}");
    assert_merged_exactly_once(&s);
    let served = mock_stats(&mock)["total"].as_u64().unwrap();
    assert!(served > 0);
    assert_eq!(
        s["overall"]["count"].as_u64(),
        Some(served),
        "every request counted reached the mock, none twice"
    );
    for w in s["workers"].as_array().unwrap() {
        assert_eq!(w["state"], "finished", "{w}");
        assert!(
            w["final_seq"].as_u64().unwrap() >= 2,
            "several batches: {w}"
        );
    }
    (s, vec![a, b])
}

fn stream_opened(workers: &[Proc], protocol: &str) -> bool {
    let needle = format!("batch stream opened ({protocol})");
    workers.iter().all(|w| w.stderr_tail().contains(&needle))
}

#[test]
fn a_run_over_http_counts_exactly_and_opens_no_stream() {
    let (_, workers) = run_over("http", "", None);
    assert!(!stream_opened(&workers, "grpc") && !stream_opened(&workers, "websocket"));
}

#[test]
fn a_run_over_grpc_counts_exactly_with_batches_on_the_grpc_stream() {
    let options =
        "grpc:\n  max_message_size: 4MB\n  keepalive_time: 10s\n  keepalive_timeout: 5s\n";
    let (_, workers) = run_over("grpc", options, Some("s3cret"));
    assert!(
        stream_opened(&workers, "grpc"),
        "{}",
        workers[0].stderr_tail()
    );
}

#[test]
fn a_run_over_websocket_counts_exactly_with_gzip_frames_and_pings() {
    let options = "websocket:\n  ping_interval: 200ms\n  pong_timeout: 2s\n  max_reconnect_attempts: 2\n  reconnect_delay: 100ms\n  message_compression: true\n  max_message_size: 4MB\n";
    let (_, workers) = run_over("websocket", options, Some("s3cret"));
    assert!(
        workers
            .iter()
            .all(|w| w.stderr_tail().contains("gzip=true")),
        "{}",
        workers[0].stderr_tail()
    );
    assert!(stream_opened(&workers, "websocket"));
}

#[test]
fn a_run_over_http_with_zstd_counts_exactly() {
    run_over(
        "http",
        "http:\n  compression: zstd\n  keep_alive: false\n  timeout: 3s\n",
        None,
    );
}

#[test]
fn a_wrong_token_is_refused_over_grpc_and_on_the_websocket_stream() {
    let mock = mock(0);
    let w = worker(Some("right"));
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("wrong")
        .load("pattern: basic, virtual_users: 1, iterations: 1")
        .step("{ name: list, path: /users }")
        .extra("distributed:\n  communication:\n    protocol: grpc\n")
        .write(dir.path());
    let out = dir.path().join("out");
    let list = worker_list(&[&w]);
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &list,
        "-o",
        out.to_str().unwrap(),
        "--token",
        "wrong",
    ]);
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        w.stderr_tail().contains("refused"),
        "the worker's guard refused it: {}",
        w.stderr_tail()
    );
    assert_eq!(mock_stats(&mock)["total"], 0, "nothing ran");

    // The WebSocket batch stream: refused with the wrong token, open with the right one.
    let url = format!("ws://{}/metrics?since=0", w.addr);
    let connect = |token: &str| {
        use tungstenite::client::IntoClientRequest;
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tungstenite::connect(req)
    };
    match connect("wrong") {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("a wrong token opened the stream"),
    }
    let (mut socket, _) = connect("right").expect("the right token opens the stream");
    let first = socket.read().expect("a first message");
    let text = first.into_text().expect("a text frame");
    let body: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
    assert!(
        body["phase"].is_string() && body["batches"].is_array(),
        "a GET /metrics answer: {body}"
    );
    let _ = socket.close(None);
}

#[test]
fn metrics_answers_are_compressed_when_the_caller_accepts_it() {
    let w = worker(None);
    for (accept, expect) in [
        ("gzip", Some("gzip")),
        ("zstd", Some("zstd")),
        ("identity", None),
    ] {
        let resp = ureq::get(format!("http://{}/metrics?since=0", w.addr))
            .header("accept-encoding", accept)
            .call()
            .expect("GET /metrics");
        let got = resp
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(got.as_deref(), expect, "Accept-Encoding: {accept}");
    }
}

#[test]
fn a_leader_dying_between_a_pull_and_its_save_loses_and_doubles_nothing_over_grpc() {
    crate::exactly_once::leader_dies_between_pull_and_save("grpc");
}

#[test]
fn a_leader_dying_between_a_pull_and_its_save_loses_and_doubles_nothing_over_websocket() {
    crate::exactly_once::leader_dies_between_pull_and_save("websocket");
}

#[test]
fn a_run_over_grpc_with_mutual_tls_from_grpc_security_counts_exactly() {
    use crate::tls::{tls_worker, Pki};
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "grpc");
    // The worker serves HTTPS and requires client certificates from the CA.
    let w = tls_worker(&pki);
    let mock = mock(0);
    let security = |mutual: bool| {
        let mut s = format!(
            "distributed:\n  communication:\n    protocol: grpc\n    grpc:\n      security:\n        tls_enabled: true\n        ca_file: {}\n",
            pki.path("ca.pem")
        );
        if mutual {
            s.push_str(&format!(
                "        mutual_tls: true\n        cert_file: {}\n        key_file: {}\n",
                pki.path("client.pem"),
                pki.path("client.key")
            ));
        }
        s
    };
    let test = |name: &str, mutual: bool| {
        yaml(&mock)
            .name(name)
            .load("pattern: basic, virtual_users: 2, iterations: 5")
            .step("{ name: list, path: /users }")
            .extra(&security(mutual))
            .write(&tmp.path().join(name))
    };
    for n in ["no-cert", "mtls"] {
        std::fs::create_dir_all(tmp.path().join(n)).unwrap();
    }
    // Only the CA, no client certificate: the worker's TLS refuses the controller.
    let file = test("no-cert", false);
    let refused = run(&["distributed", &file, "-w", &w.addr, "--no-tui"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stdout) + String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("TLS failed"), "the reason is named: {said}");
    assert_eq!(mock_stats(&mock)["total"], 0, "nothing ran");

    // `grpc.security` with the client certificate: the whole run over gRPC and mutual TLS.
    let file = test("mtls", true);
    let out = tmp.path().join("out");
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &w.addr,
        "--no-tui",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}\nworker:\n{}",
        String::from_utf8_lossy(&res.stderr),
        w.stderr_tail()
    );
    let s = summary(&out);
    assert_merged_exactly_once(&s);
    assert_eq!(s["overall"]["count"], 10);
    assert_eq!(mock_stats(&mock)["total"], 10);
    assert!(w.stderr_tail().contains("batch stream opened (grpc)"));
}
