//! The top of a test file: its name, the `global:` settings every scenario shares, and the
//! `thresholds:` that decide pass or fail. The other top-level keys have a file each (`load.rs`,
//! `scenario.rs`, `distributed.rs`), so a key is found in the file named after its section.

use super::duration::ThinkTime;
use super::{Distributed, Load, Scenario};
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
    /// The WSDL of `soap` steps that name no `wsdl` of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wsdl_url: Option<String>,
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
