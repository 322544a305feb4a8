//! Draws a [`Model`] into a frame: header, cluster and load distribution, workers table, live
//! percentile chart and steps table, errors, key footer; help and stop-confirmation overlays. It is
//! a pure function of the model, so every screen can be tested with `TestBackend`. Fits 80x24.

use crate::model::{Model, Pane, Run};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, Wrap,
};
use ratatui::Frame;

/// Draws the whole console.
pub fn render(model: &Model, frame: &mut Frame) {
    let area = frame.area();
    let small = area.height < 30;
    let errors_h = if small { 3 } else { 4 };
    let cluster_h = (model.cluster.len().max(1) as u16 + 2).min(5);
    // The workers table takes what its rows need (up to 12 lines); the chart gets the rest.
    let worker_rows = model.run.as_ref().map_or(0, |r| r.workers.len()) as u16;
    let workers_h = (worker_rows + 3).clamp(4, 12);
    let [header, top, workers, middle, errors, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(cluster_h),
        Constraint::Max(workers_h),
        Constraint::Min(7),
        Constraint::Length(errors_h),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(header_line(model), header);
    let [cluster, distribution] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
    frame.render_widget(cluster_pane(model), cluster);
    frame.render_widget(
        distribution_pane(model.run.as_ref(), distribution.width),
        distribution,
    );
    frame.render_widget(workers_table(model), workers);
    let [chart, steps] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    render_chart(model.run.as_ref(), frame, chart);
    frame.render_widget(steps_table(model), steps);
    frame.render_widget(errors_pane(model), errors);
    frame.render_widget(footer_line(model), footer);
    if model.confirm_stop {
        overlay(frame, area, "Stop the run?", "Stop this run on every worker? Requests in flight finish and are counted.\n\n  y: stop    any other key: cancel");
    } else if model.show_help {
        overlay(frame, area, "Help", HELP);
    }
}

const HELP: &str = "q / Esc   quit the console (the run goes on)\n\
s         stop the run (asks to confirm)\n\
Tab / →   next pane      Shift-Tab / ←  previous pane\n\
↑ / ↓     scroll the focused table\n\
?         toggle this help\n\n\
The console follows whichever master replica leads.";

fn block(title: &str, focused: bool) -> Block<'_> {
    let style = if focused {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default()
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(
            title,
            Style::default().add_modifier(Modifier::BOLD),
        ))
}

fn header_line(model: &Model) -> Paragraph<'_> {
    let leader = match model.leader {
        Some((id, term)) => format!("leader: node {id} (term {term})"),
        None => "leader: none (election?)".to_string(),
    };
    let run = match &model.run {
        Some(r) => format!(
            "  {} [{}] {:.0}s  req {}  rps {:.1}  err {}  vus {}",
            r.name, r.phase, r.elapsed_s, r.requests, r.rps, r.errors, r.active_vus
        ),
        None => "  no run".to_string(),
    };
    Paragraph::new(Line::from(vec![
        Span::styled("perfornium ", Style::default().add_modifier(Modifier::BOLD)),
        Span::styled(leader, Style::default().fg(Color::Yellow)),
        Span::raw(run),
    ]))
}

fn cluster_pane(model: &Model) -> Paragraph<'_> {
    let lines: Vec<Line> = model
        .cluster
        .iter()
        .map(|r| {
            let style = match (r.reachable, r.role.as_str()) {
                (false, _) => Style::default().fg(Color::Red),
                (true, "leader") => Style::default().fg(Color::Green),
                _ => Style::default(),
            };
            let applied = r
                .last_applied
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into());
            let role = if r.reachable {
                r.role.as_str()
            } else {
                "unreachable"
            };
            Line::styled(
                format!("{} {:<21} {:<11} applied {}", r.id, r.addr, role, applied),
                style,
            )
        })
        .collect();
    Paragraph::new(lines).block(block("cluster", false))
}

fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn distribution_pane(run: Option<&Run>, width: u16) -> Paragraph<'_> {
    // name(15) + two bars + two "100%" labels + separators, inside the borders.
    let bar_w = ((width as usize).saturating_sub(2 + 15 + 2 * 6 + 3) / 2).clamp(3, 20);
    let Some(run) = run else {
        return Paragraph::new("").block(block("load distribution (plan | actual)", false));
    };
    let planned: f64 = run
        .workers
        .iter()
        .map(|w| w.planned)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let actual: f64 = (run.workers.iter().map(|w| w.requests).sum::<u64>() as f64).max(1.0);
    let lines: Vec<Line> = run
        .workers
        .iter()
        .map(|w| {
            let (p, a) = (w.planned / planned, w.requests as f64 / actual);
            let name: String = w
                .address
                .chars()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Line::from(format!(
                "{name:>15} {} {:>3.0}% | {} {:>3.0}%",
                bar(p, bar_w),
                p * 100.0,
                bar(a, bar_w),
                a * 100.0
            ))
        })
        .collect();
    Paragraph::new(lines).block(block("load distribution (plan | actual)", false))
}

fn state_style(state: &str) -> Style {
    match state {
        "failed" => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        "running" | "finished" => Style::default().fg(Color::Green),
        _ => Style::default(),
    }
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map(|x| format!("{x:.digits$}{unit}"))
        .unwrap_or_else(|| "-".into())
}

fn workers_table(model: &Model) -> Table<'_> {
    let focused = model.focus == Pane::Workers;
    let skip = if focused { model.scroll } else { 0 };
    let run = model.run.as_ref();
    let unit = run.map(|r| r.unit.as_str()).unwrap_or("VUs");
    let rows: Vec<Row> = run
        .map(|r| &r.workers[..])
        .unwrap_or(&[])
        .iter()
        .skip(skip)
        .map(|w| {
            Row::new(vec![
                Cell::from(w.address.clone()),
                Cell::from(w.region.clone()),
                Cell::from(w.state.clone()).style(state_style(&w.state)),
                Cell::from(format!("{:.0}/{}", w.planned, w.active_vus)),
                Cell::from(format!("{:.1}", w.rps)),
                Cell::from(w.errors.to_string()),
                Cell::from(format!("{:.1}", w.p95_ms)),
                Cell::from(opt(w.heartbeat_age_s, 1, "s")),
                Cell::from(opt(w.clock_offset_ms, 1, "ms")),
            ])
        })
        .collect();
    let header = [
        "worker",
        "region",
        "state",
        &format!("{unit} plan/act"),
        "req/s",
        "errors",
        "p95 ms",
        "seen",
        "offset",
    ];
    let header = Row::new(header.map(|h| Cell::from(h.to_string())))
        .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Min(15),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(13),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(8),
    ];
    Table::new(rows, widths)
        .header(header)
        .block(block("workers", focused))
}

fn render_chart(run: Option<&Run>, frame: &mut Frame, area: Rect) {
    let points = run.map(|r| &r.timeline[..]).unwrap_or(&[]);
    let series = |f: fn(&crate::model::TimePoint) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.second, f(p))).collect()
    };
    let (p50, p90, p95, p99) = (
        series(|p| p.p50_ms),
        series(|p| p.p90_ms),
        series(|p| p.p95_ms),
        series(|p| p.p99_ms),
    );
    let x_max = points.last().map(|p| p.second).unwrap_or(1.0).max(1.0);
    let x_min = points
        .first()
        .map(|p| p.second)
        .unwrap_or(0.0)
        .min(x_max - 1.0);
    let y_max = points.iter().map(|p| p.p99_ms).fold(1.0, f64::max) * 1.1;
    // The datasets borrow the series for the duration of this draw only.

    let datasets = vec![
        Dataset::default()
            .name("p50")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Green))
            .data(&p50),
        Dataset::default()
            .name("p90")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Cyan))
            .data(&p90),
        Dataset::default()
            .name("p95")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Yellow))
            .data(&p95),
        Dataset::default()
            .name("p99")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Red))
            .data(&p99),
    ];
    let chart = Chart::new(datasets)
        .block(block("live percentiles (ms)", false))
        .x_axis(
            Axis::default()
                .bounds([x_min, x_max])
                .labels([format!("{x_min:.0}s"), format!("{x_max:.0}s")]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels(["0".to_string(), format!("{y_max:.1}")]),
        )
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
    frame.render_widget(chart, area);
}

fn steps_table(model: &Model) -> Table<'_> {
    let focused = model.focus == Pane::Steps;
    let skip = if focused { model.scroll } else { 0 };
    let rows: Vec<Row> = model
        .run
        .as_ref()
        .map(|r| &r.steps[..])
        .unwrap_or(&[])
        .iter()
        .skip(skip)
        .map(|s| {
            Row::new(vec![
                s.name.clone(),
                s.count.to_string(),
                s.errors.to_string(),
                format!("{:.1}", s.p50_ms),
                format!("{:.1}", s.p95_ms),
                format!("{:.1}", s.p99_ms),
                format!("{:.1}", s.max_ms),
            ])
        })
        .collect();
    let header = Row::new(["step", "count", "err", "p50", "p95", "p99", "max"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Min(8),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    Table::new(rows, widths)
        .header(header)
        .block(block("steps (ms)", focused))
}

fn errors_pane(model: &Model) -> Paragraph<'_> {
    let focused = model.focus == Pane::Errors;
    let mut lines: Vec<Line> = Vec::new();
    for c in model.leader_changes.iter().rev().take(2) {
        lines.push(Line::styled(c.clone(), Style::default().fg(Color::Yellow)));
    }
    if let Some(r) = &model.run {
        for e in r.errors_seen.iter().rev() {
            lines.push(Line::styled(e.clone(), Style::default().fg(Color::Red)));
        }
    }
    let skip = if focused { model.scroll } else { 0 };
    let lines: Vec<Line> = lines.into_iter().skip(skip).collect();
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(block("errors and events", focused))
}

fn footer_line(model: &Model) -> Paragraph<'_> {
    let mut spans = vec![Span::styled(
        " q quit  s stop run  tab/←→ move  ↑↓ scroll  ? help ",
        Style::default().add_modifier(Modifier::REVERSED),
    )];
    if let Some(skew) = model.run.as_ref().and_then(|r| r.start_skew_ms) {
        spans.push(Span::raw(format!("  start skew {skew:.1} ms")));
    }
    if !model.status.is_empty() {
        spans.push(Span::raw(format!("  {}", model.status)));
    }
    Paragraph::new(Line::from(spans))
}

fn overlay(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    let w = area.width.min(64);
    let inner = (w as usize).saturating_sub(2).max(1);
    let wrapped: usize = text
        .lines()
        .map(|l| l.chars().count().div_ceil(inner).max(1))
        .sum();
    let h = (wrapped as u16 + 2).min(area.height);
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text.to_string())
            .wrap(Wrap { trim: false })
            .block(block(title, true)),
        rect,
    );
}
