//! `perfornium worker`: serves the worker API on one port until Ctrl-C.

use super::args::{
    apply_performance, bind, served, Access, AllowFrom, ProcessConfigArgs, ServeTlsArgs,
};
use super::shutdown;
use anyhow::Result;
use clap::Args;
use perfornium::guard::Guard;
use perfornium::worker::{self, WorkerOptions};
use std::process::ExitCode;

/// Serve the worker API (pull-based: the controller calls it).
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Interface to bind; localhost accepts local connections only, 0.0.0.0 remote ones.
    #[arg(long, default_value = "localhost")]
    host: String,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[command(flatten)]
    access: Access,
    #[command(flatten)]
    allow: AllowFrom,
    /// Only tests aimed at these hosts (host or host:port list) are accepted.
    #[arg(long, value_delimiter = ',')]
    allow_target: Vec<String>,
    #[command(flatten)]
    tls: ServeTlsArgs,
    #[command(flatten)]
    config: ProcessConfigArgs,
    /// Tests only: run this worker's clock this many ms off the machine's (negative: behind), to
    /// show the controller's clock-offset compensation.
    #[arg(
        long,
        hide = true,
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    test_clock_offset_ms: f64,
}

impl WorkerArgs {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> Result<ExitCode> {
        anyhow::ensure!(
            self.test_clock_offset_ms.is_finite()
                && self.test_clock_offset_ms.abs() <= 86_400_000.0,
            "--test-clock-offset-ms must be within a day"
        );
        if let Some(text) = self.config.explanation()? {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        let pc = self.config.load()?;
        let listener = bind(&format!("{}:{}", self.host, self.port)).await?;
        let addr = listener.local_addr()?;
        let served = served(&pc, &self.tls, &self.allow, addr.port(), "worker")?;
        apply_performance(&pc, &listener)?;
        let jwt = served.jwt.is_some();
        let opts = WorkerOptions {
            guard: Guard::new(self.access.token()?, served.allowed)
                .with_jwt(served.jwt.map(std::sync::Arc::new)),
            allow_targets: self.allow_target,
            tls: served.server,
            clock_offset_ms: self.test_clock_offset_ms,
        };
        let auth = if jwt {
            "JWT (or the static token) required"
        } else if opts.guard.has_token() {
            "bearer token required"
        } else {
            "no token: anyone who can reach this port can drive it"
        };
        eprintln!(
            "worker listening on {}://{addr} ({auth})",
            served.tls.scheme()
        );
        tracing::info!(%addr, token = opts.guard.has_token(), tls = opts.tls.is_some(), "worker started");
        let stop = shutdown::on_ctrl_c("worker: stopping");
        worker::serve(listener, opts, stop).await?;
        tracing::info!("worker stopped");
        Ok(ExitCode::SUCCESS)
    }
}
