//! The end-of-run text summary, in the spirit of k6's: one block per step and overall, then the
//! thresholds with a check mark or a cross.

use super::{RunSummary, StepSummary};
use std::fmt::Write;

/// Renders the summary as text for stdout.
pub fn render(s: &RunSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n  {}  ({:.1}s)\n", s.name, s.duration_s);
    for step in &s.steps {
        block(&mut out, step);
    }
    block(&mut out, &s.overall);
    if !s.workers.is_empty() {
        let _ = writeln!(out, "  workers");
        for w in &s.workers {
            let _ = writeln!(
                out,
                "    {:<21} {:<10} planned {:>8.1}  {:<9} requests {:>8}  errors {:>6}  p50 {:>7.2}  p95 {:>7.2}  p99 {:>7.2}{}",
                w.address,
                w.region,
                w.planned,
                w.state,
                w.count,
                w.errors,
                w.p50,
                w.p95,
                w.p99,
                w.error.as_deref().map(|e| format!("  ({e})")).unwrap_or_default()
            );
        }
        if let Some(skew) = s.start_skew_ms {
            let _ = writeln!(out, "    start skew: {skew:.1} ms");
        }
        let _ = writeln!(out);
    }
    for e in &s.events {
        let _ = writeln!(out, "  ! {e}");
    }
    if let Some(p) = &s.phase {
        let _ = writeln!(out, "  run phase: {p}");
    }
    if s.dropped_iterations > 0 {
        let _ = writeln!(
            out,
            "  dropped_iterations: {} (arrivals found every VU busy)\n",
            s.dropped_iterations
        );
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(out, "  thresholds");
        for t in &s.thresholds {
            let mark = if t.passed { "✓" } else { "✗" };
            let scope = t
                .step
                .as_deref()
                .map(|n| format!(" [{n}]"))
                .unwrap_or_default();
            let actual = t
                .actual
                .map(|a| format!("{a:.2}"))
                .unwrap_or_else(|| "n/a".into());
            let _ = writeln!(out, "    {mark} {}{scope}  (actual {actual})", t.threshold);
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "  result: {}",
        match s.phase {
            Some(p) if !p.is_final() => format!("NOT FINISHED (run {p})"),
            _ if s.passed => "PASSED".to_string(),
            _ => "FAILED".to_string(),
        }
    );
    out
}

fn block(out: &mut String, s: &StepSummary) {
    let _ = writeln!(out, "  {}", s.name);
    let _ = writeln!(
        out,
        "    requests......: {}  ({:.1}/s)   errors: {} ({:.2}%)",
        s.count, s.rps, s.errors, s.error_rate
    );
    let _ = writeln!(
        out,
        "    latency (ms)..: min {:.2}  mean {:.2}  p50 {:.2}  p90 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.p99_9, s.max
    );
    let codes: Vec<String> = s
        .status_codes
        .iter()
        .map(|(c, n)| format!("{c}:{n}"))
        .collect();
    let _ = writeln!(
        out,
        "    status........: {}",
        if codes.is_empty() {
            "-".into()
        } else {
            codes.join("  ")
        }
    );
    let _ = writeln!(
        out,
        "    checks........: {} passed, {} failed",
        s.checks_passed, s.checks_failed
    );
    for (kind, n) in &s.errors_by_kind {
        let _ = writeln!(out, "    error.........: {kind} × {n}");
    }
    for (check, n) in &s.check_failures {
        let _ = writeln!(out, "    failed check..: {check} × {n}");
    }
    let _ = writeln!(out);
}
