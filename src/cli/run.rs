//! `perfornium run TEST.yaml`: the whole test in this process.

use super::args::{Access, CallTlsArgs, DriveArgs, Output, OverrideArgs, PlanArgs, Screen};
use super::{output, shutdown};
use anyhow::Context as _;
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
    /// Run across these workers (host:port,host:port) instead of in this process: the same
    /// controller as `perfornium distributed`, headless, the split from the test or capacity_based.
    #[arg(short = 'w', long, conflicts_with = "workers_file")]
    workers: Option<String>,
    /// Run across the workers of this workers.json file (as `-w`).
    #[arg(long)]
    workers_file: Option<PathBuf>,
    #[command(flatten)]
    access: Access,
}

impl RunArgs {
    /// Runs the test, prints the summary, writes the outputs; the exit code is the verdict.
    pub async fn run(self) -> Result<ExitCode> {
        let test = self.over.load(&self.file)?;
        let distributed = self.workers.is_some() || self.workers_file.is_some();
        // A token only authenticates to workers: on a local run it would be accepted and unused.
        // (PERFORNIUM_TOKEN in the environment is left alone; only the flags are refused.)
        let token_flag = self.access.token.is_some()
            && std::env::var("PERFORNIUM_TOKEN").ok() != self.access.token;
        if !distributed && (token_flag || self.access.token_file.is_some()) {
            anyhow::bail!(
                "--token and --token-file authenticate to workers: give them with -w or --workers-file"
            );
        }
        if self.dry_run {
            println!("ok");
            return Ok(ExitCode::SUCCESS);
        }
        if distributed {
            let drive = DriveArgs {
                plan: PlanArgs {
                    workers: self.workers,
                    workers_file: self.workers_file,
                    strategy: None,
                    sync_start: false,
                },
                tls: CallTlsArgs {
                    ca: None,
                    client_cert: None,
                    client_key: None,
                },
                access: self.access,
                over: self.over,
                output: self.output,
                screen: Screen { no_tui: true },
            };
            return super::distributed::DistributedArgs::from_run(self.file, drive)
                .run()
                .await;
        }
        if let Some(level) = test.global.debug.as_ref().and_then(|d| d.level()) {
            super::logs::set_test_level(level);
        }
        let stop = shutdown::on_ctrl_c("stopping: requests in flight will finish and be counted");
        // `format.raw_data`: every sample goes to -o DIR/raw.ndjson.zst (`{{timestamp}}` in -o is
        // filled in once, for the raw file and the outputs alike).
        let mut out = self.output;
        out.out = out.out.map(|p| {
            std::path::PathBuf::from(perfornium::outputs::expand_timestamp(&p.to_string_lossy()))
        });
        let raw_data =
            perfornium::config::results::Results::of(&test).is_some_and(|r| r.raw_data());
        let raw_file = match (&out.out, raw_data) {
            (_, false) => None,
            (Some(dir), true) if dir.extension().is_none_or(|e| !e.eq_ignore_ascii_case("json")) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Some(dir.join("raw.ndjson.zst"))
            }
            _ => anyhow::bail!(
                "results.collection.format.raw_data: a local run writes every request sample to -o DIR/raw.ndjson.zst: give -o with a directory"
            ),
        };
        let summary = perfornium::local::run_keeping(test, stop, raw_file.as_deref()).await?;
        if let Some(f) = &raw_file {
            eprintln!("raw data written to {}", f.display());
        }
        output::write(&summary, &out)?;
        Ok(output::verdict(&summary))
    }
}
