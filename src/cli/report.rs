//! `perfornium report RESULTS.json`: a saved summary turned into the self-contained HTML report.

use anyhow::{Context, Result};
use clap::Args;
use perfornium::report::{self, RunSummary};
use std::path::PathBuf;
use std::process::ExitCode;

/// Turn a saved summary.json into a self-contained HTML report.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A summary.json written by `-o DIR`.
    results: PathBuf,
    #[arg(short = 'o', long, default_value = "report.html")]
    out: PathBuf,
}

impl ReportArgs {
    /// Reads the summary and writes the report.
    pub fn run(self) -> Result<ExitCode> {
        let text = std::fs::read(&self.results)
            .with_context(|| format!("reading {}", self.results.display()))?;
        let summary: RunSummary = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is not a perfornium summary.json",
                self.results.display()
            )
        })?;
        std::fs::write(&self.out, report::html::render(&summary))
            .with_context(|| format!("writing {}", self.out.display()))?;
        eprintln!("report written to {}", self.out.display());
        Ok(ExitCode::SUCCESS)
    }
}
