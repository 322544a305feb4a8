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
    /// The last entry of this replica's raft log, and the last one purged from it (covered by a
    /// snapshot): the log holds the difference.
    #[serde(default)]
    pub last_log_index: Option<u64>,
    #[serde(default)]
    pub last_purged: Option<u64>,
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
    /// Where the record went when retention moved it out of the replicated state (then
    /// `GET /runs/{id}` reads it back from there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<String>,
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
    /// The live control of the load (`PATCH /runs/{id}`), once a change was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<LoadControl>,
    /// The console views the run's test allows (`monitoring.dashboards`); both without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<ConsoleViews>,
    /// Set when the record was archived by retention and read back from this location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<String>,
}

/// `monitoring.dashboards.worker_dashboards` and `network_topology` as the console reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleViews {
    pub worker_dashboards: bool,
    pub network_topology: bool,
}

impl From<(bool, bool)> for ConsoleViews {
    fn from((worker_dashboards, network_topology): (bool, bool)) -> Self {
        ConsoleViews {
            worker_dashboards,
            network_topology,
        }
    }
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

/// `PATCH /runs/{id}`: change a running run's load. Values are targets, not deltas, so sending
/// the same body twice changes nothing the second time. Give at least one field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPatch {
    /// The client's name for this change: a repeat of the last accepted `change_id` is answered
    /// with the current state and changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// The new total of virtual users (`basic`, `stepping`, `levels` loads), 1 to 1,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_users: Option<u64>,
    /// The new total arrival rate per second (`arrivals` loads), above 0 and at most 1,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate: Option<f64>,
    /// True pauses (no new iterations or arrivals start; requests in flight finish), false resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

impl RunPatch {
    /// Why the body asks for nothing or for nonsense (answered 422), before the run is looked at.
    pub fn check(&self) -> Result<(), String> {
        if self.virtual_users.is_none() && self.arrival_rate.is_none() && self.paused.is_none() {
            return Err("give at least one of `virtual_users`, `arrival_rate` or `paused`".into());
        }
        if self.virtual_users.is_some() && self.arrival_rate.is_some() {
            return Err("give `virtual_users` or `arrival_rate`, not both".into());
        }
        if let Some(n) = self.virtual_users {
            if n == 0 || n > crate::config::MAX_VUS {
                return Err(format!(
                    "`virtual_users` must be 1 to {} (to stop the load for a while, send `paused: true`), got {n}",
                    crate::config::MAX_VUS
                ));
            }
        }
        if let Some(r) = self.arrival_rate {
            if !r.is_finite() || !(0.001..=crate::config::MAX_RATE).contains(&r) {
                return Err(format!(
                    "`arrival_rate` must be 0.001 to {} arrivals per second (to stop arrivals for a while, send `paused: true`), got {r}",
                    crate::config::MAX_RATE
                ));
            }
        }
        if self
            .change_id
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 200)
        {
            return Err("`change_id` must be 1 to 200 characters".into());
        }
        Ok(())
    }
}

/// A run's live control as recorded in its (replicated) record, and the answer to
/// `PATCH /runs/{id}` (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadControl {
    /// Goes up by one with every accepted change.
    pub generation: u64,
    /// The `change_id` of the last accepted change, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// What [`LoadControl::target`] counts.
    pub unit: LoadUnit,
    /// The total load asked for: VUs, or arrivals per second.
    pub target: f64,
    /// Whether new iterations and arrivals are held back.
    pub paused: bool,
    /// Each worker entry's share, in the load's units (VUs, or milli-arrivals/s), by the record's
    /// worker order; failed workers get 0.
    pub shares: Vec<u64>,
    /// Every running worker acknowledged this generation.
    pub applied: bool,
    /// When the change was accepted (controller clock, Unix ms).
    pub changed_ms: u64,
    /// By worker entry: the last generation it acknowledged (0: none).
    #[serde(default)]
    pub acked: Vec<u64>,
}
