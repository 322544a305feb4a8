//! Faults injected into real processes on 127.0.0.1:
//! - a master replica frozen with SIGSTOP for longer than the election timeout (a partition it
//!   cannot notice), the leader in the middle of a run and then a follower; after SIGCONT there must
//!   be one leader, every acknowledged run present, and the three replicas' applied state identical;
//! - a worker frozen with SIGSTOP in the middle of a run, which must be handled like a dead one;
//! - a replica restarted from a corrupted or truncated sled directory, which must refuse to start
//!   with a message naming the directory instead of serving wrong state.
//!
//! `ROBUSTNESS_ROUNDS=N` repeats the partition rounds (CI runs one); the figures in
//! `bench/results/robustness.md` come from `ROBUSTNESS_ROUNDS=5`.

mod support;
use std::time::{Duration, Instant};
use support::*;

fn rounds() -> usize {
    std::env::var("ROBUSTNESS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

/// SIGSTOPs a process until dropped (or [`Frozen::thaw`]), so a failing test leaves none stopped.
struct Frozen(u32);

impl Frozen {
    fn new(p: &Proc) -> Frozen {
        signal("-STOP", p.child.id());
        Frozen(p.child.id())
    }

    fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// `GET path` of a replica, giving up after a second (a frozen one never answers).
fn get(addr: &str, path: &str) -> Option<serde_json::Value> {
    let (code, body) = call_within(
        "GET",
        &format!("http://{addr}{path}"),
        None,
        None,
        Duration::from_secs(1),
    )
    .ok()?;
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// The leader index that every replica in `live` names and that says it leads.
fn agreed_leader(c: &Cluster, live: &[usize]) -> Option<usize> {
    let views: Vec<serde_json::Value> = live
        .iter()
        .map(|&i| get(&c.addrs[i], "/cluster"))
        .collect::<Option<_>>()?;
    let id = views[0]["leader_id"].as_u64()?;
    if !views.iter().all(|v| v["leader_id"].as_u64() == Some(id)) {
        return None;
    }
    let i = id as usize - 1;
    let leaders = views.iter().filter(|v| v["role"] == "leader").count();
    (live.contains(&i) && leaders == 1).then_some(i)
}

fn wait_agreed(c: &Cluster, live: &[usize], secs: u64) -> usize {
    let mut found = None;
    assert!(
        wait_for(secs, || {
            found = agreed_leader(c, live);
            found.is_some()
        }),
        "replicas {live:?} never agreed on one leader among them"
    );
    found.unwrap()
}

fn submit(c: &Cluster, leader: usize, mock: &Proc, workers: &[&Proc], load: &str) -> String {
    let yaml = format!(
        "name: robust\nglobal:\n  base_url: \"http://{}\"\n  timeout: 5000\nload:\n{load}\nscenarios:\n  - name: s\n    steps:\n      - name: list\n        path: /users\n",
        mock.addr
    );
    let body = serde_json::json!({
        "test_yaml": yaml,
        "workers": workers.iter().map(|w| {
            let (host, port) = w.addr.split_once(':').unwrap();
            serde_json::json!({"host": host, "port": port.parse::<u16>().unwrap()})
        }).collect::<Vec<_>>(),
        "strategy": "even",
    })
    .to_string();
    let url = format!("http://{}/runs", c.addrs[leader]);
    let (code, resp) = call("POST", &url, None, Some(&body)).unwrap();
    assert_eq!(code, 201, "{resp}");
    let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
    v["run_id"].as_str().unwrap().to_string()
}

fn wait_phase(c: &Cluster, live: &[usize], id: &str, phase: &str, secs: u64) {
    let path = format!("/runs/{id}");
    assert!(
        wait_for(secs, || live.iter().any(
            |&i| get(&c.addrs[i], &path).is_some_and(|v| v["phase"] == phase)
        )),
        "run {id} did not reach {phase} within {secs} s"
    );
}

/// What must be identical on every replica once healed: last applied entry, the run list, and
/// each run's phase and counted requests.
fn applied_state(c: &Cluster, i: usize) -> Option<serde_json::Value> {
    let cluster = get(&c.addrs[i], "/cluster")?;
    let runs = get(&c.addrs[i], "/runs")?;
    let mut counts = Vec::new();
    for r in runs.as_array()? {
        let v = get(&c.addrs[i], &format!("/runs/{}", r["id"].as_str()?))?;
        counts.push(v["summary"]["overall"]["count"].clone());
    }
    Some(serde_json::json!({
        "last_applied": cluster["last_applied"],
        "runs": runs,
        "counts": counts,
    }))
}

/// Runs one partition round with `victim` (a replica index, or `None` for the leader) frozen while
/// a run is in flight; returns (acknowledged run, its count, the time to a new leader if the leader
/// was frozen).
fn partition_round(
    c: &Cluster,
    mock: &Proc,
    workers: &[&Proc],
    freeze_leader: bool,
) -> (String, u64, Option<Duration>) {
    let all = [0, 1, 2];
    let leader = wait_agreed(c, &all, 20);
    let before = mock_stats(mock)["total"].as_u64().unwrap();
    let id = submit(
        c,
        leader,
        mock,
        workers,
        "  pattern: basic\n  virtual_users: 4\n  duration: 5s",
    );
    wait_phase(c, &all, &id, "started", 20);
    let victim = if freeze_leader {
        leader
    } else {
        (leader + 1) % 3
    };
    let live: Vec<usize> = all.into_iter().filter(|&i| i != victim).collect();
    let frozen = Frozen::new(c.procs[victim].as_ref().unwrap());
    let t = Instant::now();
    let new_leader = wait_agreed(c, &live, 20);
    let elected = freeze_leader.then(|| t.elapsed());
    assert_ne!(new_leader, victim);
    wait_phase(c, &live, &id, "finished", 40);
    // Frozen past the election timeout (500–1000 ms) whichever it was.
    assert!(t.elapsed() > Duration::from_secs(2));
    frozen.thaw();

    // Healed: one leader for all three, the same applied state everywhere, and the run's count is
    // what the target served (nothing lost or counted twice across the partition).
    wait_agreed(c, &all, 20);
    let mut states = Vec::new();
    assert!(
        wait_for(20, || {
            states = all.iter().map(|&i| applied_state(c, i)).collect();
            states.iter().all(Option::is_some) && states.windows(2).all(|w| w[0] == w[1])
        }),
        "replica states differ after healing: {states:#?}"
    );
    let view = get(&c.addrs[new_leader], &format!("/runs/{id}")).unwrap();
    let counted = view["summary"]["overall"]["count"].as_u64().unwrap();
    let served = mock_stats(mock)["total"].as_u64().unwrap() - before;
    assert_eq!(counted, served, "run {id}: counted vs served by the mock");
    (id, counted, elected)
}

#[test]
fn a_frozen_replica_rejoins_without_a_split_brain() {
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let c = Cluster::start();
    let mut acknowledged = Vec::new();
    let mut lines = Vec::new();
    for round in 0..rounds() {
        for freeze_leader in [true, false] {
            let (id, counted, elected) = partition_round(&c, &mock, &[&a, &b], freeze_leader);
            lines.push(format!(
                "round {} frozen {}: run {id} counted {counted} = served; new leader after {}",
                round + 1,
                if freeze_leader { "leader" } else { "follower" },
                elected.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
            ));
            acknowledged.push(id);
        }
    }
    // Every acknowledged run is on every replica, finished.
    for i in 0..3 {
        let runs = get(&c.addrs[i], "/runs").unwrap();
        for id in &acknowledged {
            let r = runs.as_array().unwrap().iter().find(|r| r["id"] == *id);
            assert_eq!(
                r.map(|r| r["phase"].clone()),
                Some("finished".into()),
                "{id} on {i}"
            );
        }
    }
    println!("{}", lines.join("\n"));
}

#[test]
fn a_frozen_worker_is_handled_like_a_dead_one() {
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "t.yaml",
        &format!(
            "name: hang\nglobal:\n  base_url: \"http://{}\"\n  timeout: 5000\nload:\n  pattern: basic\n  virtual_users: 4\n  duration: 6s\nscenarios:\n  - name: s\n    steps:\n      - name: list\n        path: /users\ndistributed:\n  orchestration:\n    heartbeat_interval: 1s\n    failure_handling:\n      worker_failure_threshold: 50\n      continue_on_partial_failure: true\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 2s\n",
            mock.addr
        ),
    );
    let out = dir.path().join("out");
    let child = std::process::Command::new(BIN)
        .args([
            "distributed",
            &file,
            "-w",
            &worker_list(&[&a, &b]),
            "-s",
            "even",
            "--no-tui",
        ])
        .args(["-o", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Proc {
        child,
        addr: String::new(),
    };
    let elapsed = || {
        let v = get(&b.addr, "/status")?;
        v["live"]["elapsed_s"].as_f64()
    };
    assert!(wait_for(20, || elapsed().unwrap_or(0.0) >= 2.0));
    let frozen = Frozen::new(&b);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the controller hangs on a frozen worker"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(frozen);
    assert!(
        status.success(),
        "one hung worker of two is within the 50 % threshold"
    );
    let s = summary(&out);
    assert_eq!(s["phase"], "finished");
    let hung = &s["workers"][1];
    assert_eq!(hung["state"], "failed", "{hung}");
    assert!(
        hung["error"].as_str().unwrap().contains("no answer"),
        "{hung}"
    );
    assert!(
        hung["count"].as_u64().unwrap() > 0,
        "its pulled batches are kept"
    );
    let live = &s["workers"][0];
    assert_eq!(live["state"], "finished");
    assert!(
        s["overall"]["count"].as_u64().unwrap() <= mock_stats(&mock)["total"].as_u64().unwrap()
    );
}

/// Ways to damage a stopped replica's sled directory.
const CORRUPTIONS: [&str; 6] = [
    "truncate db to half",
    "cut the last 100 bytes of db",
    "zero db",
    "garble db middle",
    "delete conf",
    "delete the witness",
];

fn corrupt(dir: &std::path::Path, how: &str) {
    let db = dir.join("db");
    let len = std::fs::metadata(&db).unwrap().len();
    match how {
        "truncate db to half" => std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .unwrap()
            .set_len(len / 2)
            .unwrap(),
        "cut the last 100 bytes of db" => std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .unwrap()
            .set_len(len.saturating_sub(100))
            .unwrap(),
        "zero db" => std::fs::write(&db, b"").unwrap(),
        "delete the witness" => std::fs::remove_file(dir.join("perfornium.epoch")).unwrap(),
        "garble db middle" => {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
            f.seek(SeekFrom::Start(len / 3)).unwrap();
            f.write_all(&vec![0xA5; (len / 3).max(1) as usize]).unwrap();
        }
        "delete conf" => std::fs::remove_file(dir.join("conf")).unwrap(),
        other => panic!("unknown corruption {other}"),
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Starts a one-replica master on `data`: `Ok(proc)` once it serves, `Err(stderr)` if it exits.
fn start_master(data: &std::path::Path) -> Result<Proc, String> {
    let listen = format!("127.0.0.1:{}", free_port());
    let log = data.with_extension("log");
    let mut child = std::process::Command::new(BIN)
        .args(["master", "--id", "1", "--listen", &listen])
        .args([
            "--peers",
            &format!("1={listen}"),
            "--data",
            data.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Some(status) = child.try_wait().unwrap() {
            let err = std::fs::read_to_string(&log).unwrap();
            assert!(!status.success(), "a refused start exits non-zero");
            return Err(err);
        }
        if get(&listen, "/runs").is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty())) {
            return Ok(Proc {
                child,
                addr: listen,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the master on {} neither served its runs nor exited: {}",
        data.display(),
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn a_corrupted_data_directory_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    // A one-replica master with a recorded run, aimed at a worker that is not there: it fails
    // within its 1 s coordination timeout and is stored, final, so restarts do not drive it on.
    let m = one_replica_master(&pristine);
    let body = serde_json::json!({
        "test_yaml": "name: c\nload:\n  pattern: basic\n  virtual_users: 1\n  iterations: 1\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        url: http://127.0.0.1:9/\ndistributed:\n  orchestration:\n    coordination_timeout: 1s\n",
        "workers": [{"host": "127.0.0.1", "port": free_port()}],
    })
    .to_string();
    let url = format!("http://{}/runs", m.addr);
    assert!(wait_for(20, || call("POST", &url, None, Some(&body))
        .is_ok_and(|(c, _)| c == 201)));
    assert!(wait_for(20, || get(&m.addr, "/runs")
        .is_some_and(|r| r[0]["phase"] == "failed")));
    drop(m); // SIGKILL: what is on disk is what was flushed before each acknowledgement

    // The pristine copy starts and serves its run: the harness itself works.
    let copy = tmp.path().join("control");
    copy_dir(&pristine, &copy);
    let control = start_master(&copy).expect("an intact directory starts");
    let baseline = get(&control.addr, "/runs").unwrap();
    drop(control);

    // Each damage is either refused, with the directory named, or harmless: the same runs served.
    let mut outcomes = Vec::new();
    for how in CORRUPTIONS {
        let dir = tmp.path().join(how.replace(' ', "-"));
        copy_dir(&pristine, &dir);
        corrupt(&dir, how);
        match start_master(&dir) {
            Err(msg) => {
                assert!(
                    msg.contains(dir.to_str().unwrap()),
                    "{how}: the message names the directory: {msg}"
                );
                outcomes.push(format!("{how}: refused: {}", msg.trim()));
            }
            Ok(m) => {
                assert_eq!(
                    get(&m.addr, "/runs").as_ref(),
                    Some(&baseline),
                    "{how}: served state differs from what was acknowledged"
                );
                outcomes.push(format!("{how}: harmless, the same runs served"));
            }
        }
    }
    let refused = outcomes.iter().filter(|o| o.contains("refused")).count();
    assert!(
        refused >= 4,
        "truncation, emptying and garbling are caught: {outcomes:#?}"
    );
    println!("{}", outcomes.join("\n"));
}
