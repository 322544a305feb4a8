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
pub use network::ReplicationBytes;
pub use replica::{Replica, Role, Status, DEFAULT_WRITE_TIMEOUT};

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
        /// Opaque bytes (the master stores JSON), base64 text in the log.
        #[serde(with = "base64_bytes")]
        value: Vec<u8>,
    },
    /// Removes `key` if present.
    Delete {
        /// The record's key.
        key: String,
    },
    /// Applies every command in order, all in one log entry: a reader never sees some of them
    /// applied without the others (a record saved as a head and its parts, for instance).
    Batch(Vec<Command>),
}

/// Command values as base64 text in the JSON-encoded log and RPC: a third larger than the bytes,
/// where serde's default for `Vec<u8>` (an array of numbers) is three to four times larger, on every
/// write, every replication and every flush.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(D::Error::custom)
    }
}

/// What applying a [`Command`] found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Response {
    /// Whether the key held a value before the command was applied.
    pub existed: bool,
}

#[cfg(test)]
mod tests {
    use super::Command;

    #[test]
    fn values_travel_as_base64_and_come_back_whole() {
        let value: Vec<u8> = (0..=255).collect();
        let cmd = Command::Put {
            key: "run/r1".into(),
            value: value.clone(),
        };
        let json = serde_json::to_string(&cmd).expect("encode");
        assert!(
            json.len() < 400,
            "256 bytes as base64, not a number array: {json}"
        );
        assert_eq!(serde_json::from_str::<Command>(&json).expect("decode"), cmd);
        let bad = json.replace("run/r1\",\"value\":\"", "run/r1\",\"value\":\"*");
        assert!(serde_json::from_str::<Command>(&bad).is_err());
    }
}
