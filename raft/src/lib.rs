//! A replicated, durable key→value store of opaque records for Perfornium's master.
//!
//! Three replicas elect a leader with [openraft]; each keeps its log, its vote and its state machine
//! in its own [sled] directory, and they talk raft RPC over HTTP (an axum router served by the
//! application, a shared reqwest client). The crate knows nothing about load testing: the master
//! stores run records as JSON bytes under keys like `run/<id>` and reads them back with
//! [`Replica::get`] and [`Replica::scan`].
//!
//! Layout: `replica` ([`Replica`]) is the façade the application uses; `store` holds the sled-backed log store
//! and state machine; `network` is the raft RPC client; `server` the matching axum routes.

#![warn(missing_docs)]

mod config;
mod error;
mod network;
mod replica;
mod server;
mod store;

use serde::{Deserialize, Serialize};

pub use config::ReplicaConfig;
pub use error::ReplicaError;
pub use replica::{Replica, Status, DEFAULT_WRITE_TIMEOUT};

/// The id of a replica within the cluster (unique, stable across restarts).
pub type NodeId = u64;

/// Each replica's address (host:port) serving both the raft RPC and the app's own API.
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// The openraft type configuration of Perfornium's replicated store.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = Node,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// The openraft handle for this crate's [`TypeConfig`].
pub type Raft = openraft::Raft<TypeConfig>;

/// A change to the replicated map, proposed by the leader and applied by every replica in log order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Command {
    /// Sets `key` to `value`, replacing any previous value.
    Put {
        /// The record's key, e.g. `run/<id>`.
        key: String,
        /// Opaque bytes (the master stores JSON).
        value: Vec<u8>,
    },
    /// Removes `key` if present.
    Delete {
        /// The record's key.
        key: String,
    },
}

/// What applying a [`Command`] found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Response {
    /// Whether the key held a value before the command was applied.
    pub existed: bool,
}
