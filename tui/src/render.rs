//! Draws a [`Model`] into a frame: header, cluster and load distribution, workers table, live
//! percentile chart and steps table, errors, key footer; help and stop-confirmation overlays. It is
//! a pure function of the model, so every screen can be tested with `TestBackend`. Fits 80x24: below
//! [`NARROW`] columns the header wraps to two lines, the cluster pane takes the width its lines need,
//! the tables use shorter labels and the steps table drops its p50 column.

use crate::model::{Model, Pane, Run, Screen};
use crate::views;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, Wrap,
};
use ratatui::Frame;

/// Screens narrower than this get the compact layout.
const NARROW: u16 = 100;

/// The distribution pane's least width: a 15-column name, two 3-cell bars and their percentages.
const DISTRIBUTION_MIN: u16 = 2 + 15 + 2 * 6 + 3 + 2 * 3;

/// Draws the whole console.
pub fn render(model: &Model, frame: &mut Frame) {
    let area = frame.area();
    let small = area.height < 30;
    let narrow = area.width < NARROW;
    let header_lines = header_lines(model, area.width as usize);
    if model.screen != Screen::Main {
        let [header, body, footer] = Layout::vertical([
            Constraint::Length(header_lines.len() as u16),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        frame.render_widget(Paragraph::new(header_lines), header);
        match model.screen {
            Screen::Worker(i) => views::worker(model, i, frame, body),
            _ => views::topology(model, frame, body),
        }
        frame.render_widget(footer_line(model, narrow), footer);
        overlays(model, frame, area);
        return;
    }
    let errors_h = if small { 3 } else { 4 };
    let cluster_h = (model.cluster.len().max(1) as u16 + 2).min(5);
    // The workers table takes what its rows need (up to 12 lines); the chart gets the rest.
    let worker_rows = model.run.as_ref().map_or(0, |r| r.workers.len()) as u16;
    let workers_h = (worker_rows + 3).clamp(4, 12);
    let [header, top, workers, middle, errors, footer] = Layout::vertical([
        Constraint::Length(header_lines.len() as u16),
        Constraint::Length(cluster_h),
        Constraint::Max(workers_h),
        Constraint::Min(7),
        Constraint::Length(errors_h),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header_lines), header);
    let [cluster, distribution] = if narrow {
        let needed = cluster_lines(model)
            .iter()
            .map(|(l, _)| l.chars().count())
            .max();
        let width =
            (needed.unwrap_or(0) as u16 + 2).min(area.width.saturating_sub(DISTRIBUTION_MIN));
        Layout::horizontal([Constraint::Length(width), Constraint::Fill(1)]).areas(top)
    } else {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top)
    };
    frame.render_widget(cluster_pane(model), cluster);
    frame.render_widget(
        distribution_pane(model.run.as_ref(), distribution.width),
        distribution,
    );
    // The focused workers pane shows the selected row (scrolled into view by the table state).
    let mut selection = ratatui::widgets::TableState::default();
    if model.focus == Pane::Workers && worker_rows > 0 {
        selection.select(Some(model.selected.min(worker_rows as usize - 1)));
    }
    frame.render_stateful_widget(workers_table(model, narrow), workers, &mut selection);
    let chart_pct = if narrow { 40 } else { 50 };
    let [chart, steps] = Layout::horizontal([
        Constraint::Percentage(chart_pct),
        Constraint::Percentage(100 - chart_pct),
    ])
    .areas(middle);
    render_chart(model.run.as_ref(), frame, chart);
    frame.render_widget(steps_table(model, narrow), steps);
    frame.render_widget(errors_pane(model), errors);
    frame.render_widget(footer_line(model, narrow), footer);
    overlays(model, frame, area);
}

/// The prompt, confirmation and help overlays, over whichever screen is drawn.
fn overlays(model: &Model, frame: &mut Frame, area: Rect) {
    if let Some(text) = &model.prompt {
        let unit = model.run.as_ref().map_or("", |r| r.unit.as_str());
        overlay(
            frame,
            area,
            "Change the load",
            &format!("New total load ({unit}): {text}_\n\n  Enter: confirm    Esc: cancel"),
        );
    } else if model.pending.is_some() {
        overlay(frame, area, "Change the load?", &model.status);
    } else if model.confirm_stop {
        overlay(frame, area, "Stop the run?", "Stop this run on every worker? Requests in flight finish and are counted.\n\n  y: stop    any other key: cancel");
    } else if model.show_help {
        overlay(frame, area, "Help", HELP);
    }
}

const HELP: &str = "q / Esc   quit the console (the run goes on)\n\
s         stop the run (asks to confirm)\n\
+ / -     raise / lower the load by a tenth (asks to confirm)\n\
=         type an exact total load (asks to confirm)\n\
p         pause / resume the run (asks to confirm)\n\
Tab / →   next pane      Shift-Tab / ←  previous pane\n\
↑ / ↓     scroll the focused table (select a worker)\n\
Enter     the selected worker's own view (↑ / ↓ there: other workers)\n\
t         topology: replicas, regions, workers and links\n\
Esc       back to the main screen from a worker or the topology\n\
?         toggle this help\n\n\
The console follows whichever master replica leads.";

pub(crate) fn block(title: &str, focused: bool) -> Block<'_> {
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

/// The header: one line when it fits in `width`, else the run's figures on a second line (the run's
/// name shortened if even the first line would not fit).
fn header_lines(model: &Model, width: usize) -> Vec<Line<'static>> {
    let mut lines = run_lines(model, width);
    lines.extend(region_lines(model, width));
    lines
}

/// A geographic plan's regions, each with its share and time zone, packed into lines of `width`.
fn region_lines(model: &Model, width: usize) -> Vec<Line<'static>> {
    let Some(r) = model.run.as_ref().filter(|r| !r.regions.is_empty()) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let mut line = String::from("  regions:");
    for g in &r.regions {
        let item = format!(
            " {} {:.0}% {}",
            g.name,
            g.load_percentage,
            g.timezone.as_deref().unwrap_or("(no time zone)")
        );
        if line.chars().count() + item.chars().count() > width && line.len() > "  regions:".len() {
            out.push(std::mem::replace(&mut line, "          ".to_string()));
        }
        line.push_str(&item);
    }
    out.push(line);
    out.into_iter().map(Line::from).collect()
}

fn run_lines(model: &Model, width: usize) -> Vec<Line<'static>> {
    let leader = match model.leader {
        Some((id, term)) => format!("leader: node {id} (term {term})"),
        None => "leader: none (election?)".to_string(),
    };
    let title = vec![
        Span::styled("perfornium ", Style::default().add_modifier(Modifier::BOLD)),
        Span::styled(leader, Style::default().fg(Color::Yellow)),
    ];
    let Some(r) = &model.run else {
        let mut line = title;
        line.push(Span::raw("  no run"));
        return vec![Line::from(line)];
    };
    let state = format!(" [{}] {:.0}s", r.phase, r.elapsed_s);
    let figures = format!(
        "req {}  rps {:.1}  err {}  vus {}",
        r.requests, r.rps, r.errors, r.active_vus
    );
    let used: usize = title.iter().map(|s| s.content.chars().count()).sum();
    let one_line = used + 2 + r.name.chars().count() + state.chars().count() + 2;
    if one_line + figures.chars().count() <= width {
        let mut line = title;
        line.push(Span::raw(format!("  {}{state}  {figures}", r.name)));
        return vec![Line::from(line)];
    }
    let room = width.saturating_sub(used + 2 + state.chars().count());
    let mut line = title;
    line.push(Span::raw(format!("  {}{state}", shorten(&r.name, room))));
    vec![Line::from(line), Line::from(format!("  {figures}"))]
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The cluster pane's lines, each with its style: id, address, role, last applied index, in
/// columns as wide as their longest entry.
fn cluster_lines(model: &Model) -> Vec<(String, Style)> {
    let role = |r: &crate::model::Replica| -> String {
        if r.reachable {
            r.role.clone()
        } else {
            "unreachable".into()
        }
    };
    let addr_w = model.cluster.iter().map(|r| r.addr.chars().count()).max();
    let role_w = model.cluster.iter().map(|r| role(r).chars().count()).max();
    let (addr_w, role_w) = (addr_w.unwrap_or(0), role_w.unwrap_or(0).max(8));
    model
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
            let text = format!(
                "{} {:<addr_w$} {:<role_w$} applied {}",
                r.id,
                r.addr,
                role(r),
                applied
            );
            (text, style)
        })
        .collect()
}

fn cluster_pane(model: &Model) -> Paragraph<'_> {
    let lines: Vec<Line> = cluster_lines(model)
        .into_iter()
        .map(|(text, style)| Line::styled(text, style))
        .collect();
    match &model.pool {
        Some(pool) => Paragraph::new(lines)
            .block(block("cluster", false).title(Line::from(format!(" {pool} ")).right_aligned())),
        None => Paragraph::new(lines).block(block("cluster", false)),
    }
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
    let mut title = "load distribution (plan | actual)".to_string();
    if run.live_generation > 0 || run.paused {
        title = format!(
            "load {} {}{} (change {}) plan | actual",
            run.load_target,
            run.unit,
            if run.paused { ", PAUSED" } else { "" },
            run.live_generation
        );
    }
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
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(Span::styled(
        title,
        Style::default().add_modifier(Modifier::BOLD),
    )))
}

pub(crate) fn state_style(state: &str) -> Style {
    match state {
        "failed" => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        "running" | "finished" => Style::default().fg(Color::Green),
        _ => Style::default(),
    }
}

/// A latency in ms in at most 5 characters up to 99999 ms: one decimal below a second, none above.
pub(crate) fn ms(v: f64) -> String {
    if v < 999.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map(|x| format!("{x:.digits$}{unit}"))
        .unwrap_or_else(|| "-".into())
}

/// The workers table; `narrow` screens get shorter labels and columns.
fn workers_table(model: &Model, narrow: bool) -> Table<'_> {
    let focused = model.focus == Pane::Workers;
    let run = model.run.as_ref();
    let unit = run.map(|r| r.unit.as_str()).unwrap_or("VUs");
    let rows: Vec<Row> = run
        .map(|r| &r.workers[..])
        .unwrap_or(&[])
        .iter()
        .map(|w| {
            Row::new(vec![
                Cell::from(w.address.clone()),
                Cell::from(w.region.clone()),
                Cell::from(w.state.clone()).style(state_style(&w.state)),
                Cell::from(format!("{:.0}/{}", w.planned, w.active_vus)),
                Cell::from(format!("{:.1}", w.rps)),
                Cell::from(w.errors.to_string()),
                Cell::from(ms(w.p95_ms)),
                Cell::from(opt(w.heartbeat_age_s, 1, "s")),
                Cell::from(opt(w.clock_offset_ms, 1, "ms")),
            ])
        })
        .collect();
    let (share, errors) = if narrow {
        (format!("{unit} p/a"), "err")
    } else {
        (format!("{unit} plan/act"), "errors")
    };
    let share_w = share.chars().count().max(7) as u16;
    let header = [
        "worker", "region", "state", &share, "req/s", errors, "p95 ms", "seen", "offset",
    ];
    let header = Row::new(header.map(|h| Cell::from(h.to_string())))
        .style(Style::default().add_modifier(Modifier::BOLD));
    // Narrow: 14 + 8 + 8 + 7 + 7 + 5 + 6 + 6 + 7 and 8 gaps leave the address 2 more in 80 columns.
    let widths = if narrow {
        [
            Constraint::Min(14),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(share_w),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(7),
        ]
    } else {
        [
            Constraint::Min(15),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(share_w.max(13)),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(8),
        ]
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(block("workers", focused));
    if focused {
        table.row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
    } else {
        table
    }
}

fn render_chart(run: Option<&Run>, frame: &mut Frame, area: Rect) {
    let points = run.map(|r| &r.timeline[..]).unwrap_or(&[]);
    let series = |f: fn(&crate::model::TimePoint) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.second, f(p))).collect()
    };
    let y_max = points.iter().map(|p| p.p99_ms).fold(1.0, f64::max) * 1.1;
    percentile_chart(
        "live percentiles (ms)",
        &[
            ("p50", Color::Green, series(|p| p.p50_ms)),
            ("p90", Color::Cyan, series(|p| p.p90_ms)),
            ("p95", Color::Yellow, series(|p| p.p95_ms)),
            ("p99", Color::Red, series(|p| p.p99_ms)),
        ],
        y_max,
        frame,
        area,
    );
}

/// One line of a percentile chart: its name, colour and (second, ms) points.
pub(crate) type PercentileLine<'a> = (&'a str, Color, Vec<(f64, f64)>);

/// Percentile lines over seconds (x from the first to the last second, at least one apart; y from
/// 0 to `y_max`): the run's chart and a worker's own view draw through this one function.
pub(crate) fn percentile_chart(
    title: &str,
    lines: &[PercentileLine<'_>],
    y_max: f64,
    frame: &mut Frame,
    area: Rect,
) {
    let seconds = lines.first().map(|(_, _, pts)| &pts[..]).unwrap_or(&[]);
    let x_max = seconds.last().map(|p| p.0).unwrap_or(1.0).max(1.0);
    let x_min = seconds.first().map(|p| p.0).unwrap_or(0.0).min(x_max - 1.0);
    let datasets = lines
        .iter()
        .map(|(name, color, pts)| {
            Dataset::default()
                .name(*name)
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(*color))
                .data(pts)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(block(title, false))
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

/// The steps table; `narrow` screens drop the p50 column.
fn steps_table(model: &Model, narrow: bool) -> Table<'_> {
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
            let mut cells = vec![s.name.clone(), s.count.to_string(), s.errors.to_string()];
            if !narrow {
                cells.push(ms(s.p50_ms));
            }
            cells.extend([ms(s.p95_ms), ms(s.p99_ms), ms(s.max_ms)]);
            Row::new(cells)
        })
        .collect();
    let mut header = vec!["step", "count", "err"];
    let mut widths = vec![
        Constraint::Min(8),
        Constraint::Length(7),
        Constraint::Length(5),
    ];
    if !narrow {
        header.push("p50");
        widths.push(Constraint::Length(6));
    }
    header.extend(["p95", "p99", "max"]);
    widths.extend([Constraint::Length(6); 3]);
    let header = Row::new(header).style(Style::default().add_modifier(Modifier::BOLD));
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

fn footer_line(model: &Model, narrow: bool) -> Paragraph<'_> {
    let keys = match (model.screen, narrow) {
        (Screen::Worker(_), _) => " Esc back  ↑↓ other worker  t topology  s stop  q quit  ? help ",
        (Screen::Topology, _) => " Esc / t back  s stop  +-=p load  q quit  ? help ",
        (Screen::Main, true) => " q quit  s stop  +-=p load  ↵ worker  t topology  ? help ",
        (Screen::Main, false) => {
            " q quit  s stop  +-=p load  tab/←→ move  ↑↓ select  ↵ worker  t topology  ? help "
        }
    };
    let mut spans = vec![Span::styled(
        keys,
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
