//! The HTML report: one self-contained file (inline CSS and SVG, no network fetches) with the
//! summary; latency percentiles over time; the HDR percentile spectrum of the merged histogram (log
//! scale); throughput with one line per worker beside the merged one; each worker's p95; active VUs
//! and dropped arrivals; the arrival rate (arrivals made per second, per worker, beside the open
//! model's target); status codes and errors over time; the per-step table, the per-worker table
//! of a distributed run with what the controller measured of each worker (control round trips and
//! failures, CPU flagged at saturation, memory, planned vs actual share), threshold verdicts, the plan
//! and start skew, the alerts, and the run's events marked on every time axis. Every chart has axis ticks and gridlines. Charts are drawn as SVG here, so the
//! page needs no script to show them; a few lines of script only count the drawn charts into the
//! title, which lets a headless browser test check that they rendered.

use super::junit::escape;
use super::RunSummary;
use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 240.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 46.0;

/// Colours for one line per worker (cycled).
const PALETTE: [&str; 8] = [
    "#8e44ad", "#16a085", "#d35400", "#2980b9", "#c0392b", "#7f8c8d", "#27ae60", "#f39c12",
];

/// One line of a chart.
struct Series {
    name: String,
    color: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

impl Series {
    fn new(name: impl Into<String>, color: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            color: color.into(),
            points,
            dashed: false,
        }
    }
}

/// One dashed line per worker (colours from [`PALETTE`]) of `value` over each of its seconds.
fn worker_lines(
    workers: &[&super::WorkerSummary],
    value: impl Fn(&super::WorkerPoint) -> f64,
) -> Vec<Series> {
    workers
        .iter()
        .enumerate()
        .map(|(i, w)| Series {
            dashed: true,
            ..Series::new(
                w.address.clone(),
                PALETTE[i % PALETTE.len()],
                w.points
                    .iter()
                    .map(|p| (p.second as f64, value(p)))
                    .collect(),
            )
        })
        .collect()
}

/// How the x axis is read.
enum XAxis<'a> {
    /// Seconds of the run, with the run's events (second, text) marked.
    Time(&'a [(u64, String)]),
    /// Percentiles on a log scale: x is log10(1 / (1 − p)), so 1 is 90 %, 2 is 99 %...
    Percentile,
}

/// A "nice" step (1, 2 or 5 × 10^k) giving about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A value for an axis label: no more decimals than the step needs.
fn label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// The percentile an x of the spectrum stands for, as a label.
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x - 2.0).max(0.0).ceil() as usize;
    format!("{p:.decimals$}%")
}

fn chart(id: &str, title: &str, unit: &str, axis: XAxis, series: &[Series]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_min, x_max) = match axis {
        XAxis::Time(_) => {
            let x_max = xs.clone().fold(1.0, f64::max);
            (0.0, x_max)
        }
        XAxis::Percentile => (0.0, xs.fold(1.0, f64::max).ceil().max(1.0)),
    };
    let y_top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let y_step = nice_step(y_top.max(1e-6), 5.0);
    let y_max = ((y_top / y_step).floor() + 1.0) * y_step;
    let x_step = match axis {
        XAxis::Time(_) => nice_step(x_max - x_min, 8.0).max(1.0),
        XAxis::Percentile => 1.0,
    };
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * pw;
    let sy = |y: f64| TOP + ph - (y / y_max) * ph;
    let mut svg = format!(
        r#"<svg class="chart" id="{id}" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fcfcfc" stroke="#bbb"/>"##
    );
    // Y ticks and gridlines.
    let mut y = 0.0;
    while y <= y_max + y_step * 1e-6 {
        let py = sy(y);
        let _ = write!(
            svg,
            r##"<line class="grid y" x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#e4e4e4"/><line class="tick" x1="{}" x2="{LEFT}" y1="{py:.1}" y2="{py:.1}" stroke="#888"/><text class="axis ytick" x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 4.0,
            LEFT - 6.0,
            py + 4.0,
            label(y, y_step)
        );
        y += y_step;
    }
    // X ticks and gridlines.
    let mut x = (x_min / x_step).ceil() * x_step;
    while x <= x_max + x_step * 1e-6 {
        let px = sx(x);
        let text = match axis {
            XAxis::Time(_) => format!("{}s", label(x, x_step)),
            XAxis::Percentile => percentile_label(x),
        };
        let _ = write!(
            svg,
            r##"<line class="grid x" x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#e4e4e4"/><line class="tick" x1="{px:.1}" x2="{px:.1}" y1="{}" y2="{}" stroke="#888"/><text class="axis xtick" x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph,
            TOP + ph + 4.0,
            TOP + ph + 15.0,
            escape(&text)
        );
        x += x_step;
    }
    let _ = write!(
        svg,
        r#"<text class="axis unit" x="4" y="{}" transform="rotate(-90 10 {})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(unit)
    );
    // The run's events: a dashed vertical line each, numbered, with the text as a tooltip.
    if let XAxis::Time(events) = axis {
        for (n, (second, text)) in events.iter().enumerate() {
            let px = sx((*second as f64).clamp(x_min, x_max));
            let _ = write!(
                svg,
                r##"<g class="event" data-second="{second}"><title>{second}s: {}</title><line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#b00020" stroke-dasharray="4 3"/><text class="axis" x="{:.1}" y="{}" fill="#b00020">{}</text></g>"##,
                escape(text),
                TOP + ph,
                px + 2.0,
                TOP + 10.0,
                n + 1
            );
        }
    }
    let mut lx = LEFT;
    for s in series {
        if !s.points.is_empty() {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            // The values themselves beside the drawn points, so a reader (or a test) can take
            // the chart's numbers without inverting its scale.
            let values: Vec<String> = s.points.iter().map(|&(_, y)| format!("{y}")).collect();
            let _ = write!(
                svg,
                r#"<polyline class="series" data-name="{}" data-y="{}" fill="none" stroke="{}" stroke-width="2"{} points="{}"/>"#,
                escape(&s.name),
                values.join(" "),
                s.color,
                if s.dashed {
                    r#" stroke-dasharray="6 3""#
                } else {
                    ""
                },
                path.join(" ")
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{lx:.1}" y="{}" fill="{}" class="legend">{}</text>"#,
            H - 6.0,
            s.color,
            escape(&s.name)
        );
        lx += 14.0 + 6.5 * s.name.chars().count() as f64;
    }
    svg.push_str("</svg>");
    format!("<h2>{}</h2>\n{svg}\n", escape(title))
}

fn metric_row(name: &str, s: &super::StepSummary) -> String {
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}/{}</td></tr>\n",
        escape(name), s.count, s.errors, s.error_rate, s.rps, s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.max, s.checks_passed, s.checks_passed + s.checks_failed
    )
}

/// The percentiles the spectrum's table lists, with the summary's own figure where it has one.
const SPECTRUM_TABLE: [(f64, &str); 9] = [
    (0.5, "p50"),
    (0.75, "p75"),
    (0.9, "p90"),
    (0.95, "p95"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
    (0.99999, "p99.999"),
    (1.0, "max"),
];

/// The spectrum's points: latency at x = log10(1/(1−p)) for p from 0 up to where one more
/// decade would pass the last sample (the histogram's count), and the maximum at the end.
fn spectrum_points(h: &crate::metrics::Latency) -> Vec<(f64, f64)> {
    let count = h.count();
    if count == 0 {
        return Vec::new();
    }
    let x_end = (count as f64).log10().ceil().clamp(1.0, 6.0);
    let mut pts = Vec::new();
    let steps = (x_end * 40.0) as usize;
    for i in 0..=steps {
        let x = x_end * i as f64 / steps as f64;
        let q = 1.0 - 10f64.powf(-x);
        pts.push((x, h.quantile_ms(q)));
    }
    pts.push((x_end, h.max_ms()));
    pts
}

/// Renders the whole report.
pub fn render(s: &RunSummary) -> String {
    render_titled(s, &s.name, None)
}

/// Renders the whole report under `title` (page title and heading), with `description` under it.
pub fn render_titled(s: &RunSummary, title: &str, description: Option<&str>) -> String {
    let t = &s.timeline;
    let pts = |f: &dyn Fn(&crate::metrics::collector::Point) -> f64| {
        t.iter()
            .map(|p| (p.second as f64, f(p)))
            .collect::<Vec<_>>()
    };
    let events: Vec<(u64, String)> = s
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| s.event_seconds.get(i).map(|sec| (*sec, e.clone())))
        .collect();
    let time = || XAxis::Time(&events);
    let mut body = String::new();
    let verdict = if s.passed { "PASSED" } else { "FAILED" };
    let _ = write!(
        body,
        "<h1>{} <span class=\"{}\">{verdict}</span></h1>\n<p id=\"headline\">{:.1} s · {} requests · {:.1} req/s · {} errors ({:.2}%) · p95 {:.2} ms · p99 {:.2} ms{}</p>\n",
        escape(title),
        verdict.to_lowercase(),
        s.duration_s,
        s.overall.count,
        s.overall.rps,
        s.overall.errors,
        s.overall.error_rate,
        s.overall.p95,
        s.overall.p99,
        s.phase.map(|p| format!(" · phase {p}")).unwrap_or_default()
    );
    if let Some(d) = description {
        let _ = writeln!(body, "<p class=\"note\">{}</p>", escape(d));
    }
    body.push_str(&chart(
        "latency",
        "Latency percentiles over time",
        "ms",
        time(),
        &[
            Series::new("p50", "#2a9d8f", pts(&|p| p.p50_ms)),
            Series::new("p90", "#457b9d", pts(&|p| p.p90_ms)),
            Series::new("p95", "#e9c46a", pts(&|p| p.p95_ms)),
            Series::new("p99", "#e76f51", pts(&|p| p.p99_ms)),
        ],
    ));

    // The percentile spectrum, from the merged HDR histogram the summary carries.
    let h = &s.overall.histogram;
    body.push_str(&chart(
        "spectrum",
        "Latency by percentile (HDR spectrum, log scale)",
        "ms",
        XAxis::Percentile,
        &[Series::new("latency", "#264653", spectrum_points(h))],
    ));
    body.push_str("<table id=\"spectrum-table\"><tr>");
    for (_, name) in SPECTRUM_TABLE {
        let _ = write!(body, "<th>{name}</th>");
    }
    body.push_str("</tr><tr>");
    for (q, name) in SPECTRUM_TABLE {
        let v = if q >= 1.0 {
            h.max_ms()
        } else {
            h.quantile_ms(q)
        };
        let _ = write!(body, "<td data-p=\"{name}\">{v:.2}</td>");
    }
    body.push_str("</tr></table>\n<p class=\"note\">Latencies in ms from the run's merged HDR histogram; the x axis is log10(1/(1−p)).</p>\n");

    // Throughput, one line per worker beside the merged one.
    let workers: Vec<&super::WorkerSummary> =
        s.workers.iter().filter(|w| !w.points.is_empty()).collect();
    let mut throughput = vec![Series::new(
        "all (merged)",
        "#264653",
        pts(&|p| p.requests as f64),
    )];
    throughput.extend(worker_lines(&workers, |p| p.requests as f64));
    body.push_str(&chart(
        "throughput",
        "Throughput",
        "req/s",
        time(),
        &throughput,
    ));
    if !workers.is_empty() {
        let mut p95 = vec![Series::new("all (merged)", "#e9c46a", pts(&|p| p.p95_ms))];
        p95.extend(worker_lines(&workers, |p| p.p95_ms));
        body.push_str(&chart(
            "worker-p95",
            "p95 latency per worker",
            "ms",
            time(),
            &p95,
        ));
    }
    body.push_str(&chart(
        "vus",
        "Active VUs and dropped arrivals",
        "VUs · arrivals/s",
        time(),
        &[
            Series::new("active VUs", "#2a9d8f", pts(&|p| p.active_vus as f64)),
            Series::new("dropped arrivals/s", "#d62828", pts(&|p| p.dropped as f64)),
        ],
    ));
    // Arrival rate: the arrivals made each second (iterations started; in the open model, arrivals
    // that started), one line per worker beside the merged one, and the open model's target (the
    // arrivals its schedule made due) where there is one. A timeline without arrivals (a summary
    // of an older version, the TypeScript tool's results) has no such chart rather than a flat one.
    let targeted = t.iter().any(|p| p.target_arrivals.is_some());
    if targeted || t.iter().any(|p| p.arrivals > 0) {
        let mut arrivals = vec![Series::new(
            "all (merged)",
            "#264653",
            pts(&|p| p.arrivals as f64),
        )];
        if targeted {
            arrivals.push(Series::new(
                "target",
                "#e76f51",
                pts(&|p| p.target_arrivals.unwrap_or(0) as f64),
            ));
        }
        arrivals.extend(worker_lines(&workers, |p| p.arrivals as f64));
        body.push_str(&chart(
            "arrivals",
            "Arrival rate",
            "arrivals/s",
            time(),
            &arrivals,
        ));
    }
    // Status codes and errors over time: one line per code seen, and the errors.
    let codes: std::collections::BTreeSet<u16> =
        t.iter().flat_map(|p| p.status.keys().copied()).collect();
    let mut status = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let color = match code {
            200..=299 => ["#2a9d8f", "#52b788", "#95d5b2"][i % 3],
            300..=399 => "#457b9d",
            400..=499 => "#f4a261",
            _ => "#9d0208",
        };
        status.push(Series::new(
            code.to_string(),
            color,
            pts(&|p| p.status.get(code).copied().unwrap_or(0) as f64),
        ));
    }
    let mut errors = Series::new("errors/s", "#d62828", pts(&|p| p.errors as f64));
    errors.dashed = true;
    status.push(errors);
    body.push_str(&chart(
        "status",
        "Status codes and errors over time",
        "responses/s",
        time(),
        &status,
    ));
    body.push_str("<h2>Steps</h2>\n<table><tr><th>step</th><th>count</th><th>errors</th><th>error rate</th><th>req/s</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th><th>checks</th></tr>\n");
    for step in &s.steps {
        body.push_str(&metric_row(&step.name, step));
    }
    body.push_str(&metric_row("overall", &s.overall));
    body.push_str("</table>\n<p class=\"note\">Latencies in ms, from HDR histograms merged exactly across workers.</p>\n");
    if !s.overall.status_codes.is_empty() || !s.overall.errors_by_kind.is_empty() {
        body.push_str("<h2>Responses and errors</h2>\n<table id=\"codes\"><tr><th>status or error</th><th>count</th></tr>\n");
        for (code, n) in &s.overall.status_codes {
            let _ = writeln!(body, "<tr><td>{code}</td><td>{n}</td></tr>");
        }
        for (kind, n) in &s.overall.errors_by_kind {
            let _ = writeln!(body, "<tr><td>{}</td><td>{n}</td></tr>", escape(kind));
        }
        body.push_str("</table>\n");
    }
    if !s.thresholds.is_empty() {
        body.push_str("<h2>Thresholds</h2>\n<table><tr><th>threshold</th><th>step</th><th>actual</th><th>result</th></tr>\n");
        for th in &s.thresholds {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&th.threshold),
                escape(th.step.as_deref().unwrap_or("overall")),
                th.actual
                    .map(|a| format!("{a:.2}"))
                    .unwrap_or_else(|| "n/a".into()),
                if th.passed { "passed" } else { "failed" },
                if th.passed {
                    "✓ passed"
                } else {
                    "✗ failed"
                }
            );
        }
        body.push_str("</table>\n");
    }
    if !s.workers.is_empty() {
        body.push_str("<h2>Workers and plan</h2>\n<table><tr><th>worker</th><th>region</th><th>capacity</th><th>planned</th><th>state</th><th>requests</th><th>errors</th><th>p50</th><th>p95</th><th>p99</th><th>clock offset</th><th>error</th></tr>\n");
        for w in &s.workers {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
                escape(&w.address), escape(&w.region), w.capacity, w.planned, w.state, w.count, w.errors, w.p50, w.p95, w.p99,
                w.clock_offset_ms.map(|o| format!("{o:.1} ms")).unwrap_or_default(),
                escape(w.error.as_deref().unwrap_or(""))
            );
        }
        body.push_str("</table>\n");
        worker_monitor_table(&mut body, s);
        if let Some(skew) = s.start_skew_ms {
            let _ = writeln!(body, "<p>Synchronized start skew (max − min of the workers' actual starts): {skew:.1} ms</p>");
        }
    }
    if !s.alerts.is_empty() {
        body.push_str("<h2>Alerts</h2>\n<table id=\"alerts\"><tr><th>rule</th><th>worker</th><th>message</th><th>delivered to</th></tr>\n");
        for a in &s.alerts {
            let _ = writeln!(
                body,
                "<tr data-rule=\"{}\" data-worker=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&a.rule),
                escape(a.worker.as_deref().unwrap_or("")),
                escape(&a.rule),
                escape(a.worker.as_deref().unwrap_or("")),
                escape(&a.message),
                a.delivered.len()
            );
        }
        body.push_str("</table>\n");
    }
    if !s.events.is_empty() {
        body.push_str("<h2>Events</h2>\n<ol id=\"events\">\n");
        for (i, e) in s.events.iter().enumerate() {
            match s.event_seconds.get(i) {
                Some(sec) => {
                    let _ = writeln!(
                        body,
                        "<li data-second=\"{sec}\">at {sec}s: {}</li>",
                        escape(e)
                    );
                }
                None => {
                    let _ = writeln!(body, "<li>{}</li>", escape(e));
                }
            }
        }
        body.push_str(
            "</ol>\n<p class=\"note\">Numbered as on the time axes of the charts above.</p>\n",
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{CSS}</style></head>\n<body>\n{body}<script>{SCRIPT}</script>\n</body></html>\n",
        escape(title)
    )
}

/// The controller's measurements of each worker (`workers[].monitor`): its control calls' round
/// trips and failures, its process and host CPU (last and peak; flagged at the saturation
/// threshold) and memory, and its planned vs actual share. Each cell carries its figure in a
/// `data-` attribute for automated checks.
fn worker_monitor_table(body: &mut String, s: &RunSummary) {
    let measured = |w: &&super::WorkerSummary| w.monitor.calls > 0 || w.monitor.samples > 0;
    if !s.workers.iter().any(|w| measured(&w)) {
        return;
    }
    body.push_str("<h3>Workers as the controller measured them</h3>\n<table id=\"worker-monitor\"><tr><th>worker</th><th>control calls</th><th>failed</th><th>round trip mean</th><th>max</th><th>process CPU (peak)</th><th>host CPU (peak)</th><th>process memory</th><th>saturated samples</th><th>planned share</th><th>actual share</th></tr>\n");
    let pct = |v: Option<f64>| v.map(|x| format!("{x:.1} %")).unwrap_or_else(|| "-".into());
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / 1048576.0);
    let limit = crate::metrics::resources::SATURATED_CPU_PCT;
    for w in s.workers.iter().filter(measured) {
        let m = &w.monitor;
        let r = m.resources.unwrap_or_default();
        let cpu = |last: f64, peak: f64| {
            let class = if peak >= limit {
                " class=\"failed\""
            } else {
                ""
            };
            format!("<td{class} data-peak=\"{peak:.1}\">{last:.1} % ({peak:.1} %)</td>")
        };
        let _ = writeln!(
            body,
            "<tr data-worker=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td data-rtt-mean=\"{:.1}\">{:.1} ms</td><td>{:.1} ms</td>{}{}<td>{}</td><td>{} of {}</td><td>{}</td><td data-actual-share=\"{}\">{}</td></tr>",
            escape(&w.address),
            escape(&w.address),
            m.calls,
            m.failed_calls,
            m.rtt_mean_ms,
            m.rtt_mean_ms,
            m.rtt_max_ms,
            cpu(r.process_cpu_pct, m.peak_process_cpu_pct),
            cpu(r.host_cpu_pct, m.peak_host_cpu_pct),
            mib(r.process_memory_bytes),
            m.saturated_samples,
            m.samples,
            pct(m.planned_share_pct),
            m.actual_share_pct.map(|x| format!("{x:.1}")).unwrap_or_default(),
            pct(m.actual_share_pct),
        );
    }
    body.push_str("</table>\n");
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:820px;color:#222}\
table{border-collapse:collapse;font-size:13px;margin:.5rem 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}\
td:first-child,th:first-child{text-align:left}.passed{color:#2a7a2a}.failed{color:#b00020}svg.chart{width:100%;height:auto}\
.axis,.legend{font-size:11px}.note{color:#666;font-size:12px}";

/// Counts charts that drew at least one line and reports it in the title (for automated checks).
const SCRIPT: &str = "var n=document.querySelectorAll('svg.chart').length;\
var drawn=Array.from(document.querySelectorAll('svg.chart')).filter(function(s){return s.querySelector('polyline.series')}).length;\
document.title=document.title+' | charts '+drawn+'/'+n;";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(7.3, 5.0), 2.0);
        assert_eq!(nice_step(0.9, 5.0), 0.2);
        assert_eq!(nice_step(430.0, 5.0), 100.0);
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(0.0), "0%");
    }
}
