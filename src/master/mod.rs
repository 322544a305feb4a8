//! `perfornium master`: one replica of the HA master cluster. It opens its sled directory through
//! the raft crate (the first start of a fresh cluster forms it; restarts read everything back), serves
//! the raft RPC and the master API on one port, and drives runs while it is leader ([`leader`]).

pub mod api;
pub mod embedded;
pub mod leader;
pub mod prometheus;
pub mod store;

use perfornium_raft::{Replica, ReplicaConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// How to start one replica.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub id: u64,
    pub listen: String,
    pub peers: BTreeMap<u64, String>,
    pub data: PathBuf,
    /// Guards the master API and the raft RPC between replicas, and is sent to workers.
    pub token: Option<String>,
    /// Networks allowed to call this replica (empty: any).
    pub allowed: Vec<ipnet::IpNet>,
    /// Serve the master API and raft RPC over HTTPS with this configuration.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// How this replica calls its peers and the workers over HTTPS; a TLS cluster sets both.
    pub client_tls: Option<crate::tls::ClientTls>,
}

/// Parses `1=h:p,2=h:p,3=h:p`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, String> {
    text.split(',')
        .map(|p| {
            let (id, addr) = p
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("peer `{p}` is not ID=HOST:PORT"))?;
            let id: u64 = id
                .trim()
                .parse()
                .map_err(|_| format!("peer `{p}`: `{id}` is not a node id"))?;
            if !addr.contains(':') {
                return Err(format!("peer `{p}`: `{addr}` is not HOST:PORT"));
            }
            Ok((id, addr.trim().to_string()))
        })
        .collect()
}

/// The largest request body a replica accepts: raft snapshot chunks (1 MiB, JSON-inflated) and
/// submitted tests with inlined CSV rows fit well within it.
pub const BODY_LIMIT: usize = 64 << 20;

/// The master API and the raft RPC of `master`'s replica, with the body limit (before the guard).
pub fn routes(master: api::Master) -> axum::Router {
    let raft = master.store.replica.raft_router();
    api::router(master)
        .merge(raft)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

/// Runs the replica until `shutdown`; returns once it has stopped cleanly.
pub async fn serve(
    cfg: MasterConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let replica = Replica::open(ReplicaConfig {
        id: cfg.id,
        listen: cfg.listen.clone(),
        peers: cfg.peers.clone(),
        data_dir: cfg.data.clone(),
        heartbeat_ms: 100,
        election_min_ms: 500,
        election_max_ms: 1000,
        token: cfg.token.clone(),
        tls_client: cfg
            .client_tls
            .as_ref()
            .map(|t| crate::tls::client_builder(Some(t)).build())
            .transpose()
            .context("building the TLS client for the raft peers")?,
    })
    .await
    .with_context(|| format!("opening master {} in {}", cfg.id, cfg.data.display()))?;
    let creds = crate::control::client::Credentials {
        token: cfg.token.clone(),
        tls: cfg.client_tls.clone(),
    };
    let store = store::RaftStore {
        replica: replica.clone(),
    };
    let drivers = leader::Drivers::default();
    let master = api::Master {
        store: store.clone(),
        drivers: drivers.clone(),
        workers: creds.clone(),
    };
    let guard = crate::guard::Guard::new(cfg.token.clone(), cfg.allowed.clone());
    let routes = routes(master);
    let supervisor = tokio::spawn(leader::supervise(store, drivers, creds, shutdown.clone()));
    crate::tls::serve(
        listener,
        guard.wrap(routes),
        cfg.tls.clone(),
        shutdown.clone(),
    )
    .await?;
    let _ = supervisor.await;
    replica.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_peers;

    #[test]
    fn peers() {
        let p = parse_peers("1=127.0.0.1:1,2=127.0.0.1:2, 3=h:3").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[&3], "h:3");
        assert!(parse_peers("1=x").is_err());
        assert!(parse_peers("a=h:1").is_err());
    }
}
