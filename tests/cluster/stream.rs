//! `GET /runs/{id}/stream`: the live feed of merged figures as Server-Sent Events, read with a raw
//! ureq body reader. The feed's totals are checked against the final summary and the mock's own
//! count; a reconnect with `Last-Event-ID` must get exactly the missing events, from any replica.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

/// One SSE event as read off the wire.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<String>,
    data: serde_json::Value,
}

/// Reads `url`'s event stream (after `last_id` when given) until `end` or `take` figures events,
/// within `secs`. Returns the events in order.
fn read_stream(url: &str, last_id: Option<u64>, take: Option<usize>, secs: u64) -> Vec<Sse> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(secs)))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(n) = last_id {
        req = req.header("Last-Event-ID", n.to_string());
    }
    let resp = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream")));
    let reader = BufReader::new(resp.into_body().into_reader());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    let (mut event, mut id, mut data) = (String::new(), None, String::new());
    for line in reader.lines() {
        assert!(
            Instant::now() < deadline,
            "the stream did not end within {secs} s: {out:?}"
        );
        let line = line.expect("a line of the stream");
        if line.is_empty() {
            if !data.is_empty() {
                let e = Sse {
                    event: std::mem::take(&mut event),
                    id: id.take(),
                    data: serde_json::from_str(&data).expect("JSON data"),
                };
                data.clear();
                let end = e.event == "end";
                out.push(e);
                let figures = out.iter().filter(|e| e.event == "figures").count();
                if end || take.is_some_and(|n| figures >= n) {
                    break;
                }
            }
            continue;
        }
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    out
}

fn figures(events: &[Sse]) -> Vec<&Sse> {
    events.iter().filter(|e| e.event == "figures").collect()
}

fn sum(events: &[&Sse], f: impl Fn(&serde_json::Value) -> u64) -> u64 {
    events.iter().map(|e| f(&e.data)).sum()
}

const RESULTS: &str = "distributed:\n  results:\n    aggregation:\n      real_time: true\n      interval: 1s\n      streaming:\n        enabled: true\n        protocol: sse\n";

#[test]
fn the_stream_adds_up_to_the_summary_and_resumes_from_last_event_id_on_any_replica() {
    let c = Cluster::start();
    let leader = c.agreed_leader(20);
    let follower = (leader + 1) % 3;
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let body = yaml(&mock)
        .name("stream")
        .load("pattern: basic, virtual_users: 4, duration: 4s")
        .extra(RESULTS)
        .submit_body(&[&a, &b]);
    let id = c.submit(leader, &body);

    // A client follows the run from a follower, and drops off after two events.
    let first = read_stream(
        &format!("http://{}/runs/{id}/stream", c.addrs[follower]),
        None,
        Some(2),
        30,
    );
    let first = figures(&first).into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(first.len(), 2, "{first:?}");
    // It comes back on another replica with the last id it saw and reads to the end.
    let rest = read_stream(
        &format!("http://{}/runs/{id}/stream", c.addrs[(leader + 2) % 3]),
        Some(2),
        None,
        30,
    );
    let view = c.wait_phase(&[0, 1, 2], &id, "finished", 30);
    let end = rest.last().expect("an end event").clone();
    assert_eq!(end.event, "end", "{rest:?}");
    assert_eq!(end.data["phase"], "finished");

    // The whole stream, read again from the leader after the run.
    let whole = read_stream(
        &format!("http://{}/runs/{id}/stream", c.addrs[leader]),
        None,
        None,
        10,
    );
    let all = figures(&whole);
    let n = all.len() as u64;
    assert!(n >= 3, "a 4 s run gives one event per second: {whole:?}");
    for (i, e) in all.iter().enumerate() {
        assert_eq!(
            e.id.as_deref(),
            Some((i + 1).to_string().as_str()),
            "ids 1, 2, 3... with no gap"
        );
        assert_eq!(e.data["seq"], i as u64 + 1);
        assert_eq!(e.data["run_id"], id.as_str());
    }
    // Reconnecting with Last-Event-ID 2 got exactly events 3..n: no gap, no repeat.
    let mut resumed: Vec<Sse> = first.clone();
    resumed.extend(figures(&rest).into_iter().cloned());
    let whole_figures: Vec<Sse> = all.iter().map(|e| (*e).clone()).collect();
    assert_eq!(
        resumed, whole_figures,
        "first two + resumed = the whole stream"
    );

    // The totals: the feed = the final summary = the mock's own count.
    let count = view["summary"]["overall"]["count"].as_u64().unwrap();
    let errors = view["summary"]["overall"]["errors"].as_u64().unwrap();
    assert!(count > 0);
    assert_eq!(sum(&all, |d| d["requests"].as_u64().unwrap()), count);
    assert_eq!(sum(&all, |d| d["errors"].as_u64().unwrap()), errors);
    assert_eq!(mock_stats(&mock)["total"].as_u64(), Some(count));
    assert_eq!(end.data["requests"].as_u64(), Some(count));
    assert_eq!(end.data["last_seq"].as_u64(), Some(n));
    // Per step and per worker, each adds up to the summary's figure.
    let step_sum = sum(&all, |d| d["steps"][0]["requests"].as_u64().unwrap());
    assert_eq!(step_sum, count);
    assert_eq!(all[0].data["steps"][0]["step"], "list");
    for w in 0..2 {
        let addr = view["summary"]["workers"][w]["address"].as_str().unwrap();
        let mine: u64 = all
            .iter()
            .map(|e| {
                let ws = e.data["workers"].as_array().unwrap();
                let f = ws
                    .iter()
                    .find(|x| x["worker"] == addr)
                    .expect("every worker in every event");
                f["requests"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(
            Some(mine),
            view["summary"]["workers"][w]["count"].as_u64(),
            "worker {addr}"
        );
    }
    // Percentiles and rates come with each event (all metrics by default).
    let busy = all
        .iter()
        .find(|e| e.data["requests"].as_u64() > Some(0))
        .unwrap();
    assert!(
        busy.data["p95_ms"].as_f64().unwrap() >= 2.0,
        "the mock waits 2 ms: {:?}",
        busy.data
    );
    assert!(busy.data["rps"].as_f64().unwrap() > 0.0);
    assert!(busy.data["active_vus"].is_u64());
}

#[test]
fn a_run_without_streaming_is_refused_by_name_and_a_bad_last_event_id_too() {
    let c = Cluster::start();
    let leader = c.agreed_leader(20);
    let mock = mock(0);
    let a = worker(None);
    let plain = yaml(&mock)
        .name("plain")
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .submit_body(&[&a]);
    let id = c.submit(leader, &plain);
    let (code, text) = http_get(&format!("http://{}/runs/{id}/stream", c.addrs[leader])).unwrap();
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("streaming.enabled"), "{text}");
    let (code, _) = http_get(&format!("http://{}/runs/nope/stream", c.addrs[leader])).unwrap();
    assert_eq!(code, 404);
    c.wait_phase(&[leader], &id, "finished", 30);

    let streamed = yaml(&mock)
        .name("streamed")
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .extra(RESULTS)
        .submit_body(&[&a]);
    let id = c.submit(leader, &streamed);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent
        .get(&format!("http://{}/runs/{id}/stream", c.addrs[leader]))
        .header("Last-Event-ID", "x7")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("Last-Event-ID"));
}

#[test]
fn across_a_leader_kill_the_stream_resumes_on_a_survivor_without_gap_or_repeat() {
    let mut c = Cluster::start();
    let leader = c.agreed_leader(20);
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let body = yaml(&mock)
        .name("stream-failover")
        .load("pattern: basic, virtual_users: 4, duration: 5s")
        .extra(RESULTS)
        .submit_body(&[&a, &b]);
    let id = c.submit(leader, &body);
    // Two events from a follower; then the leader dies mid-run.
    let first = read_stream(
        &format!("http://{}/runs/{id}/stream", c.addrs[f1]),
        None,
        Some(2),
        30,
    );
    let first: Vec<Sse> = figures(&first).into_iter().cloned().collect();
    assert_eq!(first.len(), 2);
    c.kill(leader);
    // The client comes back on the other survivor with the last id it saw.
    let rest = read_stream(
        &format!("http://{}/runs/{id}/stream", c.addrs[f2]),
        Some(2),
        None,
        60,
    );
    let view = c.wait_phase(&[f1, f2], &id, "finished", 60);
    let end = rest.last().expect("an end event");
    assert_eq!(end.event, "end", "{rest:?}");
    let mut all = first.clone();
    all.extend(figures(&rest).into_iter().cloned());
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.data["seq"], i as u64 + 1, "no gap, no repeat: {all:?}");
    }
    let count = view["summary"]["overall"]["count"].as_u64().unwrap();
    let streamed: u64 = all
        .iter()
        .map(|e| e.data["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        streamed, count,
        "the feed adds up to the summary across the failover"
    );
    assert_eq!(mock_stats(&mock)["total"].as_u64(), Some(count));
    assert_eq!(end.data["last_seq"].as_u64(), Some(all.len() as u64));
}

#[test]
fn perfornium_distributed_serves_the_stream_from_its_embedded_master() {
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("embedded-stream")
        .load("pattern: basic, virtual_users: 2, duration: 3s")
        .extra(RESULTS)
        .write(dir.path());
    let out = dir.path().join("out");
    let proc = start(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "--stream",
        "127.0.0.1:0",
        "-o",
        out.to_str().unwrap(),
    ]);
    let mut url = String::new();
    let said = wait_for(20, || {
        let tail = proc.stderr_tail();
        match tail.lines().find_map(|l| l.split("live feed: ").nth(1)) {
            Some(u) => {
                url = u.trim().to_string();
                true
            }
            None => false,
        }
    });
    assert!(said, "no `live feed:` line: {}", proc.stderr_tail());
    let events = read_stream(&url, None, None, 30);
    let res = proc.wait_with_deadline(RUN_DEADLINE);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let end = events.last().expect("an end event");
    assert_eq!(end.event, "end", "{events:?}");
    let all = figures(&events);
    let count = summary(&out)["overall"]["count"].as_u64().unwrap();
    assert!(count > 0);
    assert_eq!(sum(&all, |d| d["requests"].as_u64().unwrap()), count);
    assert_eq!(mock_stats(&mock)["total"].as_u64(), Some(count));
    assert_eq!(end.data["last_seq"].as_u64(), Some(all.len() as u64));
}

#[test]
fn stream_flag_without_a_streamed_feed_is_refused_before_the_run() {
    let mock = mock(0);
    let a = worker(None);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("no-feed")
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .write(dir.path());
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &a.addr,
        "--stream",
        "127.0.0.1:0",
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{stderr}");
    assert!(stderr.contains("streaming.enabled: true"), "{stderr}");
    assert_eq!(mock_stats(&mock)["total"], 0, "no load ran");
}

/// Reads the feed over a WebSocket (`ws://ADDR/runs/ID/stream?last_event_id=N`) until `end` or
/// `take` figures messages; returns the JSON messages in order.
fn read_ws(url: &str, take: Option<usize>, secs: u64) -> Vec<serde_json::Value> {
    let (mut socket, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_mut() {
        s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no end within {secs} s: {out:?}");
        match socket
            .read()
            .unwrap_or_else(|e| panic!("{url}: {e} after {out:?}"))
        {
            tungstenite::Message::Text(t) => {
                let m: serde_json::Value = serde_json::from_str(&t).expect("JSON frame");
                let end = m["event"] == "end";
                out.push(m);
                let n = out.iter().filter(|m| m["event"] == "figures").count();
                if end || take.is_some_and(|k| n >= k) {
                    return out;
                }
            }
            tungstenite::Message::Close(_) => return out,
            _ => {}
        }
    }
}

#[test]
fn the_websocket_stream_sends_the_same_figures_and_resumes_from_last_event_id() {
    let c = Cluster::start();
    let leader = c.agreed_leader(20);
    let follower = (leader + 1) % 3;
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let body = yaml(&mock)
        .name("ws")
        .load("pattern: basic, virtual_users: 2, duration: 3s")
        .extra(&RESULTS.replace("protocol: sse", "protocol: websocket"))
        .submit_body(&[&a, &b]);
    let id = c.submit(leader, &body);
    let first = read_ws(
        &format!("ws://{}/runs/{id}/stream", c.addrs[follower]),
        Some(1),
        30,
    );
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["id"], 1);
    let rest = read_ws(
        &format!("ws://{}/runs/{id}/stream?last_event_id=1", c.addrs[leader]),
        None,
        30,
    );
    let view = c.wait_phase(&[0, 1, 2], &id, "finished", 30);
    let end = rest.last().unwrap();
    assert_eq!(end["event"], "end", "{rest:?}");
    let mut all = first.clone();
    all.extend(rest.iter().filter(|m| m["event"] == "figures").cloned());
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m["id"], i as u64 + 1, "no gap, no repeat: {all:?}");
        assert_eq!(m["data"]["seq"], i as u64 + 1);
    }
    let count = view["summary"]["overall"]["count"].as_u64().unwrap();
    let streamed: u64 = all
        .iter()
        .map(|m| m["data"]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(streamed, count);
    assert_eq!(mock_stats(&mock)["total"].as_u64(), Some(count));
    assert_eq!(end["data"]["last_seq"].as_u64(), Some(all.len() as u64));
    // A run streamed over WebSocket answers a plain GET (SSE) with the reason.
    let (code, text) = http_get(&format!("http://{}/runs/{id}/stream", c.addrs[leader])).unwrap();
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("WebSocket"), "{text}");
}
