//! `distributed.load_balancing`: balancing the load between workers while a run goes on.
//!
//! - `algorithm: adaptive` moves VUs (or arrival rate) away from a worker whose measured latency
//!   (p95 of the batches merged from it at each pull) crosses `metrics_based.response_time_threshold`
//!   to the workers under it, without changing the total, through the same live-control path as
//!   `PATCH /runs/{id}` (recorded as run events). `round_robin` moves nothing during the run (the
//!   plan's split stays).
//! - `health_checks.interval` acts as `orchestration.heartbeat_interval` and `health_checks.timeout`
//!   as `fault_tolerance.worker_failures.detection_timeout` when those are not given: the
//!   controller pulls every worker once a second, each pull bounded by the interval (0.5–5 s), and
//!   a worker silent for the timeout has failed.
//! - `failover.redistribute_load` acts as `worker_failures.recovery.load_redistribution` when that
//!   is not given (`failover.enabled: false` turns it off).
//!
//! Refused by name, with the reason: `least_loaded` and `worker_replacement: true` (they need the
//! load each registered worker reports, which a run on listed workers does not have), and
//! `cpu_threshold` / `memory_threshold` (they need worker resource reports).

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
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "round_robin" => Ok(Algorithm::RoundRobin),
            "adaptive" => Ok(Algorithm::Adaptive),
            "least_loaded" => Err(serde::de::Error::custom(
                "load_balancing.algorithm: `least_loaded` is not supported yet: it plans by the load \
                 each registered worker reports, and workers given with -w report none; use \
                 `adaptive` (moves load by measured latency) or `round_robin`",
            )),
            other => Err(serde::de::Error::custom(format!(
                "load_balancing.algorithm: unknown `{other}`; expected `round_robin` or `adaptive`"
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
    #[serde(
        default,
        deserialize_with = "no_replacement",
        skip_serializing_if = "Option::is_none"
    )]
    pub worker_replacement: Option<bool>,
}

fn no_replacement<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match bool::deserialize(d)? {
        false => Ok(Some(false)),
        true => Err(serde::de::Error::custom(
            "load_balancing.failover.worker_replacement: `true` is not supported yet: an idle \
             registered worker would take over, and a run on workers given with -w has no pool \
             to take one from; use `redistribute_load: true`",
        )),
    }
}

/// `load_balancing.metrics_based`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsBased {
    #[serde(
        default,
        deserialize_with = "no_resource_threshold",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_threshold: Option<f64>,
    #[serde(
        default,
        deserialize_with = "no_resource_threshold",
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

fn no_resource_threshold<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    serde::de::IgnoredAny::deserialize(d)?;
    Err(serde::de::Error::custom(
        "load_balancing.metrics_based: `cpu_threshold` and `memory_threshold` are not supported \
         yet: they need each worker's CPU and memory reports, which workers do not send; use \
         `response_time_threshold`",
    ))
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
        (self.on() && self.algorithm == Some(Algorithm::Adaptive))
            .then(|| self.metrics_based.as_ref()?.response_time_threshold)
            .flatten()
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
        if self.algorithm == Some(Algorithm::Adaptive)
            && self
                .metrics_based
                .as_ref()
                .and_then(|m| m.response_time_threshold)
                .is_none()
        {
            return Err("load_balancing.algorithm `adaptive` needs `metrics_based.response_time_threshold` (the latency over which a worker gives load away)".into());
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
        match self.adaptive_threshold_ms() {
            Some(t) => out.push_str(&format!("load_balancing.algorithm adaptive: a worker whose p95 latency (per pull of its batches) exceeds {t} ms gives half its share to the workers under it, the total unchanged, at most once every 5 s; recorded as run events\n")),
            None => out.push_str("load_balancing.algorithm: round_robin: no moves during the run (the plan's split stays)\n"),
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<LoadBalancing, String> {
        serde_norway::from_str::<LoadBalancing>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seeds_block_minus_what_needs_reports_is_taken() {
        let lb = parse("enabled: true\nalgorithm: adaptive\nhealth_checks: {enabled: true, interval: 10s, timeout: 5s}\nfailover: {enabled: true, redistribute_load: true, worker_replacement: false}\nmetrics_based: {response_time_threshold: 2000}\n").unwrap();
        lb.check().unwrap();
        assert_eq!(lb.adaptive_threshold_ms(), Some(2000));
        assert_eq!(lb.health_interval(), Some(Duration::from_secs(10)));
        assert_eq!(lb.health_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(lb.redistribute(), Some(true));
        assert!(lb.explain().contains("2000 ms"));
    }

    #[test]
    fn keys_that_need_worker_reports_are_refused_by_name() {
        for (y, needle) in [
            ("algorithm: least_loaded", "least_loaded"),
            ("failover: {worker_replacement: true}", "worker_replacement"),
            ("metrics_based: {cpu_threshold: 80}", "cpu_threshold"),
            ("metrics_based: {memory_threshold: 85}", "memory_threshold"),
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
        let off = parse(
            "enabled: false\nalgorithm: adaptive\nmetrics_based: {response_time_threshold: 5}",
        )
        .unwrap();
        assert_eq!(off.adaptive_threshold_ms(), None);
    }
}
