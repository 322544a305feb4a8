//! `perfornium demo` (README's first command) works on a fresh machine with no terminal: it starts
//! its own mock, three workers and three master replicas, runs the example, prints the summary, and
//! exits by itself with everything stopped.

use crate::support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_demo_runs_a_whole_local_cluster_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--duration",
            "3s",
            "--no-tui",
            "-o",
            out.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            child.kill().unwrap();
            panic!("the demo did not exit by itself");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let res = child.wait_with_output().unwrap();
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
