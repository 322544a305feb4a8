//! Raft RPC client: openraft's `RaftNetworkFactory`/`RaftNetwork` over HTTP with JSON bodies.
//!
//! One `reqwest::Client` (one connection pool, keep-alive) is shared by every peer connection;
//! proxies are ignored because raft peers are always addressed directly. Every call carries the
//! deadline openraft passes in `RPCOption`, otherwise a partitioned peer could wedge a replication
//! stream. Errors are classified the way openraft expects: a refused connection (or a rejected
//! token) is `Unreachable`, so openraft backs off instead of hammering the peer; a deadline is
//! `Timeout`; a `RaftError` returned by the peer is `RemoteError`. The server side is `server.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Node, NodeId, TypeConfig};

/// Paths of the raft routes, shared with `server.rs`.
pub(crate) const APPEND_PATH: &str = "/raft/append";
pub(crate) const VOTE_PATH: &str = "/raft/vote";
pub(crate) const SNAPSHOT_PATH: &str = "/raft/snapshot";

/// Bytes of raft RPC bodies this replica has sent to its peers since it started: what replication
/// costs on the wire (HTTP headers not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicationBytes {
    /// Append-entries requests: the log entries a leader replicates, and its heartbeats.
    pub append_entries: u64,
    /// Install-snapshot requests: the snapshot chunks a leader sends a follower too far behind.
    pub snapshot: u64,
}

/// The running counts behind [`ReplicationBytes`], shared by every peer connection.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    append_entries: AtomicU64,
    snapshot: AtomicU64,
}

impl Sent {
    pub(crate) fn read(&self) -> ReplicationBytes {
        ReplicationBytes {
            append_entries: self.append_entries.load(Ordering::Relaxed),
            snapshot: self.snapshot.load(Ordering::Relaxed),
        }
    }

    fn add(&self, action: RPCTypes, bytes: usize) {
        let counter = match action {
            RPCTypes::AppendEntries => &self.append_entries,
            RPCTypes::InstallSnapshot => &self.snapshot,
            _ => return,
        };
        counter.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Builds a connection per peer on demand; owned by openraft.
pub(crate) struct Network {
    client: reqwest::Client,
    /// `http` or `https`.
    scheme: &'static str,
    token: Option<Arc<str>>,
    self_id: NodeId,
    sent: Arc<Sent>,
}

impl Network {
    /// `client` is shared by all peers and reaches them by `scheme`; `token` is sent as a bearer
    /// token when set.
    pub(crate) fn new(
        client: reqwest::Client,
        scheme: &'static str,
        token: Option<Arc<str>>,
        self_id: NodeId,
        sent: Arc<Sent>,
    ) -> Self {
        Network {
            client,
            scheme,
            token,
            self_id,
            sent,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Self::Network {
        // No I/O here: openraft calls this eagerly and the peer may well be down.
        PeerConnection {
            client: self.client.clone(),
            token: self.token.clone(),
            self_id: self.self_id,
            target,
            base: format!("{}://{}", self.scheme, node.addr),
            sent: self.sent.clone(),
        }
    }
}

/// The RPC client for one peer.
pub(crate) struct PeerConnection {
    client: reqwest::Client,
    token: Option<Arc<str>>,
    self_id: NodeId,
    target: NodeId,
    base: String,
    sent: Arc<Sent>,
}

/// An error with a plain message, for cases reqwest does not describe (HTTP status codes).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpError(String);

impl PeerConnection {
    async fn call<Req, Resp, E>(
        &self,
        action: RPCTypes,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let timeout = |_| {
            RPCError::Timeout(Timeout {
                action,
                id: self.self_id,
                target: self.target,
                timeout: ttl,
            })
        };
        // Encoded here rather than by reqwest so that the bytes sent can be counted.
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.sent.add(action, body.len());
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .timeout(ttl)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                timeout(())
            } else if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            // A token mismatch will not heal by retrying at once: back off like for a dead peer.
            let e = HttpError(format!(
                "{} rejected our raft token (401); all replicas need the same token",
                self.base
            ));
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let e = HttpError(format!("{}{path} answered {status}: {body}", self.base));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let result: Result<Resp, RaftError<NodeId, E>> = response.json().await.map_err(|e| {
            if e.is_timeout() {
                timeout(())
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call(
            RPCTypes::AppendEntries,
            APPEND_PATH,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(
            RPCTypes::InstallSnapshot,
            SNAPSHOT_PATH,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call(RPCTypes::Vote, VOTE_PATH, &rpc, option.hard_ttl())
            .await
    }
}
