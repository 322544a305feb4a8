//! CI-sized check that many active VUs with think time keep their target rate and that the
//! scheduler does not fall behind: 1,000 VUs loop on one GET against the mock with a 1 s think time.
//! The engine logs the lag of intended starts (a think time's due end vs when the VU ran again) as
//! `start lag`; its median must stay small and its p99 under the think time (the bounds leave room
//! for a CI host shared with other builds), and the rate after the ramp-up must reach the target
//! (VUs / (think time + response time)). The mock's own count is the reference for the
//! number of requests. The full figures (100,000 idle and 20,000 active VUs against nginx, release
//! build) come from `bench/many-vus.sh`, which writes `bench/results/many-vus.md`.

use crate::support::*;
use std::time::Duration;

/// A field of the `start lag` log line (`name=value`).
fn lag_field(stderr: &str, name: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("start lag"))
        .unwrap_or_else(|| panic!("no `start lag` line in:\n{stderr}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in `{line}`"))
}

#[test]
fn a_thousand_vus_with_think_time_start_on_time_and_keep_their_rate() {
    const VUS: u64 = 1_000;
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load(&format!(
            "pattern: basic, virtual_users: {VUS}, ramp_up: 1s, duration: 7s"
        ))
        .scenario("think_time: 1s")
        .write(dir.path());
    let out = dir.path().join("out");
    let run = start(&["run", &file, "-o", out.to_str().unwrap()]);
    let output = run.wait_with_deadline(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let s = summary(&out);
    assert_eq!(s["overall"]["errors"], 0, "{stderr}");
    let count = s["overall"]["count"].as_u64().unwrap();
    assert_eq!(mock_stats(&mock)["total"].as_u64().unwrap(), count);
    // Every request but each VU's first follows a think time, whose lag is measured.
    let lags = lag_field(&stderr, "count") as u64;
    assert!(
        lags + VUS >= count && lags <= count,
        "{lags} lags for {count} requests"
    );
    let (p50, p99) = (lag_field(&stderr, "p50_ms"), lag_field(&stderr, "p99_ms"));
    println!("start lag p50 {p50} ms, p99 {p99} ms over {lags} starts");
    assert!(
        p50 < 50.0 && p99 < 1000.0,
        "start lag p50 {p50} ms, p99 {p99} ms"
    );
    // Seconds 3..=6: after the ramp-up and each VU's first request, before the run's end.
    let timeline = s["timeline"].as_array().unwrap();
    let steady: Vec<&serde_json::Value> = timeline
        .iter()
        .filter(|p| (3..=6).contains(&p["second"].as_u64().unwrap()))
        .collect();
    assert_eq!(steady.len(), 4, "{timeline:?}");
    let rate = steady
        .iter()
        .map(|p| p["requests"].as_f64().unwrap())
        .sum::<f64>()
        / 4.0;
    let median_s = steady
        .iter()
        .map(|p| p["p50_ms"].as_f64().unwrap())
        .sum::<f64>()
        / 4.0
        / 1000.0;
    let target = VUS as f64 / (1.0 + median_s);
    println!("{rate:.0} req/s for a target of {target:.0}");
    assert!(
        rate >= 0.85 * target,
        "{rate:.0} req/s, target {target:.0}: the VUs fell behind"
    );
}
