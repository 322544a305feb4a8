//! Requests in flight when a run ends are counted: every request whose bytes reached the target
//! is in the run's totals, whether the run ends at its deadline, by a stop (Ctrl-C), on the open
//! model's clock, through the fast HTTP/1.1 path or through hyper. The target is `perfornium mock`,
//! whose `/delay/{ms}` route holds each response past the run's end; its own count of requests
//! served is the reference. A request whose connection ends before its response is one failed
//! request, never sent twice (a server that closes after reading a request may have acted on it).

use crate::support::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Two scenarios of one slow step: plain (the fast path), and with a `Connection` header, which
/// only hyper implements (the general path).
fn both_paths(mock: &Proc, load: &str, delay_ms: u64) -> Yaml {
    yaml(mock).load(load).extra(&format!(
        "  - name: general\n    steps:\n      - name: slow_general\n        path: /delay/{delay_ms}\n        headers: {{ Connection: keep-alive }}\n"
    ))
    .steps(&format!("      - name: slow_fast\n        path: /delay/{delay_ms}\n"))
}

/// The run's own count, the mock's, and the run's count per step.
fn counts(out: &std::path::Path, mock: &Proc) -> (u64, u64, Vec<u64>) {
    let s = summary(out);
    let steps = s["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|st| st["count"].as_u64().expect("a count"))
        .collect();
    (
        s["overall"]["count"].as_u64().expect("a count"),
        mock_stats(mock)["total"].as_u64().expect("a total"),
        steps,
    )
}

#[test]
fn requests_in_flight_at_the_deadline_are_counted_on_both_http_paths() {
    // Each of the 4 VUs sends one request at once; the mock answers 1.5 s later, after the 1 s
    // deadline, and the run waits for those answers.
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = both_paths(
        &mock,
        "pattern: basic, virtual_users: 4, duration: 1s",
        1500,
    )
    .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let (counted, served, steps) = counts(&out, &mock);
    assert_eq!(counted, served, "every request served is counted");
    assert_eq!(steps, [2, 2], "2 VUs per path, one request each");
}

#[test]
fn arrivals_in_flight_at_the_deadline_are_counted() {
    // 4 arrivals in 1 s, each held 1.5 s: all of them are in flight when the schedule ends.
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = both_paths(
        &mock,
        "pattern: arrivals, rate: 4, duration: 1s, max_virtual_users: 8",
        1500,
    )
    .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let (counted, served, _) = counts(&out, &mock);
    assert_eq!(
        (counted, served),
        (4, 4),
        "every arrival's request, counted once"
    );
}

#[test]
fn requests_in_flight_at_a_stop_are_counted() {
    // A 30 s run stopped with Ctrl-C while every VU waits for a held response: the VUs make no new
    // request, the held ones finish and are counted, and the run ends long before 30 s.
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = both_paths(
        &mock,
        "pattern: basic, virtual_users: 4, duration: 30s",
        1000,
    )
    .write(dir.path());
    let out = dir.path().join("out");
    let child = start(&["run", &file, "-o", out.to_str().unwrap()]);
    // The first answer comes after 1 s; the VUs' other requests are held then.
    assert!(
        wait_for(20, || mock_stats(&mock)["total"].as_u64().unwrap_or(0) >= 1),
        "no request served; the run's stderr:\n{}",
        child.stderr_tail()
    );
    let stopped = Instant::now();
    signal("-INT", child.pid());
    let res = child.wait_with_deadline(Duration::from_secs(20));
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "the stop ended the run"
    );
    let (counted, served, _) = counts(&out, &mock);
    assert_eq!(counted, served, "every request served is counted");
    assert!(
        counted >= 4,
        "the 4 first requests, held when the stop came, were counted: {counted}"
    );
}

/// A server on a real socket that reads requests and counts each it reads, answers the first
/// request of every connection (kept alive), and closes the connection after reading the second
/// without answering it. Returns its address and its count.
fn closing_after_the_second_request() -> (String, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let read = Arc::new(AtomicU64::new(0));
    let count = read.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                for answer in [true, false] {
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.clear();
                    count.fetch_add(1, Ordering::SeqCst);
                    if answer {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    }
                }
                // Dropping `s` closes the connection with the second request unanswered.
            });
        }
    });
    (addr, read)
}

#[test]
fn a_request_whose_connection_closes_before_the_response_is_one_failed_request() {
    // One VU, two iterations on one kept-alive connection: the server reads the second request
    // and closes. Sending it again on a new connection would make the server see 3 requests for
    // the run's 2.
    let (addr, read) = closing_after_the_second_request();
    let dir = tempfile::tempdir().unwrap();
    let file = Yaml::at(&format!("http://{addr}"))
        .load("pattern: basic, virtual_users: 1, iterations: 2")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    let s = summary(&out);
    assert_eq!(
        (
            s["overall"]["count"].as_u64(),
            s["overall"]["errors"].as_u64()
        ),
        (Some(2), Some(1)),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(
        read.load(Ordering::SeqCst),
        2,
        "the server read each request of the run once"
    );
}
