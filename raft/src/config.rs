//! How a replica is told who it is, where its peers are and where its data lives.
//!
//! [`ReplicaConfig`] is the application-facing description; [`ReplicaConfig::raft_config`] turns it
//! into openraft's `Config` with the crate's fixed policies (snapshot every 100 logs, 100 logs kept
//! behind it and the older ones purged, a snapshot timeout that survives HTTP): the log stays
//! between 100 and 200 entries however long the master runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use openraft::{Config, SnapshotPolicy};

use crate::{NodeId, ReplicaError};

/// Default leader heartbeat interval, ms.
const DEFAULT_HEARTBEAT_MS: u64 = 100;
/// Default lower bound of the election timeout, ms.
const DEFAULT_ELECTION_MIN_MS: u64 = 500;
/// Default upper bound of the election timeout, ms.
const DEFAULT_ELECTION_MAX_MS: u64 = 1000;

/// Logs applied since the last snapshot before a new one is built (and older logs purged).
const SNAPSHOT_EVERY_LOGS: u64 = 100;
/// Logs kept behind the snapshot once it is built: enough for a follower a moment behind to catch
/// up from the log instead of a snapshot; the rest is purged (openraft's default keeps 1,000, and a
/// log entry is a whole run record, so that default alone held hundreds of MB at 1,000 workers).
const LOGS_KEPT_BEHIND_SNAPSHOT: u64 = 100;
/// Per-chunk deadline for sending a snapshot over HTTP; openraft's 200 ms default is tight for a
/// loaded host.
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 1000;
/// Snapshot chunk size. JSON inflates bytes up to 4x, so keep chunks well under the body limit.
const SNAPSHOT_CHUNK_BYTES: u64 = 1 << 20;

/// Everything one replica needs to start.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This replica's id; must be a key of `peers`.
    pub id: NodeId,
    /// host:port this replica serves on (raft RPC and the application's API). Informational: the
    /// application binds it and serves [`Replica::raft_router`](crate::Replica::raft_router) there;
    /// peers reach this replica at `peers[id]`.
    pub listen: String,
    /// All replicas, this one included: id → host:port other replicas reach it on.
    pub peers: BTreeMap<NodeId, String>,
    /// This replica's own sled directory (never shared with another replica).
    pub data_dir: PathBuf,
    /// Leader heartbeat interval in ms (default 100).
    pub heartbeat_ms: u64,
    /// Election timeout lower bound in ms (default 500).
    pub election_min_ms: u64,
    /// Election timeout upper bound in ms (default 1000).
    pub election_max_ms: u64,
    /// When set, raft RPC in both directions carries `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// When set, peers are called over HTTPS with this client, which the application builds with
    /// the CA to trust and this replica's own certificate (for peers that require mutual TLS).
    /// Serving TLS is the application's part: it serves [`Replica::raft_router`](crate::Replica::raft_router).
    pub tls_client: Option<reqwest::Client>,
}

impl ReplicaConfig {
    /// A config with the default timeouts and no token.
    pub fn new(
        id: NodeId,
        listen: impl Into<String>,
        peers: BTreeMap<NodeId, String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        ReplicaConfig {
            id,
            listen: listen.into(),
            peers,
            data_dir: data_dir.into(),
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            election_min_ms: DEFAULT_ELECTION_MIN_MS,
            election_max_ms: DEFAULT_ELECTION_MAX_MS,
            token: None,
            tls_client: None,
        }
    }

    /// Checks the config and builds openraft's `Config` from it.
    pub(crate) fn raft_config(&self) -> Result<Config, ReplicaError> {
        if !self.peers.contains_key(&self.id) {
            return Err(ReplicaError::Config(format!(
                "node {} is not among the peers {:?}",
                self.id,
                self.peers.keys().collect::<Vec<_>>()
            )));
        }
        let config = Config {
            cluster_name: "perfornium".to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_LOGS),
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            max_in_snapshot_log_to_keep: LOGS_KEPT_BEHIND_SNAPSHOT,
            ..Config::default()
        };
        config.validate().map_err(|e| {
            ReplicaError::Config(format!(
                "{e} (heartbeat_ms < election_min_ms < election_max_ms)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> BTreeMap<NodeId, String> {
        (1..=3)
            .map(|i| (i, format!("127.0.0.1:{}", 7000 + i)))
            .collect()
    }

    #[test]
    fn defaults_validate() {
        let cfg = ReplicaConfig::new(1, "127.0.0.1:7001", peers(), "/tmp/x");
        let raft = cfg.raft_config().expect("defaults are valid");
        assert_eq!(raft.heartbeat_interval, 100);
        assert_eq!(raft.election_timeout_min, 500);
        assert_eq!(raft.election_timeout_max, 1000);
    }

    #[test]
    fn rejects_unknown_self_and_bad_timeouts() {
        let cfg = ReplicaConfig::new(9, "127.0.0.1:7009", peers(), "/tmp/x");
        assert!(matches!(cfg.raft_config(), Err(ReplicaError::Config(_))));
        let mut cfg = ReplicaConfig::new(1, "127.0.0.1:7001", peers(), "/tmp/x");
        cfg.election_min_ms = 2000;
        assert!(matches!(cfg.raft_config(), Err(ReplicaError::Config(_))));
    }
}
