//! The HTML report: one self-contained file (inline CSS and SVG, no network fetches) with the
//! summary, latency percentiles over time, throughput and errors over time, the per-step table, the
//! per-worker table of a distributed run, threshold verdicts, and the plan and start skew. Charts are
//! drawn as SVG here, so the page needs no script to show them; a few lines of script only count the
//! drawn charts into the title, which lets a headless browser test check that they rendered.

use super::junit::escape;
use super::RunSummary;
use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 220.0;
const PAD: f64 = 44.0;

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

fn chart(title: &str, unit: &str, series: &[Series]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let x_max = xs.clone().fold(1.0, f64::max);
    let x_min = xs.fold(x_max, f64::min).min(x_max - 1.0).max(0.0);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let sx = |x: f64| PAD + (x - x_min) / (x_max - x_min) * (W - 2.0 * PAD);
    let sy = |y: f64| H - PAD + -(y / y_max) * (H - 2.0 * PAD);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = write!(
        svg,
        r##"<rect x="{PAD}" y="{PAD}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        W - 2.0 * PAD,
        H - 2.0 * PAD
    );
    let _ = write!(
        svg,
        r#"<text x="{PAD}" y="{}" class="axis">{:.1} {unit}</text>"#,
        PAD - 6.0,
        y_max
    );
    let _ = write!(
        svg,
        r#"<text x="{PAD}" y="{}" class="axis">{x_min:.0}s</text>"#,
        H - PAD + 16.0
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" class="axis" text-anchor="end">{x_max:.0}s</text>"#,
        W - PAD,
        H - PAD + 16.0
    );
    for (i, s) in series.iter().enumerate() {
        if !s.points.is_empty() {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline class="series" fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
                s.color,
                path.join(" ")
            );
        }
        let lx = PAD + 80.0 * i as f64;
        let _ = write!(
            svg,
            r#"<text x="{lx}" y="{}" fill="{}" class="legend">{}</text>"#,
            H - 8.0,
            s.color,
            escape(s.name)
        );
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

/// Renders the whole report.
pub fn render(s: &RunSummary) -> String {
    render_titled(s, &s.name, None)
}

/// Renders the whole report under `title` (page title and heading), with `description` under it.
pub fn render_titled(s: &RunSummary, title: &str, description: Option<&str>) -> String {
    let t = &s.timeline;
    let pts = |f: fn(&crate::metrics::collector::Point) -> f64| {
        t.iter()
            .map(|p| (p.second as f64, f(p)))
            .collect::<Vec<_>>()
    };
    let mut body = String::new();
    let verdict = if s.passed { "PASSED" } else { "FAILED" };
    let _ = write!(
        body,
        "<h1>{} <span class=\"{}\">{verdict}</span></h1>\n<p>{:.1} s · {} requests · {:.1} req/s · {} errors ({:.2}%) · p95 {:.2} ms · p99 {:.2} ms{}</p>\n",
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
        "Latency percentiles over time",
        "ms",
        &[
            Series {
                name: "p50",
                color: "#2a9d8f",
                points: pts(|p| p.p50_ms),
            },
            Series {
                name: "p90",
                color: "#457b9d",
                points: pts(|p| p.p90_ms),
            },
            Series {
                name: "p95",
                color: "#e9c46a",
                points: pts(|p| p.p95_ms),
            },
            Series {
                name: "p99",
                color: "#e76f51",
                points: pts(|p| p.p99_ms),
            },
        ],
    ));
    body.push_str(&chart(
        "Throughput",
        "req/s",
        &[Series {
            name: "requests/s",
            color: "#264653",
            points: pts(|p| p.requests as f64),
        }],
    ));
    body.push_str(&chart(
        "Errors",
        "errors/s",
        &[Series {
            name: "errors/s",
            color: "#d62828",
            points: pts(|p| p.errors as f64),
        }],
    ));
    body.push_str("<h2>Steps</h2>\n<table><tr><th>step</th><th>count</th><th>errors</th><th>error rate</th><th>req/s</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th><th>checks</th></tr>\n");
    for step in &s.steps {
        body.push_str(&metric_row(&step.name, step));
    }
    body.push_str(&metric_row("overall", &s.overall));
    body.push_str("</table>\n<p class=\"note\">Latencies in ms, from HDR histograms merged exactly across workers.</p>\n");
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
        if let Some(skew) = s.start_skew_ms {
            let _ = writeln!(body, "<p>Synchronized start skew (max − min of the workers' actual starts): {skew:.1} ms</p>");
        }
    }
    if !s.events.is_empty() {
        body.push_str("<h2>Events</h2>\n<ul>\n");
        for e in &s.events {
            let _ = writeln!(body, "<li>{}</li>", escape(e));
        }
        body.push_str("</ul>\n");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{CSS}</style></head>\n<body>\n{body}<script>{SCRIPT}</script>\n</body></html>\n",
        escape(title)
    )
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:820px;color:#222}\
table{border-collapse:collapse;font-size:13px;margin:.5rem 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}\
td:first-child,th:first-child{text-align:left}.passed{color:#2a7a2a}.failed{color:#b00020}svg.chart{width:100%;height:auto}\
.axis,.legend{font-size:11px}.note{color:#666;font-size:12px}";

/// Counts charts that drew at least one line and reports it in the title (for automated checks).
const SCRIPT: &str = "var n=document.querySelectorAll('svg.chart').length;\
var drawn=Array.from(document.querySelectorAll('svg.chart')).filter(function(s){return s.querySelector('polyline.series')}).length;\
document.title=document.title+' | charts '+drawn+'/'+n;";
