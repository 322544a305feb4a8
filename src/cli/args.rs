//! Argument groups that several commands share, typed at parse time (ripgrep's "low args"): a
//! strategy is a [`Strategy`], a duration a `Duration`, a network an `IpNet`, so no command parses
//! strings again. Each group also turns itself into what the library takes.

use anyhow::{Context, Result};
use clap::Args;
use ipnet::IpNet;
use perfornium::config::{self, Overrides, Strategy};
use perfornium::control::workers::{self, WorkerAddr};
use perfornium::tls::{ClientTls, ServerTls};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A duration flag: `30s`, `2m`, `1.5s`, `250ms`, or bare seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    config::duration::parse(s).map_err(|e| e.to_string())
}

/// Which workers take a run and how it is split among them.
#[derive(Args, Clone, Debug)]
pub struct PlanArgs {
    /// Workers as host:port,host:port.
    #[arg(short = 'w', long, conflicts_with = "workers_file")]
    pub workers: Option<String>,
    /// A workers.json file.
    #[arg(long)]
    pub workers_file: Option<PathBuf>,
    /// How the load is split across the workers; wins over the test's `distributed.strategy`,
    /// `distribution` and `weights` [default: the test's, else capacity_based].
    #[arg(short = 's', long, value_enum)]
    pub strategy: Option<Strategy>,
    /// Prepare every worker, then start all at one instant.
    #[arg(long)]
    pub sync_start: bool,
}

impl PlanArgs {
    /// The workers from `-w` or `--workers-file`.
    pub fn workers(&self) -> Result<Vec<WorkerAddr>> {
        match (&self.workers, &self.workers_file) {
            (Some(l), _) => Ok(workers::parse_list(l)?),
            (None, Some(f)) => Ok(workers::read_file(f)?),
            (None, None) => {
                anyhow::bail!(
                    "name the workers with -w host:port,... or --workers-file workers.json"
                )
            }
        }
    }
}

/// What may be changed in a test from the command line.
#[derive(Args, Clone, Debug)]
pub struct OverrideArgs {
    /// Virtual users (basic), max users (stepping) or max VUs (arrivals).
    #[arg(long)]
    pub vus: Option<u64>,
    /// Test duration, e.g. 30s, 2m.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// Iterations per VU (basic pattern).
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Replace global.base_url.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Merge environments/NAME.yml over the test.
    #[arg(long)]
    pub env: Option<String>,
}

impl OverrideArgs {
    /// The overrides in the library's terms.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            vus: self.vus,
            duration: self.duration,
            iterations: self.iterations,
            base_url: self.base_url.clone(),
        }
    }

    /// Loads `file` (with `--env`) and applies the overrides.
    pub fn load(&self, file: &Path) -> Result<config::TestFile> {
        let mut test = config::load(file, self.env.as_deref())?;
        self.overrides()
            .apply(&mut test)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        Ok(test)
    }
}

/// Everything a command that drives (or submits) a distributed run takes besides its own flags:
/// the workers and split, how to reach them, the test's overrides, the outputs and the screen.
#[derive(Args, Clone, Debug)]
pub struct DriveArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub tls: CallTlsArgs,
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub over: OverrideArgs,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub screen: Screen,
}

/// Where a finished run's results go.
#[derive(Args, Clone, Debug)]
pub struct Output {
    /// Write summary.json, timeline.ndjson and junit.xml here.
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
    /// Also write a self-contained HTML report (DIR/report.html with -o, else ./report.html).
    #[arg(long)]
    pub report: bool,
}

/// Whether a command that can show the console does.
#[derive(Args, Clone, Debug)]
pub struct Screen {
    /// Headless: progress lines on stderr, summary on stdout (the default when stdout is not a terminal).
    #[arg(long)]
    pub no_tui: bool,
}

impl Screen {
    /// True when the console will be shown: not refused, and stdout is a terminal.
    pub fn tui(&self) -> bool {
        !self.no_tui && std::io::stdout().is_terminal()
    }
}

/// The cluster token: from `--token`, `PERFORNIUM_TOKEN` or `--token-file`; never printed.
#[derive(Args, Clone, Debug)]
pub struct Access {
    /// Bearer token (guards every call but /health; sent to workers and masters).
    #[arg(
        long,
        env = "PERFORNIUM_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// Read the token from this file (surrounding whitespace ignored).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl Access {
    /// The token, if any.
    pub fn token(&self) -> Result<Option<String>> {
        match &self.token_file {
            Some(f) => {
                let t = std::fs::read_to_string(f)
                    .with_context(|| format!("reading the token file {}", f.display()))?;
                let t = t.trim().to_string();
                anyhow::ensure!(!t.is_empty(), "the token file {} is empty", f.display());
                Ok(Some(t))
            }
            None => Ok(self.token.clone().filter(|t| !t.is_empty())),
        }
    }
}

/// Who may call a server: networks as well as the token.
#[derive(Args, Clone, Debug)]
pub struct AllowFrom {
    /// Only these networks may call (CIDR list, e.g. 10.0.0.0/8,127.0.0.1).
    #[arg(long, value_delimiter = ',', value_parser = network)]
    pub allow_from: Vec<IpNet>,
}

fn network(s: &str) -> Result<IpNet, perfornium::guard::BadNetwork> {
    perfornium::guard::parse_network(s)
}

/// This process as an HTTPS server.
#[derive(Args, Clone, Debug)]
pub struct ServeTlsArgs {
    /// Serve HTTPS with this certificate chain (PEM); a master also presents it to peers and workers.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
}

impl ServeTlsArgs {
    /// The rustls server configuration, when HTTPS was asked for.
    pub fn server(&self) -> Result<Option<Arc<rustls::ServerConfig>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let tls = ServerTls {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: self.tls_ca.clone(),
        };
        Ok(Some(tls.config()?))
    }

    /// A master's outgoing TLS: trust `ca` (else --tls-ca), present its own certificate.
    pub fn peer_client(&self, ca: Option<&Path>) -> Result<Option<ClientTls>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let ca = ca.or(self.tls_ca.as_deref()).context(
            "--tls-cert on a master needs --ca (or --tls-ca): the CA its peers' and workers' certificates are signed by",
        )?;
        Ok(Some(ClientTls::load(ca, Some((cert, key)))?))
    }

    /// `https` when serving TLS.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// This process as an HTTPS client of workers or masters.
#[derive(Args, Clone, Debug)]
pub struct CallTlsArgs {
    /// Call over HTTPS, trusting only this CA (PEM).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Present this client certificate (PEM), for servers that require mutual TLS.
    #[arg(long, requires_all = ["client_key", "ca"])]
    pub client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

impl CallTlsArgs {
    /// The client TLS settings, when `--ca` was given.
    pub fn client(&self) -> Result<Option<ClientTls>> {
        let Some(ca) = &self.ca else {
            return Ok(None);
        };
        let identity = self.client_cert.as_deref().zip(self.client_key.as_deref());
        Ok(Some(ClientTls::load(ca, identity)?))
    }
}

/// Binds `host:port`, with the address in the error.
pub async fn bind(addr: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}
