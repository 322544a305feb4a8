//! `checks:` and `extract:` of an HTTP step, as written. The engine does not run these directly:
//! [`super::compile`] turns them into their compiled forms once, when the test is loaded.

use serde::{Deserialize, Serialize};

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
