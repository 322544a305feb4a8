//! `outputs:` (where a run's records go while it runs) and `report:` (the HTML report written after
//! it). What one record is: the figures of one step over one second of the run (count, errors, mean,
//! p50/p90/p95/p99, max, from the same per-second intervals as `-o DIR`'s `timeline.ndjson`), plus
//! the run's summary at the end. Individual requests are not kept, so the TypeScript options about
//! request details are refused by name, each with its reason, as is every other key that cannot act.
//!
//! `file` follows the TypeScript rule: a path without `{{timestamp}}` gets `-{{timestamp}}` before
//! its extension (`results/r.json` → `results/r-20261129-185012-345.json`); `{{timestamp}}` is the
//! local time `YYYYMMDD-HHMMSS-mmm` (`{{timestamp:unix}}`, `:iso`, `:file` also work).

use super::duration::de_opt_duration_ms;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The kinds of `outputs[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    Json,
    Csv,
    Influxdb,
    Graphite,
    Webhook,
}

/// How a JSON output file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonFormat {
    /// One document at the end: `{"test", "run_id", "records": [...], "summary": {...}}`.
    Array,
    /// A line per record as each second closes, then a summary line (`stream` means the same).
    Ndjson,
}

/// The CSV columns, in their default order.
pub const CSV_COLUMNS: &[&str] = &[
    "kind",
    "timestamp",
    "second",
    "step",
    "count",
    "errors",
    "mean_ms",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
];

/// Default `batch_size` (lines per write) of InfluxDB and Graphite outputs.
pub const DEFAULT_BATCH: usize = 5_000;
/// Default `flush_interval` of InfluxDB and Graphite outputs.
pub const DEFAULT_FLUSH: Duration = Duration::from_secs(1);

/// One entry of `outputs:`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Output {
    pub kind: OutputKind,
    /// `false` skips the output (default `true`).
    pub enabled: bool,
    /// json/csv: the path as written (the `{{timestamp}}` rule is applied when the run starts).
    pub file: Option<String>,
    /// influxdb: `http://host:8086`; graphite: `host:port` (default `localhost:2003`); webhook: the URL.
    pub url: Option<String>,
    /// influxdb: the database written to (created if missing).
    pub database: Option<String>,
    /// influxdb: the measurement of the per-second points (default `perfornium`); the summary goes
    /// to `<measurement>_summary`.
    pub measurement: String,
    /// influxdb: tags added to every point.
    pub tags: BTreeMap<String, String>,
    /// webhook: headers of the POST.
    pub headers: BTreeMap<String, String>,
    /// webhook: a JSON body with `{{summary.x}}`, `{{test_name}}`, ... placeholders.
    pub template: Option<String>,
    /// json: array (default) or ndjson.
    pub format: JsonFormat,
    /// json array: indented.
    pub pretty_print: bool,
    /// csv: the columns, in order (default [`CSV_COLUMNS`]).
    pub fields: Vec<String>,
    /// false: no p50/p90/p95/p99 in the records (mean and max stay).
    pub include_percentiles: bool,
    /// influxdb/graphite: lines per write.
    pub batch_size: usize,
    /// influxdb/graphite: the longest a closed second waits before it is sent.
    pub flush_interval: Duration,
}

impl Output {
    /// The file this output writes, with the `{{timestamp}}` rule applied (`now` gives the time).
    pub fn file_path(&self, test_name: &str) -> Option<String> {
        let ext = match self.kind {
            OutputKind::Json if self.format == JsonFormat::Ndjson => "ndjson",
            OutputKind::Json => "json",
            OutputKind::Csv => "csv",
            _ => return None,
        };
        let raw = self
            .file
            .clone()
            .unwrap_or_else(|| format!("results/{test_name}.{ext}"));
        Some(with_timestamp(&raw))
    }
}

/// Inserts `-{{timestamp}}` before the extension of a path that has no `{{timestamp…}}`.
pub fn with_timestamp(path: &str) -> String {
    if path.contains("{{timestamp") {
        return path.to_string();
    }
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    match path[name_start..].rfind('.') {
        Some(dot) if dot > 0 => {
            let at = name_start + dot;
            format!("{}-{{{{timestamp}}}}{}", &path[..at], &path[at..])
        }
        _ => format!("{path}-{{{{timestamp}}}}"),
    }
}

/// An `outputs[]` entry as written; every key the TypeScript code or docs define is here, so the
/// ones that cannot act are refused by name with their reason instead of as unknown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    measurement: Option<String>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    pretty_print: Option<bool>,
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    include_percentiles: Option<bool>,
    #[serde(default)]
    batch_size: Option<usize>,
    #[serde(default, deserialize_with = "de_opt_duration_ms")]
    flush_interval: Option<Duration>,
    // Refused by name (see `REFUSED`).
    #[serde(default)]
    include_request_headers: Option<serde_norway::Value>,
    #[serde(default)]
    include_response_headers: Option<serde_norway::Value>,
    #[serde(default)]
    include_request_body: Option<serde_norway::Value>,
    #[serde(default)]
    include_response_body: Option<serde_norway::Value>,
    #[serde(default)]
    max_body_size: Option<serde_norway::Value>,
    #[serde(default)]
    include_extracted_data: Option<serde_norway::Value>,
    #[serde(default)]
    include_check_results: Option<serde_norway::Value>,
    #[serde(default)]
    include_error_details: Option<serde_norway::Value>,
    #[serde(default)]
    include_system_metrics: Option<serde_norway::Value>,
    #[serde(default)]
    buffer_size: Option<serde_norway::Value>,
    #[serde(default)]
    compression: Option<serde_norway::Value>,
    #[serde(default)]
    file_rotation: Option<serde_norway::Value>,
    #[serde(default)]
    field_mapping: Option<serde_norway::Value>,
    #[serde(default)]
    calculated_fields: Option<serde_norway::Value>,
    #[serde(default)]
    csv_options: Option<serde_norway::Value>,
    #[serde(default)]
    real_time: Option<serde_norway::Value>,
    #[serde(default)]
    encoding: Option<serde_norway::Value>,
    #[serde(default)]
    date_format: Option<serde_norway::Value>,
    #[serde(default)]
    custom_date_format: Option<serde_norway::Value>,
    #[serde(default)]
    aggregation: Option<serde_norway::Value>,
    #[serde(default)]
    aggregation_interval: Option<serde_norway::Value>,
    #[serde(default)]
    filter: Option<serde_norway::Value>,
    #[serde(default)]
    interval: Option<serde_norway::Value>,
    #[serde(default)]
    data: Option<serde_norway::Value>,
}

const PER_REQUEST: &str = "a record is one step's figures over one second, not a request (requests are not kept); failing requests' details are captured with `debug:` into summary.json";

impl RawOutput {
    /// The keys refused for every type, each with its reason.
    fn refused(&self) -> Option<(&'static str, &'static str)> {
        let list: [(bool, &'static str, &'static str); 24] = [
            (self.include_request_headers.is_some(), "include_request_headers", PER_REQUEST),
            (self.include_response_headers.is_some(), "include_response_headers", PER_REQUEST),
            (self.include_request_body.is_some(), "include_request_body", PER_REQUEST),
            (self.include_response_body.is_some(), "include_response_body", PER_REQUEST),
            (self.max_body_size.is_some(), "max_body_size", PER_REQUEST),
            (self.include_extracted_data.is_some(), "include_extracted_data", PER_REQUEST),
            (self.include_check_results.is_some(), "include_check_results", "a record is one step's figures over one second; check results are counted per check in the summary (summary.json, the report)"),
            (self.include_error_details.is_some(), "include_error_details", "errors are counted per kind in the summary (summary.json, the report); records carry the error count per second"),
            (self.include_system_metrics.is_some(), "include_system_metrics", "Perfornium-rs collects no system metrics"),
            (self.buffer_size.is_some(), "buffer_size", "closed seconds are queued to the output without a bound (one record per step per second); use `batch_size`/`flush_interval` for InfluxDB and Graphite"),
            (self.compression.is_some(), "compression", "files are written uncompressed"),
            (self.file_rotation.is_some(), "file_rotation", "one file per run (the `{{timestamp}}` in its name keeps runs apart)"),
            (self.field_mapping.is_some(), "field_mapping", "CSV columns keep their names; choose and order them with `fields`"),
            (self.calculated_fields.is_some(), "calculated_fields", "expressions over records are not evaluated"),
            (self.csv_options.is_some(), "csv_options", "CSV is written as RFC 4180 (comma, double quotes, header row)"),
            (self.real_time.is_some(), "real_time", "records are always written as each second closes"),
            (self.encoding.is_some(), "encoding", "files are written as UTF-8"),
            (self.date_format.is_some(), "date_format", "timestamps are Unix milliseconds"),
            (self.custom_date_format.is_some(), "custom_date_format", "timestamps are Unix milliseconds"),
            (self.aggregation.is_some(), "aggregation", "records are always per-step, per-second aggregates"),
            (self.aggregation_interval.is_some(), "aggregation_interval", "records are always per second"),
            (self.filter.is_some(), "filter", "every record is written"),
            (self.interval.is_some(), "interval", "a webhook is sent once, with the summary, when the run ends"),
            (self.data.is_some(), "data", "a webhook's body is the summary, or `template`"),
        ];
        list.into_iter()
            .find(|(present, _, _)| *present)
            .map(|(_, k, why)| (k, why))
    }
}

impl<'de> Deserialize<'de> for Output {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de_converted::<D, RawOutput, Output>(d, "an output (a mapping with `type`)")
    }
}

impl TryFrom<RawOutput> for Output {
    type Error = String;

    fn try_from(raw: RawOutput) -> Result<Self, String> {
        let kind = match raw.kind.as_str() {
            "json" => OutputKind::Json,
            "csv" => OutputKind::Csv,
            "influxdb" => OutputKind::Influxdb,
            "graphite" => OutputKind::Graphite,
            "webhook" => OutputKind::Webhook,
            "html" => {
                return Err("output type `html` is not supported: the HTML report is `report: {generate: true, output: FILE}` (or `--report`)".into())
            }
            other => {
                let known = ["json", "csv", "influxdb", "graphite", "webhook"];
                let near = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(other, k), *k))
                    .filter(|(s, _)| *s >= 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown output type `{other}`{near}: expected json, csv, influxdb, graphite or webhook"
                ));
            }
        };
        if let Some((key, why)) = raw.refused() {
            return Err(format!("`{key}` is not supported: {why}"));
        }
        let t = raw.kind.as_str();
        let only = |present: bool, key: &str, types: &[OutputKind]| -> Result<(), String> {
            if present && !types.contains(&kind) {
                let names: Vec<String> = types
                    .iter()
                    .map(|k| format!("{k:?}").to_lowercase())
                    .collect();
                return Err(format!(
                    "`{key}` does not apply to a `{t}` output (only to {})",
                    names.join(", ")
                ));
            }
            Ok(())
        };
        use OutputKind::*;
        only(raw.file.is_some(), "file", &[Json, Csv])?;
        only(raw.url.is_some(), "url", &[Influxdb, Graphite, Webhook])?;
        only(raw.database.is_some(), "database", &[Influxdb])?;
        only(raw.measurement.is_some(), "measurement", &[Influxdb])?;
        only(raw.tags.is_some(), "tags", &[Influxdb])?;
        only(raw.headers.is_some(), "headers", &[Webhook])?;
        only(raw.template.is_some(), "template", &[Webhook])?;
        only(raw.method.is_some(), "method", &[Webhook])?;
        only(raw.format.is_some(), "format", &[Json])?;
        only(raw.pretty_print.is_some(), "pretty_print", &[Json])?;
        only(raw.fields.is_some(), "fields", &[Csv])?;
        only(
            raw.include_percentiles.is_some(),
            "include_percentiles",
            &[Json, Csv, Influxdb, Graphite],
        )?;
        only(
            raw.batch_size.is_some(),
            "batch_size",
            &[Influxdb, Graphite],
        )?;
        only(
            raw.flush_interval.is_some(),
            "flush_interval",
            &[Influxdb, Graphite],
        )?;
        if let Some(m) = &raw.method {
            if !m.eq_ignore_ascii_case("post") {
                return Err(format!(
                    "webhook `method: {m}` is not supported: the summary is sent with POST"
                ));
            }
        }
        let format = match raw.format.as_deref() {
            None | Some("array") => JsonFormat::Array,
            Some("ndjson") | Some("stream") => JsonFormat::Ndjson,
            Some(other) => {
                return Err(format!(
                    "json `format: {other}` is not supported: expected array, ndjson or stream (the same as ndjson)"
                ))
            }
        };
        if raw.pretty_print == Some(true) && format == JsonFormat::Ndjson {
            return Err(
                "`pretty_print` applies to `format: array` only (ndjson is a line per record)"
                    .into(),
            );
        }
        let fields = match raw.fields {
            Some(f) => {
                for name in &f {
                    if !CSV_COLUMNS.contains(&name.as_str()) {
                        let near = CSV_COLUMNS
                            .iter()
                            .map(|k| (strsim::jaro_winkler(name, k), *k))
                            .filter(|(s, _)| *s >= 0.8)
                            .max_by(|a, b| a.0.total_cmp(&b.0))
                            .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                            .unwrap_or_default();
                        return Err(format!(
                            "csv `fields`: unknown column `{name}`{near}; the columns are {}",
                            CSV_COLUMNS.join(", ")
                        ));
                    }
                }
                if f.is_empty() {
                    return Err("csv `fields` is empty: name at least one column".into());
                }
                f
            }
            None => CSV_COLUMNS.iter().map(|s| s.to_string()).collect(),
        };
        match kind {
            Influxdb => {
                let url = raw.url.as_deref().unwrap_or_default();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "an influxdb output needs `url: http://HOST:8086` (InfluxDB 1.x HTTP API), got `{url}`"
                    ));
                }
                if raw.database.as_deref().unwrap_or_default().is_empty() {
                    return Err("an influxdb output needs `database`".into());
                }
            }
            Graphite => {
                if let Some(u) = &raw.url {
                    let ok = u
                        .rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                    if !ok {
                        return Err(format!(
                            "a graphite output's `url` is `host:port` (carbon's plaintext port, e.g. localhost:2003), got `{u}`"
                        ));
                    }
                }
            }
            Webhook => {
                let url = raw.url.as_deref().unwrap_or_default();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "a webhook output needs `url: http(s)://...`, got `{url}`"
                    ));
                }
            }
            Json | Csv => {}
        }
        if let Some(k) = raw
            .tags
            .iter()
            .flat_map(|t| t.keys())
            .find(|k| ["test", "run_id", "step"].contains(&k.as_str()))
        {
            return Err(format!(
                "influxdb `tags.{k}` is not allowed: every point is already tagged test, run_id and step"
            ));
        }
        if raw.batch_size == Some(0) {
            return Err("`batch_size` must be at least 1".into());
        }
        if raw.flush_interval == Some(Duration::ZERO) {
            return Err("`flush_interval` must be more than 0".into());
        }
        Ok(Output {
            kind,
            enabled: raw.enabled.unwrap_or(true),
            file: raw.file,
            url: match kind {
                Graphite => Some(raw.url.unwrap_or_else(|| "localhost:2003".into())),
                _ => raw.url,
            },
            database: raw.database,
            measurement: raw.measurement.unwrap_or_else(|| "perfornium".into()),
            tags: raw.tags.unwrap_or_default(),
            headers: raw.headers.unwrap_or_default(),
            template: raw.template,
            format,
            pretty_print: raw.pretty_print.unwrap_or(false),
            fields,
            include_percentiles: raw.include_percentiles.unwrap_or(true),
            batch_size: raw.batch_size.unwrap_or(DEFAULT_BATCH),
            flush_interval: raw.flush_interval.unwrap_or(DEFAULT_FLUSH),
        })
    }
}

/// `report:`: the HTML report written when the run ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `false` writes nothing; absent means `true` (the TypeScript tool needs `generate: true`;
    /// a `report:` section is taken as asking for a report).
    pub generate: bool,
    /// The path as written (default `reports/<test>.html`), `{{timestamp}}` rule applied at the end.
    pub output: Option<String>,
    /// The report's title and heading (default: the test's name).
    pub title: Option<String>,
    /// A paragraph under the heading.
    pub description: Option<String>,
}

impl Report {
    /// The file to write, with the `{{timestamp}}` rule applied.
    pub fn path(&self, test_name: &str) -> String {
        let raw = self
            .output
            .clone()
            .unwrap_or_else(|| format!("reports/{test_name}.html"));
        with_timestamp(&raw)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    #[serde(default)]
    generate: Option<bool>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    include_charts: Option<bool>,
    // Refused by name.
    #[serde(default)]
    percentiles: Option<serde_norway::Value>,
    #[serde(default)]
    include_raw_data: Option<serde_norway::Value>,
    #[serde(default)]
    custom_metrics: Option<serde_norway::Value>,
    #[serde(default)]
    auto_refresh: Option<serde_norway::Value>,
    #[serde(default)]
    refresh_interval: Option<serde_norway::Value>,
    #[serde(default)]
    real_time: Option<serde_norway::Value>,
    #[serde(default)]
    websocket_enabled: Option<serde_norway::Value>,
    #[serde(default)]
    sections: Option<serde_norway::Value>,
    #[serde(default)]
    charts: Option<serde_norway::Value>,
    #[serde(default)]
    tables: Option<serde_norway::Value>,
    #[serde(default)]
    styling: Option<serde_norway::Value>,
    #[serde(default)]
    branding: Option<serde_norway::Value>,
    #[serde(default)]
    interactive: Option<serde_norway::Value>,
    #[serde(default)]
    comparison: Option<serde_norway::Value>,
    #[serde(default)]
    sla_reporting: Option<serde_norway::Value>,
    #[serde(default)]
    performance: Option<serde_norway::Value>,
}

impl<'de> Deserialize<'de> for Report {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de_converted::<D, RawReport, Report>(d, "a mapping with `generate` and `output`")
    }
}

impl TryFrom<RawReport> for Report {
    type Error = String;

    fn try_from(raw: RawReport) -> Result<Self, String> {
        let fixed =
            "the report has one layout: the summary, the per-step table and the per-second charts";
        let refused: [(bool, &str, &str); 16] = [
            (raw.percentiles.is_some(), "percentiles", "the report shows p50, p90, p95, p99 and p99.9"),
            (raw.include_raw_data.is_some(), "include_raw_data", "requests are not kept; the raw per-second data is `-o DIR`'s timeline.ndjson or a json/csv output"),
            (raw.custom_metrics.is_some(), "custom_metrics", "there are no custom metrics"),
            (raw.auto_refresh.is_some(), "auto_refresh", "the report is written once, after the run"),
            (raw.refresh_interval.is_some(), "refresh_interval", "the report is written once, after the run"),
            (raw.real_time.is_some(), "real_time", "the report is written once, after the run (live views: `--tui`, the console)"),
            (raw.websocket_enabled.is_some(), "websocket_enabled", "the report is a static file"),
            (raw.sections.is_some(), "sections", fixed),
            (raw.charts.is_some(), "charts", fixed),
            (raw.tables.is_some(), "tables", fixed),
            (raw.styling.is_some(), "styling", fixed),
            (raw.branding.is_some(), "branding", fixed),
            (raw.interactive.is_some(), "interactive", fixed),
            (raw.comparison.is_some(), "comparison", "one run per report"),
            (raw.sla_reporting.is_some(), "sla_reporting", "the report shows every threshold's verdict"),
            (raw.performance.is_some(), "performance", "the report is small and written at once"),
        ];
        if let Some((_, key, why)) = refused.iter().find(|(p, _, _)| *p) {
            return Err(format!("`{key}` is not supported: {why}"));
        }
        if let Some(t) = raw.template.as_deref() {
            if t != "default" {
                return Err(format!(
                    "`template: {t}` is not supported: {fixed} (`default`)"
                ));
            }
        }
        if raw.include_charts == Some(false) {
            return Err(format!("`include_charts: false` is not supported: {fixed}"));
        }
        Ok(Report {
            generate: raw.generate.unwrap_or(true),
            output: raw.output,
            title: raw.title,
            description: raw.description,
        })
    }
}

/// The `outputs:` and `report:` lines of `perfornium validate --explain`.
pub fn explain(test: &super::TestFile, out: &mut String) {
    use std::fmt::Write;
    if !test.outputs.is_empty() {
        let _ = writeln!(
            out,
            "outputs: one record per step per second (count, errors, mean, p50/p90/p95/p99, max in ms, stamped with the run's start plus that second) from the same intervals as `-o DIR`'s timeline.ndjson, then the run's summary; requests are not kept. A distributed run writes the controller's merged seconds, once"
        );
    }
    for o in &test.outputs {
        let what = match o.kind {
            OutputKind::Json | OutputKind::Csv => format!(
                "{} {} ({}{}; a `file` without {{{{timestamp}}}} gets one before its extension, local time YYYYMMDD-HHMMSS-mmm; relative to the working directory)",
                format!("{:?}", o.kind).to_lowercase(),
                o.file_path(&test.name).unwrap_or_default(),
                match (o.kind, o.format) {
                    (OutputKind::Csv, _) => format!("columns {}", o.fields.join(",")),
                    (_, JsonFormat::Array) => "one document written at the end".into(),
                    (_, JsonFormat::Ndjson) => "a line per record as each second closes, then the summary".into(),
                },
                if o.include_percentiles { "" } else { ", no percentiles" }
            ),
            OutputKind::Influxdb => format!(
                "influxdb {} database {} (created if missing), measurement `{}` tagged test, run_id, step{}; the summary in `{}_summary`; line protocol, precision ms, up to {} lines per write every {} ms; a failed write is logged and retried at the next flush",
                o.url.as_deref().unwrap_or_default(),
                o.database.as_deref().unwrap_or_default(),
                o.measurement,
                o.tags.keys().map(|k| format!(", {k}")).collect::<String>(),
                o.measurement,
                o.batch_size,
                o.flush_interval.as_millis()
            ),
            OutputKind::Graphite => format!(
                "graphite {} (plaintext TCP): perfornium.<test>.<step>.<metric> per second, perfornium.<test>.summary.<step|all>.<metric> at the end; up to {} lines per write every {} ms",
                o.url.as_deref().unwrap_or_default(),
                o.batch_size,
                o.flush_interval.as_millis()
            ),
            OutputKind::Webhook => format!(
                "webhook POST {} once, when the run ends: {}{}",
                o.url.as_deref().unwrap_or_default(),
                if o.template.is_some() { "the template rendered (must be JSON)" } else { "the summary as JSON" },
                if o.headers.is_empty() { String::new() } else { format!(", headers {}", o.headers.keys().cloned().collect::<Vec<_>>().join(", ")) }
            ),
        };
        let _ = writeln!(out, "  {}{what}", if o.enabled { "" } else { "disabled: " });
    }
    if let Some(r) = &test.report {
        if r.generate {
            let _ = writeln!(
                out,
                "report: HTML written after the run to {} (title: {}){}",
                r.path(&test.name),
                r.title.as_deref().unwrap_or(&test.name),
                if r.description.is_some() {
                    ", with its description"
                } else {
                    ""
                }
            );
        } else {
            let _ = writeln!(out, "report: `generate: false`, none written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_goes_before_the_extension_unless_written() {
        assert_eq!(
            with_timestamp("results/r.json"),
            "results/r-{{timestamp}}.json"
        );
        assert_eq!(with_timestamp("out/report"), "out/report-{{timestamp}}");
        assert_eq!(with_timestamp("a.b/report"), "a.b/report-{{timestamp}}");
        assert_eq!(with_timestamp(".hidden"), ".hidden-{{timestamp}}");
        assert_eq!(with_timestamp("r-{{timestamp}}.csv"), "r-{{timestamp}}.csv");
        assert_eq!(
            with_timestamp("r-{{timestamp:unix}}.csv"),
            "r-{{timestamp:unix}}.csv"
        );
    }

    fn one(text: &str) -> Result<Output, String> {
        serde_norway::from_str::<Output>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn each_type_takes_its_own_keys() {
        let o = one("{type: influxdb, url: 'http://h:8086', database: d, tags: {env: ci}, batch_size: 10, flush_interval: 500}").unwrap();
        assert_eq!(o.batch_size, 10);
        assert_eq!(o.flush_interval, Duration::from_millis(500));
        assert_eq!(o.tags["env"], "ci");
        assert!(one("{type: json, file: r.json, database: d}")
            .unwrap_err()
            .contains("`database` does not apply to a `json` output"));
        assert!(one("{type: influxdb, url: 'http://h:8086'}")
            .unwrap_err()
            .contains("needs `database`"));
        assert!(one("{type: jsn}")
            .unwrap_err()
            .contains("did you mean `json`?"));
        assert!(one("{type: html}").unwrap_err().contains("report:"));
        assert!(
            one("{type: influxdb, url: 'http://h:8086', database: d, tags: {step: x}}")
                .unwrap_err()
                .contains("already tagged")
        );
        assert!(one("{type: json, include_response_body: true}")
            .unwrap_err()
            .contains("`include_response_body` is not supported"));
        assert!(one("{type: csv, fields: [count, stpe]}")
            .unwrap_err()
            .contains("did you mean `step`?"));
        assert!(one("{type: graphite, url: nowhere}")
            .unwrap_err()
            .contains("host:port"));
        assert_eq!(
            one("{type: graphite}").unwrap().url.as_deref(),
            Some("localhost:2003")
        );
        assert!(!one("{type: json, enabled: false}").unwrap().enabled);
        assert_eq!(
            one("{type: json, format: stream}").unwrap().format,
            JsonFormat::Ndjson
        );
    }

    #[test]
    fn report_keys_act_or_are_refused() {
        let r: Report =
            serde_norway::from_str("{generate: true, output: r.html, title: T, template: default}")
                .unwrap();
        assert!(r.generate);
        assert_eq!(r.path("t"), "r-{{timestamp}}.html");
        let e = serde_norway::from_str::<Report>("{generate: true, charts: [a]}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`charts` is not supported"), "{e}");
        let e = serde_norway::from_str::<Report>("{generate: true, outptu: x}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `outptu`"), "{e}");
    }
}
