//! `perfornium master`: one replica of the HA master cluster. It opens its sled directory through
//! the raft crate (the first start of a fresh cluster forms it; restarts read everything back), serves
//! the raft RPC and the master API on one port, and drives runs while it is leader ([`leader`]).

pub mod api;
pub mod backup;
pub mod embedded;
pub mod leader;
pub mod malloc;
pub mod pool;
pub mod prometheus;
pub mod store;
pub mod stream;
pub mod ui;

use perfornium_raft::{Replica, ReplicaConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::info;

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
    /// Raft timing, ms: the leader's heartbeat (also the deadline of each replication call, so it
    /// must exceed the round trip between replicas) and the election timeout's bounds. `None`:
    /// the defaults, 100 and 500–1000, for replicas less than ~50 ms apart.
    pub raft_timing: Option<RaftTiming>,
    /// Accepts JWTs this verifier admits, each for its role's permissions (`--config`).
    pub jwt: Option<std::sync::Arc<crate::config::security::Verifier>>,
    /// Mints the JWTs the leader calls workers with (`--config`).
    pub mint: Option<std::sync::Arc<crate::config::security::Minter>>,
    /// `coordinator.max_workers` of `--config`: caps the registered pool.
    pub max_workers: Option<u32>,
    /// `--backup-dir` and how often: a copy of the applied state written there (see [`backup`]).
    pub backup: Option<(PathBuf, std::time::Duration)>,
    /// `--tests-dir`: the tests the dashboard's launch form offers (see [`ui`]).
    pub tests_dir: Option<PathBuf>,
}

/// Raft timing for replicas on slow links (see [`MasterConfig::raft_timing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

/// Every replica of the cluster, by id: `1=h:p,2=h:p,3=h:p` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers(pub BTreeMap<u64, String>);

impl std::str::FromStr for Peers {
    type Err = MasterError;

    fn from_str(text: &str) -> Result<Self, MasterError> {
        let bad = |peer: &str, reason: String| MasterError::BadPeer {
            peer: peer.to_string(),
            reason,
        };
        text.split(',')
            .map(|p| {
                let (id, addr) = p
                    .trim()
                    .split_once('=')
                    .ok_or_else(|| bad(p, "not ID=HOST:PORT".into()))?;
                let id: u64 = id
                    .trim()
                    .parse()
                    .map_err(|_| bad(p, format!("`{id}` is not a node id")))?;
                if !addr.contains(':') {
                    return Err(bad(p, format!("`{addr}` is not HOST:PORT")));
                }
                Ok((id, addr.trim().to_string()))
            })
            .collect::<Result<_, _>>()
            .map(Peers)
    }
}

/// Why a replica could not start or stopped badly.
#[derive(Debug, Error)]
pub enum MasterError {
    #[error("peer `{peer}`: {reason} (expected ID=HOST:PORT, e.g. 1=10.0.0.1:7001)")]
    BadPeer { peer: String, reason: String },
    #[error("--peers does not list this replica's id {0}")]
    NotAPeer(u64),
    #[error("building the TLS client for the raft peers: {0}")]
    PeerTls(reqwest::Error),
    #[error("opening master {id} in {}: {source}", dir.display())]
    Open {
        id: u64,
        dir: PathBuf,
        source: perfornium_raft::ReplicaError,
    },
    #[error("creating the embedded master's directory: {0}")]
    TempDir(std::io::Error),
    #[error("the embedded master in {} did not become leader (is the directory from a cluster?)", .0.display())]
    NoLeader(PathBuf),
    #[error("serving: {0}")]
    Serve(std::io::Error),
    #[error("stopping the replica: {0}")]
    Stop(perfornium_raft::ReplicaError),
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
) -> Result<(), MasterError> {
    if !cfg.peers.contains_key(&cfg.id) {
        return Err(MasterError::NotAPeer(cfg.id));
    }
    let mut raft = ReplicaConfig::new(cfg.id, cfg.listen.clone(), cfg.peers.clone(), &cfg.data);
    raft.token = cfg.token.clone();
    if let Some(t) = cfg.raft_timing {
        raft.heartbeat_ms = t.heartbeat_ms;
        raft.election_min_ms = t.election_min_ms;
        raft.election_max_ms = t.election_max_ms;
    }
    raft.tls_client = cfg
        .client_tls
        .as_ref()
        .map(|t| crate::tls::client_builder(Some(t)).build())
        .transpose()
        .map_err(MasterError::PeerTls)?;
    let replica = Replica::open(raft)
        .await
        .map_err(|source| MasterError::Open {
            id: cfg.id,
            dir: cfg.data.clone(),
            source,
        })?;
    info!(id = cfg.id, data = %cfg.data.display(), peers = cfg.peers.len(), "replica opened");
    let creds = crate::control::client::Credentials {
        token: cfg.token.clone(),
        tls: cfg.client_tls.clone(),
        mint: cfg.mint.clone(),
    };
    let store = store::RaftStore::new(replica.clone());
    let drivers = leader::Drivers::default();
    let master = api::Master {
        store: store.clone(),
        drivers: drivers.clone(),
        workers: creds.clone(),
        max_workers: cfg.max_workers,
    };
    let guard =
        crate::guard::Guard::new(cfg.token.clone(), cfg.allowed.clone()).with_jwt(cfg.jwt.clone());
    let routes =
        routes(master.clone()).merge(ui::router(ui::Ui::of_master(master, cfg.tests_dir.clone())));
    let backups = cfg.backup.clone().map(|(dir, every)| {
        tokio::spawn(backup::run(
            replica.clone(),
            cfg.id,
            dir,
            every,
            shutdown.clone(),
        ))
    });
    let supervisor = tokio::spawn(leader::supervise(store, drivers, creds, shutdown.clone()));
    crate::tls::serve(
        listener,
        guard.wrap(routes),
        cfg.tls.clone(),
        shutdown.clone(),
    )
    .await
    .map_err(MasterError::Serve)?;
    let _ = supervisor.await;
    if let Some(b) = backups {
        let _ = b.await;
    }
    replica.shutdown().await.map_err(MasterError::Stop)?;
    info!(id = cfg.id, "replica stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Peers;

    #[test]
    fn peers() {
        let p: Peers = "1=127.0.0.1:1,2=127.0.0.1:2, 3=h:3".parse().unwrap();
        assert_eq!(p.0.len(), 3);
        assert_eq!(p.0[&3], "h:3");
        assert!("1=x".parse::<Peers>().is_err());
        let e = "a=h:1".parse::<Peers>().unwrap_err().to_string();
        assert!(e.contains("`a` is not a node id"), "{e}");
    }
}
