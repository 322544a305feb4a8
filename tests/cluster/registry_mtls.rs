//! Registration over mutual TLS, with certificates made by rcgen in the test: a master that serves
//! HTTPS and requires client certificates of its CA; a worker serving HTTPS with a certificate of
//! that CA registers with `--master`, renews, and is driven over mTLS through a pool run whose
//! count equals the mock's; a worker whose certificate another CA signed is refused, never joins
//! the pool, and its log says why.

use super::tls::Pki;
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

/// `method url` over `tls` with an optional JSON body: (status, body), or the error's text.
fn call_tls(
    tls: &perfornium::tls::ClientTls,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = perfornium::tls::client_builder(Some(tls))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client.request(method, url);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.map_err(|e| e.to_string())?))
    })
}

fn json(tls: &perfornium::tls::ClientTls, url: &str) -> Value {
    match call_tls(tls, "GET", url, None) {
        Ok((200, body)) => serde_json::from_str(&body).unwrap_or_default(),
        _ => Value::Null,
    }
}

fn up(tls: &perfornium::tls::ClientTls, master: &str) -> Vec<String> {
    let mut ids: Vec<String> = json(tls, &format!("https://{master}/workers"))
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|w| w["health"] == "up")
        .map(|w| w["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_worker_registers_and_is_driven_over_mutual_tls_and_one_with_another_cas_certificate_is_refused(
) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "cluster");
    let rogue = Pki::new(tmp.path(), "rogue");
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    let client = perfornium::tls::ClientTls::load(
        std::path::Path::new(&ca),
        Some((
            std::path::Path::new(&pki.path("client.pem")),
            std::path::Path::new(&pki.path("client.key")),
        )),
    )
    .unwrap();
    let data = tmp.path().join("m1").display().to_string();
    let mut master = None;
    for _ in 0..PORT_ATTEMPTS {
        let listen = format!("127.0.0.1:{}", free_port());
        let peers = format!("1={listen}");
        let args = [
            "master",
            "--id",
            "1",
            "--listen",
            &listen,
            "--peers",
            &peers,
            "--data",
            &data,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-ca",
            &ca,
        ];
        match try_spawn_listening(&args) {
            Ok(m) => {
                master = Some(m);
                break;
            }
            Err(e) if port_taken(&e) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let master = master.expect("a master on a free port");
    assert!(
        wait_for(20, || json(
            &client,
            &format!("https://{}/health", master.addr)
        )
        .is_object()),
        "{}",
        master.stderr_tail()
    );
    let worker = |id: &str, cert: &str, key: &str| {
        spawn_listening(&[
            "worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--master",
            &master.addr,
            "--id",
            id,
            "--lease-ms",
            "1500",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--tls-ca",
            &ca,
        ])
    };
    let good = worker("t-good", &cert, &key);
    let bad = worker(
        "t-bad",
        &rogue.path("server.pem"),
        &rogue.path("server.key"),
    );
    assert!(
        wait_for(20, || up(&client, &master.addr) == ["t-good"]),
        "the worker with the cluster's certificate registered over mTLS: {:?}\n{}\n{}",
        up(&client, &master.addr),
        good.stderr_tail(),
        master.stderr_tail()
    );
    assert!(
        wait_for(10, || bad.stderr_tail().contains("registration failed")),
        "{}",
        bad.stderr_tail()
    );
    let said = bad.stderr_tail();
    assert!(said.contains("TLS"), "the refusal names TLS: {said}");

    // A pool run (no `workers`): the leader drives the registered worker over mTLS.
    let mock = mock(0);
    let text = yaml(&mock)
        .name("mtls-pool")
        .load("pattern: basic, virtual_users: 2, iterations: 5")
        .text();
    let (code, resp) = call_tls(
        &client,
        "POST",
        &format!("https://{}/runs", master.addr),
        Some(&serde_json::json!({ "test_yaml": text }).to_string()),
    )
    .expect("POST /runs");
    assert_eq!(code, 201, "{resp}");
    let id = serde_json::from_str::<Value>(&resp).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut view = Value::Null;
    assert!(
        wait_for(30, || {
            view = json(&client, &format!("https://{}/runs/{id}", master.addr));
            matches!(
                view["phase"].as_str(),
                Some("finished" | "failed" | "stopped")
            )
        }),
        "run did not end: {view}\n{}",
        master.stderr_tail()
    );
    assert_eq!(view["phase"], "finished", "{view}");
    assert_eq!(view["summary"]["workers"].as_array().map(Vec::len), Some(1));
    assert_eq!(view["summary"]["overall"]["count"], 10);
    assert_eq!(mock_stats(&mock)["total"], 10, "the mock's own count");
    assert_eq!(
        up(&client, &master.addr),
        ["t-good"],
        "still refused: {}",
        bad.stderr_tail()
    );
}
