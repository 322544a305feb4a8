//! What an operator reads in the logs of a real cluster: three `perfornium master` replicas with
//! `--log-format json`, two workers and a `console --no-tui`, one run in which a worker is killed.
//! The lines must say who was elected, when the run started and ended and which worker failed, and
//! every line about the run must carry its run id (the correlation id an operator greps for).

use crate::support::*;

/// Every JSON log line a process wrote to stderr (other lines, like the listening banner, skipped).
fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("level").is_some())
        .collect()
}

fn message(v: &serde_json::Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or("")
}

/// The run id a JSON line carries, as a field of its own or of the span it was logged in.
fn run_id(v: &serde_json::Value) -> Option<&str> {
    v["fields"]["run_id"]
        .as_str()
        .or_else(|| v["span"]["run_id"].as_str())
}

#[test]
fn masters_workers_and_the_console_log_elections_runs_and_a_dead_worker_with_the_run_id() {
    let mock = mock(0);
    let c = Cluster::start_with_args(&["--log-format".into(), "json".into()], None);
    let w1 = worker(None);
    let mut w2 = worker(None);
    let body = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, duration: 6s")
        .extra(
            "distributed:\n  orchestration:\n    heartbeat_interval: 1s\n    failure_handling:\n      worker_failure_threshold: 60\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 2s\n",
        )
        .submit_body(&[&w1, &w2]);
    let leader = c.agreed_leader(20);
    let id = c.submit(leader, &body);
    let console = start(&["console", "--cluster", &c.list(), "--no-tui"]);
    wait_pulled(&w2, 20);
    w2.kill();
    let all: Vec<usize> = (0..3).collect();
    c.wait_phase(&all, &id, "finished", 60);
    let console = console.wait_with_deadline(RUN_DEADLINE);
    let console_err = String::from_utf8_lossy(&console.stderr).to_string();

    // The replica that drove the run (the leader throughout: nothing disturbed the election).
    let driver = c.procs[leader].as_ref().expect("the leader runs");
    let lines = json_lines(&driver.stderr_tail());
    let context = || format!("leader's log:\n{}", driver.stderr_tail());
    assert!(
        (0..3).any(|i| c.procs[i]
            .as_ref()
            .is_some_and(|p| json_lines(&p.stderr_tail())
                .iter()
                .any(|v| message(v) == "elected leader"))),
        "no replica logged its election.\n{}",
        c.stderr_tails()
    );
    for wanted in [
        "run submitted",
        "run started",
        "worker failed",
        "run finished",
    ] {
        let found: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|v| message(v).starts_with(wanted))
            .collect();
        assert!(!found.is_empty(), "no `{wanted}` line. {}", context());
        for v in found {
            assert_eq!(
                run_id(v),
                Some(id.as_str()),
                "`{wanted}` without the run id: {v}"
            );
        }
    }
    let failed = lines
        .iter()
        .find(|v| message(v).starts_with("worker failed"))
        .expect("checked above");
    assert_eq!(failed["level"], "WARN", "{failed}");
    assert_eq!(failed["fields"]["worker"], w2.addr.as_str(), "{failed}");
    // Every line the run's driver wrote is in the run's span.
    let driver_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["target"] == "perfornium::control::driver")
        .collect();
    assert!(driver_lines.len() >= 4, "{}", context());
    for v in driver_lines {
        assert_eq!(
            run_id(v),
            Some(id.as_str()),
            "a driver line outside the run: {v}"
        );
    }

    // The surviving worker, in the default text format.
    let w1_log = w1.stderr_tail();
    for wanted in ["run prepared", "run started", "run ended"] {
        assert!(
            w1_log
                .lines()
                .any(|l| l.contains(wanted) && l.contains(&format!("run_id={id}"))),
            "worker: no `{wanted}` line with run_id={id}:\n{w1_log}"
        );
    }

    // The console says which leader it follows and how the run ended, with the run id.
    for wanted in ["leader", "run ended"] {
        assert!(
            console_err
                .lines()
                .any(|l| l.contains(wanted) && l.contains(&format!("run_id={id}"))),
            "console: no `{wanted}` line with run_id={id}:\n{console_err}"
        );
    }
}
