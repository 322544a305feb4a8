//! Central logs, the controller's half: one ordered stream of structured records per run, made of
//! the workers' records (shipped with their batches, see `worker::logs`, their timestamps moved
//! into the controller's clock by the estimated offset), the controller's own records of the run
//! (`log_levels.master`) and of its calls to workers (`log_levels.communication`). Every record
//! carries the run id. The stream lives in the run record, so any replica serves it
//! (`GET /runs/{id}/logs`) and it survives a failover; it keeps the first [`CAPACITY`] records and
//! counts the rest as dropped, so a chatty run cannot grow the replicated record without bound.
//!
//! `log_aggregation{backend: elasticsearch}` also posts each pass's new records to
//! `{url}/_bulk` (the bulk API's NDJSON, index name templated by the record's UTC date). That is
//! best effort: a failed post is logged and not retried.

use crate::api::worker::LogRecord;
use crate::config::monitoring::LogAggregation;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// The header every load request carries with `logging.correlation_id`: the run id.
pub const CORRELATION_HEADER: &str = "X-Correlation-Id";

/// The most records a run's stream keeps.
pub const CAPACITY: usize = 5_000;

/// A run's log stream (record field `monitoring.log`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunLog {
    /// Ordered by `ts_ms` (controller clock).
    #[serde(default)]
    pub records: Vec<LogRecord>,
    /// Records not kept because the stream was full.
    #[serde(default)]
    pub dropped: u64,
}

impl RunLog {
    /// Adds `records` in time order; returns the ones kept (to ship elsewhere).
    pub fn add(&mut self, records: Vec<LogRecord>) -> Vec<LogRecord> {
        let room = CAPACITY.saturating_sub(self.records.len());
        let kept: Vec<LogRecord> = records.iter().take(room).cloned().collect();
        self.dropped += (records.len() - kept.len()) as u64;
        if kept.is_empty() {
            return kept;
        }
        self.records.extend(kept.iter().cloned());
        // Stable: records of one source keep their order when their timestamps tie.
        self.records.sort_by(|a, b| a.ts_ms.total_cmp(&b.ts_ms));
        kept
    }

    /// The stream as served: JSON lines (`structured`), or one text line per record.
    pub fn render(&self, structured: bool) -> String {
        let mut out = String::new();
        for r in &self.records {
            if structured {
                if let Ok(line) = serde_json::to_string(r) {
                    out.push_str(&line);
                    out.push('\n');
                }
            } else {
                let fields: String = r.fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
                let _ = writeln!(
                    out,
                    "{} {:>5} {} run_id={} {}: {}{fields}",
                    iso(r.ts_ms),
                    r.level.to_uppercase(),
                    r.source,
                    r.run_id,
                    r.target,
                    r.message
                );
            }
        }
        if self.dropped > 0 {
            let note = format!(
                "{} records dropped: the stream keeps {CAPACITY}",
                self.dropped
            );
            if structured {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "dropped": self.dropped, "note": note })
                );
            } else {
                let _ = writeln!(out, "{note}");
            }
        }
        out
    }
}

fn iso(ms: f64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// The index for a record: `{{date}}` replaced by its UTC date (`2026.11.29`).
pub fn index_for(template: &str, ts_ms: f64) -> String {
    let date = chrono::DateTime::from_timestamp_millis(ts_ms as i64)
        .map(|t| t.format("%Y.%m.%d").to_string())
        .unwrap_or_default();
    template.replace("{{date}}", &date)
}

/// The Elasticsearch bulk body (NDJSON: an `index` action line, then the document) for `records`.
pub fn bulk_body(index: &str, records: &[LogRecord]) -> String {
    let mut out = String::new();
    for r in records {
        let action = serde_json::json!({ "index": { "_index": index_for(index, r.ts_ms) } });
        let mut doc = serde_json::to_value(r).unwrap_or_default();
        if let Some(o) = doc.as_object_mut() {
            o.insert("@timestamp".into(), iso(r.ts_ms).into());
        }
        let _ = writeln!(out, "{action}\n{doc}");
    }
    out
}

/// Posts `records` to the store's bulk API. `Err` says why they were not all taken.
pub async fn ship(
    http: &reqwest::Client,
    to: &LogAggregation,
    records: &[LogRecord],
) -> Result<(), String> {
    if records.is_empty() {
        return Ok(());
    }
    let url = format!("{}/_bulk", to.url.trim_end_matches('/'));
    let resp = http
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body(bulk_body(&to.index, records))
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() || body["errors"] == serde_json::Value::Bool(true) {
        return Err(format!(
            "{url} answered {status}, errors: {}",
            body["errors"]
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: f64, msg: &str) -> LogRecord {
        LogRecord {
            ts_ms: ts,
            level: "info".into(),
            source: "w:1".into(),
            target: "t".into(),
            message: msg.into(),
            run_id: "r1".into(),
            fields: Default::default(),
        }
    }

    #[test]
    fn the_stream_is_ordered_and_bounded() {
        let mut log = RunLog::default();
        log.add(vec![rec(3.0, "c"), rec(1.0, "a")]);
        log.add(vec![rec(2.0, "b")]);
        let msgs: Vec<_> = log.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(msgs, ["a", "b", "c"]);
        let flood: Vec<_> = (0..CAPACITY).map(|i| rec(10.0 + i as f64, "x")).collect();
        assert_eq!(log.add(flood).len(), CAPACITY - 3);
        assert_eq!(log.dropped, 3);
        let text = log.render(true);
        assert_eq!(text.lines().count(), CAPACITY + 1);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["run_id"], "r1");
    }

    #[test]
    fn the_bulk_body_pairs_an_action_with_each_document_and_dates_the_index() {
        // 2026-11-29T12:00:00Z
        let body = bulk_body("perf-{{date}}", &[rec(1_795_953_600_000.0, "hello")]);
        let lines: Vec<serde_json::Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["index"]["_index"], "perf-2026.11.29");
        assert_eq!(lines[1]["message"], "hello");
        assert_eq!(lines[1]["@timestamp"], "2026-11-29T12:00:00.000Z");
        assert!(body.ends_with('\n'));
    }
}
