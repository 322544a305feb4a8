//! `perfornium master`: one replica of the HA master cluster, until Ctrl-C.

use super::args::{bind, Access, AllowFrom, ServeTlsArgs};
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
    /// With --tls-cert: the CA trusted when calling peers and workers (default: --tls-ca).
    #[arg(long, requires = "tls_cert")]
    ca: Option<PathBuf>,
}

impl MasterArgs {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> Result<ExitCode> {
        let cfg = MasterConfig {
            id: self.id,
            listen: self.listen,
            peers: self.peers.0,
            data: self.data,
            token: self.access.token()?,
            allowed: self.allow.allow_from,
            tls: self.tls.server()?,
            client_tls: self.tls.peer_client(self.ca.as_deref())?,
        };
        let listener = bind(&cfg.listen).await?;
        eprintln!(
            "master {} listening on {}://{} (data {})",
            cfg.id,
            self.tls.scheme(),
            listener.local_addr()?,
            cfg.data.display()
        );
        let stop = shutdown::on_ctrl_c("master: stopping");
        perfornium::master::serve(cfg, listener, stop).await?;
        Ok(ExitCode::SUCCESS)
    }
}
