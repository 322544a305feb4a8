//! The replica's durable state in one sled database: the raft log, the vote, and the state machine.
//!
//! One directory per replica. Three trees:
//! - `logs`: raft entries, big-endian `u64` index → JSON entry, so key order is log order;
//! - `raft`: the vote, the committed log id and the last purged log id;
//! - `sm`: the applied key→value map (`d:<key>`), last applied log id and membership (`m:…`) and
//!   the latest snapshot (`s:…`), in one tree so a snapshot install replaces all of it in one
//!   atomic batch.
//!
//! Values over 4 KiB (log entries, records, snapshots) are stored in parts under consecutive keys
//! ([`parts`]): sled 0.34 keeps the files of big pages it has replaced for as long as its current
//! log segment is not full, which left a leader's directory growing by every purged entry.
//!
//! sled 0.34 keeps writes in process memory until flushed (a crash loses them), so it runs with
//! `flush_every_ms(None)` and every raft durability point calls `flush_async().await` explicitly.
//! Opening retries for a while on a held lock (sled releases it after the last handle is dropped,
//! not synchronously) and validates everything it will later serve, so a corrupt directory fails
//! at start with [`ReplicaError::Open`] instead of serving wrong state.

#[cfg(test)]
mod layout_tests;
pub(crate) mod log;
pub(crate) mod parts;
pub(crate) mod state_machine;
#[cfg(test)]
mod suite_tests;
pub(crate) mod witness;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ReplicaError;
use state_machine::SmState;

/// sled's page cache budget; its default (1 GiB) is far more than the master's state needs.
const CACHE_BYTES: u64 = 64 << 20;
/// How long `open` keeps retrying while another handle still holds the directory's lock.
const LOCK_RETRY: Duration = Duration::from_secs(2);
const LOCK_RETRY_STEP: Duration = Duration::from_millis(25);

/// The open sled database and its trees. Shared (`Arc`) by the log store, its readers, the state
/// machine and snapshot builders; the directory is unlocked once the last clone is gone.
pub(crate) struct Store {
    db: sled::Db,
    pub(crate) logs: sled::Tree,
    pub(crate) raft: sled::Tree,
    pub(crate) sm: sled::Tree,
    /// Raised by every flush; see [`witness`].
    epoch: AtomicU64,
    witness: Arc<witness::Witness>,
}

impl Store {
    /// fsyncs every write made so far (to any tree) to disk, then records the new epoch in the
    /// witness file (only after sled holds it durably, so the witness never claims too much).
    pub(crate) async fn flush(&self) -> Result<(), sled::Error> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        // Concurrent flushes may insert out of order: keep the largest.
        self.raft.update_and_fetch(witness::EPOCH_KEY, |old| {
            let old = old
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Some(old.max(epoch).to_be_bytes().to_vec())
        })?;
        self.db.flush_async().await?;
        let witness = self.witness.clone();
        tokio::task::spawn_blocking(move || witness.record(epoch))
            .await
            .map_err(|e| sled::Error::Io(std::io::Error::other(e)))?
            .map_err(sled::Error::Io)
    }
}

/// A store that opened and validated, with what was read back from it.
pub(crate) struct Opened {
    pub(crate) store: Arc<Store>,
    /// The applied state machine, as of the last flushed `apply` or snapshot install.
    pub(crate) state: SmState,
    /// No vote, no log and no purge record: this replica never took part in a cluster.
    pub(crate) fresh: bool,
}

enum OpenFailure {
    Locked(String),
    Invalid(String),
}

/// Opens (or creates) the store in `dir`, retrying for about two seconds while its lock is held.
pub(crate) async fn open(dir: &Path) -> Result<Opened, ReplicaError> {
    let deadline = Instant::now() + LOCK_RETRY;
    loop {
        let owned = dir.to_path_buf();
        let attempt = tokio::task::spawn_blocking(move || open_blocking(&owned)).await;
        let reason = match attempt {
            Ok(Ok(opened)) => return Ok(opened),
            Ok(Err(OpenFailure::Locked(msg))) => {
                if Instant::now() < deadline {
                    tokio::time::sleep(LOCK_RETRY_STEP).await;
                    continue;
                }
                format!(
                    "{msg}; it is in use by another process or a replica that was not shut down \
                     (each replica needs its own data_dir)"
                )
            }
            Ok(Err(OpenFailure::Invalid(reason))) => reason,
            Err(join) => format!(
                "the storage engine crashed reading it ({join}); the data is likely corrupt"
            ),
        };
        return Err(ReplicaError::Open {
            dir: dir.to_path_buf(),
            reason,
        });
    }
}

fn open_blocking(dir: &Path) -> Result<Opened, OpenFailure> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_BYTES)
        .flush_every_ms(None)
        .open()
        .map_err(|e| {
            let msg = e.to_string();
            if msg.contains("could not acquire lock") {
                OpenFailure::Locked(msg)
            } else {
                OpenFailure::Invalid(format!("sled could not open it: {msg}"))
            }
        })?;
    let tree = |name: &str| {
        db.open_tree(name)
            .map_err(|e| OpenFailure::Invalid(format!("cannot open tree `{name}`: {e}")))
    };
    let raft = tree("raft")?;
    let epoch = witness::stored_epoch(&raft).map_err(OpenFailure::Invalid)?;
    witness::check(dir, epoch).map_err(OpenFailure::Invalid)?;
    let witness = witness::Witness::open(dir, epoch)
        .map_err(|e| OpenFailure::Invalid(format!("cannot write {}: {e}", witness::FILE)))?;
    let store = Store {
        logs: tree("logs")?,
        raft,
        sm: tree("sm")?,
        db,
        epoch: AtomicU64::new(epoch),
        witness: Arc::new(witness),
    };
    let log_present = log::validate(&store).map_err(OpenFailure::Invalid)?;
    let state = state_machine::load(&store).map_err(OpenFailure::Invalid)?;
    Ok(Opened {
        store: Arc::new(store),
        state,
        fresh: !log_present,
    })
}

/// JSON-encodes a value for storage. Our types serialize infallibly (no maps with non-string keys,
/// no custom serializers), so a failure here is a bug, reported as an error rather than a panic.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(value)
}

/// Decodes a stored JSON value, naming what it was in the error.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("stored {what} is unreadable: {e}"))
}

/// Reads and decodes one stored JSON value; `Ok(None)` when the key is absent.
pub(crate) fn read_json<T: DeserializeOwned>(
    tree: &sled::Tree,
    key: &[u8],
    what: &str,
) -> Result<Option<T>, String> {
    match tree.get(key) {
        Ok(Some(bytes)) => decode(what, &bytes).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("cannot read {what}: {e}")),
    }
}
