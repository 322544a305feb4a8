//! `scenarios:`, the user journeys: their weight, repeat count (or loop duration), variables, CSV
//! rows, whether they run (`enabled`) and their SLA (`sla_requirements`, turned into thresholds on
//! the scenario's steps). The steps themselves are in `step.rs`.

use super::duration::ThinkTime;
use super::Step;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One user journey.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `false` leaves the scenario out of the run (removed when the test is loaded).
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// How many times the steps repeat in one iteration (`loop: 3`, `loop: {count: 3}`), or for
    /// how long (`loop: {duration: 30s}`, a bare number is ms).
    #[serde(default, rename = "loop")]
    pub looping: Loop,
    #[serde(default)]
    pub think_time: Option<ThinkTime>,
    #[serde(default)]
    pub variables: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    pub csv_data: Option<CsvData>,
    /// `next`, `unique` or `random`: how `csv_data` rows are handed out (see [`CsvData::csv_mode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_mode: Option<String>,
    /// Turned into thresholds on this scenario's steps when the test is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_requirements: Option<Sla>,
    pub steps: Vec<Step>,
    /// Legacy inline JavaScript run once per iteration before the steps (after `beforeScenario`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// Legacy inline JavaScript run once per iteration after the steps (before `teardownScenario`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<super::script::ScenarioHooks>,
    /// A JavaScript expression over `context`, evaluated before each iteration: when false the
    /// iteration is skipped (the TypeScript tool never reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

fn yes() -> bool {
    true
}

/// `sla_requirements:` of a scenario: each becomes a threshold on the scenario's steps.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// ms, or a duration with a unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_response_time: Option<super::duration::NumOrText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_response_time: Option<super::duration::NumOrText>,
    /// Percent of requests without error, e.g. `99.9` or `"99.9%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<super::duration::NumOrText>,
    /// Requests per second at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
}

/// `loop:` of a scenario: a count of rounds, or a duration to repeat the steps for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loop {
    pub count: u32,
    pub duration: Option<Duration>,
}

impl Default for Loop {
    fn default() -> Self {
        Self {
            count: 1,
            duration: None,
        }
    }
}

/// `loop:` as an object. The TypeScript loop object's other keys (`mode`, `condition`,
/// `break_on_error`, `max_errors`) are refused by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoopObject {
    #[serde(default)]
    count: Option<u32>,
    #[serde(default, deserialize_with = "super::duration::de_opt_duration_ms")]
    duration: Option<Duration>,
    #[serde(default)]
    mode: Option<serde_norway::Value>,
    #[serde(default)]
    condition: Option<serde_norway::Value>,
    #[serde(default)]
    break_on_error: Option<serde_norway::Value>,
    #[serde(default)]
    max_errors: Option<serde_norway::Value>,
}

impl TryFrom<LoopObject> for Loop {
    type Error = String;
    fn try_from(o: LoopObject) -> Result<Self, String> {
        for (key, present, why) in [
            (
                "mode",
                o.mode.is_some(),
                "the TypeScript tool never reads it",
            ),
            (
                "condition",
                o.condition.is_some(),
                "it is a JavaScript expression, and Perfornium-rs runs no scripts",
            ),
            (
                "break_on_error",
                o.break_on_error.is_some(),
                "the TypeScript tool never reads it; use a step's `on_error: {continue: false}`",
            ),
            (
                "max_errors",
                o.max_errors.is_some(),
                "the TypeScript tool never reads it",
            ),
        ] {
            if present {
                return Err(format!("loop.{key} is not supported: {why}"));
            }
        }
        match (o.count, o.duration) {
            (Some(_), Some(_)) => Err("loop: give `count` or `duration`, not both".into()),
            (Some(count), None) => Ok(Loop {
                count,
                duration: None,
            }),
            (None, Some(d)) if d.is_zero() => Err("loop.duration must be above zero".into()),
            (None, Some(d)) => Ok(Loop {
                count: 1,
                duration: Some(d),
            }),
            (None, None) => Err("loop: needs `count` or `duration`".into()),
        }
    }
}

impl<'de> Deserialize<'de> for Loop {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Loop;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of rounds, or `{count: N}` / `{duration: 30s}`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Loop, E> {
                let count = u32::try_from(v).map_err(|_| E::custom("loop: too many rounds"))?;
                Ok(Loop {
                    count,
                    duration: None,
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Loop, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("loop: a count of 0 or more"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Loop, A::Error> {
                let o = LoopObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Loop::try_from(o).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for Loop {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.duration {
            None => s.serialize_u32(self.count),
            Some(d) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("duration", &format!("{}ms", d.as_secs_f64() * 1000.0))?;
                m.end()
            }
        }
    }
}

impl Scenario {
    /// `variables` as the text a template substitutes: strings as written, other values as YAML.
    pub fn variable_texts(&self) -> std::collections::HashMap<String, String> {
        self.variables
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_norway::Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }
}

fn default_weight() -> u32 {
    100
}

/// Rows of a CSV file exposed as `{{column}}` variables.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CsvData {
    pub file: String,
    /// `sequential`, `random`, `shared`, or the TypeScript `csv_mode` names `next` and `unique`
    /// (see [`CsvData::policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Only `utf-8` (or `utf8`) is read; anything else is refused by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Blank lines are skipped whatever this says (`false` is refused: a blank row has no values).
    #[serde(
        default,
        rename = "skipEmptyLines",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_empty_lines: Option<bool>,
    /// The file's first line is not data (with `columns`: the header line to ignore).
    #[serde(
        default,
        rename = "skipFirstLine",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_first_line: Option<bool>,
    /// Column names: the file then has no header row (unless `skipFirstLine` skips it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// `"column<op>value"` with op `!=`, `>=`, `<=`, `=`, `>`, `<`: only matching rows are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// CSV column → variable name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Rows in random order (when `distribution.order` is not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomize: Option<bool>,
    /// `false`: a VU stops when the rows run out (when `distribution.on_exhausted` is not given).
    #[serde(
        default,
        rename = "cycleOnExhaustion",
        skip_serializing_if = "Option::is_none"
    )]
    pub cycle_on_exhaustion: Option<bool>,
    /// `each_iteration` (default; `each_use` means the same here) or `each_vu` (a VU keeps its first row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<CsvRowDistribution>,
    /// Rows are sent inline by a controller; not written by users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<BTreeMap<String, String>>>,
}

/// `csv_data.distribution`.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvRowDistribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exhausted: Option<String>,
}

/// Which rows a VU may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvScope {
    /// Our `sequential`: each VU walks the rows in order from its own offset (`(vu + iteration) % n`).
    Offset,
    /// `local`: each VU keeps one row, row `vu % n` (or a random one with `order: random`).
    Local,
    /// `global` (our `shared`): one cursor for all VUs, every row used once before any repeats.
    Global,
    /// `unique`: every row is handed out once in all; then the rows are exhausted.
    Unique,
}

/// What happens when a VU asks for a row and none is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvExhausted {
    Cycle,
    StopVu,
    StopTest,
    NoValue,
}

/// How rows are handed to virtual users, resolved from `mode`/`csv_mode`, `randomize`,
/// `cycleOnExhaustion`, `change_policy` and `distribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvPolicy {
    pub scope: CsvScope,
    pub random: bool,
    pub on_exhausted: CsvExhausted,
    /// `each_vu`: a VU keeps its first row for all its iterations.
    pub per_vu: bool,
}

impl CsvData {
    /// The policy, or why the keys do not make one. `csv_mode` (global or the scenario's) maps as
    /// the TypeScript tool maps it: `next` = global, sequential, cycle; `unique` = unique,
    /// sequential, stop_vu; `random` = global, random, cycle.
    pub fn policy(&self, csv_mode: Option<&str>) -> Result<CsvPolicy, String> {
        if let Some(e) = &self.encoding {
            let e = e.to_lowercase();
            if e != "utf-8" && e != "utf8" {
                return Err(format!(
                    "csv_data.encoding `{e}` is not supported: only utf-8 files are read"
                ));
            }
        }
        if self.skip_empty_lines == Some(false) {
            return Err("csv_data.skipEmptyLines: false is not supported: blank lines have no values and are always skipped".into());
        }
        if let Some(f) = &self.filter {
            parse_filter(f)?;
        }
        let (mut scope, mut random, mut on_exhausted) = match (self.mode.as_deref(), csv_mode) {
            (Some(_), Some(_)) => return Err("give `csv_data.mode` or `csv_mode`, not both".into()),
            (Some(m), None) | (None, Some(m)) => match m {
                "sequential" => (CsvScope::Offset, false, CsvExhausted::Cycle),
                "shared" | "next" => (CsvScope::Global, false, CsvExhausted::Cycle),
                "random" => (CsvScope::Global, true, CsvExhausted::Cycle),
                "unique" => (CsvScope::Unique, false, CsvExhausted::StopVu),
                other => {
                    return Err(format!(
                        "csv mode `{other}`: expected sequential, shared, random, next or unique"
                    ))
                }
            },
            (None, None) => (CsvScope::Offset, false, CsvExhausted::Cycle),
        };
        if let Some(r) = self.randomize {
            random = r;
        }
        if self.cycle_on_exhaustion == Some(false) {
            on_exhausted = CsvExhausted::StopVu;
        }
        if let Some(d) = &self.distribution {
            if let Some(s) = &d.scope {
                scope = match s.as_str() {
                    "local" => CsvScope::Local,
                    "global" => CsvScope::Global,
                    "unique" => CsvScope::Unique,
                    other => {
                        return Err(format!(
                        "csv_data.distribution.scope `{other}`: expected local, global or unique"
                    ))
                    }
                };
            }
            if let Some(o) = &d.order {
                random = match o.as_str() {
                    "sequential" | "any" => false,
                    "random" => true,
                    other => {
                        return Err(format!(
                        "csv_data.distribution.order `{other}`: expected sequential, random or any"
                    ))
                    }
                };
            }
            if let Some(e) = &d.on_exhausted {
                on_exhausted = match e.as_str() {
                    "cycle" => CsvExhausted::Cycle,
                    "stop_vu" => CsvExhausted::StopVu,
                    "stop_test" => CsvExhausted::StopTest,
                    "no_value" => CsvExhausted::NoValue,
                    other => return Err(format!(
                        "csv_data.distribution.on_exhausted `{other}`: expected cycle, stop_vu, stop_test or no_value"
                    )),
                };
            }
        }
        let per_vu = match self.change_policy.as_deref() {
            None | Some("each_iteration") | Some("each_use") => false,
            Some("each_vu") => true,
            Some(other) => {
                return Err(format!(
                "csv_data.change_policy `{other}`: expected each_use, each_iteration or each_vu"
            ))
            }
        };
        Ok(CsvPolicy {
            scope,
            random,
            on_exhausted,
            per_vu,
        })
    }
}

/// A row filter: `(column, op, value)`.
pub fn parse_filter(f: &str) -> Result<(String, &'static str, String), String> {
    for op in ["!=", ">=", "<=", "=", ">", "<"] {
        if let Some((col, val)) = f.split_once(op) {
            let col = col.trim();
            if col.is_empty() {
                break;
            }
            return Ok((col.to_string(), op, val.trim().to_string()));
        }
    }
    Err(format!(
        "csv_data.filter `{f}`: expected `column<op>value` with op one of != >= <= = > <"
    ))
}
