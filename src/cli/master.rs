//! `perfornium master`: one replica of the HA master cluster, until Ctrl-C.

use super::args::{
    apply_performance, bind, served, Access, AllowFrom, ProcessConfigArgs, ServeTlsArgs,
};
use super::shutdown;
use anyhow::Result;
use clap::Args;
use perfornium::master::{MasterConfig, Peers};
use std::path::PathBuf;
use std::process::ExitCode;

/// One replica of the HA master cluster (openraft + sled).
#[derive(Args, Debug)]
pub struct MasterArgs {
    /// This replica's id (a key of --peers); default 1 when --config has `distributed.coordinator`.
    #[arg(long, env = "PERFORNIUM_ID")]
    id: Option<u64>,
    /// host:port to serve the master API and raft RPC on; default `coordinator.host:port` of --config.
    #[arg(long)]
    listen: Option<String>,
    /// Every replica: 1=host:port,2=host:port,3=host:port; default this one alone, at its
    /// listening port on `coordinator.host` (or $HOSTNAME when that is 0.0.0.0).
    #[arg(long, env = "PERFORNIUM_PEERS")]
    peers: Option<Peers>,
    /// This replica's own data directory; default `perfornium-data` with `distributed.coordinator`.
    #[arg(long, env = "PERFORNIUM_DATA")]
    data: Option<PathBuf>,
    #[command(flatten)]
    access: Access,
    #[command(flatten)]
    allow: AllowFrom,
    #[command(flatten)]
    tls: ServeTlsArgs,
    #[command(flatten)]
    config: ProcessConfigArgs,
    /// With --tls-cert: the CA trusted when calling peers and workers (default: --tls-ca).
    #[arg(long, requires = "tls_cert")]
    ca: Option<PathBuf>,
    /// Raft heartbeat in ms, also each replication call's deadline: it must exceed the round trip
    /// between replicas (default 100, for a LAN). Every replica should get the same timing.
    #[arg(long, value_name = "MS")]
    raft_heartbeat_ms: Option<u64>,
    /// Raft election timeout in ms, MIN-MAX, above the heartbeat (default 500-1000).
    #[arg(long, value_name = "MIN-MAX", value_parser = min_max)]
    raft_election_ms: Option<(u64, u64)>,
    /// Writes a copy of this replica's applied state (runs, pool, counters) into DIR as JSON, every
    /// `state_persistence.backup_interval` of --config (default 60 s); the newest 3 are kept.
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<PathBuf>,
    /// Offer the test files (*.yaml) of this directory in the web dashboard's launch form (`/ui`).
    #[arg(long, value_name = "DIR")]
    tests_dir: Option<PathBuf>,
}

/// `MIN-MAX` in ms.
fn min_max(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("`{text}` is not MIN-MAX"))?;
    let n = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{s}` is not a number of ms"))
    };
    Ok((n(a)?, n(b)?))
}

impl MasterArgs {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> Result<ExitCode> {
        if let Some(text) = self.config.explanation()? {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        perfornium::master::malloc::bound_retention();
        let pc = self
            .config
            .load_for(perfornium::config::cluster::Mode::Master)?;
        anyhow::ensure!(
            pc.cluster.master.is_none() && pc.cluster.worker.is_none(),
            "--config: distributed.master and distributed.worker are a worker's (whom it registers with, what it reports); a master replica reads distributed.coordinator"
        );
        let coord = pc.cluster.coordinator.clone();
        let need = |what: &str| {
            anyhow::anyhow!(
                "give {what}, or distributed.coordinator in --config for a one-replica master"
            )
        };
        let listen = match (self.listen, &coord) {
            (Some(_), Some(c)) if c.host.is_some() || c.port.is_some() => anyhow::bail!(
                "the listening address is given both as --listen and as distributed.coordinator.host/port: give it once"
            ),
            (Some(l), _) => l,
            (None, Some(c)) => format!(
                "{}:{}",
                c.host.as_deref().unwrap_or("0.0.0.0"),
                c.port.unwrap_or(perfornium::config::cluster::DEFAULT_PORT)
            ),
            (None, None) => return Err(need("--listen")),
        };
        let id = match (self.id, &coord) {
            (Some(i), _) => i,
            (None, Some(_)) => 1,
            (None, None) => return Err(need("--id")),
        };
        let data = match (self.data, &coord) {
            (Some(d), _) => d,
            (None, Some(_)) => PathBuf::from("perfornium-data"),
            (None, None) => return Err(need("--data")),
        };
        let peers = match (self.peers, &coord) {
            (Some(p), _) => p,
            (None, Some(_)) => {
                let (host, port) = listen
                    .rsplit_once(':')
                    .ok_or_else(|| anyhow::anyhow!("`{listen}` is not host:port"))?;
                let host = if host == "0.0.0.0" || host == "::" || host == "[::]" {
                    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).ok_or_else(|| {
                        anyhow::anyhow!("coordinator.host is 0.0.0.0 and $HOSTNAME is not set: give --peers ID=HOST:PORT with the name other processes reach this replica at")
                    })?
                } else {
                    host.to_string()
                };
                Peers([(id, format!("{host}:{port}"))].into_iter().collect())
            }
            (None, None) => return Err(need("--peers")),
        };
        // `fault_tolerance.master_failure`: its election timeout is this replica's; the block is
        // checked against the replicas in --peers before anything listens.
        let mut election = self.raft_election_ms;
        if let Some(m) = &pc.master_failure {
            if let Some(t) = m.failover.as_ref().and_then(|f| f.election_timeout) {
                anyhow::ensure!(
                    election.is_none(),
                    "the election timeout is given both as --raft-election-ms and as fault_tolerance.master_failure.failover.election_timeout: give it once"
                );
                let max = t.as_millis().min(u64::MAX as u128) as u64;
                let heartbeat = self.raft_heartbeat_ms.unwrap_or(100);
                anyhow::ensure!(
                    max / 2 > heartbeat,
                    "fault_tolerance.master_failure.failover.election_timeout: {max} ms; elections wait between half of it and all of it, and half must exceed the {heartbeat} ms heartbeat: give {} ms or more",
                    2 * heartbeat + 2
                );
                election = Some((max / 2, max));
            }
            perfornium::control::submit::check_master_failure(
                m,
                perfornium::control::submit::Masters {
                    replicas: peers.0.len(),
                    election_max_ms: election.map_or(1000, |(_, max)| max),
                },
            )
            .map_err(|e| anyhow::anyhow!("--config: {e} (--peers)"))?;
        }
        let listener = bind(&listen).await?;
        let served = served(
            &pc,
            &self.tls,
            &self.allow,
            listener.local_addr()?.port(),
            "master",
        )?;
        apply_performance(&pc, &listener)?;
        let token = self.access.token()?;
        anyhow::ensure!(
            served.jwt.is_none() || token.is_some(),
            "--config: a master with security.authentication.token_auth still needs --token: replicas \
             call each other's raft RPC with it (a JWT may not)"
        );
        use perfornium::config::security::Permission;
        // The leader drives every submitted run: with manage_workers when a role has it, so runs
        // with load_redistribution can move load (their /scale calls get 403 otherwise).
        let mint = match pc.security.minter(
            "master",
            &[
                Permission::ExecuteTests,
                Permission::ReportMetrics,
                Permission::ManageWorkers,
            ],
        ) {
            Ok(m) => m,
            Err(_) => pc.security.minter(
                "master",
                &[Permission::ExecuteTests, Permission::ReportMetrics],
            )?,
        };
        let cfg = MasterConfig {
            id,
            listen,
            peers: peers.0,
            data,
            max_workers: coord.as_ref().and_then(|c| c.max_workers),
            tests_dir: self.tests_dir,
            backup: self.backup_dir.map(|dir| {
                let every = pc
                    .master_failure
                    .as_ref()
                    .and_then(|m| m.state_persistence.as_ref())
                    .and_then(|p| p.backup_interval)
                    .unwrap_or(std::time::Duration::from_secs(60));
                (dir, every)
            }),
            token,
            allowed: served.allowed,
            tls: served.server,
            client_tls: served.tls.peer_client(self.ca.as_deref())?,
            jwt: served.jwt.map(std::sync::Arc::new),
            mint: mint.map(std::sync::Arc::new),
            raft_timing: match (self.raft_heartbeat_ms, election) {
                (None, None) => None,
                (h, e) => {
                    let (min, max) = e.unwrap_or((500, 1000));
                    Some(perfornium::master::RaftTiming {
                        heartbeat_ms: h.unwrap_or(100),
                        election_min_ms: min,
                        election_max_ms: max,
                    })
                }
            },
        };
        eprintln!(
            "master {} listening on {}://{} (data {})",
            cfg.id,
            served.tls.scheme(),
            listener.local_addr()?,
            cfg.data.display()
        );
        let stop = shutdown::on_ctrl_c("master: stopping");
        perfornium::master::serve(cfg, listener, stop).await?;
        Ok(ExitCode::SUCCESS)
    }
}
