//! The `perfornium` command line: parses arguments and calls one function per subcommand.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use perfornium::config::{self, Overrides};
use perfornium::control::plan::Strategy;
use perfornium::control::run::Phase;
use perfornium::control::workers::{self, WorkerAddr};
use perfornium::distributed::Launch;
use perfornium::guard::Guard;
use perfornium::tls::ClientTls;
use perfornium::{engine, local, mock, report, worker};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "perfornium",
    version,
    about = "Distributed HTTP load testing with a replicated master"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a test in this process.
    Run {
        file: PathBuf,
        #[command(flatten)]
        over: OverrideArgs,
        /// Write summary.json and timeline.ndjson here.
        #[arg(short = 'o', long)]
        out: Option<PathBuf>,
    },
    /// Check a test file and print "ok" or what is wrong, with file:line:column.
    Validate {
        file: PathBuf,
        /// Merge environments/NAME.yml over the test.
        #[arg(long)]
        env: Option<String>,
    },
    /// Serve the demo/test target API.
    Mock {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Delay added to every response, in milliseconds.
        #[arg(long, default_value_t = 0)]
        delay: u64,
        /// Serve HTTPS (to load-test TLS; `SSL_CERT_FILE` makes `run` trust a test CA).
        #[command(flatten)]
        tls: ServeTlsArgs,
    },
    /// The embedded default: mock, 3 workers and 3 master replicas on loopback, one example run, the console.
    Demo {
        #[command(flatten)]
        over: OverrideArgs,
        #[arg(short = 'o', long)]
        out: Option<PathBuf>,
        /// Headless: progress lines and the summary instead of the console.
        #[arg(long)]
        no_tui: bool,
    },
    /// Turn a saved summary.json into a self-contained HTML report.
    Report {
        results: PathBuf,
        #[arg(short = 'o', long, default_value = "report.html")]
        out: PathBuf,
    },
    /// Serve the worker API (pull-based: the controller calls it).
    Worker {
        /// Interface to bind; localhost accepts local connections only, 0.0.0.0 remote ones.
        #[arg(long, default_value = "localhost")]
        host: String,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[command(flatten)]
        access: Access,
        /// Only these networks may call (CIDR list, e.g. 10.0.0.0/8,127.0.0.1).
        #[arg(long)]
        allow_from: Option<String>,
        /// Only tests aimed at these hosts (host or host:port list) are accepted.
        #[arg(long, value_delimiter = ',')]
        allow_target: Vec<String>,
        #[command(flatten)]
        tls: ServeTlsArgs,
    },
    /// One replica of the HA master cluster (openraft + sled).
    Master {
        #[arg(long)]
        id: u64,
        /// host:port to serve the master API and raft RPC on.
        #[arg(long)]
        listen: String,
        /// Every replica: 1=host:port,2=host:port,3=host:port.
        #[arg(long)]
        peers: String,
        /// This replica's own data directory.
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        access: Access,
        /// Only these networks may call (CIDR list).
        #[arg(long)]
        allow_from: Option<String>,
        #[command(flatten)]
        tls: ServeTlsArgs,
        /// With --tls-cert: the CA trusted when calling peers and workers (default: --tls-ca).
        #[arg(long, requires = "tls_cert")]
        ca: Option<PathBuf>,
    },
    /// Attach to the master cluster's leader; optionally submit a run; follow it to the end.
    Console {
        /// Replicas: host:port,host:port,host:port.
        #[arg(long)]
        cluster: String,
        /// A test to submit (otherwise the current or latest run is shown).
        file: Option<PathBuf>,
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        tls: CallTlsArgs,
        #[command(flatten)]
        access: Access,
        #[command(flatten)]
        over: OverrideArgs,
        #[arg(short = 'o', long)]
        out: Option<PathBuf>,
        /// Headless: progress lines on stderr, summary on stdout; exit 0 passed, 1 threshold failed, 2 run failed.
        #[arg(long)]
        no_tui: bool,
    },
    /// Run a test across workers, driven from this process.
    Distributed {
        file: PathBuf,
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        tls: CallTlsArgs,
        #[command(flatten)]
        access: Access,
        #[command(flatten)]
        over: OverrideArgs,
        #[arg(short = 'o', long)]
        out: Option<PathBuf>,
        /// Headless: progress lines on stderr, summary on stdout.
        #[arg(long)]
        no_tui: bool,
        /// Keep the embedded master's state here (default: a temporary directory).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// Which workers take a run and how it is split among them.
#[derive(Args, Clone)]
struct PlanArgs {
    /// Workers as host:port,host:port.
    #[arg(short = 'w', long, conflicts_with = "workers_file")]
    workers: Option<String>,
    /// A workers.json file.
    #[arg(long)]
    workers_file: Option<PathBuf>,
    /// even, capacity_based, round_robin or geographic.
    #[arg(short = 's', long, default_value = "capacity_based")]
    strategy: String,
    /// Prepare every worker, then start all at one instant.
    #[arg(long)]
    sync_start: bool,
}

impl PlanArgs {
    fn workers(&self) -> Result<Vec<WorkerAddr>> {
        worker_list(self.workers.as_deref(), self.workers_file.as_deref())
    }

    fn strategy(&self) -> Result<Strategy> {
        self.strategy.parse().map_err(anyhow::Error::msg)
    }
}

#[derive(Args, Clone)]
struct OverrideArgs {
    /// Virtual users (basic), max users (stepping) or max VUs (arrivals).
    #[arg(long)]
    vus: Option<u64>,
    /// Test duration, e.g. 30s, 2m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Iterations per VU (basic pattern).
    #[arg(long)]
    iterations: Option<u64>,
    /// Replace global.base_url.
    #[arg(long)]
    base_url: Option<String>,
    /// Merge environments/NAME.yml over the test.
    #[arg(long)]
    env: Option<String>,
    /// Also write a self-contained HTML report (DIR/report.html with -o, else ./report.html).
    #[arg(long)]
    report: bool,
}

/// The cluster token: from `--token`, `PERFORNIUM_TOKEN` or `--token-file`; never printed.
#[derive(Args, Clone)]
struct Access {
    /// Bearer token (guards every call but /health; sent to workers and masters).
    #[arg(
        long,
        env = "PERFORNIUM_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// Read the token from this file (surrounding whitespace ignored).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

impl Access {
    fn token(&self) -> Result<Option<String>> {
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

/// This process as an HTTPS server.
#[derive(Args, Clone)]
struct ServeTlsArgs {
    /// Serve HTTPS with this certificate chain (PEM); a master also presents it to peers and workers.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
}

impl ServeTlsArgs {
    fn server(&self) -> Result<Option<Arc<rustls::ServerConfig>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let tls = perfornium::tls::ServerTls {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: self.tls_ca.clone(),
        };
        Ok(Some(tls.config()?))
    }

    /// A master's outgoing TLS: trust `ca` (else --tls-ca), present its own certificate.
    fn peer_client(&self, ca: Option<&Path>) -> Result<Option<ClientTls>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let ca = ca.or(self.tls_ca.as_deref()).context(
            "--tls-cert on a master needs --ca (or --tls-ca): the CA its peers' and workers' certificates are signed by",
        )?;
        Ok(Some(ClientTls::load(ca, Some((cert, key)))?))
    }

    fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// This process as an HTTPS client of workers or masters.
#[derive(Args, Clone)]
struct CallTlsArgs {
    /// Call over HTTPS, trusting only this CA (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Present this client certificate (PEM), for servers that require mutual TLS.
    #[arg(long, requires_all = ["client_key", "ca"])]
    client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
}

impl CallTlsArgs {
    fn client(&self) -> Result<Option<ClientTls>> {
        let Some(ca) = &self.ca else {
            return Ok(None);
        };
        let identity = self.client_cert.as_deref().zip(self.client_key.as_deref());
        Ok(Some(ClientTls::load(ca, identity)?))
    }
}

fn networks(list: Option<&str>) -> Result<Vec<ipnet::IpNet>> {
    list.map(perfornium::guard::parse_networks)
        .transpose()
        .map_err(anyhow::Error::msg)
        .map(Option::unwrap_or_default)
}

impl OverrideArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            vus: self.vus,
            duration: self.duration,
            iterations: self.iterations,
            base_url: self.base_url.clone(),
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    config::duration::parse(s)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run { file, over, out } => run(&file, &over, out.as_deref()).await,
        Command::Validate { file, env } => Ok(validate(&file, env.as_deref())),
        Command::Mock {
            host,
            port,
            delay,
            tls,
        } => serve_mock(&host, port, delay, &tls).await,
        Command::Demo { over, out, no_tui } => demo(&over, out.as_deref(), no_tui).await,
        Command::Report { results, out } => report_file(&results, &out),
        Command::Worker {
            host,
            port,
            access,
            allow_from,
            allow_target,
            tls,
        } => {
            let guard = Guard::new(access.token()?, networks(allow_from.as_deref())?);
            let scheme = tls.scheme();
            let opts = worker::WorkerOptions {
                guard,
                allow_targets: allow_target,
                tls: tls.server()?,
            };
            serve_worker(&host, port, scheme, opts).await
        }
        Command::Master {
            id,
            listen,
            peers,
            data,
            access,
            allow_from,
            tls,
            ca,
        } => {
            let peers = perfornium::master::parse_peers(&peers).map_err(anyhow::Error::msg)?;
            let cfg = perfornium::master::MasterConfig {
                id,
                listen,
                peers,
                data,
                token: access.token()?,
                allowed: networks(allow_from.as_deref())?,
                tls: tls.server()?,
                client_tls: tls.peer_client(ca.as_deref())?,
            };
            serve_master(cfg, tls.scheme()).await
        }
        Command::Console {
            cluster,
            file,
            plan,
            access,
            tls,
            over,
            out,
            no_tui,
        } => {
            let token = access.token()?;
            let tls = tls.client()?;
            let submit = match &file {
                Some(f) => Some(submission(f, &over, &plan)?),
                None => None,
            };
            let session = Session {
                token,
                tls,
                out,
                no_tui,
                html: over.report,
            };
            console(&cluster, submit, session).await
        }
        Command::Distributed {
            file,
            plan,
            access,
            tls,
            over,
            out,
            no_tui,
            data,
        } => {
            use std::io::IsTerminal as _;
            let tui = !no_tui && std::io::stdout().is_terminal();
            let launch = Launch {
                workers: plan.workers()?,
                strategy: plan.strategy()?,
                sync_start: plan.sync_start,
                token: access.token()?,
                tls: tls.client()?,
                tui,
                data,
            };
            distributed(&file, launch, &over, out.as_deref()).await
        }
    }
}

fn load(file: &Path, over: &OverrideArgs) -> Result<config::TestFile> {
    let mut test = config::load(file, over.env.as_deref())?;
    over.overrides()
        .apply(&mut test)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(test)
}

fn report_file(results: &Path, out: &Path) -> Result<ExitCode> {
    let text = std::fs::read(results).with_context(|| format!("reading {}", results.display()))?;
    let summary: report::RunSummary = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a perfornium summary.json", results.display()))?;
    std::fs::write(out, report::html::render(&summary))
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("report written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes outputs under `-o DIR` and, with `--report`, the HTML report.
fn write_results(summary: &report::RunSummary, out: Option<&Path>, html: bool) -> Result<()> {
    if let Some(dir) = out {
        report::write_outputs(dir, summary)
            .with_context(|| format!("writing results to {}", dir.display()))?;
    }
    if html {
        let path = out.unwrap_or(Path::new(".")).join("report.html");
        std::fs::write(&path, report::html::render(summary))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

/// Exit code for a finished run: 0 passed, 1 a threshold failed.
fn verdict(summary: &report::RunSummary) -> ExitCode {
    println!("{}", report::render_text(summary));
    if summary.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn stop_on_ctrl_c() -> engine::StopToken {
    let stop = engine::StopToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping: requests in flight will finish and be counted");
            s.cancel();
        }
    });
    stop
}

async fn run(file: &Path, over: &OverrideArgs, out: Option<&Path>) -> Result<ExitCode> {
    let test = load(file, over)?;
    let summary = local::run(test, stop_on_ctrl_c()).await?;
    write_results(&summary, out, over.report)?;
    Ok(verdict(&summary))
}

fn validate(file: &Path, env: Option<&str>) -> ExitCode {
    match config::load(file, env) {
        Ok(_) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

async fn serve_mock(host: &str, port: u16, delay: u64, tls: &ServeTlsArgs) -> Result<ExitCode> {
    let config = tls.server()?;
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    eprintln!(
        "mock listening on {}://{}",
        tls.scheme(),
        listener.local_addr()?
    );
    let stop = engine::StopToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s.cancel();
    });
    mock::serve(listener, Duration::from_millis(delay), config, stop).await?;
    Ok(ExitCode::SUCCESS)
}

async fn demo(over: &OverrideArgs, out: Option<&Path>, no_tui: bool) -> Result<ExitCode> {
    use std::io::IsTerminal as _;
    let interactive = !no_tui && std::io::stdout().is_terminal();
    let last = perfornium::demo::run(&over.overrides(), interactive).await?;
    finish_console(last, out, over.report)
}

async fn serve_worker(
    host: &str,
    port: u16,
    scheme: &str,
    opts: worker::WorkerOptions,
) -> Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    let auth = if opts.guard.has_token() {
        "bearer token required"
    } else {
        "no token: anyone who can reach this port can drive it"
    };
    eprintln!(
        "worker listening on {scheme}://{} ({auth})",
        listener.local_addr()?
    );
    let stop = engine::StopToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s.cancel();
    });
    worker::serve(listener, opts, stop).await?;
    Ok(ExitCode::SUCCESS)
}

fn worker_list(list: Option<&str>, file: Option<&Path>) -> Result<Vec<WorkerAddr>> {
    match (list, file) {
        (Some(l), _) => Ok(workers::parse_list(l)?),
        (None, Some(f)) => Ok(workers::read_file(f)?),
        (None, None) => {
            anyhow::bail!("name the workers with -w host:port,... or --workers-file workers.json")
        }
    }
}

async fn distributed(
    file: &Path,
    launch: Launch,
    over: &OverrideArgs,
    out: Option<&Path>,
) -> Result<ExitCode> {
    let test = load(file, over)?;
    let rec = perfornium::distributed::run(test, launch, stop_on_ctrl_c()).await?;
    let summary = perfornium::distributed::summarize(&rec);
    write_results(&summary, out, over.report)?;
    let code = verdict(&summary);
    Ok(if rec.phase == Phase::Finished {
        code
    } else {
        ExitCode::from(2)
    })
}

async fn serve_master(cfg: perfornium::master::MasterConfig, scheme: &str) -> Result<ExitCode> {
    let id = cfg.id;
    anyhow::ensure!(
        cfg.peers.contains_key(&id),
        "--peers does not list this replica's id {id}"
    );
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    eprintln!(
        "master {id} listening on {scheme}://{} (data {})",
        listener.local_addr()?,
        cfg.data.display()
    );
    let stop = engine::StopToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s.cancel();
    });
    perfornium::master::serve(cfg, listener, stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// The body of `POST /runs`: the test with overrides applied and CSV rows inlined (the master may
/// run on another machine and never reads this one's disk).
fn submission(
    file: &Path,
    over: &OverrideArgs,
    plan: &PlanArgs,
) -> Result<perfornium::master::api::Submit> {
    let mut test = load(file, over)?;
    perfornium::control::data::inline_rows(&mut test).map_err(anyhow::Error::msg)?;
    Ok(perfornium::master::api::Submit {
        test: Some(test),
        test_yaml: None,
        workers: plan.workers()?,
        strategy: plan.strategy()?,
        sync_start: plan.sync_start,
    })
}

/// How a console session reaches the cluster and what it does with the result.
struct Session {
    token: Option<String>,
    tls: Option<ClientTls>,
    out: Option<PathBuf>,
    no_tui: bool,
    html: bool,
}

async fn console(
    cluster: &str,
    submit: Option<perfornium::master::api::Submit>,
    session: Session,
) -> Result<ExitCode> {
    let Session {
        token,
        tls,
        out,
        no_tui,
        html,
    } = session;
    let out = out.as_deref();
    use perfornium::console::{self, client::ClusterClient};
    let addrs: Vec<String> = cluster
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    anyhow::ensure!(!addrs.is_empty(), "--cluster needs at least one host:port");
    let mut client = ClusterClient::new(addrs, token, tls.as_ref());
    let run_id = match console::pick_run(&mut client, submit).await {
        Ok(id) => id,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    use std::io::IsTerminal as _;
    if no_tui || !std::io::stdout().is_terminal() {
        eprintln!("following run {run_id}");
        let last = console::headless(client, run_id, Duration::from_secs(2)).await;
        return finish_console(last, out, html);
    }
    let last = console::screen::attach(client, run_id).await?;
    finish_console(last, out, html)
}

/// Prints and writes a console session's last view; its exit code.
fn finish_console(
    last: Option<perfornium::master::api::RunView>,
    out: Option<&Path>,
    html: bool,
) -> Result<ExitCode> {
    match last {
        Some(view) => {
            println!("{}", report::render_text(&view.summary));
            write_results(&view.summary, out, html)?;
            Ok(ExitCode::from(perfornium::console::exit_code(&view)))
        }
        None => Ok(ExitCode::from(2)),
    }
}
