//! `scenarios:`, the user journeys: their weight, repeat count, variables and CSV rows. The steps
//! themselves are in `step.rs`.

use super::duration::ThinkTime;
use super::Step;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
