//! The arrival rate over time: the engine counts the arrivals it makes each second (iterations
//! started; in the open model, arrivals that started) and, for the open model, the arrivals its
//! schedule made due (the target). Both reach `summary.json`'s timeline, and the HTML report draws
//! them as the "arrival rate" chart, checked in headless Chromium against the run's own totals and
//! the mock's count of requests served.

use crate::report::{chromium_dom, svg};
use crate::support::*;

/// The values a chart's line carries (`data-y`), summed.
fn line_sum(chart: &str, name: &str) -> f64 {
    let at = chart
        .find(&format!("data-name=\"{name}\" data-y=\""))
        .unwrap_or_else(|| panic!("no line `{name}` in {chart}"));
    let rest = &chart[at..];
    let rest = &rest[rest.find("data-y=\"").unwrap() + "data-y=\"".len()..];
    rest[..rest.find('"').unwrap()]
        .split(' ')
        .map(|v| v.parse::<f64>().unwrap())
        .sum()
}

/// A timeline's column, summed.
fn column(s: &serde_json::Value, key: &str) -> u64 {
    s["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|p| p[key].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn the_open_models_arrivals_and_target_are_drawn_and_add_up_to_the_run() {
    // One request per arrival: 20/s for 2 s makes 40 due.
    let mock = mock(1);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("arrivals")
        .load("pattern: arrivals, rate: 20, duration: 2s")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "--report", "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    let count = s["overall"]["count"].as_u64().unwrap();
    let served = mock_stats(&mock)["total"].as_u64().unwrap();
    assert_eq!(count, served);
    assert_eq!(
        column(&s, "arrivals"),
        count,
        "one request per arrival made"
    );
    assert_eq!(column(&s, "target_arrivals"), 40, "the schedule's arrivals");
    assert!(count > 0);

    let dom = chromium_dom(&out.join("report.html"));
    assert!(dom.contains("charts 6/6"), "{}", &dom[..dom.len().min(300)]);
    let chart = svg(&dom, "arrivals");
    assert_eq!(line_sum(chart, "all (merged)"), count as f64);
    assert_eq!(line_sum(chart, "target"), 40.0);
}

#[test]
fn a_closed_models_arrivals_are_its_iterations() {
    // 3 VUs, 7 iterations each, one request per iteration; no target line for a closed model.
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 3, iterations: 7")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_eq!(column(&s, "arrivals"), 21);
    assert_eq!(mock_stats(&mock)["total"].as_u64(), Some(21));
    assert!(
        s["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("target_arrivals").is_none()),
        "a closed model has no target"
    );
}
