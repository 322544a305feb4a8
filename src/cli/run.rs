//! `perfornium run TEST.yaml`: the whole test in this process.

use super::args::{Output, OverrideArgs};
use super::{output, shutdown};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a test in this process.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The test file.
    file: PathBuf,
    #[command(flatten)]
    over: OverrideArgs,
    #[command(flatten)]
    output: Output,
    /// Load and check the test (with the overrides), print `ok`, and run nothing.
    #[arg(long)]
    dry_run: bool,
}

impl RunArgs {
    /// Runs the test, prints the summary, writes the outputs; the exit code is the verdict.
    pub async fn run(self) -> Result<ExitCode> {
        let test = self.over.load(&self.file)?;
        if self.dry_run {
            println!("ok");
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(level) = test.global.debug.as_ref().and_then(|d| d.level()) {
            super::logs::set_test_level(level);
        }
        let stop = shutdown::on_ctrl_c("stopping: requests in flight will finish and be counted");
        let summary = perfornium::local::run(test, stop).await?;
        output::write(&summary, &self.output)?;
        Ok(output::verdict(&summary))
    }
}
