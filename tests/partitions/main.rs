//! Real network partitions: every master replica, every worker and the mock run in a network
//! namespace of their own (see `netns.rs`), and links between them are cut and healed while a run
//! is in flight. References for the counts: the mock's own `GET /__stats`, each worker's own
//! `GET /results`, and the run record the replicas serve. Leadership comes from each replica's
//! `GET /cluster`.
//!
//! Needs root (or CAP_NET_ADMIN) and `ip`; without them every test prints why and passes.
//! `PARTITION_FULL=1` runs longer versions (longer runs and partitions).

mod netns;
#[path = "../support/mod.rs"]
mod support;

use netns::{Impairment, Net, NsProc};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::{call_within, wait_for, BIN};

const MASTER_PORT: u16 = 7000;
const WORKER_PORT: u16 = 8080;
const MOCK_PORT: u16 = 3000;

/// Returns from the test with a message when namespaces cannot be made here.
macro_rules! need_netns {
    () => {
        if let Some(why) = netns::unavailable() {
            eprintln!("SKIP: network namespaces are unavailable here ({why}); run as root with `ip` (iproute2)");
            return;
        }
    };
}

mod degraded;

fn full() -> bool {
    std::env::var("PARTITION_FULL").is_ok_and(|v| v == "1")
}

/// Seconds since `t0`, for the figures printed along the way.
fn secs(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}

/// Three master replicas, `workers` workers and the mock, each in its own namespace.
/// Fields drop in order: processes first, then the network.
struct Scene {
    procs: Vec<NsProc>,
    dir: tempfile::TempDir,
    net: Net,
    workers: usize,
}

impl Drop for Scene {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.procs {
                eprintln!("{}", p.stderr());
            }
        }
    }
}

impl Scene {
    fn start(workers: usize) -> Scene {
        Scene::start_on(workers, Net::new, &[])
    }

    /// The scene on a network `make` builds from the node names; every replica also gets
    /// `master_args`.
    fn start_on(
        workers: usize,
        make: impl FnOnce(&[&str]) -> Result<Net, String>,
        master_args: &[&str],
    ) -> Scene {
        let mut names = vec!["m1", "m2", "m3", "mock"];
        let wnames: Vec<String> = (1..=workers).map(|i| format!("w{i}")).collect();
        names.extend(wnames.iter().map(String::as_str));
        let net = make(&names).expect("namespaces");
        let mut s = Scene {
            procs: Vec::new(),
            dir: tempfile::tempdir().expect("tempdir"),
            net,
            workers,
        };
        let mock_ip = s.net.ip_of("mock");
        let p = s.net.spawn(
            "mock",
            BIN,
            &[
                "mock",
                "--host",
                &mock_ip,
                "--port",
                &MOCK_PORT.to_string(),
                "--delay",
                "5ms",
            ],
        );
        s.procs.push(p);
        for w in &wnames {
            let ip = s.net.ip_of(w);
            let p = s.net.spawn(
                w,
                BIN,
                &["worker", "--host", &ip, "--port", &WORKER_PORT.to_string()],
            );
            s.procs.push(p);
        }
        let peers = (1..=3)
            .map(|i| format!("{i}={}", s.master_addr(i)))
            .collect::<Vec<_>>()
            .join(",");
        for i in 1..=3 {
            let data = s.dir.path().join(format!("m{i}"));
            let (id, listen) = (i.to_string(), s.master_addr(i));
            let mut args = vec![
                "master",
                "--id",
                &id,
                "--listen",
                &listen,
                "--peers",
                &peers,
                "--data",
                data.to_str().unwrap(),
            ];
            args.extend_from_slice(master_args);
            let p = s.net.spawn(&format!("m{i}"), BIN, &args);
            s.procs.push(p);
        }
        s.ready(&format!("http://{}:{MOCK_PORT}/__stats", mock_ip));
        for w in &wnames {
            s.ready(&format!("http://{}/health", s.worker_addr(w)));
        }
        for i in 1..=3 {
            s.ready(&format!("http://{}/health", s.master_addr(i)));
        }
        s
    }

    /// Polls `url` until it answers 200.
    fn ready(&self, url: &str) {
        assert!(
            wait_for(20, || get(url).is_some_and(|(c, _)| c == 200)),
            "{url} never became ready"
        );
    }

    /// Replica `i` (1-based, its raft id).
    fn master_addr(&self, i: usize) -> String {
        format!("{}:{MASTER_PORT}", self.net.ip_of(&format!("m{i}")))
    }

    fn worker_addr(&self, w: &str) -> String {
        format!("{}:{WORKER_PORT}", self.net.ip_of(w))
    }

    fn worker_names(&self) -> Vec<String> {
        (1..=self.workers).map(|i| format!("w{i}")).collect()
    }

    /// Replica `i`'s term (asked until it answers: lossy links may drop the question).
    fn term(&self, i: usize) -> u64 {
        let mut term = None;
        assert!(
            wait_for(20, || {
                term = self.view(i).and_then(|v| v["term"].as_u64());
                term.is_some()
            }),
            "m{i} never said its term"
        );
        term.unwrap()
    }

    /// `GET /cluster` of replica `i`.
    fn view(&self, i: usize) -> Option<Value> {
        get_json(&format!("http://{}/cluster", self.master_addr(i)))
    }

    /// The leader every replica in `among` names, once that one says it leads (role "leader").
    fn leader_among(&self, among: &[usize]) -> Option<usize> {
        let views: Vec<Value> = among.iter().filter_map(|&i| self.view(i)).collect();
        if views.len() < among.len() {
            return None;
        }
        let id = views[0]["leader_id"].as_u64()? as usize;
        if !views
            .iter()
            .all(|v| v["leader_id"].as_u64() == Some(id as u64))
        {
            return None;
        }
        if !among.contains(&id) {
            return None;
        }
        (self.view(id)?["role"] == "leader").then_some(id)
    }

    fn wait_leader_among(&self, among: &[usize], secs: u64) -> Option<usize> {
        let mut found = None;
        wait_for(secs, || {
            found = self.leader_among(among);
            found.is_some()
        });
        found
    }

    fn run(&self, i: usize, id: &str) -> Option<Value> {
        get_json(&format!("http://{}/runs/{id}", self.master_addr(i)))
    }

    fn runs(&self, i: usize) -> Option<Value> {
        get_json(&format!("http://{}/runs", self.master_addr(i)))
    }

    /// The submit body: `vus` VUs for `duration` spread evenly over every worker, plus `extra`
    /// (a `distributed:` block) in the test.
    fn body(&self, vus: usize, duration: &str, extra: &str) -> String {
        let yaml = format!(
            "name: partitions\nglobal:\n  base_url: \"http://{}:{MOCK_PORT}\"\n  timeout: 5000\nload:\n  pattern: basic\n  virtual_users: {vus}\n  duration: {duration}\nscenarios:\n  - name: s\n    steps:\n      - name: list\n        path: /users\n{extra}",
            self.net.ip_of("mock")
        );
        let workers: Vec<Value> = self
            .worker_names()
            .iter()
            .map(|w| serde_json::json!({"host": self.net.ip_of(w), "port": WORKER_PORT}))
            .collect();
        serde_json::json!({"test_yaml": yaml, "workers": workers, "strategy": "even"}).to_string()
    }

    /// Submits to replica `i`; must be acknowledged with 201.
    fn submit(&self, i: usize, body: &str) -> String {
        let (code, resp) = call_within(
            "POST",
            &format!("http://{}/runs", self.master_addr(i)),
            None,
            Some(body),
            Duration::from_secs(10),
        )
        .expect("submit");
        assert_eq!(code, 201, "{resp}");
        serde_json::from_str::<Value>(&resp).unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// What the mock served (asked until it answers: links may lose the question).
    fn mock_total(&self) -> u64 {
        let url = format!("http://{}:{MOCK_PORT}/__stats", self.net.ip_of("mock"));
        let mut total = None;
        assert!(
            wait_for(20, || {
                total = get_json(&url).and_then(|v| v["total"].as_u64());
                total.is_some()
            }),
            "the mock's stats"
        );
        total.unwrap()
    }

    fn worker_status(&self, w: &str) -> Option<Value> {
        get_json(&format!("http://{}/status", self.worker_addr(w)))
    }

    /// The worker's own final totals for the run (requests over every step), once it finished.
    fn worker_total(&self, w: &str, id: &str) -> Option<u64> {
        let v = get_json(&format!(
            "http://{}/results?run_id={id}",
            self.worker_addr(w)
        ))?;
        Some(
            v["steps"]
                .as_array()?
                .iter()
                .map(|s| s["count"].as_u64().unwrap_or(0))
                .sum(),
        )
    }

    /// Waits until every worker reports the run running.
    fn wait_running(&self) {
        for w in self.worker_names() {
            assert!(
                wait_for(20, || self
                    .worker_status(&w)
                    .is_some_and(|s| s["phase"] == "running")),
                "{w} never ran"
            );
        }
    }

    /// Waits until replica `i` has merged at least one batch from every worker.
    fn wait_merged(&self, i: usize, id: &str) {
        assert!(
            wait_for(20, || self.run(i, id).is_some_and(|v| {
                let ws = v["summary"]["workers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                !ws.is_empty() && ws.iter().all(|w| w["count"].as_u64().unwrap_or(0) > 0)
            })),
            "replica {i} never merged a batch from every worker"
        );
    }

    /// Waits until every replica serves run `id` in phase `phase`; returns the three views.
    fn wait_phase_everywhere(&self, id: &str, phase: &str, secs: u64) -> Vec<Value> {
        let mut views = Vec::new();
        let ok = wait_for(secs, || {
            views = (1..=3).filter_map(|i| self.run(i, id)).collect();
            views.len() == 3 && views.iter().all(|v| v["phase"] == phase)
        });
        assert!(
            ok,
            "run {id} not {phase} on every replica within {secs}s: {:?}",
            views.iter().map(|v| v["phase"].clone()).collect::<Vec<_>>()
        );
        views
    }

    /// The worker row of `w` in a run view.
    fn row<'a>(&self, view: &'a Value, w: &str) -> &'a Value {
        let addr = self.worker_addr(w);
        view["summary"]["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .find(|r| r["address"] == addr.as_str())
            .unwrap_or_else(|| panic!("no row for {addr} in {}", view["summary"]["workers"]))
    }

    /// Waits for each worker's own totals (it finished its part).
    fn worker_totals(&self, id: &str) -> Vec<u64> {
        self.worker_names()
            .iter()
            .map(|w| {
                let mut t = None;
                assert!(
                    wait_for(30, || {
                        t = self.worker_total(w, id);
                        t.is_some()
                    }),
                    "{w} never finished run {id}"
                );
                t.unwrap()
            })
            .collect()
    }

    /// Every replica serves the same run record for `id` (summary, phase, events) and the same list
    /// of runs; returns the record.
    fn one_history(&self, id: &str) -> Value {
        let views = self.wait_phase_everywhere(id, "finished", 30);
        for i in 1..3 {
            assert_eq!(
                views[i]["summary"],
                views[0]["summary"],
                "replica {} and 1 differ",
                i + 1
            );
            assert_eq!(views[i]["phase"], views[0]["phase"]);
        }
        let lists: Vec<Value> = (1..=3).map(|i| self.runs(i).expect("GET /runs")).collect();
        for i in 1..3 {
            assert_eq!(lists[i], lists[0], "replica {}'s run list differs", i + 1);
        }
        views[0].clone()
    }

    /// The independent references agree with the record: the mock served exactly what the
    /// workers measured, each worker's row equals its own totals, the overall count is their sum.
    fn counts_add_up(&self, view: &Value, id: &str) -> (u64, Vec<u64>) {
        self.counts_add_up_with(view, id, false)
    }

    /// [`Scene::counts_add_up`]; with `lossy` links a request the worker gave up on (an error) may
    /// never have reached the mock, so the mock served between the successes and everything.
    fn counts_add_up_with(&self, view: &Value, id: &str, lossy: bool) -> (u64, Vec<u64>) {
        let totals = self.worker_totals(id);
        let served = self.mock_total();
        let overall = view["summary"]["overall"]["count"].as_u64().unwrap();
        let rows: Vec<u64> = self
            .worker_names()
            .iter()
            .map(|w| self.row(view, w)["count"].as_u64().unwrap())
            .collect();
        eprintln!("figures: mock served {served}, workers measured {totals:?}, record rows {rows:?}, overall {overall}");
        assert_eq!(rows, totals, "each worker's row is its own totals");
        let measured = totals.iter().sum::<u64>();
        assert_eq!(overall, measured, "the overall count is the workers' sum");
        if lossy {
            let errors = view["summary"]["overall"]["errors"].as_u64().unwrap();
            eprintln!("figures: {errors} errors");
            assert!(
                measured - errors <= served && served <= measured,
                "every success was served, nothing served is missing: {} successes, {served} served, {measured} measured",
                measured - errors
            );
        } else {
            assert_eq!(
                measured, served,
                "the workers measured what the mock served"
            );
            assert_eq!(
                overall, served,
                "the run counts every request the mock served, once"
            );
        }
        assert_eq!(
            timeline_sum(view),
            overall,
            "the merged batches (the timeline) add up to the final totals"
        );
        (served, totals)
    }
}

fn get(url: &str) -> Option<(u16, String)> {
    call_within("GET", url, None, None, Duration::from_secs(2)).ok()
}

fn get_json(url: &str) -> Option<Value> {
    let (code, body) = get(url)?;
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// Requests over the run's per-second timeline, which is built from merged batches only.
fn timeline_sum(view: &Value) -> u64 {
    view["summary"]["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum()
}

fn events(view: &Value) -> Vec<String> {
    view["summary"]["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

const FAST: &str = "distributed:\n  orchestration:\n    heartbeat_interval: 1s\n";

#[test]
fn a_leader_cut_from_both_followers_is_replaced_cannot_commit_and_nothing_is_lost() {
    need_netns!();
    let t0 = Instant::now();
    let s = Scene::start(2);
    let old = s.wait_leader_among(&[1, 2, 3], 20).expect("a leader");
    let old_term = s.view(old).unwrap()["term"].as_u64().unwrap();
    let followers: Vec<usize> = (1..=3).filter(|&i| i != old).collect();
    let duration = if full() { "20s" } else { "8s" };
    let id = s.submit(old, &s.body(4, duration, FAST));
    s.wait_running();
    s.wait_merged(old, &id);

    // The leader loses both followers; it still reaches the workers and the test.
    let cut_at = Instant::now();
    let on = |i: usize| format!("m{i}");
    s.net.cut(&on(old), &on(followers[0]));
    s.net.cut(&on(old), &on(followers[1]));
    let new = s
        .wait_leader_among(&followers, 15)
        .expect("the followers elect a leader among themselves");
    let elected_after = cut_at.elapsed().as_secs_f64();
    let new_view = s.view(new).unwrap();
    let new_term = new_view["term"].as_u64().unwrap();
    assert!(new_term > old_term, "a new term: {old_term} -> {new_term}");
    let old_view = s.view(old).expect("the old leader still answers reads");
    eprintln!(
        "figures: new leader m{new} (term {new_term}, was m{old} term {old_term}) {elected_after:.2}s after the cut; the old one says role {} term {}",
        old_view["role"], old_view["term"]
    );

    // The old leader cannot acknowledge a write: 201 must not happen (a redirect, 503 or no answer
    // within the deadline are all refusals).
    let probe = s.body(1, "1s", "");
    let answer = call_within(
        "POST",
        &format!("http://{}/runs", s.master_addr(old)),
        None,
        Some(&probe),
        Duration::from_secs(3),
    );
    eprintln!(
        "figures: a write to the old leader during the partition got {:?}",
        answer.as_ref().map(|(c, _)| *c).map_err(|e| e.to_string())
    );
    if let Ok((code, body)) = &answer {
        assert_ne!(
            *code, 201,
            "the cut-off leader acknowledged a write: {body}"
        );
        assert!(*code >= 300, "the cut-off leader answered {code}: {body}");
    }

    // The new leader drives the run to its end while the old one is still cut off.
    let mut done = None;
    assert!(
        wait_for(40, || {
            done = s.run(new, &id).filter(|v| v["phase"] == "finished");
            done.is_some()
        }),
        "the new leader finished the run"
    );
    assert_eq!(
        s.run(new, &id).unwrap()["driven_by"].as_u64(),
        Some(new as u64),
        "the new leader drove it"
    );
    let partitioned_for = cut_at.elapsed().as_secs_f64();

    // Heal: one leader for all three, one history, nothing lost.
    s.net.heal_all();
    let after = s
        .wait_leader_among(&[1, 2, 3], 20)
        .expect("one leader after healing");
    let view = s.one_history(&id);
    let runs = s.runs(old).unwrap();
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "the write the old leader took is not in the history: {runs}"
    );
    let (served, totals) = s.counts_add_up(&view, &id);
    for w in s.worker_names() {
        assert_eq!(s.row(&view, &w)["state"], "finished", "{w}");
    }
    eprintln!(
        "figures: partitioned {partitioned_for:.1}s; leader after healing m{after}; served {served} = {totals:?}; test took {:.1}s",
        secs(t0)
    );
}

#[test]
fn a_follower_cut_off_mid_run_leaves_the_majority_undisturbed_and_catches_up_after_healing() {
    need_netns!();
    let t0 = Instant::now();
    let s = Scene::start(2);
    let leader = s.wait_leader_among(&[1, 2, 3], 20).expect("a leader");
    let term = s.view(leader).unwrap()["term"].as_u64().unwrap();
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    let other = (1..=3).find(|&i| i != leader && i != follower).unwrap();
    let duration = if full() { "20s" } else { "8s" };
    let id = s.submit(leader, &s.body(4, duration, FAST));
    s.wait_running();
    s.wait_merged(leader, &id);

    let cut_at = Instant::now();
    s.net.cut(&format!("m{follower}"), &format!("m{leader}"));
    s.net.cut(&format!("m{follower}"), &format!("m{other}"));
    let applied_at_cut = s.view(follower).unwrap()["last_applied"].clone();
    // The majority side keeps its leader and term, and the record keeps moving there, while the
    // cut-off follower applies nothing new.
    let hold = Duration::from_secs(if full() { 10 } else { 3 });
    let count_at = |i: usize| {
        s.run(i, &id)
            .map(|v| v["summary"]["overall"]["count"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    };
    let before = count_at(leader);
    while cut_at.elapsed() < hold {
        assert_eq!(
            s.leader_among(&[leader, other]),
            Some(leader),
            "the majority keeps its leader"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let lv = s.view(leader).unwrap();
    assert_eq!(
        lv["term"].as_u64(),
        Some(term),
        "no election on the majority side"
    );
    let during = count_at(leader);
    assert!(during > before, "the run went on: {before} -> {during}");
    let fv = s.view(follower).unwrap();
    assert_eq!(
        fv["last_applied"], applied_at_cut,
        "the cut-off follower applied nothing"
    );
    eprintln!(
        "figures: follower m{follower} cut {:.1}s; its view then: role {} term {} leader {}; majority m{leader} term {term}; merged {before} -> {during} meanwhile",
        cut_at.elapsed().as_secs_f64(),
        fv["role"],
        fv["term"],
        fv["leader_id"]
    );

    s.net.heal_all();
    let healed_at = Instant::now();
    let after = s
        .wait_leader_among(&[1, 2, 3], 20)
        .expect("one leader after healing");
    let agreed_after = healed_at.elapsed().as_secs_f64();
    let view = s.one_history(&id);
    let (served, totals) = s.counts_add_up(&view, &id);
    for w in s.worker_names() {
        assert_eq!(s.row(&view, &w)["state"], "finished", "{w}");
    }
    let term_after = s.view(after).unwrap()["term"].as_u64().unwrap();
    eprintln!(
        "figures: after healing all three agree on m{after} (term {term_after}, was m{leader} term {term}) within {agreed_after:.2}s; served {served} = {totals:?}; test took {:.1}s",
        secs(t0)
    );
}

#[test]
fn a_worker_cut_off_for_less_than_the_detection_timeout_is_merged_exactly_once() {
    need_netns!();
    let t0 = Instant::now();
    let s = Scene::start(2);
    let leader = s.wait_leader_among(&[1, 2, 3], 20).expect("a leader");
    let (timeout, cut_for, duration) = if full() { (8, 5, "20s") } else { (3, 1, "8s") };
    let extra = format!(
        "{FAST}    failure_handling:\n      worker_failure_threshold: 50\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: {timeout}s\n"
    );
    let id = s.submit(leader, &s.body(4, duration, &extra));
    s.wait_running();
    s.wait_merged(leader, &id);

    let masters = ["m1", "m2", "m3"];
    let cut_ms = support_now_ms();
    s.net.cut_from("w1", &masters);
    let seen_before = s.worker_status("w1").unwrap()["live"]["requests"]
        .as_u64()
        .unwrap();
    // The partition's length is what is under test here, so it is timed, not probed.
    std::thread::sleep(Duration::from_secs(cut_for));
    let st = s.worker_status("w1").expect("the test still reaches w1");
    let last_poll = st["last_poll_ms"].as_u64().unwrap();
    let seen_after = st["live"]["requests"].as_u64().unwrap();
    let row_during = s.row(&s.run(leader, &id).unwrap(), "w1").clone();
    s.net.heal_all();
    assert!(
        last_poll <= cut_ms + 200,
        "no controller reached w1 while it was cut off (last poll {} ms after the cut)",
        last_poll as i64 - cut_ms as i64
    );
    assert!(
        seen_after > seen_before,
        "w1 kept measuring while cut off: {seen_before} -> {seen_after}"
    );
    assert_ne!(
        row_during["state"], "failed",
        "not failed within the detection timeout"
    );
    // After healing the controller pulls w1 again.
    assert!(
        wait_for(10, || s.worker_status("w1").is_some_and(|st| st
            ["last_poll_ms"]
            .as_u64()
            .unwrap_or(0)
            > cut_ms + cut_for * 1000)),
        "the controller pulls w1 again after healing"
    );

    let view = s.one_history(&id);
    for w in s.worker_names() {
        assert_eq!(s.row(&view, &w)["state"], "finished", "{w}");
    }
    let ev = events(&view);
    assert!(
        !ev.iter()
            .any(|e| e.contains("failed") || e.contains("differ")),
        "no failure, and the merged batches equal each worker's final totals: {ev:?}"
    );
    let (served, totals) = s.counts_add_up(&view, &id);
    eprintln!(
        "figures: w1 cut {cut_for}s (detection timeout {timeout}s); w1 measured {seen_before} -> {seen_after} meanwhile, the record showed {} for it; served {served} = {totals:?}; test took {:.1}s",
        row_during["count"],
        secs(t0)
    );
}

fn support_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_worker_cut_off_past_the_detection_timeout_fails_its_share_moves_and_its_late_batches_count() {
    need_netns!();
    let t0 = Instant::now();
    let s = Scene::start(3);
    let leader = s.wait_leader_among(&[1, 2, 3], 20).expect("a leader");
    let (timeout, duration) = if full() { (5, "20s") } else { (2, "8s") };
    let extra = format!(
        "{FAST}    failure_handling:\n      worker_failure_threshold: 50\n      continue_on_partial_failure: true\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: {timeout}s\n      recovery:\n        load_redistribution: true\n"
    );
    let id = s.submit(leader, &s.body(6, duration, &extra));
    s.wait_running();
    s.wait_merged(leader, &id);

    let cut_at = Instant::now();
    s.net.cut_from("w1", &["m1", "m2", "m3"]);
    let w1 = s.worker_addr("w1");
    let mut failed_view = None;
    assert!(
        wait_for(20, || {
            failed_view = s.run(leader, &id).filter(|v| {
                s.row(v, "w1")["state"] == "failed"
                    && events(v)
                        .iter()
                        .any(|e| e.contains(&format!("share of {w1} was redistributed")))
            });
            failed_view.is_some()
        }),
        "w1 marked failed and its share redistributed"
    );
    let failed_after = cut_at.elapsed().as_secs_f64();
    let counted_at_failure = s.row(failed_view.as_ref().unwrap(), "w1")["count"]
        .as_u64()
        .unwrap();
    // The survivors run w1's VUs on top of their own (their own answer, not the record's).
    let vus = |w: &str| {
        s.worker_status(w)
            .map(|st| st["live"]["active_vus"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    };
    let mut taken = 0;
    assert!(
        wait_for(10, || {
            taken = vus("w2") + vus("w3");
            taken == 6
        }),
        "w2 and w3 run all 6 VUs between them (they ran {taken})"
    );
    let w1_status = s.worker_status("w1").expect("the test still reaches w1");
    let w1_running = w1_status["phase"] == "running";
    s.net.heal_all();
    let partitioned_for = cut_at.elapsed().as_secs_f64();

    let view = s.one_history(&id);
    let totals = s.worker_totals(&id);
    let served = s.mock_total();
    let overall = view["summary"]["overall"]["count"].as_u64().unwrap();
    let rows: Vec<u64> = s
        .worker_names()
        .iter()
        .map(|w| s.row(&view, w)["count"].as_u64().unwrap())
        .collect();
    let ev = events(&view);
    eprintln!(
        "figures: w1 failed {failed_after:.1}s after the cut (detection timeout {timeout}s), with {counted_at_failure} counted; healed after {partitioned_for:.1}s (w1 still running then: {w1_running}); mock served {served}, workers measured {totals:?}, record rows {rows:?}, overall {overall}; events {ev:?}"
    );
    assert_eq!(s.row(&view, "w1")["state"], "failed");
    for w in ["w2", "w3"] {
        assert_eq!(s.row(&view, w)["state"], "finished", "{w}");
        assert_eq!(
            s.row(&view, w)["count"].as_u64(),
            Some(totals[s.worker_names().iter().position(|n| n == w).unwrap()]),
            "{w}'s row is its own totals"
        );
    }
    assert_eq!(
        totals.iter().sum::<u64>(),
        served,
        "the workers measured what the mock served"
    );
    assert!(
        overall <= served,
        "nothing counted twice: {overall} > {served}"
    );
    assert_eq!(
        overall,
        rows.iter().sum::<u64>(),
        "the overall count is the rows' sum"
    );
    // w1 measured past its failure; what it measured late is either merged (the totals meet) or
    // reported as late in the record, with its number: never silently dropped.
    let late = served - overall;
    if late == 0 {
        assert_eq!(
            timeline_sum(&view),
            overall,
            "the late batches themselves were merged, once"
        );
    } else {
        assert!(
            ev.iter()
                .any(|e| e.contains(&w1) && e.contains("late") && e.contains(&late.to_string())),
            "{late} requests w1 measured after it was marked failed are neither counted nor reported: {ev:?}"
        );
    }
    eprintln!("figures: test took {:.1}s", secs(t0));
}

#[test]
fn a_whole_run_over_links_with_100ms_50ms_delay_and_5pct_loss_counts_every_request_once() {
    need_netns!();
    let t0 = Instant::now();
    let imp = Impairment {
        delay_ms: 100,
        jitter_ms: 50,
        loss_pct: 5.0,
    };
    // The kernel's netem when there is one; else the harness's own switch does the same to every
    // frame (this machine's kernel has no sch_netem).
    let netem = netns::netem_available();
    if !netem {
        if let Some(why) = netns::tap_unavailable() {
            eprintln!("SKIP: neither sch_netem nor TAP devices here ({why})");
            return;
        }
    }
    // Round trips of 100-300 ms plus retransmissions: raft's default timing (heartbeat and
    // replication deadline 100 ms) cannot work here, so the replicas are told the link is slow.
    let raft = [
        "--raft-heartbeat-ms",
        "1000",
        "--raft-election-ms",
        "4000-8000",
    ];
    let s = Scene::start_on(
        2,
        |names| {
            if netem {
                let net = Net::new(names)?;
                net.netem_all(&["delay", "100ms", "50ms", "loss", "5%"])?;
                Ok(net)
            } else {
                Net::impaired(names, imp)
            }
        },
        &raft,
    );
    let started = secs(t0);
    let leader = s
        .wait_leader_among(&[1, 2, 3], 30)
        .expect("a leader over the slow links");
    let term = s.term(leader);
    // Counting over the impaired links needs requests and pulls across them, not a long run: 6 s
    // of 8 VUs at 100-300 ms round trips is a few hundred requests and thousands of frames.
    let duration = if full() { "30s" } else { "6s" };
    // A pull can take several seconds here (a lost segment waits out TCP's retransmission
    // timeout, which doubles), and this test is about counting over such links, not about
    // failure detection: give the workers a detection timeout well above that.
    let patient =
        format!("{FAST}  fault_tolerance:\n    worker_failures:\n      detection_timeout: 20s\n");
    let id = s.submit(leader, &s.body(8, duration, &patient));
    s.wait_running();
    // Leadership may move on such links; the run is followed on whichever replica answers.
    let mut last = None;
    assert!(
        wait_for(90, || {
            last = (1..=3)
                .find_map(|i| s.run(i, &id))
                .map(|v| v["phase"].clone());
            last.as_ref().is_some_and(|p| p == "finished")
        }),
        "the run finished over the impaired links (last phase seen {last:?})"
    );
    let view = s.one_history(&id);
    let (served, totals) = s.counts_add_up_with(&view, &id, true);
    for w in s.worker_names() {
        assert_eq!(
            s.row(&view, &w)["state"],
            "finished",
            "{w}: {:?}",
            events(&view)
        );
    }
    let after = s
        .wait_leader_among(&[1, 2, 3], 30)
        .expect("a leader at the end");
    let term_after = s.term(after);
    let sw = s.net.switch.as_ref().map(|sw| sw.stats());
    eprintln!(
        "figures: impairment by {}; scene up in {started:.1}s; leader m{leader} term {term} -> m{after} term {term_after}; served {served} = {totals:?}; frames {sw:?}; events {:?}; test took {:.1}s",
        if netem { "netem" } else { "the userspace switch" },
        events(&view),
        secs(t0)
    );
    // Every request crossed the links twice (there and back): at least 2 × 50 ms.
    let o = &view["summary"]["overall"];
    let (min, p50, p99) = (
        o["min"].as_f64().unwrap(),
        o["p50"].as_f64().unwrap(),
        o["p99"].as_f64().unwrap(),
    );
    eprintln!(
        "figures: request latency min {min:.0} ms, p50 {p50:.0} ms, p99 {p99:.0} ms; errors {}",
        o["errors"]
    );
    assert!(
        min >= 100.0,
        "each request crossed the delayed links twice: min {min} ms"
    );
    assert!(p50 >= 150.0, "the delay applied to the load: p50 {p50} ms");
    if let Some(sw) = sw {
        let pct = sw.lost as f64 * 100.0 / sw.frames.max(1) as f64;
        assert!(
            (3.0..7.0).contains(&pct),
            "about 5 % of frames were lost: {pct:.2} %"
        );
    }
}
