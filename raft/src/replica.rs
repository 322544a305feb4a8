//! One member of the replicated store: what the application opens, writes to and reads from.
//!
//! [`Replica::open`] wires the pieces together: the sled store (`store`), openraft with the
//! crate's timeouts (`config`), the HTTP client to the peers (`network`), and exposes the matching
//! server routes through [`Replica::raft_router`]. A fresh cluster forms itself: the replica with
//! the lowest id, finding no raft state on disk, initializes the membership with all peers; the
//! others wait to be contacted. Restarts need no call at all, everything is read back from disk.
//!
//! Writes go through the leader only and are bounded by a timeout (a partitioned leader would
//! otherwise hang them); reads come from this replica's applied state and may be stale on a
//! follower unless preceded by [`Replica::ensure_leader`].

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{RaftMetrics, ServerState};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::network::{Network, ReplicationBytes, Sent};
use crate::store::log::LogStore;
use crate::store::state_machine::{SharedState, StateMachine};
use crate::store::{self, Store};
use crate::{Command, Node, NodeId, Raft, ReplicaConfig, ReplicaError, Response};

/// How long [`Replica::write`] waits for a commit before answering [`ReplicaError::Timeout`].
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `shutdown` waits for openraft's tasks to release the data directory.
const RELEASE_WAIT: Duration = Duration::from_secs(3);

/// A running replica. Cheap to clone: clones share the same raft node.
#[derive(Clone)]
pub struct Replica {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    raft: Raft,
    state: SharedState,
    peers: BTreeMap<NodeId, String>,
    token: Option<Arc<str>>,
    data_dir: PathBuf,
    /// The store, owned by openraft's tasks; gone once they have all stopped.
    store: Weak<Store>,
    /// Bytes sent to the peers, counted by the network layer.
    sent: Arc<Sent>,
}

/// What a replica is doing in the raft group right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It leads: it accepts writes and replicates them.
    Leader,
    /// It follows a leader (or waits for one).
    Follower,
    /// It is asking for votes.
    Candidate,
    /// It replicates but does not vote.
    Learner,
    /// It has stopped.
    Shutdown,
}

impl Role {
    /// The name used on the wire and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl From<ServerState> for Role {
    fn from(s: ServerState) -> Self {
        match s {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }
}

/// A snapshot of this replica's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This replica's id.
    pub id: NodeId,
    /// Its role right now.
    pub role: Role,
    /// Every member of the cluster's current membership, by id, with its address.
    pub members: BTreeMap<NodeId, String>,
    /// Whether this replica is currently the leader.
    pub is_leader: bool,
    /// The leader this replica knows of, if any.
    pub leader_id: Option<NodeId>,
    /// That leader's address (host:port), if known.
    pub leader_addr: Option<String>,
    /// The current raft term.
    pub term: u64,
    /// Index of the last log entry applied to this replica's state, if any.
    pub last_applied: Option<u64>,
    /// Index of the last entry in this replica's raft log, if any.
    #[serde(default)]
    pub last_log_index: Option<u64>,
    /// Index of the last entry purged from the log (covered by a snapshot), if any: the log holds
    /// `last_log_index - last_purged` entries.
    #[serde(default)]
    pub last_purged: Option<u64>,
    /// Index of the last entry the current snapshot covers, if any.
    #[serde(default)]
    pub snapshot: Option<u64>,
}

impl Replica {
    /// Opens (or creates) the sled dir (retrying on a held lock for ~2 s), starts openraft.
    ///
    /// If the store is fresh (no vote, no logs) and this node has the lowest id among the peers,
    /// it initializes the cluster with all peers, so the first start of a fresh cluster forms it
    /// and restarts read everything back. Other fresh nodes wait to be contacted.
    pub async fn open(cfg: ReplicaConfig) -> Result<Replica, ReplicaError> {
        let raft_config = Arc::new(cfg.raft_config()?);
        let opened = store::open(&cfg.data_dir).await?;
        let token: Option<Arc<str>> = cfg.token.as_deref().map(Arc::from);
        let (client, scheme) = match &cfg.tls_client {
            Some(client) => (client.clone(), "https"),
            None => (
                reqwest::Client::builder().no_proxy().build().map_err(|e| {
                    ReplicaError::Raft(format!("cannot build the raft HTTP client: {e}"))
                })?,
                "http",
            ),
        };
        let sent = Arc::new(Sent::default());
        let network = Network::new(client, scheme, token.clone(), cfg.id, sent.clone());

        let store = Arc::downgrade(&opened.store);
        let log_store = LogStore::new(opened.store.clone());
        let state_machine = StateMachine::new(opened.store, opened.state);
        let state = state_machine.shared_state();
        let raft = Raft::new(cfg.id, raft_config, network, log_store, state_machine)
            .await
            // Startup reads the whole store back (and re-applies committed entries), so a failure
            // here is about the directory's content.
            .map_err(|e| ReplicaError::Open {
                dir: cfg.data_dir.clone(),
                reason: format!("raft could not start from it: {e}"),
            })?;
        let replica = Replica {
            inner: Arc::new(Inner {
                id: cfg.id,
                raft,
                state,
                peers: cfg.peers.clone(),
                token,
                data_dir: cfg.data_dir.clone(),
                store,
                sent,
            }),
        };

        let lowest = cfg.peers.keys().next().copied();
        if opened.fresh && lowest == Some(cfg.id) {
            if let Err(e) = replica.initialize().await {
                // Do not leave openraft's tasks holding the directory behind a failed open.
                let _ = replica.shutdown().await;
                return Err(e);
            }
        }
        Ok(replica)
    }

    async fn initialize(&self) -> Result<(), ReplicaError> {
        let raft = &self.inner.raft;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ReplicaError::Raft(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        let members: BTreeMap<NodeId, Node> = self
            .inner
            .peers
            .iter()
            .map(|(id, addr)| (*id, Node { addr: addr.clone() }))
            .collect();
        match raft.initialize(members).await {
            // Another start already initialized with this same membership: nothing to do.
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ReplicaError::Raft(format!(
                "cannot initialize the cluster: {e}"
            ))),
        }
    }

    /// The axum routes for raft RPC (`POST /raft/append`, `/raft/vote`, `/raft/snapshot`, JSON
    /// bodies). When a token is configured they require `Authorization: Bearer <token>` (401
    /// otherwise). Merge them into the application's router.
    pub fn raft_router(&self) -> axum::Router {
        crate::server::router(self.inner.raft.clone(), self.inner.token.clone())
    }

    /// Replicates a command; on a follower returns `Err(NotLeader{..})` at once. Waits at most
    /// [`DEFAULT_WRITE_TIMEOUT`]; `Err(Timeout)` means the outcome is unknown.
    pub async fn write(&self, cmd: Command) -> Result<Response, ReplicaError> {
        self.write_with_timeout(cmd, DEFAULT_WRITE_TIMEOUT).await
    }

    /// [`write`](Self::write) with a caller-chosen timeout.
    pub async fn write_with_timeout(
        &self,
        cmd: Command,
        timeout: Duration,
    ) -> Result<Response, ReplicaError> {
        let result = tokio::time::timeout(timeout, self.inner.raft.client_write(cmd))
            .await
            .map_err(|_| ReplicaError::Timeout)?;
        match result {
            Ok(written) => Ok(written.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
                Err(self.not_leader(to.leader_id, to.leader_node))
            }
            Err(e) => Err(ReplicaError::Raft(e.to_string())),
        }
    }

    /// The value of `key` in this replica's applied state (may be stale on a follower).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.inner.state.read().data.get(key).cloned()
    }

    /// All `(key, value)` pairs whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let state = self.inner.state.read();
        state
            .data
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Linearizable read barrier: `Ok(())` only on a leader that still has a quorum, once this
    /// replica has applied everything committed before the call. Bounded by
    /// [`DEFAULT_WRITE_TIMEOUT`].
    pub async fn ensure_leader(&self) -> Result<(), ReplicaError> {
        let result =
            tokio::time::timeout(DEFAULT_WRITE_TIMEOUT, self.inner.raft.ensure_linearizable())
                .await
                .map_err(|_| ReplicaError::Timeout)?;
        match result {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to))) => {
                Err(self.not_leader(to.leader_id, to.leader_node))
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                Err(ReplicaError::NoQuorum(e.to_string()))
            }
            Err(e) => Err(ReplicaError::Raft(e.to_string())),
        }
    }

    fn not_leader(&self, leader_id: Option<NodeId>, leader_node: Option<Node>) -> ReplicaError {
        let leader_addr = leader_node
            .map(|node| node.addr)
            .or_else(|| leader_id.and_then(|id| self.inner.peers.get(&id).cloned()));
        ReplicaError::NotLeader {
            leader_id,
            leader_addr,
        }
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The directory this replica keeps its data in.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    /// Bytes of raft RPC bodies this replica has sent to its peers since it opened (as leader:
    /// the log entries and snapshots it replicates).
    pub fn replication_bytes(&self) -> ReplicationBytes {
        self.inner.sent.read()
    }

    /// The openraft handle, for what this façade does not cover (membership changes, triggers).
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// Metrics watch (current_leader, state, current_term, last_applied, membership).
    pub fn metrics(&self) -> watch::Receiver<RaftMetrics<NodeId, Node>> {
        self.inner.raft.metrics()
    }

    /// Convenience view of [`metrics`](Self::metrics). Metrics are published asynchronously, so
    /// `last_applied` may lag a write that has just returned by a moment.
    pub fn status(&self) -> Status {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let leader_addr = m.current_leader.and_then(|leader| {
            m.membership_config
                .membership()
                .get_node(&leader)
                .map(|node| node.addr.clone())
                .or_else(|| self.inner.peers.get(&leader).cloned())
        });
        let members = m
            .membership_config
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone()))
            .collect();
        Status {
            id: self.inner.id,
            role: m.state.into(),
            members,
            is_leader: m.state == ServerState::Leader && m.current_leader == Some(self.inner.id),
            leader_id: m.current_leader,
            leader_addr,
            term: m.current_term,
            last_applied: m.last_applied.map(|log_id| log_id.index),
            last_log_index: m.last_log_index,
            last_purged: m.purged.map(|log_id| log_id.index),
            snapshot: m.snapshot.map(|log_id| log_id.index),
        }
    }

    /// Shuts raft down and waits until every sled handle is dropped, so the directory can be
    /// reopened (by [`Replica::open`], which also retries briefly on a held lock). Idempotent.
    pub async fn shutdown(&self) -> Result<(), ReplicaError> {
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|e| ReplicaError::Raft(format!("raft did not stop cleanly: {e}")))?;
        // openraft's state machine worker and replication tasks end shortly after the core; they
        // own the last handles on the store.
        let deadline = Instant::now() + RELEASE_WAIT;
        while self.inner.store.strong_count() > 0 {
            if Instant::now() >= deadline {
                return Err(ReplicaError::Raft(format!(
                    "raft stopped but {} is still held after {:?}",
                    self.inner.data_dir.display(),
                    RELEASE_WAIT
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}
