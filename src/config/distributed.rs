//! `distributed:`, the seed document's settings for a run across workers. Only keys the program
//! implements are accepted; any other is refused by name (for example `communication.protocol: grpc`).

use super::duration::{de_opt_duration, de_opt_duration_ms, ser_opt_duration};
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
    /// Regions with their share of the load in percent, and their time zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geographic: Option<Geographic>,
    /// Drives the controller side: the JWT it mints, the certificate it presents (see `security.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<super::security::Security>,
    /// Refused in a test file: it belongs in the worker's `--config` (see `performance.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<super::performance::InTestFile>,
    /// Role blocks (`enabled`, `mode`, `coordinator`, `master`, `worker`): refused in a test file, they belong in `--config` (see `cluster.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<super::cluster::InTestFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<super::cluster::InTestFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<super::cluster::InTestFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<super::cluster::InTestFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<super::cluster::InTestFile>,
    /// Balancing during the run: adaptive moves, health checks, failover (see `balancing.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing: Option<super::balancing::LoadBalancing>,
    /// Per-worker measurements, alert rules and webhooks (see `monitoring.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<super::monitoring::Monitoring>,
    /// Central logs of a run (see `monitoring.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<super::monitoring::Logging>,
    /// The live feed of merged figures and where results are stored (see `results.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<super::results::Results>,
}

/// `load.distributed`, the seed's other spelling of `distributed.{strategy, distribution, weights}`.
/// Merged into the top-level block when the test is read; a key given in both places with
/// different values is refused.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadDistributed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<SplitStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<BTreeMap<String, u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<BTreeMap<String, u64>>,
}

/// Moves `load.distributed` (read from the test's YAML `value`) into `test.distributed`; an error
/// when a key is given in both places with different values. Types were checked when the test
/// parsed (`load.distributed` is a field of the raw load), so this only merges.
pub fn lift_load_distributed(
    test: &mut super::TestFile,
    value: &serde_norway::Value,
) -> Result<(), String> {
    let Some(v) = value.get("load").and_then(|l| l.get("distributed")) else {
        return Ok(());
    };
    let from_load: LoadDistributed =
        serde_norway::from_value(v.clone()).map_err(|e| format!("load.distributed: {e}"))?;
    let d = test.distributed.get_or_insert_with(Default::default);
    fn merge<T: PartialEq + Clone + std::fmt::Debug>(
        key: &str,
        top: &mut Option<T>,
        load: Option<T>,
    ) -> Result<(), String> {
        match (top.as_ref(), load) {
            (Some(a), Some(b)) if *a != b => Err(format!(
                "`load.distributed.{key}` ({b:?}) and `distributed.{key}` ({a:?}) are the same setting with different values: give one"
            )),
            (None, Some(b)) => {
                *top = Some(b);
                Ok(())
            }
            _ => Ok(()),
        }
    }
    merge("strategy", &mut d.strategy, from_load.strategy)?;
    merge("distribution", &mut d.distribution, from_load.distribution)?;
    merge("weights", &mut d.weights, from_load.weights)?;
    Ok(())
}

/// `distributed.geographic`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Geographic {
    /// `false` turns the regions off (the plan ignores them and says so); default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<Region>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordination: Option<GeoCoordination>,
}

impl Geographic {
    /// True when the regions split the load.
    pub fn active(&self) -> bool {
        self.enabled != Some(false) && !self.regions.is_empty()
    }
}

/// One region of `distributed.geographic.regions`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub name: String,
    /// `worker-N` (1-based, list order), `host:port`, or a worker's `id` from the workers file.
    /// Empty: the workers whose `region` is this region's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<String>,
    /// This region's share of the load, in percent; the regions' shares add up to 100.
    #[serde(deserialize_with = "de_percentage")]
    pub load_percentage: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZone>,
}

/// An IANA time-zone name (`Europe/London`), checked against the tz database compiled into the
/// program (the `chrono-tz` crate), so it does not depend on the machine's /usr/share/zoneinfo.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(pub String);

impl TryFrom<String> for TimeZone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.parse::<chrono_tz::Tz>() {
            Ok(tz) => Ok(TimeZone(tz.name().to_string())),
            Err(_) => Err(format!(
                "`{s}` is not an IANA time-zone name (such as `Europe/London`, `America/New_York` or `UTC`)"
            )),
        }
    }
}

impl From<TimeZone> for String {
    fn from(t: TimeZone) -> String {
        t.0
    }
}

fn de_percentage<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let p = f64::deserialize(d)?;
    if p.is_finite() && p > 0.0 && p <= 100.0 {
        Ok(p)
    } else {
        Err(serde::de::Error::custom(format!(
            "load_percentage must be a percentage above 0 and at most 100, got {p}"
        )))
    }
}

/// `distributed.geographic.coordination`: the same settings as `distributed.coordination`, as the
/// seed writes them under `geographic` (a bare number of `time_skew_tolerance` is milliseconds).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeoCoordination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronized_start: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration_ms",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_skew_tolerance: Option<Duration>,
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
    /// Time every worker's schedule (VU starts, stepping levels, arrivals, `rate_profile` and the
    /// phases of a list) from the one start instant the controller gives, instead of from when each
    /// worker's engine is ready or its previous phase drained. Implies a synchronized start.
    #[serde(default)]
    pub phase_synchronization: Option<bool>,
    /// Compensate each worker's clock offset (estimated from round trips) when giving it the start
    /// instant; `false` sends the controller's instant as is. Default true.
    #[serde(default)]
    pub clock_sync: Option<bool>,
}

impl Distributed {
    /// Keys that parse but cannot act, or contradict each other, refused by name with the reason.
    pub fn not_yet(&self) -> Result<(), String> {
        self.check_split()?;
        self.check_geographic()?;
        self.check_orchestration()?;
        self.check_fault_tolerance()?;
        self.load_balancing.as_ref().map_or(Ok(()), |l| l.check())?;
        self.logging.as_ref().map_or(Ok(()), |l| l.check())?;
        self.communication.as_ref().map_or(Ok(()), |c| c.check())?;
        self.data_consistency.as_ref().map_or(Ok(()), |d| d.check())
    }

    fn check_split(&self) -> Result<(), String> {
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
            // The seed's `load.distributed` writes an even split out in full: accepted when it is
            // one (every count the same), and the counts then name the workers.
            (Some(Even), None, Some(d)) if d.values().collect::<std::collections::BTreeSet<_>>().len() <= 1 => {}
            (Some(s @ (Even | Geographic | CapacityBased | RoundRobin)), w, d)
                if w.is_some() || d.is_some() =>
            {
                let map = if d.is_some() { "distribution" } else { "weights" };
                let even_note = if s == Even && d.is_some() {
                    " (with `even`, `distribution` must give every worker the same count)"
                } else {
                    ""
                };
                return Err(format!(
                    "distributed.strategy `{}` would not use `distributed.{map}`{even_note}: say `strategy: {}` or drop the map",
                    s.name(),
                    if d.is_some() { "custom" } else { "weighted" }
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn check_geographic(&self) -> Result<(), String> {
        let Some(g) = &self.geographic else {
            return Ok(());
        };
        if g.enabled == Some(true) && g.regions.is_empty() {
            return Err("distributed.geographic: `enabled: true` needs `regions` (or use `strategy: geographic`, which splits evenly by each worker's `region` from the workers file)".into());
        }
        if g.active() {
            if let Some(s) = self.strategy.filter(|s| *s != SplitStrategy::Geographic) {
                return Err(format!(
                    "distributed.geographic.regions split the load by `load_percentage`, but distributed.strategy is `{}`: say `strategy: geographic`, drop it, or set `geographic.enabled: false`",
                    s.name()
                ));
            }
            if self.weights.is_some() || self.distribution.is_some() {
                return Err("distributed.geographic.regions split the load by `load_percentage`: drop `distributed.weights`/`distribution`, or set `geographic.enabled: false`".into());
            }
        }
        let mut names = std::collections::BTreeSet::new();
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (i, r) in g.regions.iter().enumerate() {
            let at = format!("distributed.geographic.regions[{i}]");
            if r.name.trim().is_empty() {
                return Err(format!("{at}: `name` is empty"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(format!("{at}: region `{}` is named twice", r.name));
            }
            for w in &r.workers {
                if let Some(other) = owner.insert(w.as_str(), r.name.as_str()) {
                    return Err(format!(
                        "{at}: worker `{w}` is in region `{other}` and in region `{}`; put it in one",
                        r.name
                    ));
                }
            }
        }
        if !g.regions.is_empty() {
            let sum: f64 = g.regions.iter().map(|r| r.load_percentage).sum();
            if (sum - 100.0).abs() > 1e-6 {
                return Err(format!(
                    "distributed.geographic.regions: the load_percentage values add up to {sum}, not 100"
                ));
            }
            for r in &g.regions {
                let thousandths = r.load_percentage * 1000.0;
                if (thousandths - thousandths.round()).abs() > 1e-6 {
                    return Err(format!(
                        "distributed.geographic.regions: region `{}`: load_percentage {} has more than 3 decimals",
                        r.name, r.load_percentage
                    ));
                }
            }
        }
        if let (Some(a), Some(b)) = (&g.coordination, &self.coordination) {
            let differ = |x: Option<bool>, y: Option<bool>| x.is_some() && y.is_some() && x != y;
            if differ(a.synchronized_start, b.synchronized_start)
                || (a.time_skew_tolerance.is_some()
                    && b.time_skew_tolerance.is_some()
                    && a.time_skew_tolerance != b.time_skew_tolerance)
            {
                return Err("distributed.geographic.coordination and distributed.coordination are the same settings with different values: give them once".into());
            }
        }
        Ok(())
    }

    fn check_orchestration(&self) -> Result<(), String> {
        let orch = self.orchestration.as_ref();
        let handling = orch.and_then(|o| o.failure_handling.as_ref());
        let degrade = self.degradation();
        if let (Some(a), Some(b)) = (
            handling.and_then(|h| h.graceful_degradation),
            degrade.and_then(|g| g.enabled),
        ) {
            if a != b {
                return Err("distributed.orchestration.failure_handling.graceful_degradation and distributed.fault_tolerance.worker_failures.graceful_degradation.enabled are the same setting with different values: give one".into());
            }
        }
        let graceful = handling
            .and_then(|h| h.graceful_degradation)
            .or(degrade.and_then(|g| g.enabled));
        if let (Some(g), Some(c)) = (
            graceful,
            handling.and_then(|h| h.continue_on_partial_failure),
        ) {
            if g != c {
                return Err(format!(
                    "distributed: graceful_degradation ({g}) means the same as continue_on_partial_failure ({c}): going on with the surviving workers; give them the same value"
                ));
            }
        }
        Ok(())
    }

    /// `fault_tolerance.worker_failures.graceful_degradation`, if given.
    pub fn degradation(&self) -> Option<&GracefulDegradation> {
        self.fault_tolerance
            .as_ref()
            .and_then(|f| f.worker_failures.as_ref())
            .and_then(|w| w.graceful_degradation.as_ref())
    }

    fn check_fault_tolerance(&self) -> Result<(), String> {
        let Some(ft) = &self.fault_tolerance else {
            return Ok(());
        };
        let wf = ft.worker_failures.as_ref();
        if let Some(g) = wf.and_then(|w| w.graceful_degradation.as_ref()) {
            if g.min_workers_threshold == Some(0) {
                return Err("distributed.fault_tolerance.worker_failures.graceful_degradation.min_workers_threshold: must be at least 1".into());
            }
            if g.scale_down_load == Some(true) && g.enabled == Some(false) {
                return Err("distributed.fault_tolerance.worker_failures.graceful_degradation: `scale_down_load: true` needs `enabled` (the run goes on with less load)".into());
            }
        }
        if let Some(np) = &ft.network_partitions {
            let at = "distributed.fault_tolerance.network_partitions";
            if let (Some(a), Some(b)) = (np.detection_timeout, wf.and_then(|w| w.detection_timeout))
            {
                if a != b {
                    return Err(format!("{at}.detection_timeout and worker_failures.detection_timeout are the same setting (a worker unheard that long is failed) with different values: give one"));
                }
            }
            if np.split_brain_prevention == Some(false) {
                return Err(format!("{at}.split_brain_prevention: cannot be turned off; the masters' raft log gives it (one leader per term drives a run)"));
            }
            if let Some(r) = &np.recovery {
                if r.state_reconciliation == Some(false) {
                    return Err(format!("{at}.recovery.state_reconciliation: cannot be turned off; a re-attached worker's held batches are always merged, each exactly once, so nothing it measured is lost or counted twice"));
                }
                if let Some(c) = r
                    .conflict_resolution
                    .as_deref()
                    .filter(|c| *c != "master_wins")
                {
                    return Err(format!("{at}.recovery.conflict_resolution: `{c}` is not supported; only `master_wins` (the master's record is the run's one state; workers hold only unmerged batches)"));
                }
            }
        }
        if let Some(m) = &ft.master_failure {
            m.check()?;
        }
        Ok(())
    }
}

impl Distributed {
    /// The `distributed:` block as understood, a line per section (`perfornium validate --explain`).
    pub fn explain(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let split = match (self.strategy, &self.distribution, &self.weights) {
            (_, _, _) if self.geographic.as_ref().is_some_and(Geographic::active) => {
                "by region, each its load_percentage (floor per region, the remainder one unit each to the regions in the order written; within a region evenly, the remainder to its first workers)".to_string()
            }
            (Some(s), Some(d), _) => format!("{} with exact VU counts per worker {d:?}", s.name()),
            (None, Some(d), _) => format!("custom: exact VU counts per worker {d:?}"),
            (_, _, Some(w)) => format!("weighted by {w:?}"),
            (Some(s), None, None) => s.name().to_string(),
            (None, None, None) => "capacity_based (the default)".to_string(),
        };
        let _ = writeln!(
            out,
            "distributed: split {split}; the command line's -s wins over the test"
        );
        if let Some(g) = &self.geographic {
            if !g.active() {
                let _ = writeln!(out, "  geographic: off (enabled: false); regions unused");
            }
            for r in g.regions.iter().filter(|_| g.active()) {
                let _ = writeln!(
                    out,
                    "  region `{}`: {}% of the load, workers {}, timezone {}",
                    r.name,
                    r.load_percentage,
                    if r.workers.is_empty() {
                        format!("those with region `{}` in the workers file", r.name)
                    } else {
                        r.workers.join(", ")
                    },
                    r.timezone.as_ref().map_or("not given", |t| t.0.as_str())
                );
            }
        }
        let coord = self.coordination.clone().unwrap_or_default();
        let geo = self
            .geographic
            .as_ref()
            .and_then(|g| g.coordination.clone())
            .unwrap_or_default();
        let orch = self.orchestration.clone().unwrap_or_default();
        let sync = orch.synchronization.clone().unwrap_or_default();
        let phased = sync.phase_synchronization == Some(true);
        let barrier = coord
            .synchronized_start
            .or(geo.synchronized_start)
            .unwrap_or(false)
            || sync.start_barrier.unwrap_or(false)
            || phased;
        let _ = writeln!(
            out,
            "  orchestration: {}{}, clock offsets {}, prepare and start bounded by {} (coordination_timeout), heartbeat every {}{}",
            if barrier {
                "every worker prepared, then all started at one instant (start barrier)"
            } else {
                "each worker started as soon as it is prepared"
            },
            if phased {
                "; every worker's stepping levels, arrivals, rate_profile and phases timed from that instant (phase_synchronization)"
            } else {
                ""
            },
            if sync.clock_sync == Some(false) { "not compensated (clock_sync: false)" } else { "compensated" },
            orch.coordination_timeout.map_or("60000ms (default)".into(), ms),
            orch.heartbeat_interval.map_or("5000ms (default)".into(), ms),
            coord
                .time_skew_tolerance
                .or(geo.time_skew_tolerance)
                .map(|d| format!(", start skew over {} reported as a warning", ms(d)))
                .unwrap_or_default()
        );
        let handling = orch.failure_handling.clone().unwrap_or_default();
        let wf = self
            .fault_tolerance
            .as_ref()
            .and_then(|f| f.worker_failures.clone())
            .unwrap_or_default();
        let degrade = wf.graceful_degradation.clone().unwrap_or_default();
        let goes_on = handling
            .continue_on_partial_failure
            .or(handling.graceful_degradation)
            .or(degrade.enabled)
            .unwrap_or(true);
        let np = self
            .fault_tolerance
            .as_ref()
            .and_then(|f| f.network_partitions.clone())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  worker failures: a worker unheard for {} is failed; the run {}, and fails when more than {}% of the workers fail{}; a failed worker's share {}{}{}",
            wf.detection_timeout
                .or(np.detection_timeout)
                .map_or("3 heartbeats".into(), ms),
            if goes_on { "goes on with the survivors (graceful degradation)" } else { "stops at the first failure (no graceful degradation)" },
            handling
                .worker_failure_threshold
                .or(wf.max_failure_rate)
                .unwrap_or(20.0),
            degrade
                .min_workers_threshold
                .filter(|_| degrade.scale_down_load != Some(true))
                .map(|n| format!(" or fewer than {n} are running"))
                .unwrap_or_default(),
            if wf.recovery.as_ref().and_then(|r| r.load_redistribution) == Some(true) {
                "goes to the survivors"
            } else {
                "is dropped"
            },
            if degrade.scale_down_load == Some(true) {
                format!(
                    "; below {} running workers the load is scaled down (failed shares dropped) instead of failing the run",
                    degrade.min_workers_threshold.unwrap_or(1)
                )
            } else {
                String::new()
            },
            if wf.recovery.as_ref().and_then(|r| r.auto_restart) == Some(true) {
                "; a failed worker that comes back as a new process (at its address, or registering again under its id from another) is prepared and started again for the time left (auto_restart): with its share, or, when that went to the survivors, re-planned with them through live control, the total unchanged; not when its share was dropped"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  network partitions: detected by heartbeat (the controller's pulls); {}; split-brain prevention: the masters' raft log gives it (one leader per term drives a run); conflicts: master_wins",
            if np.recovery.as_ref().and_then(|r| r.auto_reconnect) == Some(false) {
                "a failed worker is not asked again (auto_reconnect: false)"
            } else {
                "a failed worker that answers again is re-attached and its held batches merged, each exactly once"
            }
        );
        if let Some(m) = self
            .fault_tolerance
            .as_ref()
            .and_then(|f| f.master_failure.as_ref())
        {
            let f = m.failover.clone().unwrap_or_default();
            let p = m.state_persistence.clone().unwrap_or_default();
            let _ = writeln!(
                out,
                "  master failure: {}{}; leader election by raft{}; the run record persists in the masters' raft log and snapshots, saved at every pull (1s){}; checked when the test is submitted",
                if m.high_availability == Some(true) { "a replica cluster is required" } else { "one master or a replica cluster" },
                f.backup_masters
                    .map(|n| format!(", with exactly {} masters ({n} backups)", n + 1))
                    .unwrap_or_default(),
                f.election_timeout
                    .map(|d| format!(", the cluster's election timeout at most {}", ms(d)))
                    .unwrap_or_default(),
                p.backup_interval
                    .map(|d| format!(", well within backup_interval {}", ms(d)))
                    .unwrap_or_default()
            );
        }
        out
    }
}

/// `distributed.orchestration.failure_handling`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FailureHandling {
    /// Percent of workers that may fail before the run fails.
    #[serde(
        default,
        deserialize_with = "de_opt_percent",
        skip_serializing_if = "Option::is_none"
    )]
    pub worker_failure_threshold: Option<f64>,
    #[serde(default)]
    pub continue_on_partial_failure: Option<bool>,
    /// The same setting as `fault_tolerance.worker_failures.graceful_degradation.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_degradation: Option<bool>,
}

fn de_opt_percent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let p = f64::deserialize(d)?;
    if p.is_finite() && (0.0..=100.0).contains(&p) {
        Ok(Some(p))
    } else {
        Err(serde::de::Error::custom(format!(
            "expected a percentage from 0 to 100, got {p}"
        )))
    }
}

/// `distributed.fault_tolerance`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultTolerance {
    #[serde(default)]
    pub worker_failures: Option<WorkerFailures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_partitions: Option<NetworkPartitions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_failure: Option<MasterFailure>,
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
    #[serde(
        default,
        deserialize_with = "de_opt_percent",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_failure_rate: Option<f64>,
    #[serde(default)]
    pub recovery: Option<Recovery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_degradation: Option<GracefulDegradation>,
}

/// `distributed.fault_tolerance.worker_failures.recovery`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Re-assign a failed worker's share (VUs, arrival rate, CSV slice) to the survivors.
    #[serde(default)]
    pub load_redistribution: Option<bool>,
    /// A failed worker back as a new process (it answers without the run, or registers again
    /// under its id from another address) is prepared and started again for the time left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_restart: Option<bool>,
    /// An idle registered worker takes over a failed worker's share (see `balancing::Replacements`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_workers: Option<super::balancing::Replacements>,
}

/// `distributed.fault_tolerance.worker_failures.graceful_degradation`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GracefulDegradation {
    /// Keep running with the survivors when a worker fails (`continue_on_partial_failure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fewest workers that must be running; below it the run fails, or, with `scale_down_load`,
    /// goes on with less load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_workers_threshold: Option<u32>,
    /// Below `min_workers_threshold`, a failed worker's share is dropped (the total load goes down
    /// by that share) instead of going to the survivors, and the run goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_load: Option<bool>,
}

/// `distributed.fault_tolerance.network_partitions`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkPartitions {
    /// Only `heartbeat` (a worker unheard for `detection_timeout` is failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_method: Option<DetectionMethod>,
    /// The same setting as `worker_failures.detection_timeout`.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub detection_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<PartitionRecovery>,
    /// What the raft replica cluster gives: `true` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_brain_prevention: Option<bool>,
}

/// How a silent worker is noticed.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DetectionMethod {
    Heartbeat,
}

/// `distributed.fault_tolerance.network_partitions.recovery`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartitionRecovery {
    /// A failed worker is still asked for its batches now and then, and re-attached when it
    /// answers; `false`: a failed worker is never asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_reconnect: Option<bool>,
    /// A re-attached worker's held batches are merged, each exactly once (by sequence number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reconciliation: Option<bool>,
    /// Only `master_wins`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_resolution: Option<String>,
}

/// `distributed.fault_tolerance.master_failure`: the replica cluster (`perfornium master --peers`),
/// checked when the test is submitted.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MasterFailure {
    /// `true` needs a replica cluster (more than one master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_availability: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_persistence: Option<StatePersistence>,
}

impl MasterFailure {
    /// Why the block cannot act, if it cannot (the same in a test and in a master's `--config`).
    pub fn check(&self) -> Result<(), String> {
        let m = self;
        let at = "distributed.fault_tolerance.master_failure";
        if let Some(a) = m
            .failover
            .as_ref()
            .and_then(|f| f.election_algorithm.as_deref())
            .filter(|a| *a != "raft")
        {
            return Err(format!("{at}.failover.election_algorithm: `{a}` is not supported; the masters elect their leader with raft (`raft`)"));
        }
        if let Some(p) = &m.state_persistence {
            if p.enabled == Some(false) {
                return Err(format!("{at}.state_persistence.enabled: cannot be turned off; the run record is written through the masters' raft log at every step"));
            }
            if let Some(b) = p.backend.as_deref().filter(|b| *b != "raft") {
                return Err(format!("{at}.state_persistence.backend: `{b}` is not supported; runs persist in the masters' own raft log and snapshots (`raft`); an external store (etcd, a database) is not used"));
            }
            if p.backup_interval
                .is_some_and(|d| d < Duration::from_secs(1))
            {
                return Err(format!("{at}.state_persistence.backup_interval: the run record is saved at every pull, once a second; give 1s or more"));
            }
        }
        Ok(())
    }
}

/// `distributed.fault_tolerance.master_failure.failover`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    /// Masters besides the leader: the cluster's replica count minus one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_masters: Option<u32>,
    /// Longest acceptable election: the cluster's own election timeout must not exceed it.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub election_timeout: Option<Duration>,
    /// Only `raft`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_algorithm: Option<String>,
}

/// `distributed.fault_tolerance.master_failure.state_persistence`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatePersistence {
    /// The run record is written through raft at every transition and pull; `false` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Only `raft` (each master's own log and snapshot on disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Longest time between two saves of the run record; it is saved at every pull (every
    /// second), so anything shorter than a second is refused.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub backup_interval: Option<Duration>,
}

/// `distributed.data_consistency`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConsistency {
    #[serde(default)]
    pub csv_data: Option<CsvDistribution>,
    /// Global variables: extractions named `global.NAME` shared by every VU of every worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<VariableSync>,
    /// Parsed so the seed's spelling is known; a shared state is refused (see
    /// [`DataConsistency::check`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_management: Option<StateManagement>,
}

/// `distributed.data_consistency.csv_data`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvDistribution {
    #[serde(default)]
    pub distribution_mode: CsvDistributionMode,
    /// How `partition` splits the rows; `round_robin` when not given.
    #[serde(default)]
    pub partition_strategy: Option<PartitionStrategy>,
    /// The CSV column whose value picks the worker, for `partition_strategy: hash` (ours; the seed
    /// names no key for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
}

/// How CSV rows reach workers.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CsvDistributionMode {
    /// Every worker gets every row (same as `replicate`).
    #[default]
    Shared,
    /// Each worker gets a disjoint slice, by `partition_strategy`.
    Partition,
    Replicate,
}

/// How `partition` splits the rows among the n workers taking part (ranked in the order the
/// workers are listed).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PartitionStrategy {
    /// Row i to worker i mod n.
    #[default]
    RoundRobin,
    /// Contiguous blocks in file order: the first `len mod n` workers get one row more.
    #[serde(alias = "contiguous")]
    Block,
    /// By a hash (FNV-1a, 64 bits) of the row's `partition_key` column, modulo n: rows with the
    /// same value go to the same worker.
    Hash,
}

/// `distributed.data_consistency.variables`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariableSync {
    /// `true` lets extractions into `global.NAME` set a value every VU of every worker reads as
    /// `{{global.NAME}}`; without it such extractions are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_variables: Option<bool>,
    /// `true` (the default): a later value replaces the earlier everywhere; `false`: the first
    /// value set stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable_synchronization: Option<bool>,
}

/// `distributed.data_consistency.state_management`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateManagement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_backend: Option<String>,
    /// Seconds: every write sets the key to expire this long after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_ttl: Option<u64>,
    /// Where the redis server is (ours; the seed names none): `redis://HOST:PORT[/DB]`, by default
    /// `redis://127.0.0.1:6379/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

/// The redis server used when `redis_url` is not given.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";

impl StateManagement {
    /// Whether the shared state is on (`shared_state: true`).
    pub fn on(&self) -> bool {
        self.shared_state == Some(true)
    }

    /// The redis server's address.
    pub fn redis_url(&self) -> &str {
        self.redis_url.as_deref().unwrap_or(DEFAULT_REDIS_URL)
    }
}

/// A `{{state.OP(NAME)}}` reference in a step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateRef {
    /// `incr` or `get` once checked (see [`check_state_refs`]).
    pub op: String,
    pub name: String,
    /// The text between `{{` and `}}`, trimmed: the engine puts the value under this name.
    pub expr: String,
}

/// The `{{state.OP(NAME)}}` references in `text`, each once, in order of first use.
pub fn state_refs(text: &str) -> Vec<StateRef> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\{\{\s*(state\.([A-Za-z_][A-Za-z0-9_]*)\(([^(){}]*)\))\s*\}\}")
            .expect("state reference pattern")
    });
    let mut out: Vec<StateRef> = Vec::new();
    for c in re.captures_iter(text) {
        let r = StateRef {
            op: c[2].to_string(),
            name: c[3].trim().to_string(),
            expr: c[1].to_string(),
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// The state references of an HTTP step (in any of its texts: path, headers, body, ...).
pub fn step_state_refs(step: &super::Step) -> Vec<StateRef> {
    serde_json::to_string(step)
        .map(|t| state_refs(&t))
        .unwrap_or_default()
}

/// `{{state.incr(NAME)}}` and `{{state.get(NAME)}}` need `state_management.shared_state: true`;
/// any other `state.` call is refused.
pub fn check_state_refs(test: &super::TestFile) -> Result<(), String> {
    let on = test
        .distributed
        .as_ref()
        .and_then(|d| d.data_consistency.as_ref())
        .and_then(|d| d.state_management.as_ref())
        .is_some_and(StateManagement::on);
    let elsewhere = |what: &str, text: Option<String>| {
        match text.as_deref().map(state_refs) {
        Some(refs) if !refs.is_empty() => Err(format!("{what}: `{{{{{}}}}}` acts only in a step's own text (path, headers, query, body), where each request resolves it", refs[0].expr)),
        _ => Ok(()),
    }
    };
    elsewhere(
        "global.headers",
        serde_json::to_string(&test.global.headers).ok(),
    )?;
    for s in &test.scenarios {
        elsewhere(
            &format!("scenario `{}`: variables", s.name),
            serde_json::to_string(&s.variables).ok(),
        )?;
        for step in &s.steps {
            let super::Step::Http(h) = step else { continue };
            for r in step_state_refs(step) {
                let at = format!("step `{}`: `{{{{{}}}}}`", h.name, r.expr);
                if !matches!(r.op.as_str(), "incr" | "get") {
                    return Err(format!(
                        "{at}: unknown state operation `{}` (known: incr, get)",
                        r.op
                    ));
                }
                if r.name.is_empty()
                    || !r
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
                {
                    return Err(format!(
                        "{at}: the state name must be letters, digits, `_`, `-`, `.` or `:`"
                    ));
                }
                if !on {
                    return Err(format!("{at} uses the shared state and needs `distributed.data_consistency.state_management.shared_state: true`"));
                }
            }
        }
    }
    Ok(())
}

impl DataConsistency {
    /// Keys that parse but cannot act, or contradict each other, refused by name with the reason.
    pub fn check(&self) -> Result<(), String> {
        let at = "distributed.data_consistency";
        if let Some(c) = &self.csv_data {
            let strategy = c.partition_strategy;
            if c.distribution_mode != CsvDistributionMode::Partition && strategy.is_some() {
                return Err(format!("{at}.csv_data.partition_strategy: only acts with `distribution_mode: partition` (with `{}` every worker gets every row)", mode_name(c.distribution_mode)));
            }
            match (strategy, &c.partition_key) {
                (Some(PartitionStrategy::Hash), None) => {
                    return Err(format!("{at}.csv_data.partition_strategy: `hash` needs `partition_key`, the CSV column whose value picks the worker"));
                }
                (Some(PartitionStrategy::Hash), Some(k)) if k.trim().is_empty() => {
                    return Err(format!("{at}.csv_data.partition_key: empty"));
                }
                (s, Some(_)) if s != Some(PartitionStrategy::Hash) => {
                    return Err(format!(
                        "{at}.csv_data.partition_key: only acts with `partition_strategy: hash`"
                    ));
                }
                _ => {}
            }
        }
        if let Some(v) = &self.variables {
            if v.variable_synchronization.is_some() && v.global_variables != Some(true) {
                return Err(format!("{at}.variables.variable_synchronization: only acts with `global_variables: true`"));
            }
        }
        if let Some(s) = &self.state_management {
            let at = format!("{at}.state_management");
            match s.state_backend.as_deref() {
                Some(b @ ("etcd" | "database")) => {
                    return Err(format!("{at}.state_backend: `{b}` is not supported: the counters need atomic increments that we build on raft (the master cluster itself) or redis (known: raft, redis)"));
                }
                Some("redis") => {}
                Some("raft") | None if s.on() => {
                    if s.state_ttl.is_some() {
                        return Err(format!("{at}.state_ttl: only acts with `state_backend: redis`; raft counters belong to one run and end with it"));
                    }
                    if s.redis_url.is_some() {
                        return Err(format!(
                            "{at}.redis_url: only acts with `state_backend: redis`"
                        ));
                    }
                }
                Some("raft") | None => {}
                Some(other) => {
                    return Err(format!(
                        "{at}.state_backend: unknown backend `{other}` (known: raft, redis)"
                    ));
                }
            }
            if !s.on() {
                for (key, set) in [
                    ("state_backend", s.state_backend.is_some()),
                    ("state_ttl", s.state_ttl.is_some()),
                    ("redis_url", s.redis_url.is_some()),
                ] {
                    if set {
                        return Err(format!("{at}.{key}: only acts with `shared_state: true`"));
                    }
                }
            }
            if s.state_ttl == Some(0) {
                return Err(format!("{at}.state_ttl: must be at least 1 second"));
            }
            if let Some(u) = &s.redis_url {
                if !(u.starts_with("redis://") || u.starts_with("unix://")) {
                    return Err(format!(
                        "{at}.redis_url: `{u}` is not a `redis://HOST:PORT` address"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl DataConsistency {
    /// `validate --explain` lines: how CSV rows reach the workers.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        if let Some(v) = self
            .variables
            .as_ref()
            .filter(|v| v.global_variables == Some(true))
        {
            let rule = if v.variable_synchronization == Some(false) {
                "the first value set stays (variable_synchronization: false)"
            } else {
                "a later value replaces the earlier everywhere (variable_synchronization)"
            };
            out.push_str(&format!("  global variables: extractions named `global.NAME` are read as {{{{global.NAME}}}} by every VU of every worker; the controller reads and merges the workers' values every 100 ms and sends them on (workers never call it); {rule}\n"));
        }
        if let Some(s) = self.state_management.as_ref().filter(|s| s.on()) {
            let ttl = s.state_ttl.map_or("no expiry".to_string(), |t| {
                format!("each write sets the key to expire {t} s later (state_ttl)")
            });
            if s.state_backend.as_deref() == Some("redis") {
                out.push_str(&format!("  shared state: redis at {} (every worker connects to it directly); {{{{state.incr(NAME)}}}} adds 1 to counter NAME once per request and every use in that request reads the new value; {{{{state.get(NAME)}}}} reads its value at the request (empty if unset); keys are `perfornium:RUN_ID:NAME`; {ttl}\n", s.redis_url()));
            } else {
                out.push_str("  shared state: raft (the controller holds the counters: the master cluster's replicated state, or the embedded master of `distributed`; workers get values on the controller's calls, never dialling out); {{state.incr(NAME)}} gives each request a value of counter NAME that no other request of the run gets (every use in that request reads it): the controller grants each worker ranges of values every 100 ms, sized to its rate, and saves each grant through raft before sending it, so a leader failover never hands a value out twice; values start at 1 and are unique but not dense (a range's unused tail is skipped, and a range saved by a leader that died before sending it is lost) and increase within one worker, not across workers; a VU whose worker holds no value waits for the next grant; the exact count of values claimed is {{state.get(NAME)}}'s meaning: the run-wide count as the controller last summed it (up to about 100 ms old, not counting this worker's newest claims; 0 if none); in `perfornium run` (no workers) the counter is this process's own: 1, 2, 3, … and `get` is exact\n");
            }
        }
        let Some(c) = &self.csv_data else {
            return out;
        };
        let how = match (c.distribution_mode, c.partition_strategy.unwrap_or_default()) {
            (CsvDistributionMode::Partition, PartitionStrategy::RoundRobin) => {
                "partition, round_robin: row i to the i-th worker (in the order listed) modulo the workers taking part".to_string()
            }
            (CsvDistributionMode::Partition, PartitionStrategy::Block) => {
                "partition, block: contiguous runs of rows in file order, the first (rows mod workers) workers one row more".to_string()
            }
            (CsvDistributionMode::Partition, PartitionStrategy::Hash) => format!(
                "partition, hash of column `{}` (FNV-1a mod workers): rows with the same value go to the same worker; a worker may get none",
                c.partition_key.as_deref().unwrap_or("")
            ),
            (m, _) => format!("{}: every worker gets every row", mode_name(m)),
        };
        out.push_str(&format!(
            "  csv data: {how}; the controller reads the file and sends each worker its rows\n"
        ));
        out
    }
}

/// An extraction into `global.NAME` needs `data_consistency.variables.global_variables: true`.
pub fn check_global_extractions(test: &super::TestFile) -> Result<(), String> {
    let on = test
        .distributed
        .as_ref()
        .and_then(|d| d.data_consistency.as_ref())
        .and_then(|d| d.variables.as_ref())
        .and_then(|v| v.global_variables)
        == Some(true);
    for s in &test.scenarios {
        for step in &s.steps {
            if let super::Step::Http(h) = step {
                if let Some(e) = h.extract.iter().find(|e| e.name.starts_with("global.")) {
                    if !on {
                        return Err(format!("step `{}`: extraction `{}` is global (its name starts with `global.`) and needs `distributed.data_consistency.variables.global_variables: true`", h.name, e.name));
                    }
                    if e.name.len() == "global.".len() {
                        return Err(format!(
                            "step `{}`: extraction `global.` needs a name after `global.`",
                            h.name
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn mode_name(m: CsvDistributionMode) -> &'static str {
    match m {
        CsvDistributionMode::Shared => "shared",
        CsvDistributionMode::Partition => "partition",
        CsvDistributionMode::Replicate => "replicate",
    }
}

pub use super::communication::{
    AuthKind, Authentication, Communication, HttpCommunication, Protocol,
};

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
