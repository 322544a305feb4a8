//! What `results.collection.format.raw_data` costs a run: the same local run against the mock with
//! and without it, in interleaved rounds, (1) closed-model, 8 VUs back to back for a few seconds
//! (the most requests per second the host gives, so any cost shows as fewer requests) and (2) at a
//! fixed arrival rate (the rate held, and the latency percentiles). With raw data on, the bytes of
//! `raw.ndjson.zst` per sample, its record count checked against the run's and the mock's. Run by
//! hand (`RAW_SECONDS`, default 10, `RAW_RATE`, default 2000/s, `RAW_ROUNDS`, default 3); writes
//! `bench/results/raw_data.md`.

use crate::support::*;

const RAW: &str = "distributed:\n  results:\n    collection:\n      format: { raw_data: true }\n";

struct Measured {
    rps: f64,
    p50: f64,
    p99: f64,
    bytes_per_sample: Option<f64>,
}

fn one(load: &str, raw: bool) -> Measured {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let mut y = yaml(&mock).name("raw-cost").load(load);
    if raw {
        y = y.extra(RAW);
    }
    let file = y.write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    let count = s["overall"]["count"].as_u64().unwrap();
    assert_eq!(mock_stats(&mock)["total"], count);
    let bytes_per_sample = raw.then(|| {
        let bytes = std::fs::read(out.join("raw.ndjson.zst")).unwrap();
        let n = perfornium::metrics::raw::read(&bytes, |_| {}).unwrap();
        assert_eq!(n, count, "one record per request");
        bytes.len() as f64 / n as f64
    });
    Measured {
        rps: count as f64 / s["duration_s"].as_f64().unwrap(),
        p50: s["overall"]["p50"].as_f64().unwrap(),
        p99: s["overall"]["p99"].as_f64().unwrap(),
        bytes_per_sample,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
#[ignore]
fn raw_data_cost() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (secs, rate, rounds) = (
        env("RAW_SECONDS", 10),
        env("RAW_RATE", 2000),
        env("RAW_ROUNDS", 3),
    );
    let closed = format!("pattern: basic, virtual_users: 8, duration: {secs}s");
    let open =
        format!("pattern: arrivals, rate: {rate}, duration: {secs}s, max_virtual_users: 500");
    let mut rows = String::new();
    for (what, load) in [("closed, 8 VUs", &closed), ("arrivals", &open)] {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            off.push(one(load, false));
            on.push(one(load, true));
        }
        let m = |v: &[Measured], f: fn(&Measured) -> f64| median(v.iter().map(f).collect());
        let (rps_off, rps_on) = (m(&off, |x| x.rps), m(&on, |x| x.rps));
        rows.push_str(&format!(
            "| {what} | {:.0} | {:.0} | {:+.1} % | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} |\n",
            rps_off,
            rps_on,
            (rps_on - rps_off) * 100.0 / rps_off,
            m(&off, |x| x.p50),
            m(&on, |x| x.p50),
            m(&off, |x| x.p99),
            m(&on, |x| x.p99),
            m(&on, |x| x.bytes_per_sample.unwrap_or(0.0)),
        ));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let body = format!(
        "# raw_data: what keeping every sample costs\n\nWritten by `tests/bench/raw_data.rs::raw_data_cost` ({secs} s runs, arrivals at {rate}/s, median of {rounds} interleaved rounds; local `run` against `perfornium mock`).\n\n| load | req/s without | req/s with raw_data | change | p50 ms without / with | p99 ms without / with | bytes per sample on disk (zstd NDJSON) |\n|---|---:|---:|---:|---:|---:|---:|\n{rows}\nBuild: {}. Host: {}; load average at the end: {}.\n",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        host_facts(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results/raw_data.md");
    std::fs::write(path, &body).unwrap();
    eprintln!("{body}");
}
