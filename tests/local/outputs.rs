//! The test file's `outputs:` and `report:`, end to end against real servers: InfluxDB 1.x
//! (Debian's `influxdb`) and Graphite's carbon-cache (Debian's `graphite-carbon`), each started here
//! on free ports in a temporary directory and read back from its own storage; json/csv files; a
//! webhook receiver this test runs. Every count is checked against the mock's `/__stats`.

use crate::support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first probe.
const SERVER_READY: Duration = Duration::from_secs(20);

fn mock_total(mock: &Proc) -> u64 {
    mock_stats(mock)["total"].as_u64().unwrap()
}

/// A test with two steps over ~2 s, so there are several seconds and steps to sum.
fn two_step_test(mock: &Proc, name: &str) -> Yaml {
    yaml(mock)
        .name(name)
        .load("pattern: basic, virtual_users: 2, duration: 2s")
        .scenario("think_time: 20ms")
        .step("{ name: list, path: /users }")
        .step("{ name: one, path: /users/1 }")
}

/// Runs `perfornium ARGS` in `cwd` (relative output paths land there); asserts it succeeded.
fn run_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd);
    let out = start_cmd(cmd).wait_with_deadline(RUN_DEADLINE);
    assert!(
        out.status.success(),
        "perfornium {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// The one file in `dir` whose name starts with `prefix` (its timestamp is not known in advance).
fn one_file(dir: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {prefix}* in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().unwrap()
}

/// `r-20261129-185012-345.json`: the `{{timestamp}}` rule put the time before the extension.
fn assert_timestamped(path: &Path, prefix: &str, ext: &str) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let stamp = name
        .strip_prefix(prefix)
        .and_then(|s| s.strip_suffix(ext))
        .unwrap_or_else(|| panic!("{name}"));
    assert_eq!(stamp.len(), "-20261129-185012-345".len(), "{name}");
    assert!(
        stamp[1..].chars().all(|c| c.is_ascii_digit() || c == '-'),
        "{name}"
    );
}

#[test]
fn json_csv_files_and_the_report_hold_what_the_mock_counted() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = two_step_test(&mock, "files")
        .extra(
            "outputs:\n  - { type: json, file: results/r.json, pretty_print: true }\n  - { type: json, file: \"results/s-{{timestamp}}.ndjson\", format: ndjson }\n  - { type: csv, file: results/c.csv }\n  - { type: csv, file: results/p.csv, include_percentiles: false, fields: [step, count, p95_ms, max_ms] }\n  - { type: csv, file: results/off.csv, enabled: false }\nreport:\n  generate: true\n  output: reports/run.html\n  title: \"Nightly <API> run\"\n  description: from the test file\n",
        )
        .write(dir.path());
    run_in(dir.path(), &["run", &file]);
    let total = mock_total(&mock);
    assert!(total > 20, "{total}");
    let results = dir.path().join("results");

    // JSON array: per-second, per-step records, then the summary.
    let json_path = one_file(&results, "r-");
    assert_timestamped(&json_path, "r", ".json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let recs = doc["records"].as_array().unwrap();
    let sum: u64 = recs.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(sum, total, "json records add up to the mock's count");
    let seconds: std::collections::BTreeSet<u64> =
        recs.iter().map(|r| r["second"].as_u64().unwrap()).collect();
    assert!(seconds.len() >= 2, "several seconds: {seconds:?}");
    let mut keys = std::collections::BTreeSet::new();
    for r in recs {
        assert!(
            keys.insert((r["second"].as_u64(), r["step"].as_str().map(String::from))),
            "each step once per second: {r}"
        );
        for k in [
            "timestamp",
            "errors",
            "mean_ms",
            "p50_ms",
            "p90_ms",
            "p95_ms",
            "p99_ms",
            "max_ms",
        ] {
            assert!(r.get(k).is_some(), "{k} in {r}");
        }
    }
    assert_eq!(doc["summary"]["overall"]["count"], total);
    assert_eq!(doc["summary"]["steps"].as_array().unwrap().len(), 2);

    // ndjson: `{{timestamp}}` written by the user is expanded, not doubled.
    let nd_path = one_file(&results, "s-");
    assert_timestamped(&nd_path, "s", ".ndjson");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&nd_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (secs, last) = lines.split_at(lines.len() - 1);
    assert!(secs.iter().all(|l| l["type"] == "second"));
    assert_eq!(
        secs.iter()
            .map(|l| l["count"].as_u64().unwrap())
            .sum::<u64>(),
        total
    );
    assert_eq!(last[0]["type"], "summary");
    assert_eq!(last[0]["overall"]["count"], total);

    // CSV: rows of kind `second` add up; the summary rows follow.
    let mut csv = csv::Reader::from_path(one_file(&results, "c-")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..4], ["kind", "timestamp", "second", "step"]);
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let count_at = header.iter().position(|h| h == "count").unwrap();
    let per_second: u64 = rows
        .iter()
        .filter(|r| &r[0] == "second")
        .map(|r| r[count_at].parse::<u64>().unwrap())
        .sum();
    assert_eq!(per_second, total);
    let all = rows
        .iter()
        .find(|r| &r[0] == "summary" && &r[3] == "all")
        .expect("a summary row for the whole run");
    assert_eq!(all[count_at].parse::<u64>().unwrap(), total);

    // `fields` choose and order the columns; `include_percentiles: false` leaves p95 empty.
    let mut p = csv::Reader::from_path(one_file(&results, "p-")).unwrap();
    assert_eq!(
        p.headers().unwrap(),
        vec!["step", "count", "p95_ms", "max_ms"]
    );
    let first = p.records().next().unwrap().unwrap();
    assert_eq!(&first[2], "", "no percentiles: {first:?}");
    assert!(first[3].parse::<f64>().unwrap() > 0.0);

    assert!(
        !std::fs::read_dir(&results).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("off")),
        "`enabled: false` writes nothing"
    );

    // report: the HTML report, timestamped, under its title and description.
    let report = one_file(&dir.path().join("reports"), "run-");
    assert_timestamped(&report, "run", ".html");
    let html = std::fs::read_to_string(report).unwrap();
    assert!(
        html.contains("<title>Nightly &lt;API&gt; run</title>"),
        "title"
    );
    assert!(html.contains("<h1>Nightly &lt;API&gt; run"), "heading");
    assert!(html.contains("from the test file"));
    assert!(
        html.contains(&format!("{total} requests")),
        "the run's count"
    );
}

// ------------------------------------------------------------------------------------------------
// InfluxDB 1.x

/// `influxd` on free ports (HTTP and the RPC bind address), all its files in a temporary directory,
/// reporting off; killed when dropped.
struct Influx {
    _proc: Proc,
    url: String,
    _dir: tempfile::TempDir,
}

fn influxd() -> Influx {
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(2);
        let d = dir.path().display();
        let conf = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{}\"\n  log-enabled = false\n[logging]\n  level = \"warn\"\n",
            ports[0], ports[1]
        );
        let path = write(dir.path(), "influxdb.conf", &conf);
        let mut cmd = Command::new("influxd");
        cmd.args(["-config", &path]);
        let mut proc = try_start(cmd, "influxd (Debian package `influxdb`, see .ci/run)");
        let url = format!("http://127.0.0.1:{}", ports[1]);
        let t = Instant::now();
        while t.elapsed() < SERVER_READY {
            if proc.child.try_wait().unwrap().is_some() {
                break;
            }
            if http_get(&format!("{url}/ping")).is_ok_and(|(code, _)| code == 204) {
                return Influx {
                    _proc: proc,
                    url,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        proc.kill();
        last = proc.stderr_tail();
        if !port_taken(&last) {
            break;
        }
    }
    panic!("influxd never answered /ping:\n{last}")
}

/// Starts a server from a Debian package, with a clear message when it is not installed.
fn try_start(cmd: Command, what: &str) -> Proc {
    let program = cmd.get_program().to_string_lossy().to_string();
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(&program).is_file()))
        .unwrap_or(false);
    assert!(found, "`{program}` is not installed: {what}");
    start_cmd(cmd)
}

impl Influx {
    fn query(&self, db: &str, q: &str) -> Vec<Vec<serde_json::Value>> {
        query(&self.url, db, q)
    }

    fn sum(&self, db: &str, q: &str) -> u64 {
        sum(&self.url, db, q)
    }
}

/// Runs an InfluxQL query on `db` at `url`; returns the first series' rows.
fn query(url: &str, db: &str, q: &str) -> Vec<Vec<serde_json::Value>> {
    let url =
        url::Url::parse_with_params(&format!("{url}/query"), &[("db", db), ("q", q)]).unwrap();
    let (code, body) = http_get(url.as_str()).unwrap();
    assert_eq!(code, 200, "{q}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["results"][0].get("error").is_none(), "{q}: {body}");
    v["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| rows.iter().map(|r| r.as_array().unwrap().clone()).collect())
        .unwrap_or_default()
}

/// The first value of a one-row query (a `sum`), 0 when there are no rows.
fn sum(url: &str, db: &str, q: &str) -> u64 {
    query(url, db, q)
        .first()
        .and_then(|r| r[1].as_u64())
        .unwrap_or(0)
}

fn influx_output(url: &str, db: &str) -> String {
    format!(
        "outputs:\n  - type: influxdb\n    url: \"{url}\"\n    database: {db}\n    tags: {{ env: ci, team: \"load test\" }}\n    batch_size: 3\n    flush_interval: 200ms\n"
    )
}

#[test]
fn influxdb_stores_points_that_add_up_to_the_mocks_count() {
    let influx = influxd();
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = two_step_test(&mock, "influx")
        .extra(&influx_output(&influx.url, "perf"))
        .write(dir.path());
    run_in(dir.path(), &["run", &file]);
    let total = mock_total(&mock);
    assert!(total > 20);
    assert_eq!(
        influx.sum("perf", "SELECT sum(\"count\") FROM \"perfornium\""),
        total,
        "the per-second points add up to the mock's count"
    );
    let points = influx.query(
        "perf",
        "SELECT \"count\" FROM \"perfornium\" GROUP BY \"step\"",
    );
    assert!(points.len() >= 2, "a point per second per step: {points:?}");
    for (tag, want) in [("env", "ci"), ("team", "load test"), ("test", "influx")] {
        let values = influx.query(
            "perf",
            &format!("SHOW TAG VALUES FROM \"perfornium\" WITH KEY = \"{tag}\""),
        );
        assert_eq!(values.len(), 1, "{tag}: {values:?}");
        assert_eq!(values[0][1], want, "{tag}");
    }
    let steps = influx.query(
        "perf",
        "SHOW TAG VALUES FROM \"perfornium\" WITH KEY = \"step\"",
    );
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(
        influx.sum(
            "perf",
            "SELECT sum(\"count\") FROM \"perfornium_summary\" WHERE \"step\" = 'all'"
        ),
        total,
        "the summary point"
    );
}

#[test]
fn a_failed_influxdb_write_is_logged_and_retried_at_the_next_flush() {
    // Nothing listens on the output's port when the run starts; influxd comes up on it mid-run.
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("late")
        .load("pattern: basic, virtual_users: 2, duration: 4s")
        .scenario("think_time: 20ms")
        .extra(&influx_output("http://127.0.0.1:PORT", "late"));
    let conf_dir = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let file = file.text().replace("PORT", &ports[1].to_string());
    let path = write(dir.path(), "t.yaml", &file);
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &path]).current_dir(dir.path());
    let run = start_cmd(cmd);
    assert!(
        wait_for(10, || run
            .stderr_line_at("will retry at the next flush")
            .is_some()),
        "the failed write is logged: {}",
        run.stderr_tail()
    );
    let d = conf_dir.path().display();
    let conf = format!(
        "reporting-disabled = true\nbind-address = \"127.0.0.1:{}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n[http]\n  bind-address = \"127.0.0.1:{}\"\n  log-enabled = false\n[logging]\n  level = \"warn\"\n",
        ports[0], ports[1]
    );
    let conf_path = write(conf_dir.path(), "influxdb.conf", &conf);
    let mut icmd = Command::new("influxd");
    icmd.args(["-config", &conf_path]);
    let server = try_start(icmd, "influxd (Debian package `influxdb`)");
    let url = format!("http://127.0.0.1:{}", ports[1]);
    assert!(
        wait_for(20, || http_get(&format!("{url}/ping"))
            .is_ok_and(|(c, _)| c == 204)),
        "influxd never answered /ping: {}",
        server.stderr_tail()
    );
    let out = run.wait_with_deadline(RUN_DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warned = stderr
        .lines()
        .find(|l| l.contains("will retry at the next flush"))
        .unwrap();
    assert!(warned.contains("run_id"), "the run id is logged: {warned}");
    let total = mock_total(&mock);
    assert_eq!(
        sum(&url, "late", "SELECT sum(\"count\") FROM \"perfornium\""),
        total,
        "the points held back while influxd was down were sent later: {stderr}"
    );
}

#[test]
fn a_distributed_run_writes_the_merged_points_once() {
    let influx = influxd();
    let mock = mock(0);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let file = two_step_test(&mock, "dist-influx")
        .extra(&influx_output(&influx.url, "dist"))
        .write(dir.path());
    let out = dir.path().join("out");
    run_in(
        dir.path(),
        &[
            "distributed",
            &file,
            "-w",
            &worker_list(&[&a, &b]),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let total = mock_total(&mock);
    assert_eq!(summary(&out)["overall"]["count"], total);
    assert_eq!(
        influx.sum("dist", "SELECT sum(\"count\") FROM \"perfornium\""),
        total,
        "merged once, not once per worker"
    );
    let runs = influx.query(
        "dist",
        "SHOW TAG VALUES FROM \"perfornium\" WITH KEY = \"run_id\"",
    );
    assert_eq!(runs.len(), 1, "one writer, the controller: {runs:?}");
    // One point per step and second: the workers' shares of a second were merged before writing.
    let per_step = influx.query(
        "dist",
        "SELECT count(\"count\") FROM \"perfornium\" WHERE \"step\" = 'list'",
    );
    let timeline = summary(&out)["timeline"].as_array().unwrap().clone();
    let seconds_with_list = timeline
        .iter()
        .filter(|p| p["steps"][0]["requests"].as_u64().unwrap() > 0)
        .count() as u64;
    assert_eq!(per_step[0][1].as_u64().unwrap(), seconds_with_list);
}

#[test]
fn the_influxdb_example_runs_against_the_mock() {
    let influx = influxd();
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/outputs-influxdb.yaml"
    ))
    .unwrap();
    assert!(example.contains("http://localhost:8086"));
    let text = example.replace("http://localhost:8086", &influx.url);
    let path = write(dir.path(), "outputs-influxdb.yaml", &text);
    let base = format!("http://{}", mock.addr);
    run_in(dir.path(), &["run", &path, "--base-url", &base]);
    let total = mock_total(&mock);
    assert!(total > 0);
    assert_eq!(
        influx.sum("perfornium", "SELECT sum(\"count\") FROM \"http_requests\""),
        total
    );
    let results = dir.path().join("results");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(one_file(&results, "example-")).unwrap())
            .unwrap();
    assert_eq!(doc["summary"]["overall"]["count"], total);
}

// ------------------------------------------------------------------------------------------------
// Graphite

/// carbon-cache in the foreground with its line, pickle and cache-query ports free, its whisper
/// files in a temporary directory and one-second retention; killed when dropped.
struct Carbon {
    _proc: Proc,
    port: u16,
    dir: tempfile::TempDir,
}

fn carbon() -> Carbon {
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(3);
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("conf")).unwrap();
        let conf = format!(
            "[cache]\nSTORAGE_DIR = {d}/storage/\nLOCAL_DATA_DIR = {d}/storage/whisper/\nWHITELISTS_DIR = {d}/storage/lists/\nCONF_DIR = {d}/conf/\nLOG_DIR = {d}/storage/log/\nPID_DIR = {d}/storage/\nENABLE_LOGROTATION = False\nUSER =\nENABLE_TAGS = False\nMAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\nLINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {}\nENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {}\nCACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {}\nLOG_LISTENER_CONN_SUCCESS = False\nLOG_UPDATES = False\nLOG_CREATES = False\n",
            ports[0], ports[1], ports[2]
        );
        let conf_path = write(&dir.path().join("conf"), "carbon.conf", &conf);
        write(
            &dir.path().join("conf"),
            "storage-schemas.conf",
            "[all]\npattern = .*\nretentions = 1s:1h\n",
        );
        let mut cmd = Command::new("carbon-cache");
        cmd.args([&format!("--config={conf_path}"), "--nodaemon", "start"]);
        let mut proc = try_start(
            cmd,
            "carbon-cache (Debian package `graphite-carbon`, see .ci/run)",
        );
        let t = Instant::now();
        while t.elapsed() < SERVER_READY {
            if proc.child.try_wait().unwrap().is_some() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", ports[0])).is_ok() {
                return Carbon {
                    _proc: proc,
                    port: ports[0],
                    dir,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        proc.kill();
        last = proc.stderr_tail();
        if !port_taken(&last) {
            break;
        }
    }
    panic!("carbon-cache never listened:\n{last}")
}

impl Carbon {
    /// The sum of the values stored in the whisper file of `metric` (dotted path), read with
    /// `whisper-fetch`; 0 while the file does not exist yet.
    fn sum(&self, metric: &str) -> f64 {
        let mut path = self.dir.path().join("storage/whisper");
        for part in metric.split('.') {
            path.push(part);
        }
        path.set_extension("wsp");
        if !path.exists() {
            return 0.0;
        }
        let mut cmd = Command::new("whisper-fetch");
        cmd.arg(format!("--from={}", now_ms() / 1000 - 3000))
            .arg(&path);
        let out = start_cmd(cmd).wait_with_deadline(Duration::from_secs(20));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .sum()
    }
}

#[test]
fn graphite_carbon_stores_points_that_add_up_to_the_mocks_count() {
    let carbon = carbon();
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = two_step_test(&mock, "graph")
        .extra(&format!(
            "outputs:\n  - {{ type: graphite, url: \"127.0.0.1:{}\", flush_interval: 300ms }}\n",
            carbon.port
        ))
        .write(dir.path());
    run_in(dir.path(), &["run", &file]);
    let total = mock_total(&mock) as f64;
    assert!(total > 20.0);
    // carbon writes its cache to disk on its own schedule: read until the sums are there.
    let sum =
        || carbon.sum("perfornium.graph.list.count") + carbon.sum("perfornium.graph.one.count");
    let stored = wait_for(20, || sum() == total);
    assert!(stored, "whisper holds {} of {total}", sum());
    assert!(wait_for(20, || carbon
        .sum("perfornium.graph.summary.all.count")
        == total));
    assert!(carbon.sum("perfornium.graph.list.p95_ms") > 0.0);
}

// ------------------------------------------------------------------------------------------------
// Webhook

/// A received request: method, path, headers (lowercased names), body.
type Received = (String, String, Vec<(String, String)>, String);

/// A tiny HTTP/1.1 receiver on a free port: answers 200 to everything, keeps each request.
fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() || line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            );
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.trim().split_once(':') {
                    headers.push((k.trim().to_lowercase(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            keep.lock().unwrap().push((
                method,
                path,
                headers,
                String::from_utf8_lossy(&body).to_string(),
            ));
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (format!("http://{addr}"), got)
}

#[test]
fn a_webhook_gets_one_post_with_the_summary() {
    let (url, got) = receiver();
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = two_step_test(&mock, "hook")
        .extra(&format!(
            "outputs:\n  - type: webhook\n    url: \"{url}/plain\"\n    method: POST\n    headers: {{ X-Token: abc, Content-Type: application/json }}\n  - type: webhook\n    url: \"{url}/templated\"\n    template: '{{\"text\": \"{{{{test_name}}}}: {{{{total_requests}}}} requests, {{{{success_rate}}}}% ok\", \"p95\": {{{{summary.overall.p95_ms}}}}}}'\n"
        ))
        .write(dir.path());
    run_in(dir.path(), &["run", &file]);
    let total = mock_total(&mock);
    let got = got.lock().unwrap().clone();
    let plain: Vec<&Received> = got.iter().filter(|r| r.1 == "/plain").collect();
    assert_eq!(plain.len(), 1, "exactly one POST: {got:?}");
    let (method, _, headers, body) = plain[0];
    assert_eq!(method, "POST");
    assert!(
        headers.contains(&("x-token".into(), "abc".into())),
        "{headers:?}"
    );
    assert_eq!(
        headers.iter().filter(|(k, _)| k == "content-type").count(),
        1,
        "a Content-Type given in `headers` replaces the default: {headers:?}"
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["type"], "test_completed");
    assert_eq!(v["summary"]["overall"]["count"], total);
    assert_eq!(v["summary"]["test"], "hook");
    let templated: Vec<&Received> = got.iter().filter(|r| r.1 == "/templated").collect();
    assert_eq!(templated.len(), 1, "{got:?}");
    let v: serde_json::Value = serde_json::from_str(&templated[0].3).unwrap();
    assert_eq!(v["text"], format!("hook: {total} requests, 100.00% ok"));
    assert!(v["p95"].as_f64().unwrap() > 0.0);
}

// ------------------------------------------------------------------------------------------------
// Validation

#[test]
fn output_and_report_keys_that_cannot_act_are_refused_by_name_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name: t\nglobal:\n  base_url: http://127.0.0.1:9\nload: { pattern: basic, virtual_users: 1, iterations: 1 }\nscenarios:\n  - name: s\n    steps:\n      - path: /\n";
    for (extra, line, want) in [
        (
            "outputs:\n  - { type: json, file: r.json }\n  - { type: csv, compression: gzip }\n",
            11,
            "`compression` is not supported: files are written uncompressed",
        ),
        (
            "outputs:\n  - { type: influxdb, url: \"http://h:8086\", databse: d }\n",
            10,
            "did you mean `database`?",
        ),
        ("outputs:\n  - { type: jsno }\n", 10, "did you mean `json`?"),
        (
            "outputs:\n  - { type: json, include_response_body: true }\n",
            10,
            "not a request",
        ),
        (
            "report:\n  generate: true\n  branding: { logo: x.png }\n",
            10,
            "`branding` is not supported",
        ),
    ] {
        let path = write(dir.path(), "t.yaml", &format!("{base}{extra}"));
        let res = run(&["validate", &path]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{extra}: {stderr}");
        assert!(
            stderr.contains(&format!("t.yaml:{line}:")),
            "{extra}: line {line}: {stderr}"
        );
        assert!(stderr.contains(want), "{extra}: {stderr}");
    }
    let path = write(
        dir.path(),
        "t.yaml",
        &format!("{base}outputs:\n  - {{ type: influxdb, url: \"http://h:8086\", database: d }}\n  - {{ type: json, file: r.json, enabled: false }}\nreport: {{ generate: true, output: r.html }}\n"),
    );
    let res = run(&["validate", "--explain", &path]);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        stdout.contains("one record per step per second"),
        "{stdout}"
    );
    assert!(stdout.contains("http://h:8086"), "{stdout}");
    assert!(stdout.contains("disabled"), "{stdout}");
    assert!(stdout.contains("r-{{timestamp}}.html"), "{stdout}");
}

#[test]
fn an_influxdb_that_never_answers_does_not_slow_the_load() {
    // A listener that accepts connections and never answers: every write waits for its timeout.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hole.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in hole.incoming().flatten() {
            held.push(c);
        }
    });
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("hole")
        .load("pattern: arrivals, rate: 50, duration: 2s")
        .extra(&format!(
            "outputs:\n  - {{ type: influxdb, url: \"http://{addr}\", database: d, flush_interval: 100ms }}\n"
        ))
        .write(dir.path());
    let out = dir.path().join("out");
    let started = Instant::now();
    let res = run_in(dir.path(), &["run", &file, "-o", out.to_str().unwrap()]);
    let took = started.elapsed();
    let s = summary(&out);
    assert_eq!(mock_total(&mock), 100, "50/s for 2 s, every arrival sent");
    assert_eq!(s["overall"]["count"], 100);
    assert_eq!(s["dropped_iterations"], 0);
    assert!(
        s["duration_s"].as_f64().unwrap() < 2.5,
        "the load kept its pace: {}",
        s["duration_s"]
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("points not written when the run ended"),
        "{stderr}"
    );
    // After the load: a write in flight (≤ 3 s) and the last flush's two tries (each bounded by
    // the 3 s request timeout, 0.5 s apart) — about 12 s with the run; the bound leaves room for
    // a loaded CI host, and still fails if a write waited without its timeout.
    assert!(took < Duration::from_secs(25), "{took:?}");
}
