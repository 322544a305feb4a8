//! The master API's messages: what consoles, scripts and other replicas read from
//! `GET /cluster`, `GET /runs`, `GET /runs/{id}`, and what they send to `POST /runs` and
//! `POST /runs/{id}/stop`, with the answers. A follower asked to write answers [`NotLeader`] with a
//! 307 to the leader.

use super::worker::WorkerAddr;
use crate::config::{Strategy, TestFile};
use crate::metrics::collector::Live;
use crate::phase::Phase;
use crate::report::RunSummary;
use serde::{Deserialize, Serialize};

/// A replica's role in the raft group (the raft crate's own vocabulary, served as is).
pub use perfornium_raft::Role;

/// `GET /cluster`: the cluster as one replica sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// The answering replica's id.
    pub id: u64,
    pub role: Role,
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
    pub term: u64,
    pub members: Vec<Member>,
    pub last_applied: Option<u64>,
}

/// One replica of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub addr: String,
}

/// `POST /runs`: the test as a parsed object or as YAML text, and where to run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submit {
    #[serde(default)]
    pub test: Option<TestFile>,
    #[serde(default)]
    pub test_yaml: Option<String>,
    /// Empty or absent: the registered pool (see `pool`).
    #[serde(default)]
    pub workers: Vec<WorkerAddr>,
    /// Wins over the test's `distributed.strategy`, `distribution` and `weights` when given.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub sync_start: bool,
    /// With `workers` empty: run on the registered pool's live workers that pass this filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<super::pool::PoolFilter>,
}

/// The answer to [`Submit`] (201): the new run's id and its plan as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    pub run_id: String,
    pub plan: String,
}

/// A follower's answer to a write (307, with the same address in `Location`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotLeader {
    /// Always "not the leader".
    pub error: String,
    pub leader_id: Option<u64>,
    pub leader_addr: String,
}

/// The answer to `POST /runs/{id}/stop`: 202 while stopping, or 200 with the final phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stopping {
    pub run_id: String,
    /// True when the stop was taken (the run was still going).
    #[serde(default)]
    pub stopping: bool,
    /// The run's phase when it had already ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
}

/// `GET /runs` entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunBrief {
    pub id: String,
    pub name: String,
    pub phase: Phase,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
}

/// What a run's load is counted in: virtual users (closed models) or arrivals per second (open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadUnit {
    /// `basic` and `stepping`: shares are virtual users.
    Vus,
    /// `arrivals`: shares are arrivals per second.
    ArrivalsPerSecond,
}

impl LoadUnit {
    /// The unit's short label, as shown beside figures.
    pub fn label(self) -> &'static str {
        match self {
            LoadUnit::Vus => "VUs",
            LoadUnit::ArrivalsPerSecond => "arrivals/s",
        }
    }
}

/// `GET /runs/{id}`: phase, plan and per-worker health (in `summary.workers`), live and merged numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunView {
    pub id: String,
    pub phase: Phase,
    /// What `summary.workers[].planned` counts.
    pub unit: LoadUnit,
    pub live: Live,
    pub summary: RunSummary,
    pub start_at_ms: Option<u64>,
    /// The replica whose record this is.
    pub driven_by: u64,
    /// The regions of `distributed.geographic`, when they split the load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionView>,
}

/// One region of a geographic plan, as the run view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionView {
    pub name: String,
    pub load_percentage: f64,
    /// An IANA time-zone name, when the test gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What the region was given, in the units of `summary.workers[].planned` (thousandths for
    /// arrivals per second).
    pub planned_units: u64,
    /// Its workers' `host:port`.
    pub workers: Vec<String>,
}
