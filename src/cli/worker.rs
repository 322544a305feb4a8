//! `perfornium worker`: serves the worker API on one port until Ctrl-C.

use super::args::{
    apply_performance, bind, served, Access, AllowFrom, ProcessConfigArgs, ServeTlsArgs,
};
use super::shutdown;
use anyhow::Context as _;
use anyhow::Result;
use clap::Args;
use perfornium::api::pool::Registration;
use perfornium::config::cluster::Capacity;
use perfornium::guard::Guard;
use perfornium::worker::register::Registrar;
use perfornium::worker::{self, WorkerOptions};
use std::process::ExitCode;

/// Serve the worker API (pull-based: the controller calls it).
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Interface to bind; localhost accepts local connections only, 0.0.0.0 remote ones.
    #[arg(long, default_value = "localhost")]
    host: String,
    #[arg(long, env = "PERFORNIUM_PORT", default_value_t = 8080)]
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
    #[command(flatten)]
    join: JoinArgs,
    /// Tests only: run this worker's clock this many ms off the machine's (negative: behind), to
    /// show the controller's clock-offset compensation.
    #[arg(
        long,
        hide = true,
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    test_clock_offset_ms: f64,
    /// Where runs with `results.collection.format.raw_data` spool their samples until the
    /// controller has them (default: a directory per process under the system's temp dir).
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<std::path::PathBuf>,
}

/// Registration with a master cluster (optional; `-w` and workers files need none of it).
#[derive(Args, Debug)]
struct JoinArgs {
    /// Register with the master cluster at these replicas (host[:port],...; port 8080 when left
    /// out) and renew the lease until stopped. Also `distributed.master.host` of --config.
    #[arg(long, env = "MASTER_HOST", value_name = "HOSTS")]
    master: Option<String>,
    /// This worker's id in the pool (default: its advertised host:port). Also `distributed.worker.id`.
    #[arg(long, env = "WORKER_ID")]
    id: Option<String>,
    /// Its region (pool filters, geographic plans). Also `distributed.worker.region`.
    #[arg(long)]
    region: Option<String>,
    /// A label KEY=VALUE runs may select it by (repeatable). Also `distributed.worker.labels`.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = label)]
    labels: Vec<(String, String)>,
    /// The host the master reaches this worker at (default: --host, or $HOSTNAME when binding all
    /// interfaces).
    #[arg(long, env = "PERFORNIUM_ADVERTISE")]
    advertise: Option<String>,
    /// The most VUs this worker takes. Also `distributed.worker.capacity.max_vus`.
    #[arg(long)]
    max_vus: Option<u64>,
    /// The most arrivals per second it takes. Also `distributed.worker.capacity.max_rps`.
    #[arg(long)]
    max_rps: Option<u64>,
    /// The lease, ms: the master lists the worker `down` when it has not renewed within it
    /// (renewals every third of it).
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    lease_ms: u64,
}

fn label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    if k.trim().is_empty() {
        return Err(format!("`{text}`: empty key"));
    }
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// A setting from a flag (or its environment variable) or the file, refused when given both ways.
fn one<T>(flag: Option<T>, file: Option<T>, what: &str) -> Result<Option<T>> {
    match (flag, file) {
        (Some(_), Some(_)) => anyhow::bail!("{what} is given both as a flag (or its environment variable) and in --config: give it once"),
        (f, y) => Ok(f.or(y)),
    }
}

impl JoinArgs {
    /// The registrar, when a master is named (flag, MASTER_HOST or the file); the capacity either way.
    fn resolve(
        self,
        cluster: &perfornium::config::cluster::Cluster,
        host: &str,
        port: u16,
        own_token: Option<String>,
    ) -> Result<(Option<Registrar>, Capacity)> {
        use perfornium::config::cluster::{with_port, DEFAULT_PORT};
        let w = cluster.worker.clone().unwrap_or_default();
        let cap_file = w.capacity.unwrap_or_default();
        let capacity = Capacity {
            max_vus: one(
                self.max_vus,
                cap_file.max_vus,
                "the VU capacity (--max-vus, worker.capacity.max_vus)",
            )?,
            max_rps: one(
                self.max_rps,
                cap_file.max_rps,
                "the rate capacity (--max-rps, worker.capacity.max_rps)",
            )?,
        };
        anyhow::ensure!(
            capacity.max_vus != Some(0) && capacity.max_rps != Some(0),
            "--max-vus and --max-rps must be at least 1"
        );
        let file_port = cluster
            .master
            .as_ref()
            .and_then(|m| m.port)
            .unwrap_or(DEFAULT_PORT);
        let masters = match one(
            self.master,
            cluster.master.as_ref().and_then(|m| m.host.clone()),
            "the master (--master/MASTER_HOST, distributed.master.host)",
        )? {
            Some(h) => with_port(&h, file_port),
            None => {
                anyhow::ensure!(
                    self.id.is_none() && self.region.is_none() && self.labels.is_empty() && self.advertise.is_none() && w.id.is_none() && w.region.is_none() && w.labels.is_none(),
                    "--id/WORKER_ID, --region, --label, --advertise and distributed.worker.{{id, region, labels}} describe this worker to a master: name it with --master (or MASTER_HOST, or distributed.master.host)"
                );
                return Ok((None, capacity));
            }
        };
        anyhow::ensure!(!masters.is_empty(), "--master names no host");
        anyhow::ensure!(
            (perfornium::master::pool::MIN_LEASE_MS..=perfornium::master::pool::MAX_LEASE_MS)
                .contains(&self.lease_ms),
            "--lease-ms must be within {}..={}",
            perfornium::master::pool::MIN_LEASE_MS,
            perfornium::master::pool::MAX_LEASE_MS
        );
        let advertise = match self.advertise {
            Some(a) => a,
            None if host == "0.0.0.0" || host == "::" || host == "[::]" => std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| anyhow::anyhow!("binding all interfaces and no --advertise or $HOSTNAME: say which host the master reaches this worker at"))?,
            None => host.to_string(),
        };
        let mut labels = w.labels.unwrap_or_default();
        for (k, v) in self.labels {
            anyhow::ensure!(!labels.contains_key(&k), "label `{k}` is given both as --label and in distributed.worker.labels: give it once");
            labels.insert(k, v);
        }
        let id = one(
            self.id,
            w.id,
            "the worker id (--id/WORKER_ID, distributed.worker.id)",
        )?
        .unwrap_or_else(|| format!("{advertise}:{port}"));
        let token = cluster
            .master
            .as_ref()
            .and_then(|m| m.authentication.as_ref())
            .and_then(|a| a.token.clone())
            .or(own_token);
        let registration = Registration {
            id,
            host: advertise,
            port,
            region: one(
                self.region,
                w.region,
                "the region (--region, distributed.worker.region)",
            )?
            .unwrap_or_else(|| perfornium::api::worker::DEFAULT_REGION.to_string()),
            labels,
            capacity,
            lease_ms: self.lease_ms,
            resources: None,
        };
        Ok((
            Some(Registrar {
                masters,
                token,
                registration,
                tls: None,
            }),
            capacity,
        ))
    }
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
        let pc = self
            .config
            .load_for(perfornium::config::cluster::Mode::Worker)?;
        anyhow::ensure!(
            pc.cluster.coordinator.is_none(),
            "--config: distributed.coordinator is the master's (where it listens, its pool's cap); a worker registers with distributed.master"
        );
        anyhow::ensure!(
            pc.master_failure.is_none(),
            "--config: distributed.fault_tolerance.master_failure is the master replicas' (their election timeout, how many there are); a worker has no part in it"
        );
        let listener = bind(&format!("{}:{}", self.host, self.port)).await?;
        let addr = listener.local_addr()?;
        let (registrar, capacity) =
            self.join
                .resolve(&pc.cluster, &self.host, addr.port(), self.access.token()?)?;
        let served = served(&pc, &self.tls, &self.allow, addr.port(), "worker")?;
        apply_performance(&pc, &listener)?;
        let jwt = served.jwt.is_some();
        let opts = WorkerOptions {
            guard: Guard::new(self.access.token()?, served.allowed)
                .with_jwt(served.jwt.map(std::sync::Arc::new)),
            allow_targets: self.allow_target,
            tls: served.server,
            clock_offset_ms: self.test_clock_offset_ms,
            capacity,
            spool_dir: self.spool_dir,
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
        let joining = registrar
            .map(|mut r| {
                // A TLS worker registers over HTTPS, presenting its own certificate (as a master
                // does to its peers and workers) and trusting --tls-ca.
                if opts.tls.is_some() {
                    r.tls = Some(served.tls.peer_client(None).context(
                        "--master with --tls-cert needs --tls-ca: the CA the masters' certificates are signed by (the worker presents its own certificate to them)",
                    )?
                    .context("a TLS worker has a certificate")?);
                }
                anyhow::Ok(tokio::spawn(r.run(stop.clone())))
            })
            .transpose()?;
        worker::serve(listener, opts, stop.clone()).await?;
        stop.cancel();
        if let Some(j) = joining {
            let _ = j.await;
        }
        tracing::info!("worker stopped");
        Ok(ExitCode::SUCCESS)
    }
}
