//! `distributed:`, the seed document's settings for a run across workers. Only keys the program
//! implements are accepted; any other is refused by name (for example `communication.protocol: grpc`).

use super::duration::{de_opt_duration, ser_opt_duration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

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
    /// How the load is split, as the seed writes it: `even`, `weighted` (by `weights`), `geographic`,
    /// `custom` (by `distribution`), `capacity_based`, `round_robin`. The command line's `-s` (or a
    /// submission's `strategy`) wins over it and over the maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<SplitStrategy>,
    /// Drives the controller side: the JWT it mints, the certificate it presents (see `security.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<super::security::Security>,
    /// Refused in a test file: it belongs in the worker's `--config` (see `performance.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<super::performance::InTestFile>,
}

impl SplitStrategy {
    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            SplitStrategy::Even => "even",
            SplitStrategy::Weighted => "weighted",
            SplitStrategy::Geographic => "geographic",
            SplitStrategy::Custom => "custom",
            SplitStrategy::CapacityBased => "capacity_based",
            SplitStrategy::RoundRobin => "round_robin",
        }
    }
}

/// `distributed.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitStrategy {
    /// The same share for every worker.
    Even,
    /// In proportion to `distributed.weights` (by region, `host:port` or `worker-N`).
    Weighted,
    /// Even across regions, then within each.
    Geographic,
    /// Exactly `distributed.distribution`'s VU counts.
    Custom,
    /// In proportion to each worker's `capacity`.
    CapacityBased,
    /// Unit k to worker k mod n.
    RoundRobin,
}

/// `distributed.coordination`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Coordination {
    #[serde(default)]
    pub synchronized_start: Option<bool>,
    /// Largest acceptable start skew between workers; exceeding it is reported as a warning.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_skew_tolerance: Option<Duration>,
}

/// `distributed.orchestration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Orchestration {
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat_interval: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub coordination_timeout: Option<Duration>,
    #[serde(default)]
    pub failure_handling: Option<FailureHandling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization: Option<Synchronization>,
}

/// `distributed.orchestration.synchronization`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Synchronization {
    /// Prepare every worker, then start all at one instant: the same as
    /// `coordination.synchronized_start` (either one turns it on).
    #[serde(default)]
    pub start_barrier: Option<bool>,
    /// Align stepping levels and rate-profile phases to controller instants. Not available yet
    /// (each worker times its levels from the common start), so `true` is refused by name.
    #[serde(default)]
    pub phase_synchronization: Option<bool>,
    /// Compensate each worker's clock offset (estimated from round trips) when giving it the start
    /// instant; `false` sends the controller's instant as is. Default true.
    #[serde(default)]
    pub clock_sync: Option<bool>,
}

impl Distributed {
    /// Keys that parse but cannot act yet, or contradict each other, refused by name with the reason.
    pub fn not_yet(&self) -> Result<(), String> {
        use SplitStrategy::*;
        match (self.strategy, &self.weights, &self.distribution) {
            (Some(Weighted), None, _) => {
                return Err("distributed.strategy: `weighted` needs `distributed.weights`".into())
            }
            (Some(Custom), _, None) => {
                return Err("distributed.strategy: `custom` needs `distributed.distribution`".into())
            }
            (Some(Weighted), _, Some(_)) | (Some(Custom), Some(_), _) => {
                return Err("distributed: give either `weights` (strategy `weighted`) or `distribution` (strategy `custom`), not both".into())
            }
            (Some(s @ (Even | Geographic | CapacityBased | RoundRobin)), w, d)
                if w.is_some() || d.is_some() =>
            {
                let map = if d.is_some() { "distribution" } else { "weights" };
                return Err(format!(
                    "distributed.strategy `{}` would not use `distributed.{map}`: say `strategy: {}` or drop the map",
                    s.name(),
                    if d.is_some() { "custom" } else { "weighted" }
                ));
            }
            _ => {}
        }
        let sync = self
            .orchestration
            .as_ref()
            .and_then(|o| o.synchronization.as_ref());
        if sync.and_then(|s| s.phase_synchronization) == Some(true) {
            return Err("distributed.orchestration.synchronization.phase_synchronization: not available yet; \
                 every worker times its stepping levels and rate_profile phases from the common start instant"
                .into());
        }
        Ok(())
    }
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
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
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

#[cfg(test)]
mod tests {
    #[test]
    fn durations_survive_the_trip_through_json() {
        let test = crate::config::from_str(
            "name: t\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\ndistributed:\n  coordination:\n    time_skew_tolerance: 250ms\n  orchestration:\n    heartbeat_interval: 1.5s\n    coordination_timeout: 20s\n  fault_tolerance:\n    worker_failures:\n      detection_timeout: 3s\n",
        )
        .unwrap();
        let json = serde_json::to_string(&test).unwrap();
        let back: crate::config::TestFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back.distributed, test.distributed, "{json}");
        let o = back.distributed.unwrap().orchestration.unwrap();
        assert_eq!(
            o.heartbeat_interval,
            Some(std::time::Duration::from_millis(1500))
        );
    }
}
