//! `perfornium report RESULTS`: saved results turned into the self-contained HTML report. RESULTS
//! is our `summary.json` (from `-o`), or the TypeScript tool's JSON or CSV results (its `outputs:`
//! files), read record by record into the same summary, or our raw data (`*.ndjson.zst`, or a
//! directory of them) with every figure recomputed from the requests.

use anyhow::{bail, Context, Result};
use clap::Args;
use perfornium::report::{self, RunSummary};
use std::path::PathBuf;
use std::process::ExitCode;

/// Turn saved results (our summary.json, or the TypeScript tool's JSON or CSV results) into a
/// self-contained HTML report.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Our summary.json (written by `-o`), the TypeScript tool's JSON or CSV results, or our raw
    /// data (`format.raw_data`: a `.ndjson.zst` file, or a directory of them, read as one run).
    results: PathBuf,
    /// The HTML file to write; `{{timestamp}}` (or `{{timestamp:unix|iso|readable|file}}`) in it
    /// is replaced by the time now, as in the test file's output names.
    #[arg(
        short = 'o',
        long,
        visible_alias = "output",
        default_value = "report.html"
    )]
    out: String,
    /// The report's title and heading [default: the test's name].
    #[arg(long)]
    title: Option<String>,
    /// The TypeScript tool's custom Handlebars template: refused (our report is not made from a
    /// template, so a template would be silently ignored).
    #[arg(short = 't', long, value_name = "TEMPLATE")]
    template: Option<PathBuf>,
    /// Also write the summary the report shows as JSON (summary.json's format): with raw data,
    /// the figures recomputed from every request.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// A raw data file's name and bytes.
type RawFile = (String, Vec<u8>);

impl ReportArgs {
    /// Reads the results and writes the report.
    pub fn run(self) -> Result<ExitCode> {
        if let Some(t) = &self.template {
            bail!(
                "--template {}: custom report templates are not supported (the report is built in \
                 code as one self-contained page, not from a Handlebars template); use --title, \
                 or the test file's `report: {{ title, description }}`",
                t.display()
            );
        }
        let (summary, note) = match self.raw_files()? {
            Some(files) => {
                let name = self.results.file_stem().map_or("raw".into(), |s| {
                    s.to_string_lossy().trim_end_matches(".ndjson").to_string()
                });
                let s = report::raw::from_files(&name, &files)?;
                let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
                let note = format!(
                    "Recomputed from raw data {} ({} requests).",
                    names.join(", "),
                    s.overall.count
                );
                (s, Some(note))
            }
            None => self.read_summary()?,
        };
        if let Some(path) = &self.json {
            std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let out = PathBuf::from(perfornium::outputs::expand_timestamp(&self.out));
        if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let title = self.title.as_deref().unwrap_or(&summary.name);
        let html = report::html::render_titled(&summary, title, note.as_deref());
        std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("report written to {}", out.display());
        Ok(ExitCode::SUCCESS)
    }

    /// Our raw data (`format.raw_data`): a `.ndjson.zst` file, or a directory of them (a
    /// distributed run's `raw/`, one per worker), read as one run. `None`: another kind of file.
    fn raw_files(&self) -> Result<Option<Vec<RawFile>>> {
        let p = &self.results;
        let is_raw = |p: &std::path::Path| p.to_string_lossy().ends_with(".ndjson.zst");
        let paths: Vec<PathBuf> = if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_raw(p))
                .collect();
            v.sort();
            if v.is_empty() {
                bail!(
                    "{}: a directory, with no raw data (*.ndjson.zst) in it",
                    p.display()
                );
            }
            v
        } else if is_raw(p) {
            vec![p.clone()]
        } else {
            return Ok(None);
        };
        let mut files = Vec::new();
        for f in paths {
            let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
            files.push((f.display().to_string(), bytes));
        }
        Ok(Some(files))
    }

    /// Our summary.json, or the TypeScript tool's JSON or CSV results.
    fn read_summary(&self) -> Result<(RunSummary, Option<String>)> {
        let text = std::fs::read(&self.results)
            .with_context(|| format!("reading {}", self.results.display()))?;
        let stem = self
            .results
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "results".into());
        let is_csv = self
            .results
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let (summary, note) = if is_csv {
            let s = report::ts::from_csv(&text, &stem).with_context(|| {
                format!(
                    "{} (read as the TypeScript tool's CSV results)",
                    self.results.display()
                )
            })?;
            let note = format!(
                "From the TypeScript tool's CSV results {} ({} requests).",
                self.results.display(),
                s.overall.count
            );
            (s, Some(note))
        } else {
            let value: serde_json::Value = serde_json::from_slice(&text).with_context(|| {
                format!(
                    "{} is not a perfornium summary.json (nor the TypeScript tool's JSON results)",
                    self.results.display()
                )
            })?;
            if value.get("overall").is_none() && value.get("results").is_some() {
                let s = report::ts::from_json(&text, &stem).with_context(|| {
                    format!(
                        "{} (read as the TypeScript tool's JSON results)",
                        self.results.display()
                    )
                })?;
                let note = format!(
                    "From the TypeScript tool's JSON results {} ({} requests).",
                    self.results.display(),
                    s.overall.count
                );
                (s, Some(note))
            } else {
                let s: RunSummary = serde_json::from_value(value).with_context(|| {
                    format!(
                        "{} is not a perfornium summary.json",
                        self.results.display()
                    )
                })?;
                (s, None)
            }
        };
        Ok((summary, note))
    }
}
