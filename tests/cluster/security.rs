//! Access control with real processes: one token guards the master API, the raft RPC between
//! replicas and the workers (`/health` stays open); `--allow-from` keeps other networks out;
//! `--allow-target` refuses tests aimed elsewhere; oversized bodies get 413; the token never shows
//! in outputs.

use crate::support::*;

#[test]
fn one_token_guards_masters_raft_and_workers() {
    // A leader means the replicas formed a cluster over token-guarded raft RPC.
    let c = Cluster::start_with(Some("cluster-secret"));
    let leader = c.agreed_leader(20);
    let addr = &c.addrs[leader];
    assert_eq!(
        call("GET", &format!("http://{addr}/health"), None, None)
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        call("GET", &format!("http://{addr}/cluster"), None, None)
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        call("GET", &format!("http://{addr}/runs"), Some("wrong"), None)
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        call("POST", &format!("http://{addr}/runs"), None, Some("{}"))
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        call(
            "POST",
            &format!("http://{addr}/raft/vote"),
            None,
            Some("{}")
        )
        .unwrap()
        .0,
        401,
        "raft RPC is guarded too"
    );

    let mock = mock(0);
    let w = worker(Some("cluster-secret"));
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "token", "cluster-secret\n");
    let file = yaml(&mock)
        .name("sec")
        .load("pattern: basic, virtual_users: 1, iterations: 3")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&[
        "console",
        "--cluster",
        &c.list(),
        &file,
        "-w",
        &w.addr,
        "--no-tui",
        "--token-file",
        &token_file,
        "-o",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr),
    );
    assert_eq!(res.status.code(), Some(0), "{stderr}");
    assert_eq!(
        mock_stats(&mock)["total"],
        3,
        "the leader drove the token-guarded worker"
    );
    assert_merged_exactly_once(&summary(&out));
    for text in [
        stdout.to_string(),
        stderr.to_string(),
        std::fs::read_to_string(out.join("summary.json")).unwrap(),
    ] {
        assert!(
            !text.contains("cluster-secret"),
            "the token leaked into output"
        );
    }
    let res = run(&[
        "console",
        "--cluster",
        &c.list(),
        &file,
        "-w",
        &w.addr,
        "--no-tui",
        "--token",
        "wrong",
    ]);
    assert_eq!(res.status.code(), Some(2), "a wrong token cannot submit");
}

#[test]
fn allow_from_keeps_other_networks_out() {
    let open = spawn_server(
        &[
            "worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--allow-from",
            "127.0.0.0/8",
        ],
        "/health",
    );
    assert_eq!(
        call("GET", &format!("http://{}/status", open.addr), None, None)
            .unwrap()
            .0,
        200
    );
    // The probe of spawn_server would fail here, so only read the address this one prints.
    let closed = spawn_listening(&[
        "worker",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--allow-from",
        "10.0.0.0/8",
    ]);
    let (code, body) = call("GET", &format!("http://{}/health", closed.addr), None, None).unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("allowed_networks"));
}

#[test]
fn allow_target_refuses_tests_aimed_elsewhere_and_big_bodies_get_413() {
    let w = spawn_server(
        &[
            "worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--allow-target",
            "127.0.0.1",
        ],
        "/health",
    );
    let test = |base: &str| {
        serde_json::json!({"run_id": "r", "test": {"name": "t", "global": {"base_url": base},
            "load": {"pattern": "basic", "virtual_users": 1, "iterations": 1},
            "scenarios": [{"name": "s", "steps": [{"name": "a", "path": "/"}]}]}})
        .to_string()
    };
    let (code, body) = call(
        "POST",
        &format!("http://{}/prepare", w.addr),
        None,
        Some(&test("http://example.com")),
    )
    .unwrap();
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("example.com") && body.contains("--allow-target"),
        "{body}"
    );
    assert_eq!(
        call(
            "POST",
            &format!("http://{}/prepare", w.addr),
            None,
            Some(&test("http://127.0.0.1:9"))
        )
        .unwrap()
        .0,
        200
    );

    let big = format!("{{\"run_id\": \"{}\"}}", "x".repeat(17 * 1024 * 1024));
    // A reset before any answer arrived is retried; an answer that arrives must be 413.
    let answer = (0..3).find_map(|_| post_reading_meanwhile(&w.addr, "/prepare", big.as_bytes()));
    assert_eq!(answer, Some(413), "a 17 MiB body is refused");
    let (_, status) = call("GET", &format!("http://{}/status", w.addr), None, None).unwrap();
    assert!(
        status.contains("\"run_id\":\"r\""),
        "the refused calls changed nothing: {status}"
    );
}

/// POSTs `body` to `http://addr{path}` while reading the answer on the same connection, and
/// returns the status code of the answer, or `None` if the connection was reset before any answer
/// arrived. A server that refuses an oversized body answers and closes with bytes still unread,
/// and the kernel may then reset the connection; a client that reads only after writing it all
/// can lose the answer to that reset.
fn post_reading_meanwhile(addr: &str, path: &str, body: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = conn.try_clone().expect("clone the socket");
    out.set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let body = body.to_vec();
    // Write errors are expected: the server stops reading once it has answered.
    let writer = std::thread::spawn(move || {
        let _ = out
            .write_all(head.as_bytes())
            .and_then(|()| out.write_all(&body));
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    // Unblocks the writer if the server neither reads nor closes.
    let _ = conn.shutdown(std::net::Shutdown::Both);
    writer.join().expect("the writer thread");
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
}
