//! Faults injected into real processes on 127.0.0.1:
//! - a master replica frozen with SIGSTOP for longer than the election timeout (a partition it
//!   cannot notice), the leader in the middle of a run and then a follower; while it is frozen the
//!   other two acknowledge and complete another run; after SIGCONT a thawed leader steps down
//!   without acknowledging anything, there is one leader, every acknowledged run is present, and
//!   the three replicas' applied state is identical;
//! - a worker frozen with SIGSTOP in the middle of a run, which must be handled like a dead one
//!   (failure threshold, and redistribution of its share), with every request the target served
//!   accounted for by one worker's own totals;
//! - a replica restarted from a corrupted or truncated sled directory (alone, and as a member of
//!   the three-replica cluster), which must refuse to start within seconds, with a message naming
//!   the directory, instead of serving wrong state.
//!
//! `ROBUSTNESS_ROUNDS=N` repeats the partition and worker rounds (CI runs one); the figures in
//! `bench/results/robustness.md` come from
//! `ROBUSTNESS_ROUNDS=5 cargo test --test cluster robustness -- --nocapture --test-threads 1`.

use crate::support::*;
use std::time::{Duration, Instant};

fn rounds() -> usize {
    std::env::var("ROBUSTNESS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

/// `GET path` of a replica, giving up after a second (a frozen one never answers).
/// With `ROBUSTNESS_RESULTS=1`, writes `lines` as section `title` of `bench/results/robustness.md`,
/// with how it was run; the file holds only what these tests wrote.
fn record(title: &str, lines: &[String]) {
    println!("{}", lines.join("\n"));
    if std::env::var("ROBUSTNESS_RESULTS").is_err() {
        return;
    }
    let body = format!(
        "{} round(s) on {}, debug build; the host's 1-minute load average at the end: {}.\n\n{}\n",
        rounds(),
        host_facts(),
        load_average(),
        lines
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    write_results_section(
        "robustness.md",
        "# Robustness\n\n`ROBUSTNESS_ROUNDS=5 ROBUSTNESS_RESULTS=1 cargo test --test cluster robustness -- --nocapture --test-threads 1`: \
         real processes on 127.0.0.1 (three `perfornium master` replicas, workers, the mock); faults are signals \
         (SIGSTOP/SIGCONT, undone by a drop guard) and damage done to a stopped replica's files. Each section \
         below is written by the test named in its title.\n",
        title,
        &body,
    );
}

fn get(addr: &str, path: &str) -> Option<serde_json::Value> {
    get_json_within(
        &format!("http://{addr}{path}"),
        None,
        Duration::from_secs(1),
    )
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

/// The body of `POST /runs` for `load` against the mock on `workers`.
fn run_body(mock: &Proc, workers: &[&Proc], load: &str) -> String {
    yaml(mock).name("robust").load(load).submit_body(workers)
}

/// A run long enough to be in flight when a replica is frozen.
const LONG: &str = "pattern: basic, virtual_users: 4, duration: 4s";
/// A run that completes in well under a second.
const SHORT: &str = "pattern: basic, virtual_users: 2, iterations: 25";

/// Submits to replica `leader`, which must acknowledge (201); returns the run id.
fn submit(c: &Cluster, leader: usize, mock: &Proc, workers: &[&Proc], load: &str) -> String {
    c.submit(leader, &run_body(mock, workers, load))
}

/// What must be identical on every replica once healed: the last applied entry, the run list, and
/// every run record as served (`driven_by`, the id of the replica answering, left out).
fn applied_state(c: &Cluster, i: usize) -> Option<serde_json::Value> {
    let cluster = get(&c.addrs[i], "/cluster")?;
    let runs = get(&c.addrs[i], "/runs")?;
    let mut records = Vec::new();
    for r in runs.as_array()? {
        let mut v = get(&c.addrs[i], &format!("/runs/{}", r["id"].as_str()?))?;
        v.as_object_mut()?.remove("driven_by");
        records.push(v);
    }
    Some(serde_json::json!({
        "last_applied": cluster["last_applied"],
        "runs": runs,
        "records": records,
    }))
}

/// Waits until the replicas in `which` serve identical applied state; panics with the states if not.
fn wait_identical(c: &Cluster, which: &[usize], secs: u64) {
    let mut states = Vec::new();
    assert!(
        wait_for(secs, || {
            states = which.iter().map(|&i| applied_state(c, i)).collect();
            states.iter().all(Option::is_some) && states.windows(2).all(|w| w[0] == w[1])
        }),
        "replica states differ: {states:#?}"
    );
}

/// What one partition round measured.
struct Round {
    frozen: &'static str,
    /// Runs acknowledged (201) in the round: one in flight at the freeze, one submitted and
    /// completed while the replica was frozen, and the thawed leader's if it ever acknowledged.
    acknowledged: Vec<String>,
    counted: u64,
    served: u64,
    /// Freeze of the leader → the two others agree on a new one.
    elected: Option<Duration>,
    /// Thaw of the old leader → it follows the new one.
    stepped_down: Option<Duration>,
    /// Thaw → the frozen replica serves the same applied state as the leader.
    caught_up: Duration,
    /// What the thawed old leader answered to a run submitted right after SIGCONT.
    stale_answer: Option<u16>,
}

/// One partition round: the leader (or a follower) frozen while a run is in flight.
fn partition_round(c: &Cluster, mock: &Proc, workers: &[&Proc], freeze_leader: bool) -> Round {
    let all = [0, 1, 2];
    let leader = wait_agreed(c, &all, 20);
    let before = mock_stats(mock)["total"].as_u64().unwrap();
    let mut acknowledged = vec![submit(c, leader, mock, workers, LONG)];
    c.wait_phase(&all, &acknowledged[0], "started", 20);
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
    c.wait_phase(&live, &acknowledged[0], "finished", 40);
    // A write acknowledged and completed entirely during the partition.
    let during = submit(c, new_leader, mock, workers, SHORT);
    c.wait_phase(&live, &during, "finished", 20);
    acknowledged.push(during);
    // Frozen past the election timeout (500–1000 ms) whichever it was.
    assert!(t.elapsed() > Duration::from_secs(2));

    let thawed = Instant::now();
    frozen.thaw();
    // The old leader may still believe it leads for a moment: a run submitted to it now must not
    // be acknowledged unless the cluster really recorded it (checked below like every other).
    let stale = freeze_leader.then(|| {
        let url = format!("http://{}/runs", c.addrs[victim]);
        let body = run_body(mock, workers, SHORT);
        std::thread::spawn(move || {
            call_within("POST", &url, None, Some(&body), Duration::from_secs(10))
                .unwrap_or((0, String::new()))
        })
    });
    let stepped_down = freeze_leader.then(|| {
        let new_id = new_leader as u64 + 1;
        assert!(
            wait_for(20, || get(&c.addrs[victim], "/cluster")
                .is_some_and(
                    |v| v["role"] != "leader" && v["leader_id"].as_u64() == Some(new_id)
                )),
            "the thawed leader never followed the new one"
        );
        thawed.elapsed()
    });
    wait_identical(c, &[new_leader, victim], 20);
    let caught_up = thawed.elapsed();
    let stale_answer = stale.map(|h| {
        let (code, resp) = h.join().unwrap();
        assert_ne!(code, 0, "the thawed leader never answered");
        if code == 201 {
            let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
            let id = v["run_id"].as_str().unwrap().to_string();
            c.wait_phase(&all, &id, "finished", 20);
            acknowledged.push(id);
        } else {
            assert!(
                [307, 503].contains(&code),
                "a thawed leader redirects or refuses: {code} {resp}"
            );
        }
        code
    });

    // Healed: one leader for all three, the same applied state everywhere, and what the runs
    // counted is what the target served (nothing lost or counted twice across the partition).
    wait_agreed(c, &all, 20);
    wait_identical(c, &all, 20);
    let counted: u64 = acknowledged
        .iter()
        .map(|id| {
            let view = get(&c.addrs[new_leader], &format!("/runs/{id}")).unwrap();
            assert_eq!(view["phase"], "finished", "{id}");
            assert_merged_exactly_once(&view["summary"]);
            view["summary"]["overall"]["count"].as_u64().unwrap()
        })
        .sum();
    let served = mock_stats(mock)["total"].as_u64().unwrap() - before;
    assert_eq!(counted, served, "runs {acknowledged:?}: counted vs served");
    Round {
        frozen: if freeze_leader { "leader" } else { "follower" },
        acknowledged,
        counted,
        served,
        elected,
        stepped_down,
        caught_up,
        stale_answer,
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

#[test]
fn a_frozen_replica_rejoins_without_a_split_brain() {
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let mut c = Cluster::start();
    let mut acknowledged = Vec::new();
    let mut lines = Vec::new();
    for round in 0..rounds() {
        for freeze_leader in [true, false] {
            let r = partition_round(&c, &mock, &[&a, &b], freeze_leader);
            let leader_figures = match r.stale_answer {
                Some(code) => format!(
                    "new leader after {}; the thawed old leader answered {code} to a submission \
                     and followed the new one after {}; ",
                    secs(r.elected),
                    secs(r.stepped_down)
                ),
                None => String::new(),
            };
            lines.push(format!(
                "round {} frozen {}: {} runs acknowledged, counted {} = served {}; {leader_figures}\
                 caught up {:.2} s after the thaw",
                round + 1,
                r.frozen,
                r.acknowledged.len(),
                r.counted,
                r.served,
                r.caught_up.as_secs_f64(),
            ));
            acknowledged.extend(r.acknowledged);
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
    lines.push(format!(
        "{} acknowledged runs present and finished on all three replicas",
        acknowledged.len()
    ));

    // A member restarted from a damaged directory stays out; the other two carry on.
    let leader = wait_agreed(&c, &[0, 1, 2], 20);
    let victim = (leader + 1) % 3;
    c.kill(victim);
    let data = c.data_dir(victim);
    corrupt(&data, "truncate db to half");
    let attempt = start_member(&c, victim);
    let refusal = attempt.refusal.expect("a damaged member must not start");
    assert!(refusal.contains(data.to_str().unwrap()), "{refusal}");
    assert!(!attempt.answered_health, "it never answered /health");
    assert!(attempt.took < Duration::from_secs(5), "{:?}", attempt.took);
    let live: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    // The other two agree on a leader among them (usually the same one; a heartbeat stalled past
    // the election timeout on a loaded machine may legitimately elect again) and go on serving.
    let leader = wait_agreed(&c, &live, 20);
    let after = submit(&c, leader, &mock, &[&a, &b], SHORT);
    c.wait_phase(&live, &after, "finished", 20);
    wait_identical(&c, &live, 20);
    lines.push(format!(
        "member {} restarted with its db truncated to half: refused after {:.2} s; the other two \
         acknowledged and finished another run",
        victim + 1,
        attempt.took.as_secs_f64()
    ));
    record("a_frozen_replica_rejoins_without_a_split_brain", &lines);
}

/// What one frozen-worker round measured.
struct WorkerRound {
    /// Freeze → the controller marks the worker failed.
    detected: Duration,
    /// The survivor's count in the report and in its own final totals.
    live_reported: u64,
    live_total: u64,
    /// The frozen worker's batches pulled before the freeze, and its own totals once thawed.
    hung_reported: u64,
    hung_total: u64,
    served: u64,
}

/// Runs `perfornium distributed` on two workers and freezes the second mid-run; with
/// `redistribute`, its share goes to the survivor, otherwise the run goes on without it.
fn frozen_worker_round(redistribute: bool) -> WorkerRound {
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let recovery = if redistribute {
        "      recovery:\n        load_redistribution: true\n"
    } else {
        ""
    };
    let file = yaml(&mock)
        .name("hang")
        .load("pattern: basic, virtual_users: 4, duration: 6s")
        .extra(&format!("distributed:\n  orchestration:\n    heartbeat_interval: 1s\n    failure_handling:\n      worker_failure_threshold: 50\n      continue_on_partial_failure: true\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 2s\n{recovery}"))
        .write(dir.path());
    let out = dir.path().join("out");
    let list = worker_list(&[&a, &b]);
    let out_s = out.display().to_string();
    let args = ["distributed", &file, "-w", &list, "-s", "even", "--no-tui"];
    let mut child = start(&[&args[..], &["-o", &out_s]].concat());
    let status_b = || get(&b.addr, "/status");
    assert!(wait_for(20, || status_b()
        .and_then(|v| v["live"]["elapsed_s"].as_f64())
        .unwrap_or(0.0)
        >= 2.0));
    // Freeze only once the controller has pulled a closed batch (the first closes a second after
    // the start): on a loaded machine two seconds of run do not guarantee a pull, and the check
    // that the frozen worker's pulled batches are kept then has nothing to look at.
    wait_pulled(&b, 10);
    let run_id = status_b().unwrap()["run_id"].as_str().unwrap().to_string();
    let frozen = Frozen::new(&b);
    let t = Instant::now();
    let status = child
        .exit_within(Duration::from_secs(30))
        .unwrap_or_else(|| {
            panic!(
                "the controller hangs on a frozen worker:\n{}",
                child.stderr_tail()
            )
        });
    // Progress lines say "failed workers N" from the first save after the worker is marked.
    let mut failed_at = None;
    wait_for(5, || {
        failed_at = child.stderr_line_at("failed workers");
        failed_at.is_some()
    });
    let detected = failed_at
        .expect("a progress line names the failed worker")
        .duration_since(t);
    frozen.thaw();
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
    let live = &s["workers"][0];
    assert_eq!(live["state"], "finished");
    assert!(hung["final_count"].is_null(), "{hung}");
    assert_merged_exactly_once(&s);
    if redistribute {
        assert_eq!(
            live["planned"], 4.0,
            "2 planned + 2 taken over: {live} {}",
            s["events"]
        );
        assert!(
            s["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().contains("redistributed")),
            "{}",
            s["events"]
        );
    }

    // Account for every request the target served: each worker's own final totals (the thawed one
    // finishes its run, past its deadline, at once).
    let total = |w: &Proc| {
        let url = format!("/results?run_id={run_id}");
        let mut found = None;
        assert!(
            wait_for(20, || {
                found = get(&w.addr, &url).map(|r| {
                    r["steps"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s["count"].as_u64().unwrap())
                        .sum::<u64>()
                });
                found.is_some()
            }),
            "worker {} has no final results",
            w.addr
        );
        found.unwrap()
    };
    let (live_total, hung_total) = (total(&a), total(&b));
    let round = WorkerRound {
        detected,
        live_reported: live["merged_count"].as_u64().unwrap(),
        live_total,
        hung_reported: hung["count"].as_u64().unwrap(),
        hung_total,
        served: mock_stats(&mock)["total"].as_u64().unwrap(),
    };
    assert_eq!(
        round.live_reported, round.live_total,
        "nothing of the survivor's is lost on the merged path (its pulled batches == its own totals)"
    );
    assert!(
        round.hung_reported > 0 && round.hung_reported <= round.hung_total,
        "the frozen worker's pulled batches are kept: {} of {}",
        round.hung_reported,
        round.hung_total
    );
    assert_eq!(
        s["overall"]["count"].as_u64().unwrap(),
        round.live_reported + round.hung_reported
    );
    assert_eq!(
        round.served,
        round.live_total + round.hung_total,
        "every request served is in one worker's own totals"
    );
    round
}

fn worker_rounds(redistribute: bool) {
    let mut lines = Vec::new();
    for n in 1..=rounds() {
        let r = frozen_worker_round(redistribute);
        lines.push(format!(
            "worker round {n} ({}): marked failed {:.2} s after the freeze; survivor {} = its totals {}; \
             frozen worker {} pulled of {} it made; served {} = {} + {}",
            if redistribute {
                "share redistributed"
            } else {
                "run goes on without it"
            },
            r.detected.as_secs_f64(),
            r.live_reported,
            r.live_total,
            r.hung_reported,
            r.hung_total,
            r.served,
            r.live_total,
            r.hung_total,
        ));
    }
    record(
        if redistribute {
            "a_frozen_workers_share_is_redistributed_to_the_survivor"
        } else {
            "a_frozen_worker_is_handled_like_a_dead_one"
        },
        &lines,
    );
}

#[test]
fn a_frozen_worker_is_handled_like_a_dead_one() {
    worker_rounds(false);
}

#[test]
fn a_frozen_workers_share_is_redistributed_to_the_survivor() {
    worker_rounds(true);
}

/// Ways to damage a stopped replica's sled directory.
const CORRUPTIONS: [&str; 9] = [
    "truncate db to half",
    "cut the last 100 bytes of db",
    "zero db",
    "delete db",
    "garble db middle",
    "garble the first 4 KiB of db",
    "delete conf",
    "delete the witness",
    "garble the witness",
];

fn corrupt(dir: &std::path::Path, how: &str) {
    use std::io::{Seek, SeekFrom, Write};
    let db = dir.join("db");
    let len = std::fs::metadata(&db).unwrap().len();
    let garble = |path: &std::path::Path, at: u64, n: u64| {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&vec![0xA5; n.max(1) as usize]).unwrap();
    };
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
        "delete db" => std::fs::remove_file(&db).unwrap(),
        "garble db middle" => garble(&db, len / 3, len / 3),
        "garble the first 4 KiB of db" => garble(&db, 0, 4096.min(len)),
        "delete conf" => std::fs::remove_file(dir.join("conf")).unwrap(),
        "delete the witness" => std::fs::remove_file(dir.join("perfornium.epoch")).unwrap(),
        "garble the witness" => garble(&dir.join("perfornium.epoch"), 4, 4),
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

/// How an attempt to start a master went.
struct Attempt {
    /// Its stderr when it exited (non-zero), `None` when it served.
    refusal: Option<String>,
    /// The serving process, when it started.
    serving: Option<Proc>,
    /// Whether `/health` ever answered 200 before it exited.
    answered_health: bool,
    /// Start → exit, or start → serving.
    took: Duration,
}

/// Starts `perfornium master ARGS` listening on `listen` and waits until it exits or `ready`
/// holds: a refusal must be an exit with a non-zero status.
fn attempt(args: &[&str], listen: &str, ready: impl Fn() -> bool) -> Attempt {
    let mut p = start(args);
    p.addr = listen.to_string();
    let t = Instant::now();
    let mut answered_health = false;
    while t.elapsed() < Duration::from_secs(20) {
        if p.child.try_wait().unwrap().is_some() {
            let took = t.elapsed();
            let out = p.wait_with_deadline(Duration::from_secs(5));
            assert!(!out.status.success(), "a refused start exits non-zero");
            return Attempt {
                refusal: Some(String::from_utf8_lossy(&out.stderr).into_owned()),
                serving: None,
                answered_health,
                took,
            };
        }
        answered_health |= get(listen, "/health").is_some();
        if ready() {
            return Attempt {
                refusal: None,
                serving: Some(p),
                answered_health,
                took: t.elapsed(),
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "the master {args:?} neither served nor exited: {}",
        p.stderr_tail()
    );
}

/// Starts a one-replica master on `data`; it counts as serving once it lists its runs. Its port is
/// chosen before it binds, so a start that failed because the port was taken meanwhile is retried.
fn start_master(data: &std::path::Path) -> Attempt {
    for _ in 1..PORT_ATTEMPTS {
        let a = start_master_once(data);
        if !a.refusal.as_deref().is_some_and(port_taken) {
            return a;
        }
    }
    start_master_once(data)
}

fn start_master_once(data: &std::path::Path) -> Attempt {
    let listen = format!("127.0.0.1:{}", free_port());
    let peers = format!("1={listen}");
    let args = [
        "master",
        "--id",
        "1",
        "--listen",
        &listen,
        "--peers",
        &peers,
        "--data",
        data.to_str().unwrap(),
    ];
    attempt(&args, &listen, || {
        get(&listen, "/runs").is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty()))
    })
}

/// Restarts member `i` of `c` from its directory, as [`Cluster::start_node`] does; it counts as
/// serving once it answers `/health`.
fn start_member(c: &Cluster, i: usize) -> Attempt {
    let args = c.node_args(i);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let listen = c.addrs[i].clone();
    attempt(&args, &listen, || get(&listen, "/health").is_some())
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
    let control = start_master(&copy)
        .serving
        .expect("an intact directory starts");
    let baseline = get(&control.addr, "/runs").unwrap();
    drop(control);

    // Each damage is either refused within seconds, with the directory named and without ever
    // answering, or harmless: the same runs served.
    let mut outcomes = Vec::new();
    for how in CORRUPTIONS {
        let dir = tmp.path().join(how.replace(' ', "-"));
        copy_dir(&pristine, &dir);
        corrupt(&dir, how);
        let a = start_master(&dir);
        match (a.refusal, a.serving) {
            (Some(msg), _) => {
                assert!(
                    msg.contains(dir.to_str().unwrap()),
                    "{how}: the message names the directory: {msg}"
                );
                assert!(!a.answered_health, "{how}: answered /health before exiting");
                assert!(a.took < Duration::from_secs(5), "{how}: took {:?}", a.took);
                // The reason follows the last mention of the directory.
                let named = format!("{}: ", dir.display());
                let reason = msg.rsplit(named.as_str()).next().unwrap_or(&msg);
                outcomes.push(format!(
                    "{how}: refused after {:.2} s: {}",
                    a.took.as_secs_f64(),
                    reason.trim()
                ));
            }
            (None, Some(m)) => {
                assert_eq!(
                    get(&m.addr, "/runs").as_ref(),
                    Some(&baseline),
                    "{how}: served state differs from what was acknowledged"
                );
                outcomes.push(format!("{how}: harmless, the same runs served"));
            }
            (None, None) => unreachable!("an attempt either exits or serves"),
        }
    }
    // Exactly what each kind of damage must do. A deleted `conf` is rewritten by sled and serves
    // the same runs; garbling the middle of `db` is refused when the garbled bytes hold live log
    // entries and may be harmless when they fall in space sled no longer reads, so it may be either
    // (a harmless outcome was checked above to serve exactly what was acknowledged).
    for (how, outcome) in CORRUPTIONS.iter().zip(&outcomes) {
        match *how {
            "delete conf" => assert!(outcome.contains("harmless"), "{outcome}"),
            "garble db middle" => {}
            _ => assert!(outcome.contains("refused"), "{outcome}"),
        }
    }
    record("a_corrupted_data_directory_is_refused_at_start", &outcomes);
}
