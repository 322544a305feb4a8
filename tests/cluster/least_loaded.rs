//! `load_balancing.algorithm: least_loaded` on real processes: a pool run on two registered
//! workers is planned by the host CPU samples their renewals carried. The test watches the pool
//! (`GET /workers`) the whole time the run is submitted, so it knows every sample the master held;
//! the run's plan event must name, for each worker, one of those samples, and the shares the run
//! records must equal what the planner (`control::balance::least_loaded`, a pure function) makes of
//! exactly those samples. Each worker's count equals the mock's own `by_worker`.

use super::registry::{pool, registering_worker, up};
use crate::support::*;
use perfornium::config::balancing::Saturation;
use perfornium::control::balance::{least_loaded, Input};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn run_view(master: &Proc, id: &str) -> Value {
    get_json(&format!("http://{}/runs/{id}", master.addr)).unwrap_or_default()
}

/// `(id, at_ms, host_cpu_pct as text)` of every sample seen in the pool.
type Seen = BTreeSet<(String, u64, String)>;

fn samples_now(addr: &str) -> Seen {
    pool(addr)
        .iter()
        .filter_map(|w| {
            let r = &w["resources"];
            Some((
                w["id"].as_str()?.to_string(),
                r["at_ms"].as_u64()?,
                r["host_cpu_pct"].as_f64()?.to_string(),
            ))
        })
        .collect()
}

/// The value after `key=` in `text` (up to the next space or `;`).
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    let at = text
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in {text}"));
    let rest = &text[at + key.len() + 1..];
    rest.split([' ', ';']).next().unwrap_or_default()
}

#[test]
fn least_loaded_plans_a_pool_run_by_the_samples_the_pool_held() {
    let dir = tempfile::tempdir().unwrap();
    let master = one_replica_master(dir.path());
    let mock = mock(10);
    let a = registering_worker(&master.addr, "l-a", &["--max-vus", "8"]);
    let b = registering_worker(&master.addr, "l-b", &["--max-vus", "20"]);
    assert!(
        wait_for(10, || up(&master.addr) == ["l-a", "l-b"]),
        "{:?}",
        up(&master.addr)
    );
    // Watch the pool from before the submission until after it.
    let seen = Arc::new(Mutex::new(Seen::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, stop, addr) = (seen.clone(), stop.clone(), master.addr.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let now = samples_now(&addr);
                seen.lock().unwrap().extend(now);
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
        })
    };
    assert!(wait_for(5, || !seen.lock().unwrap().is_empty()));
    let text = yaml(&mock)
        .name("least-loaded")
        .load("pattern: basic, virtual_users: 12, duration: 2s")
        .step("{ name: list, path: /users }")
        .extra("distributed:\n  load_balancing:\n    algorithm: least_loaded\n")
        .text();
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", master.addr),
        None,
        Some(&serde_json::json!({ "test_yaml": text }).to_string()),
    )
    .expect("POST /runs");
    assert_eq!(code, 201, "{resp}");
    let id = serde_json::from_str::<Value>(&resp).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // One more listing after the plan, then stop watching.
    seen.lock().unwrap().extend(samples_now(&master.addr));
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let seen = seen.lock().unwrap().clone();

    let view = run_view(&master, &id);
    let event = view["summary"]["events"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(event.starts_with("least_loaded plan (T=90"), "{view}");
    let parts: Vec<&str> = event.split_once("): ").unwrap().1.split("; ").collect();
    assert_eq!(parts.len(), 2, "{event}");
    let mut inputs = Vec::new();
    for (part, (id, cap)) in parts.iter().zip([("l-a", 8u64), ("l-b", 20)]) {
        assert!(part.starts_with(&format!("{id} ")), "{event}");
        let (at_ms, cpu) = (field(part, "at_ms"), field(part, "host_cpu"));
        let held = (
            id.to_string(),
            at_ms.parse::<u64>().unwrap(),
            cpu.to_string(),
        );
        assert!(
            seen.contains(&held),
            "the plan's sample {held:?} is one the pool held: {seen:?}"
        );
        inputs.push(Input {
            capacity: cap,
            room: Some(cap),
            host_cpu_pct: Some(cpu.parse().unwrap()),
            host_memory_pct: None,
        });
    }
    let sat = Saturation {
        cpu_pct: 90.0,
        memory_pct: None,
    };
    let want = least_loaded(12, &inputs, sat).unwrap();
    eprintln!("least_loaded plan: {event}");

    let view = {
        let mut last = Value::Null;
        assert!(
            wait_for(30, || {
                last = run_view(&master, &id);
                matches!(
                    last["phase"].as_str(),
                    Some("finished" | "failed" | "stopped")
                )
            }),
            "run did not end: {last}\n{}",
            master.stderr_tail()
        );
        last
    };
    assert_eq!(view["phase"], "finished", "{view}");
    let rows = view["summary"]["workers"].as_array().unwrap();
    let planned: Vec<u64> = rows
        .iter()
        .map(|r| r["planned"].as_f64().unwrap() as u64)
        .collect();
    assert_eq!(
        planned, want.shares,
        "the run's shares are the planner's: {event}"
    );
    assert_eq!(planned.iter().sum::<u64>(), 12);
    // A worker planned 0 (its host at or over 90 % CPU) sends nothing: the mock has no entry.
    let stats = mock_stats(&mock);
    for (k, w) in [&a, &b].iter().enumerate() {
        let served = stats["by_worker"][&w.addr].as_u64().unwrap_or(0);
        assert_eq!(rows[k]["count"].as_u64().unwrap_or(0), served, "{}", w.addr);
    }
    assert_eq!(view["summary"]["overall"]["count"], stats["total"]);
}

/// Workers listed with `-w` (no registration): `perfornium distributed` reads each one's sample
/// from its `GET /resources` when it plans, and the plan event states a sample for both (none is
/// "counted idle"); the shares the summary records are the event's, and each worker's count equals
/// the mock's `by_worker`.
#[test]
fn least_loaded_reads_listed_workers_samples_from_their_resources_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let file = yaml(&mock)
        .name("least-loaded-listed")
        .load("pattern: basic, virtual_users: 5, iterations: 4")
        .extra("distributed:\n  load_balancing:\n    algorithm: least_loaded\n")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    let event = s["events"][0].as_str().unwrap_or_default().to_string();
    assert!(event.starts_with("least_loaded plan"), "{s}");
    let parts: Vec<&str> = event.split_once("): ").unwrap().1.split("; ").collect();
    let rows = s["workers"].as_array().unwrap();
    let stats = mock_stats(&mock);
    for (k, (w, part)) in [&a, &b].iter().zip(&parts).enumerate() {
        assert!(part.starts_with(&format!("{} ", w.addr)), "{event}");
        let cpu: f64 = field(part, "host_cpu")
            .parse()
            .unwrap_or_else(|_| panic!("a sample read from {}: {event}", w.addr));
        assert!((0.0..=100.0).contains(&cpu), "{event}");
        let share: u64 = field(part, "share").parse().unwrap();
        assert_eq!(
            rows[k]["planned"].as_f64().unwrap() as u64,
            share,
            "{event}"
        );
        let served = stats["by_worker"][&w.addr].as_u64().unwrap_or(0);
        assert_eq!(rows[k]["count"].as_u64().unwrap_or(0), served, "{}", w.addr);
        assert_eq!(served, share * 4, "4 iterations per VU of its share");
    }
    assert_eq!(stats["total"], 20);
}
