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
    /// This replica's id (a key of --peers).
    #[arg(long)]
    id: u64,
    /// host:port to serve the master API and raft RPC on.
    #[arg(long)]
    listen: String,
    /// Every replica: 1=host:port,2=host:port,3=host:port.
    #[arg(long)]
    peers: Peers,
    /// This replica's own data directory.
    #[arg(long)]
    data: PathBuf,
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
        let pc = self.config.load()?;
        let listener = bind(&self.listen).await?;
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
            id: self.id,
            listen: self.listen,
            peers: self.peers.0,
            data: self.data,
            token,
            allowed: served.allowed,
            tls: served.server,
            client_tls: served.tls.peer_client(self.ca.as_deref())?,
            jwt: served.jwt.map(std::sync::Arc::new),
            mint: mint.map(std::sync::Arc::new),
            raft_timing: match (self.raft_heartbeat_ms, self.raft_election_ms) {
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
