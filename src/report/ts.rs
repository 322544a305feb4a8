//! Results written by the TypeScript tool, read back into a [`RunSummary`] so `perfornium report`
//! renders them like our own. Both of its result files carry one record per request:
//!
//! - its JSON output: `{"metadata": {...}, "results": [TestResult...], "summary": {...}}`, where a
//!   result has `timestamp` (Unix ms, the request's start), `vu_id`, `scenario`, `step_name` /
//!   `action` / `name`, `duration` (or `response_time`) in ms, `success`, `status`, `error` and
//!   `response_size`;
//! - its CSV output: a header row `timestamp,vu_id,iteration,scenario,action,step_name,
//!   duration_ms,success,http_status,error,response_size_bytes,...` and a row per request.
//!
//! Every figure is computed from those records (latencies into an HDR histogram, as for our runs),
//! not copied from the file's own `summary`, whose percentiles are computed differently. Active VUs
//! per second are the distinct `vu_id`s that started a request in that second. The files hold no
//! thresholds, so the verdict is PASSED; an unreadable record refuses the file (by index and field).
//! JSON records that are not measurements (`shouldRecord: false`, or `custom_metrics.skipped`, a
//! step skipped by its condition, duration 0) are left out.

use super::RunSummary;
use crate::metrics::collector::Point;
use crate::metrics::{Sample, StepStats};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Why a TypeScript results file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TsError {
    #[error("not the TypeScript tool's JSON results: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not the TypeScript tool's CSV results: {0}")]
    Csv(#[from] csv::Error),
    #[error("the CSV has no `{0}` column (the TypeScript tool's CSV output writes it)")]
    MissingColumn(&'static str),
    #[error("record {index}: {why}")]
    Record { index: usize, why: String },
    #[error(
        "the file holds no request records (`results` is empty), so there is nothing to report"
    )]
    Empty,
}

/// One request as both formats give it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    timestamp_ms: f64,
    vu_id: u64,
    step: String,
    duration_ms: f64,
    success: bool,
    status: Option<u16>,
    error: Option<String>,
    bytes: u64,
}

#[derive(Deserialize)]
struct JsonFile {
    #[serde(default, rename = "testName")]
    test_name: Option<String>,
    #[serde(default)]
    results: Vec<JsonResult>,
}

#[derive(Deserialize)]
struct JsonResult {
    timestamp: f64,
    #[serde(default)]
    vu_id: u64,
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    step_name: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    response_time: Option<f64>,
    success: bool,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    response_size: Option<u64>,
    #[serde(default, rename = "shouldRecord")]
    should_record: Option<serde_json::Value>,
    #[serde(default)]
    custom_metrics: Option<serde_json::Value>,
}

impl JsonResult {
    /// Not a measurement: `shouldRecord: false`, or a step skipped by its condition
    /// (`custom_metrics.skipped`, duration 0).
    fn measured(&self) -> bool {
        let skipped = self
            .custom_metrics
            .as_ref()
            .and_then(|m| m.get("skipped"))
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        self.should_record != Some(serde_json::Value::Bool(false)) && !skipped
    }
}

/// Reads the TypeScript tool's JSON results; `name` is used when the file names no test.
pub fn from_json(bytes: &[u8], name: &str) -> Result<RunSummary, TsError> {
    let file: JsonFile = serde_json::from_slice(bytes)?;
    let rows = file
        .results
        .into_iter()
        .filter(JsonResult::measured)
        .enumerate()
        .map(|(index, r)| {
            let duration = r.duration.or(r.response_time).ok_or(TsError::Record {
                index,
                why: "neither `duration` nor `response_time`".into(),
            })?;
            Ok(Row {
                timestamp_ms: r.timestamp,
                vu_id: r.vu_id,
                step: r
                    .step_name
                    .or(r.action)
                    .or(r.name)
                    .or(r.scenario)
                    .unwrap_or_else(|| "request".into()),
                duration_ms: duration,
                success: r.success,
                status: r.status,
                error: r.error.filter(|e| !e.is_empty()),
                bytes: r.response_size.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, TsError>>()?;
    build(file.test_name.as_deref().unwrap_or(name), rows)
}

/// Reads the TypeScript tool's CSV results.
pub fn from_csv(bytes: &[u8], name: &str) -> Result<RunSummary, TsError> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers()?.clone();
    let col = |n: &'static str| {
        headers
            .iter()
            .position(|h| h == n)
            .ok_or(TsError::MissingColumn(n))
    };
    let (ts, vu, step, action, dur, ok) = (
        col("timestamp")?,
        col("vu_id")?,
        col("step_name")?,
        col("action")?,
        col("duration_ms")?,
        col("success")?,
    );
    let status = col("http_status").ok();
    let error = col("error").ok();
    let size = col("response_size_bytes").ok();
    let mut rows = Vec::new();
    for (index, rec) in reader.records().enumerate() {
        let rec = rec?;
        let get = |i: usize| rec.get(i).unwrap_or("").trim();
        let bad = |what: &str, v: &str| TsError::Record {
            index,
            why: format!("`{what}` is `{v}`, not a number"),
        };
        let num = |i: usize, what: &str| -> Result<f64, TsError> {
            get(i).parse::<f64>().map_err(|_| bad(what, get(i)))
        };
        let success = match get(ok) {
            "true" => true,
            "false" => false,
            v => {
                return Err(TsError::Record {
                    index,
                    why: format!("`success` is `{v}`, not true or false"),
                })
            }
        };
        let step_name = if get(step).is_empty() {
            get(action)
        } else {
            get(step)
        };
        rows.push(Row {
            timestamp_ms: num(ts, "timestamp")?,
            vu_id: num(vu, "vu_id")? as u64,
            step: step_name.to_string(),
            duration_ms: num(dur, "duration_ms")?,
            success,
            status: status.and_then(|i| get(i).parse().ok()),
            error: error.map(get).filter(|e| !e.is_empty()).map(String::from),
            bytes: size.and_then(|i| get(i).parse().ok()).unwrap_or(0),
        });
    }
    build(name, rows)
}

/// One request from elsewhere (our raw data files, [`super::raw`]): (start Unix ms, VU, step,
/// latency ms, status, error, bytes).
pub(super) type Request = (f64, u64, String, f64, Option<u16>, Option<String>, u64);

/// Per-request records from elsewhere, through the same summary as the TypeScript tool's.
pub(super) fn from_requests(name: &str, requests: Vec<Request>) -> Result<RunSummary, TsError> {
    let rows = requests
        .into_iter()
        .map(
            |(timestamp_ms, vu_id, step, duration_ms, status, error, bytes)| Row {
                timestamp_ms,
                vu_id,
                step,
                duration_ms,
                success: error.is_none(),
                status,
                error,
                bytes,
            },
        )
        .collect();
    build(name, rows)
}

/// Turns per-request records into a summary: per-step stats, the overall ones merged, and a
/// per-second timeline counted from the first request's start.
fn build(name: &str, rows: Vec<Row>) -> Result<RunSummary, TsError> {
    if rows.is_empty() {
        return Err(TsError::Empty);
    }
    let start = rows.iter().map(|r| r.timestamp_ms).fold(f64::MAX, f64::min);
    let end = rows
        .iter()
        .map(|r| r.timestamp_ms + r.duration_ms)
        .fold(f64::MIN, f64::max);
    let mut names: Vec<String> = Vec::new();
    let mut totals: Vec<StepStats> = Vec::new();
    let mut seconds: BTreeMap<u64, (Vec<StepStats>, BTreeSet<u64>)> = BTreeMap::new();
    for r in &rows {
        let step = match names.iter().position(|n| n == &r.step) {
            Some(i) => i,
            None => {
                names.push(r.step.clone());
                totals.push(StepStats::default());
                names.len() - 1
            }
        };
        let error = match (&r.error, r.success) {
            (Some(e), _) => Some(e.clone()),
            (None, false) => Some(match r.status {
                Some(code) => format!("status {code}"),
                None => "failed".to_string(),
            }),
            (None, true) => None,
        };
        let sample = Sample {
            step,
            latency_us: (r.duration_ms.max(0.0) * 1000.0).round() as u64,
            status: r.status,
            error: if r.success { None } else { error },
            checks_passed: 0,
            failed_checks: Vec::new(),
            bytes: r.bytes,
        };
        totals[step].record(&sample);
        // Second k covers (k-1, k] seconds after the first start, as our timeline does.
        let second = (((r.timestamp_ms - start) / 1000.0).floor() as u64) + 1;
        let slot = seconds.entry(second).or_default();
        if slot.0.len() <= step {
            slot.0.resize(step + 1, StepStats::default());
        }
        slot.0[step].record(&sample);
        slot.1.insert(r.vu_id);
    }
    let timeline: Vec<Point> = seconds
        .into_iter()
        .map(|(second, (mut steps, vus))| {
            steps.resize(names.len(), StepStats::default());
            let mut p = Point::from_interval(&crate::metrics::collector::Interval {
                seq: second,
                elapsed_s: second as f64,
                steps,
                active_vus: vus.len() as u64,
                dropped: 0,
                arrivals: 0,
                target_arrivals: None,
            });
            p.second = second;
            p
        })
        .collect();
    let seconds = ((end - start) / 1000.0).max(0.001);
    Ok(RunSummary::build(
        name,
        &names,
        &totals,
        seconds,
        0,
        timeline,
        &[],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "timestamp,vu_id,iteration,scenario,action,step_name,duration_ms,success,http_status,error,response_size_bytes\n\
1000,1,0,s,a,list,10,true,200,,5\n\
1500,2,0,s,a,,30,false,500,HTTP 500,5\n\
2100,1,1,s,a,list,20,true,200,,5\n";

    #[test]
    fn csv_rows_become_steps_and_seconds() {
        let s = from_csv(CSV.as_bytes(), "t").unwrap();
        assert_eq!(s.overall.count, 3);
        assert_eq!(s.overall.errors, 1);
        let names: Vec<&str> = s.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["list", "a"],
            "an empty step_name falls back to action"
        );
        assert_eq!(s.timeline.len(), 2);
        assert_eq!(s.timeline[0].requests, 2);
        assert_eq!(s.timeline[0].active_vus, 2);
        assert_eq!(s.timeline[1].status.get(&200), Some(&1));
        assert_eq!(s.overall.errors_by_kind.get("HTTP 500"), Some(&1));
    }

    #[test]
    fn bad_records_are_refused_by_index_and_column() {
        let bad = CSV.replace("2100,1,1,s,a,list,20,true", "2100,1,1,s,a,list,fast,true");
        let e = from_csv(bad.as_bytes(), "t").unwrap_err().to_string();
        assert!(e.contains("record 2") && e.contains("duration_ms"), "{e}");
        let e = from_csv(b"a,b\n1,2\n", "t").unwrap_err().to_string();
        assert!(e.contains("`timestamp`"), "{e}");
        let e = from_json(br#"{"results": []}"#, "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no request records"), "{e}");
    }
}
