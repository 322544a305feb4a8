//! `perfornium validate --explain`: how each section of a test was understood, in words, with the
//! units and the defaults that were applied.

use super::{Load, Step, TestFile, Threshold};
use std::fmt::Write;
use std::time::Duration;

fn d(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 && (ms / 1000.0).fract() == 0.0 {
        format!("{}s", ms / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

fn load(l: &Load) -> String {
    match l {
        Load::Basic {
            virtual_users,
            ramp_up,
            duration,
            iterations,
        } => {
            let how = match (duration, iterations) {
                (Some(t), Some(n)) => format!("duration {}, at most {n} iterations per VU", d(*t)),
                (Some(t), None) => format!("duration {}", d(*t)),
                (None, Some(n)) => format!("{n} iterations per VU"),
                (None, None) => "no duration or iterations: each VU runs its scenario once".into(),
            };
            format!("basic, {virtual_users} VUs, ramp_up {}, {how}", d(*ramp_up))
        }
        Load::Stepping {
            start_users,
            step_users,
            step_duration,
            max_users,
            duration,
        } => format!(
            "stepping, {start_users} VUs at once, +{step_users} every {} up to {max_users}, duration {}",
            d(*step_duration),
            d(*duration)
        ),
        Load::Levels { levels } => {
            let mut s = "levels, one after another:".to_string();
            for l in levels {
                let _ = write!(
                    s,
                    " [{} VUs, ramp {} within {}]",
                    l.users,
                    d(l.ramp_up),
                    d(l.duration)
                );
            }
            s
        }
        Load::Arrivals {
            rate,
            duration,
            max_virtual_users,
            shape,
            ..
        } => {
            let mut s = if shape.profile.is_empty() {
                format!("arrivals, {rate}/s")
            } else {
                let steps: Vec<String> = shape
                    .profile
                    .iter()
                    .map(|(f, t)| format!("{}/s for {}", f * rate, d(*t)))
                    .collect();
                format!("arrivals, rate profile {}", steps.join(", then "))
            };
            let _ = write!(s, ", duration {}", d(*duration));
            if !shape.ramp_up.is_zero() {
                let _ = write!(s, ", rate ramps up from 0 over {}", d(shape.ramp_up));
            }
            match shape.vu_duration {
                Some(v) => {
                    let _ = write!(s, ", each arrival is a VU looping for {}", d(v));
                }
                None => s.push_str(", each arrival runs one iteration"),
            }
            match max_virtual_users {
                Some(m) => {
                    let _ = write!(s, ", at most {m} at once");
                }
                None => s.push_str(
                    ", max_virtual_users not set (default: rate × 10, or rate × (1.5 × vu_duration + 1 s), at least 100)",
                ),
            }
            s
        }
        Load::Phases(ps) => {
            let mut s = format!("{} phases, one after another:", ps.len());
            for (i, p) in ps.iter().enumerate() {
                let _ = write!(
                    s,
                    "\n  phase {} ({}): {}",
                    i + 1,
                    p.name.as_deref().unwrap_or("unnamed"),
                    load(&p.load)
                );
            }
            s
        }
    }
}

/// The test as understood, one line (or block) per section.
pub fn explain(test: &TestFile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "load: {} (durations: a bare number would be ms)",
        load(&test.load)
    );
    let g = &test.global;
    let _ = writeln!(
        out,
        "global: base_url {}, request timeout {}ms{}, think time {}",
        g.base_url.as_deref().unwrap_or("(none: give --base-url)"),
        g.timeout,
        if g.timeout == 30_000 {
            " (default)"
        } else {
            ""
        },
        g.think_time
            .map(|t| format!("{}-{} (a bare number is s)", d(t.min), d(t.max)))
            .unwrap_or_else(|| "none".into())
    );
    if let Some(dbg) = &g.debug {
        let _ = writeln!(
            out,
            "debug: log level {}, captures {} requests into summary.json",
            dbg.level().unwrap_or("unchanged"),
            if dbg.capture_only_failures == Some(false) {
                "all (first 100)"
            } else {
                "failing"
            }
        );
    }
    if let Some(f) = &g.faker {
        let _ = writeln!(
            out,
            "faker: locale {}, seed {}",
            f.locale.as_deref().unwrap_or("en"),
            f.seed.map_or("none (random)".into(), |s| s.to_string())
        );
    }
    for s in &test.scenarios {
        let looping = match s.looping.duration {
            Some(t) => format!("steps repeat for {}", d(t)),
            None => format!("steps {} time(s) per iteration", s.looping.count.max(1)),
        };
        let _ = writeln!(
            out,
            "scenario `{}`: weight {}, {looping}, {} steps{}",
            s.name,
            s.weight,
            s.steps.len(),
            s.csv_data
                .as_ref()
                .and_then(|c| c.policy(s.csv_mode.as_deref()).ok().map(|p| (c, p)))
                .map(|(c, p)| format!(
                    ", rows from {} ({:?} scope, {} order, on exhaustion {:?}, {})",
                    c.file,
                    p.scope,
                    if p.random { "random" } else { "file" },
                    p.on_exhausted,
                    if p.per_vu {
                        "a row per VU"
                    } else {
                        "a row per iteration"
                    }
                ))
                .unwrap_or_default()
        );
        for step in &s.steps {
            let line = match step {
                Step::Http(h) => {
                    let mut l = format!("{} {}", h.method, h.target);
                    if let Some(t) = h.options.timeout {
                        let _ = write!(l, ", timeout {}", d(t));
                    }
                    if let Some(r) = &h.options.retry {
                        let _ = write!(l, ", up to {} attempts", r.max_attempts);
                    }
                    if !h.options.continue_on_error {
                        l.push_str(", a failure ends the iteration");
                    }
                    if !h.options.thresholds.is_empty() {
                        let _ = write!(l, ", {} per-result thresholds", h.options.thresholds.len());
                    }
                    l
                }
                Step::Wait { duration, .. } => {
                    format!(
                        "wait {}-{} (a bare number is ms)",
                        d(duration.min),
                        d(duration.max)
                    )
                }
                Step::Rendezvous(r) => format!(
                    "rendezvous `{}` for {} VUs, timeout {}",
                    r.point,
                    r.count,
                    d(r.timeout)
                ),
            };
            let _ = writeln!(out, "  step `{}`: {line}", step.name());
        }
    }
    if let Some(dist) = &test.distributed {
        out.push_str(&dist.explain());
        if let Some(dc) = &dist.data_consistency {
            out.push_str(&dc.explain());
        }
    }
    for t in &test.thresholds {
        let _ = match t {
            Threshold::Short(s) => writeln!(out, "threshold: {s}"),
            Threshold::Long { metric, step } => writeln!(
                out,
                "threshold: {metric}{}",
                step.as_deref()
                    .map(|s| format!(" on step `{s}`"))
                    .unwrap_or_default()
            ),
        };
    }
    super::outputs::explain(test, &mut out);
    out
}
