//! `perfornium mock`: the small JSON API the demo, the examples and the tests aim at.

use super::args::{bind, duration, ServeTlsArgs};
use super::shutdown;
use anyhow::Result;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

/// Serve the demo/test target API.
#[derive(Args, Debug)]
pub struct MockArgs {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Delay added to every response, e.g. 20ms (a bare number is seconds).
    #[arg(long, value_parser = duration, default_value = "0s")]
    delay: Duration,
    /// Serve HTTPS (to load-test TLS; `SSL_CERT_FILE` makes `run` trust a test CA).
    #[command(flatten)]
    tls: ServeTlsArgs,
}

impl MockArgs {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> Result<ExitCode> {
        let config = self.tls.server()?;
        let listener = bind(&format!("{}:{}", self.host, self.port)).await?;
        eprintln!(
            "mock listening on {}://{}",
            self.tls.scheme(),
            listener.local_addr()?
        );
        let stop = shutdown::on_ctrl_c("mock: stopping");
        perfornium::mock::serve(listener, self.delay, config, stop).await?;
        Ok(ExitCode::SUCCESS)
    }
}
