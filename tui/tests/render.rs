//! Rendering tests: models built here, drawn into ratatui's `TestBackend`, compared with insta
//! snapshots. Beside the snapshots, [`assert_fits`] checks that every figure of the model is on screen
//! whole, so a cut header or column fails the test instead of being accepted into a snapshot. A
//! changed snapshot is reviewed, line by line, before it is accepted (`cargo insta review`).

use perfornium_tui::ratatui::backend::TestBackend;
use perfornium_tui::ratatui::Terminal;
use perfornium_tui::{
    render, Model, RegionRow, Replica, ResourceRow, Run, Screen, StepRow, TimePoint, Views,
    WorkerDetail, WorkerRow, WorkerSecond,
};

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
        detail: WorkerDetail::default(),
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
            regions: Vec::new(),
            load_target: 30.0,
            paused: false,
            live_generation: 0,
            views: Views::default(),
        }),
        ..Default::default()
    };
    m.set_leader(1, 3);
    m
}

/// The words of `line`, split at blanks, box-drawing borders and the backend's quotes.
fn tokens(line: &str) -> Vec<&str> {
    line.split(|c: char| c.is_whitespace() || c == '"' || ('\u{2500}'..='\u{257f}').contains(&c))
        .filter(|t| !t.is_empty())
        .collect()
}

/// The first line holding every one of `keys`.
fn line_with<'a>(screen: &'a str, keys: &[&str]) -> &'a str {
    screen
        .lines()
        .find(|l| keys.iter().all(|k| l.contains(k)))
        .unwrap_or_else(|| panic!("no line shows {keys:?} whole:\n{screen}"))
}

/// Each of `cells` is a whole word on the line holding `keys`.
fn assert_cells(screen: &str, keys: &[&str], cells: &[String]) {
    let line = line_with(screen, keys);
    let words = tokens(line);
    for c in cells {
        assert!(
            words.contains(&c.as_str()),
            "`{c}` is not whole on the line of {keys:?}:\n{line}\n\n{screen}"
        );
    }
}

/// `label value` appears as two consecutive words somewhere on screen.
fn assert_pair(screen: &str, label: &str, value: &str) {
    let found = screen
        .lines()
        .any(|l| tokens(l).windows(2).any(|w| w == [label, value]));
    assert!(found, "`{label} {value}` is not on screen whole:\n{screen}");
}

/// Every figure of the model is on screen, whole: the header's run figures, each replica's role and
/// applied index, each worker's row, each step's row and the column headers. `narrow` screens show
/// no p50 column for steps.
fn assert_fits(model: &Model, screen: &str, narrow: bool) {
    let run = model.run.as_ref().unwrap();
    let (id, term) = model.leader.unwrap();
    assert!(screen.contains(&format!("leader: node {id} (term {term})")));
    assert!(screen.contains(&format!(
        "{} [{}] {:.0}s",
        run.name, run.phase, run.elapsed_s
    )));
    assert_pair(screen, "req", &run.requests.to_string());
    assert_pair(screen, "rps", &format!("{:.1}", run.rps));
    assert_pair(screen, "err", &run.errors.to_string());
    assert_pair(screen, "vus", &run.active_vus.to_string());
    for r in &model.cluster {
        let role = if r.reachable {
            r.role.as_str()
        } else {
            "unreachable"
        };
        let applied = r.last_applied.unwrap().to_string();
        assert_cells(
            screen,
            &[&r.addr],
            &[r.id.to_string(), role.into(), applied],
        );
        assert_pair(screen, "applied", &r.last_applied.unwrap().to_string());
    }
    let planned: f64 = run.workers.iter().map(|w| w.planned).sum();
    for w in &run.workers {
        assert_cells(
            screen,
            &[&w.address, "%"],
            &[
                w.address.clone(),
                format!("{:.0}%", w.planned * 100.0 / planned),
            ],
        );
        assert_cells(
            screen,
            &[&w.address, &w.state],
            &[
                w.region.clone(),
                format!("{:.0}/{}", w.planned, w.active_vus),
                format!("{:.1}", w.rps),
                w.errors.to_string(),
                format!("{:.1}", w.p95_ms),
                format!("{:.1}s", w.heartbeat_age_s.unwrap()),
                format!("{:.1}ms", w.clock_offset_ms.unwrap()),
            ],
        );
    }
    let workers_header = ["worker", "region", "state", "req/s", "seen", "offset"];
    assert_cells(
        screen,
        &["worker", "offset"],
        &workers_header.map(String::from),
    );
    let mut steps_header = vec!["step", "count", "err", "p95", "p99", "max"];
    if !narrow {
        steps_header.push("p50");
    }
    let steps_header: Vec<String> = steps_header.iter().map(|h| h.to_string()).collect();
    assert_cells(screen, &["step", "count"], &steps_header);
    for s in &run.steps {
        let mut cells = vec![
            s.count.to_string(),
            s.errors.to_string(),
            format!("{:.1}", s.p95_ms),
            format!("{:.1}", s.p99_ms),
            format!("{:.1}", s.max_ms),
        ];
        if !narrow {
            cells.push(format!("{:.1}", s.p50_ms));
        }
        assert_cells(screen, &[&s.name], &cells);
    }
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
    assert_fits(&model(), &screen, false);
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
    assert_fits(&m, &screen, false);
    assert_fits(&m, &draw(&m, 80, 24), true);
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
    assert_fits(&m, &screen, false);
    assert_fits(&m, &draw(&m, 80, 24), true);
    insta::assert_snapshot!(screen);
}

#[test]
fn fits_80x24() {
    let screen = draw(&model(), 80, 24);
    assert!(screen.contains("leader: node 1"));
    assert!(screen.contains("q quit"));
    assert_fits(&model(), &screen, true);
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

#[test]
fn a_live_change_shows_in_the_distribution_pane_and_asks_to_confirm() {
    let mut m = model();
    let run = m.run.as_mut().unwrap();
    run.load_target = 45.0;
    run.paused = true;
    run.live_generation = 2;
    let screen = draw(&m, 120, 40);
    assert!(
        screen.contains("load 45 VUs, PAUSED (change 2) plan | actual"),
        "{screen}"
    );
    m.pending = Some(perfornium_tui::Pending::Load(50.0));
    m.status = "set the load to 50 VUs? y: yes, any other key: cancel".into();
    assert!(draw(&m, 80, 24).contains("Change the load?"));
    m.pending = None;
    m.prompt = Some("12".into());
    assert!(draw(&m, 80, 24).contains("New total load (VUs): 12_"));
}

#[test]
fn a_long_run_name_is_shortened_not_the_figures() {
    let mut m = model();
    m.run.as_mut().unwrap().name = "Checkout flow under the Black Friday peak, all regions".into();
    let screen = draw(&m, 80, 24);
    let first = screen.lines().next().unwrap();
    assert!(first.contains("leader: node 1 (term 3)"), "{screen}");
    assert!(first.contains("… [started] 12s"), "{screen}");
    assert_pair(&screen, "rps", "300.0");
    assert_pair(&screen, "vus", "30");
}

#[test]
fn the_registered_pool_shows_in_the_cluster_pane() {
    let mut m = model();
    m.pool = Some("pool: 2 up (w-a, w-b), 1 down (w-c)".into());
    let screen = draw(&m, 120, 40);
    let line = screen
        .lines()
        .find(|l| l.contains("cluster"))
        .expect("the cluster pane's title line");
    assert!(
        line.contains("pool: 2 up (w-a, w-b), 1 down (w-c)"),
        "{screen}"
    );
    assert!(!draw(&model(), 120, 40).contains("pool:"));
}

/// A geographic plan's regions are shown with their share and time zone, in 120 and 80 columns.
#[test]
fn regions_show_their_time_zones() {
    let mut m = model();
    let run = m.run.as_mut().unwrap();
    run.regions = vec![
        RegionRow {
            name: "us-east".into(),
            load_percentage: 75.0,
            timezone: Some("America/New_York".into()),
        },
        RegionRow {
            name: "eu".into(),
            load_percentage: 25.0,
            timezone: None,
        },
    ];
    for (w, h) in [(120, 40), (80, 30)] {
        let screen = draw(&m, w, h);
        assert!(
            screen.contains("regions: us-east 75% America/New_York")
                && screen.contains("eu 25% (no time zone)"),
            "{w}x{h}:\n{screen}"
        );
    }
    assert!(
        !draw(&model(), 120, 40).contains("regions:"),
        "none without regions"
    );
    // The seed's four regions wrap in 80 columns, none cut.
    let run = m.run.as_mut().unwrap();
    run.regions = [
        ("us-east", 40.0, "America/New_York"),
        ("us-west", 30.0, "America/Los_Angeles"),
        ("europe", 20.0, "Europe/London"),
        ("asia", 10.0, "Asia/Tokyo"),
    ]
    .map(|(n, p, tz)| RegionRow {
        name: n.into(),
        load_percentage: p,
        timezone: Some(tz.into()),
    })
    .to_vec();
    let screen = draw(&m, 80, 30);
    for item in [
        "us-east 40% America/New_York",
        "us-west 30% America/Los_Angeles",
        "europe 20% Europe/London",
        "asia 10% Asia/Tokyo",
    ] {
        assert!(screen.contains(item), "{item}:\n{screen}");
    }
}

/// A degraded worker's detail: slow, failing control calls and a saturated CPU.
fn degraded(m: &mut Model) {
    let w = &mut m.run.as_mut().unwrap().workers[1];
    w.detail = WorkerDetail {
        points: (1..=12)
            .map(|s| WorkerSecond {
                second: s as f64,
                requests: 90,
                errors: 0,
                p50_ms: 40.0,
                p95_ms: 60.0 + s as f64,
                p99_ms: 80.0,
            })
            .collect(),
        steps: vec![StepRow {
            name: "List users".into(),
            count: 600,
            errors: 2,
            p50_ms: 41.0,
            p95_ms: 66.5,
            p99_ms: 80.2,
            max_ms: 95.0,
        }],
        resources: Some(ResourceRow {
            process_cpu_pct: 48.0,
            host_cpu_pct: 97.5,
            process_memory_bytes: 45 << 20,
            host_memory_used_bytes: 3 << 30,
            host_memory_total_bytes: 8 << 30,
            saturated: true,
        }),
        peak_process_cpu_pct: 51.0,
        peak_host_cpu_pct: 99.0,
        samples: 12,
        saturated_samples: 9,
        calls: 40,
        failed_calls: 3,
        rtt_last_ms: 201.5,
        rtt_mean_ms: 150.25,
        rtt_max_ms: 402.0,
        planned_share_pct: Some(33.3),
        actual_share_pct: Some(20.0),
        health: vec![
            ("+0.0s".into(), "registered".into()),
            ("+0.3s".into(), "running".into()),
        ],
        logs_dropped: 4,
        error: None,
    };
}

/// The drill-down shows the selected worker's own figures, whole, in 120x40 and in 80x24; the
/// saturated CPU is flagged; Esc-less rendering of a vanished worker says so instead of panicking.
#[test]
fn a_workers_own_view_shows_its_chart_steps_resources_calls_and_health() {
    let mut m = model();
    degraded(&mut m);
    m.screen = Screen::Worker(1);
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = draw(&m, w, h);
        for needle in [
            "worker 127.0.0.1:8102",
            "2/3",
            "SATURATED",
            "its percentiles (ms)",
            "List users",
            "66.5",
            "80.2",
            "95.0",
            "host cpu 97.5%",
            "peak proc 51.0% host 99.0%",
            "saturated 9/12 samples",
            "calls 40  failed 3",
            "rtt last 201.5 ms",
            "mean 150.2 max 402.0 ms",
            "logs dropped 4",
            "share plan 33% act 20%",
            "+0.3s running",
            "Esc back",
        ] {
            assert!(screen.contains(needle), "{w}x{h}: no `{needle}`:\n{screen}");
        }
        assert!(
            !screen.contains("127.0.0.1:8101"),
            "only the selected worker"
        );
        if w == 120 {
            insta::assert_snapshot!(screen);
        }
    }
    // The saturated figure is drawn red.
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| render(&m, f)).unwrap();
    let buf = t.backend().buffer().clone();
    let red = (0..buf.area.height).any(|y| {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        row.find("97.5%").is_some_and(|col| {
            let x = row[..col].chars().count() as u16;
            buf[(x, y)].fg == perfornium_tui::ratatui::style::Color::Red
        })
    });
    assert!(red, "the saturated host CPU is flagged red");
    m.screen = Screen::Worker(7);
    assert!(draw(&m, 80, 24).contains("no longer in the run"));
}

/// The topology: every replica with its role, the regions, and each worker under its region with
/// its link's round trip, failed calls and state.
#[test]
fn the_topology_shows_replicas_regions_and_each_workers_link() {
    let mut m = model();
    degraded(&mut m);
    m.cluster[2] = replica(3, "follower", false);
    let run = m.run.as_mut().unwrap();
    run.workers[2].region = "eu".into();
    run.regions = vec![
        RegionRow {
            name: "default".into(),
            load_percentage: 67.0,
            timezone: None,
        },
        RegionRow {
            name: "eu".into(),
            load_percentage: 33.0,
            timezone: Some("Europe/Paris".into()),
        },
    ];
    m.screen = Screen::Topology;
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = draw(&m, w, h);
        for needle in [
            "node 1 127.0.0.1:7001 leader  drives the run",
            "node 2 127.0.0.1:7002 follower",
            "node 3 127.0.0.1:7003 unreachable",
            "region default 67%",
            "region eu 33% Europe/Paris",
            "├─ 127.0.0.1:8101",
            "└─ 127.0.0.1:8102",
            "└─ 127.0.0.1:8103",
        ] {
            assert!(screen.contains(needle), "{w}x{h}: no `{needle}`:\n{screen}");
        }
        assert_cells(
            &screen,
            &["127.0.0.1:8102"],
            &[
                "running".into(),
                "201.5".into(),
                "150.2".into(),
                "402.0".into(),
                "3/40".into(),
                "98%".into(),
            ],
        );
        if w == 120 {
            insta::assert_snapshot!(screen);
        }
    }
}
