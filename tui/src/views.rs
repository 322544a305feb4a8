//! The two views beside the main screen: one worker's own view (Enter on its row) and the topology
//! (`t`). Both are pure functions of the model, drawn into the area between header and footer.

use crate::model::{Model, ResourceRow, Run, WorkerRow};
use crate::render::{block, ms, percentile_chart, state_style};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// CPU use (percent of the host) from which a figure is flagged: a generator this busy measures its
/// own queueing as the target's latency.
pub const CPU_FLAG_PCT: f64 = 90.0;

fn red() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// Bytes as "45M" / "3.1G".
fn bytes(b: u64) -> String {
    let mib = b as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.1}G", mib / 1024.0)
    } else {
        format!("{mib:.0}M")
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0}%")).unwrap_or_else(|| "-".into())
}

/// A CPU figure, red when at or above [`CPU_FLAG_PCT`].
fn cpu(v: f64) -> Span<'static> {
    let text = format!("{v:.1}%");
    if v >= CPU_FLAG_PCT {
        Span::styled(text, red())
    } else {
        Span::raw(text)
    }
}

/// Whether a worker's last sample is saturated (flagged by the worker or by its figures).
pub fn saturated(r: &ResourceRow) -> bool {
    r.saturated || r.process_cpu_pct >= CPU_FLAG_PCT || r.host_cpu_pct >= CPU_FLAG_PCT
}

/// One worker's own view: its load and share, resources, control calls; its percentile chart over
/// time and its steps; its health history.
pub fn worker(model: &Model, index: usize, frame: &mut Frame, area: Rect) {
    let Some((run, w)) = model
        .run
        .as_ref()
        .and_then(|r| r.workers.get(index).map(|w| (r, w)))
    else {
        frame.render_widget(
            Paragraph::new("this worker is no longer in the run's view; Esc goes back")
                .block(block("worker", true)),
            area,
        );
        return;
    };
    let n = run.workers.len();
    let [title, boxes, middle, health] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(6),
        Constraint::Min(6),
        Constraint::Length(4),
    ])
    .areas(area);
    let mut head = vec![
        Span::styled(
            format!(" worker {} ", w.address),
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(" {}/{n}  region {}  ", index + 1, w.region)),
        Span::styled(w.state.clone(), state_style(&w.state)),
    ];
    if w.detail.resources.as_ref().is_some_and(saturated) {
        head.push(Span::styled(
            "  SATURATED: its latencies are suspect",
            red(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(head)), title);
    let [load, res, calls] = Layout::horizontal([
        Constraint::Percentage(30),
        Constraint::Percentage(38),
        Constraint::Percentage(32),
    ])
    .areas(boxes);
    frame.render_widget(load_box(run, w), load);
    frame.render_widget(resources_box(w), res);
    frame.render_widget(calls_box(w), calls);
    let chart_pct = if area.width < 100 { 40 } else { 50 };
    let [chart, steps] = Layout::horizontal([
        Constraint::Percentage(chart_pct),
        Constraint::Percentage(100 - chart_pct),
    ])
    .areas(middle);
    worker_chart(w, frame, chart);
    frame.render_widget(worker_steps(w), steps);
    frame.render_widget(health_box(w), health);
}

fn load_box<'a>(run: &'a Run, w: &'a WorkerRow) -> Paragraph<'a> {
    let d = &w.detail;
    let lines = vec![
        Line::from(format!(
            "plan {:.0} {}  act {}",
            w.planned, run.unit, w.active_vus
        )),
        Line::from(format!(
            "share plan {} act {}",
            pct(d.planned_share_pct),
            pct(d.actual_share_pct)
        )),
        Line::from(format!("req {}  err {}", w.requests, w.errors)),
        Line::from(format!("req/s {:.1}  p95 {} ms", w.rps, ms(w.p95_ms))),
    ];
    Paragraph::new(lines).block(block("load", false))
}

fn resources_box(w: &WorkerRow) -> Paragraph<'_> {
    let d = &w.detail;
    let Some(r) = d.resources else {
        return Paragraph::new("no sample yet").block(block("resources", false));
    };
    let mut lines = vec![
        Line::from(vec![
            Span::raw("proc cpu "),
            cpu(r.process_cpu_pct),
            Span::raw(format!(" mem {}", bytes(r.process_memory_bytes))),
        ]),
        Line::from(vec![
            Span::raw("host cpu "),
            cpu(r.host_cpu_pct),
            Span::raw(format!(
                " mem {}/{}",
                bytes(r.host_memory_used_bytes),
                bytes(r.host_memory_total_bytes)
            )),
        ]),
        Line::from(vec![
            Span::raw("peak proc "),
            cpu(d.peak_process_cpu_pct),
            Span::raw(" host "),
            cpu(d.peak_host_cpu_pct),
        ]),
    ];
    let sat = format!("saturated {}/{} samples", d.saturated_samples, d.samples);
    lines.push(if d.saturated_samples > 0 {
        Line::styled(sat, red())
    } else {
        Line::from(sat)
    });
    let title = if saturated(&r) {
        "resources ≥90% CPU"
    } else {
        "resources"
    };
    let b = block(title, false);
    let b = if saturated(&r) {
        b.border_style(Style::default().fg(Color::Red))
    } else {
        b
    };
    Paragraph::new(lines).block(b)
}

fn calls_box(w: &WorkerRow) -> Paragraph<'_> {
    let d = &w.detail;
    let failed = format!("calls {}  failed {}", d.calls, d.failed_calls);
    let lines = vec![
        if d.failed_calls > 0 {
            Line::styled(failed, Style::default().fg(Color::Yellow))
        } else {
            Line::from(failed)
        },
        Line::from(format!("rtt last {} ms", ms(d.rtt_last_ms))),
        Line::from(format!(
            "mean {} max {} ms",
            ms(d.rtt_mean_ms),
            ms(d.rtt_max_ms)
        )),
        Line::from(format!("logs dropped {}", d.logs_dropped)),
    ];
    Paragraph::new(lines).block(block("control calls", false))
}

fn worker_chart(w: &WorkerRow, frame: &mut Frame, area: Rect) {
    let points = &w.detail.points;
    let series = |f: fn(&crate::model::WorkerSecond) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.second, f(p))).collect()
    };
    let y_max = points
        .iter()
        .map(|p| p.p99_ms.max(p.p95_ms))
        .fold(1.0, f64::max)
        * 1.1;
    percentile_chart(
        "its percentiles (ms)",
        &[
            ("p50", Color::Green, series(|p| p.p50_ms)),
            ("p95", Color::Yellow, series(|p| p.p95_ms)),
            ("p99", Color::Red, series(|p| p.p99_ms)),
        ],
        y_max,
        frame,
        area,
    );
}

fn worker_steps(w: &WorkerRow) -> Table<'_> {
    let rows: Vec<Row> = w
        .detail
        .steps
        .iter()
        .map(|s| {
            Row::new(vec![
                s.name.clone(),
                s.count.to_string(),
                s.errors.to_string(),
                ms(s.p95_ms),
                ms(s.p99_ms),
                ms(s.max_ms),
            ])
        })
        .collect();
    let header = Row::new(["step", "count", "err", "p95", "p99", "max"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Min(8),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    Table::new(rows, widths)
        .header(header)
        .block(block("its steps (ms)", false))
}

fn health_box(w: &WorkerRow) -> Paragraph<'_> {
    let mut spans = Vec::new();
    for (i, (at, state)) in w.detail.health.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" → "));
        }
        spans.push(Span::raw(format!("{at} ")));
        spans.push(Span::styled(state.clone(), state_style(state)));
    }
    if spans.is_empty() {
        spans.push(Span::raw("no change recorded yet"));
    }
    let mut lines = vec![Line::from(spans)];
    if let Some(e) = &w.detail.error {
        lines.push(Line::styled(format!("error: {e}"), red()));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(block("health history", false))
}

/// The topology: master replicas with their roles, then the workers by region, each with the
/// controller's link to it (round trip of its calls, failures) and its state.
pub fn topology(model: &Model, frame: &mut Frame, area: Rect) {
    let masters_h = (model.cluster.len().max(1) as u16 + 2).min(area.height / 2);
    let [masters, workers] =
        Layout::vertical([Constraint::Length(masters_h), Constraint::Min(3)]).areas(area);
    let leader = model.leader.map(|(id, _)| id);
    let lines: Vec<Line> = if model.cluster.is_empty() {
        vec![Line::from("no replica answered")]
    } else {
        model
            .cluster
            .iter()
            .map(|r| {
                let (mark, style) = match (r.reachable, r.role.as_str()) {
                    (false, _) => ("✗", Style::default().fg(Color::Red)),
                    (true, "leader") => ("●", Style::default().fg(Color::Green)),
                    _ => ("○", Style::default()),
                };
                let role = if r.reachable {
                    r.role.as_str()
                } else {
                    "unreachable"
                };
                let controls = if r.reachable && leader == Some(r.id) && r.role == "leader" {
                    "  drives the run"
                } else {
                    ""
                };
                Line::styled(
                    format!("{mark} node {} {} {role}{controls}", r.id, r.addr),
                    style,
                )
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines).block(block("topology: master replicas (raft)", false)),
        masters,
    );
    let Some(run) = &model.run else {
        frame.render_widget(
            Paragraph::new("no run").block(block("workers by region", false)),
            workers,
        );
        return;
    };
    // Regions in the plan's order, then any a worker names that the plan does not.
    let mut regions: Vec<String> = run.regions.iter().map(|g| g.name.clone()).collect();
    for w in &run.workers {
        if !regions.contains(&w.region) {
            regions.push(w.region.clone());
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    for name in &regions {
        let members: Vec<&WorkerRow> = run.workers.iter().filter(|w| &w.region == name).collect();
        if members.is_empty() {
            continue;
        }
        let share = run
            .regions
            .iter()
            .find(|g| &g.name == name)
            .map(|g| {
                format!(
                    " {:.0}% {}",
                    g.load_percentage,
                    g.timezone.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default();
        let label = if name.is_empty() { "(no region)" } else { name };
        rows.push(
            Row::new(vec![format!("region {label}{share}")])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        );
        for (i, w) in members.iter().enumerate() {
            let branch = if i + 1 == members.len() {
                "└─"
            } else {
                "├─"
            };
            let d = &w.detail;
            let rtt = |v: f64| if d.calls == 0 { "-".to_string() } else { ms(v) };
            let failed = format!("{}/{}", d.failed_calls, d.calls);
            let failed = if d.failed_calls > 0 {
                ratatui::widgets::Cell::from(failed).style(Style::default().fg(Color::Yellow))
            } else {
                ratatui::widgets::Cell::from(failed)
            };
            let cpu_cell = match d.resources {
                Some(r) => {
                    let c = r.process_cpu_pct.max(r.host_cpu_pct);
                    let text = format!("{c:.0}%");
                    if saturated(&r) {
                        ratatui::widgets::Cell::from(text).style(red())
                    } else {
                        ratatui::widgets::Cell::from(text)
                    }
                }
                None => ratatui::widgets::Cell::from("-"),
            };
            rows.push(Row::new(vec![
                ratatui::widgets::Cell::from(format!("{branch} {}", w.address)),
                ratatui::widgets::Cell::from(w.state.clone()).style(state_style(&w.state)),
                ratatui::widgets::Cell::from(rtt(d.rtt_last_ms)),
                ratatui::widgets::Cell::from(rtt(d.rtt_mean_ms)),
                ratatui::widgets::Cell::from(rtt(d.rtt_max_ms)),
                failed,
                cpu_cell,
            ]));
        }
    }
    let header = Row::new(["worker", "state", "link ms", "mean", "max", "failed", "cpu"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Min(20),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(5),
    ];
    frame.render_widget(
        Table::new(rows, widths).header(header).block(block(
            "workers by region: the controller's link to each (round trip of its calls)",
            false,
        )),
        workers,
    );
}
