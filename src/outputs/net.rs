//! The network sinks: InfluxDB 1.x (line protocol over HTTP), Graphite (carbon's plaintext
//! protocol over TCP) and a webhook (one POST with the summary). Lines wait in a buffer and are
//! sent every `flush_interval` or when `batch_size` of them are waiting; a write that fails is
//! logged with the run id and the lines stay for the next flush. When the run ends the rest is
//! sent, with one more try; whatever still fails is logged as lost.

use super::{Record, RunInfo, Summary, Value};
use crate::config::outputs::Output;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

const TIMEOUT: Duration = Duration::from_secs(3);

/// Buffered lines and when they were last sent.
struct Buffer {
    lines: Vec<String>,
    batch: usize,
    every: Duration,
    last: Instant,
}

impl Buffer {
    fn new(o: &Output) -> Buffer {
        Buffer {
            lines: Vec::new(),
            batch: o.batch_size,
            every: o.flush_interval,
            last: Instant::now(),
        }
    }

    fn due(&self) -> bool {
        !self.lines.is_empty()
            && (self.lines.len() >= self.batch || self.last.elapsed() >= self.every)
    }
}

// ---------------------------------------------------------------------------------------------
// InfluxDB 1.x

pub(super) struct Influx {
    client: reqwest::Client,
    base: String,
    database: String,
    measurement: String,
    tags: String,
    percentiles: bool,
    run_id: String,
    created: bool,
    buf: Buffer,
    /// Lines sent and acknowledged (204), for the final log line.
    written: u64,
}

/// Escapes a measurement name (commas and spaces).
fn esc_measurement(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(' ', "\\ ")
}

/// Escapes a tag key or value (commas, equals signs and spaces).
fn esc_tag(s: &str) -> String {
    esc_measurement(s).replace('=', "\\=")
}

fn field(v: Value) -> String {
    match v {
        Value::Int(i) => format!("{i}i"),
        Value::Float(f) => format!("{f}"),
    }
}

impl Influx {
    pub fn new(o: &Output, info: &RunInfo) -> Influx {
        let mut tags = std::collections::BTreeMap::new();
        for (k, v) in &o.tags {
            tags.insert(k.clone(), v.clone());
        }
        tags.insert("test".into(), info.test.clone());
        tags.insert("run_id".into(), info.run_id.clone());
        let tags = tags
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!(",{}={}", esc_tag(k), esc_tag(v)))
            .collect();
        Influx {
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            base: o
                .url
                .clone()
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string(),
            database: o.database.clone().unwrap_or_default(),
            measurement: esc_measurement(&o.measurement),
            tags,
            percentiles: o.include_percentiles,
            run_id: info.run_id.clone(),
            created: false,
            buf: Buffer::new(o),
            written: 0,
        }
    }

    pub fn records(&mut self, recs: &[Record]) {
        for r in recs {
            let fields: Vec<String> = r
                .fields(self.percentiles)
                .into_iter()
                .map(|(k, v)| format!("{k}={}", field(v)))
                .collect();
            self.buf.lines.push(format!(
                "{}{},step={} {} {}",
                self.measurement,
                self.tags,
                esc_tag(&r.step),
                fields.join(","),
                r.timestamp
            ));
        }
    }

    pub async fn flush_if_due(&mut self) {
        if self.buf.due() {
            self.flush().await;
        }
    }

    /// `CREATE DATABASE` (a no-op when it exists), once it has succeeded.
    async fn create(&mut self) -> Result<(), String> {
        if self.created {
            return Ok(());
        }
        let q = format!("CREATE DATABASE \"{}\"", self.database.replace('"', "\\\""));
        let resp = self
            .client
            .post(format!("{}/query", self.base))
            .form(&[("q", q)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("CREATE DATABASE answered {}", resp.status()));
        }
        self.created = true;
        Ok(())
    }

    /// Sends the waiting lines, `batch_size` per request; what fails stays for the next flush.
    async fn flush(&mut self) {
        self.buf.last = Instant::now();
        if let Err(e) = self.create().await {
            warn!(run_id = %self.run_id, url = %self.base, waiting = self.buf.lines.len(), "influxdb: {e}; will retry at the next flush");
            return;
        }
        while !self.buf.lines.is_empty() {
            let n = self.buf.batch.min(self.buf.lines.len());
            let body = self.buf.lines[..n].join("\n");
            let sent = self
                .client
                .post(format!("{}/write", self.base))
                .query(&[("db", self.database.as_str()), ("precision", "ms")])
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    self.buf.lines.drain(..n);
                    self.written += n as u64;
                    debug!(run_id = %self.run_id, lines = n, "influxdb: written");
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    warn!(run_id = %self.run_id, url = %self.base, waiting = self.buf.lines.len(), "influxdb: write answered {status}: {}; will retry at the next flush", text.trim());
                    return;
                }
                Err(e) => {
                    warn!(run_id = %self.run_id, url = %self.base, waiting = self.buf.lines.len(), "influxdb: write failed: {e}; will retry at the next flush");
                    return;
                }
            }
        }
    }

    pub async fn finish(&mut self, s: &Summary) {
        for f in std::iter::once(&s.overall).chain(&s.steps) {
            let fields: Vec<String> = f
                .fields(self.percentiles)
                .into_iter()
                .map(|(k, v)| format!("{k}={}", field(v)))
                .collect();
            self.buf.lines.push(format!(
                "{}_summary{},step={} {},passed={} {}",
                self.measurement,
                self.tags,
                esc_tag(&f.step),
                fields.join(","),
                s.passed,
                s.timestamp
            ));
        }
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            self.flush().await;
            if self.buf.lines.is_empty() {
                info!(run_id = %self.run_id, lines = self.written, database = %self.database, "influxdb: run written");
                return;
            }
        }
        warn!(run_id = %self.run_id, lost = self.buf.lines.len(), written = self.written, "influxdb: points not written when the run ended");
    }
}

// ---------------------------------------------------------------------------------------------
// Graphite

pub(super) struct Graphite {
    addr: String,
    prefix: String,
    percentiles: bool,
    run_id: String,
    conn: Option<TcpStream>,
    buf: Buffer,
    written: u64,
}

/// A metric path segment: letters, digits, `-` and `_` kept, anything else `_`.
pub fn segment(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

impl Graphite {
    pub fn new(o: &Output, info: &RunInfo) -> Graphite {
        Graphite {
            addr: o.url.clone().unwrap_or_else(|| "localhost:2003".into()),
            prefix: format!("perfornium.{}", segment(&info.test)),
            percentiles: o.include_percentiles,
            run_id: info.run_id.clone(),
            conn: None,
            buf: Buffer::new(o),
            written: 0,
        }
    }

    pub fn records(&mut self, recs: &[Record]) {
        for r in recs {
            let ts = r.timestamp / 1000;
            for (k, v) in r.fields(self.percentiles) {
                self.buf.lines.push(format!(
                    "{}.{}.{k} {} {ts}\n",
                    self.prefix,
                    segment(&r.step),
                    plain(v)
                ));
            }
        }
    }

    pub async fn flush_if_due(&mut self) {
        if self.buf.due() {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        self.buf.last = Instant::now();
        while !self.buf.lines.is_empty() {
            if self.conn.is_none() {
                match tokio::time::timeout(TIMEOUT, TcpStream::connect(&self.addr)).await {
                    Ok(Ok(c)) => self.conn = Some(c),
                    Ok(Err(e)) => {
                        warn!(run_id = %self.run_id, addr = %self.addr, waiting = self.buf.lines.len(), "graphite: cannot connect: {e}; will retry at the next flush");
                        return;
                    }
                    Err(_) => {
                        warn!(run_id = %self.run_id, addr = %self.addr, "graphite: connect timed out; will retry at the next flush");
                        return;
                    }
                }
            }
            let n = self.buf.batch.min(self.buf.lines.len());
            let body = self.buf.lines[..n].concat();
            let conn = self.conn.as_mut().expect("connected above");
            match tokio::time::timeout(TIMEOUT, conn.write_all(body.as_bytes())).await {
                Ok(Ok(())) => {
                    self.buf.lines.drain(..n);
                    self.written += n as u64;
                }
                Ok(Err(e)) => {
                    self.conn = None;
                    warn!(run_id = %self.run_id, addr = %self.addr, "graphite: write failed: {e}; will retry at the next flush");
                    return;
                }
                Err(_) => {
                    self.conn = None;
                    warn!(run_id = %self.run_id, addr = %self.addr, "graphite: write timed out; will retry at the next flush");
                    return;
                }
            }
        }
    }

    pub async fn finish(&mut self, s: &Summary) {
        let ts = s.timestamp / 1000;
        for f in std::iter::once(&s.overall).chain(&s.steps) {
            for (k, v) in f.fields(self.percentiles) {
                self.buf.lines.push(format!(
                    "{}.summary.{}.{k} {} {ts}\n",
                    self.prefix,
                    segment(&f.step),
                    plain(v)
                ));
            }
        }
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            self.flush().await;
            if self.buf.lines.is_empty() {
                break;
            }
        }
        if let Some(mut c) = self.conn.take() {
            let _ = c.shutdown().await;
        }
        if self.buf.lines.is_empty() {
            info!(run_id = %self.run_id, lines = self.written, addr = %self.addr, "graphite: run written");
        } else {
            warn!(run_id = %self.run_id, lost = self.buf.lines.len(), "graphite: lines not written when the run ended");
        }
    }
}

fn plain(v: Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook

pub(super) struct Webhook {
    client: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    template: Option<String>,
    run_id: String,
}

impl Webhook {
    pub fn new(o: &Output, info: &RunInfo) -> Webhook {
        Webhook {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            url: o.url.clone().unwrap_or_default(),
            headers: o
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            template: o.template.clone(),
            run_id: info.run_id.clone(),
        }
    }

    /// The body: the template rendered, or `{"type": "test_completed", ..., "summary": {...}}`.
    pub fn body(&self, s: &Summary) -> Result<serde_json::Value, String> {
        let summary = serde_json::to_value(s).map_err(|e| e.to_string())?;
        let Some(t) = &self.template else {
            return Ok(serde_json::json!({
                "type": "test_completed",
                "test": s.test,
                "run_id": s.run_id,
                "passed": s.passed,
                "summary": summary,
            }));
        };
        let success = if s.overall.count == 0 {
            100.0
        } else {
            100.0 - s.overall.error_rate
        };
        let context = serde_json::json!({
            "summary": summary,
            "test_name": s.test,
            "run_id": s.run_id,
            "passed": s.passed,
            "success_rate": format!("{success:.2}"),
            "avg_response_time": format!("{:.2}", s.overall.mean_ms),
            "total_requests": s.overall.count,
            "total_duration": (s.duration_s * 1000.0).round() as u64,
        });
        let rendered = render(t, &context)?;
        serde_json::from_str(&rendered)
            .map_err(|e| format!("the rendered `template` is not JSON ({e}): {rendered}"))
    }

    pub async fn finish(&mut self, s: &Summary) {
        let body = match self.body(s) {
            Ok(b) => b,
            Err(e) => {
                warn!(run_id = %self.run_id, url = %self.url, "webhook: not sent: {e}");
                return;
            }
        };
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let mut req = self.client.post(&self.url).body(body.to_string());
            let has = |name: &str| {
                self.headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case(name))
            };
            if !has("content-type") {
                req = req.header("Content-Type", "application/json");
            }
            if !has("user-agent") {
                req = req.header(
                    "User-Agent",
                    concat!("perfornium/", env!("CARGO_PKG_VERSION")),
                );
            }
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    info!(run_id = %self.run_id, url = %self.url, "webhook: summary sent");
                    return;
                }
                Ok(r) => {
                    warn!(run_id = %self.run_id, url = %self.url, "webhook: answered {}", r.status())
                }
                Err(e) => warn!(run_id = %self.run_id, url = %self.url, "webhook: {e}"),
            }
        }
        warn!(run_id = %self.run_id, url = %self.url, "webhook: summary not delivered");
    }
}

/// Replaces each `{{path.to.value}}` with that value of `context` (strings without quotes,
/// numbers and booleans as written, objects as JSON); an unknown path is an error.
fn render(t: &str, context: &serde_json::Value) -> Result<String, String> {
    let re = regex::Regex::new(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}").expect("a fixed pattern");
    let mut missing = None;
    let out = re.replace_all(t, |c: &regex::Captures| {
        let path = &c[1];
        let mut v = context;
        for part in path.split('.') {
            match v.get(part) {
                Some(next) => v = next,
                None => {
                    missing.get_or_insert_with(|| path.to_string());
                    return String::new();
                }
            }
        }
        match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    });
    match missing {
        Some(p) => Err(format!("`{{{{{p}}}}}` in the webhook template names no value (known: summary.*, test_name, run_id, passed, success_rate, avg_response_time, total_requests, total_duration)")),
        None => Ok(out.into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_protocol_escapes_tags() {
        assert_eq!(esc_tag("a b,c=d"), "a\\ b\\,c\\=d");
        assert_eq!(segment("GET /users"), "GET__users");
    }

    #[test]
    fn templates_take_dotted_paths_and_refuse_unknown_ones() {
        let ctx = serde_json::json!({"summary": {"overall": {"count": 7}}, "test_name": "t"});
        assert_eq!(
            render(
                r#"{"n": {{summary.overall.count}}, "t": "{{ test_name }}"}"#,
                &ctx
            )
            .unwrap(),
            r#"{"n": 7, "t": "t"}"#
        );
        assert!(render("{{nope}}", &ctx).unwrap_err().contains("nope"));
    }
}
