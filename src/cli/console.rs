//! `perfornium console`: attach to whichever replica leads, optionally submit a run, follow it.

use super::args::DriveArgs;
use super::output;
use anyhow::Result;
use clap::Args;
use perfornium::api::master::Submit;
use perfornium::console::{self, client::ClusterClient};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long the console keeps trying to reach a leader to submit a run.
const DEFAULT_PATIENCE: &str = "20s";

/// Attach to the master cluster's leader; optionally submit a run; follow it to the end.
#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// Replicas: host:port,host:port,host:port.
    #[arg(long, value_delimiter = ',', required = true)]
    cluster: Vec<String>,
    /// A test to submit (otherwise the current or latest run is shown). Without -w or
    /// --workers-file it runs on the workers registered with the cluster (GET /workers).
    file: Option<PathBuf>,
    #[command(flatten)]
    pub drive: DriveArgs,
    /// Without -w/--workers-file: run on the registered pool's workers of this region only.
    #[arg(long, value_name = "REGION")]
    pool_region: Option<String>,
    /// Without -w/--workers-file: only registered workers with this label (KEY=VALUE, repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pool_label: Vec<String>,
    /// How long to keep trying to reach a leader before giving up (exit 2).
    #[arg(long, env = "PERFORNIUM_CONSOLE_PATIENCE", value_parser = super::args::duration, default_value = DEFAULT_PATIENCE)]
    patience: Duration,
}

impl ConsoleArgs {
    /// Picks the run, shows it (console or progress lines), and exits with its verdict.
    pub async fn run(self) -> Result<ExitCode> {
        let submit = match &self.file {
            Some(f) => Some(self.submission(f)?),
            None => None,
        };
        let addrs: Vec<String> = self
            .cluster
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        anyhow::ensure!(!addrs.is_empty(), "--cluster needs at least one host:port");
        use perfornium::config::security::Permission;
        let needs: &[Permission] = match &submit {
            Some(_) => &[Permission::ExecuteTests, Permission::ViewAllResults],
            None => &[Permission::ViewAllResults],
        };
        let sec = submit
            .as_ref()
            .and_then(|s| s.test.as_ref())
            .and_then(|t| t.distributed.as_ref())
            .and_then(|d| d.security.clone());
        let caller = super::args::caller(
            sec.as_ref(),
            &self.drive.tls,
            &addrs,
            "master",
            "console",
            needs,
        )?;
        let tls = caller.tls;
        let mut client = ClusterClient::new(addrs, self.drive.access.token()?, tls.as_ref())
            .with_mint(caller.mint);
        let run_id = match console::pick_run(&mut client, submit, self.patience).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let last = if self.drive.screen.tui() {
            console::screen::attach(client, run_id).await?
        } else {
            eprintln!("following run {run_id}");
            console::headless(client, run_id, Duration::from_secs(2)).await
        };
        output::finish_console(last, &self.drive.output)
    }

    /// The body of `POST /runs`: the test with overrides applied and CSV rows inlined (the master
    /// may run on another machine and never reads this one's disk).
    fn submission(&self, file: &std::path::Path) -> Result<Submit> {
        let mut test = self.drive.over.load(file)?;
        if test.outputs.iter().any(|o| o.enabled)
            || test.report.as_ref().is_some_and(|r| r.generate)
        {
            anyhow::bail!(
                "{}: `outputs:` and `report:` are written by `perfornium run` and `perfornium distributed`; \
                 a run submitted to a master cluster is not (its leader may change mid-run): use `-o DIR` \
                 and `--report` here, or set `enabled: false` / `generate: false`",
                file.display()
            );
        }
        perfornium::control::data::inline_rows(&mut test)?;
        let named = self.drive.plan.workers.is_some() || self.drive.plan.workers_file.is_some();
        let (workers, pool) = if named {
            anyhow::ensure!(
                self.pool_region.is_none() && self.pool_label.is_empty(),
                "--pool-region/--pool-label select registered workers: leave out -w/--workers-file"
            );
            (self.drive.plan.workers()?, None)
        } else {
            let mut filter = perfornium::api::pool::PoolFilter {
                region: self.pool_region.clone(),
                ..Default::default()
            };
            for l in &self.pool_label {
                let (k, v) = l
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--pool-label `{l}` is not KEY=VALUE"))?;
                filter
                    .labels
                    .insert(k.trim().to_string(), v.trim().to_string());
            }
            (Vec::new(), Some(filter))
        };
        Ok(Submit {
            test: Some(test),
            test_yaml: None,
            workers,
            strategy: self.drive.plan.strategy,
            sync_start: self.drive.plan.sync_start,
            pool,
        })
    }
}
