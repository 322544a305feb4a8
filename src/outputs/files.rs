//! `type: json` and `type: csv`: files, created when the run starts. ndjson and CSV get their
//! records as each second closes (flushed at once); a JSON array is written whole at the end.

use super::{expand_timestamp, Figures, OutputError, Record, RunInfo, Summary, Value};
use crate::config::outputs::{JsonFormat, Output, OutputKind};
use serde_json::json;
use std::fs::File;
use std::io::{BufWriter, Write};

pub(super) struct FileSink {
    path: String,
    kind: Kind,
    percentiles: bool,
    run_id: String,
    test: String,
}

enum Kind {
    Array {
        file: File,
        pretty: bool,
        records: Vec<serde_json::Value>,
    },
    Ndjson(BufWriter<File>),
    Csv {
        out: Box<csv::Writer<File>>,
        fields: Vec<String>,
    },
}

impl FileSink {
    /// Creates the file (and its directory) with the `{{timestamp}}` rule applied.
    pub fn create(o: &Output, info: &RunInfo) -> Result<FileSink, OutputError> {
        let path = expand_timestamp(&o.file_path(&info.test).unwrap_or_default());
        let fail = |source| OutputError::File {
            path: path.clone(),
            source,
        };
        if let Some(dir) = std::path::Path::new(&path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(fail)?;
            }
        }
        let file = File::create(&path).map_err(fail)?;
        let kind = match (o.kind, o.format) {
            (OutputKind::Csv, _) => {
                let mut out = csv::Writer::from_writer(file);
                out.write_record(&o.fields)
                    .and_then(|_| out.flush().map_err(csv::Error::from))
                    .map_err(|e| fail(std::io::Error::other(e)))?;
                Kind::Csv {
                    out: Box::new(out),
                    fields: o.fields.clone(),
                }
            }
            (_, JsonFormat::Ndjson) => Kind::Ndjson(BufWriter::new(file)),
            (_, JsonFormat::Array) => Kind::Array {
                file,
                pretty: o.pretty_print,
                records: Vec::new(),
            },
        };
        tracing::info!(path = %path, "writing the run's records");
        Ok(FileSink {
            path,
            kind,
            percentiles: o.include_percentiles,
            run_id: info.run_id.clone(),
            test: info.test.clone(),
        })
    }

    fn fail(&self, e: impl std::fmt::Display) -> OutputError {
        OutputError::File {
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        }
    }

    pub fn records(&mut self, recs: &[Record]) -> Result<(), OutputError> {
        let pct = self.percentiles;
        let result = match &mut self.kind {
            Kind::Array { records, .. } => {
                records.extend(recs.iter().map(|r| record_json(r, pct)));
                Ok(())
            }
            Kind::Ndjson(w) => (|| {
                for r in recs {
                    let mut v = record_json(r, pct);
                    v["type"] = json!("second");
                    serde_json::to_writer(&mut *w, &v)?;
                    w.write_all(b"\n")?;
                }
                w.flush()?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })(),
            Kind::Csv { out, fields } => (|| {
                for r in recs {
                    let row: Vec<String> = fields.iter().map(|f| record_cell(r, f, pct)).collect();
                    out.write_record(&row)?;
                }
                out.flush()?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })(),
        };
        result.map_err(|e| self.fail(e))
    }

    pub fn finish(&mut self, s: &Summary) -> Result<(), OutputError> {
        let pct = self.percentiles;
        let summary = summary_json(s, pct);
        let (test, run_id) = (self.test.clone(), self.run_id.clone());
        let result = match &mut self.kind {
            Kind::Array {
                file,
                pretty,
                records,
            } => (|| {
                let doc = json!({
                    "test": test,
                    "run_id": run_id,
                    "records": std::mem::take(records),
                    "summary": summary,
                });
                let mut w = BufWriter::new(file);
                if *pretty {
                    serde_json::to_writer_pretty(&mut w, &doc)?;
                } else {
                    serde_json::to_writer(&mut w, &doc)?;
                }
                w.write_all(b"\n")?;
                w.flush()?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })(),
            Kind::Ndjson(w) => (|| {
                let mut v = summary;
                v["type"] = json!("summary");
                serde_json::to_writer(&mut *w, &v)?;
                w.write_all(b"\n")?;
                w.flush()?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })(),
            Kind::Csv { out, fields } => (|| {
                for f in std::iter::once(&s.overall).chain(&s.steps) {
                    let row: Vec<String> =
                        fields.iter().map(|c| summary_cell(s, f, c, pct)).collect();
                    out.write_record(&row)?;
                }
                out.flush()?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })(),
        };
        result.map_err(|e| self.fail(e))?;
        tracing::info!(path = %self.path, "run's records written");
        Ok(())
    }
}

fn num(v: Value) -> serde_json::Value {
    match v {
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
    }
}

fn text(v: Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:.3}"),
    }
}

fn record_json(r: &Record, pct: bool) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("timestamp".into(), json!(r.timestamp));
    m.insert("second".into(), json!(r.second));
    m.insert("step".into(), json!(r.step));
    for (k, v) in r.fields(pct) {
        m.insert(k.into(), num(v));
    }
    serde_json::Value::Object(m)
}

fn figures_json(f: &Figures, pct: bool) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("step".into(), json!(f.step));
    for (k, v) in f.fields(pct) {
        m.insert(k.into(), num(v));
    }
    serde_json::Value::Object(m)
}

fn summary_json(s: &Summary, pct: bool) -> serde_json::Value {
    json!({
        "test": s.test,
        "run_id": s.run_id,
        "timestamp": s.timestamp,
        "passed": s.passed,
        "duration_s": s.duration_s,
        "overall": figures_json(&s.overall, pct),
        "steps": s.steps.iter().map(|f| figures_json(f, pct)).collect::<Vec<_>>(),
        "failed_thresholds": s.failed_thresholds,
    })
}

fn record_cell(r: &Record, column: &str, pct: bool) -> String {
    match column {
        "kind" => "second".into(),
        "timestamp" => r.timestamp.to_string(),
        "second" => r.second.to_string(),
        "step" => r.step.clone(),
        other => r
            .fields(pct)
            .into_iter()
            .find(|(k, _)| *k == other)
            .map(|(_, v)| text(v))
            .unwrap_or_default(),
    }
}

fn summary_cell(s: &Summary, f: &Figures, column: &str, pct: bool) -> String {
    match column {
        "kind" => "summary".into(),
        "timestamp" => s.timestamp.to_string(),
        "second" => String::new(),
        "step" => f.step.clone(),
        other => f
            .fields(pct)
            .into_iter()
            .find(|(k, _)| *k == other)
            .map(|(_, v)| text(v))
            .unwrap_or_default(),
    }
}
