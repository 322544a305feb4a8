//! `distributed.results`: the live feed of merged figures (`aggregation`) and where a run's results
//! are stored when it ends (`collection`). Every key acts or is refused here by name with the
//! reason, at the key's line.

use super::duration::{de_opt_duration, ser_opt_duration};
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// `distributed.results`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Results {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<Aggregation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<Collection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResults {
    #[serde(default)]
    aggregation: Option<Aggregation>,
    #[serde(default)]
    collection: Option<Collection>,
}

impl TryFrom<RawResults> for Results {
    type Error = String;
    fn try_from(r: RawResults) -> Result<Self, String> {
        let out = Results {
            aggregation: r.aggregation,
            collection: r.collection,
        };
        out.check()?;
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for Results {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de_converted::<D, RawResults, Results>(d, "a results mapping")
    }
}

/// `distributed.results.aggregation`: the feed of merged per-interval figures kept in the run
/// record and served by `GET /runs/{id}/stream`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// Build the feed while the run goes (default true when the block is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_time: Option<bool>,
    /// Seconds per event, whole seconds (default 1s).
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    /// Which figures each event carries besides the counts (default all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Metric>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<Streaming>,
}

/// A figure a feed event carries.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// p50, p90, p95, p99 (overall, per step, per worker) from the merged histograms.
    ResponseTimes,
    /// Requests per second over the interval.
    Throughput,
    /// Errors and the error rate.
    ErrorRates,
    /// Active virtual users at the interval's end.
    VirtualUserCounts,
}

/// `distributed.results.aggregation.streaming`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Streaming {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<StreamProtocol>,
    /// Refused when true (see [`Results::check`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<bool>,
}

/// How the feed is served.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StreamProtocol {
    Sse,
    Websocket,
}

/// `distributed.results.collection`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<CollectStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

/// How results reach the controller.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CollectStrategy {
    Push,
    Pull,
    Hybrid,
}

/// `distributed.results.collection.storage`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub backend: Backend,
    /// The bucket (s3, gcs) or container (azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Where under the bucket (or `path`) a run's files go; `{{run_id}}`, `{{test_name}}`,
    /// `{{date}}` (YYYY-MM-DD, UTC) and `{{timestamp}}` (Unix ms of the run's creation) are
    /// filled in. Default `{{test_name}}/{{run_id}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `local` only: the directory (on the controller) results are written under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// s3: an S3-compatible endpoint (`http://127.0.0.1:9000`); default AWS's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// s3: the region (default `AWS_REGION` or us-east-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A storage backend.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Local,
    S3,
    Gcs,
    Azure,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::S3 => "s3",
            Backend::Gcs => "gcs",
            Backend::Azure => "azure",
        }
    }
}

/// `distributed.results.collection.format`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Format {
    /// Keep every request sample: each worker spools them (zstd NDJSON) on its disk, and the
    /// controller pulls the spool when the run ends and stores `raw/<worker>.ndjson.zst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_data: Option<bool>,
    /// Store the merged HDR histograms (per step, per worker) beside the summary (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregated: Option<bool>,
    /// Gzip every stored file (`.gz` added to its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed: Option<bool>,
}

/// `distributed.results.collection.retention`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Each worker deletes its raw data spool of the run `cleanup_delay` (default 0s) after the
    /// controller acknowledged its last chunk; false (the default) keeps it. Needs `raw_data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_cleanup: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub cleanup_delay: Option<Duration>,
    /// The master keeps the record of the last `keep_runs` ended runs in its replicated state
    /// (this one included) and archives older ones to `storage` when this run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_runs: Option<u64>,
    /// The master keeps ended runs created within the last `keep_days` days (a fraction allowed)
    /// and archives older ones to `storage` when this run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_days: Option<f64>,
}

impl Retention {
    /// Whether it bounds the master's run history.
    pub fn bounds_history(&self) -> bool {
        self.keep_runs.is_some() || self.keep_days.is_some()
    }
}

/// The placeholders a storage prefix may use.
pub const PREFIX_VARS: [&str; 4] = ["run_id", "test_name", "date", "timestamp"];

impl Results {
    /// Keys that parse but cannot act, or contradict each other, refused by name with the reason.
    pub fn check(&self) -> Result<(), String> {
        if let Some(a) = &self.aggregation {
            a.check()?;
        }
        if let Some(c) = &self.collection {
            c.check()?;
        }
        Ok(())
    }

    /// The feed's settings when the run builds one.
    pub fn feed(&self) -> Option<&Aggregation> {
        self.aggregation
            .as_ref()
            .filter(|a| a.real_time != Some(false))
    }

    /// Whether every request sample is kept (`format.raw_data: true`).
    pub fn raw_data(&self) -> bool {
        self.collection
            .as_ref()
            .and_then(|c| c.format.as_ref())
            .is_some_and(|f| f.raw_data == Some(true))
    }

    /// With `retention.worker_cleanup: true`, how long after the controller acknowledged its last
    /// raw chunk a worker deletes its spool of the run (`cleanup_delay`, default 0s).
    pub fn worker_cleanup(&self) -> Option<Duration> {
        self.collection
            .as_ref()
            .and_then(|c| c.retention.as_ref())
            .filter(|r| r.worker_cleanup == Some(true))
            .map(|r| r.cleanup_delay.unwrap_or_default())
    }

    /// The test's `distributed.results`, if it has one.
    pub fn of(test: &super::TestFile) -> Option<&Results> {
        test.distributed.as_ref()?.results.as_ref()
    }

    /// The storage to upload to when the run ends.
    pub fn storage(&self) -> Option<&Storage> {
        self.collection.as_ref().and_then(|c| c.storage.as_ref())
    }

    /// `--explain`'s lines for this block.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        match self.feed() {
            Some(a) => {
                let metrics: Vec<&str> = a.metrics().iter().map(|m| m.name()).collect();
                out.push_str(&format!(
                    "  results feed: every {}s, the merged figures (counts always; {}) overall, per step and per worker, percentiles from the merged histograms, kept in the replicated run record; {}\n",
                    a.interval_s(),
                    metrics.join(", "),
                    match (a.streaming_on(), a.streaming.as_ref().and_then(|s| s.protocol)) {
                        (true, Some(StreamProtocol::Websocket)) => "served over a WebSocket by GET /runs/{id}/stream on every master replica (JSON text frames; resume with ?last_event_id=N)",
                        (true, _) => "served as Server-Sent Events by GET /runs/{id}/stream on every master replica (resume with Last-Event-ID)",
                        (false, _) => "not streamed (streaming.enabled is not true); stored with the results as feed.ndjson",
                    }
                ));
            }
            None if self.aggregation.is_some() => {
                out.push_str("  results feed: off (real_time: false)\n");
            }
            None => {}
        }
        if let Some(s) = self.storage() {
            let fmt = self
                .collection
                .as_ref()
                .and_then(|c| c.format.clone())
                .unwrap_or_default();
            let place = match s.backend {
                Backend::Local => format!("directory {}", s.path.as_deref().unwrap_or("?")),
                b => format!("{} bucket {}", b.name(), s.bucket.as_deref().unwrap_or("?")),
            };
            out.push_str(&format!(
                "  results storage: when the run ends the controller uploads summary.json, timeline.ndjson{}{}{} to {place} under `{}`{}\n",
                if self.feed().is_some() { ", feed.ndjson" } else { "" },
                if fmt.aggregated != Some(false) { " and histograms.json (merged HDR histograms per step and per worker)" } else { "" },
                if fmt.compressed == Some(true) { ", each gzipped (.gz)" } else { "" },
                s.prefix(),
                if s.backend == Backend::Local { "" } else { "; credentials from the environment, refused at the run's start when absent" }
            ));
        }
        if self.raw_data() {
            out.push_str(&format!(
                "  raw data: every request sample (time, step, worker, VU, status, latency, bytes, error) is kept: each worker spools them as zstd-compressed NDJSON chunks on its disk (--spool-dir), and when the run ends the controller pulls the chunks over HTTP, stores raw/<worker>.ndjson.zst {} and acknowledges them; `perfornium report FILE.ndjson.zst` recomputes the figures from it. A local `run` writes raw.ndjson.zst to -o\n",
                if self.storage().is_some() { "under the prefix above" } else { "(a distributed run needs `storage`)" }
            ));
            out.push_str(&match self.worker_cleanup() {
                Some(d) => format!("  worker cleanup: each worker deletes its spool of the run {}s after the controller acknowledged its last chunk (never before)\n", d.as_secs_f64()),
                None => "  worker cleanup: off: workers keep their spools (GET /raw on a worker lists them)\n".to_string(),
            });
        }
        if let Some(r) = self.collection.as_ref().and_then(|c| c.retention.as_ref()) {
            if r.bounds_history() {
                let mut keep = Vec::new();
                if let Some(n) = r.keep_runs {
                    keep.push(format!("the last {n} ended runs"));
                }
                if let Some(d) = r.keep_days {
                    keep.push(format!("ended runs created in the last {d} days"));
                }
                out.push_str(&format!(
                    "  results retention: when the run ends the master keeps {} in its replicated state and moves older run records to the storage above (run.json.gz under each one's prefix); GET /runs still lists them and GET /runs/{{id}} reads them back, marked archived\n",
                    keep.join(" and ")
                ));
            }
        }
        out
    }
}

impl Aggregation {
    /// Seconds per feed event.
    pub fn interval_s(&self) -> u64 {
        self.interval.map_or(1, |d| d.as_secs().max(1))
    }

    /// The figures events carry.
    pub fn metrics(&self) -> Vec<Metric> {
        self.metrics.clone().unwrap_or_else(|| {
            vec![
                Metric::ResponseTimes,
                Metric::Throughput,
                Metric::ErrorRates,
                Metric::VirtualUserCounts,
            ]
        })
    }

    /// Whether `GET /runs/{id}/stream` serves the feed.
    pub fn streaming_on(&self) -> bool {
        self.streaming
            .as_ref()
            .is_some_and(|s| s.enabled == Some(true))
    }

    fn check(&self) -> Result<(), String> {
        if let Some(i) = self.interval {
            if i < Duration::from_secs(1) || i.subsec_nanos() != 0 {
                return Err(format!(
                    "results.aggregation.interval: {}ms is not a whole number of seconds: the run record closes merged figures per second, and an event covers whole seconds",
                    i.as_millis()
                ));
            }
        }
        if self.metrics.as_ref().is_some_and(|m| m.is_empty()) {
            return Err("results.aggregation.metrics: empty; leave it out for all of them".into());
        }
        let Some(s) = &self.streaming else {
            return Ok(());
        };
        if s.enabled == Some(true) && self.real_time == Some(false) {
            return Err("results.aggregation.streaming.enabled: true needs the feed, but real_time is false".into());
        }
        if s.compression == Some(true) {
            return Err("results.aggregation.streaming.compression: true is refused: gzip over Server-Sent Events would hold events back in the compressor's buffer, defeating a live feed; a proxy in front of the master can compress the stream".into());
        }
        Ok(())
    }
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::ResponseTimes => "response_times",
            Metric::Throughput => "throughput",
            Metric::ErrorRates => "error_rates",
            Metric::VirtualUserCounts => "virtual_user_counts",
        }
    }
}

impl Collection {
    fn check(&self) -> Result<(), String> {
        match self.strategy {
            Some(CollectStrategy::Push) => return Err("results.collection.strategy: `push` is refused: it would have each worker send its results to the controller, but workers never dial out (the controller pulls sequenced batches, which is what makes them exactly-once across controller failover); use `pull`".into()),
            Some(CollectStrategy::Hybrid) => return Err("results.collection.strategy: `hybrid` is refused: it would have workers push live figures and the controller pull the final ones, but workers never dial out; use `pull`".into()),
            _ => {}
        }
        if let Some(s) = &self.storage {
            s.check()?;
        }
        if let Some(f) = &self.format {
            if self.storage.is_none() && (f.aggregated.is_some() || f.compressed.is_some()) {
                return Err("results.collection.format: says how stored files look, but there is no `storage`".into());
            }
        }
        if let Some(r) = &self.retention {
            let raw = self
                .format
                .as_ref()
                .is_some_and(|f| f.raw_data == Some(true));
            if r.worker_cleanup == Some(true) && !raw {
                return Err("results.collection.retention.worker_cleanup: true deletes the raw data each worker spools on its disk, and `format.raw_data` is not true: without it a worker keeps a run only in memory (its unacknowledged batches and final totals) and has nothing on disk to delete".into());
            }
            if r.cleanup_delay.is_some() && r.worker_cleanup != Some(true) {
                return Err("results.collection.retention.cleanup_delay: has nothing to delay without `worker_cleanup: true` (a worker keeps its raw data spool unless told to delete it)".into());
            }
            if r.keep_runs == Some(0) {
                return Err("results.collection.retention.keep_runs: 0 would archive the run that just ended; give 1 or more".into());
            }
            if let Some(d) = r.keep_days {
                if !(d.is_finite() && d > 0.0) {
                    return Err(format!("results.collection.retention.keep_days: {d} is not a positive number of days"));
                }
            }
            if r.bounds_history() && self.storage.is_none() {
                return Err("results.collection.retention: keep_runs/keep_days archive older run records to `storage`, and there is no `storage`: give one (the records would otherwise be lost)".into());
            }
        }
        Ok(())
    }
}

impl Storage {
    /// The prefix template (default `{{test_name}}/{{run_id}}`).
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("{{test_name}}/{{run_id}}")
    }

    fn check(&self) -> Result<(), String> {
        let p = "results.collection.storage";
        match self.backend {
            Backend::Local => {
                if self.path.as_deref().is_none_or(str::is_empty) {
                    return Err(format!(
                        "{p}: backend `local` needs `path` (a directory on the controller)"
                    ));
                }
                for (k, v) in [
                    ("bucket", &self.bucket),
                    ("endpoint", &self.endpoint),
                    ("region", &self.region),
                ] {
                    if v.is_some() {
                        return Err(format!(
                            "{p}.{k}: not used by backend `local` (it writes under `path`)"
                        ));
                    }
                }
            }
            b => {
                if self.bucket.as_deref().is_none_or(str::is_empty) {
                    return Err(format!("{p}: backend `{}` needs `bucket`", b.name()));
                }
                if self.path.is_some() {
                    return Err(format!("{p}.path: only for backend `local`; `{}` writes under `bucket` and `prefix`", b.name()));
                }
                if b != Backend::S3 {
                    for (k, v) in [("endpoint", &self.endpoint), ("region", &self.region)] {
                        if v.is_some() {
                            return Err(format!("{p}.{k}: only for backend `s3`; `{}` takes its account from the environment", b.name()));
                        }
                    }
                }
            }
        }
        let mut rest = self.prefix();
        while let Some(i) = rest.find("{{") {
            let after = &rest[i + 2..];
            let Some(end) = after.find("}}") else {
                return Err(format!("{p}.prefix: `{{{{` without `}}}}`"));
            };
            let name = after[..end].trim();
            if !PREFIX_VARS.contains(&name) {
                return Err(format!(
                    "{p}.prefix: unknown placeholder `{{{{{name}}}}}`; known: {}",
                    PREFIX_VARS.map(|v| format!("{{{{{v}}}}}")).join(", ")
                ));
            }
            rest = &after[end + 2..];
        }
        Ok(())
    }

    /// The prefix with its placeholders filled in for one run.
    pub fn prefix_for(&self, run_id: &str, test_name: &str, created_ms: u64) -> String {
        let date = chrono::DateTime::from_timestamp_millis(created_ms as i64)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let mut out = self.prefix().to_string();
        for (k, v) in [
            ("run_id", run_id.to_string()),
            ("test_name", test_name.to_string()),
            ("date", date),
            ("timestamp", created_ms.to_string()),
        ] {
            out = out.replace(&format!("{{{{{k}}}}}"), &v);
            out = out.replace(&format!("{{{{ {k} }}}}"), &v);
        }
        out.trim_matches('/').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<Results, String> {
        serde_norway::from_str::<Results>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            ("collection:\n  strategy: push\n", "strategy: `push`"),
            ("collection:\n  strategy: hybrid\n", "strategy: `hybrid`"),
            (
                "collection:\n  retention: {worker_cleanup: true, cleanup_delay: 3600}\n",
                "worker_cleanup: true deletes the raw data",
            ),
            (
                "collection:\n  format: {raw_data: true}\n  retention: {cleanup_delay: 3600}\n",
                "cleanup_delay: has nothing to delay",
            ),
            (
                "collection:\n  retention: {keep_runs: 5}\n",
                "there is no `storage`",
            ),
            (
                "collection:\n  storage: {backend: local, path: /tmp/x}\n  retention: {keep_runs: 0}\n",
                "keep_runs: 0",
            ),
            (
                "collection:\n  storage: {backend: local, path: /tmp/x}\n  retention: {keep_days: -1}\n",
                "not a positive number of days",
            ),
            (
                "collection:\n  storage: {backend: local, path: /tmp/x}\n  retention: {keep_runs: many}\n",
                "keep_runs",
            ),
            ("collection:\n  storage: {backend: s3}\n", "needs `bucket`"),
            ("collection:\n  storage: {backend: local}\n", "needs `path`"),
            (
                "collection:\n  storage: {backend: s3, bucket: b, prefix: '{{nope}}'}\n",
                "unknown placeholder `{{nope}}`",
            ),
            (
                "aggregation:\n  interval: 1500ms\n",
                "whole number of seconds",
            ),
            (
                "aggregation:\n  streaming: {enabled: true, compression: true}\n",
                "compression",
            ),
            (
                "aggregation:\n  real_time: false\n  streaming: {enabled: true}\n",
                "real_time is false",
            ),
            (
                "aggregation:\n  metrics: [latency]\n",
                "unknown variant `latency`",
            ),
        ];
        for (y, want) in cases {
            let e = parse(y).expect_err(y);
            assert!(e.contains(want), "{y}: {e}");
        }
    }

    #[test]
    fn raw_data_and_worker_cleanup_act_and_explain_themselves() {
        let r = parse("collection:\n  storage: {backend: s3, bucket: b}\n  format: {raw_data: true}\n  retention: {worker_cleanup: true, cleanup_delay: 2s}\n").unwrap();
        assert!(r.raw_data());
        assert_eq!(r.worker_cleanup(), Some(Duration::from_secs(2)));
        let text = r.explain();
        assert!(text.contains("raw/<worker>.ndjson.zst"), "{text}");
        assert!(
            text.contains("2s after the controller acknowledged"),
            "{text}"
        );
        let kept = parse(
            "collection:\n  format: {raw_data: true}\n  retention: {worker_cleanup: false}\n",
        )
        .unwrap();
        assert!(kept.raw_data());
        assert_eq!(kept.worker_cleanup(), None);
    }

    #[test]
    fn prefix_is_filled_in() {
        let r = parse("collection:\n  storage: {backend: s3, bucket: b, prefix: 'perf/{{test_name}}/{{date}}/{{run_id}}'}\n").unwrap();
        let s = r.storage().unwrap();
        // 2026-01-02T00:00:00Z
        assert_eq!(
            s.prefix_for("r1", "t", 1_767_312_000_000),
            "perf/t/2026-01-02/r1"
        );
    }

    #[test]
    fn retention_bounds_history_and_explains_it() {
        let r = parse("collection:\n  storage: {backend: local, path: /tmp/x}\n  retention: {keep_runs: 3, keep_days: 0.5}\n").unwrap();
        let ret = r.collection.as_ref().unwrap().retention.as_ref().unwrap();
        assert_eq!((ret.keep_runs, ret.keep_days), (Some(3), Some(0.5)));
        let text = r.explain();
        assert!(text.contains("the last 3 ended runs"), "{text}");
        assert!(text.contains("last 0.5 days"), "{text}");
    }
}
