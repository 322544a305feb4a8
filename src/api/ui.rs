//! The web dashboard's one write: `POST /ui/runs`, what the launch form sends. The replica that
//! serves the page turns it into the [`super::master::Submit`] of `POST /runs` (the test read from its
//! `--tests-dir` when the form picked one, the workers parsed from the list or workers file the
//! form holds) and sends that to the leader with the caller's own token, so a launch from the page
//! needs exactly what `POST /runs` needs.

use crate::config::Strategy;
use serde::{Deserialize, Serialize};

/// `POST /ui/runs`: the launch form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// The test as YAML text (an upload or a paste).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_yaml: Option<String>,
    /// Or the name of a file in the master's `--tests-dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<String>,
    /// `host:port,...` (as `-w` takes it) or a workers file's JSON array; empty or absent: the
    /// registered pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub sync_start: bool,
}
