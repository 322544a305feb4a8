//! Monitoring, alerting and central logs of a distributed run, end to end: a one-replica master,
//! two real workers and the mock. One worker is degraded twice over: the controller reaches it
//! through a delaying TCP proxy in this test (its control calls take ≥ 250 ms: a slow link), and
//! its VUs call `/delay/300` (a slow path to the target, so it makes far fewer requests than its
//! planned half). The run must raise `communication_issues` and `load_imbalance` for it, deliver
//! each alert once to a JSON and a Slack-style webhook (receivers in this test), and show its
//! latency, resources and shares in `GET /runs/{id}` and `/metrics`; the workers' log records must
//! reach `GET /runs/{id}/logs` with the run id, and every load request must carry
//! `X-Correlation-Id: <run id>` as the mock recorded it.
//!
//! No Elasticsearch server can be installed here: `log_aggregation` is pointed at a receiver in
//! this test, which checks the bulk API's wire format (NDJSON action/document pairs, dated index),
//! not Elasticsearch's acceptance of it.

use crate::support::receiver::{Received, Receiver};
use crate::support::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A TCP proxy on a free loopback port to `target` that holds every chunk going to the target for
/// `delay`: each request the controller sends takes that much longer to answer.
fn delaying_proxy(target: &str, delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("its address").to_string();
    let target = target.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => (c, s),
                _ => continue,
            };
            std::thread::spawn(move || pump(client, server, Some(delay)));
            std::thread::spawn(move || pump(s2, c2, None));
        }
    });
    addr
}

fn pump(mut from: TcpStream, mut to: TcpStream, delay: Option<Duration>) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(d) = delay {
                    std::thread::sleep(d);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

fn body_for(test: &str, workers: &[&str]) -> String {
    let workers: Vec<serde_json::Value> = workers
        .iter()
        .map(|a| {
            let (host, port) = a.split_once(':').expect("host:port");
            serde_json::json!({"host": host, "port": port.parse::<u16>().expect("a port")})
        })
        .collect();
    serde_json::json!({"test_yaml": test, "workers": workers, "strategy": "even"}).to_string()
}

#[test]
fn a_slow_worker_raises_latency_and_imbalance_alerts_once_and_its_logs_reach_the_run_log() {
    let mock = mock(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut master = one_replica_master(dir.path());
    let hooks = Receiver::start("{}");
    let es = Receiver::start(r#"{"took":1,"errors":false,"items":[]}"#);
    let fast = worker_with_env(&[("PF_DELAY", "0")]);
    let slow = worker_with_env(&[("PF_DELAY", "300")]);
    let slow_link = delaying_proxy(&slow.addr, Duration::from_millis(250));
    let test = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, duration: 8s")
        .scenario("think_time: 50ms")
        .step("{ name: work, path: \"/delay/{{env.PF_DELAY}}\" }")
        .step("{ name: seen, path: /record/seen }")
        .extra(&format!(
            "distributed:
  monitoring:
    alerting:
      communication_issues: true
      load_imbalance: true
      worker_failures: true
      latency_threshold: 100ms
      imbalance_tolerance_pct: 30
      window: 2s
      webhooks:
        - {{ url: \"http://{hooks}/alerts\" }}
        - {{ url: \"http://{hooks}/slack\", format: slack }}
  logging:
    centralized: true
    correlation_id: true
    log_levels: {{ master: info, workers: info, communication: debug }}
    log_aggregation: {{ backend: elasticsearch, index: \"perfornium-{{{{date}}}}\", url: \"http://{es}\" }}
",
            hooks = hooks.addr,
            es = es.addr
        ))
        .text();
    let body = body_for(&test, &[&fast.addr, &slow_link]);
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", master.addr),
        None,
        Some(&body),
    )
    .expect("POST /runs");
    assert_eq!(code, 201, "{resp}\n{}", master.stderr_tail());
    let id = serde_json::from_str::<serde_json::Value>(&resp).expect("JSON")["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    let run = |m: &Proc| get_json(&format!("http://{}/runs/{id}", m.addr)).unwrap_or_default();
    assert!(
        wait_for(60, || run(&master)["phase"] == "finished"),
        "the run did not finish: {}\n{}",
        run(&master),
        master.stderr_tail()
    );
    // The last round's alerts are marked delivered by a save after the run's final one.
    let all_delivered = |v: &serde_json::Value| {
        v["summary"]["alerts"].as_array().is_some_and(|a| {
            a.iter()
                .all(|a| a["delivered"].as_array().map_or(0, |d| d.len()) == 2)
        })
    };
    assert!(
        wait_for(10, || all_delivered(&run(&master))),
        "{}",
        run(&master)
    );
    let view = run(&master);
    let s = &view["summary"];
    let context = || format!("summary: {s:#}\nmaster:\n{}", master.stderr_tail());

    // Both alerts, for the degraded worker.
    let alerts = s["alerts"].as_array().cloned().unwrap_or_default();
    for rule in ["communication_issues", "load_imbalance"] {
        assert!(
            alerts
                .iter()
                .any(|a| a["rule"] == rule && a["worker"] == slow_link.as_str()),
            "no {rule} alert for {slow_link}. {}",
            context()
        );
    }
    assert!(
        !alerts.iter().any(|a| a["rule"] == "worker_failures"),
        "no worker failed. {}",
        context()
    );
    // Each alert reached each webhook exactly once, keyed by its id.
    let got = hooks.got();
    for a in &alerts {
        let key = a["id"].as_str().expect("an id");
        for path in ["/alerts", "/slack"] {
            let n = got
                .iter()
                .filter(|r| {
                    r.path == path
                        && r.headers.get("idempotency-key").map(String::as_str) == Some(key)
                })
                .count();
            assert_eq!(n, 1, "{key} delivered {n} times to {path}: {got:#?}");
        }
    }
    assert_eq!(got.len(), alerts.len() * 2, "{got:#?}");
    let json: serde_json::Value = serde_json::from_str(
        &got.iter()
            .find(|r| r.path == "/alerts")
            .expect("a JSON delivery")
            .body,
    )
    .expect("a JSON body");
    assert_eq!(json["run_id"], id.as_str(), "{json}");
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    let slack: serde_json::Value = serde_json::from_str(
        &got.iter()
            .find(|r| r.path == "/slack")
            .expect("a Slack delivery")
            .body,
    )
    .expect("a JSON body");
    assert!(
        slack["text"].as_str().is_some_and(|t| t.contains(&id)),
        "{slack}"
    );

    // Measured per worker: the proxy's delay shows in the slow link's round trips, resources were
    // reported, and the shares are off plan as the alert says.
    let w = |addr: &str| {
        s["workers"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["address"] == addr).cloned())
            .unwrap_or_else(|| panic!("no worker {addr}. {}", context()))
    };
    let (f, sl) = (w(&fast.addr), w(&slow_link));
    assert!(
        sl["monitor"]["rtt_mean_ms"].as_f64().unwrap_or(0.0) >= 250.0,
        "{}",
        context()
    );
    assert!(
        sl["monitor"]["rtt_mean_ms"].as_f64() > f["monitor"]["rtt_mean_ms"].as_f64(),
        "{}",
        context()
    );
    for m in [&f["monitor"], &sl["monitor"]] {
        assert!(m["calls"].as_u64().unwrap_or(0) >= 5, "{}", context());
        assert!(
            m["resources"]["process_memory_bytes"].as_u64().unwrap_or(0) > 1_000_000,
            "{}",
            context()
        );
        assert!(
            m["resources"]["host_memory_total_bytes"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{}",
            context()
        );
        assert_eq!(m["planned_share_pct"].as_f64(), Some(50.0), "{}", context());
        assert!(
            m["health"]
                .as_array()
                .is_some_and(|h| h.iter().any(|c| c["state"] == "running")),
            "{}",
            context()
        );
    }
    // Its actual share, from the requests each worker counted, is off its planned half.
    let share = |w: &serde_json::Value| w["monitor"]["actual_share_pct"].as_f64().unwrap_or(-1.0);
    let counted = |w: &serde_json::Value| w["count"].as_f64().unwrap_or(0.0);
    let expected = counted(&sl) * 100.0 / (counted(&sl) + counted(&f));
    assert!((share(&sl) - expected).abs() < 0.01, "{}", context());
    assert!(share(&sl) < 50.0 * 0.7, "{}", context());
    assert!(
        f["count"].as_u64().unwrap_or(0) > 2 * sl["count"].as_u64().unwrap_or(0),
        "the slow path made the slow worker do less. {}",
        context()
    );
    // The requests the run counted are the ones the mock saw.
    let seen = mock_stats(&mock)["total"].as_u64().unwrap_or(0);
    assert_eq!(s["overall"]["count"].as_u64(), Some(seen), "{}", context());

    // Prometheus: per-worker gauges with worker labels.
    let (_, metrics) = http_get(&format!("http://{}/metrics", master.addr)).expect("/metrics");
    for name in [
        "perfornium_worker_control_rtt_ms",
        "perfornium_worker_control_calls_total",
        "perfornium_worker_process_memory_bytes",
        "perfornium_worker_host_cpu_percent",
    ] {
        for addr in [&fast.addr, &slow_link] {
            let series = format!("{name}{{run=\"{id}\",worker=\"{addr}\",region=\"default\"}} ");
            assert!(metrics.contains(&series), "no `{series}` in:\n{metrics}");
        }
    }
    let alert_series = format!(
        "perfornium_alerts_total{{run=\"{id}\",rule=\"load_imbalance\",worker=\"{slow_link}\"}} 1"
    );
    assert!(
        metrics.contains(&alert_series),
        "no `{alert_series}` in:\n{metrics}"
    );

    // Central logs: the workers' own records (the slot's `run started`), each with the run id, in
    // time order, beside the master's.
    let (code, logs) = http_get(&format!("http://{}/runs/{id}/logs", master.addr)).expect("logs");
    assert_eq!(code, 200, "{logs}");
    let records: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for addr in [&fast.addr, &slow_link] {
        assert!(
            records
                .iter()
                .any(|r| r["source"] == addr.as_str() && r["message"] == "run started"),
            "no `run started` from {addr} in:\n{logs}"
        );
    }
    assert!(
        records
            .iter()
            .any(|r| r["source"] == "master" && r["target"] == "communication"),
        "{logs}"
    );
    assert!(records.iter().all(|r| r["run_id"] == id.as_str()), "{logs}");
    let ts: Vec<f64> = records.iter().filter_map(|r| r["ts_ms"].as_f64()).collect();
    assert!(
        ts.windows(2).all(|p| p[0] <= p[1]),
        "not in time order:\n{logs}"
    );

    // Every load request carried the run id, as the mock recorded it.
    let recorded = get_json(&format!("http://{}/__recorded", mock.addr)).expect("/__recorded");
    let recorded = recorded.as_array().expect("a list");
    assert!(!recorded.is_empty());
    for r in recorded {
        assert_eq!(r["headers"]["x-correlation-id"], id.as_str(), "{r}");
    }

    // The bulk API's wire format (a receiver here, not Elasticsearch: none can be installed).
    let bulks = es.got();
    assert!(!bulks.is_empty(), "no bulk request");
    let mut docs = 0;
    for b in &bulks {
        assert_eq!(b.path, "/_bulk");
        assert_eq!(
            b.headers.get("content-type").map(String::as_str),
            Some("application/x-ndjson")
        );
        assert!(b.body.ends_with('\n'), "{}", b.body);
        let lines: Vec<serde_json::Value> = b
            .body
            .lines()
            .map(|l| serde_json::from_str(l).expect("NDJSON"))
            .collect();
        assert_eq!(lines.len() % 2, 0);
        for pair in lines.chunks(2) {
            let index = pair[0]["index"]["_index"]
                .as_str()
                .expect("an index action");
            // `{{date}}` is the record's UTC date, as its `@timestamp` (2026-11-29T...) says.
            let stamp = pair[1]["@timestamp"].as_str().expect("@timestamp");
            assert_eq!(
                index,
                format!("perfornium-{}", stamp[..10].replace('-', "."))
            );
            assert_eq!(pair[1]["run_id"], id.as_str());
            docs += 1;
        }
    }
    assert!(
        docs >= records.len() / 2,
        "{docs} documents shipped for {} records",
        records.len()
    );
    master.kill();
}

/// An alert recorded while its webhook refuses is sent by the next leader after the first is
/// killed, and taken once: the leader records alerts in raft before sending and marks them when a
/// webhook took them, and a new leader sends what is recorded and not marked.
#[test]
fn an_alert_recorded_before_a_leader_dies_is_delivered_once_by_the_next_leader() {
    let mock = mock(0);
    let mut c = Cluster::start();
    let hook = Receiver::start("{}");
    hook.open.store(false, std::sync::atomic::Ordering::SeqCst);
    let w1 = worker(None);
    let mut w2 = worker(None);
    let body = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, duration: 16s")
        .scenario("think_time: 50ms")
        .extra(&format!(
            "distributed:
  orchestration:
    heartbeat_interval: 1s
    failure_handling:
      worker_failure_threshold: 60
  fault_tolerance:
    worker_failures:
      detection_timeout: 2s
  monitoring:
    alerting:
      worker_failures: true
      webhooks:
        - {{ url: \"http://{}/hook\" }}
",
            hook.addr
        ))
        .submit_body(&[&w1, &w2]);
    let leader = c.agreed_leader(20);
    let id = c.submit(leader, &body);
    wait_pulled(&w2, 20);
    w2.kill();
    // Recorded (in every replica's copy of the record) and refused by the webhook so far.
    let alert_of = |v: &serde_json::Value| {
        v["summary"]["alerts"]
            .as_array()
            .and_then(|a| a.first().cloned())
    };
    assert!(
        wait_for(20, || c
            .run(leader, &id)
            .as_ref()
            .and_then(alert_of)
            .is_some()),
        "no alert recorded: {:?}\n{}",
        c.run(leader, &id),
        c.stderr_tails()
    );
    let alert = alert_of(&c.run(leader, &id).expect("a view")).expect("checked");
    assert_eq!(alert["rule"], "worker_failures", "{alert}");
    assert_eq!(
        alert["delivered"].as_array().map_or(0, |d| d.len()),
        0,
        "{alert}"
    );
    let key = alert["id"].as_str().expect("an id").to_string();
    assert!(hook.got().iter().all(|r| !r.taken));
    c.kill(leader);
    hook.open.store(true, std::sync::atomic::Ordering::SeqCst);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let delivered = |v: &serde_json::Value| {
        alert_of(v).is_some_and(|a| a["delivered"].as_array().map_or(0, |d| d.len()) == 1)
    };
    assert!(
        wait_for(40, || others
            .iter()
            .any(|&i| c.run(i, &id).as_ref().is_some_and(delivered))),
        "the next leader did not deliver the alert.\n{}",
        c.stderr_tails()
    );
    c.wait_phase(&others, &id, "finished", 60);
    let taken: Vec<Received> = hook.got().into_iter().filter(|r| r.taken).collect();
    assert_eq!(taken.len(), 1, "{taken:#?}");
    assert_eq!(taken[0].headers.get("idempotency-key"), Some(&key));
    let body: serde_json::Value = serde_json::from_str(&taken[0].body).expect("JSON");
    assert_eq!(body["id"], key.as_str());
    assert_eq!(body["rule"], "worker_failures");
}
