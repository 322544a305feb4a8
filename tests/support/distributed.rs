//! A distributed run on real processes, the steps most cluster tests repeat: a one-replica
//! `perfornium master`, the mock and workers ([`Distributed`]); submitting a test to the master,
//! waiting for what its `GET /runs/{id}` view shows (a phase, an event) and reading the final
//! summary; and `perfornium distributed` run to completion with its `summary.json`
//! ([`run_distributed`]).

use super::{
    call, get_json, mock, mock_stats, one_replica_master, summary, wait_for, wait_running,
};
use super::{run, worker, Proc, Yaml};
use serde_json::Value;
use std::path::Path;

/// How long a run's view may take to reach a final phase after its planned end.
pub const FINAL_WITHIN: u64 = 30;

/// A one-replica master, the mock and workers, each killed when this is dropped.
pub struct Distributed {
    pub dir: tempfile::TempDir,
    pub master: Proc,
    pub mock: Proc,
    pub workers: Vec<Proc>,
}

impl Distributed {
    /// A one-replica master, a mock that answers after `delay_ms`, and `workers` workers.
    pub fn start(delay_ms: u64, workers: usize) -> Distributed {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = one_replica_master(dir.path());
        let mock = mock(delay_ms);
        let workers = (0..workers).map(|_| worker(None)).collect();
        Distributed {
            dir,
            master,
            mock,
            workers,
        }
    }

    /// The workers, for [`Yaml::submit_body`].
    pub fn worker_refs(&self) -> Vec<&Proc> {
        self.workers.iter().collect()
    }

    /// Submits `yaml` on every worker and waits until each runs and the run's view says
    /// `started`; returns the run id.
    pub fn start_run(&self, yaml: &Yaml) -> String {
        let id = submit_run(&self.master, &yaml.submit_body(&self.worker_refs()));
        for w in &self.workers {
            wait_running(w, 15);
        }
        let ok = wait_for(10, || self.view(&id)["phase"] == "started");
        assert!(ok, "run not started: {}", self.master.stderr_tail());
        id
    }

    /// `GET /runs/{id}` of the master.
    pub fn view(&self, id: &str) -> Value {
        run_view(&self.master, id)
    }

    /// Waits up to `secs` until the run's events hold `needle`; returns the view that showed it.
    pub fn wait_event(&self, id: &str, needle: &str, secs: u64) -> Value {
        wait_run_event(&self.master, id, needle, secs)
    }

    /// Waits for the run's final phase; returns its view.
    pub fn wait_final(&self, id: &str) -> Value {
        wait_run_final(&self.master, id, FINAL_WITHIN)
    }

    /// Every worker's count in the final `view` equals what the mock served it (its own
    /// `/__stats.by_worker`), in the order the workers were listed.
    pub fn assert_counts_match_the_mock(&self, view: &Value) {
        let stats = mock_stats(&self.mock);
        for (k, w) in self.workers.iter().enumerate() {
            assert_eq!(
                view["summary"]["workers"][k]["count"], stats["by_worker"][&w.addr],
                "worker {}: {stats}",
                w.addr
            );
        }
    }
}

/// `POST /runs` of `body` to the one-replica `master` (no redirect to follow); it must be
/// acknowledged (201). Returns the run id.
pub fn submit_run(master: &Proc, body: &str) -> String {
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", master.addr),
        None,
        Some(body),
    )
    .expect("POST /runs");
    assert_eq!(code, 201, "{resp}");
    serde_json::from_str::<Value>(&resp).expect("JSON")["run_id"]
        .as_str()
        .expect("run_id")
        .to_string()
}

/// `GET /runs/{id}` of `master`; panics with its stderr when it does not answer 200.
pub fn run_view(master: &Proc, id: &str) -> Value {
    get_json(&format!("http://{}/runs/{id}", master.addr))
        .unwrap_or_else(|| panic!("GET /runs/{id}: no view.\n{}", master.stderr_tail()))
}

/// `GET /runs/{id}` of `master`, `Null` while it does not answer (a wait polls on).
fn view_or_null(master: &Proc, id: &str) -> Value {
    get_json(&format!("http://{}/runs/{id}", master.addr)).unwrap_or_default()
}

/// Waits up to `secs` until run `id`'s events on `master` hold `needle`; returns that view.
pub fn wait_run_event(master: &Proc, id: &str, needle: &str, secs: u64) -> Value {
    let mut last = Value::Null;
    let ok = wait_for(secs, || {
        last = view_or_null(master, id);
        last["summary"]["events"].to_string().contains(needle)
    });
    assert!(
        ok,
        "no event `{needle}` within {secs} s: {}\n{}",
        last["summary"]["events"],
        master.stderr_tail()
    );
    last
}

/// Waits up to `secs` for run `id` on `master` to reach a final phase; returns its view.
pub fn wait_run_final(master: &Proc, id: &str, secs: u64) -> Value {
    let mut last = Value::Null;
    let ok = wait_for(secs, || {
        last = view_or_null(master, id);
        matches!(
            last["phase"].as_str(),
            Some("finished" | "failed" | "stopped")
        )
    });
    assert!(ok, "run did not end: {last}\n{}", master.stderr_tail());
    last
}

/// Runs `perfornium distributed FILE -w WORKERS ARGS -o DIR/out` to completion; it must succeed
/// (its stderr is shown otherwise). Returns its `summary.json`.
pub fn run_distributed(dir: &Path, file: &str, workers: &str, args: &[&str]) -> Value {
    let out = dir.join("out");
    let out_arg = out.to_str().expect("a UTF-8 path");
    let mut all = vec!["distributed", file, "-w", workers];
    all.extend_from_slice(args);
    all.extend(["-o", out_arg]);
    let res = run(&all);
    assert!(
        res.status.success(),
        "perfornium {}: {}",
        all.join(" "),
        String::from_utf8_lossy(&res.stderr)
    );
    summary(&out)
}

/// The row of the worker listed as `address` in a distributed summary's `workers`.
pub fn summary_worker<'a>(s: &'a Value, address: &str) -> &'a Value {
    s["workers"]
        .as_array()
        .expect("a distributed summary")
        .iter()
        .find(|w| w["address"] == address)
        .unwrap_or_else(|| panic!("no worker {address} in the summary: {s}"))
}
