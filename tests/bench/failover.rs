//! Failover benchmark (not part of the normal suite): 10 times, a run is submitted to a 3-replica
//! cluster, the leader is SIGKILLed mid-run, and we measure the time from the kill to the first metrics
//! pull the workers see from the new leader, and the requests the final report misses compared with
//! the mock's own count. Writes `bench/results/failover.md`.
//!
//! Run: `cargo test --release --test bench failover -- --ignored --nocapture`

use crate::support::*;
use std::time::Instant;

#[test]
#[ignore]
fn failover_benchmark() {
    let rounds = 10;
    let mut c = Cluster::start();
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let mut rows = Vec::new();
    for round in 1..=rounds {
        let before = mock_stats(&mock)["total"].as_u64().unwrap();
        // No `strategy`: the default (capacity-based) split, as before.
        let mut body: serde_json::Value = serde_json::from_str(
            &yaml(&mock)
                .name(&format!("failover-{round}"))
                .load("pattern: basic, virtual_users: 4, duration: 6s")
                .submit_body(&[&a, &b]),
        )
        .unwrap();
        body.as_object_mut().unwrap().remove("strategy");
        let body = body.to_string();
        let leader = c.wait_leader(20).expect("leader");
        let (code, resp) = call(
            "POST",
            &format!("http://{}/runs", c.addrs[leader]),
            None,
            Some(&body),
        )
        .unwrap();
        assert_eq!(code, 201, "{resp}");
        let id = serde_json::from_str::<serde_json::Value>(&resp).unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(wait_for(20, || worker_status(&a)["phase"] == "running"
            && worker_status(&b)["phase"] == "running"));
        c.wait_merged(leader, &id, 2, 20);
        let killed_at = now_ms();
        let t0 = Instant::now();
        c.kill(leader);
        let resumed = wait_for(30, || {
            worker_status(&a)["last_poll_ms"].as_u64().unwrap_or(0) > killed_at
                && worker_status(&b)["last_poll_ms"].as_u64().unwrap_or(0) > killed_at
        });
        let took = t0.elapsed().as_secs_f64();
        assert!(resumed, "round {round}: no new leader drove the workers");
        let mut finished = None;
        wait_for(60, || {
            finished = (0..3)
                .filter_map(|i| c.run(i, &id))
                .find(|v| v["phase"] == "finished");
            finished.is_some()
        });
        let view = finished.expect("run finished");
        let counted = view["summary"]["overall"]["count"].as_u64().unwrap();
        let served = mock_stats(&mock)["total"].as_u64().unwrap() - before;
        println!(
            "round {round}: driving again after {took:.2}s, counted {counted}, served {served}"
        );
        rows.push((took, counted, served));
        c.start_node(leader);
        wait_for(20, || {
            c.view(leader).is_some_and(|v| v["leader_id"].is_u64())
        });
    }
    let mut times: Vec<f64> = rows.iter().map(|r| r.0).collect();
    times.sort_by(f64::total_cmp);
    let median = (times[rounds / 2 - 1] + times[rounds / 2]) / 2.0;
    let missing: i64 = rows.iter().map(|r| r.2 as i64 - r.1 as i64).sum();
    let mut md = format!(
        "# Failover benchmark\n\n`cargo test --release --test bench failover -- --ignored`: 3 master replicas, 2 workers and the mock on 127.0.0.1 (2 cores); {rounds} runs of 4 VUs for 6 s; in each, the leader is SIGKILLed once it has merged two batches from each worker (about 2 s after they start), and the killed replica is restarted afterwards.\n\n\
        Raft timeouts: heartbeat 100 ms, election timeout 500–1000 ms (openraft's defaults are 50 / 150–300 ms; we chose longer ones so an fsync or a busy core on a 2-core machine does not trigger needless elections, and the failover still lands well under the 3 s target: openraft 0.9 fails over in about `election_timeout_max` + a random `[min, max)` + one tick).\n\n\
        Time to driving again = from the kill to the first metrics pull both workers receive from the new leader (the driver polls every second, so up to 1 s of it is the poll period).\n\n\
        | | value |\n|---|---|\n| median time to driving again | {median:.2} s |\n| max | {:.2} s |\n| missing requests (mock count − report count, all rounds) | {missing} |\n\n| round | time to driving again (s) | counted | served by the mock |\n|---|---|---|---|\n",
        times.last().unwrap()
    );
    for (i, (t, counted, served)) in rows.iter().enumerate() {
        md.push_str(&format!("| {} | {t:.2} | {counted} | {served} |\n", i + 1));
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results/failover.md");
    std::fs::write(&path, md).unwrap();
    assert_eq!(missing, 0, "requests were lost across failovers");
}
