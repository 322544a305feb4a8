//! `distributed.load_balancing`: balancing the load between workers while a run goes on.
//!
//! - `algorithm: adaptive` moves VUs (or arrival rate) away from a worker whose measured latency
//!   (p95 of the batches merged from it at each pull) crosses `metrics_based.response_time_threshold`,
//!   or whose own process CPU (`cpu_threshold`, percent of its host) or memory (`memory_threshold`,
//!   its resident memory in percent of its host's) in the sample sent with its last pull is at or
//!   over the threshold, to the workers under every threshold, without changing the total, through
//!   the same live-control path as `PATCH /runs/{id}` (recorded as run events). `round_robin` moves
//!   nothing during the run (the plan's split stays); thresholds without `adaptive` are refused.
//! - `health_checks.interval` acts as `orchestration.heartbeat_interval` and `health_checks.timeout`
//!   as `fault_tolerance.worker_failures.detection_timeout` when those are not given: the
//!   controller pulls every worker once a second, each pull bounded by the interval (0.5–5 s), and
//!   a worker silent for the timeout has failed.
//! - `failover.redistribute_load` acts as `worker_failures.recovery.load_redistribution` when that
//!   is not given (`failover.enabled: false` turns it off), and `failover.worker_replacement` as
//!   `worker_failures.recovery.replacement_workers` ([`Replacements`]): an idle registered worker
//!   takes over a failed worker's share.
//!
//! - `algorithm: least_loaded` plans the split by reported load (see
//!   `control::balance::least_loaded`): each worker's weight is its capacity times its host's spare
//!   CPU under `cpu_threshold` (90 % when not given), the shares follow the weights within each
//!   worker's `max_vus` / `max_rps`. It moves nothing during the run.

use super::duration::{de_opt_duration, ser_opt_duration};
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// `distributed.load_balancing`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancing {
    /// `false` turns the whole block off (it is still checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Algorithm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<HealthChecks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_based: Option<MetricsBased>,
}

/// `load_balancing.algorithm`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// No moves during the run.
    RoundRobin,
    /// Moves load away from workers over `response_time_threshold`.
    Adaptive,
    /// Plans the split by each worker's reported host CPU (spare headroom); no moves during the run.
    LeastLoaded,
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "round_robin" => Ok(Algorithm::RoundRobin),
            "adaptive" => Ok(Algorithm::Adaptive),
            "least_loaded" => Ok(Algorithm::LeastLoaded),
            other => Err(serde::de::Error::custom(format!(
                "load_balancing.algorithm: unknown `{other}`; expected `round_robin`, `least_loaded` or `adaptive`"
            ))),
        }
    }
}

/// `load_balancing.health_checks`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthChecks {
    #[serde(
        default,
        deserialize_with = "always_on",
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

fn always_on<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match bool::deserialize(d)? {
        true => Ok(Some(true)),
        false => Err(serde::de::Error::custom(
            "load_balancing.health_checks.enabled: `false` is not supported: the controller's \
             pulls of every worker are its health checks, and a run cannot go without them",
        )),
    }
}

/// `load_balancing.failover`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redistribute_load: Option<bool>,
    /// An idle registered worker takes over a failed worker's share (as
    /// `recovery.replacement_workers: true` when that is not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_replacement: Option<bool>,
}

/// `fault_tolerance.worker_failures.recovery.replacement_workers`: whether, and how many times in a
/// run, an idle registered worker takes over a failed worker's share. The seed writes `true`; a
/// number caps the replacements (past it a failed share goes to the survivors, or is dropped, as
/// without replacement). The pool is not held back for it: a worker is idle when its lease is live
/// and it has no part in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacements {
    Off,
    /// Every failed worker may be replaced (`true`).
    Unlimited,
    /// At most this many replacements in the run (1 or more).
    AtMost(u32),
}

impl Replacements {
    /// The most replacements a run may make (0: none).
    pub fn limit(self) -> u32 {
        match self {
            Replacements::Off => 0,
            Replacements::Unlimited => u32::MAX,
            Replacements::AtMost(n) => n,
        }
    }
}

impl Serialize for Replacements {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Replacements::Off => s.serialize_bool(false),
            Replacements::Unlimited => s.serialize_bool(true),
            Replacements::AtMost(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Replacements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WHAT: &str = "`true`, `false` or the most replacements in the run (1 or more)";
        impl serde::de::Visitor<'_> for V {
            type Value = Replacements;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(WHAT)
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Replacements, E> {
                Ok(if b {
                    Replacements::Unlimited
                } else {
                    Replacements::Off
                })
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Replacements, E> {
                match u32::try_from(n) {
                    Ok(n) if n >= 1 => Ok(Replacements::AtMost(n)),
                    _ => Err(E::custom(format!(
                        "replacement_workers: {n} is not {WHAT}; `false` turns replacement off"
                    ))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Replacements, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("replacement_workers: {n} is not {WHAT}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `load_balancing.metrics_based`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsBased {
    /// A worker's process CPU, percent of its host (all cores = 100), above 0 and at most 100.
    #[serde(
        default,
        deserialize_with = "resource_pct",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_threshold: Option<f64>,
    /// A worker's resident memory, percent of its host's memory, above 0 and at most 100.
    #[serde(
        default,
        deserialize_with = "resource_pct",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_threshold: Option<f64>,
    /// ms (a bare number), or a duration such as `2s`; 1 ms to 10 minutes.
    #[serde(
        default,
        deserialize_with = "threshold_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_time_threshold: Option<u64>,
}

fn resource_pct<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let p = f64::deserialize(d)?;
    if p.is_finite() && p > 0.0 && p <= 100.0 {
        Ok(Some(p))
    } else {
        Err(serde::de::Error::custom(format!(
            "load_balancing.metrics_based: `cpu_threshold` and `memory_threshold` are percentages above 0 and at most 100, got {p}"
        )))
    }
}

/// The host CPU at or over which `least_loaded` counts a worker saturated when `cpu_threshold` is
/// not given (where a load generator starts measuring its own queueing).
pub const DEFAULT_SATURATED_CPU_PCT: f64 = 90.0;

/// When `least_loaded` counts a worker's host saturated (planned nothing while others have room).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Saturation {
    /// Host CPU use, percent (all cores = 100).
    pub cpu_pct: f64,
    /// Host memory use, percent of its total, when `memory_threshold` is given.
    pub memory_pct: Option<f64>,
}

/// The thresholds `adaptive` balancing moves load by (see [`LoadBalancing::adaptive`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// p95 latency per pull, ms.
    pub response_time_ms: Option<u64>,
    /// The worker process's CPU, percent of its host.
    pub cpu_pct: Option<f64>,
    /// The worker process's resident memory, percent of its host's memory.
    pub memory_pct: Option<f64>,
}

fn threshold_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let ms = super::duration::de_opt_duration_ms(d)?.map(|t| t.as_millis() as u64);
    match ms {
        Some(n) if !(1..=600_000).contains(&n) => Err(serde::de::Error::custom(format!(
            "load_balancing.metrics_based.response_time_threshold must be 1 ms to 10 minutes, got {n} ms"
        ))),
        other => Ok(other),
    }
}

impl LoadBalancing {
    fn on(&self) -> bool {
        self.enabled != Some(false)
    }

    /// The latency (ms, p95 per pull) over which `adaptive` moves load away from a worker.
    pub fn adaptive_threshold_ms(&self) -> Option<u64> {
        self.adaptive().and_then(|t| t.response_time_ms)
    }

    /// What `adaptive` moves load by, when it is on.
    pub fn adaptive(&self) -> Option<Thresholds> {
        if !self.on() || self.algorithm != Some(Algorithm::Adaptive) {
            return None;
        }
        let m = self.metrics_based.as_ref()?;
        let t = Thresholds {
            response_time_ms: m.response_time_threshold,
            cpu_pct: m.cpu_threshold,
            memory_pct: m.memory_threshold,
        };
        (t != Thresholds::default()).then_some(t)
    }

    /// `failover.worker_replacement` (false when failover is off), when on.
    pub fn replacement(&self) -> Option<bool> {
        let f = self.failover.as_ref().filter(|_| self.on())?;
        if f.enabled == Some(false) {
            return Some(false);
        }
        f.worker_replacement
    }

    /// What `least_loaded` plans by, when it is on: the CPU at or over which a worker is saturated
    /// (`cpu_threshold`, else 90 %) and the host memory use at or over which it is (when given).
    pub fn least_loaded(&self) -> Option<Saturation> {
        if !self.on() || self.algorithm != Some(Algorithm::LeastLoaded) {
            return None;
        }
        let m = self.metrics_based.clone().unwrap_or_default();
        Some(Saturation {
            cpu_pct: m.cpu_threshold.unwrap_or(DEFAULT_SATURATED_CPU_PCT),
            memory_pct: m.memory_threshold,
        })
    }

    /// `health_checks.interval`, when on.
    pub fn health_interval(&self) -> Option<Duration> {
        self.on()
            .then(|| self.health_checks.as_ref()?.interval)
            .flatten()
    }

    /// `health_checks.timeout`, when on.
    pub fn health_timeout(&self) -> Option<Duration> {
        self.on()
            .then(|| self.health_checks.as_ref()?.timeout)
            .flatten()
    }

    /// `failover.redistribute_load` (false when failover is off), when on.
    pub fn redistribute(&self) -> Option<bool> {
        let f = self.failover.as_ref().filter(|_| self.on())?;
        if f.enabled == Some(false) {
            return Some(false);
        }
        f.redistribute_load
    }

    /// Why the block does not make sense as a whole, if it does not.
    pub fn check(&self) -> Result<(), String> {
        let m = self.metrics_based.clone().unwrap_or_default();
        let any = m.response_time_threshold.is_some()
            || m.cpu_threshold.is_some()
            || m.memory_threshold.is_some();
        if self.algorithm == Some(Algorithm::Adaptive) && !any {
            return Err("load_balancing.algorithm `adaptive` needs `metrics_based.response_time_threshold`, `cpu_threshold` or `memory_threshold` (what a worker gives load away over)".into());
        }
        if !matches!(
            self.algorithm,
            Some(Algorithm::Adaptive | Algorithm::LeastLoaded)
        ) && (m.cpu_threshold.is_some() || m.memory_threshold.is_some())
        {
            return Err("load_balancing.metrics_based: `cpu_threshold` and `memory_threshold` act only with `algorithm: adaptive` (the moves are adaptive balancing's) or `least_loaded` (a worker at or over them is saturated and planned nothing); set one, or leave them out".into());
        }
        if self.algorithm == Some(Algorithm::LeastLoaded) && m.response_time_threshold.is_some() {
            return Err("load_balancing.metrics_based.response_time_threshold acts only with `algorithm: adaptive`; `least_loaded` plans by the workers' reported CPU and memory before the run, when no latency is measured yet".into());
        }
        if let Some(h) = &self.health_checks {
            if h.interval.is_some_and(|i| i.is_zero()) || h.timeout.is_some_and(|t| t.is_zero()) {
                return Err(
                    "load_balancing.health_checks: `interval` and `timeout` must be above 0".into(),
                );
            }
        }
        Ok(())
    }

    /// `--explain`'s lines for the block.
    pub fn explain(&self) -> String {
        if !self.on() {
            return "load_balancing: off (enabled: false)\n".into();
        }
        let mut out = String::new();
        match self.adaptive() {
            Some(t) => {
                let mut over = Vec::new();
                if let Some(ms) = t.response_time_ms {
                    over.push(format!("p95 latency (per pull of its batches) exceeds {ms} ms"));
                }
                if let Some(p) = t.cpu_pct {
                    over.push(format!("process CPU (sent with each pull, percent of its host) is at or over {p}%"));
                }
                if let Some(p) = t.memory_pct {
                    over.push(format!("resident memory (sent with each pull, percent of its host's) is at or over {p}%"));
                }
                out.push_str(&format!("load_balancing.algorithm adaptive: a worker whose {} gives half its share to the running workers under every threshold, the total unchanged, at most once every 5 s; recorded as run events\n", over.join(", or whose ")));
            }
            None => match self.least_loaded() {
                Some(sat) => out.push_str(&format!("load_balancing.algorithm least_loaded: the plan weighs each worker by capacity x spare, where capacity is its max_vus (VU loads) or max_rps (arrival loads) when registered, else its `capacity` (100 when not given), and spare = {} - host CPU %, in hundredths of a percent (at least 1 below the threshold; 0 at or over it{}); CPU is the sample its last pool renewal carried, or, for listed workers, one read from its GET /resources when the run is planned (no sample: counted idle); the units are split in proportion to the weights (floor, remainder one each to the first workers in list order), each capped at its max_vus/max_rps with the excess re-split over those with room, saturated workers taking load only when the others are full; every worker saturated: by capacity alone; the samples, weights and shares are a run event; no moves during the run\n", sat.cpu_pct, sat.memory_pct.map(|m| format!(", or host memory at or over {m}%")).unwrap_or_default())),
                None => out.push_str("load_balancing.algorithm: round_robin: no moves during the run (the plan's split stays)\n"),
            },
        }
        if let Some(i) = self.health_interval() {
            out.push_str(&format!("load_balancing.health_checks.interval {} ms: acts as orchestration.heartbeat_interval unless that is given (each pull of a worker, once a second, is bounded by it, 0.5-5 s)\n", i.as_millis()));
        }
        if let Some(t) = self.health_timeout() {
            out.push_str(&format!("load_balancing.health_checks.timeout {} ms: acts as worker_failures.detection_timeout unless that is given (a worker silent that long has failed)\n", t.as_millis()));
        }
        if let Some(r) = self.redistribute() {
            out.push_str(&format!("load_balancing.failover.redistribute_load {r}: acts as worker_failures.recovery.load_redistribution unless that is given\n"));
        }
        if let Some(r) = self.replacement() {
            out.push_str(&format!("load_balancing.failover.worker_replacement {r}: acts as worker_failures.recovery.replacement_workers unless that is given\n"));
        }
        out
    }
}

/// The replacement setting of a test: `recovery.replacement_workers`, else
/// `load_balancing.failover.worker_replacement`.
pub fn replacements(d: &super::Distributed) -> Replacements {
    let recovery = d
        .fault_tolerance
        .as_ref()
        .and_then(|f| f.worker_failures.as_ref())
        .and_then(|w| w.recovery.as_ref())
        .and_then(|r| r.replacement_workers);
    let failover = d
        .load_balancing
        .as_ref()
        .and_then(|l| l.replacement())
        .map(|on| {
            if on {
                Replacements::Unlimited
            } else {
                Replacements::Off
            }
        });
    recovery.or(failover).unwrap_or(Replacements::Off)
}

/// `--explain`'s line for worker replacement, when it is on.
pub fn explain_replacement(d: &super::Distributed) -> String {
    let limit = match replacements(d) {
        Replacements::Off => return String::new(),
        Replacements::Unlimited => "every failed worker".to_string(),
        Replacements::AtMost(n) => {
            format!("at most {n} failed worker{}", if n == 1 { "" } else { "s" })
        }
    };
    format!("worker replacement: {limit} of a run on a master cluster is replaced by an idle registered worker (live lease, not in the run, passing the run's pool filter and its capacity; the least busy by its reported CPU first), which is prepared with the failed worker's share and CSV slice and starts at once for the time left; the pool is not held back for it; with no idle worker the share goes to the survivors (load_redistribution) or is dropped; each outcome is a run event\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<LoadBalancing, String> {
        serde_norway::from_str::<LoadBalancing>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seeds_block_is_taken() {
        let lb = parse("enabled: true\nalgorithm: adaptive\nhealth_checks: {enabled: true, interval: 10s, timeout: 5s}\nfailover: {enabled: true, redistribute_load: true, worker_replacement: true}\nmetrics_based: {cpu_threshold: 80, memory_threshold: 85, response_time_threshold: 2000}\n").unwrap();
        lb.check().unwrap();
        assert_eq!(lb.replacement(), Some(true));
        let t = lb.adaptive().unwrap();
        assert_eq!((t.cpu_pct, t.memory_pct), (Some(80.0), Some(85.0)));
        assert!(lb.explain().contains("at or over 80%"), "{}", lb.explain());
        assert_eq!(lb.adaptive_threshold_ms(), Some(2000));
        assert_eq!(lb.health_interval(), Some(Duration::from_secs(10)));
        assert_eq!(lb.health_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(lb.redistribute(), Some(true));
        assert!(lb.explain().contains("2000 ms"));
    }

    #[test]
    fn keys_that_do_not_fit_are_refused_by_name() {
        for (y, needle) in [
            (
                "metrics_based: {cpu_threshold: 0}",
                "above 0 and at most 100",
            ),
            (
                "metrics_based: {memory_threshold: 101}",
                "above 0 and at most 100",
            ),
            ("health_checks: {enabled: false}", "health_checks.enabled"),
            (
                "metrics_based: {response_time_threshold: 0}",
                "1 ms to 10 minutes",
            ),
            ("algorithm: fastest", "unknown `fastest`"),
            ("balance: true", "balance"),
        ] {
            let e = parse(y).unwrap_err();
            assert!(e.contains(needle), "{y}: {e}");
        }
        let e = parse("algorithm: adaptive").unwrap().check().unwrap_err();
        assert!(e.contains("response_time_threshold"), "{e}");
        let e = parse("metrics_based: {cpu_threshold: 50}")
            .unwrap()
            .check()
            .unwrap_err();
        assert!(e.contains("only with `algorithm: adaptive`"), "{e}");
        let ll = parse("algorithm: least_loaded\nmetrics_based: {cpu_threshold: 70}").unwrap();
        ll.check().unwrap();
        assert_eq!(ll.least_loaded().unwrap().cpu_pct, 70.0);
        assert!(
            ll.explain().contains("spare = 70 - host CPU"),
            "{}",
            ll.explain()
        );
        assert_eq!(
            parse("algorithm: least_loaded")
                .unwrap()
                .least_loaded()
                .unwrap()
                .cpu_pct,
            90.0
        );
        let e = parse("algorithm: least_loaded\nmetrics_based: {response_time_threshold: 5}")
            .unwrap()
            .check()
            .unwrap_err();
        assert!(e.contains("only with `algorithm: adaptive`"), "{e}");
        let cpu = parse("algorithm: adaptive\nmetrics_based: {cpu_threshold: 50}").unwrap();
        cpu.check().unwrap();
        assert_eq!(cpu.adaptive_threshold_ms(), None);
        assert_eq!(cpu.adaptive().unwrap().cpu_pct, Some(50.0));
        let off = parse(
            "enabled: false\nalgorithm: adaptive\nmetrics_based: {response_time_threshold: 5}",
        )
        .unwrap();
        assert_eq!(off.adaptive_threshold_ms(), None);
    }

    #[test]
    fn replacement_workers_is_a_switch_or_a_cap() {
        let r = |y: &str| serde_norway::from_str::<Replacements>(y).map_err(|e| e.to_string());
        assert_eq!(r("true"), Ok(Replacements::Unlimited));
        assert_eq!(r("false"), Ok(Replacements::Off));
        assert_eq!(r("2"), Ok(Replacements::AtMost(2)));
        assert_eq!(r("2").unwrap().limit(), 2);
        assert_eq!(Replacements::Unlimited.limit(), u32::MAX);
        for bad in ["0", "-1", "\"yes\"", "1.5"] {
            let e = r(bad).unwrap_err();
            assert!(e.contains("replacement"), "{bad}: {e}");
        }
        let d: crate::config::Distributed = serde_norway::from_str(
            "load_balancing: {failover: {worker_replacement: true}}\nfault_tolerance: {worker_failures: {recovery: {replacement_workers: 3}}}",
        )
        .unwrap();
        assert_eq!(replacements(&d), Replacements::AtMost(3), "recovery wins");
        let d: crate::config::Distributed = serde_norway::from_str(
            "load_balancing: {failover: {enabled: false, worker_replacement: true}}",
        )
        .unwrap();
        assert_eq!(replacements(&d), Replacements::Off);
        let d: crate::config::Distributed =
            serde_norway::from_str("load_balancing: {failover: {worker_replacement: true}}")
                .unwrap();
        assert_eq!(replacements(&d), Replacements::Unlimited);
        assert!(explain_replacement(&d).contains("every failed worker"));
    }
}
