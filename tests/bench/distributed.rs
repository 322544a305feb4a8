//! Benchmarks of the distributed controller, run by hand (they are `#[ignore]`d and take ~3 minutes):
//!
//! ```sh
//! cargo test --release --test bench distributed -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Each writes its section of `bench/results/distributed.md`:
//! - synchronized start: 20 `perfornium distributed --sync-start` runs on 3 local workers; the skew
//!   each reports (max − min actual start, in the controller's clock), median and max;
//! - merging: what one second of a 100-worker run costs the controller on one core: decoding 100
//!   workers' `GET /metrics` bodies (JSON with compressed HDR histograms), merging each batch
//!   exactly once, and serializing the run record it saves every second.

use crate::support::*;
use perfornium::api::worker as api;
use perfornium::control::{plan::Strategy, submit, workers::WorkerAddr};
use perfornium::metrics::collector::Interval;
use perfornium::metrics::{Latency, StepStats};
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Replaces the `## {title}` section of the results file (or appends it).
fn write_section(title: &str, body: &str) {
    write_results_section(
        "distributed.md",
        "# Distributed controller benchmarks\n\nReproduce: `cargo test --release --test bench distributed -- --ignored --nocapture --test-threads 1`.\n",
        title,
        body,
    );
}

/// One synchronized run against a fresh mock: (the skew the run reports, the spread of the workers'
/// first requests as the mock saw them).
fn skew_round(list: &str, clock_sync: bool, i: usize) -> (f64, f64) {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "distributed:\n  orchestration:\n    synchronization:\n      start_barrier: true\n      clock_sync: {clock_sync}\n"
    );
    let file = yaml(&mock)
        .name("skew")
        .load("pattern: basic, virtual_users: 3, duration: 1s")
        .extra(&extra)
        .write(dir.path());
    let out = dir.path().join(format!("out{i}"));
    let res = run(&[
        "distributed",
        &file,
        "-w",
        list,
        "-s",
        "even",
        "--no-tui",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_merged_exactly_once(&s);
    let spread = first_request_spread(&mock, 3);
    (s["start_skew_ms"].as_f64().expect("skew"), spread)
}

#[test]
#[ignore]
fn sync_start_skew_over_20_runs() {
    // Worker clocks 0, +300 and -300 ms off the machine's: the controller must find and undo that.
    let ws = [
        skewed_worker("0"),
        skewed_worker("300"),
        skewed_worker("-300"),
    ];
    let list = worker_list(&[&ws[0], &ws[1], &ws[2]]);
    let mut reported = Vec::new();
    let mut truth = Vec::new();
    let mut raw = Vec::new();
    for i in 0..20 {
        let (r, t) = skew_round(&list, true, i);
        reported.push(r);
        truth.push(t);
        raw.push(skew_round(&list, false, i).1);
    }
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        let max = v.iter().cloned().fold(0.0, f64::max);
        (median(&mut v), max)
    };
    let (t_med, t_max) = stats(&truth);
    let (r_med, r_max) = stats(&reported);
    let (u_med, u_max) = stats(&raw);
    let verdict = if t_max < 2.0 {
        format!("Every compensated start landed within the 2 ms target (max {t_max:.3} ms).")
    } else {
        let over = truth.iter().filter(|&&t| t >= 2.0).count();
        format!(
            "{over} of {} compensated starts spread 2 ms or more (max {t_max:.3} ms).",
            truth.len()
        )
    };
    let list_of = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{s:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let body = format!(
        "20 rounds on one host, {}, release build; 3 workers whose clocks run 0, +300 and -300 ms off the \
         machine's (`worker --test-clock-offset-ms`), 3 VUs for 1 s, a fresh mock each run. Ground truth: the \
         mock's own timestamp of each worker's first request (workers name themselves in `x-perfornium-worker`); \
         skew = max − min of those arrivals, all workers being meant to start at the same instant. Each round runs \
         once with offset compensation (`clock_sync: true`, the default) and once without.\n\n\
         | | median (ms) | max (ms) |\n|---|---|---|\n\
         | first-request spread, compensated | {t_med:.3} | {t_max:.3} |\n\
         | first-request spread, not compensated | {u_med:.3} | {u_max:.3} |\n\
         | skew the run reports (its workers' own start reports through their offsets) | {r_med:.3} | {r_max:.3} |\n\
         | target | < 2 | |\n\n{verdict}\n\n\
         Compensated, every run: {}.\n\nNot compensated, every run: {}.\n\n\
         The host's 1-minute load average at the end: {}.\n",
        host_facts(),
        list_of(&truth),
        list_of(&raw),
        load_average(),
    );
    println!("{body}");
    write_section("Synchronized start skew", &body);
}

/// One worker's `GET /metrics` body for one second: 3 steps, ~`per_step` requests each.
fn batch(seq: u64, per_step: u64, seed: u64) -> String {
    let mut steps = Vec::new();
    for s in 0..3u64 {
        let mut st = StepStats::default();
        let mut lat = Latency::new();
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(s + seq);
        for _ in 0..per_step {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // 1 ms .. ~260 ms, skewed towards the low end like real latencies.
            let r = (x >> 40) as f64 / (1u64 << 24) as f64;
            lat.record_us(1_000 + (r * r * r * 260_000.0) as u64);
        }
        st.latency = lat;
        st.count = per_step;
        st.status.insert(200, per_step - per_step / 100);
        st.status.insert(500, per_step / 100);
        st.errors = per_step / 100;
        st.errors_by_kind.insert("http 500".into(), per_step / 100);
        steps.push(st);
    }
    let m = api::Metrics {
        run_id: Some("r".into()),
        phase: api::WorkerPhase::Running,
        started_at_ms: Some(1.0),
        batches: vec![Interval {
            seq,
            elapsed_s: seq as f64,
            steps,
            active_vus: 50,
            dropped: 0,
            arrivals: 0,
            target_arrivals: None,
        }],
        live: Default::default(),
    };
    serde_json::to_string(&m).unwrap()
}

#[test]
#[ignore]
fn merging_100_workers_per_second() {
    let workers: Vec<WorkerAddr> = (0..100)
        .map(|i| WorkerAddr {
            host: "10.0.0.1".into(),
            port: 8000 + i,
            capacity: 100,
            region: "default".into(),
            id: None,
            max_vus: None,
            max_rps: None,
        })
        .collect();
    let test = perfornium::config::from_str(
        "name: m\nglobal:\n  base_url: http://h\nload:\n  pattern: basic\n  virtual_users: 5000\n  duration: 60s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n      - name: b\n        path: /b\n      - name: c\n        path: /c\n",
    )
    .unwrap();
    let mut rec =
        submit::new_record("r".into(), test, &workers, Some(Strategy::Even), false).unwrap();
    let seconds = 30u64;
    let per_step = 1_000; // 3,000 req/s per worker, 300,000 req/s in all
    let bodies: Vec<Vec<String>> = (1..=seconds)
        .map(|s| (0..100).map(|w| batch(s, per_step, w)).collect())
        .collect();
    let body_bytes = bodies[0].iter().map(String::len).sum::<usize>();
    let (mut merge_ms, mut save_ms) = (Vec::new(), Vec::new());
    let mut record_bytes = 0;
    for (s, second) in bodies.iter().enumerate() {
        let t = Instant::now();
        for (w, body) in second.iter().enumerate() {
            let m: api::Metrics = serde_json::from_str(body).unwrap();
            for iv in &m.batches {
                assert!(rec.merge_batch(w, iv));
            }
        }
        rec.close_seconds(s as u64);
        merge_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        record_bytes = serde_json::to_vec(&rec).unwrap().len();
        save_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let merged: u64 = rec.merged_steps().iter().map(|s| s.count).sum();
    assert_eq!(
        merged,
        100 * 3 * per_step * seconds,
        "every batch merged once"
    );
    let m = median(&mut merge_ms);
    let sv = median(&mut save_ms);
    let body = format!(
        "100 workers × 3 steps, each worker sending one batch a second of 3,000 requests (300,000 req/s \
         in all), {seconds} s, release build, one thread. Per second of the run:\n\n\
         | | ms per second (median) | % of one core |\n|---|---|---|\n\
         | decode 100 `GET /metrics` bodies ({:.0} KiB of JSON with deflated HDR histograms) and merge each batch once | {m:.2} | {:.2} % |\n\
         | serialize the run record saved every second ({:.0} KiB by the end) | {sv:.2} | {:.2} % |\n\
         | total | {:.2} | {:.2} % |\n| target | | < 5 % |\n\n\
         The merge is exact (HDR histograms add bucket by bucket; the test checks the merged count). \
         Histograms are written in the standard HDR V2 deflate layout at zlib's fast level. The \
         record grows with the per-worker histograms and the timeline; on the HA master it is also \
         replicated, which this does not include (controller.md measures the whole save path).\n",
        body_bytes as f64 / 1024.0,
        m / 10.0,
        record_bytes as f64 / 1024.0,
        sv / 10.0,
        m + sv,
        (m + sv) / 10.0,
    );
    println!("{body}");
    write_section("Merging 100 workers", &body);
    assert!(m < 1000.0);
}
