//! Soak (issue 19 §4): a 3-replica master drives 10 workers through back-to-back runs (each
//! `SOAK_RUN_SECONDS`, retention `keep_runs: 2` archiving older records to a local directory) while
//! this test samples, at a fixed interval, the RSS of every process, each replica's sled directory
//! size and its raft log length (last log index − last purged, from `GET /cluster`). After the
//! warm-up (the first third) the slope of each series must be flat, and the raft log stays within
//! the snapshot policy's bound (a snapshot every 100 logs, 100 kept behind it). Every run's count
//! is checked against the mock's.
//!
//! CI runs `soak_counts_exactly_and_bounds_memory_disk_and_raft_log_growth` for the 3 minutes
//! (`SOAK_CI_SECONDS` sets another length). The full soak writes `bench/results/soak.md`:
//! `SOAK_MINUTES=60 cargo test --release --test cluster soak_report -- --ignored --nocapture`
//! (or `bench/soak.sh`).

use crate::support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Workers the soak drives.
const WORKERS: usize = 10;
/// The raft log's bound: a snapshot every 100 logs with 100 kept behind it, plus entries written
/// while a snapshot is built.
const LOG_BOUND: u64 = 260;

/// One sampling of every process and replica.
#[derive(Clone, Debug)]
struct Sample {
    at_s: f64,
    /// Masters 1..3, then workers, in MiB.
    rss: Vec<f64>,
    /// Each replica's sled directory, MiB.
    sled: Vec<f64>,
    /// Each replica's raft log length (entries), when it answered.
    log: Vec<Option<u64>>,
    runs: usize,
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_mib(dir: &std::path::Path) -> f64 {
    fn walk(p: &std::path::Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(p) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir) as f64 / (1024.0 * 1024.0)
}

/// Least-squares slope of `ys` over `xs`, per minute when `xs` are seconds.
fn slope_per_min(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0
    }
}

/// What a soak saw.
struct Soak {
    samples: Vec<Sample>,
    names: Vec<String>,
    runs: usize,
    counted: u64,
    mock_total: u64,
}

impl Soak {
    /// Samples after the warm-up (the first third of the duration).
    fn settled(&self) -> Vec<&Sample> {
        let end = self.samples.last().map_or(0.0, |s| s.at_s);
        self.samples
            .iter()
            .filter(|s| s.at_s >= end / 3.0)
            .collect()
    }

    /// Slope (per minute) after warm-up of series `f`.
    fn slope(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        let s = self.settled();
        let xs: Vec<f64> = s.iter().map(|s| s.at_s).collect();
        let ys: Vec<f64> = s.iter().map(|s| f(s)).collect();
        slope_per_min(&xs, &ys)
    }
}

/// Drives back-to-back runs of `run_s` seconds for `total`, sampling every `every`.
fn soak(total: Duration, every: Duration, run_s: u64) -> Soak {
    let c = Cluster::start();
    let leader = c.agreed_leader(20);
    let mock = mock(0);
    let workers: Vec<Proc> = (0..WORKERS).map(|_| worker(None)).collect();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "distributed:\n  results:\n    collection:\n      storage:\n        backend: local\n        path: {}\n      retention:\n        keep_runs: 2\n",
        dir.path().join("archive").display()
    );
    let body = yaml(&mock)
        .name("soak")
        .load(&format!(
            "pattern: basic, virtual_users: {WORKERS}, duration: {run_s}s"
        ))
        .scenario("think_time: 100ms")
        .extra(&extra)
        .submit_body(&workers.iter().collect::<Vec<_>>());
    let mut pids: Vec<u32> = (0..3)
        .map(|i| c.procs[i].as_ref().expect("replica runs").pid())
        .collect();
    pids.extend(workers.iter().map(|w| w.pid()));
    let mut names: Vec<String> = (1..=3).map(|i| format!("master {i}")).collect();
    names.extend((1..=WORKERS).map(|i| format!("worker {i}")));
    let dirs: Vec<std::path::PathBuf> = (0..3).map(|i| c.data_dir(i)).collect();
    let addrs = c.addrs.clone();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let runs_done = Arc::new(Mutex::new(0usize));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (samples, runs_done, sampling) = (samples.clone(), runs_done.clone(), sampling.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut next = Duration::ZERO;
            while sampling.load(Ordering::Relaxed) {
                if t0.elapsed() < next {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                next += every;
                let log = addrs
                    .iter()
                    .map(|a| {
                        let v = get_json(&format!("http://{a}/cluster"))?;
                        let last = v["last_log_index"].as_u64()?;
                        Some(last - v["last_purged"].as_u64().unwrap_or(0))
                    })
                    .collect();
                let sample = Sample {
                    at_s: t0.elapsed().as_secs_f64(),
                    rss: pids.iter().map(|&p| rss_mib(p)).collect(),
                    sled: dirs.iter().map(|d| dir_mib(d)).collect(),
                    log,
                    runs: *runs_done.lock().unwrap(),
                };
                samples.lock().unwrap().push(sample);
            }
        })
    };
    let began = Instant::now();
    let mut counted = 0;
    let mut runs = 0;
    while began.elapsed() + Duration::from_secs(run_s) < total {
        let id = c.submit(leader, &body);
        // Generous: a soak is about what grows, and a loaded host stalls elections for a while.
        let view = c.wait_phase(&[0, 1, 2], &id, "finished", run_s + 240);
        assert_merged_exactly_once(&view["summary"]);
        counted += view["summary"]["overall"]["count"].as_u64().unwrap();
        runs += 1;
        *runs_done.lock().unwrap() = runs;
    }
    // Sample to the end of the duration.
    std::thread::sleep(total.saturating_sub(began.elapsed()));
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("the sampler");
    let samples = samples.lock().unwrap().clone();
    Soak {
        samples,
        names,
        runs,
        counted,
        mock_total: mock_stats(&mock)["total"].as_u64().unwrap(),
    }
}

fn table(s: &Soak) -> String {
    let mut out = String::from("| t (s) | runs ended |");
    for n in &s.names {
        out.push_str(&format!(" {n} RSS (MiB) |"));
    }
    for i in 1..=3 {
        out.push_str(&format!(" sled {i} (MiB) | raft log {i} |"));
    }
    out.push('\n');
    out.push_str(&"|---".repeat(2 + s.names.len() + 6));
    out.push_str("|\n");
    for x in &s.samples {
        out.push_str(&format!("| {:.0} | {} |", x.at_s, x.runs));
        for r in &x.rss {
            out.push_str(&format!(" {r:.1} |"));
        }
        for i in 0..3 {
            let log = x.log[i].map_or("-".to_string(), |l| l.to_string());
            out.push_str(&format!(" {:.2} | {log} |", x.sled[i]));
        }
        out.push('\n');
    }
    out
}

fn slopes(s: &Soak) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (i, n) in s.names.iter().enumerate() {
        out.push((format!("{n} RSS (MiB/min)"), s.slope(|x| x.rss[i])));
    }
    for i in 0..3 {
        out.push((format!("sled {} (MiB/min)", i + 1), s.slope(|x| x.sled[i])));
        out.push((
            format!("raft log {} (entries/min)", i + 1),
            s.slope(|x| x.log[i].unwrap_or(0) as f64),
        ));
    }
    out
}

/// The bound checks shared by the CI soak: exact counts, a bounded raft log, flat series.
fn check(s: &Soak, rss_per_min: f64, sled_per_min: f64) {
    let shown = format!("{}\n{:?}", table(s), slopes(s));
    assert!(s.runs >= 2, "at least two runs ended: {shown}");
    assert_eq!(
        s.counted, s.mock_total,
        "every request counted once: {shown}"
    );
    for x in s.settled() {
        for l in x.log.iter().flatten() {
            assert!(*l <= LOG_BOUND, "raft log of {l} entries: {shown}");
        }
    }
    for (name, slope) in slopes(s) {
        let bound = if name.contains("RSS") {
            rss_per_min
        } else if name.contains("sled") {
            sled_per_min
        } else {
            // The log's sawtooth (100 → 200 entries between snapshots) is bounded above.
            continue;
        };
        assert!(slope <= bound, "{name} grows {slope:.2} a minute: {shown}");
    }
}

/// 3 minutes by default, as the issue asks. It starts first in its binary (the module's name sorts
/// first), so while it runs in one of libtest's two threads the other runs the rest: it adds about half
/// its length to the binary's wall time. 3 minutes is shorter than the time to the first purge at this
/// write rate (about one raft entry a second; the first purge comes with the second snapshot, near
/// entry 200), so this bounds growth rather than showing it flat: a regression such as rewriting
/// whole records overshoots these bounds.
#[test]
fn soak_counts_exactly_and_bounds_memory_disk_and_raft_log_growth() {
    let seconds: u64 = std::env::var("SOAK_CI_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let s = soak(Duration::from_secs(seconds), Duration::from_secs(10), 15);
    println!("{}", table(&s));
    // A master's RSS swings by ±8 MiB between samples 10 s apart while sled's page cache fills, so
    // over one settled minute its slope is mostly that noise: the bound is loose, and every
    // process must also stay under a level (the masters hold at 63–78 MiB in the 60-minute soak).
    check(&s, 24.0, 8.0);
    for x in s.settled() {
        for (i, rss) in x.rss.iter().enumerate() {
            assert!(
                *rss < RSS_LEVEL_MIB,
                "process {i} at {rss:.1} MiB: {}",
                table(&s)
            );
        }
    }
}

/// The most RSS any process of the CI soak may reach, MiB.
const RSS_LEVEL_MIB: f64 = 256.0;

#[test]
#[ignore]
fn soak_report() {
    let minutes: u64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let run_s: u64 = std::env::var("SOAK_RUN_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let started = now_ms();
    let s = soak(
        Duration::from_secs(minutes * 60),
        Duration::from_secs(60),
        run_s,
    );
    let mut md = format!(
        "# Soak: {minutes} minutes\n\n`SOAK_MINUTES={minutes} SOAK_RUN_SECONDS={run_s} cargo test {}--test cluster soak_report -- --ignored` \
         (`bench/soak.sh`): a 3-replica master on one host, {}, drives {WORKERS} workers through back-to-back {run_s} s runs \
         ({WORKERS} VUs with 100 ms think time against the mock; retention `keep_runs: 2` archives older records to a local directory) \
         for {minutes} minutes, started at Unix ms {started}. Each minute: the RSS of every process, each replica's sled directory and \
         its raft log length (last log index − last purged). Slopes are least-squares fits over the samples after the first third \
         (the warm-up).\n\n{} runs ended; requests counted {} / the mock's {}.\n\n",
        if cfg!(debug_assertions) { "" } else { "--release " },
        host_facts(),
        s.runs,
        s.counted,
        s.mock_total
    );
    md.push_str("| series | slope after warm-up |\n|---|---|\n");
    for (name, slope) in slopes(&s) {
        md.push_str(&format!("| {name} | {slope:.3} |\n"));
    }
    md.push_str("\n## Samples\n\n");
    md.push_str(&table(&s));
    md.push_str(&format!(
        "\nThe host's 1-minute load average at the end: {}.\n",
        load_average()
    ));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results/soak.md");
    std::fs::write(&path, &md).unwrap();
    println!("{md}");
    check(&s, 1.0, 1.0);
}
