//! Threshold expressions: `p95 < 500ms`, `error_rate < 1%`, `rps >= 100`, `mean <= 0.2s`.
//! Latencies are kept in milliseconds, rates in percent.

use serde::Serialize;

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Metric name as written: p50, p90, p95, p99, p99.9, min, mean, max, error_rate, rps, count, errors.
    pub metric: String,
    pub op: Op,
    /// Milliseconds for latencies, percent for `error_rate`, plain numbers otherwise.
    pub value: f64,
    /// The step it applies to, or the whole run.
    pub step: Option<String>,
    /// The text the user wrote, for messages.
    pub text: String,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    /// Applies the comparison `left op right`.
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => (left - right).abs() < f64::EPSILON,
        }
    }
}

const METRICS: &[&str] = &[
    "p50",
    "p90",
    "p95",
    "p99",
    "p99.9",
    "p999",
    "min",
    "mean",
    "avg",
    "max",
    "error_rate",
    "rps",
    "count",
    "errors",
];

/// Parses `"p95 < 500ms"`.
pub fn parse(text: &str, step: Option<String>) -> Result<Rule, String> {
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (at, sym, op) = ops
        .iter()
        .filter_map(|(s, o)| text.find(s).map(|i| (i, *s, *o)))
        .min_by_key(|(i, s, _)| (*i, usize::MAX - s.len()))
        .ok_or_else(|| format!("threshold `{text}` has no comparison (<, <=, >, >=, ==)"))?;
    let metric = text[..at].trim().to_lowercase();
    if !METRICS.contains(&metric.as_str()) {
        return Err(format!(
            "threshold `{text}`: unknown metric `{metric}` (known: {})",
            METRICS.join(", ")
        ));
    }
    let raw = text[at + sym.len()..].trim();
    let value = parse_value(&metric, raw).map_err(|e| format!("threshold `{text}`: {e}"))?;
    Ok(Rule {
        metric,
        op,
        value,
        step,
        text: text.trim().to_string(),
    })
}

fn parse_value(metric: &str, raw: &str) -> Result<f64, String> {
    let is_latency = metric.starts_with('p') || matches!(metric, "min" | "mean" | "avg" | "max");
    if is_latency {
        let (num, scale) = if let Some(n) = raw.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = raw.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = raw.strip_suffix('s') {
            (n, 1000.0)
        } else {
            (raw, 1.0)
        };
        return num
            .trim()
            .parse::<f64>()
            .map(|v| v * scale)
            .map_err(|_| format!("`{raw}` is not a latency"));
    }
    let num = raw.strip_suffix('%').unwrap_or(raw).trim();
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{raw}` is not a number"))?;
    // `error_rate < 0.01` and `error_rate < 1%` mean the same thing.
    if metric == "error_rate" && !raw.ends_with('%') && v < 1.0 {
        return Ok(v * 100.0);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_latency_and_rates() {
        let r = parse("p95 < 500ms", None).unwrap();
        assert_eq!((r.metric.as_str(), r.op, r.value), ("p95", Op::Lt, 500.0));
        assert_eq!(parse("p99 <= 1.5s", None).unwrap().value, 1500.0);
        assert_eq!(parse("error_rate < 1%", None).unwrap().value, 1.0);
        assert_eq!(parse("error_rate < 0.01", None).unwrap().value, 1.0);
        assert_eq!(parse("rps >= 100", None).unwrap().op, Op::Ge);
        assert!(parse("p42 < 3", None).is_err());
        assert!(parse("p95 500", None).is_err());
    }
}
