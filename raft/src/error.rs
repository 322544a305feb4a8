//! The one error type of the crate, phrased so an operator can act on it.
//!
//! Raft's own error zoo (`RaftError<_, ClientWriteError<_>>`, `Fatal`, `CheckIsLeaderError`, …) is
//! folded into a few cases the master actually branches on: redirect to the leader, retry later
//! (unknown outcome), or give up because the local data directory is unusable.

use std::path::PathBuf;

use crate::NodeId;

/// Why a [`Replica`](crate::Replica) call failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The data directory could not be opened or holds data this crate cannot trust (locked by
    /// another process, corrupt, written by something else). The replica refuses to start rather
    /// than serve wrong state.
    #[error("cannot open raft data directory {}: {reason}", dir.display())]
    Open {
        /// The directory given in `ReplicaConfig::data_dir`.
        dir: PathBuf,
        /// What went wrong, with the remedy when there is one.
        reason: String,
    },
    /// The configuration is inconsistent (this node not among the peers, bad timeouts, …).
    #[error("invalid raft replica configuration: {0}")]
    Config(String),
    /// This replica is not the leader. Retry on `leader_addr` when it is known; both are `None`
    /// while an election is in progress.
    #[error("not the leader (leader: {})", leader_addr.as_deref().unwrap_or("unknown, election in progress"))]
    NotLeader {
        /// The current leader's id, if known.
        leader_id: Option<NodeId>,
        /// The current leader's address (host:port), if known.
        leader_addr: Option<String>,
    },
    /// The leader could not confirm that a quorum still follows it.
    #[error("the leader cannot reach a quorum of replicas: {0}")]
    NoQuorum(String),
    /// The call did not finish in time. For a write the outcome is unknown: it may still commit.
    #[error("raft call timed out; the outcome is unknown")]
    Timeout,
    /// Raft stopped or failed (after `shutdown`, or on a storage error).
    #[error("raft error: {0}")]
    Raft(String),
}
