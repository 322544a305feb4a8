//! `results.collection.format.raw_data` and `retention.worker_cleanup`: every request sample of a
//! distributed run, spooled on each worker's disk, pulled by the controller when the run ends and
//! stored as `raw/<worker>.ndjson.zst` in a real S3-compatible server (moto, started as
//! `storage.rs` does) or a local directory; read back independently of the uploader, the records
//! equal the mock's own counts (per worker too) and the summary's, and `perfornium report` on them
//! gives the same count and p50. With `worker_cleanup: true` a worker deletes its spool
//! `cleanup_delay` after the controller acknowledged it; with `false` it keeps it and lists it.

use super::storage::{get, list, moto, AWS_ENV};
use crate::support::*;
use std::path::Path;
use std::process::Command;

/// A worker spooling raw data under `spool`.
fn spooling_worker(spool: &Path) -> Proc {
    spawn_server(
        &[
            "worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--spool-dir",
            spool.to_str().unwrap(),
        ],
        "/health",
    )
}

/// The raw records in `bytes` (concatenated zstd frames of NDJSON), read with the library's reader.
fn records(bytes: &[u8]) -> Vec<perfornium::metrics::raw::RawRecord> {
    let mut out = Vec::new();
    perfornium::metrics::raw::read(bytes, |r| out.push(r)).expect("raw data");
    out
}

/// The chunk files under a worker's spool directory (every run).
fn spooled_chunks(spool: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for run in std::fs::read_dir(spool).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(run.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".ndjson.zst") {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn raw_samples_of_two_workers_land_in_s3_once_each_and_report_back_the_same_figures() {
    let (mut moto, url) = moto();
    let (code, text) = call("PUT", &format!("{url}/perf-raw"), None, None).unwrap();
    assert_eq!(code, 200, "CreateBucket: {text}");
    let mock = mock(0);
    let spools = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (
        spooling_worker(spools.0.path()),
        spooling_worker(spools.1.path()),
    );
    let dir = tempfile::tempdir().unwrap();
    let block = format!(
        "distributed:\n  results:\n    collection:\n      storage: {{ backend: s3, bucket: perf-raw, endpoint: \"{url}\", prefix: \"raw-test/{{{{run_id}}}}\" }}\n      format: {{ raw_data: true }}\n      retention: {{ worker_cleanup: false }}\n"
    );
    let file = yaml(&mock)
        .name("raw")
        .load("pattern: basic, virtual_users: 4, iterations: 30")
        .extra(&block)
        .write(dir.path());
    let out = dir.path().join("out");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-s",
        "even",
        "-o",
        out.to_str().unwrap(),
    ]);
    for (k, v) in AWS_ENV {
        cmd.env(k, v);
    }
    let res = start_cmd(cmd).wait_with_deadline(RUN_DEADLINE);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "{stderr}\nmoto:\n{}\nworker a:\n{}",
        moto.stderr_tail(),
        a.stderr_tail()
    );
    let summary = summary(&out);
    let total = summary["overall"]["count"].as_u64().unwrap();
    let stats = mock_stats(&mock);
    assert_eq!(total, 120, "4 VUs x 30 iterations");
    assert_eq!(stats["total"], total);

    // One raw file per worker, holding exactly the requests the mock saw from that worker.
    let keys: Vec<String> = list(&url, "perf-raw", "raw-test/")
        .into_iter()
        .filter(|k| k.contains("/raw/"))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let raw_dir = dir.path().join("raw");
    std::fs::create_dir_all(&raw_dir).unwrap();
    let mut all = 0u64;
    for w in [&a, &b] {
        let name = format!("{}.ndjson.zst", w.addr.replace(':', "_"));
        let key = keys
            .iter()
            .find(|k| k.ends_with(&format!("/raw/{name}")))
            .unwrap_or_else(|| panic!("{name} in {keys:?}"));
        let bytes = get(&url, "perf-raw", key);
        let recs = records(&bytes);
        assert!(recs.iter().all(|r| r.worker == w.addr && r.step == "list"));
        assert!(recs
            .iter()
            .all(|r| r.status == Some(200) && r.error.is_none()));
        assert_eq!(
            recs.len() as u64,
            stats["by_worker"][&w.addr].as_u64().unwrap_or(0),
            "worker {}: its raw records against the mock's by_worker {}",
            w.addr,
            stats["by_worker"]
        );
        all += recs.len() as u64;
        std::fs::write(raw_dir.join(&name), &bytes).unwrap();
    }
    assert_eq!(all, total, "every request once, no chunk lost or doubled");

    // `perfornium report` recomputes the figures from the downloaded raw files.
    let json = dir.path().join("from-raw.json");
    let html = dir.path().join("from-raw.html");
    let rep = run(&[
        "report",
        raw_dir.to_str().unwrap(),
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
    let recomputed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(recomputed["overall"]["count"], total);
    let (p50, want) = (
        recomputed["overall"]["p50"].as_f64().unwrap(),
        summary["overall"]["p50"].as_f64().unwrap(),
    );
    // The same latencies into the same HDR histogram (3 significant digits).
    assert!(
        (p50 - want).abs() <= want * 0.001 + 0.001,
        "p50 from raw data {p50} ms, from the run {want} ms"
    );

    // `worker_cleanup: false`: each worker keeps its acknowledged spool and lists it.
    for (w, spool) in [(&a, spools.0.path()), (&b, spools.1.path())] {
        assert!(
            !spooled_chunks(spool).is_empty(),
            "worker {} kept nothing",
            w.addr
        );
        let listed = get_json(&format!("http://{}/raw", w.addr)).unwrap();
        let run = &listed["runs"][0];
        assert_eq!(run["acked"], run["last"], "{listed}");
        assert!(run["cleanup_at_ms"].is_null(), "{listed}");
        assert!(run["samples"].as_u64().unwrap() > 0, "{listed}");
    }
    moto.kill();
}

#[test]
fn worker_cleanup_deletes_a_spool_after_its_delay_and_only_after_the_controller_stored_it() {
    let mock = mock(0);
    let spool = tempfile::tempdir().unwrap();
    let w = spooling_worker(spool.path());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = yaml(&mock)
        .name("cleaned")
        .load("pattern: basic, virtual_users: 2, iterations: 10")
        .extra(&format!(
            "distributed:\n  results:\n    collection:\n      storage: {{ backend: local, path: \"{}\", prefix: \"{{{{run_id}}}}\" }}\n      format: {{ raw_data: true }}\n      retention: {{ worker_cleanup: true, cleanup_delay: 3s }}\n",
            store.display()
        ))
        .write(dir.path());
    let res = run(&["distributed", &file, "-w", &w.addr]);
    assert!(
        res.status.success(),
        "{}\nworker:\n{}",
        String::from_utf8_lossy(&res.stderr),
        w.stderr_tail()
    );
    // The controller stored the file before the worker deletes anything.
    let run_dir = std::fs::read_dir(&store)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let run_id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let stored = std::fs::read(
        run_dir
            .join("raw")
            .join(format!("{}.ndjson.zst", w.addr.replace(':', "_"))),
    )
    .unwrap();
    assert_eq!(records(&stored).len(), 20);
    assert_eq!(mock_stats(&mock)["total"], 20);
    // Acknowledged (the run is over), its deletion scheduled, the spool still there.
    let listed = get_json(&format!("http://{}/raw", w.addr)).unwrap();
    let entry = &listed["runs"][0];
    assert_eq!(entry["run_id"], run_id.as_str(), "{listed}");
    assert_eq!(entry["acked"], entry["last"], "{listed}");
    assert!(entry["cleanup_at_ms"].as_u64().is_some(), "{listed}");
    assert!(
        !spooled_chunks(spool.path()).is_empty(),
        "deleted before the delay passed"
    );
    // Then, after the delay, the spool directory is empty and the worker says why.
    assert!(
        wait_for(15, || std::fs::read_dir(spool.path())
            .unwrap()
            .next()
            .is_none()),
        "the spool is still there: {:?}\n{}",
        spooled_chunks(spool.path()),
        w.stderr_tail()
    );
    assert!(
        now_ms() + 100 >= entry["cleanup_at_ms"].as_u64().unwrap(),
        "deleted before its time"
    );
    let (code, text) = http_get(&format!("http://{}/raw?run_id={run_id}&after=0", w.addr)).unwrap();
    assert_eq!(code, 410, "{text}");
}
