//! CI-sized check of the memory an idle virtual user costs: the same test with 1 VU and with 2,000
//! VUs that each make one request and then hold their keep-alive connection through a long think
//! time, against the mock. Both runs must count every VU's request and no error (so every idle VU
//! really holds a connection); peak RSS is read from `/proc/PID/status` while the run is idle. The
//! full figure (release build, 10,000 VUs against nginx) is `bench/throughput.sh`'s.

use crate::support::*;
use std::time::Duration;

/// Runs `vus` idle VUs to the end; returns the peak resident set seen, in KiB.
fn peak_rss_kib(mock: &Proc, vus: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(mock)
        .load(&format!(
            "pattern: basic, virtual_users: {vus}, duration: 4s"
        ))
        .scenario("think_time: 60s")
        .write(dir.path());
    let out = dir.path().join("out");
    let mut p = start(&["run", &file, "-o", out.to_str().unwrap()]);
    let mut peak = 0;
    let status = loop {
        if let Some(s) = p.exit_within(Duration::from_millis(50)) {
            break s;
        }
        let kib = std::fs::read_to_string(format!("/proc/{}/status", p.pid()))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        peak = peak.max(kib);
    };
    assert!(status.success(), "{}", p.stderr_tail());
    let s = summary(&out);
    assert_eq!(s["overall"]["count"], vus, "one request per VU");
    assert_eq!(s["overall"]["errors"], 0, "every VU connected");
    peak
}

#[test]
fn an_idle_vu_holding_its_connection_costs_little_memory() {
    let mock = mock(0);
    let one = peak_rss_kib(&mock, 1);
    let many = peak_rss_kib(&mock, 2_000);
    let per_vu = (many.saturating_sub(one)) as f64 / 1_999.0;
    println!("idle VU: {per_vu:.2} KiB ({one} KiB with 1 VU, {many} KiB with 2,000)");
    // The release figure is ~12 KiB (bench/results/throughput.md); a debug build runs larger.
    assert!(
        per_vu < 32.0,
        "an idle VU costs {per_vu:.2} KiB ({one} KiB with 1 VU, {many} KiB with 2,000)"
    );
}
