//! The test file as serde types. Every struct denies unknown keys so a typo or an unsupported feature
//! is refused by name instead of silently ignored; step kinds are checked in [`RawStep`]'s conversion
//! so the error carries the position serde_norway reports.

use super::duration::{de_opt_duration, ThinkTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A whole test file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub global: Global,
    pub load: Load,
    /// Scenario files merged into `scenarios` when the test is loaded.
    #[serde(default, skip_serializing)]
    pub includes: Vec<String>,
    #[serde(default)]
    pub scenarios: Vec<Scenario>,
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    #[serde(default)]
    pub distributed: Option<Distributed>,
}

/// Settings shared by every scenario.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    #[serde(default)]
    pub base_url: Option<String>,
    /// Request timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout: u64,
    #[serde(default)]
    pub think_time: Option<ThinkTime>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_timeout_ms() -> u64 {
    30_000
}

impl Default for Global {
    fn default() -> Self {
        Self {
            base_url: None,
            timeout: default_timeout_ms(),
            think_time: None,
            headers: BTreeMap::new(),
        }
    }
}

/// The load pattern: how many virtual users, when they start, and for how long.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "RawLoad", into = "RawLoad")]
pub enum Load {
    /// A closed model: `virtual_users` loop over their scenario, started evenly over `ramp_up`.
    Basic {
        virtual_users: u64,
        ramp_up: Duration,
        duration: Option<Duration>,
        /// Scenario iterations per virtual user.
        iterations: Option<u64>,
    },
    /// A closed model that adds `step_users` every `step_duration` up to `max_users`.
    Stepping {
        start_users: u64,
        step_users: u64,
        step_duration: Duration,
        max_users: u64,
        duration: Duration,
    },
    /// An open model: `rate` scenario iterations start per second whatever the target does.
    Arrivals {
        rate: f64,
        duration: Duration,
        max_virtual_users: Option<u64>,
        preallocation: Option<u64>,
    },
}

/// `load:` as written. A plain struct (not a tagged enum) so serde_norway reports the exact line of a
/// wrongly typed field; the conversion then checks which fields the pattern needs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_users: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub ramp_up: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_users: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub step_duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_virtual_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preallocation: Option<u64>,
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format!("{}ms", d.as_millis())),
        None => s.serialize_none(),
    }
}

fn need<T>(v: Option<T>, pattern: &str, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("load: the `{pattern}` pattern needs `{field}`"))
}

impl TryFrom<RawLoad> for Load {
    type Error = String;

    fn try_from(r: RawLoad) -> Result<Self, String> {
        let p = r.pattern.as_str();
        let stray = |fields: &[(&str, bool)]| -> Result<(), String> {
            match fields.iter().find(|(_, present)| *present) {
                Some((name, _)) => Err(format!(
                    "load: `{name}` does not apply to the `{p}` pattern"
                )),
                None => Ok(()),
            }
        };
        match p {
            "basic" => {
                stray(&[
                    ("start_users", r.start_users.is_some()),
                    ("step_users", r.step_users.is_some()),
                    ("rate", r.rate.is_some()),
                ])?;
                Ok(Load::Basic {
                    virtual_users: need(r.virtual_users, p, "virtual_users")?,
                    ramp_up: r.ramp_up.unwrap_or_default(),
                    duration: r.duration,
                    iterations: r.iterations,
                })
            }
            "stepping" => {
                stray(&[
                    ("virtual_users", r.virtual_users.is_some()),
                    ("rate", r.rate.is_some()),
                    ("iterations", r.iterations.is_some()),
                ])?;
                Ok(Load::Stepping {
                    start_users: r.start_users.unwrap_or(0),
                    step_users: need(r.step_users, p, "step_users")?,
                    step_duration: need(r.step_duration, p, "step_duration")?,
                    max_users: need(r.max_users, p, "max_users")?,
                    duration: need(r.duration, p, "duration")?,
                })
            }
            "arrivals" => {
                stray(&[
                    ("virtual_users", r.virtual_users.is_some()),
                    ("iterations", r.iterations.is_some()),
                    ("step_users", r.step_users.is_some()),
                ])?;
                Ok(Load::Arrivals {
                    rate: need(r.rate, p, "rate")?,
                    duration: need(r.duration, p, "duration")?,
                    max_virtual_users: r.max_virtual_users,
                    preallocation: r.preallocation,
                })
            }
            other => Err(format!(
                "load: unknown pattern `{other}` (supported: basic, stepping, arrivals)"
            )),
        }
    }
}

impl From<Load> for RawLoad {
    fn from(l: Load) -> Self {
        match l {
            Load::Basic {
                virtual_users,
                ramp_up,
                duration,
                iterations,
            } => RawLoad {
                pattern: "basic".into(),
                virtual_users: Some(virtual_users),
                ramp_up: Some(ramp_up),
                duration,
                iterations,
                ..Default::default()
            },
            Load::Stepping {
                start_users,
                step_users,
                step_duration,
                max_users,
                duration,
            } => RawLoad {
                pattern: "stepping".into(),
                start_users: Some(start_users),
                step_users: Some(step_users),
                step_duration: Some(step_duration),
                max_users: Some(max_users),
                duration: Some(duration),
                ..Default::default()
            },
            Load::Arrivals {
                rate,
                duration,
                max_virtual_users,
                preallocation,
            } => RawLoad {
                pattern: "arrivals".into(),
                rate: Some(rate),
                duration: Some(duration),
                max_virtual_users,
                preallocation,
                ..Default::default()
            },
        }
    }
}

/// One user journey.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// How many times the steps repeat in one iteration.
    #[serde(default = "default_loop", rename = "loop")]
    pub repeat: u32,
    #[serde(default)]
    pub think_time: Option<ThinkTime>,
    #[serde(default)]
    pub variables: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    pub csv_data: Option<CsvData>,
    pub steps: Vec<Step>,
}

fn default_weight() -> u32 {
    100
}
fn default_loop() -> u32 {
    1
}

/// Rows of a CSV file exposed as `{{column}}` variables.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsvData {
    pub file: String,
    #[serde(default)]
    pub mode: CsvMode,
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Rows are sent inline by a controller; not written by users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<BTreeMap<String, String>>>,
}

/// How rows are handed to virtual users.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CsvMode {
    /// Each VU walks the rows in order from its own offset.
    #[default]
    Sequential,
    /// A random row for every iteration.
    Random,
    /// One cursor for all VUs: every row is used once before any repeats.
    Shared,
}

/// A step, after its `type` has been checked.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "RawStep", into = "RawStep")]
pub enum Step {
    Http(HttpStep),
    Wait { name: String, duration: ThinkTime },
    Rendezvous(Rendezvous),
}

impl Step {
    /// The name shown in summaries.
    pub fn name(&self) -> &str {
        match self {
            Step::Http(h) => &h.name,
            Step::Wait { name, .. } => name,
            Step::Rendezvous(r) => &r.name,
        }
    }
}

/// An HTTP request step (`rest`, or `soap`, which is a POST of an XML envelope).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HttpStep {
    pub name: String,
    pub method: String,
    /// A path joined to `base_url`, or a whole URL.
    pub target: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub body: Option<String>,
    pub checks: Vec<Check>,
    pub extract: Vec<Extract>,
}

/// A named meeting point: VUs wait until `count` arrive (or `timeout`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rendezvous {
    pub name: String,
    pub point: String,
    pub count: u64,
    pub timeout: Duration,
}

/// The step as written, before its type decides which fields it needs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, serde_norway::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_norway::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_norway::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soap_action: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract: Vec<Extract>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<ThinkTimeText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendezvous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ThinkTimeText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A duration kept as text (or a number) so it survives a round trip unchanged.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ThinkTimeText {
    Num(f64),
    Text(String),
}

impl ThinkTimeText {
    fn think_time(&self) -> Result<ThinkTime, String> {
        match self {
            ThinkTimeText::Num(n) => ThinkTime::parse(&n.to_string()),
            ThinkTimeText::Text(s) => ThinkTime::parse(s),
        }
    }
}

fn yaml_scalar(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Bool(b) => b.to_string(),
        serde_norway::Value::Null => String::new(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Self, String> {
        let kind = raw.kind.clone().unwrap_or_else(|| {
            if raw.rendezvous.is_some() {
                "rendezvous".into()
            } else {
                "rest".into()
            }
        });
        match kind.as_str() {
            "rest" | "soap" => raw.into_http(&kind).map(Step::Http),
            "wait" => {
                let d = raw.duration.ok_or("a `wait` step needs `duration`")?;
                let name = raw.name.unwrap_or_else(|| "wait".into());
                Ok(Step::Wait { name, duration: d.think_time()? })
            }
            "rendezvous" => {
                let point = raw.rendezvous.ok_or("a `rendezvous` step needs `rendezvous` (its name)")?;
                let count = raw.count.ok_or("a `rendezvous` step needs `count`")?;
                if let Some(p) = raw.policy.as_deref() {
                    if p != "all" && p != "count" {
                        return Err(format!("rendezvous `policy` must be `all` or `count`, got `{p}`"));
                    }
                }
                let timeout = match raw.timeout {
                    Some(t) => t.think_time()?.max,
                    None => Duration::from_secs(30),
                };
                Ok(Step::Rendezvous(Rendezvous { name: raw.name.unwrap_or_else(|| point.clone()), point, count, timeout }))
            }
            other => Err(format!(
                "step type `{other}` is not supported by this program (supported: rest, soap, wait, rendezvous)"
            )),
        }
    }
}

impl RawStep {
    fn into_http(self, kind: &str) -> Result<HttpStep, String> {
        let target = match (self.path, self.url) {
            (Some(p), None) => p,
            (None, Some(u)) => u,
            (Some(_), Some(_)) => return Err("a step takes `path` or `url`, not both".into()),
            (None, None) => return Err(format!("a `{kind}` step needs `path` or `url`")),
        };
        let mut headers = self.headers;
        let body = if kind == "soap" {
            let env = self
                .envelope
                .or(self.body.as_ref().map(yaml_scalar))
                .ok_or("a `soap` step needs `envelope`")?;
            headers
                .entry("Content-Type".into())
                .or_insert_with(|| "text/xml; charset=utf-8".into());
            if let Some(a) = self.soap_action {
                headers.insert("SOAPAction".into(), a);
            }
            Some(env)
        } else if let Some(j) = self.json {
            headers
                .entry("Content-Type".into())
                .or_insert_with(|| "application/json".into());
            Some(serde_json::to_string(&j).map_err(|e| e.to_string())?)
        } else {
            match self.body {
                Some(serde_norway::Value::String(s)) => Some(s),
                Some(v @ (serde_norway::Value::Mapping(_) | serde_norway::Value::Sequence(_))) => {
                    headers
                        .entry("Content-Type".into())
                        .or_insert_with(|| "application/json".into());
                    Some(serde_json::to_string(&v).map_err(|e| e.to_string())?)
                }
                Some(v) => Some(yaml_scalar(&v)),
                None => None,
            }
        };
        let method = self
            .method
            .unwrap_or_else(|| {
                if kind == "soap" {
                    "POST".into()
                } else {
                    "GET".into()
                }
            })
            .to_uppercase();
        if !matches!(
            method.as_str(),
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
        ) {
            return Err(format!("`method` `{method}` is not an HTTP method"));
        }
        Ok(HttpStep {
            name: self.name.unwrap_or_else(|| format!("{method} {target}")),
            method,
            target,
            headers,
            query: self
                .query
                .iter()
                .map(|(k, v)| (k.clone(), yaml_scalar(v)))
                .collect(),
            body,
            checks: self.checks,
            extract: self.extract,
        })
    }
}

impl From<Step> for RawStep {
    fn from(step: Step) -> Self {
        match step {
            Step::Http(h) => RawStep {
                name: Some(h.name),
                kind: Some("rest".into()),
                method: Some(h.method),
                path: Some(h.target),
                headers: h.headers,
                query: h
                    .query
                    .into_iter()
                    .map(|(k, v)| (k, serde_norway::Value::String(v)))
                    .collect(),
                body: h.body.map(serde_norway::Value::String),
                checks: h.checks,
                extract: h.extract,
                ..Default::default()
            },
            Step::Wait { name, duration } => RawStep {
                name: Some(name),
                kind: Some("wait".into()),
                duration: Some(ThinkTimeText::Text(format!(
                    "{}ms-{}ms",
                    duration.min.as_millis(),
                    duration.max.as_millis()
                ))),
                ..Default::default()
            },
            Step::Rendezvous(r) => RawStep {
                name: Some(r.name),
                kind: Some("rendezvous".into()),
                rendezvous: Some(r.point),
                count: Some(r.count),
                timeout: Some(ThinkTimeText::Text(format!("{}ms", r.timeout.as_millis()))),
                ..Default::default()
            },
        }
    }
}

/// A check on a response; failures are counted, and do not stop the VU.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    Status {
        value: serde_norway::Value,
        #[serde(default)]
        description: Option<String>,
    },
    ResponseTime {
        value: serde_norway::Value,
        #[serde(default)]
        operator: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    JsonPath {
        value: String,
        #[serde(default)]
        operator: Option<String>,
        #[serde(default)]
        expected: Option<serde_norway::Value>,
        #[serde(default)]
        description: Option<String>,
    },
    TextContains {
        value: String,
        #[serde(default)]
        description: Option<String>,
    },
}

/// Pulls a value out of a response into a variable for later steps.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ExtractKind,
    pub expression: String,
    #[serde(default)]
    pub default: Option<String>,
}

/// Where an extracted value comes from.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExtractKind {
    JsonPath,
    Regex,
}

/// A pass/fail rule on the results: `"p95 < 500ms"`, `"error_rate < 1%"`, or the long form.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Threshold {
    Short(String),
    Long {
        metric: String,
        #[serde(default)]
        step: Option<String>,
    },
}

/// The `distributed:` block of the seed document. Only keys the program implements are accepted;
/// any other is refused by name (for example `communication.protocol: grpc`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Distributed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordination: Option<Coordination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration: Option<Orchestration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_tolerance: Option<FaultTolerance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_consistency: Option<DataConsistency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication: Option<Communication>,
    /// Region, `host:port` or `worker-N` → relative weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<BTreeMap<String, u64>>,
    /// `host:port` or `worker-N` → exact VU count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<BTreeMap<String, u64>>,
    /// `weighted`, `even`, ... as the seed writes it beside `weights`; the CLI's `-s` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// `distributed.coordination`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Coordination {
    #[serde(default)]
    pub synchronized_start: Option<bool>,
    /// Largest acceptable start skew between workers; exceeding it is reported as a warning.
    #[serde(default, deserialize_with = "de_opt_duration", skip_serializing)]
    pub time_skew_tolerance: Option<Duration>,
}

/// `distributed.orchestration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Orchestration {
    #[serde(default, deserialize_with = "de_opt_duration", skip_serializing)]
    pub heartbeat_interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_duration", skip_serializing)]
    pub coordination_timeout: Option<Duration>,
    #[serde(default)]
    pub failure_handling: Option<FailureHandling>,
}

/// `distributed.orchestration.failure_handling`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FailureHandling {
    /// Percent of workers that may fail before the run fails.
    #[serde(default)]
    pub worker_failure_threshold: Option<f64>,
    #[serde(default)]
    pub continue_on_partial_failure: Option<bool>,
}

/// `distributed.fault_tolerance`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultTolerance {
    #[serde(default)]
    pub worker_failures: Option<WorkerFailures>,
}

/// `distributed.fault_tolerance.worker_failures`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerFailures {
    #[serde(default, deserialize_with = "de_opt_duration", skip_serializing)]
    pub detection_timeout: Option<Duration>,
    /// Same meaning as `worker_failure_threshold` (percent).
    #[serde(default)]
    pub max_failure_rate: Option<f64>,
    #[serde(default)]
    pub recovery: Option<Recovery>,
}

/// `distributed.fault_tolerance.worker_failures.recovery`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Re-assign a failed worker's share (VUs, arrival rate, CSV slice) to the survivors.
    #[serde(default)]
    pub load_redistribution: Option<bool>,
}

/// `distributed.data_consistency`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConsistency {
    #[serde(default)]
    pub csv_data: Option<CsvDistribution>,
}

/// `distributed.data_consistency.csv_data`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvDistribution {
    #[serde(default)]
    pub distribution_mode: CsvDistributionMode,
    /// Only `round_robin` (row i to worker i mod n) is implemented.
    #[serde(default)]
    pub partition_strategy: Option<PartitionStrategy>,
}

/// How CSV rows reach workers.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CsvDistributionMode {
    /// Every worker gets every row (same as `replicate`).
    #[default]
    Shared,
    /// Each worker gets a disjoint slice, round-robin by row.
    Partition,
    Replicate,
}

/// The one partition strategy implemented.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PartitionStrategy {
    RoundRobin,
}

/// `distributed.communication`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Communication {
    /// Only `http` is implemented.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    #[serde(default)]
    pub http: Option<HttpCommunication>,
}

/// Transport between controller and workers.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Http,
}

/// `distributed.communication.http`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpCommunication {
    #[serde(default)]
    pub authentication: Option<Authentication>,
}

/// Bearer-token authentication to workers; the token is usually `{{env.WORKER_TOKEN}}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authentication {
    #[serde(rename = "type", default)]
    pub kind: Option<AuthKind>,
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
}

/// The one authentication type implemented.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    BearerToken,
}
