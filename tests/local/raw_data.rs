//! `results.collection.format.raw_data` in a local `run`: every request sample is written to
//! `-o DIR/raw.ndjson.zst` (zstd-compressed NDJSON, decoded here by the `zstd` reader of the
//! library and checked against the mock's own count), and `perfornium report` on it recomputes
//! the run's figures. Without `-o` the key is refused by name before any request.

use crate::support::*;

const RAW: &str = "distributed:\n  results:\n    collection:\n      format: { raw_data: true }\n";

#[test]
fn a_local_run_writes_every_sample_to_o_and_report_recomputes_the_summary_from_it() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("raw-local")
        .load("pattern: basic, virtual_users: 3, iterations: 40")
        .step("{ name: list, path: /users }")
        .step("{ name: missing, path: /nope }")
        .extra(RAW)
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("raw data written to"), "{stderr}");
    let s = summary(&out);
    let total = s["overall"]["count"].as_u64().unwrap();
    assert_eq!(total, 240, "3 VUs x 40 iterations x 2 steps");
    assert_eq!(mock_stats(&mock)["total"], total);

    let bytes = std::fs::read(out.join("raw.ndjson.zst")).unwrap();
    let mut recs = Vec::new();
    perfornium::metrics::raw::read(&bytes, |r| recs.push(r)).unwrap();
    assert_eq!(recs.len() as u64, total);
    let missing: Vec<_> = recs.iter().filter(|r| r.step == "missing").collect();
    assert_eq!(missing.len(), 120);
    assert!(missing.iter().all(|r| r.status == Some(404)));
    let errors = recs.iter().filter(|r| r.error.is_some()).count() as u64;
    assert_eq!(errors, s["overall"]["errors"].as_u64().unwrap());
    let vus: std::collections::BTreeSet<_> = recs.iter().filter_map(|r| r.vu).collect();
    assert_eq!(vus.len(), 3, "each record names its VU");

    let json = dir.path().join("from-raw.json");
    let html = dir.path().join("from-raw.html");
    let rep = run(&[
        "report",
        out.join("raw.ndjson.zst").to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(
        rep.status.success(),
        "{}",
        String::from_utf8_lossy(&rep.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["overall"]["count"], total);
    assert_eq!(r["overall"]["errors"], s["overall"]["errors"]);
    // The same latencies into the same HDR histograms: the same percentiles.
    for p in ["p50", "p95", "p99"] {
        assert_eq!(r["overall"][p], s["overall"][p], "{p}");
    }
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("Recomputed from raw data"));
}

#[test]
fn raw_data_in_a_local_run_without_o_is_refused_by_name() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock).extra(RAW).write(dir.path());
    let res = run(&["run", &file]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(
        stderr.contains("results.collection.format.raw_data") && stderr.contains("-o"),
        "{stderr}"
    );
    assert_eq!(mock_stats(&mock)["total"], 0);
}
