//! Rendering tests: models built here, drawn into ratatui's `TestBackend`, compared with insta
//! snapshots (review changes with `cargo insta review`, or `INSTA_UPDATE=always` then read the diff).

use perfornium_tui::ratatui::backend::TestBackend;
use perfornium_tui::ratatui::Terminal;
use perfornium_tui::{render, Model, Replica, Run, StepRow, TimePoint, WorkerRow};

fn replica(id: u64, role: &str, reachable: bool) -> Replica {
    Replica {
        id,
        addr: format!("127.0.0.1:700{id}"),
        role: role.into(),
        reachable,
        last_applied: Some(40 + id),
    }
}

fn worker(i: u64, state: &str, requests: u64) -> WorkerRow {
    WorkerRow {
        address: format!("127.0.0.1:810{i}"),
        region: "default".into(),
        state: state.into(),
        planned: 10.0,
        active_vus: if state == "running" { 10 } else { 0 },
        requests,
        rps: requests as f64 / 12.0,
        errors: i,
        p95_ms: 4.5 + i as f64,
        heartbeat_age_s: Some(0.4),
        clock_offset_ms: Some(0.2 * i as f64),
    }
}

fn model() -> Model {
    let timeline = (1..=12)
        .map(|s| TimePoint {
            second: s as f64,
            p50_ms: 3.0,
            p90_ms: 4.0 + (s % 3) as f64,
            p95_ms: 5.0,
            p99_ms: 8.0 + (s % 4) as f64,
        })
        .collect();
    let mut m = Model {
        cluster: vec![
            replica(1, "leader", true),
            replica(2, "follower", true),
            replica(3, "follower", true),
        ],
        run: Some(Run {
            id: "run-1".into(),
            name: "Basic API test".into(),
            phase: "started".into(),
            elapsed_s: 12.0,
            requests: 3600,
            errors: 3,
            rps: 300.0,
            active_vus: 30,
            unit: "VUs".into(),
            workers: vec![
                worker(1, "running", 1200),
                worker(2, "running", 1180),
                worker(3, "running", 1220),
            ],
            steps: vec![
                StepRow {
                    name: "List users".into(),
                    count: 1800,
                    errors: 1,
                    p50_ms: 3.1,
                    p95_ms: 5.2,
                    p99_ms: 9.0,
                    max_ms: 20.5,
                },
                StepRow {
                    name: "Create user".into(),
                    count: 1800,
                    errors: 2,
                    p50_ms: 3.4,
                    p95_ms: 5.8,
                    p99_ms: 9.9,
                    max_ms: 31.0,
                },
            ],
            timeline,
            errors_seen: vec!["Create user: status 500 × 2".into()],
            start_skew_ms: Some(1.3),
        }),
        ..Default::default()
    };
    m.set_leader(1, 3);
    m
}

fn draw(model: &Model, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(model, f)).unwrap();
    t.backend().to_string()
}

#[test]
fn main_screen() {
    let screen = draw(&model(), 120, 40);
    assert!(screen.contains("leader: node 1 (term 3)"));
    assert!(screen.contains("127.0.0.1:8102"));
    insta::assert_snapshot!(screen);
}

#[test]
fn a_failed_worker() {
    let mut m = model();
    let run = m.run.as_mut().unwrap();
    run.workers[2] = WorkerRow {
        heartbeat_age_s: Some(9.5),
        ..worker(3, "failed", 400)
    };
    run.errors_seen
        .push("worker 127.0.0.1:8103 failed: no answer for 9.5s".into());
    let screen = draw(&m, 120, 40);
    assert!(screen.contains("failed"));
    insta::assert_snapshot!(screen);
}

#[test]
fn a_leader_change() {
    let mut m = model();
    m.cluster = vec![
        replica(1, "leader", false),
        replica(2, "leader", true),
        replica(3, "follower", true),
    ];
    m.set_leader(2, 4);
    let screen = draw(&m, 120, 40);
    assert!(screen.contains("leader: node 2 (term 4)"));
    assert!(screen.contains("leader changed: node 1 → node 2 (term 4)"));
    assert!(screen.contains("unreachable"));
    insta::assert_snapshot!(screen);
}

#[test]
fn fits_80x24() {
    let screen = draw(&model(), 80, 24);
    assert!(screen.contains("leader: node 1"));
    assert!(screen.contains("q quit"));
    insta::assert_snapshot!(screen);
}

#[test]
fn help_and_stop_overlays() {
    let mut m = model();
    m.show_help = true;
    assert!(draw(&m, 80, 24).contains("toggle this help"));
    m.show_help = false;
    m.confirm_stop = true;
    assert!(draw(&m, 80, 24).contains("y: stop"));
}
