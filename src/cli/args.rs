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
    /// Virtual users (basic), max users (stepping) or max VUs (arrivals). `--max-users` is the
    /// TypeScript tool's name for it.
    #[arg(long, visible_alias = "max-users")]
    pub vus: Option<u64>,
    /// Test duration, e.g. 30s, 2m.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// Iterations per VU (basic pattern).
    #[arg(long)]
    pub iterations: Option<u64>,
    /// The ramp: VU starts spread over it (basic), or the rate's climb (arrivals), e.g. 10s.
    #[arg(long, value_parser = duration)]
    pub ramp_up: Option<Duration>,
    /// Replace global.base_url.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Merge environments/NAME.yml over the test.
    #[arg(short = 'e', long)]
    pub env: Option<String>,
    /// Set a key of the test's `global:` (dot paths reach into maps: headers.x-team=perf); values
    /// read as the TypeScript tool's `-g`: true/false, numbers, JSON, else text. Repeatable.
    #[arg(short = 'g', long = "global", value_name = "KEY=VALUE")]
    pub global: Vec<String>,
}

impl OverrideArgs {
    /// The overrides in the library's terms.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            vus: self.vus,
            duration: self.duration,
            iterations: self.iterations,
            ramp_up: self.ramp_up,
            base_url: self.base_url.clone(),
        }
    }

    /// Loads `file` (with `--env`) and applies the overrides.
    pub fn load(&self, file: &Path) -> Result<config::TestFile> {
        let mut test = config::load(file, self.env.as_deref())?;
        config::global_override::apply(&mut test, &self.global)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
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
    /// Write summary.json, timeline.ndjson and junit.xml in this directory; a path ending in
    /// `.json` gets the summary alone. `{{timestamp}}` in it is replaced by the time now.
    /// `--output` is the TypeScript tool's name for it.
    #[arg(short = 'o', long, visible_alias = "output")]
    pub out: Option<PathBuf>,
    /// Also write a self-contained HTML report (DIR/report.html with -o, else ./report.html).
    #[arg(short = 'r', long)]
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

/// `--config FILE` of `worker` and `master`: the `security` and `performance` sections of the
/// file's `distributed:` block (the seed's worker-config shape).
#[derive(Args, Clone, Debug)]
pub struct ProcessConfigArgs {
    /// Apply `distributed.security` and `distributed.performance` of this YAML file (JWTs and
    /// roles, certificates, cipher suites, allowed networks and ports, socket options, pinning).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print how --config was understood (what acts, what is a no-op and why) and exit.
    #[arg(long, requires = "config")]
    pub explain: bool,
}

impl ProcessConfigArgs {
    /// The file's settings (empty without --config).
    pub fn load(&self) -> Result<config::security::ProcessConfig> {
        match &self.config {
            Some(f) => Ok(config::security::load_process_config(f)?),
            None => Ok(Default::default()),
        }
    }

    /// The file's settings for a process of `role`: a `mode` for another role is refused, naming the
    /// file.
    pub fn load_for(&self, role: config::cluster::Mode) -> Result<config::security::ProcessConfig> {
        let pc = self.load()?;
        pc.cluster.check_role(role).map_err(|e| {
            let file = self.config.as_deref().unwrap_or(Path::new("--config"));
            anyhow::anyhow!("{}: {e}", file.display())
        })?;
        Ok(pc)
    }

    /// With --explain: the explanation of the file, to print instead of serving.
    pub fn explanation(&self) -> Result<Option<String>> {
        if !self.explain {
            return Ok(None);
        }
        Ok(Some(config::explain_process(&self.load()?)))
    }
}

/// How a worker or master serves, from its flags and its `--config` together.
pub struct Served {
    /// The TLS flags with the certificates of `tls_auth` filled in.
    pub tls: ServeTlsArgs,
    /// The rustls configuration (with `cipher_suites` applied), when serving HTTPS.
    pub server: Option<Arc<rustls::ServerConfig>>,
    pub allowed: Vec<IpNet>,
    pub jwt: Option<config::security::Verifier>,
}

/// Merges flags and `--config` for a server listening on `port`; `role` is `worker` or `master`.
/// A setting given both ways is refused rather than one silently winning.
pub fn served(
    pc: &config::security::ProcessConfig,
    flags: &ServeTlsArgs,
    allow: &AllowFrom,
    port: u16,
    role: &str,
) -> Result<Served> {
    use config::security::AuthMethod;
    let sec = &pc.security;
    let yaml = sec.tls_auth().cloned().unwrap_or_default();
    anyhow::ensure!(
        yaml.client_cert.is_none() && yaml.client_key.is_none(),
        "--config: security.authentication.tls_auth.client_cert/client_key are the controller's (put them in \
         the test file); a {role} serves server_cert and presents it to the servers it calls"
    );
    fn one(flag: &Option<PathBuf>, yaml: &Option<PathBuf>, what: &str) -> Result<Option<PathBuf>> {
        match (flag, yaml) {
            (Some(_), Some(_)) => {
                anyhow::bail!("{what} is given both as a flag and in --config: give it once")
            }
            (f, y) => Ok(f.clone().or_else(|| y.clone())),
        }
    }
    let tls = ServeTlsArgs {
        tls_cert: one(
            &flags.tls_cert,
            &yaml.server_cert,
            "the server certificate (--tls-cert, tls_auth.server_cert)",
        )?,
        tls_key: one(
            &flags.tls_key,
            &yaml.server_key,
            "the server key (--tls-key, tls_auth.server_key)",
        )?,
        tls_ca: one(
            &flags.tls_ca,
            &yaml.ca_cert,
            "the client CA (--tls-ca, tls_auth.ca_cert)",
        )?,
    };
    anyhow::ensure!(
        tls.tls_cert.is_some() == tls.tls_key.is_some(),
        "--config: a server certificate needs its key (tls_auth.server_cert with server_key)"
    );
    anyhow::ensure!(
        tls.tls_ca.is_none() || tls.tls_cert.is_some(),
        "--config: tls_auth.ca_cert (client certificates) needs a server certificate (tls_auth.server_cert or --tls-cert)"
    );
    let method = sec.authentication.as_ref().map(|a| a.method);
    anyhow::ensure!(
        method != Some(AuthMethod::MutualTls) || tls.tls_ca.is_some(),
        "--config: authentication.method mutual_tls needs tls_auth.ca_cert (or --tls-ca): the CA client certificates are signed by"
    );
    let net = sec.network.clone().unwrap_or_default();
    anyhow::ensure!(
        net.encryption != Some(true) || tls.tls_cert.is_some(),
        "--config: security.network.encryption is true but there is no server certificate (tls_auth.server_cert or --tls-cert)"
    );
    let suites = net
        .cipher_suites
        .iter()
        .flatten()
        .map(|s| perfornium::tls::cipher_suite(&s.0).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    anyhow::ensure!(
        suites.is_empty() || tls.tls_cert.is_some(),
        "--config: security.network.cipher_suites needs TLS: give a server certificate"
    );
    let server = match (&tls.tls_cert, &tls.tls_key) {
        (Some(cert), Some(key)) => Some(
            ServerTls {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: tls.tls_ca.clone(),
            }
            .config_with_suites(&suites)?,
        ),
        _ => None,
    };
    let rules = sec.firewall().cloned().unwrap_or_default();
    let allowed = match (&rules.allowed_networks, allow.allow_from.is_empty()) {
        (Some(_), false) => anyhow::bail!(
            "allowed networks are given both as --allow-from and in --config (firewall_rules.allowed_networks): give them once"
        ),
        (Some(n), true) => n.iter().map(|n| n.0).collect(),
        (None, _) => allow.allow_from.clone(),
    };
    let ports = if role == "master" {
        &rules.master_ports
    } else {
        &rules.worker_ports
    };
    if let Some(ports) = ports {
        anyhow::ensure!(
            ports.contains(&port),
            "--config: port {port} is not in security.network.firewall_rules.{role}_ports {ports:?}"
        );
    }
    Ok(Served {
        tls,
        server,
        allowed,
        jwt: sec.verifier()?,
    })
}

/// Applies `performance` to this process: the load sockets' options, the control channel's
/// listening socket (accepted connections inherit its options) and thread pinning.
pub fn apply_performance(
    pc: &config::security::ProcessConfig,
    listener: &tokio::net::TcpListener,
) -> Result<()> {
    let opts = pc.performance.socket_options();
    perfornium::engine::set_socket_options(opts);
    if let Some(c) = pc
        .performance
        .network
        .as_ref()
        .and_then(|n| n.compression.as_ref())
    {
        let (level, threshold) = c.settings().map_err(anyhow::Error::msg)?;
        perfornium::tls::set_compression(level, threshold);
    }
    let sock = socket2::SockRef::from(listener);
    if let Some(n) = opts.nodelay {
        sock.set_tcp_nodelay(n).context("setting TCP_NODELAY")?;
    }
    if let Some(k) = opts.keepalive {
        sock.set_keepalive(k).context("setting SO_KEEPALIVE")?;
    }
    if let Some(n) = opts.send_buffer {
        sock.set_send_buffer_size(n).context("setting SO_SNDBUF")?;
    }
    if let Some(n) = opts.recv_buffer {
        sock.set_recv_buffer_size(n).context("setting SO_RCVBUF")?;
    }
    if pc
        .performance
        .resources
        .as_ref()
        .is_some_and(|r| r.pin_threads())
    {
        let pinned = pin_threads()?;
        tracing::info!(threads = pinned, "threads pinned to cores");
    }
    Ok(())
}

/// Pins every thread of this process (the runtime's workers are all started by now) to one core,
/// round robin over the cores the process may use. Returns how many were pinned.
#[cfg(target_os = "linux")]
fn pin_threads() -> Result<usize> {
    // SAFETY: cpu_set_t is plain data; the calls get its exact size and only read or write it.
    let cores: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        anyhow::ensure!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0,
            "reading the process's cores: {}",
            std::io::Error::last_os_error()
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|c| libc::CPU_ISSET(*c, &set))
            .collect()
    };
    anyhow::ensure!(!cores.is_empty(), "the process may run on no core");
    let mut tids: Vec<i32> = std::fs::read_dir("/proc/self/task")
        .context("listing /proc/self/task")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    for (i, tid) in tids.iter().enumerate() {
        let core = cores[i % cores.len()];
        // SAFETY: as above; `tid` is a thread of this process.
        let rc = unsafe {
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(core, &mut one);
            libc::sched_setaffinity(*tid, std::mem::size_of::<libc::cpu_set_t>(), &one)
        };
        anyhow::ensure!(
            rc == 0,
            "pinning thread {tid} to core {core}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(tids.len())
}

#[cfg(not(target_os = "linux"))]
fn pin_threads() -> Result<usize> {
    anyhow::bail!("performance.resources thread pinning is implemented on Linux only")
}

/// How a controller or console calls servers, from its flags and the test file's
/// `distributed.security` together.
pub struct Caller {
    pub tls: Option<ClientTls>,
    pub mint: Option<Arc<config::security::Minter>>,
}

/// Merges `--ca`/`--client-cert`/`--client-key` with the test's `security`, checks the servers it
/// will call (`targets`, host:port, `kind` `worker` or `master`) against `firewall_rules`, and
/// prepares the JWT minter (role holding `needs`). A setting given both ways is refused.
pub fn caller(
    sec: Option<&config::security::Security>,
    flags: &CallTlsArgs,
    targets: &[String],
    kind: &str,
    who: &str,
    needs: &[config::security::Permission],
) -> Result<Caller> {
    let Some(sec) = sec else {
        return Ok(Caller {
            tls: flags.client()?,
            mint: None,
        });
    };
    let yaml = sec.tls_auth().cloned().unwrap_or_default();
    anyhow::ensure!(
        yaml.server_cert.is_none() && yaml.server_key.is_none(),
        "distributed.security.authentication.tls_auth.server_cert/server_key are a worker's or master's: put \
         them in the file given to its --config"
    );
    fn one(flag: &Option<PathBuf>, yaml: &Option<PathBuf>, what: &str) -> Result<Option<PathBuf>> {
        match (flag, yaml) {
            (Some(_), Some(_)) => anyhow::bail!(
                "{what} is given both as a flag and in distributed.security: give it once"
            ),
            (f, y) => Ok(f.clone().or_else(|| y.clone())),
        }
    }
    let merged = CallTlsArgs {
        ca: one(&flags.ca, &yaml.ca_cert, "the CA (--ca, tls_auth.ca_cert)")?,
        client_cert: one(
            &flags.client_cert,
            &yaml.client_cert,
            "the client certificate (--client-cert, tls_auth.client_cert)",
        )?,
        client_key: one(
            &flags.client_key,
            &yaml.client_key,
            "the client key (--client-key, tls_auth.client_key)",
        )?,
    };
    anyhow::ensure!(
        merged.client_cert.is_some() == merged.client_key.is_some(),
        "distributed.security: a client certificate needs its key (tls_auth.client_cert with client_key)"
    );
    anyhow::ensure!(
        merged.client_cert.is_none() || merged.ca.is_some(),
        "distributed.security: a client certificate needs the CA to trust (tls_auth.ca_cert or --ca)"
    );
    let method = sec.authentication.as_ref().map(|a| a.method);
    anyhow::ensure!(
        method != Some(config::security::AuthMethod::MutualTls) || merged.client_cert.is_some(),
        "distributed.security.authentication.method mutual_tls needs tls_auth.client_cert and client_key (or --client-cert)"
    );
    let net = sec.network.clone().unwrap_or_default();
    anyhow::ensure!(
        net.encryption != Some(true) || merged.ca.is_some(),
        "distributed.security.network.encryption is true: give the CA to trust (tls_auth.ca_cert or --ca)"
    );
    let suites = net
        .cipher_suites
        .iter()
        .flatten()
        .map(|s| perfornium::tls::cipher_suite(&s.0).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    anyhow::ensure!(
        suites.is_empty() || merged.ca.is_some(),
        "distributed.security.network.cipher_suites needs TLS: give the CA to trust (tls_auth.ca_cert or --ca)"
    );
    let tls = match merged.client()? {
        Some(t) => Some(t.with_suites(&suites)?),
        None => None,
    };
    if let Some(rules) = sec.firewall() {
        let ports = if kind == "master" {
            &rules.master_ports
        } else {
            &rules.worker_ports
        };
        for t in targets {
            check_target(t, rules.allowed_networks.as_deref(), ports.as_deref(), kind)?;
        }
    }
    let mint = sec.minter(who, needs)?.map(Arc::new);
    Ok(Caller { tls, mint })
}

/// Refuses to call `target` (host:port) outside the firewall rules.
fn check_target(
    target: &str,
    networks: Option<&[config::security::Network]>,
    ports: Option<&[u16]>,
    kind: &str,
) -> Result<()> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = target
        .to_socket_addrs()
        .with_context(|| format!("resolving {kind} {target}"))?
        .collect();
    let port = addrs.first().map(|a| a.port()).unwrap_or(0);
    if let Some(ports) = ports {
        anyhow::ensure!(
            ports.contains(&port),
            "{kind} {target}: port {port} is not in distributed.security.network.firewall_rules.{kind}_ports {ports:?}"
        );
    }
    if let Some(nets) = networks {
        anyhow::ensure!(
            addrs.iter().all(|a| nets.iter().any(|n| n.0.contains(&a.ip()))),
            "{kind} {target} is outside distributed.security.network.firewall_rules.allowed_networks"
        );
    }
    Ok(())
}
