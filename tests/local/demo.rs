//! `perfornium demo` (README's first command) works on a fresh machine with no terminal: it starts
//! its own mock, three workers and three master replicas, runs the example, prints the summary, and
//! exits by itself with everything stopped.

use crate::support::*;
use std::time::Duration;

#[test]
fn the_demo_runs_a_whole_local_cluster_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Killed, with its stderr shown, if it does not exit by itself; its pipes are read as it runs.
    let res = start(&[
        "demo",
        "--duration",
        "3s",
        "--no-tui",
        "-o",
        out.to_str().unwrap(),
    ])
    .wait_with_deadline(Duration::from_secs(90));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr),
    );
    assert_eq!(res.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(
        stderr.contains("master replicas") && stderr.contains("leader: node"),
        "{stderr}"
    );
    assert!(stdout.contains("result: PASSED"), "{stdout}");
    let s = summary(&out);
    assert_eq!(s["workers"].as_array().unwrap().len(), 3);
    assert!(s["overall"]["count"].as_u64().unwrap() > 0);
    assert!(
        s["start_skew_ms"].as_f64().is_some(),
        "the demo uses a synchronized start"
    );
}
