//! Live control of a running distributed run (`PATCH /runs/{id}`): a new total of VUs or arrivals
//! per second, pause and resume, each confirmed by the mock's own per-second counts
//! (`/__stats.per_second`), with real `perfornium master`, `worker` and `mock` processes.

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

/// `PATCH /runs/{id}` on `master` (following no redirect): (status, body).
fn patch(master: &Proc, id: &str, body: &str) -> (u16, String) {
    call(
        "PATCH",
        &format!("http://{}/runs/{id}", master.addr),
        None,
        Some(body),
    )
    .expect("PATCH /runs/{id}")
}

/// Waits until the run's view shows live-control generation `gen` acknowledged by every running
/// worker; returns when it saw that (test clock, Unix ms).
fn wait_applied(master: &Proc, id: &str, gen: u64) -> u64 {
    let ok = wait_for(10, || {
        let v = run_view(master, id);
        v["control"]["generation"] == gen && v["control"]["applied"] == true
    });
    assert!(
        ok,
        "live change {gen} was not applied within 10 s: {}\n{}",
        run_view(master, id),
        master.stderr_tail()
    );
    now_ms()
}

/// The mock's mean requests per second over the whole seconds (its clock, which is this
/// machine's) that lie within `from_ms..to_ms`. Waits until `to_ms` has passed.
fn mock_rate(mock: &Proc, from_ms: u64, to_ms: u64) -> f64 {
    while now_ms() < to_ms + 150 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = from_ms.div_ceil(1000);
    let last = to_ms / 1000; // exclusive
    assert!(last > first, "no whole second in {from_ms}..{to_ms}");
    let per = &mock_stats(mock)["per_second"];
    let sum: u64 = (first..last)
        .map(|s| per[s.to_string()].as_u64().unwrap_or(0))
        .sum();
    sum as f64 / (last - first) as f64
}

#[test]
fn a_live_change_from_10_to_30_vus_raises_the_rate_the_mock_sees_and_pause_holds_it_at_zero() {
    // 50 ms per request: each VU makes about 20 requests a second, far from any CPU limit.
    let d = Distributed::start(50, 2);
    let (master, mock) = (&d.master, &d.mock);
    let yaml = yaml(mock)
        .name("live")
        .load("pattern: basic, virtual_users: 10, duration: 16s");
    let id = d.start_run(&yaml);

    // Malformed and out-of-range changes are refused and change nothing.
    let (code, body) = patch(master, &id, "{\"virtual_users\": \"many\"}");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("malformed change"), "{body}");
    let (code, body) = patch(master, &id, "{\"vus\": 30}");
    assert_eq!(code, 400, "an unknown field: {body}");
    let (code, body) = patch(master, &id, "{\"virtual_users\": 0}");
    assert_eq!(code, 422, "{body}");
    let (code, body) = patch(master, &id, "{\"arrival_rate\": 5}");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("virtual users"), "{body}");
    let (code, _) = patch(master, "no-such-run", "{\"virtual_users\": 3}");
    assert_eq!(code, 404);
    assert!(d.view(&id).get("control").is_none());

    let t0 = now_ms() + 1000;
    let before = mock_rate(mock, t0, t0 + 3000);

    let (code, body) = patch(
        master,
        &id,
        "{\"virtual_users\": 30, \"change_id\": \"up-1\"}",
    );
    assert_eq!(code, 202, "{body}");
    let c: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(c["generation"], 1);
    assert_eq!(c["target"], 30.0);
    assert_eq!(c["shares"], serde_json::json!([15, 15]));
    // The same change again (same id) is not a second change.
    let (code, again) = patch(
        master,
        &id,
        "{\"virtual_users\": 30, \"change_id\": \"up-1\"}",
    );
    assert_eq!(code, 202, "{again}");
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap()["generation"],
        1
    );
    let applied = wait_applied(master, &id, 1);
    let t1 = applied + 300;
    let after = mock_rate(mock, t1, t1 + 3000);
    let ratio = after / before;
    eprintln!(
        "live change 10 → 30 VUs: mock {before:.1} req/s before, {after:.1} after (×{ratio:.2})"
    );
    // Alone it is ×3.4 (see the README); on a loaded 2-core CI machine the debug-build workers
    // cannot always make all of it, so the bound is what a load change must at least show.
    assert!(
        (1.4..=3.8).contains(&ratio),
        "10 → 30 VUs should raise the rate well beyond noise: {before:.1} → {after:.1} req/s"
    );
    let view = d.view(&id);
    let planned: Vec<f64> = view["summary"]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["planned"].as_f64().unwrap())
        .collect();
    assert_eq!(planned, vec![15.0, 15.0], "the plan shows the change");

    // Pause: once applied and in-flight requests are done, the mock's count stays flat.
    let (code, body) = patch(master, &id, "{\"paused\": true}");
    assert_eq!(code, 202, "{body}");
    let paused_at = wait_applied(master, &id, 2) + 300;
    let flat_from = mock_stats(mock)["total"].as_u64().unwrap();
    while now_ms() < paused_at + 1500 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let flat_to = mock_stats(mock)["total"].as_u64().unwrap();
    assert_eq!(flat_from, flat_to, "no request while paused");

    // Resume: requests flow again at the changed total.
    let (code, body) = patch(master, &id, "{\"paused\": false}");
    assert_eq!(code, 202, "{body}");
    let resumed = wait_applied(master, &id, 3) + 300;
    let again = mock_rate(mock, resumed, resumed + 2000);
    eprintln!("after resume: {again:.1} req/s");
    assert!(
        again > before * 1.4,
        "resumed at 30 VUs: {again:.1} req/s (10 VUs gave {before:.1})"
    );

    let view = d.wait_final(&id);
    assert_eq!(view["phase"], "finished", "{view}");
    assert_eq!(
        view["summary"]["overall"]["count"],
        mock_stats(mock)["total"],
        "every request the mock served is counted once"
    );
    let events = view["summary"]["events"].to_string();
    assert!(
        events.contains("live change 1 (asked for, change id up-1): 10 → 30 VUs"),
        "{events}"
    );
}

#[test]
fn a_live_change_from_100_to_300_arrivals_per_second_raises_the_mocks_per_second_count() {
    let d = Distributed::start(0, 2);
    let (master, mock) = (&d.master, &d.mock);
    let yaml = yaml(mock)
        .name("live-open")
        .load("pattern: arrivals, rate: 100, duration: 9s");
    let id = d.start_run(&yaml);
    let t0 = now_ms() + 300;
    let before = mock_rate(mock, t0, t0 + 2000);
    let (code, body) = patch(master, &id, "{\"arrival_rate\": 300}");
    assert_eq!(code, 202, "{body}");
    let c: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(c["unit"], "arrivals_per_second");
    assert_eq!(c["shares"], serde_json::json!([150000, 150000]));
    let (code, body) = patch(master, &id, "{\"virtual_users\": 3}");
    assert_eq!(code, 422, "{body}");
    let t1 = wait_applied(master, &id, 1) + 300;
    let after = mock_rate(mock, t1, t1 + 2000);
    eprintln!("live change 100 → 300 arrivals/s: mock {before:.1} req/s before, {after:.1} after");
    // Alone: 101 → 304. On a loaded CI machine the workers may fall short of 300, never above it.
    assert!((85.0..=110.0).contains(&before), "{before}");
    assert!((180.0..=330.0).contains(&after), "{after}");
    let view = d.wait_final(&id);
    assert_eq!(view["phase"], "finished", "{view}");
    assert_eq!(
        view["summary"]["overall"]["count"],
        mock_stats(mock)["total"]
    );
}

/// A tmux session, killed when dropped.
struct Tmux(String);

impl Tmux {
    fn screen(&self) -> String {
        let out = std::process::Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn keys(&self, keys: &str) {
        let ok = std::process::Command::new("tmux")
            .args(["send-keys", "-t", &self.0, "-l", keys])
            .status()
            .expect("tmux send-keys");
        assert!(ok.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn the_consoles_plus_key_confirmed_with_y_raises_the_load_in_a_real_terminal() {
    let d = Distributed::start(20, 2);
    let (master, a, b) = (&d.master, &d.workers[0], &d.workers[1]);
    let file = yaml(&d.mock)
        .name("keys")
        .load("pattern: basic, virtual_users: 10, duration: 12s")
        .write(d.dir.path());
    let session = format!("perfornium-live-{}", std::process::id());
    let cmd = format!(
        "{BIN} console --cluster {} {file} -w {},{}; sleep 60",
        master.addr, a.addr, b.addr
    );
    let ok = std::process::Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "120",
            "-y",
            "40",
            &cmd,
        ])
        .env("TERM", "xterm-256color")
        .status()
        .expect("tmux new-session");
    assert!(ok.success());
    let tmux = Tmux(session);
    assert!(
        wait_for(30, || {
            let s = tmux.screen();
            s.contains("started") && s.contains("running")
        }),
        "the console never showed the run running:\n{}",
        tmux.screen()
    );
    tmux.keys("+");
    assert!(
        wait_for(5, || tmux.screen().contains("set the load to 11 VUs?")),
        "`+` asks to confirm:\n{}",
        tmux.screen()
    );
    let runs = get_json(&format!("http://{}/runs", master.addr)).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    assert!(
        d.view(&id).get("control").is_none(),
        "nothing sent before y"
    );
    tmux.keys("y");
    wait_applied(master, &id, 1);
    let c = &d.view(&id)["control"];
    assert_eq!(c["target"], 11.0);
    assert_eq!(c["shares"], serde_json::json!([6, 5]));
    assert!(
        wait_for(5, || tmux.screen().contains("load 11 VUs (change 1)")),
        "the distribution pane shows the change:\n{}",
        tmux.screen()
    );
}

/// Starts `yaml` (10 VUs, adaptive balancing) on `d`'s two workers and waits up to 10 s for the
/// first adaptive move: it names worker a and `metric` (`p95`, `cpu`), keeps the total at 10 VUs
/// and moves load from a to b. The run then finishes with each worker's count equal to the mock's.
fn assert_adaptive_move_from_a_to_b(d: &Distributed, yaml: &Yaml, metric: &str) {
    let a = &d.workers[0];
    let id = d.start_run(yaml);
    let started = now_ms();
    let view = d.wait_event(&id, "adaptive", 10);
    let events = view["summary"]["events"].to_string();
    eprintln!(
        "adaptive move ({metric}) {} ms after the run was seen running: {events}",
        now_ms() - started
    );
    assert!(
        events.contains(&format!("adaptive: {} {metric}", a.addr)),
        "{events}"
    );
    let shares: Vec<u64> = view["control"]["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(
        shares.iter().sum::<u64>(),
        10,
        "the total is unchanged: {shares:?}"
    );
    assert!(
        shares[0] < 5 && shares[1] > 5,
        "load moved from a to b: {shares:?}"
    );
    let view = d.wait_final(&id);
    assert_eq!(view["phase"], "finished", "{view}");
    // Every request is counted once, per worker, against the mock's own counts by worker.
    d.assert_counts_match_the_mock(&view);
}

#[test]
fn adaptive_balancing_moves_load_away_from_a_worker_whose_target_is_slow_keeping_the_total() {
    let d = Distributed::start(20, 2);
    // Worker a's requests take 300 ms more than b's (the mock delays only its traffic).
    let yaml = yaml(&d.mock)
        .name("adaptive")
        .load("pattern: basic, virtual_users: 10, duration: 8s")
        .step(&format!("{{ name: slow, path: /slow_for/{}/300 }}", d.workers[0].addr))
        .extra("distributed:\n  load_balancing:\n    enabled: true\n    algorithm: adaptive\n    metrics_based:\n      response_time_threshold: 150\n");
    assert_adaptive_move_from_a_to_b(&d, &yaml, "p95");
}

/// `cpu_threshold`: worker b's requests wait 300 ms at the mock while a's are answered at once,
/// so a's process burns far more CPU than b's (the sample each sends with its pulls). With the
/// threshold at 5 % of the host, a is over it and b under: half of a's share moves to b, the total
/// still 10 VUs, and each worker's count equals the mock's own.
#[test]
fn adaptive_balancing_moves_load_away_from_a_worker_over_the_cpu_threshold_keeping_the_total() {
    let d = Distributed::start(0, 2);
    let yaml = yaml(&d.mock)
        .name("adaptive-cpu")
        .load("pattern: basic, virtual_users: 10, duration: 7s")
        .step(&format!("{{ name: mixed, path: /slow_for/{}/300 }}", d.workers[1].addr))
        .extra("distributed:\n  load_balancing:\n    enabled: true\n    algorithm: adaptive\n    metrics_based:\n      cpu_threshold: 5\n");
    assert_adaptive_move_from_a_to_b(&d, &yaml, "cpu");
}

/// A live change survives the leader's death: on three replicas, `PATCH` 10 → 30 VUs is recorded
/// while worker b is frozen (so the leader cannot hand it its new share), the leader is killed at
/// once and b thawed. The new leader finds the change recorded but not taken by every worker and
/// sends it again (idempotent by generation): the mock's own per-second count rises by the
/// change, and every request it served is counted once.
#[test]
fn a_live_change_recorded_before_a_leader_kill_is_sent_again_by_the_new_leader() {
    let mut c = Cluster::start();
    let mock = mock(50);
    let (a, b) = (worker(None), worker(None));
    let leader = c.agreed_leader(20);
    // b stays in the run while frozen (a 10 s detection timeout); each pull of it gives up after 1 s.
    let test = yaml(&mock)
        .name("live-failover")
        .load("pattern: basic, virtual_users: 10, duration: 14s")
        .extra("distributed:\n  orchestration:\n    heartbeat_interval: 1s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 10s\n");
    let id = c.submit(leader, &test.submit_body(&[&a, &b]));
    wait_running(&a, 15);
    wait_running(&b, 15);
    let t0 = now_ms() + 500;
    let before = mock_rate(&mock, t0, t0 + 2000);

    let frozen = Frozen::new(&b);
    let (code, body) = call(
        "PATCH",
        &format!("http://{}/runs/{id}", c.addrs[leader]),
        None,
        Some("{\"virtual_users\": 30, \"change_id\": \"failover-1\"}"),
    )
    .expect("PATCH /runs/{id}");
    assert_eq!(code, 202, "{body}");
    c.kill(leader);
    let killed_at = now_ms();
    frozen.thaw();
    let live: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let mut applied_view = Value::Null;
    let applied = wait_for(20, || {
        live.iter().any(|&i| match c.run(i, &id) {
            Some(v) if v["control"]["generation"] == 1 && v["control"]["applied"] == true => {
                applied_view = v;
                true
            }
            _ => false,
        })
    });
    assert!(
        applied,
        "the new leader did not apply the recorded change.\n{}",
        c.stderr_tails()
    );
    let applied_at = now_ms();
    let events: Vec<String> =
        serde_json::from_value(applied_view["summary"]["events"].clone()).unwrap();
    let resumed = events
        .iter()
        .position(|e| e.starts_with("leader changed"))
        .unwrap_or_else(|| panic!("no leader change recorded: {events:?}"));
    assert!(
        events[resumed..]
            .iter()
            .any(|e| e == "live change 1 is running on every running worker"),
        "the new leader sent the change: {events:?}"
    );
    assert_eq!(applied_view["control"]["target"], 30.0);
    let t1 = applied_at + 300;
    let after = mock_rate(&mock, t1, t1 + 2000);
    let ratio = after / before;
    eprintln!(
        "live change across a leader kill: applied by the new leader {} ms after the kill; mock {before:.1} req/s before, {after:.1} after (×{ratio:.2})",
        applied_at - killed_at
    );
    // ×3 is the ideal. On a loaded host the rate before the change is the more depressed one (×3.9
    // seen with the whole suite running), so the bound above leaves room for it.
    assert!(
        (1.4..=4.5).contains(&ratio),
        "10 → 30 VUs should raise the rate well beyond noise: {before:.1} → {after:.1} req/s"
    );
    let view = c.wait_phase(&live, &id, "finished", 40);
    assert_merged_exactly_once(&view["summary"]);
    assert_eq!(
        view["summary"]["overall"]["count"],
        mock_stats(&mock)["total"],
        "every request the mock served is counted once"
    );
}
