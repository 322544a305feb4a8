//! The top of a test file: its name, the `global:` settings every scenario shares, and the
//! `thresholds:` that decide pass or fail. The other top-level keys have a file each (`load.rs`,
//! `scenario.rs`, `distributed.rs`), so a key is found in the file named after its section.

use super::duration::{NumOrText, ThinkTime};
use super::{CsvData, Distributed, Load, Scenario};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Top-level `checks:` on the whole run (`response_time` percentile, `throughput`,
    /// `error_rate`), turned into `thresholds` when the test is loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<RunCheck>,
    /// The same as `global.debug` (this one wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<Debug>,
    #[serde(default)]
    pub distributed: Option<Distributed>,
    /// Where the run's per-second records and summary go (`outputs.rs`); written by the process
    /// that runs or drives the test, so never sent to workers.
    #[serde(default, skip_serializing)]
    pub outputs: Vec<super::Output>,
    /// The HTML report written after the run (`outputs.rs`).
    #[serde(default, skip_serializing)]
    pub report: Option<super::Report>,
    /// The test's own hooks (`beforeTest`, `teardownTest`, `onTestError`; `config::script`).
    /// Kept in a distributed run's record and sent to workers, whose `/test-hook` runs them once
    /// for the run (a worker that predates that refuses them at `/prepare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<super::script::TestHooks>,
    /// Refused by name, with its reason (in `validate.rs`).
    #[serde(default, skip_serializing)]
    pub workers: Option<serde_norway::Value>,
}

/// A top-level check on the whole run, as the TypeScript docs write them.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunCheck {
    #[serde(rename = "type")]
    pub kind: String,
    /// `response_time`: which percentile (50, 90, 95, 99, 99.9; default 95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    /// `response_time`: the most ms (or a duration with a unit); `error_rate`: the most percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<NumOrText>,
    /// `throughput`: the fewest requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    /// `true` or absent: a failed check fails the run (exit code 1), as every threshold does.
    /// `false` is refused: a check that cannot fail the run would be ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_test: Option<bool>,
}

/// `debug:` (top level or `global.debug`): what is captured about failing requests.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Debug {
    /// debug, info, warn or error: the least level logged for perfornium (unless `RUST_LOG` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    #[serde(default)]
    pub capture_request_headers: bool,
    #[serde(default)]
    pub capture_request_body: bool,
    #[serde(default)]
    pub capture_response_headers: bool,
    #[serde(default)]
    pub capture_response_body: bool,
    /// Captured bodies are cut to this many bytes (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_body_size: Option<usize>,
    /// Only failing requests are captured (the default; `false` captures every request, the
    /// first 100 in all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_only_failures: Option<bool>,
    /// Aliases the TypeScript tool reads: each sets `log_level: debug`.
    #[serde(default)]
    pub log_requests: bool,
    #[serde(default)]
    pub log_responses: bool,
    #[serde(default)]
    pub log_timings: bool,
    /// `log_headers` turns on both header captures, `log_body` both body captures.
    #[serde(default)]
    pub log_headers: bool,
    #[serde(default)]
    pub log_body: bool,
}

impl Debug {
    /// Whether requests are captured (any capture option, `capture_only_failures` included;
    /// every capture has the step, method, URL, status, error and latency).
    pub fn captures(&self) -> bool {
        self.capture_only_failures.is_some()
            || self.capture_request_headers
            || self.capture_request_body
            || self.capture_response_headers
            || self.capture_response_body
            || self.log_headers
            || self.log_body
    }

    /// The log level asked for, aliases applied.
    pub fn level(&self) -> Option<&str> {
        if self.log_requests || self.log_responses || self.log_timings {
            return Some("debug");
        }
        self.log_level.as_deref()
    }
}

/// `global.faker`: the locale of generated values and a seed that makes them repeat run to run.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Faker {
    /// Only `en` is generated; the TypeScript tool's other locales (de, fr, es, nl) are refused by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Settings shared by every scenario.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    #[serde(default)]
    pub base_url: Option<String>,
    /// Request timeout in milliseconds (a bare number is ms; `"30s"` works too).
    #[serde(default = "default_timeout_ms", deserialize_with = "de_timeout_ms")]
    pub timeout: u64,
    #[serde(default)]
    pub think_time: Option<ThinkTime>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The WSDL of `soap` steps that name no `wsdl` of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wsdl_url: Option<String>,
    /// Variables every scenario starts with (a scenario's own win); merged when the test is loaded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, serde_norway::Value>,
    /// Rows for every scenario that has no `csv_data` of its own; copied to them when loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_data: Option<CsvData>,
    /// `next`, `unique` or `random` for `global.csv_data` (and scenarios without their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<Debug>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faker: Option<Faker>,
    /// The TypeScript documentation's place for the test's own hooks: moved to the top-level
    /// `hooks` when the test is loaded (`validate::normalize`).
    #[serde(default, skip_serializing)]
    pub hooks: Option<super::script::TestHooks>,
    /// Keys refused by name (each with its reason, in `validate.rs`).
    #[serde(default, skip_serializing)]
    pub influxdb: Option<serde_norway::Value>,
    #[serde(default, skip_serializing)]
    pub browser: Option<serde_norway::Value>,
    #[serde(default, skip_serializing)]
    pub web: Option<serde_norway::Value>,
    #[serde(default, skip_serializing)]
    pub ssl: Option<serde_norway::Value>,
    #[serde(default, skip_serializing)]
    pub proxy: Option<serde_norway::Value>,
    #[serde(default, skip_serializing)]
    pub connection_pool: Option<serde_norway::Value>,
}

fn de_timeout_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    NumOrText::deserialize_then(d, |v| {
        let d = v.duration_ms()?;
        Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
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
            variables: BTreeMap::new(),
            csv_data: None,
            csv_mode: None,
            debug: None,
            faker: None,
            hooks: None,
            influxdb: None,
            browser: None,
            web: None,
            ssl: None,
            proxy: None,
            connection_pool: None,
            wsdl_url: None,
        }
    }
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
