//! `distributed.monitoring` and `distributed.logging`: what the controller measures about its
//! workers, which alerts it raises and where it sends them, and how the run's logs are gathered.
//!
//! Measuring is on by default (control-call round trips, worker CPU and memory, planned vs actual
//! share, health history: see `control::run::Monitor`); `monitoring.metrics.*: false` leaves one
//! out of the record, `enabled: false` all of them. Alerts fire only for the rules set `true` under
//! `alerting` (see `control::alerts`). `dashboards.worker_dashboards` and `network_topology` switch the
//! console's per-worker and topology views; `master_dashboard` has `perfornium distributed` serve the
//! web dashboard (see [`Dashboards`]).
//! `logging.centralized` has workers ship their records with their batches; the master serves one
//! ordered stream per run at `GET /runs/{id}/logs` (see `control::logs`).

use super::duration::{de_opt_duration, ser_opt_duration};
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// `distributed.monitoring`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// `false`: nothing is measured beyond what every run records, and no alert fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MonitoredMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboards: Option<Dashboards>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<Alerting>,
}

/// `monitoring.metrics`: each measurement kept in the run record (all on unless set `false`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonitoredMetrics {
    /// Health history: each worker's state changes and missed pulls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_health: Option<bool>,
    /// Round trip and failures of the controller's calls to each worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_latency: Option<bool>,
    /// Planned vs actual share of the requests per worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_distribution: Option<bool>,
    /// Each worker's process and host CPU and memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_utilization: Option<bool>,
}

/// `monitoring.dashboards`. `worker_dashboards` and `network_topology` switch the console's
/// per-worker view (Enter on a worker) and topology view (`t`) for this run, in `perfornium
/// console` and in `perfornium distributed` with its console alike (both read them from the run
/// view): on unless set `false`. `master_dashboard: true` has `perfornium distributed` serve the
/// web dashboard (`/ui`, see `master::ui`) over its embedded master while the run goes, and print
/// its address; a master cluster serves `/ui` on every replica whatever a test says.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dashboards {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub master_dashboard: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_dashboards: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_topology: Option<bool>,
}

impl Dashboards {
    /// The console views `monitoring.dashboards` allows for a test (both, without the block).
    pub fn views(test: &super::TestFile) -> (bool, bool) {
        let d = Monitoring::of(test).and_then(|m| m.dashboards);
        let d = d.as_ref();
        (
            d.and_then(|d| d.worker_dashboards).unwrap_or(true),
            d.and_then(|d| d.network_topology).unwrap_or(true),
        )
    }
}

impl Dashboards {
    /// True when `test` asks `perfornium distributed` to serve the web dashboard.
    pub fn master_dashboard(test: &super::TestFile) -> bool {
        test.distributed
            .as_ref()
            .and_then(|d| d.monitoring.as_ref())
            .and_then(|m| m.dashboards.as_ref())
            .is_some_and(|d| d.master_dashboard)
    }
}

/// `monitoring.alerting`: which rules fire, their thresholds, and where alerts go.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    /// A worker marked failed.
    #[serde(default)]
    pub worker_failures: bool,
    /// A worker's control calls slower than `latency_threshold` (mean over the last
    /// `window`) or failing more than `error_rate_pct` of the time.
    #[serde(default)]
    pub communication_issues: bool,
    /// A worker's share of the requests off its planned share by more than `imbalance_tolerance_pct`
    /// (percent of its planned share) for longer than `window`.
    #[serde(default)]
    pub load_imbalance: bool,
    /// A worker's process or host CPU at or above `cpu_saturation_pct` for longer than `window`.
    #[serde(default)]
    pub saturation: bool,
    /// Default 500 ms.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub latency_threshold: Option<Duration>,
    /// Default 20 (percent of the control calls in the window).
    #[serde(
        default,
        deserialize_with = "de_pct",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_rate_pct: Option<f64>,
    /// Default 25 (percent of the planned share).
    #[serde(
        default,
        deserialize_with = "de_pct",
        skip_serializing_if = "Option::is_none"
    )]
    pub imbalance_tolerance_pct: Option<f64>,
    /// Default 90.
    #[serde(
        default,
        deserialize_with = "de_pct",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_saturation_pct: Option<f64>,
    /// How long a condition must hold before it fires; default 5 s.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
    /// Alerts also fail the run (summary `passed: false`, a JUnit failure each).
    #[serde(default)]
    pub fail_run: bool,
    /// Where the leader sends each alert, once per webhook.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
}

impl Alerting {
    pub fn latency_threshold_ms(&self) -> f64 {
        self.latency_threshold
            .map_or(500.0, |d| d.as_secs_f64() * 1000.0)
    }
    pub fn error_rate(&self) -> f64 {
        self.error_rate_pct.unwrap_or(20.0)
    }
    pub fn imbalance_tolerance(&self) -> f64 {
        self.imbalance_tolerance_pct.unwrap_or(25.0)
    }
    pub fn cpu_saturation(&self) -> f64 {
        // The same 90 % as `metrics::resources::SATURATED_CPU_PCT` (config sits below metrics).
        self.cpu_saturation_pct.unwrap_or(90.0)
    }
    pub fn window_ms(&self) -> u64 {
        self.window.map_or(5_000, |d| d.as_millis() as u64)
    }
}

/// One webhook: a URL and the body's shape.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    #[serde(deserialize_with = "de_url")]
    pub url: String,
    /// `json` (default): the alert as a JSON object; `slack`: `{"text": ...}`, as Slack's
    /// incoming webhooks (and Mattermost, Teams' Slack-compatible connectors) read it.
    #[serde(default)]
    pub format: WebhookFormat,
}

/// The body a webhook gets.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
}

fn de_pct<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
        return Err(serde::de::Error::custom(format!(
            "{v} is not a percentage (0 to 100)"
        )));
    }
    Ok(Some(v))
}

fn de_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(s),
        Ok(_) => Err(serde::de::Error::custom(format!(
            "`{s}` is not an http(s) URL"
        ))),
        Err(e) => Err(serde::de::Error::custom(format!("`{s}` is not a URL: {e}"))),
    }
}

/// A log level name.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The `tracing` level.
    pub fn level(self) -> tracing::Level {
        match self {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }

    /// Whether a record at `name` (`info`, `warn`...) passes this level.
    pub fn passes(self, name: &str) -> bool {
        let rank = match name {
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            _ => LogLevel::Trace,
        };
        rank <= self
    }
}

/// `distributed.logging`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    /// Workers ship their records to the controller; the master keeps one stream per run.
    #[serde(default)]
    pub centralized: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_aggregation: Option<LogAggregation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_levels: Option<LogLevels>,
    /// `GET /runs/{id}/logs` as JSON lines (default true); `false`: one text line per record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_logging: Option<bool>,
    /// Every load request carries `X-Correlation-Id: <run id>` (the run id is on every record anyway).
    #[serde(default)]
    pub correlation_id: bool,
}

/// `logging.log_levels`: the least severe level kept, per role (default `info` each).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogLevels {
    /// The controller's own records of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<LogLevel>,
    /// What workers ship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<LogLevel>,
    /// The controller's records of its calls to workers (one per pull at `debug`, failed calls at `warn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication: Option<LogLevel>,
}

/// `logging.log_aggregation`: records also shipped, as they arrive, to a log store.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogAggregation {
    pub backend: AggregationBackend,
    /// The index; `{{date}}` becomes the record's UTC date (`2026.11.29`, as Logstash names them).
    pub index: String,
    /// The Elasticsearch base URL; records go to `{url}/_bulk`.
    #[serde(deserialize_with = "de_url")]
    pub url: String,
}

/// The one log store implemented.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AggregationBackend {
    Elasticsearch,
}

impl Logging {
    /// The test's `distributed.logging`, if any.
    pub fn of(test: &super::TestFile) -> Option<Logging> {
        test.distributed.as_ref().and_then(|d| d.logging.clone())
    }

    fn levels(&self) -> LogLevels {
        self.log_levels.clone().unwrap_or_default()
    }
    /// Least severe level workers ship.
    pub fn worker_level(&self) -> tracing::Level {
        self.levels().workers.unwrap_or(LogLevel::Info).level()
    }
    pub fn master_level(&self) -> LogLevel {
        self.levels().master.unwrap_or(LogLevel::Info)
    }
    pub fn communication_level(&self) -> LogLevel {
        self.levels().communication.unwrap_or(LogLevel::Info)
    }
    pub fn structured(&self) -> bool {
        self.structured_logging.unwrap_or(true)
    }

    /// Keys that parse but would not act alone, refused by name.
    pub fn check(&self) -> Result<(), String> {
        if !self.centralized && (self.log_aggregation.is_some() || self.log_levels.is_some()) {
            return Err("distributed.logging: `log_aggregation` and `log_levels` act on the central stream: add `centralized: true`".into());
        }
        Ok(())
    }

    /// `--explain` lines.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        if self.centralized {
            s.push_str(&format!(
                "logging: workers ship their records (at {:?} and above) with their batches; the master keeps one ordered stream per run (its own records at {:?}, control calls at {:?}), served by GET /runs/{{id}}/logs as {}\n",
                self.levels().workers.unwrap_or(LogLevel::Info),
                self.master_level(),
                self.communication_level(),
                if self.structured() { "JSON lines" } else { "text lines" }
            ));
        }
        if let Some(a) = &self.log_aggregation {
            s.push_str(&format!(
                "logging.log_aggregation: records also sent to {}/_bulk (Elasticsearch bulk API), index `{}`\n",
                a.url.trim_end_matches('/'),
                a.index
            ));
        }
        if self.correlation_id {
            s.push_str(
                "logging.correlation_id: every load request carries X-Correlation-Id: <run id>\n",
            );
        }
        s
    }
}

impl Monitoring {
    /// The test's `distributed.monitoring`, if any.
    pub fn of(test: &super::TestFile) -> Option<Monitoring> {
        test.distributed.as_ref().and_then(|d| d.monitoring.clone())
    }

    /// Whether measurement `pick` is kept (all are, unless the block says otherwise).
    pub fn keeps(m: Option<&Monitoring>, pick: fn(&MonitoredMetrics) -> Option<bool>) -> bool {
        match m {
            None => true,
            Some(m) if m.enabled == Some(false) => false,
            Some(m) => m.metrics.as_ref().and_then(pick).unwrap_or(true),
        }
    }

    /// The alert rules in force, if any.
    pub fn alerting(&self) -> Option<&Alerting> {
        if self.enabled == Some(false) {
            return None;
        }
        self.alerting.as_ref()
    }

    /// `--explain` lines.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.dashboards {
            let on = |v: Option<bool>| if v.unwrap_or(true) { "on" } else { "off" };
            s.push_str(&format!(
                "monitoring.dashboards: the console's per-worker view (Enter on a worker) {}, topology view (t) {} (perfornium console and perfornium distributed alike)\n",
                on(d.worker_dashboards),
                on(d.network_topology)
            ));
        }
        if self.dashboards.as_ref().is_some_and(|d| d.master_dashboard) {
            s.push_str("monitoring.dashboards.master_dashboard: `perfornium distributed` serves the web dashboard (/ui: the run's live feed, per-worker health, report) on --stream ADDR or a free loopback port, and prints its address; a master cluster serves /ui on every replica whatever the test says\n");
        }
        if self.enabled == Some(false) {
            s.push_str(
                "monitoring: off (no per-worker measurements beyond every run's, no alerts)\n",
            );
            return s;
        }
        let on = |p: fn(&MonitoredMetrics) -> Option<bool>| Monitoring::keeps(Some(self), p);
        s.push_str(&format!(
            "monitoring: per worker, control-call round trips {}, CPU and memory {}, planned vs actual share {}, health history {} (in /runs/{{id}}, summary.json, /metrics)\n",
            on(|m| m.communication_latency),
            on(|m| m.resource_utilization),
            on(|m| m.load_distribution),
            on(|m| m.worker_health),
        ));
        if let Some(a) = self.alerting() {
            let mut rules = Vec::new();
            if a.worker_failures {
                rules.push("worker_failures (a worker marked failed)".to_string());
            }
            if a.communication_issues {
                rules.push(format!(
                    "communication_issues (control calls slower than {} ms on average or failing over {}%)",
                    a.latency_threshold_ms(),
                    a.error_rate()
                ));
            }
            if a.load_imbalance {
                rules.push(format!(
                    "load_imbalance (actual share off plan by over {}% of the planned share)",
                    a.imbalance_tolerance()
                ));
            }
            if a.saturation {
                rules.push(format!(
                    "saturation (CPU at or above {}%)",
                    a.cpu_saturation()
                ));
            }
            s.push_str(&format!(
                "monitoring.alerting: {} held for {} ms; {} webhook(s), sent by the leader at least once with an Idempotency-Key{}\n",
                if rules.is_empty() { "no rule on".to_string() } else { rules.join(", ") },
                a.window_ms(),
                a.webhooks.len(),
                if a.fail_run { "; alerts fail the run" } else { "" }
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dashboards_key_acts_and_a_misspelt_one_is_refused() {
        let m: Monitoring = serde_norway::from_str(
            "dashboards:\n  master_dashboard: true\n  worker_dashboards: true\n",
        )
        .unwrap();
        let d = m.dashboards.unwrap();
        assert!(d.master_dashboard);
        assert_eq!(d.worker_dashboards, Some(true));
        let e = serde_norway::from_str::<Monitoring>("dashboards:\n  master_dashbord: true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("master_dashbord"), "{e}");
    }

    #[test]
    fn the_console_views_are_kept_and_survive_the_json_round_trip() {
        let m: Monitoring = serde_norway::from_str(
            "dashboards:\n  worker_dashboards: false\n  network_topology: true\n",
        )
        .unwrap();
        let d = m.dashboards.clone().unwrap();
        assert_eq!(
            (d.worker_dashboards, d.network_topology),
            (Some(false), Some(true))
        );
        let back: Monitoring = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        let e = serde_norway::from_str::<Monitoring>("dashboards:\n  worker_dashboards: 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("worker_dashboards"), "{e}");
        assert!(
            m.explain()
                .contains("per-worker view (Enter on a worker) off, topology view (t) on"),
            "{}",
            m.explain()
        );
    }

    #[test]
    fn thresholds_are_range_checked() {
        let e = serde_norway::from_str::<Monitoring>("alerting:\n  imbalance_tolerance_pct: 150\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a percentage"), "{e}");
        let e =
            serde_norway::from_str::<Monitoring>("alerting:\n  webhooks:\n    - url: ftp://x\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("not an http(s) URL"), "{e}");
        let m: Monitoring =
            serde_norway::from_str("alerting:\n  load_imbalance: true\n  window: 3s\n").unwrap();
        assert_eq!(m.alerting().unwrap().window_ms(), 3_000);
        // Round trip through JSON, as the test travels to workers and the record.
        let back: Monitoring = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn log_levels_without_a_central_stream_are_refused() {
        let l: Logging = serde_norway::from_str("log_levels:\n  workers: warn\n").unwrap();
        assert!(l.check().unwrap_err().contains("centralized: true"));
        assert!(LogLevel::Warn.passes("error") && !LogLevel::Warn.passes("info"));
    }
}
