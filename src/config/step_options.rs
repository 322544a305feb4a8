//! The keys every HTTP step may carry besides its request: `think_time` (overrides the scenario's
//! and the global one), `timeout` (this request's, a bare number is ms), `on_error` /
//! `continueOnError` (whether a failed step ends the VU's iteration), `retry` (resend a failed
//! request) and `thresholds[]` (rules checked against each single result, with an action).

use super::duration::{NumOrText, ThinkTime};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The common keys of a step, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOptions {
    pub think_time: Option<ThinkTime>,
    pub timeout: Option<Duration>,
    /// `false` (`on_error.continue: false`, `continueOnError: false`): a failed step ends the
    /// VU's iteration. Defaults to `true`, as load tests go on.
    pub continue_on_error: bool,
    /// `on_error.log_full_response`: a failed request's response is logged (warn), body included.
    pub log_full_response: bool,
    pub retry: Option<Retry>,
    pub thresholds: Vec<StepThreshold>,
}

impl Default for StepOptions {
    fn default() -> Self {
        Self {
            think_time: None,
            timeout: None,
            continue_on_error: true,
            log_full_response: false,
            retry: None,
            thresholds: Vec::new(),
        }
    }
}

impl StepOptions {
    /// `on_error` as it would be written back (for the trip to a worker).
    pub fn on_error(&self) -> Option<OnError> {
        (!self.continue_on_error || self.log_full_response).then_some(OnError {
            continue_: Some(self.continue_on_error),
            log_full_response: Some(self.log_full_response),
        })
    }
}

/// `on_error:` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnError {
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_full_response: Option<bool>,
}

/// `retry:` as written and checked: a failed request (no response, a 4xx/5xx status or a failed
/// check) is sent again up to `max_attempts` attempts in all, waiting `delay` (a bare number is
/// ms) before the first retry, multiplied by `backoff` before each next one.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub max_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<NumOrText>,
    /// `exponential` (×2), `linear` (delay × attempt), `fixed`/`none`, or a number (the factor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<serde_norway::Value>,
}

impl Retry {
    /// Checks the numbers; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(format!(
                "retry.max_attempts is {}, expected 1 to 100 (attempts in all, the first included)",
                self.max_attempts
            ));
        }
        self.delay_before(1)?;
        Ok(())
    }

    /// The pause before attempt `attempt + 1` (1-based: after the first failed attempt, 1).
    pub fn delay_before(&self, attempt: u32) -> Result<Duration, String> {
        let base = match &self.delay {
            Some(d) => d.duration_ms().map_err(|e| format!("retry.delay: {e}"))?,
            None => Duration::ZERO,
        };
        let n = attempt.saturating_sub(1) as i32;
        let factor = match &self.backoff {
            None => 1.0,
            Some(serde_norway::Value::String(s)) => match s.as_str() {
                "exponential" => 2f64.powi(n),
                "linear" => f64::from(attempt),
                "fixed" | "none" | "constant" => 1.0,
                other => {
                    return Err(format!(
                        "retry.backoff `{other}`: expected exponential, linear, fixed or a factor"
                    ))
                }
            },
            Some(serde_norway::Value::Number(f)) => {
                let f = f.as_f64().unwrap_or(f64::NAN);
                if !(1.0..=10.0).contains(&f) {
                    return Err(format!("retry.backoff {f}: a factor from 1 to 10"));
                }
                f.powi(n)
            }
            Some(serde_norway::Value::Bool(false)) => 1.0,
            Some(serde_norway::Value::Bool(true)) => 2f64.powi(n),
            Some(_) => return Err("retry.backoff: expected a name or a number".into()),
        };
        let secs = base.as_secs_f64() * factor;
        super::duration::from_secs(secs.min(super::duration::MAX.as_secs_f64()))
            .map_err(|e| format!("retry.delay: {e}"))
    }
}

/// What a per-step threshold does when a result breaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdAction {
    /// Logged (warn) and counted in the summary's `step_thresholds`.
    #[default]
    Log,
    /// The result counts as an error (kind `threshold`).
    FailStep,
    /// As `fail_step`, and the VU's iteration ends.
    FailScenario,
    /// As `fail_step`; the run goes on but its verdict is failed (exit code 1).
    FailTest,
    /// As `fail_step`; the run stops now (requests in flight finish) and fails (exit code 1).
    Abort,
}

/// The quantity a per-step threshold reads from one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepMetric {
    /// This result's latency, in ms.
    ResponseTime,
    /// Its HTTP status (0 when no response came back).
    StatusCode,
    /// 100 when this result failed, 0 when it passed (as the TypeScript tool reads it).
    ErrorRate,
    /// 1000 / latency in ms: this one request's rate per second.
    Throughput,
    /// What the threshold's `custom_script` gives for this result: a boolean (or any truthy value)
    /// is the verdict itself; a number is compared with `value` by `operator`.
    Custom,
}

/// `thresholds[]` of a step, as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepThreshold {
    pub metric: String,
    /// Required, except for `metric: custom` (whose script may give the verdict itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<NumOrText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default)]
    pub action: ThresholdAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `metric: custom`: the body of a JavaScript function `(context, result)` run for each result
    /// of the step (see [`StepMetric::Custom`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_script: Option<String>,
}

/// A per-step threshold ready to test a result.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledThreshold {
    pub metric: StepMetric,
    pub op: &'static str,
    pub value: f64,
    pub action: ThresholdAction,
    pub label: String,
    /// warning, error or critical: reported with each breach.
    pub severity: String,
    /// `metric: custom`: its `custom_script`, compiled in the VU's context.
    pub script: Option<std::sync::Arc<super::script::Code>>,
    /// Whether `value` was given (a custom script's number is compared only then).
    pub has_value: bool,
}

impl CompiledThreshold {
    /// Whether `actual` keeps the rule.
    pub fn holds(&self, actual: f64) -> bool {
        match self.op {
            "lt" => actual < self.value,
            "lte" => actual <= self.value,
            "gt" => actual > self.value,
            "gte" => actual >= self.value,
            "eq" => (actual - self.value).abs() < 1e-9,
            _ => (actual - self.value).abs() >= 1e-9,
        }
    }
}

impl StepThreshold {
    pub fn compile(&self) -> Result<CompiledThreshold, String> {
        if self.custom_script.is_some() != (self.metric == "custom") {
            return Err(if self.custom_script.is_some() {
                format!(
                    "`custom_script` belongs to `metric: custom`, not `{}`",
                    self.metric
                )
            } else {
                "metric `custom` needs `custom_script`: the body of a JavaScript function of \
                 (context, result) whose return value is the verdict (or a number compared with \
                 `value`)"
                    .into()
            });
        }
        let metric = match self.metric.as_str() {
            "response_time" => StepMetric::ResponseTime,
            "status_code" => StepMetric::StatusCode,
            "error_rate" => StepMetric::ErrorRate,
            "throughput" => StepMetric::Throughput,
            "custom" => StepMetric::Custom,
            other => {
                return Err(format!(
                    "unknown metric `{other}` (response_time, status_code, error_rate, throughput, custom)"
                ))
            }
        };
        let op = match self.operator.as_deref().unwrap_or("lte") {
            "lt" | "<" => "lt",
            "lte" | "<=" => "lte",
            "gt" | ">" => "gt",
            "gte" | ">=" => "gte",
            "eq" | "==" | "=" => "eq",
            "ne" | "!=" => "ne",
            other => {
                return Err(format!(
                    "unknown operator `{other}` (lt, lte, gt, gte, eq, ne)"
                ))
            }
        };
        let value = match &self.value {
            None if metric == StepMetric::Custom => 0.0,
            None => return Err("needs `value`".into()),
            Some(NumOrText::Num(n)) => *n,
            Some(NumOrText::Text(t)) => {
                let t = t.trim();
                if let Some(p) = t.strip_suffix('%') {
                    p.trim()
                        .parse()
                        .map_err(|_| format!("value `{t}` is not a percentage"))?
                } else if t.ends_with(|c: char| c.is_ascii_alphabetic()) {
                    super::duration::parse_ms(t)?.as_secs_f64() * 1000.0
                } else {
                    t.parse()
                        .map_err(|_| format!("value `{t}` is not a number"))?
                }
            }
        };
        if !value.is_finite() {
            return Err(format!("value {value} is not a finite number"));
        }
        if let Some(s) = &self.severity {
            if !["warning", "error", "critical"].contains(&s.as_str()) {
                return Err(format!(
                    "severity `{s}`: expected warning, error or critical"
                ));
            }
        }
        let label = self
            .description
            .clone()
            .unwrap_or_else(|| match &self.value {
                None => "custom_script".to_string(),
                Some(_) => format!("{} {op} {value}", self.metric),
            });
        let script = self.custom_script.as_ref().map(|text| {
            super::script::Code::new(
                format!("thresholds `{label}`.custom_script"),
                text.clone(),
                super::script::Form::Predicate,
                super::script::DEFAULT_TIMEOUT,
            )
        });
        Ok(CompiledThreshold {
            script,
            has_value: self.value.is_some(),
            metric,
            op,
            value,
            action: self.action,
            label,
            severity: self.severity.clone().unwrap_or_else(|| "error".into()),
        })
    }
}

/// The common keys as written on a step (see `RawStep`), checked into [`StepOptions`].
pub fn options(
    think_time: Option<ThinkTime>,
    timeout: Option<&NumOrText>,
    on_error: Option<OnError>,
    continue_on_error: Option<bool>,
    retry: Option<Retry>,
    thresholds: Vec<StepThreshold>,
) -> Result<StepOptions, String> {
    let timeout = timeout
        .map(|t| t.duration_ms().map_err(|e| format!("timeout: {e}")))
        .transpose()?;
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err("timeout: must be above zero".into());
    }
    let on_error = on_error.unwrap_or_default();
    let continue_on_error = match (on_error.continue_, continue_on_error) {
        (Some(a), Some(b)) if a != b => {
            return Err("`on_error.continue` and `continueOnError` disagree: give one".into())
        }
        (a, b) => a.or(b).unwrap_or(true),
    };
    if let Some(r) = &retry {
        r.check()?;
    }
    for (k, t) in thresholds.iter().enumerate() {
        t.compile().map_err(|e| format!("thresholds[{k}]: {e}"))?;
    }
    Ok(StepOptions {
        think_time,
        timeout,
        continue_on_error,
        log_full_response: on_error.log_full_response.unwrap_or(false),
        retry,
        thresholds,
    })
}
