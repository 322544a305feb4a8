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

// ---- distributed.security and distributed.performance (`--config` on workers and masters, the
// test file's block on the controller): JWTs, roles, certificates and cipher suites from YAML,
// socket options and thread pinning read back from the kernel.

use perfornium::config::security::{Minter, Security};

const JWT_SECRET: &str = "jwt-secret-of-the-cluster-0123";

/// The security block shared by a worker's `--config` and the test file (HS256, the seed's roles,
/// a read-only viewer and an operator who submits and follows runs from the console); `extra` is
/// appended under `security:`.
fn hs256_security(extra: &str) -> String {
    format!(
        "  security:\n    authentication:\n      method: token\n      token_auth:\n        algorithm: HS256\n        secret: \"{{{{env.PERFORNIUM_TEST_JWT_SECRET}}}}\"\n        expiration: 60\n    authorization:\n      enabled: true\n      rbac:\n        roles:\n          - name: worker\n            permissions: [execute_tests, report_metrics]\n          - name: admin\n            permissions: [manage_workers, view_all_results]\n          - name: viewer\n            permissions: [view_all_results]\n          - name: operator\n            permissions: [execute_tests, view_all_results]\n{extra}"
    )
}

/// A minter for `role` with `secret` (the test's own, independent of the processes).
fn minter(secret: &str, role: &str) -> Minter {
    let yaml = format!("authentication:\n  method: token\n  token_auth:\n    algorithm: HS256\n    secret: {secret}\n    role: {role}\nauthorization:\n  rbac:\n    roles:\n      - name: {role}\n        permissions: [view_all_results]\n");
    let sec: Security = serde_norway::from_str(&yaml).unwrap();
    sec.minter("test", &[]).unwrap().unwrap()
}

/// `perfornium ARGS` with the JWT secret in its environment (every child inherits it: the variable
/// is this file's own and always holds the same value), listening; probed on `/health`.
fn spawn_with_secret(args: &[&str]) -> Proc {
    std::env::set_var("PERFORNIUM_TEST_JWT_SECRET", JWT_SECRET);
    spawn_server(args, "/health")
}

#[test]
fn jwts_from_config_are_accepted_expired_or_forged_ones_get_401_and_a_role_without_the_permission_403(
) {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(
        dir.path(),
        "worker.yml",
        &format!("distributed:\n{}", hs256_security("")),
    );
    let w = spawn_with_secret(&[
        "worker",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--config",
        &conf,
    ]);
    let url = |p: &str| format!("http://{}{p}", w.addr);
    let good = minter(JWT_SECRET, "worker");
    let (code, body) = call("GET", &url("/status"), Some(&good.bearer()), None).unwrap();
    assert_eq!(code, 200, "{body}");
    let expired = good.mint_at(now_ms() / 1000 - 120, 60);
    let (code, body) = call("GET", &url("/status"), Some(&expired), None).unwrap();
    assert_eq!((code, body.contains("JWT expired")), (401, true), "{body}");
    let forged = minter("another-secret-0123456789", "worker").bearer();
    let (code, body) = call("GET", &url("/status"), Some(&forged), None).unwrap();
    assert_eq!(
        (code, body.contains("signature does not verify")),
        (401, true),
        "{body}"
    );
    let (code, _) = call("GET", &url("/status"), None, None).unwrap();
    assert_eq!(code, 401, "no token");
    let viewer = minter(JWT_SECRET, "viewer").bearer();
    let (code, body) = call("POST", &url("/prepare"), Some(&viewer), Some("{}")).unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("role `viewer` lacks the permission `execute_tests`"),
        "{body}"
    );
    let (code, body) = call("GET", &url("/metrics"), Some(&viewer), None).unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("`report_metrics`"), "{body}");

    // The controller mints its own token from the test file's block (role `worker`: the first
    // holding execute_tests and report_metrics) and runs to the end; the mock counts every request.
    let mock = mock(0);
    let file = yaml(&mock)
        .name("jwt")
        .load("pattern: basic, virtual_users: 2, iterations: 5")
        .extra(&format!("distributed:\n{}", hs256_security("")))
        .write(dir.path());
    let out = dir.path().join("out");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_perfornium"));
    cmd.args(["distributed", &file, "-w", &w.addr, "--no-tui", "-o"])
        .arg(&out)
        .env("PERFORNIUM_TEST_JWT_SECRET", JWT_SECRET);
    let res = start_cmd(cmd).wait_with_deadline(std::time::Duration::from_secs(60));
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(summary(&out)["overall"]["count"], 10);
    assert_eq!(mock_stats(&mock)["total"], 10);

    // The same run minted with a wrong secret is refused by the worker, nothing reaches the mock.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_perfornium"));
    cmd.args(["distributed", &file, "-w", &w.addr, "--no-tui"])
        .env("PERFORNIUM_TEST_JWT_SECRET", "a-wrong-secret-0123456789");
    let res = start_cmd(cmd).wait_with_deadline(std::time::Duration::from_secs(60));
    assert_eq!(res.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("signature does not verify"),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(mock_stats(&mock)["total"], 10);
}

#[test]
fn rs256_tokens_signed_by_the_private_key_verify_with_the_public_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("jwt.key");
    let public = dir.path().join("jwt.pub");
    let gen = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(gen.status.success(), "{gen:?}");
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rs = |k: &str, path: &std::path::Path| {
        format!(
            "authentication:\n  method: token\n  token_auth:\n    algorithm: RS256\n    {k}: {}\n",
            path.display()
        )
    };
    let conf = write(
        dir.path(),
        "worker.yml",
        &format!(
            "distributed:\n  security:\n{}",
            rs("public_key", &public)
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        ),
    );
    let w = spawn_server(
        &[
            "worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--config",
            &conf,
        ],
        "/health",
    );
    let sec: Security = serde_norway::from_str(&rs("private_key", &key)).unwrap();
    let m = sec.minter("test", &[]).unwrap().unwrap();
    let status = format!("http://{}/status", w.addr);
    assert_eq!(
        call("GET", &status, Some(&m.bearer()), None).unwrap().0,
        200
    );
    let (code, body) = call(
        "GET",
        &status,
        Some(&minter(JWT_SECRET, "admin").bearer()),
        None,
    )
    .unwrap();
    assert_eq!(code, 401, "an HS256 token where RS256 is expected: {body}");
    let expired = m.mint_at(now_ms() / 1000 - 3600, 60);
    let (code, body) = call("GET", &status, Some(&expired), None).unwrap();
    assert_eq!((code, body.contains("JWT expired")), (401, true), "{body}");
}

#[test]
fn a_master_with_jwts_enforces_each_endpoints_permission_and_keeps_raft_to_the_static_token() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(
        dir.path(),
        "master.yml",
        &format!("distributed:\n{}", hs256_security("")),
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let peers = format!("1={listen}");
    let data = dir.path().join("m");
    let m = spawn_with_secret(&[
        "master",
        "--id",
        "1",
        "--listen",
        &listen,
        "--peers",
        &peers,
        "--data",
        data.to_str().unwrap(),
        "--token",
        "replica-secret",
        "--config",
        &conf,
    ]);
    let url = |p: &str| format!("http://{}{p}", m.addr);
    let viewer = minter(JWT_SECRET, "viewer").bearer();
    let admin = minter(JWT_SECRET, "admin").bearer();
    let worker = minter(JWT_SECRET, "worker").bearer();
    assert!(
        wait_for(20, || call("GET", &url("/runs"), Some(&viewer), None)
            .is_ok_and(|r| r.0 == 200)),
        "the viewer reads runs: {}",
        m.stderr_tail()
    );
    let (code, body) = call("POST", &url("/runs"), Some(&viewer), Some("{}")).unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("lacks the permission `execute_tests`"),
        "{body}"
    );
    let (code, body) = call("GET", &url("/cluster"), Some(&worker), None).unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("`view_all_results`"), "{body}");
    assert_eq!(
        call("GET", &url("/cluster"), Some(&viewer), None)
            .unwrap()
            .0,
        200
    );
    let (code, body) = call("POST", &url("/raft/vote"), Some(&admin), Some("{}")).unwrap();
    assert_eq!(code, 401, "no JWT reaches the raft RPC: {body}");
    assert_eq!(
        call("GET", &url("/cluster"), Some("replica-secret"), None)
            .unwrap()
            .0,
        200,
        "the static token keeps every permission"
    );
    // The console mints an `operator` token from the test file (submit and follow), the leader
    // mints a `worker` one from its --config to drive a JWT worker; the mock counts every request.
    let w = spawn_with_secret(&[
        "worker",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--config",
        &conf,
    ]);
    let mock = mock(0);
    let file = yaml(&mock)
        .name("jwt-console")
        .load("pattern: basic, virtual_users: 2, iterations: 3")
        .extra(&format!("distributed:\n{}", hs256_security("")))
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&[
        "console",
        "--cluster",
        &m.addr,
        &file,
        "-w",
        &w.addr,
        "--no-tui",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{stderr}\n{}", m.stderr_tail());
    assert_eq!(mock_stats(&mock)["total"], 6);
    assert_eq!(summary(&out)["overall"]["count"], 6);
    let saved = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(
        !saved.contains(JWT_SECRET) && !stderr.contains(JWT_SECRET),
        "the secret leaked"
    );

    // Without --token a JWT master is refused at start: its replicas could not call each other.
    let res = run(&[
        "master",
        "--id",
        "1",
        "--listen",
        "127.0.0.1:0",
        "--peers",
        "1=127.0.0.1:1",
        "--data",
        data.to_str().unwrap(),
        "--config",
        &conf,
    ]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("still needs --token"));
}

/// A CA with a server (localhost, 127.0.0.1) and a client certificate, as PEM files in `dir`.
fn pki(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (leaf, names) in [
        (
            "server",
            vec!["localhost".to_string(), "127.0.0.1".to_string()],
        ),
        ("client", vec!["perfornium-client".to_string()]),
    ] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join(format!("{leaf}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{leaf}.key")), key.serialize_pem()).unwrap();
    }
}

/// GET `url` over `tls`: the status, or the error chain as text.
fn tls_get(tls: &perfornium::tls::ClientTls, url: &str) -> Result<u16, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = perfornium::tls::client_builder(Some(tls))
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        match client.get(url).send().await {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(format!("{e}: {:?}", perfornium::tls::handshake_failure(&e))),
        }
    })
}

#[test]
fn mutual_tls_and_a_cipher_suite_restriction_come_from_yaml() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let p = |f: &str| dir.path().join(f).display().to_string();
    let conf = write(
        dir.path(),
        "worker.yml",
        &format!(
            "distributed:\n  security:\n    authentication:\n      method: mutual_tls\n      tls_auth:\n        ca_cert: {}\n        server_cert: {}\n        server_key: {}\n    network:\n      encryption: true\n      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n",
            p("ca.pem"),
            p("server.pem"),
            p("server.key")
        ),
    );
    let w = spawn_listening(&[
        "worker",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--config",
        &conf,
    ]);
    let health = format!("https://{}/health", w.addr);
    let ca = std::path::PathBuf::from(p("ca.pem"));
    let (cert, key) = (
        std::path::PathBuf::from(p("client.pem")),
        std::path::PathBuf::from(p("client.key")),
    );
    let with_cert = perfornium::tls::ClientTls::load(&ca, Some((&cert, &key))).unwrap();
    assert!(
        wait_for(20, || tls_get(&with_cert, &health) == Ok(200)),
        "{}",
        w.stderr_tail()
    );
    let without = perfornium::tls::ClientTls::load(&ca, None).unwrap();
    assert!(tls_get(&without, &health).is_err(), "no client certificate");
    let suite = |n: &str| perfornium::tls::cipher_suite(n).unwrap();
    let tls13_only = with_cert
        .clone()
        .with_suites(&[suite("TLS13_AES_128_GCM_SHA256")])
        .unwrap();
    let refused = tls_get(&tls13_only, &health).unwrap_err();
    assert!(refused.contains("Some("), "a handshake failure: {refused}");
    let other_tls12 = with_cert
        .clone()
        .with_suites(&[suite("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")])
        .unwrap();
    assert!(
        tls_get(&other_tls12, &health).is_err(),
        "a suite the worker does not offer"
    );
    let same = with_cert
        .clone()
        .with_suites(&[suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")])
        .unwrap();
    assert_eq!(tls_get(&same, &health), Ok(200));

    // The controller takes its certificates from the test file and completes a run.
    let mock = mock(0);
    let file = yaml(&mock)
        .name("mtls")
        .load("pattern: basic, virtual_users: 1, iterations: 4")
        .extra(&format!(
            "distributed:\n  security:\n    authentication:\n      method: mutual_tls\n      tls_auth:\n        ca_cert: {}\n        client_cert: {}\n        client_key: {}\n",
            p("ca.pem"),
            p("client.pem"),
            p("client.key")
        ))
        .write(dir.path());
    let out = dir.path().join("out");
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
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(summary(&out)["overall"]["count"], 4);
    assert_eq!(mock_stats(&mock)["total"], 4);
}

/// `ss`'s line for each established TCP socket matching `filter` (with its skmem and timer).
fn ss(filter: &str) -> String {
    let out = std::process::Command::new("ss")
        .args(["-tmoiHn", "state", "established", filter])
        .output()
        .expect("ss (iproute2) is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn socket_options_compression_and_thread_pinning_from_config_are_observed() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(
        dir.path(),
        "worker.yml",
        "distributed:\n  performance:\n    network:\n      tcp_nodelay: true\n      tcp_keepalive: true\n      send_buffer_size: 48KB\n      receive_buffer_size: 40KB\n      compression: { algorithm: gzip, level: 6, threshold: 64 }\n    resources:\n      worker_affinity: true\n      memory_management:\n        gc_tuning: true\n      cpu_management:\n        thread_pinning: true\n",
    );
    let w = spawn_server(
        &[
            "worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--config",
            &conf,
        ],
        "/health",
    );
    // Pinning: every thread on exactly one core, all the process's cores used.
    let mut cores = std::collections::BTreeSet::new();
    let tasks = std::fs::read_dir(format!("/proc/{}/task", w.pid())).unwrap();
    for t in tasks {
        let status = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string();
        if list.parse::<usize>().is_ok() {
            cores.insert(list);
        }
    }
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let allowed = ours
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let n_allowed: usize = allowed
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum();
    // The runtime has a worker thread per core plus the main thread, so every core gets one.
    assert_eq!(
        cores.len(),
        n_allowed,
        "threads pinned one core each, over all of {allowed}: {cores:?}"
    );

    // Compression: a response above the threshold comes gzipped to a client that accepts it, plain
    // to one that does not.
    let head = |accept: bool| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&w.addr).unwrap();
        let enc = if accept {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        };
        write!(
            s,
            "GET /status HTTP/1.1\r\nHost: w\r\n{enc}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        String::from_utf8_lossy(&buf).to_lowercase()
    };
    assert!(
        head(true).contains("content-encoding: gzip"),
        "{}",
        head(true)
    );
    assert!(!head(false).contains("content-encoding"), "{}", head(false));

    // Load sockets (worker → mock) and the control channel (controller → worker), while a run
    // holds them open: Linux reports twice the buffer sizes set, and a keepalive timer.
    let mock = mock(50);
    let mock_port = mock.addr.rsplit(':').next().unwrap().to_string();
    let worker_port = w.addr.rsplit(':').next().unwrap().to_string();
    let file = yaml(&mock)
        .name("sockets")
        .load("pattern: basic, virtual_users: 2, duration: 3s")
        .write(dir.path());
    let mut run = start(&["distributed", &file, "-w", &w.addr, "--no-tui"]);
    // A socket shows its keepalive timer while idle (a retransmit timer while data is in flight),
    // so the sockets are polled until each has been seen idle.
    let seen = |text: &str| {
        text.contains("rb81920") && text.contains("tb98304") && text.contains("timer:(keepalive")
    };
    let mut load = String::new();
    let mut control = String::new();
    assert!(
        wait_for(15, || {
            if !seen(&load) {
                load = ss(&format!("dport = :{mock_port}"));
            }
            if !seen(&control) {
                control = ss(&format!("sport = :{worker_port}"));
            }
            seen(&load) && seen(&control)
        }),
        "load sockets: SO_RCVBUF 2x40KB (rb81920), SO_SNDBUF 2x48KB (tb98304), SO_KEEPALIVE \
         (a keepalive timer): {load}\ncontrol channel, the same: {control}"
    );
    assert!(run
        .exit_within(std::time::Duration::from_secs(30))
        .is_some_and(|s| s.success()));
}

#[test]
fn config_files_refuse_role_keys_and_unknown_keys_firewall_rules_act_and_a_test_refuses_per_process_performance(
) {
    let dir = tempfile::tempdir().unwrap();
    let role = write(dir.path(), "a.yml", "distributed:\n  mode: master\n");
    let res = run(&["worker", "--port", "0", "--config", &role]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2));
    assert!(
        err.contains("distributed.mode is master but this is `perfornium worker`")
            && err.contains("a.yml"),
        "{err}"
    );
    let typo = write(dir.path(), "b.yml", "distributed:\n  securty: {}\n");
    let err = String::from_utf8_lossy(&run(&["worker", "--port", "0", "--config", &typo]).stderr)
        .into_owned();
    assert!(err.contains("did you mean `security`?"), "{err}");
    let oauth = write(
        dir.path(),
        "c.yml",
        "distributed:\n  security:\n    authentication:\n      method: oauth\n",
    );
    let err = String::from_utf8_lossy(&run(&["worker", "--port", "0", "--config", &oauth]).stderr)
        .into_owned();
    assert!(err.contains("`oauth` is not available"), "{err}");
    let suite = write(
        dir.path(),
        "d.yml",
        "distributed:\n  security:\n    network:\n      cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n",
    );
    let err = String::from_utf8_lossy(&run(&["worker", "--port", "0", "--config", &suite]).stderr)
        .into_owned();
    assert!(
        err.contains("`TLS_RSA_WITH_AES_128_CBC_SHA` is not supported"),
        "{err}"
    );
    // firewall_rules: a worker admits only allowed_networks and listens only on its worker_ports;
    // a controller calls only workers inside both.
    let fw = write(
        dir.path(),
        "f.yml",
        "distributed:\n  security:\n    network:\n      firewall_rules:\n        allowed_networks: [10.0.0.0/8]\n",
    );
    let w = spawn_listening(&[
        "worker",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--config",
        &fw,
    ]);
    let status = format!("http://{}/status", w.addr);
    assert!(
        wait_for(10, || call("GET", &status, None, None).is_ok_and(
            |(c, b)| c == 403 && b.contains("127.0.0.1 is not in allowed_networks")
        )),
        "{}",
        w.stderr_tail()
    );
    let ports = write(
        dir.path(),
        "g.yml",
        "distributed:\n  security:\n    network:\n      firewall_rules:\n        worker_ports: [1]\n",
    );
    let err = String::from_utf8_lossy(
        &run(&[
            "worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--config",
            &ports,
        ])
        .stderr,
    )
    .into_owned();
    assert!(
        err.contains("is not in security.network.firewall_rules.worker_ports [1]"),
        "{err}"
    );
    let mock = mock(0);
    for (rules, says) in [
        (
            "allowed_networks: [10.0.0.0/8]",
            "is outside distributed.security.network.firewall_rules.allowed_networks",
        ),
        (
            "worker_ports: [1]",
            "is not in distributed.security.network.firewall_rules.worker_ports",
        ),
    ] {
        let file = yaml(&mock)
            .name("fw")
            .load("pattern: basic, virtual_users: 1, iterations: 1")
            .extra(&format!(
                "distributed:\n  security:\n    network:\n      firewall_rules: {{ {rules} }}\n"
            ))
            .write(dir.path());
        let res = run(&["distributed", &file, "-w", "127.0.0.1:9", "--no-tui"]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(mock_stats(&mock)["total"], 0);

    // --explain says what acts and which keys are no-ops, and why.
    let conf = write(
        dir.path(),
        "e.yml",
        "distributed:\n  performance:\n    network:\n      send_buffer_size: 64KB\n    resources:\n      memory_management:\n        gc_tuning: true\n",
    );
    let res = run(&["worker", "--config", &conf, "--explain"]);
    let said = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "{res:?}");
    assert!(said.contains("SO_SNDBUF 65536 bytes"), "{said}");
    assert!(
        said.contains("gc_tuning: no effect: a Rust process has no garbage collector"),
        "{said}"
    );
    let jwt_test = Yaml::at("http://127.0.0.1:9")
        .name("j")
        .load("pattern: basic, virtual_users: 1, iterations: 1")
        .extra(&format!("distributed:\n{}", hs256_security("")))
        .write(dir.path());
    let said =
        String::from_utf8_lossy(&run(&["validate", "--explain", &jwt_test]).stdout).into_owned();
    assert!(
        said.contains("the controller and console sign a JWT valid 60s"),
        "{said}"
    );
    let test = Yaml::at("http://127.0.0.1:9")
        .name("p")
        .load("pattern: basic, virtual_users: 1, iterations: 1")
        .extra("distributed:\n  performance:\n    network:\n      tcp_nodelay: true\n    resources:\n      cpu_management:\n        thread_pinning: true\n")
        .write(dir.path());
    let err = String::from_utf8_lossy(&run(&["validate", &test]).stderr).into_owned();
    assert!(
        err.contains(
            "performance.resources belongs in the file given to `perfornium worker --config`"
        ),
        "{err}"
    );
}
