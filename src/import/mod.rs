//! `perfornium import`: tests generated from what a team already has — an OpenAPI 3 document
//! ([`openapi`]), a browser or proxy recording in HAR ([`har`]), or a WSDL ([`wsdl`]). Each importer
//! reads its source into the same small model of a test ([`Test`]), which is written as YAML in the
//! format [`crate::config`] reads; the command validates what it wrote before saying it is done.
//!
//! The generated test is a starting point: one virtual user per scenario, one iteration, so a first
//! run touches every request exactly once; the user raises the load afterwards.

pub mod har;
pub mod openapi;
pub mod wsdl;

use serde::Serialize;
use std::collections::BTreeMap;

/// Why a source could not be turned into a test.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{what}: {why}")]
    Source { what: &'static str, why: String },
    #[error("nothing to import: {0}")]
    Empty(String),
    #[error("--paths: {0}")]
    Filter(#[from] regex::Error),
}

/// A generated test, and what the importer left out or guessed (to be shown to the user).
#[derive(Debug, Clone)]
pub struct Generated {
    pub test: Test,
    pub notes: Vec<String>,
    /// The first lines of the file, as `#` comments (where it came from).
    pub header: String,
}

impl Generated {
    /// The test as YAML, after its header comment.
    pub fn to_yaml(&self) -> String {
        let body = serde_norway::to_string(&self.test).expect("a generated test serializes");
        let mut out = String::new();
        for line in self.header.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&body);
        out
    }
}

/// The subset of the test format the importers write.
#[derive(Debug, Clone, Serialize)]
pub struct Test {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub global: Global,
    pub load: Load,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Global {
    pub base_url: String,
    /// Milliseconds.
    pub timeout: u64,
}

/// A closed load: `virtual_users` VUs, `iterations` each.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub pattern: &'static str,
    pub virtual_users: u64,
    pub iterations: u64,
}

impl Load {
    /// One VU per scenario (VUs are dealt to scenarios in turn), one iteration each.
    pub fn once_each(scenarios: usize) -> Load {
        Load {
            pattern: "basic",
            virtual_users: scenarios.max(1) as u64,
            iterations: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    pub steps: Vec<Step>,
}

/// A `rest` or `soap` step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Step {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub form: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wsdl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// The pause after this step, e.g. `"250ms"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think_time: Option<String>,
}

/// A check the importers can write.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Check {
    Status { value: u16 },
    SoapFault { expected: bool },
}

/// Makes `name` unique among `taken` by adding " (2)", " (3)"…; step names key per-step results.
pub(crate) fn unique(name: String, taken: &mut std::collections::HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{name} ({n})");
        n += 1;
    }
    candidate
}

/// Splits a comma-separated option into its trimmed, non-empty parts.
pub fn list(option: Option<&str>) -> Vec<String> {
    option
        .map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
