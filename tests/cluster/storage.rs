//! `distributed.results.collection.storage`: after a distributed run, its results land in a real
//! S3-compatible server (moto in server mode, started here on a free port), are listed and read
//! back with the plain S3 REST API (moto does not check signatures, so ureq reads it directly,
//! independently of the uploader), and `perfornium report` renders the downloaded summary. A cloud
//! backend without credentials is refused before any request is sent.

use crate::support::*;
use std::io::Read;
use std::process::Command;
use std::time::Duration;

/// `moto_server` on a free port, killed when dropped; its stderr is shown on failure.
pub(crate) fn moto() -> (Proc, String) {
    let port = free_port();
    let mut cmd = Command::new("moto_server");
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    assert!(
        Command::new("moto_server").arg("--help").output().is_ok(),
        "moto_server is not installed: `pip install 'moto[server]'` (.ci/run does)"
    );
    let mut proc = start_cmd(cmd);
    let url = format!("http://127.0.0.1:{port}");
    let up = wait_for(20, || http_get(&format!("{url}/")).is_ok());
    if !up {
        let status = proc.exit_within(Duration::from_secs(1));
        panic!(
            "moto_server did not answer on {url} within 20 s ({status:?}). Its stderr:\n{}",
            proc.stderr_tail()
        );
    }
    (proc, url)
}

/// The keys under `prefix` in `bucket`, by S3's ListObjectsV2.
pub(crate) fn list(url: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let (code, xml) = http_get(&format!("{url}/{bucket}?list-type=2&prefix={prefix}")).unwrap();
    assert_eq!(code, 200, "{xml}");
    let mut keys: Vec<String> = xml
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
        .collect();
    keys.sort();
    keys
}

/// GetObject, as bytes. Moto answers an anonymous read of a private object with 403, so the
/// request names the test's access key; moto does not verify the signature.
pub(crate) fn get(url: &str, bucket: &str, key: &str) -> Vec<u8> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent
        .get(&format!("{url}/{bucket}/{key}"))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .call()
        .unwrap_or_else(|e| panic!("GET {key}: {e}"));
    resp.body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

pub(crate) const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

#[test]
fn a_distributed_runs_results_land_in_s3_gzipped_and_read_back_into_a_report() {
    let (mut moto, url) = moto();
    let (code, text) = call("PUT", &format!("{url}/perf-results"), None, None).unwrap();
    assert_eq!(code, 200, "CreateBucket: {text}");
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let storage = format!(
        "distributed:\n  results:\n    collection:\n      strategy: pull\n      storage:\n        backend: s3\n        bucket: perf-results\n        endpoint: {url}\n        prefix: \"perf/{{{{test_name}}}}/{{{{run_id}}}}\"\n      format:\n        aggregated: true\n        compressed: true\n"
    );
    let file = yaml(&mock)
        .name("stored")
        .load("pattern: basic, virtual_users: 3, iterations: 5")
        .extra(&storage)
        .write(dir.path());
    let mut cmd = Command::new(BIN);
    cmd.args([
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-s",
        "even",
    ]);
    for (k, v) in AWS_ENV {
        cmd.env(k, v);
    }
    let res = start_cmd(cmd).wait_with_deadline(RUN_DEADLINE);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "{stderr}\nmoto:\n{}",
        moto.stderr_tail()
    );
    assert!(
        stderr.contains("results stored under s3://perf-results/perf/stored/run-"),
        "the run says where its results went: {stderr}"
    );

    let keys = list(&url, "perf-results", "perf/stored/");
    assert_eq!(keys.len(), 3, "{keys:?}");
    let run_dir = keys[0].rsplit_once('/').unwrap().0.to_string();
    assert!(run_dir.starts_with("perf/stored/run-"), "{run_dir}");
    for name in [
        "histograms.json.gz",
        "summary.json.gz",
        "timeline.ndjson.gz",
    ] {
        assert!(
            keys.contains(&format!("{run_dir}/{name}")),
            "{name} in {keys:?}"
        );
    }

    // The summary read back: the run's numbers, equal to the mock's own count.
    let summary = gunzip(&get(
        &url,
        "perf-results",
        &format!("{run_dir}/summary.json.gz"),
    ));
    let s: serde_json::Value = serde_json::from_slice(&summary).unwrap();
    assert_eq!(s["overall"]["count"], 15, "3 VUs x 5 iterations");
    assert_eq!(mock_stats(&mock)["total"], 15);
    // The timeline's seconds add up to the same count.
    let timeline = gunzip(&get(
        &url,
        "perf-results",
        &format!("{run_dir}/timeline.ndjson.gz"),
    ));
    let per_second: u64 = String::from_utf8(timeline)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["requests"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(per_second, 15);
    // The merged histograms: per step and per worker, counts that add up.
    let h: serde_json::Value = serde_json::from_slice(&gunzip(&get(
        &url,
        "perf-results",
        &format!("{run_dir}/histograms.json.gz"),
    )))
    .unwrap();
    assert_eq!(h["steps"][0]["step"], "list");
    assert_eq!(h["steps"][0]["count"], 15);
    assert!(h["steps"][0]["latency"]
        .as_str()
        .is_some_and(|l| !l.is_empty()));
    let by_worker: u64 = h["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["steps"][0]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(by_worker, 15);

    // `perfornium report` renders the downloaded summary.
    let local = dir.path().join("summary.json");
    std::fs::write(&local, &summary).unwrap();
    let html = dir.path().join("report.html");
    let out = run(&[
        "report",
        local.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("stored"), "the report names the test");
    moto.kill();
}

#[test]
fn gcs_and_azure_without_credentials_are_refused_before_any_request() {
    let mock = mock(0);
    let a = worker(None);
    let dir = tempfile::tempdir().unwrap();
    for (backend, hint) in [
        ("gcs", "GOOGLE_APPLICATION_CREDENTIALS"),
        ("azure", "AZURE_STORAGE_ACCOUNT_NAME"),
        ("s3", "AWS_ACCESS_KEY_ID"),
    ] {
        let file = yaml(&mock)
            .name("nocreds")
            .load("pattern: basic, virtual_users: 1, iterations: 3")
            .extra(&format!(
                "distributed:\n  results:\n    collection:\n      storage: {{ backend: {backend}, bucket: b }}\n"
            ))
            .write(dir.path());
        let mut cmd = Command::new(BIN);
        cmd.args(["distributed", &file, "-w", &a.addr]);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_") {
                cmd.env_remove(k);
            }
        }
        let res = start_cmd(cmd).wait_with_deadline(RUN_DEADLINE);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{backend}: {stderr}");
        assert!(
            stderr.contains(&format!("backend `{backend}`: no credentials"))
                && stderr.contains(hint),
            "{backend}: {stderr}"
        );
    }
    assert_eq!(mock_stats(&mock)["total"], 0, "no load ran");
}

#[test]
fn the_local_backend_writes_the_results_under_its_path() {
    let mock = mock(0);
    let a = worker(None);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = yaml(&mock)
        .name("kept")
        .load("pattern: basic, virtual_users: 2, iterations: 4")
        .extra(&format!(
            "distributed:\n  results:\n    collection:\n      storage: {{ backend: local, path: \"{}\", prefix: \"{{{{date}}}}/{{{{run_id}}}}\" }}\n      format: {{ aggregated: false }}\n",
            store.display()
        ))
        .write(dir.path());
    let res = run(&["distributed", &file, "-w", &a.addr]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let date = std::fs::read_dir(&store)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let run = std::fs::read_dir(&date)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["summary.json", "timeline.ndjson"],
        "no histograms with aggregated: false"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["overall"]["count"], 8);
    assert_eq!(mock_stats(&mock)["total"], 8);
}
