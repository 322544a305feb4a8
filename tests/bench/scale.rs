//! The control plane at scale (issue 19 §3): a 3-replica master cluster (separate processes)
//! drives N simulated workers served over HTTP by this test process (the controller bench's fakes:
//! one batch a second of 3 steps with their HDR histograms). Over the middle of the run we read from
//! `/proc` the leader's CPU time and bytes written (sled's log, state and snapshots, with their
//! fsyncs), each follower's bytes written (its copy of the log and state: what replication costs it),
//! and time `GET /runs/{id}` on the leader once a second (what the console
//! polls). The window is cut in two halves, so a cost that grows with the run's length shows as a
//! late half dearer than the early one. Each size is measured twice in one run: saving every record
//! whole (the master started with `PERFORNIUM_BENCH_WHOLE_RECORDS`, the save path before parts) and
//! in parts (the default).
//!
//! Full version (writes `bench/results/scale.md`):
//! `SCALE_WORKERS=100,1000 SCALE_SECONDS=40 cargo test --release --test bench scale -- --ignored --nocapture`

use super::controller::{fake_workers, usage, PER_STEP};
use crate::support::*;
use perfornium::master::store::WHOLE_RECORDS_ENV;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One replica's counters at one instant.
#[derive(Clone, Copy)]
struct Sample {
    cpu_s: f64,
    written: u64,
}

fn sample(pid: u32) -> Sample {
    let (cpu_s, written) = usage(pid);
    Sample { cpu_s, written }
}

/// What one measurement found.
pub(crate) struct Scale {
    pub workers: usize,
    pub whole: bool,
    pub window_s: f64,
    pub leader_cpu_pct: f64,
    pub leader_written_per_s: f64,
    pub early_written_per_s: f64,
    pub late_written_per_s: f64,
    pub follower_written_per_s: f64,
    /// `GET /runs/{id}` on the leader, each poll's wall time in ms (sorted).
    pub console_ms: Vec<f64>,
    pub counted: u64,
    pub expected: u64,
}

impl Scale {
    /// Bytes the leader wrote per simulated worker per second.
    pub fn per_worker_written(&self) -> f64 {
        self.leader_written_per_s / self.workers as f64
    }

    pub fn console_p50(&self) -> f64 {
        quantile(&self.console_ms, 0.5)
    }

    pub fn console_max(&self) -> f64 {
        self.console_ms.last().copied().unwrap_or(0.0)
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Drives a `seconds`-long run on `n` simulated workers and measures the middle of it; `whole`
/// starts the masters saving every record whole.
pub(crate) fn measure(n: usize, seconds: u64, whole: bool) -> Scale {
    let (_rt, addrs) = fake_workers(n, seconds);
    // The masters inherit the variable; set only here, and this bench runs alone (`--ignored`, a
    // filter) or only ever unset (the CI-sized test).
    if whole {
        std::env::set_var(WHOLE_RECORDS_ENV, "1");
    }
    let c = Cluster::start();
    if whole {
        std::env::remove_var(WHOLE_RECORDS_ENV);
    }
    let leader = c.agreed_leader(20);
    let workers: Vec<serde_json::Value> = addrs
        .iter()
        .map(|a| {
            let (h, p) = a.split_once(':').unwrap();
            serde_json::json!({"host": h, "port": p.parse::<u16>().unwrap()})
        })
        .collect();
    let test = format!(
        "name: scale-{n}\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: {n}\n  duration: {seconds}s\nscenarios:\n  - name: s\n    steps:\n      - {{ name: a, path: /a }}\n      - {{ name: b, path: /b }}\n      - {{ name: c, path: /c }}\n"
    );
    let body =
        serde_json::json!({"test_yaml": test, "workers": workers, "strategy": "even"}).to_string();
    // Submitting probes every worker: on a loaded host that takes longer than the usual call.
    let (code, resp) = call_within(
        "POST",
        &format!("http://{}/runs", c.addrs[leader]),
        None,
        Some(&body),
        Duration::from_secs(120),
    )
    .expect("POST /runs");
    assert_eq!(code, 201, "{resp}");
    let id = serde_json::from_str::<serde_json::Value>(&resp).expect("JSON")["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    c.wait_phase(&[leader], &id, "started", 120);
    // Skip the first seconds (prepare, the first pulls), measure two halves of the middle, stop
    // before the end.
    let warm = Duration::from_secs(3.min(seconds / 4));
    std::thread::sleep(warm);
    let half = Duration::from_secs((seconds.saturating_sub(warm.as_secs() + 2) / 2).max(1));
    let pids: Vec<u32> = (0..3)
        .map(|i| c.procs[i].as_ref().expect("replica runs").pid())
        .collect();
    // The console's poll, once a second, on its own thread.
    let polling = Arc::new(AtomicBool::new(true));
    let times = Arc::new(Mutex::new(Vec::new()));
    let poller = {
        let (polling, times) = (polling.clone(), times.clone());
        let url = format!("http://{}/runs/{id}", c.addrs[leader]);
        std::thread::spawn(move || {
            while polling.load(Ordering::Relaxed) {
                let began = Instant::now();
                let answered = matches!(
                    call_within("GET", &url, None, None, Duration::from_secs(30)),
                    Ok((200, _))
                );
                let ms = began.elapsed().as_secs_f64() * 1000.0;
                if answered {
                    times.lock().unwrap().push(ms);
                }
                std::thread::sleep(Duration::from_secs(1).saturating_sub(began.elapsed()));
            }
        })
    };
    let t0 = Instant::now();
    let a: Vec<Sample> = pids.iter().map(|&p| sample(p)).collect();
    std::thread::sleep(half);
    let t1 = t0.elapsed().as_secs_f64();
    let b: Vec<Sample> = pids.iter().map(|&p| sample(p)).collect();
    std::thread::sleep(half);
    let t2 = t0.elapsed().as_secs_f64();
    let z: Vec<Sample> = pids.iter().map(|&p| sample(p)).collect();
    polling.store(false, Ordering::Relaxed);
    poller.join().expect("the console poller");
    let done = c.wait_phase(&[leader], &id, "finished", 60 + seconds * 3);
    let counted = done["summary"]["overall"]["count"].as_u64().unwrap();
    assert_merged_exactly_once(&done["summary"]);
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let per_follower = |f: &dyn Fn(&Sample) -> u64| {
        followers
            .iter()
            .map(|&i| (f(&z[i]) - f(&a[i])) as f64 / t2)
            .sum::<f64>()
            / followers.len() as f64
    };
    let mut console_ms = times.lock().unwrap().clone();
    console_ms.sort_by(f64::total_cmp);
    Scale {
        workers: n,
        whole,
        window_s: t2,
        leader_cpu_pct: (z[leader].cpu_s - a[leader].cpu_s) / t2 * 100.0,
        leader_written_per_s: (z[leader].written - a[leader].written) as f64 / t2,
        early_written_per_s: (b[leader].written - a[leader].written) as f64 / t1,
        late_written_per_s: (z[leader].written - b[leader].written) as f64 / (t2 - t1),
        follower_written_per_s: per_follower(&|s| s.written),
        console_ms,
        counted,
        expected: n as u64 * seconds * 3 * PER_STEP,
    }
}

/// CI-sized: 20 simulated workers for 10 s, records saved in parts. The merge is exact, the leader
/// stays well under a core, writes a bounded number of bytes per worker and second, the late half
/// of the run costs no more than about the early one, and the console's poll answers quickly.
#[test]
fn ci_sized_control_plane_of_20_workers() {
    let s = measure(20, 10, false);
    println!(
        "20 workers: leader {:.1} % of a core, {:.1} KiB/s written ({:.0} B per worker-second; early {:.1}, late {:.1} KiB/s), followers write {:.1} KiB/s, console p50 {:.0} ms max {:.0} ms",
        s.leader_cpu_pct,
        s.leader_written_per_s / 1024.0,
        s.per_worker_written(),
        s.early_written_per_s / 1024.0,
        s.late_written_per_s / 1024.0,
        s.follower_written_per_s / 1024.0,
        s.console_p50(),
        s.console_max()
    );
    assert_eq!(s.counted, s.expected, "every batch merged once");
    assert!(
        s.leader_cpu_pct < 70.0,
        "the leader driving 20 workers used {:.1} % of a core",
        s.leader_cpu_pct
    );
    assert!(
        s.per_worker_written() < 64.0 * 1024.0,
        "the leader wrote {:.0} B per worker-second",
        s.per_worker_written()
    );
    assert!(
        !s.console_ms.is_empty() && s.console_p50() < 1000.0,
        "GET /runs/{{id}} took {:?} ms",
        s.console_ms
    );
}

#[test]
#[ignore]
fn control_plane_at_scale() {
    let sizes: Vec<usize> = std::env::var("SCALE_WORKERS")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds: u64 = std::env::var("SCALE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut md = format!(
        "# Control plane at scale\n\n`SCALE_WORKERS={} SCALE_SECONDS={seconds} cargo test {}--test bench scale -- --ignored` ({} build): \
         a 3-replica master cluster on one host, {}, drives N simulated workers (served over HTTP by the test \
         process, each sending one batch a second of 3 steps × {PER_STEP} requests with their HDR histograms) for \
         {seconds} s at the 1 s pull interval. From /proc over the middle of the run: the leader's CPU time and bytes \
         written (sled's log, state and snapshots), each follower's bytes written (its copy of what is replicated), \
         and the wall time of `GET /runs/{{id}}` on the leader \
         once a second (what the console polls). `early`/`late` are the leader's writes in the first and second half \
         of the window. `whole` saves the run record whole on every pull (the save path before parts; masters \
         started with `{WHOLE_RECORDS_ENV}`); `parts` saves the head and only new parts of the lists that grow with \
         the run. The simulated workers share the host's cores, so the figures include that contention.\n\n\
         | workers | save | window (s) | leader CPU (% of a core) | leader writes (KiB/s) | per worker-second (B) | early / late (KiB/s) | follower writes (KiB/s) | console p50 / max (ms) | requests counted / expected |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(","),
        if cfg!(debug_assertions) { "" } else { "--release " },
        if cfg!(debug_assertions) { "debug" } else { "release" },
        host_facts()
    );
    for n in sizes {
        for whole in [true, false] {
            let s = measure(n, seconds, whole);
            let save = if whole { "whole" } else { "parts" };
            println!(
                "{n} workers, {save}: leader {:.1} % CPU, {:.0} KiB/s written (early {:.0}, late {:.0}), followers write {:.0} KiB/s, console p50 {:.0} ms, counted {} of {}",
                s.leader_cpu_pct,
                s.leader_written_per_s / 1024.0,
                s.early_written_per_s / 1024.0,
                s.late_written_per_s / 1024.0,
                s.follower_written_per_s / 1024.0,
                s.console_p50(),
                s.counted,
                s.expected
            );
            md.push_str(&format!(
                "| {} | {save} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} / {:.0} | {:.0} | {:.0} / {:.0} | {} / {} |\n",
                s.workers,
                s.window_s,
                s.leader_cpu_pct,
                s.leader_written_per_s / 1024.0,
                s.per_worker_written(),
                s.early_written_per_s / 1024.0,
                s.late_written_per_s / 1024.0,
                s.follower_written_per_s / 1024.0,
                s.console_p50(),
                s.console_max(),
                s.counted,
                s.expected
            ));
            assert!(s.whole == whole);
            assert_eq!(
                s.counted, s.expected,
                "{n} workers ({save}): every batch merged once"
            );
        }
    }
    md.push_str(&format!(
        "\nThe host's 1-minute load average at the end: {}.\n",
        load_average()
    ));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results/scale.md");
    std::fs::write(&path, md).unwrap();
}
