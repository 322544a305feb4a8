//! The interactive console: fills the `perfornium-tui` model from the master's views and runs the
//! terminal. One state, a pure render, and a `tokio::select!` over key events, a redraw tick and the
//! data channel (a task that polls the cluster once a second and follows the leader).

use super::client::ClusterClient;
use crate::api::master::{ClusterView, LoadUnit, Role, RunPatch, RunView};
use crate::time::now_ms;
use futures_util::StreamExt;
use perfornium_tui::ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use perfornium_tui::{
    handle_key, render, Action, Model, Replica, ResourceRow, Run, StepRow, TimePoint, Views,
    WorkerDetail, WorkerRow, WorkerSecond,
};
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the terminal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("terminal input: {0}")]
    Input(std::io::Error),
    #[error("drawing the console: {0}")]
    Draw(std::io::Error),
}

/// One refresh of everything the console shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub cluster: Vec<(String, Option<ClusterView>)>,
    pub run: Option<RunView>,
    pub error: Option<String>,
    /// The registered pool's line (see [`super::pool_line`]), when workers registered.
    pub pool: Option<String>,
}

/// Maps the master's run view into the screen's model.
pub fn run_model(v: &RunView) -> Run {
    let s = &v.summary;
    let now = now_ms();
    Run {
        id: v.id.clone(),
        name: s.name.clone(),
        phase: v.phase.to_string(),
        elapsed_s: v.live.elapsed_s,
        requests: v.live.requests.max(s.overall.count),
        errors: v.live.errors.max(s.overall.errors),
        rps: v.live.rps,
        active_vus: v.live.active_vus,
        unit: match v.unit {
            LoadUnit::ArrivalsPerSecond => "rate".into(),
            LoadUnit::Vus => "VUs".into(),
        },
        workers: s
            .workers
            .iter()
            .map(|w| WorkerRow {
                address: w.address.clone(),
                region: w.region.clone(),
                state: w.state.to_string(),
                planned: w.planned,
                active_vus: w.active_vus,
                requests: w.count,
                rps: w.rps,
                errors: w.errors,
                p95_ms: w.p95,
                heartbeat_age_s: (w.last_seen_ms > 0)
                    .then(|| now.saturating_sub(w.last_seen_ms) as f64 / 1000.0),
                clock_offset_ms: w.clock_offset_ms,
                detail: worker_detail(w, v.start_at_ms),
            })
            .collect(),
        steps: s
            .steps
            .iter()
            .map(|st| StepRow {
                name: st.name.clone(),
                count: st.count,
                errors: st.errors,
                p50_ms: st.p50,
                p95_ms: st.p95,
                p99_ms: st.p99,
                max_ms: st.max,
            })
            .collect(),
        timeline: s
            .timeline
            .iter()
            .map(|p| TimePoint {
                second: p.second as f64,
                p50_ms: p.p50_ms,
                p90_ms: p.p90_ms,
                p95_ms: p.p95_ms,
                p99_ms: p.p99_ms,
            })
            .collect(),
        errors_seen: s
            .events
            .iter()
            .cloned()
            .chain(s.steps.iter().flat_map(|st| {
                st.errors_by_kind
                    .iter()
                    .map(move |(k, n)| format!("{}: {k} × {n}", st.name))
            }))
            .collect(),
        start_skew_ms: s.start_skew_ms,
        regions: v
            .regions
            .iter()
            .map(|r| perfornium_tui::RegionRow {
                name: r.name.clone(),
                load_percentage: r.load_percentage,
                timezone: r.timezone.clone(),
            })
            .collect(),
        load_target: match &v.control {
            Some(c) => c.target,
            None => s.workers.iter().map(|w| w.planned).sum(),
        },
        paused: v.control.as_ref().is_some_and(|c| c.paused),
        live_generation: v.control.as_ref().map_or(0, |c| c.generation),
        views: v
            .views
            .map(|c| Views {
                worker: c.worker_dashboards,
                topology: c.network_topology,
            })
            .unwrap_or_default(),
    }
}

/// One worker's own view: its seconds, steps, resources, control calls and health history (times
/// in seconds since the run's start, else since its first health change).
pub fn worker_detail(w: &crate::report::WorkerSummary, start_at_ms: Option<u64>) -> WorkerDetail {
    let m = &w.monitor;
    let origin = start_at_ms
        .or(m.health.first().map(|h| h.at_ms))
        .unwrap_or(0);
    WorkerDetail {
        points: w
            .points
            .iter()
            .map(|p| WorkerSecond {
                second: p.second as f64,
                requests: p.requests,
                errors: p.errors,
                p50_ms: p.p50_ms,
                p95_ms: p.p95_ms,
                p99_ms: p.p99_ms,
            })
            .collect(),
        steps: w
            .steps
            .iter()
            .map(|st| StepRow {
                name: st.name.clone(),
                count: st.count,
                errors: st.errors,
                p50_ms: st.p50,
                p95_ms: st.p95,
                p99_ms: st.p99,
                max_ms: st.max,
            })
            .collect(),
        resources: m.resources.map(|r| ResourceRow {
            process_cpu_pct: r.process_cpu_pct,
            host_cpu_pct: r.host_cpu_pct,
            process_memory_bytes: r.process_memory_bytes,
            host_memory_used_bytes: r.host_memory_used_bytes,
            host_memory_total_bytes: r.host_memory_total_bytes,
            saturated: r.saturated,
        }),
        peak_process_cpu_pct: m.peak_process_cpu_pct,
        peak_host_cpu_pct: m.peak_host_cpu_pct,
        samples: m.samples,
        saturated_samples: m.saturated_samples,
        calls: m.calls,
        failed_calls: m.failed_calls,
        rtt_last_ms: m.rtt_last_ms,
        rtt_mean_ms: m.rtt_mean_ms,
        rtt_max_ms: m.rtt_max_ms,
        planned_share_pct: m.planned_share_pct,
        actual_share_pct: m.actual_share_pct,
        health: m
            .health
            .iter()
            .map(|h| {
                let s = (h.at_ms as f64 - origin as f64) / 1000.0;
                (format!("{s:+.1}s"), h.state.clone())
            })
            .collect(),
        logs_dropped: m.logs_dropped,
        error: w.error.clone(),
    }
}

/// Applies a snapshot to the model.
pub fn apply(model: &mut Model, snap: &Snapshot) {
    model.cluster = snap
        .cluster
        .iter()
        .enumerate()
        .map(|(i, (addr, view))| match view {
            Some(v) => Replica {
                id: v.id,
                addr: addr.clone(),
                role: v.role.to_string(),
                reachable: true,
                last_applied: v.last_applied,
            },
            None => Replica {
                id: i as u64 + 1,
                addr: addr.clone(),
                role: "unreachable".into(),
                reachable: false,
                last_applied: None,
            },
        })
        .collect();
    let leader = snap
        .cluster
        .iter()
        .filter_map(|(_, v)| v.as_ref())
        .find(|v| v.role == Role::Leader);
    if let Some(l) = leader {
        model.set_leader(l.id, l.term);
    }
    if let Some(run) = &snap.run {
        model.run = Some(run_model(run));
    }
    model.status = snap.error.clone().unwrap_or_default();
    if snap.pool.is_some() {
        model.pool = snap.pool.clone();
    }
}

/// Polls the cluster once a second and sends snapshots until the receiver goes away; a message on
/// `stops` asks the leader to stop the run.
pub async fn poll(
    mut client: ClusterClient,
    run_id: String,
    tx: mpsc::Sender<Snapshot>,
    mut stops: mpsc::UnboundedReceiver<()>,
    mut changes: mpsc::UnboundedReceiver<RunPatch>,
) {
    loop {
        while let Ok(patch) = changes.try_recv() {
            change(&mut client, &run_id, &patch, &tx).await;
        }
        if stops.try_recv().is_ok() {
            stop(&mut client, &run_id, &tx).await;
        }
        let mut cluster = Vec::new();
        for addr in client.addrs.clone() {
            cluster.push((addr.clone(), client.cluster_of(&addr).await));
        }
        let _ = client.find_leader().await;
        let (run, error) = match client.run(&run_id).await {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let pool = client.pool().await.as_deref().and_then(super::pool_line);
        if tx
            .send(Snapshot {
                cluster,
                run,
                error,
                pool,
            })
            .await
            .is_err()
        {
            return;
        }
        // A key pressed while waiting acts at once, not at the next poll.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            Some(patch) = changes.recv() => change(&mut client, &run_id, &patch, &tx).await,
            Some(()) = stops.recv() => stop(&mut client, &run_id, &tx).await,
        }
    }
}

/// Sends a live change to the leader and tells the screen how it went.
async fn change(
    client: &mut ClusterClient,
    run_id: &str,
    patch: &RunPatch,
    tx: &mpsc::Sender<Snapshot>,
) {
    let text = match client.change(run_id, patch).await {
        Ok(c) => format!(
            "live change {} taken: {} {}{}",
            c.generation,
            c.target,
            c.unit.label(),
            if c.paused { ", paused" } else { "" }
        ),
        Err(e) => format!("load change refused: {e}"),
    };
    notice(tx, text).await;
}

/// Asks the leader to stop the run; a failure is shown on the screen.
async fn stop(client: &mut ClusterClient, run_id: &str, tx: &mpsc::Sender<Snapshot>) {
    if let Err(e) = client.stop(run_id).await {
        notice(tx, format!("stop failed: {e}")).await;
    }
}

/// A message for the screen's status line, with no new cluster or run view.
async fn notice(tx: &mpsc::Sender<Snapshot>, text: String) {
    let _ = tx
        .send(Snapshot {
            cluster: Vec::new(),
            run: None,
            error: Some(text),
            pool: None,
        })
        .await;
}

/// Runs the interactive console over a stream of snapshots until the user quits (q); `s` + `y` sends
/// on `stop`. Returns the last run view seen.
pub async fn interactive(
    rx: mpsc::Receiver<Snapshot>,
    stop: mpsc::UnboundedSender<()>,
) -> Result<Option<RunView>, ScreenError> {
    interactive_with(rx, stop, None).await
}

/// The live change a confirmed key asks for, in the run's own unit.
pub fn patch_for(model: &Model, action: Action) -> Option<RunPatch> {
    let vus = model.run.as_ref().is_some_and(|r| r.unit == "VUs");
    match action {
        Action::SetLoad(x) if vus => Some(RunPatch {
            virtual_users: Some(x.round().max(1.0) as u64),
            ..Default::default()
        }),
        Action::SetLoad(x) => Some(RunPatch {
            arrival_rate: Some(x),
            ..Default::default()
        }),
        Action::Pause(p) => Some(RunPatch {
            paused: Some(p),
            ..Default::default()
        }),
        _ => None,
    }
}

/// [`interactive`] whose `+`/`-`/`=`/`p` keys send live changes on `changes` (without it they
/// say that live control is not available here).
pub async fn interactive_with(
    mut rx: mpsc::Receiver<Snapshot>,
    stop: mpsc::UnboundedSender<()>,
    changes: Option<mpsc::UnboundedSender<RunPatch>>,
) -> Result<Option<RunView>, ScreenError> {
    let mut terminal = perfornium_tui::ratatui::init();
    let mut model = Model::default();
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last: Option<RunView> = None;
    let result = loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(snap) = rx.recv() => {
                if !snap.cluster.is_empty() || snap.run.is_some() { apply(&mut model, &snap); }
                if let Some(e) = &snap.error { model.status = e.clone(); }
                if snap.run.is_some() { last = snap.run; }
            }
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => match handle_key(&mut model, k) {
                    Action::Quit => break Ok(last.clone()),
                    Action::StopRun => { let _ = stop.send(()); }
                    a @ (Action::SetLoad(_) | Action::Pause(_)) => match (&changes, patch_for(&model, a)) {
                        (Some(tx), Some(p)) => { let _ = tx.send(p); }
                        _ => model.status = "live load changes are not available in this console".into(),
                    },
                    Action::None => {}
                },
                Some(Err(e)) => break Err(ScreenError::Input(e)),
                None => break Ok(last.clone()),
                _ => {}
            },
        }
        if let Err(e) = terminal.draw(|f| render(&model, f)) {
            break Err(ScreenError::Draw(e));
        }
    };
    perfornium_tui::ratatui::restore();
    result
}

/// The console attached to a cluster.
pub async fn attach(client: ClusterClient, run_id: String) -> Result<Option<RunView>, ScreenError> {
    let (tx, rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = mpsc::unbounded_channel();
    let (change_tx, change_rx) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll(client, run_id, tx, stop_rx, change_rx));
    let result = interactive_with(rx, stop_tx, Some(change_tx)).await;
    poller.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfornium_tui::ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    const TEST: &str = "name: t\nglobal:\n  base_url: \"http://127.0.0.1:1\"\nload:\n  pattern: basic\n  virtual_users: 4\n  duration: 5s\nscenarios:\n  - name: s\n    steps:\n      - name: list\n        path: /users\n";

    fn view_of(yaml: &str) -> RunView {
        let test = crate::config::from_str(yaml).unwrap();
        let workers = crate::control::workers::parse_list("127.0.0.1:8101,127.0.0.1:8102").unwrap();
        crate::control::submit::new_record("r".into(), test, &workers, None, false)
            .unwrap()
            .view(1)
    }

    fn press(model: &mut Model, code: KeyCode) {
        handle_key(model, KeyEvent::new(code, KeyModifiers::NONE));
    }

    /// `monitoring.dashboards` travels in the run view: without it both views open; with
    /// `worker_dashboards: false` and `network_topology: false` the keys are refused by name.
    #[test]
    fn the_tests_dashboards_keys_switch_the_consoles_views() {
        let mut model = Model {
            run: Some(run_model(&view_of(TEST))),
            ..Default::default()
        };
        press(&mut model, KeyCode::Enter);
        assert_eq!(model.screen, perfornium_tui::Screen::Worker(0));
        press(&mut model, KeyCode::Esc);
        press(&mut model, KeyCode::Char('t'));
        assert_eq!(model.screen, perfornium_tui::Screen::Topology);

        let off = format!("{TEST}distributed:\n  monitoring:\n    dashboards:\n      worker_dashboards: false\n      network_topology: false\n");
        let v = view_of(&off);
        assert_eq!(
            v.views,
            Some(crate::api::master::ConsoleViews {
                worker_dashboards: false,
                network_topology: false
            })
        );
        let mut model = Model {
            run: Some(run_model(&v)),
            ..Default::default()
        };
        press(&mut model, KeyCode::Enter);
        assert_eq!(model.screen, perfornium_tui::Screen::Main);
        assert!(model.status.contains("worker_dashboards: false"));
        press(&mut model, KeyCode::Char('t'));
        assert_eq!(model.screen, perfornium_tui::Screen::Main);
        assert!(model.status.contains("network_topology: false"));
    }
}
