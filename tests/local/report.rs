//! Reports: `-o DIR` writes summary.json, timeline.ndjson and junit.xml; `--report` writes a
//! self-contained HTML report that headless Chromium renders with its charts drawn (ticks,
//! gridlines, the percentile spectrum with the summary's figures, status codes over time, one line
//! per worker and the run's events on the time axis); `perfornium report` rebuilds it from a saved
//! summary or from the TypeScript tool's JSON and CSV results, under a `{{timestamp}}` name.

use crate::support::*;
use std::process::Command;
use std::time::Duration;

/// How long headless Chromium may take to render or screenshot the report before it is killed.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(60);

fn run_with_report() -> (tempfile::TempDir, std::path::PathBuf) {
    let mock = mock(1);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("report")
        .load("pattern: basic, virtual_users: 3, duration: 3s")
        .scenario("think_time: 20ms")
        .steps("      - name: list\n        path: /users\n        checks:\n          - { type: status, value: 200 }\n          - { type: text_contains, value: nope, description: has nope }\n      - name: broken\n        path: /status/500\n")
        .thresholds(&["p95 < 2s", "error_rate < 1%"])
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "--report", "-o", out.to_str().unwrap()]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "error_rate fails: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    (dir, out)
}

#[test]
fn junit_has_a_testcase_per_threshold_and_per_check() {
    let (_dir, out) = run_with_report();
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(
        xml.matches("<testcase").count(),
        4,
        "2 thresholds + 2 checks:\n{xml}"
    );
    assert_eq!(
        xml.matches("<failure").count(),
        2,
        "error_rate and `has nope` fail:\n{xml}"
    );
    assert!(
        xml.contains("name=\"threshold error_rate &lt; 1%\""),
        "{xml}"
    );
    assert!(xml.contains("check has nope"), "{xml}");
    let lines = std::fs::read_to_string(out.join("timeline.ndjson")).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for key in [
        "requests",
        "errors",
        "active_vus",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "steps",
    ] {
        assert!(
            first.get(key).is_some(),
            "timeline line lacks {key}: {first}"
        );
    }
}

#[test]
fn the_html_report_is_self_contained_and_its_charts_draw_in_chromium() {
    let (dir, out) = run_with_report();
    let html_path = out.join("report.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<link"),
        "no network fetches"
    );
    assert!(
        html.contains("list") && html.contains("broken") && html.contains("error_rate &lt; 1%")
    );

    // `perfornium report` rebuilds the same page from summary.json; a broken file is refused.
    let again = dir.path().join("again.html");
    let res = run(&[
        "report",
        out.join("summary.json").to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(res.status.success());
    assert_eq!(std::fs::read_to_string(&again).unwrap(), html);
    let broken = write(dir.path(), "broken.json", "{\"name\": 3");
    let res = run(&["report", &broken, "-o", again.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("not a perfornium summary.json"));

    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok());
    let chromium = chromium.expect("chromium is required for this test (.ci/run installs it)");
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=900,1600",
    ];
    let url = format!("file://{}", html_path.display());
    let user_data = format!("--user-data-dir={}", profile.path().display());
    let mut dump = Command::new(chromium);
    dump.args(flags).arg(&user_data).args(["--dump-dom", &url]);
    let dom = start_cmd(dump).wait_with_deadline(CHROMIUM_DEADLINE);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("charts 6/6"),
        "the page reports its drawn charts: {}",
        &dom[..dom.len().min(400)]
    );
    // Every chart has y and x ticks with labels and gridlines.
    for chart in dom.split("<svg class=\"chart\"").skip(1) {
        let chart = &chart[..chart.find("</svg>").unwrap()];
        for part in [
            "class=\"axis ytick\"",
            "class=\"axis xtick\"",
            "class=\"grid y\"",
            "class=\"grid x\"",
        ] {
            assert!(
                chart.matches(part).count() >= 2,
                "a chart lacks {part}: {}",
                &chart[..200]
            );
        }
    }
    // The spectrum's table shows the summary's own p50, p90, p95, p99 and max.
    let s = summary(&out);
    for (key, p) in [
        ("p50", "p50"),
        ("p90", "p90"),
        ("p95", "p95"),
        ("p99", "p99"),
        ("max", "max"),
    ] {
        let want = format!(
            "<td data-p=\"{p}\">{:.2}</td>",
            s["overall"][key].as_f64().unwrap()
        );
        assert!(dom.contains(&want), "spectrum table lacks {want}");
    }
    assert!(
        dom.contains("id=\"spectrum\"") && dom.contains(">99%</text>"),
        "the spectrum's log axis is labelled in percentiles"
    );
    // Status codes over time: a line for 200 (list) and one for 500 (broken).
    for code in ["200", "500"] {
        assert!(
            dom.contains(&format!("data-name=\"{code}\"")),
            "no line for status {code}"
        );
    }

    let shot = dir.path().join("report.png");
    let mut screenshot = Command::new(chromium);
    screenshot
        .args(flags)
        .arg(&user_data)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url);
    let res = start_cmd(screenshot).wait_with_deadline(CHROMIUM_DEADLINE);
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    // Pixel check: the p99 line's colour (#e76f51) must appear in the picture.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    let near = |a: u8, b: u8| a.abs_diff(b) < 24;
    let p99_pixels = buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| near(p[0], 0xe7) && near(p[1], 0x6f) && near(p[2], 0x51))
        .count();
    assert!(
        p99_pixels > 50,
        "the latency chart's p99 line is visible ({p99_pixels} pixels)"
    );
}

/// Renders `page` in headless Chromium and returns the DOM after its script ran.
pub(crate) fn chromium_dom(page: &std::path::Path) -> String {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("chromium is required for this test (.ci/run installs it)");
    let profile = tempfile::tempdir().unwrap();
    let mut dump = Command::new(chromium);
    dump.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(["--dump-dom", &format!("file://{}", page.display())]);
    let out = start_cmd(dump).wait_with_deadline(CHROMIUM_DEADLINE);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element with `id` up to its first closing tag (for a leaf like a paragraph).
fn element<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let rest = &dom[at..];
    &rest[..rest.find("</").unwrap()]
}

/// The markup of the chart with `id`.
pub(crate) fn svg<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("<svg class=\"chart\" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart #{id}"));
    let rest = &dom[at..];
    &rest[..rest.find("</svg>").unwrap()]
}

/// The TypeScript tool's result files (`tests/fixtures/ts-results`, made by its `generate.py` in the
/// tool's JSON and CSV output formats): the requests they record are the report's, under a name
/// with `{{timestamp}}` expanded as the TypeScript tool writes it (`YYYYMMDD-HHMMSS-mmm`).
#[test]
fn report_reads_the_typescript_tools_json_and_csv_results_under_a_timestamped_name() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ts-results");
    let json = fixtures.join("results.json");
    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let total = fixture["summary"]["total_requests"].as_u64().unwrap();
    let failed = fixture["summary"]["failed_requests"].as_u64().unwrap();
    assert_eq!(total, fixture["results"].as_array().unwrap().len() as u64);
    let dir = tempfile::tempdir().unwrap();
    let mut headlines = Vec::new();
    for (file, kind) in [(&json, "json"), (&fixtures.join("results.csv"), "csv")] {
        let name = dir
            .path()
            .join(format!("reports/ts-{kind}-{{{{timestamp}}}}.html"));
        let res = run(&[
            "report",
            file.to_str().unwrap(),
            "-o",
            name.to_str().unwrap(),
            "--title",
            "From TS",
        ]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let written: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("ts-{kind}-")))
            .collect();
        assert_eq!(written.len(), 1, "{written:?}");
        let stamp = written[0]
            .strip_prefix(&format!("ts-{kind}-"))
            .and_then(|n| n.strip_suffix(".html"))
            .unwrap();
        let shape: Vec<usize> = stamp.split('-').map(str::len).collect();
        assert!(
            shape == [8, 6, 3] && stamp.chars().all(|c| c.is_ascii_digit() || c == '-'),
            "YYYYMMDD-HHMMSS-mmm: {stamp}"
        );
        let page = dir.path().join("reports").join(&written[0]);
        let dom = chromium_dom(&page);
        assert!(
            dom.contains("From TS | charts 5/5"),
            "{}",
            &dom[..dom.len().min(300)]
        );
        let headline = element(&dom, "headline").to_string();
        assert!(
            headline.contains(&format!("{total} requests"))
                && headline.contains(&format!("{failed} errors")),
            "{kind}: {headline}"
        );
        assert!(dom.contains("list users") && dom.contains("get user"));
        assert!(
            dom.contains("connect ECONNREFUSED 127.0.0.1:1"),
            "the refused request's error is listed"
        );
        // The slowest request (120 ms) is the spectrum's maximum, within the histogram's 0.1 %.
        let at = dom.find("data-p=\"max\">").expect("max cell") + "data-p=\"max\">".len();
        let max: f64 = dom[at..at + dom[at..].find('<').unwrap()].parse().unwrap();
        assert!((max - 120.0).abs() <= 0.12, "{kind}: max {max}");
        headlines.push(headline);
    }
    assert_eq!(
        headlines[0], headlines[1],
        "the JSON and CSV files hold the same requests"
    );

    // A CSV without the tool's columns and a custom template are refused by name.
    let bad = write(dir.path(), "bad.csv", "when,ms\n1,2\n");
    let res = run(&["report", &bad]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("no `timestamp` column"));
    let res = run(&["report", json.to_str().unwrap(), "-t", "custom.hbs"]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("templates are not supported"));
}

/// A distributed run with a worker killed midway: one throughput, one p95 and one arrival-rate line
/// per worker beside the merged one (the merged arrivals the sum of the workers'), a row per worker of what the controller measured of it (its calls), each
/// worker's seconds adding up to what the controller merged from it, and the failure marked on
/// every time axis at the second the run record kept.
#[test]
fn a_distributed_report_draws_a_line_per_worker_and_marks_the_failure_on_the_time_axis() {
    let mock = mock(5);
    let (a, mut b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let extra = "distributed:\n  orchestration:\n    failure_handling:\n      worker_failure_threshold: 60\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 1s\n";
    let file = yaml(&mock)
        .name("dist-report")
        .load("pattern: basic, virtual_users: 2, duration: 5s")
        .step("{ name: list, path: /users }")
        .extra(extra)
        .write(dir.path());
    let out = dir.path().join("out");
    let list = worker_list(&[&a, &b]);
    let child = start(&[
        "distributed",
        &file,
        "-w",
        &list,
        "-s",
        "even",
        "--report",
        "-o",
        out.to_str().unwrap(),
    ]);
    wait_pulled(&b, 20);
    b.kill();
    let res = child.wait_with_deadline(Duration::from_secs(60));
    let s = summary(&out);
    let events = s["events"].as_array().expect("events");
    let seconds = s["event_seconds"].as_array().expect("event_seconds");
    assert_eq!(events.len(), seconds.len(), "{events:?} {seconds:?}");
    let failed = events
        .iter()
        .position(|e| e.as_str().unwrap().contains("failed"))
        .unwrap_or_else(|| {
            panic!(
                "no failure event: {events:?}; {}",
                String::from_utf8_lossy(&res.stderr)
            )
        });
    // Killed after its first second was pulled, and found dead a detection timeout (1 s) later.
    assert!(
        seconds[failed].as_u64().unwrap() >= 2,
        "the failure is marked when it happened: {seconds:?}"
    );
    for w in s["workers"].as_array().unwrap() {
        let points = w["points"].as_array().expect("per-worker points");
        let sum: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
        assert_eq!(sum, w["merged_count"].as_u64().unwrap(), "{}", w["address"]);
        assert!(sum > 0);
    }
    let arrivals = |points: &serde_json::Value| -> u64 {
        points
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["arrivals"].as_u64().unwrap_or(0))
            .sum()
    };
    let by_workers: u64 = s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| arrivals(&w["points"]))
        .sum();
    assert_eq!(arrivals(&s["timeline"]), by_workers, "merged exactly");
    assert!(by_workers > 0);

    let dom = chromium_dom(&out.join("report.html"));
    assert!(dom.contains("charts 7/7"), "{}", &dom[..dom.len().min(300)]);
    // What the controller measured of each worker: a row each, with its calls' round trip.
    let measured = &dom[dom.find("id=\"worker-monitor\"").expect("#worker-monitor")..];
    let measured = &measured[..measured.find("</table>").unwrap()];
    for w in s["workers"].as_array().unwrap() {
        let calls = w["monitor"]["calls"].as_u64().unwrap();
        let row = format!(
            "<tr data-worker=\"{}\"><td>{}</td><td>{calls}</td>",
            w["address"].as_str().unwrap(),
            w["address"].as_str().unwrap()
        );
        assert!(
            calls > 0 && measured.contains(&row),
            "no `{row}` in {measured}"
        );
    }
    for id in ["throughput", "worker-p95", "arrivals"] {
        let chart = svg(&dom, id);
        assert!(
            chart.contains("data-name=\"all (merged)\""),
            "{id} lacks the merged line"
        );
        for w in s["workers"].as_array().unwrap() {
            let line = format!("data-name=\"{}\"", w["address"].as_str().unwrap());
            assert!(chart.contains(&line), "{id} lacks {line}");
        }
    }
    for id in [
        "latency",
        "throughput",
        "worker-p95",
        "vus",
        "arrivals",
        "status",
    ] {
        let chart = svg(&dom, id);
        assert_eq!(
            chart.matches("class=\"event\"").count(),
            events.len(),
            "{id} marks every event"
        );
        assert!(chart.contains(&format!("data-second=\"{}\"", seconds[failed])));
    }
}

/// `run -o 'DIR/r-{{timestamp}}.json'` writes the summary under this run's time, not a literal name.
#[test]
fn run_output_names_take_the_timestamp() {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("stamped")
        .load("pattern: basic, virtual_users: 1, duration: 1s")
        .step("{ name: list, path: /users }")
        .write(dir.path());
    let out = dir.path().join("runs/r-{{timestamp}}.json");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let stamp = names[0]
        .strip_prefix("r-")
        .and_then(|n| n.strip_suffix(".json"))
        .unwrap();
    let shape: Vec<usize> = stamp.split('-').map(str::len).collect();
    assert_eq!(shape, [8, 6, 3], "YYYYMMDD-HHMMSS-mmm: {stamp}");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs").join(&names[0])).unwrap())
            .unwrap();
    let served = mock_stats(&mock)["total"].as_u64();
    assert_eq!(
        s["overall"]["count"].as_u64(),
        served,
        "the summary counts what the mock served"
    );
}

/// A leader killed mid-run: the replica that takes the run over records "leader changed" in the run
/// record, and the report made from the finished run's summary marks it on every time axis.
#[test]
fn a_leader_change_is_an_event_marked_on_the_reports_time_axis() {
    let mut c = Cluster::start();
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let body = yaml(&mock)
        .name("leader-report")
        .load("pattern: basic, virtual_users: 2, duration: 6s")
        .step("{ name: list, path: /users }")
        .submit_body(&[&a, &b]);
    let old = c.agreed_leader(20);
    let id = c.submit(old, &body);
    c.wait_merged(old, &id, 2, 20);
    c.kill(old);
    let view = c.wait_phase(&[0, 1, 2], &id, "finished", 40);
    let s = &view["summary"];
    let events = s["events"].as_array().expect("events");
    let at = events
        .iter()
        .position(|e| e.as_str().unwrap().starts_with("leader changed"))
        .unwrap_or_else(|| panic!("no leader change among {events:?}"));
    let second = s["event_seconds"][at].as_u64().expect("its second");
    assert!(
        second >= 1,
        "after the batches merged before the kill: {second}"
    );
    assert_eq!(
        s["overall"]["count"].as_u64(),
        mock_stats(&mock)["total"].as_u64(),
        "the report's count is the mock's"
    );

    let dir = tempfile::tempdir().unwrap();
    let saved = write(dir.path(), "summary.json", &s.to_string());
    let page = dir.path().join("report.html");
    let res = run(&["report", &saved, "-o", page.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let dom = chromium_dom(&page);
    for id in ["latency", "throughput", "vus", "status"] {
        let chart = svg(&dom, id);
        assert!(
            chart.contains(&format!(
                "data-second=\"{second}\"><title>{second}s: leader changed"
            )),
            "{id} marks the leader change"
        );
    }
}
