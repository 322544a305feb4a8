//! Reports: `-o DIR` writes summary.json, timeline.ndjson and junit.xml; `--report` writes a
//! self-contained HTML report that headless Chromium renders with its charts drawn; `perfornium
//! report` rebuilds it from a saved summary.

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
        dom.contains("charts 3/3"),
        "the page reports its drawn charts: {}",
        &dom[..dom.len().min(400)]
    );

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
