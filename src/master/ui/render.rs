//! The dashboard's HTML fragments, rendered on the server from the same records the JSON API
//! serves. Every element the script or a test reads has an `id` or a `data-` attribute, so the
//! page's behaviour does not hang on its wording.

use super::{RunEntry, RunPage};
use crate::api::pool::PoolWorker;
use crate::report::junit::escape;
use crate::report::{RunSummary, StepSummary};
use std::fmt::Write;

fn time_of(ms: u64) -> String {
    if ms == 0 {
        return "—".into();
    }
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The runs, newest first, each with a box to pick it for the comparison.
pub fn runs(served_by: &str, runs: &[RunEntry]) -> String {
    let mut h = format!(
        r#"<section id="runs"><h2>Runs</h2><p class="muted">Served by {}. Pick two runs and press Compare (the older is A, the baseline).</p>"#,
        escape(served_by)
    );
    if runs.is_empty() {
        h.push_str(r#"<p id="no-runs">No runs yet.</p></section>"#);
        return h;
    }
    h.push_str(
        r#"<button id="compare" type="button">Compare</button><table class="grid"><thead><tr><th></th><th>Run</th><th>Test</th><th>Phase</th><th>Created</th><th>Duration</th><th>Requests</th><th>Errors</th></tr></thead><tbody>"#,
    );
    for r in runs {
        let id = escape(&r.id);
        let duration = r
            .finished_ms
            .map(|f| format!("{:.1} s", f.saturating_sub(r.created_ms) as f64 / 1000.0))
            .unwrap_or_else(|| "running".into());
        let _ = write!(
            h,
            r##"<tr class="run" data-id="{id}" data-phase="{phase}"><td><input type="checkbox" class="pick" value="{id}"></td><td><a class="open" href="#/runs/{href}">{id}</a></td><td>{name}</td><td class="phase {cls}">{phase}</td><td>{created}</td><td>{duration}</td><td class="num">{req}</td><td class="num">{err}</td></tr>"##,
            href = escape(&url_part(&r.id)),
            name = escape(&r.name),
            phase = escape(&r.phase),
            cls = if r.is_final { "final" } else { "live" },
            created = time_of(r.created_ms),
            req = r.requests,
            err = r.errors,
        );
    }
    h.push_str("</tbody></table></section>");
    h
}

/// `id` as one URL path segment.
fn url_part(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// One run: phase, the live figures (filled from the stream by the script), per-worker health,
/// the registered pool, and the report's charts.
pub fn run(page: &RunPage, pool: &[PoolWorker], has_pool: bool) -> String {
    let e = &page.entry;
    let s = &page.summary;
    let now = crate::time::now_ms();
    let mut h = format!(
        r#"<section id="run" data-id="{id}" data-phase="{phase}" data-final="{fin}" data-streamed="{streamed}"><h2>{name} <small>{id}</small></h2>"#,
        id = escape(&e.id),
        phase = escape(&e.phase),
        fin = e.is_final,
        streamed = page.streamed,
        name = escape(&e.name),
    );
    let _ = write!(
        h,
        r#"<p>Phase <b id="phase" class="phase">{}</b> · created {} · {} requests, {} errors (merged so far) · <span id="verdict">{}</span></p>"#,
        escape(&e.phase),
        time_of(e.created_ms),
        s.overall.count,
        s.overall.errors,
        if e.is_final {
            if s.passed {
                "thresholds passed"
            } else {
                "thresholds failed"
            }
        } else {
            "running"
        }
    );
    if page.streamed {
        let _ = write!(
            h,
            r#"<div id="live"><h3>Live feed</h3><p class="muted" id="feed-state">Following the run's live feed (GET /runs/{{id}}/stream)…</p><table class="grid"><tr><th>Intervals</th><th>Seconds</th><th>Requests</th><th>Errors</th><th>Throughput</th><th>p50</th><th>p95</th><th>p99</th></tr><tr><td id="feed-seq">0</td><td id="feed-seconds">0</td><td id="feed-requests" class="num">0</td><td id="feed-errors" class="num">0</td><td id="feed-rps">—</td><td id="feed-p50">—</td><td id="feed-p95">—</td><td id="feed-p99">—</td></tr></table></div>"#
        );
    } else if !e.is_final {
        h.push_str(r#"<p class="muted" id="polling">This page reads the run's record every second: the test has no Server-Sent Events feed (`distributed.results.aggregation.streaming.enabled: true` gives it one).</p>"#);
    }
    if let Some(rec) = &page.record {
        if !s.workers.is_empty() {
            h.push_str(r#"<h3>Workers</h3><table class="grid" id="workers"><thead><tr><th>Worker</th><th>Region</th><th>State</th><th>Planned</th><th>Active VUs</th><th>Requests</th><th>Errors</th><th>Throughput</th><th>p95</th><th>Last answer</th><th>Error</th></tr></thead><tbody>"#);
            for w in &s.workers {
                let seen = if w.last_seen_ms == 0 {
                    "never".to_string()
                } else {
                    format!(
                        "{:.1} s ago",
                        now.saturating_sub(w.last_seen_ms) as f64 / 1000.0
                    )
                };
                let _ = write!(
                    h,
                    r#"<tr class="worker" data-state="{state}"><td>{addr}</td><td>{region}</td><td class="state {state}">{state}</td><td class="num">{planned}</td><td class="num">{vus}</td><td class="num">{count}</td><td class="num">{errors}</td><td class="num">{rps:.1}/s</td><td class="num">{p95:.1} ms</td><td>{seen}</td><td>{error}</td></tr>"#,
                    state = w.state.name(),
                    addr = escape(&w.address),
                    region = escape(&w.region),
                    planned = w.planned,
                    vus = w.active_vus,
                    count = w.count,
                    errors = w.errors,
                    rps = w.rps,
                    p95 = w.p95,
                    error = escape(w.error.as_deref().unwrap_or("")),
                );
            }
            h.push_str("</tbody></table>");
        }
        if !rec.events.is_empty() {
            h.push_str(r#"<h3>Events</h3><ol id="events">"#);
            for ev in &rec.events {
                let _ = write!(h, "<li>{}</li>", escape(ev));
            }
            h.push_str("</ol>");
        }
    }
    if has_pool {
        h.push_str(&pool_table(pool, now));
    }
    let _ = write!(
        h,
        r#"<h3>Charts</h3><p class="muted">The HTML report of the run as recorded now{}.</p><iframe id="report" title="report" data-src="/ui/runs/{}/report"></iframe></section>"#,
        if e.is_final {
            ""
        } else {
            ", redrawn as the run goes"
        },
        escape(&url_part(&e.id))
    );
    h
}

fn pool_table(pool: &[PoolWorker], now: u64) -> String {
    let mut h = String::from(r#"<h3>Registered pool</h3>"#);
    if pool.is_empty() {
        h.push_str(r#"<p id="pool-empty" class="muted">No worker registered (workers join with `perfornium worker --master`).</p>"#);
        return h;
    }
    h.push_str(r#"<table class="grid" id="pool"><thead><tr><th>Worker</th><th>Address</th><th>Region</th><th>Lease</th><th>Renewed</th></tr></thead><tbody>"#);
    for w in pool {
        let r = &w.registration;
        let health = match w.health {
            crate::api::pool::Lease::Up => "up",
            crate::api::pool::Lease::Down => "down",
        };
        let _ = write!(
            h,
            r#"<tr class="pooled" data-health="{health}"><td>{}</td><td>{}:{}</td><td>{}</td><td class="state {health}">{health}</td><td>{:.1} s ago</td></tr>"#,
            escape(&r.id),
            escape(&r.host),
            r.port,
            escape(&r.region),
            now.saturating_sub(w.renewed_ms) as f64 / 1000.0
        );
    }
    h.push_str("</tbody></table>");
    h
}

/// Whether a higher value of a figure is better, and how it is shown.
#[derive(Clone, Copy)]
enum Better {
    Lower,
    Higher,
}

/// The figures compared for each step: name, unit, which way is better, the value.
type Figure = (&'static str, &'static str, Better, fn(&StepSummary) -> f64);

const FIGURES: [Figure; 8] = [
    ("p50", "ms", Better::Lower, |s| s.p50),
    ("p90", "ms", Better::Lower, |s| s.p90),
    ("p95", "ms", Better::Lower, |s| s.p95),
    ("p99", "ms", Better::Lower, |s| s.p99),
    ("throughput", "req/s", Better::Higher, |s| s.rps),
    ("error rate", "%", Better::Lower, |s| s.error_rate),
    ("requests", "", Better::Higher, |s| s.count as f64),
    ("errors", "", Better::Lower, |s| s.errors as f64),
];

/// `worse`, `better` or `same`: B against A with a margin of `pct` percent of A. An error rate is
/// compared in percentage points (a run with no errors against one with a few is not "infinitely"
/// worse); every other figure relative to A.
fn verdict(name: &str, better: Better, a: f64, b: f64, pct: f64) -> &'static str {
    let diff = b - a;
    let margin = if name == "error rate" {
        pct / 10.0
    } else {
        a.abs() * pct / 100.0
    };
    let up = diff > margin;
    let down = -diff > margin;
    match (better, up, down) {
        (Better::Lower, true, _) | (Better::Higher, _, true) => "worse",
        (Better::Lower, _, true) | (Better::Higher, true, _) => "better",
        _ => "same",
    }
}

fn number(v: f64, unit: &str) -> String {
    let digits = if unit.is_empty() {
        0
    } else if v.abs() >= 100.0 {
        1
    } else {
        2
    };
    format!(
        "{v:.digits$}{}{unit}",
        if unit.is_empty() { "" } else { " " }
    )
}

/// Two runs side by side: every step of either (overall first) and each figure of [`FIGURES`],
/// with B's difference from A and whether it is worse by more than `pct`.
pub fn compare(a: &RunPage, b: &RunPage, pct: f64) -> String {
    let mut h = format!(
        r##"<section id="comparison" data-a="{ida}" data-b="{idb}" data-worse-pct="{pct}"><h2>Comparison</h2><p>A: <a href="#/runs/{ua}">{na} ({ida})</a>, {pa} · B: <a href="#/runs/{ub}">{nb} ({idb})</a>, {pb}</p><p id="threshold">B is marked <span class="worse">worse</span> where its latency, error count or request count is off A's by more than {pct} % of A's value in the bad direction (higher latency or errors, lower throughput or requests), or its error rate is higher by more than {pp} percentage points; <span class="better">better</span> the same way in the good direction.</p>"##,
        ida = escape(&a.entry.id),
        idb = escape(&b.entry.id),
        ua = escape(&url_part(&a.entry.id)),
        ub = escape(&url_part(&b.entry.id)),
        na = escape(&a.entry.name),
        nb = escape(&b.entry.name),
        pa = escape(&a.entry.phase),
        pb = escape(&b.entry.phase),
        pp = pct / 10.0,
    );
    let mut names: Vec<&str> = vec![];
    for s in a.summary.steps.iter().chain(&b.summary.steps) {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    let step = |s: &'_ RunSummary, n: &str| s.steps.iter().find(|x| x.name == n).cloned();
    let rows: Vec<(String, Option<StepSummary>, Option<StepSummary>)> = std::iter::once((
        "all steps".to_string(),
        Some(a.summary.overall.clone()),
        Some(b.summary.overall.clone()),
    ))
    .chain(
        names
            .iter()
            .map(|n| (n.to_string(), step(&a.summary, n), step(&b.summary, n))),
    )
    .collect();
    h.push_str(r#"<table class="grid" id="compare-table"><thead><tr><th>Step</th><th>Figure</th><th>A</th><th>B</th><th>B − A</th><th></th></tr></thead><tbody>"#);
    let mut worse = 0;
    for (name, sa, sb) in &rows {
        for (fig, unit, better, get) in FIGURES {
            let (va, vb) = (sa.as_ref().map(get), sb.as_ref().map(get));
            let (diff, verdict) = match (va, vb) {
                (Some(x), Some(y)) => {
                    let rel = if x != 0.0 {
                        format!(" ({:+.1} %)", (y - x) * 100.0 / x)
                    } else {
                        String::new()
                    };
                    (
                        format!("{}{rel}", number(y - x, unit)),
                        verdict(fig, better, x, y, pct),
                    )
                }
                _ => ("—".into(), "missing"),
            };
            if verdict == "worse" {
                worse += 1;
            }
            let _ = write!(
                h,
                r#"<tr class="cmp {verdict}" data-step="{step}" data-figure="{fig}" data-verdict="{verdict}"><td>{step}</td><td>{fig}</td><td class="num">{a}</td><td class="num">{b}</td><td class="num">{diff}</td><td>{verdict}</td></tr>"#,
                step = escape(name),
                a = va.map(|v| number(v, unit)).unwrap_or_else(|| "—".into()),
                b = vb.map(|v| number(v, unit)).unwrap_or_else(|| "—".into()),
            );
        }
    }
    let _ = write!(
        h,
        r#"</tbody></table><p id="worse-count" data-worse="{worse}">{worse} figure(s) of B worse than A.</p></section>"#
    );
    h
}

/// The launch form, or why this page cannot launch.
pub fn launch_form(refusal: Option<&str>, tests: Option<&[String]>, pool: &[PoolWorker]) -> String {
    let mut h = String::from(r#"<section id="launch-page"><h2>Launch a test</h2>"#);
    if let Some(why) = refusal {
        let _ = write!(h, r#"<p id="launch-refused">{}</p></section>"#, escape(why));
        return h;
    }
    h.push_str(r#"<form id="launch-form" onsubmit="return false"><fieldset><legend>Test</legend>"#);
    match tests {
        Some(names) if !names.is_empty() => {
            h.push_str(r#"<label>From the master's tests directory <select id="test-file"><option value="">(none: upload or paste below)</option>"#);
            for n in names {
                let _ = write!(h, r#"<option value="{0}">{0}</option>"#, escape(n));
            }
            h.push_str("</select></label><br>");
        }
        Some(_) => h.push_str(r#"<p class="muted">The tests directory has no .yaml file.</p>"#),
        None => h.push_str(
            r#"<p class="muted">No tests directory (start the master with --tests-dir DIR to pick from one).</p>"#,
        ),
    }
    h.push_str(r#"<label>Upload <input type="file" id="test-upload" accept=".yaml,.yml"></label><br><label>or paste YAML<br><textarea id="test-yaml" rows="8" cols="80"></textarea></label></fieldset>"#);
    let live = pool
        .iter()
        .filter(|w| w.health == crate::api::pool::Lease::Up)
        .count();
    let _ = write!(
        h,
        r#"<fieldset><legend>Workers</legend><label><input type="radio" name="workers" id="workers-pool" value="pool" checked> the registered pool ({live} with a live lease)</label><br><label><input type="radio" name="workers" id="workers-listed" value="list"> these workers: a <code>host:port,...</code> list or a workers file (JSON)</label><br><textarea id="workers-text" rows="3" cols="80" placeholder="127.0.0.1:8081,127.0.0.1:8082"></textarea><br><label>Workers file <input type="file" id="workers-file" accept=".json,.txt"></label></fieldset>"#
    );
    h.push_str(r#"<fieldset><legend>Plan</legend><label>Strategy <select id="strategy"><option value="">the test's own</option>"#);
    for s in crate::config::Strategy::ALL {
        let name = serde_json::to_value(s)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = write!(h, r#"<option value="{0}">{0}</option>"#, escape(&name));
    }
    h.push_str(r#"</select></label> <label><input type="checkbox" id="sync-start"> synchronized start</label></fieldset><button id="launch" type="button">Launch</button> <span class="muted">Sent with your token: it needs the permission to execute tests.</span></form><p id="launch-result"></p></section>"#);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_better_direction_and_the_margin() {
        assert_eq!(verdict("p95", Better::Lower, 100.0, 111.0, 10.0), "worse");
        assert_eq!(verdict("p95", Better::Lower, 100.0, 109.0, 10.0), "same");
        assert_eq!(verdict("p95", Better::Lower, 100.0, 80.0, 10.0), "better");
        assert_eq!(
            verdict("throughput", Better::Higher, 100.0, 80.0, 10.0),
            "worse"
        );
        assert_eq!(verdict("error rate", Better::Lower, 0.0, 0.5, 10.0), "same");
        assert_eq!(
            verdict("error rate", Better::Lower, 0.0, 1.5, 10.0),
            "worse"
        );
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(time_of(0), "—");
        assert_eq!(time_of(86_400_000 + 3_661_000), "1970-01-02 01:01:01 UTC");
        assert_eq!(time_of(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(url_part("a/b c"), "a%2Fb%20c");
        assert_eq!(url_part("r-1_x.y"), "r-1_x.y");
    }
}
