//! Issue 17's "done when": a distributed run with one degraded worker. Two real workers: one on
//! 127.0.0.1, the other in a network namespace whose link delays every frame by 60 ms each way
//! (`tc netem` when the kernel has it; else the harness's userspace switch, `Net::impaired`, which
//! does the same). The master (one replica), the mock and a webhook receiver run in this namespace;
//! the mock listens on the host's address on that link, so the degraded worker's requests and the
//! controller's calls to it both cross the slow link, and the other worker's do not.
//!
//! The run must show that worker's control round trips, request latency, CPU and memory samples and
//! its shortfall against its planned share in `GET /runs/{id}`, in the HTML report (`perfornium
//! report` of the run's summary), in the master's `/metrics`, and in the console (the real mapping
//! of the run view drawn into ratatui's `TestBackend`: its own view and the topology); fire
//! `communication_issues` and `load_imbalance` for it once each, each delivered once to the webhook;
//! and its log records must be in the master's run log with the run id. The mock's `/__stats`
//! counts what both workers sent. Needs root and namespaces (else it says why and passes).

use crate::netns::{self, Impairment, Net};
use crate::support::receiver::Receiver;
use crate::support::{self, call, wait_for, BIN};
use serde_json::Value;

/// The delay the degraded worker's link adds to every frame, each way.
const DELAY_MS: u64 = 60;
const WORKER_PORT: u16 = 8080;

/// The value of the Prometheus series `name{labels}` in `text`.
fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_worker_behind_a_slow_link_shows_everywhere_alerts_once_and_logs_to_the_run_log() {
    if let Some(why) = netns::unavailable() {
        eprintln!("SKIP: network namespaces are unavailable here ({why}); run as root with `ip`");
        return;
    }
    let netem = netns::netem_available();
    if !netem {
        if let Some(why) = netns::tap_unavailable() {
            eprintln!("SKIP: neither sch_netem nor TAP devices here ({why})");
            return;
        }
    }
    let net = if netem {
        let net = Net::new(&["slow"]).expect("a namespace");
        net.netem_all(&["delay", &format!("{DELAY_MS}ms")])
            .expect("netem on the slow link");
        net
    } else {
        Net::impaired(
            &["slow"],
            Impairment {
                delay_ms: DELAY_MS,
                jitter_ms: 0,
                loss_pct: 0.0,
            },
        )
        .expect("an impaired link")
    };
    let mock = support::spawn_server(
        &[
            "mock",
            "--host",
            &net.host_ip,
            "--port",
            "0",
            "--delay",
            "5ms",
        ],
        "/__stats",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut master = support::one_replica_master(dir.path());
    let hooks = Receiver::start("{}");
    let fast = support::worker(None);
    let slow_ip = net.ip_of("slow");
    let mut slow_proc = net.spawn(
        "slow",
        BIN,
        &[
            "worker",
            "--host",
            &slow_ip,
            "--port",
            &WORKER_PORT.to_string(),
        ],
    );
    let slow = format!("{slow_ip}:{WORKER_PORT}");
    assert!(
        wait_for(20, || support::http_get(&format!("http://{slow}/health"))
            .is_ok_and(|(c, _)| c == 200)),
        "the degraded worker never answered:\n{}",
        slow_proc.stderr()
    );

    let test = support::yaml(&mock)
        .name("degraded")
        .load("pattern: basic, virtual_users: 4, duration: 8s")
        .scenario("think_time: 20ms")
        .step("{ name: list, path: /users }")
        .extra(&format!(
            "distributed:
  monitoring:
    alerting:
      communication_issues: true
      load_imbalance: true
      latency_threshold: 100ms
      imbalance_tolerance_pct: 30
      window: 2s
      webhooks:
        - {{ url: \"http://{hooks}/alerts\" }}
  logging:
    centralized: true
    log_levels: {{ master: info, workers: info, communication: info }}
",
            hooks = hooks.addr
        ))
        .text();
    let workers: Vec<Value> = [&fast.addr, &slow]
        .iter()
        .map(|a| {
            let (host, port) = a.split_once(':').expect("host:port");
            serde_json::json!({"host": host, "port": port.parse::<u16>().expect("a port")})
        })
        .collect();
    let body =
        serde_json::json!({"test_yaml": test, "workers": workers, "strategy": "even"}).to_string();
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", master.addr),
        None,
        Some(&body),
    )
    .expect("POST /runs");
    assert_eq!(code, 201, "{resp}\n{}", master.stderr_tail());
    let id = serde_json::from_str::<Value>(&resp).expect("JSON")["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    let run =
        || support::get_json(&format!("http://{}/runs/{id}", master.addr)).unwrap_or_default();
    let delivered = |v: &Value| {
        v["phase"] == "finished"
            && v["summary"]["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .all(|a| a["delivered"].as_array().is_some_and(|d| d.len() == 1))
            })
    };
    assert!(
        wait_for(60, || delivered(&run())),
        "the run did not finish with its alerts delivered: {}\n{}\n{}",
        run(),
        master.stderr_tail(),
        slow_proc.stderr()
    );
    let view = run();
    let s = &view["summary"];
    let context = || format!("summary: {s:#}\nmaster:\n{}", master.stderr_tail());
    let row = |addr: &str| {
        s["workers"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["address"] == addr).cloned())
            .unwrap_or_else(|| panic!("no worker {addr}. {}", context()))
    };
    let (f, sl) = (row(&fast.addr), row(&slow));
    let (fm, sm) = (&f["monitor"], &sl["monitor"]);
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);

    // The run view: its control calls cross the link twice, as do its requests; it was sampled;
    // it made less than its planned half.
    let floor = 2.0 * DELAY_MS as f64;
    assert!(num(&sm["rtt_mean_ms"]) >= floor, "{}", context());
    assert!(
        num(&fm["rtt_mean_ms"]) < floor,
        "the other link is fast. {}",
        context()
    );
    assert!(
        num(&sl["p50"]) >= floor && num(&f["p50"]) < floor,
        "{}",
        context()
    );
    for m in [fm, sm] {
        assert!(m["samples"].as_u64().unwrap_or(0) >= 2, "{}", context());
        assert!(
            m["resources"]["process_memory_bytes"].as_u64().unwrap_or(0) > 1_000_000,
            "{}",
            context()
        );
        assert!(
            m["resources"]["process_cpu_pct"].is_number(),
            "{}",
            context()
        );
        assert_eq!(m["planned_share_pct"].as_f64(), Some(50.0), "{}", context());
    }
    let share = num(&sm["actual_share_pct"]);
    assert!(share < 50.0 * 0.7, "{}", context());
    let (fc, sc) = (f["count"].as_u64().unwrap(), sl["count"].as_u64().unwrap());
    assert!(
        (share - sc as f64 * 100.0 / (sc + fc) as f64).abs() < 0.01,
        "{}",
        context()
    );
    // Counted against the mock's own count.
    let seen = support::get_json(&format!("http://{}/__stats", mock.addr)).unwrap_or_default();
    assert_eq!(
        s["overall"]["count"].as_u64(),
        seen["total"].as_u64(),
        "{}",
        context()
    );
    assert_eq!(
        fc + sc,
        seen["total"].as_u64().unwrap_or(0),
        "{}",
        context()
    );

    // Its alerts, once each, and none about the fast link; each delivered once, by its key.
    let alerts = s["alerts"].as_array().cloned().unwrap_or_default();
    let about = |rule: &str, w: &str| {
        alerts
            .iter()
            .filter(|a| a["rule"] == rule && a["worker"] == w)
            .count()
    };
    assert_eq!(about("communication_issues", &slow), 1, "{}", context());
    assert_eq!(about("load_imbalance", &slow), 1, "{}", context());
    assert_eq!(
        about("communication_issues", &fast.addr),
        0,
        "{}",
        context()
    );
    let got = hooks.got();
    for a in &alerts {
        let key = a["id"].as_str().expect("an id");
        let n = got
            .iter()
            .filter(|r| r.headers.get("idempotency-key").map(String::as_str) == Some(key))
            .count();
        assert_eq!(n, 1, "{key} delivered {n} times: {got:#?}");
    }
    assert_eq!(got.len(), alerts.len(), "{got:#?}");

    // Prometheus: its link's round trip, its request p95, its CPU and share, its alerts.
    let (_, metrics) =
        support::http_get(&format!("http://{}/metrics", master.addr)).expect("/metrics");
    let labels = |w: &str| format!("run=\"{id}\",worker=\"{w}\",region=\"default\"");
    let (ls, lf) = (labels(&slow), labels(&fast.addr));
    let metric = |name: &str, l: &str| {
        series(&metrics, name, l).unwrap_or_else(|| panic!("no {name}{{{l}}} in:\n{metrics}"))
    };
    assert!(metric("perfornium_worker_control_rtt_mean_ms", &ls) >= floor);
    assert!(metric("perfornium_worker_control_rtt_mean_ms", &lf) < floor);
    assert!(
        metric("perfornium_worker_request_p95_ms", &ls)
            > metric("perfornium_worker_request_p95_ms", &lf)
    );
    assert!(metric("perfornium_worker_process_cpu_percent", &ls) >= 0.0);
    assert!(metric("perfornium_worker_host_cpu_percent", &ls) >= 0.0);
    assert!((metric("perfornium_worker_actual_share_percent", &ls) - share).abs() < 0.01);
    for rule in ["communication_issues", "load_imbalance"] {
        let l = format!("run=\"{id}\",rule=\"{rule}\",worker=\"{slow}\"");
        assert_eq!(
            series(&metrics, "perfornium_alerts_total", &l),
            Some(1.0),
            "{metrics}"
        );
    }

    // The report, made by `perfornium report` from the run's summary: the worker's measured row
    // and its alerts, each alert an event marked on the time axes.
    let json = dir.path().join("summary.json");
    std::fs::write(&json, s.to_string()).expect("write the summary");
    let html = dir.path().join("report.html");
    let res = support::run(&[
        "report",
        json.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let page = std::fs::read_to_string(&html).expect("report.html");
    let tr = page
        .split("<tr data-worker=\"")
        .find(|r| r.starts_with(&format!("{slow}\"")))
        .unwrap_or_else(|| panic!("no measured row for {slow} in the report"));
    let attr = |name: &str| -> f64 {
        let at = tr.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        tr[at..tr[at..].find('"').unwrap() + at].parse().unwrap()
    };
    assert!(attr("data-rtt-mean") >= floor, "{tr}");
    assert!((attr("data-actual-share") - share).abs() < 0.05, "{tr}");
    assert!(tr.contains("data-peak"), "CPU shown: {tr}");
    for rule in ["communication_issues", "load_imbalance"] {
        assert!(
            page.contains(&format!("<tr data-rule=\"{rule}\" data-worker=\"{slow}\">")),
            "no {rule} alert row in the report"
        );
    }
    let events = s["events"].as_array().map_or(0, |e| e.len());
    assert!(events >= alerts.len(), "{}", context());
    let latency_chart = &page[page.find("id=\"latency\"").expect("latency chart")..];
    let latency_chart = &latency_chart[..latency_chart.find("</svg>").unwrap()];
    assert_eq!(
        latency_chart.matches("class=\"event\"").count(),
        events,
        "every event (the alerts among them) is marked on the time axis"
    );

    // The console: the run view mapped as the console maps it, drawn as the console draws it.
    let rv: perfornium::api::master::RunView =
        serde_json::from_value(view.clone()).expect("a RunView");
    let model_run = perfornium::console::screen::run_model(&rv);
    let index = model_run
        .workers
        .iter()
        .position(|w| w.address == slow)
        .expect("the slow worker's row");
    let mut model = perfornium_tui::Model {
        run: Some(model_run),
        screen: perfornium_tui::Screen::Worker(index),
        ..Default::default()
    };
    let draw = |m: &perfornium_tui::Model| {
        use perfornium_tui::ratatui::{backend::TestBackend, Terminal};
        let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
        t.draw(|f| perfornium_tui::render(m, f)).unwrap();
        t.backend().to_string()
    };
    let screen = draw(&model);
    let rtt_mean = num(&sm["rtt_mean_ms"]);
    for needle in [
        format!("worker {slow}"),
        format!("share plan 50% act {share:.0}%"),
        format!("mean {rtt_mean:.1}"),
        "proc cpu".to_string(),
        "list".to_string(),
    ] {
        assert!(screen.contains(&needle), "no `{needle}` in:\n{screen}");
    }
    model.screen = perfornium_tui::Screen::Topology;
    let screen = draw(&model);
    let line = screen
        .lines()
        .find(|l| l.contains(&format!("─ {slow}")))
        .unwrap_or_else(|| panic!("no topology row for {slow}:\n{screen}"));
    assert!(line.contains(&format!("{rtt_mean:.1}")), "{line}");

    // Its log records, with the run id, in the master's run log.
    let (code, logs) =
        support::http_get(&format!("http://{}/runs/{id}/logs", master.addr)).expect("logs");
    assert_eq!(code, 200, "{logs}");
    let records: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let from_slow: Vec<&Value> = records
        .iter()
        .filter(|r| r["source"] == slow.as_str())
        .collect();
    assert!(
        from_slow.iter().any(|r| r["message"] == "run started"),
        "no `run started` from {slow} in:\n{logs}"
    );
    assert!(
        from_slow.iter().all(|r| r["run_id"] == id.as_str()),
        "{logs}"
    );
    eprintln!(
        "figures: link by {}; slow worker rtt mean {rtt_mean:.1} ms, p50 {:.1} ms, share {share:.1}% of {} requests; fast worker rtt mean {:.1} ms, p50 {:.1} ms; {} alerts",
        if netem { "netem" } else { "the userspace switch" },
        num(&sl["p50"]),
        fc + sc,
        num(&fm["rtt_mean_ms"]),
        num(&f["p50"]),
        alerts.len()
    );
    master.kill();
    slow_proc.kill();
}
