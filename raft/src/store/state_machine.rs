//! The applied key→value map: openraft's `RaftStateMachine` and `RaftSnapshotBuilder` on sled.
//!
//! Design: the state machine is persisted in `apply` (one atomic sled batch per call with the
//! changed keys, the last applied log id and membership, then `flush_async().await`), and mirrored
//! in memory (a `BTreeMap` behind a lock) so [`Replica::get`](crate::Replica::get) and `scan` never
//! touch the disk. A restart reads the map back from sled; openraft then re-applies only the
//! committed entries after `last_applied`. A `kill -9` therefore loses nothing that was
//! acknowledged: the entry was flushed in the log before it committed, and is re-applied if the
//! state machine had not flushed it yet.
//!
//! Snapshots are point-in-time: openraft builds them in a spawned task while `apply` keeps running,
//! and sled 0.34 has no point-in-time reads, so [`get_snapshot_builder`] (which runs on the state
//! machine worker, serialized with `apply`) copies the in-memory state and the builder only
//! serializes and stores that frozen copy. Installing a snapshot *replaces* the map: every stored
//! key not in the snapshot is removed in the same atomic batch that writes the new state.
//!
//! Values over [`parts::PART_BYTES`] (records and snapshots) are stored in parts (see [`parts`]
//! for why): a record under `p:<key length as u64><key><part as u32>`, a snapshot's data under
//! `s:part<part as u32>`. Smaller records stay whole under `d:<key>`; directories written before
//! parts may hold any record whole there, and a whole snapshot under `s:data`; both still read, and
//! the next write of that record or snapshot replaces them.
//!
//! [`get_snapshot_builder`]: RaftStateMachine::get_snapshot_builder

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};

use super::parts::{self, PART_BYTES};
use super::{decode, encode, read_json, Store};
use crate::{Command, Node, NodeId, Response, TypeConfig};

/// Prefix of the application's keys in the `sm` tree.
const DATA_PREFIX: &[u8] = b"d:";
/// Prefix of the parts of the application's values over [`PART_BYTES`].
const PARTS_PREFIX: &[u8] = b"p:";
const APPLIED: &[u8] = b"m:applied";
const MEMBERSHIP: &[u8] = b"m:membership";
const SNAPSHOT_META: &[u8] = b"s:meta";
/// A snapshot's data stored whole, by versions before parts.
const SNAPSHOT_DATA: &[u8] = b"s:data";
/// Prefix of the parts of a snapshot's data.
const SNAPSHOT_PARTS: &[u8] = b"s:part";

/// The content of the state machine at some log position.
#[derive(Debug, Clone, Default)]
pub(crate) struct SmState {
    /// The replicated records.
    pub(crate) data: BTreeMap<String, Vec<u8>>,
    /// The last log entry applied to `data`.
    pub(crate) last_applied: Option<LogId<NodeId>>,
    /// The membership of the last applied membership entry.
    pub(crate) last_membership: StoredMembership<NodeId, Node>,
}

/// The in-memory state shared by the state machine (writer) and the replica's readers.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedState(Arc<RwLock<SmState>>);

impl SharedState {
    fn new(state: SmState) -> Self {
        SharedState(Arc::new(RwLock::new(state)))
    }

    /// Read access. A panic while the lock was held cannot leave the map half-updated in a way
    /// that matters (raft stops on it), so a poisoned lock is still read.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, SmState> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, SmState> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn data_key(key: &str) -> Vec<u8> {
    [DATA_PREFIX, key.as_bytes()].concat()
}

/// The group key of `key`'s parts: the length first, so no key's group is a prefix of another's.
fn parts_group(key: &str) -> Vec<u8> {
    [
        PARTS_PREFIX,
        &(key.len() as u64).to_be_bytes(),
        key.as_bytes(),
    ]
    .concat()
}

/// A record part's key as (its group, its part number).
fn split_parts_key(key: &[u8]) -> Option<(&[u8], Option<u32>)> {
    let rest = key.strip_prefix(PARTS_PREFIX)?;
    let len = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let end = (PARTS_PREFIX.len() + 8).checked_add(usize::try_from(len).ok()?)?;
    let part = <[u8; 4]>::try_from(key.get(end..)?).ok()?;
    Some((&key[..end], Some(u32::from_be_bytes(part))))
}

/// A snapshot part's key as (its group, its part number).
fn split_snapshot_key(key: &[u8]) -> Option<(&[u8], Option<u32>)> {
    let part = <[u8; 4]>::try_from(key.strip_prefix(SNAPSHOT_PARTS)?).ok()?;
    Some((&key[..SNAPSHOT_PARTS.len()], Some(u32::from_be_bytes(part))))
}

/// Adds to `batch` what leaves `key` holding `value` (absent for `None`) however it was stored.
fn write_value(
    tree: &sled::Tree,
    batch: &mut sled::Batch,
    key: &str,
    value: Option<&[u8]>,
) -> Result<(), sled::Error> {
    batch.remove(data_key(key));
    let group = parts_group(key);
    parts::remove_prefix(tree, batch, &group)?;
    match value {
        None => {}
        Some(value) if value.len() <= PART_BYTES => batch.insert(data_key(key), value),
        Some(value) => parts::insert(batch, &group, value),
    }
    Ok(())
}

/// Adds to `batch` the replacement of the stored snapshot data by `bytes`.
fn write_snapshot_data(
    tree: &sled::Tree,
    batch: &mut sled::Batch,
    bytes: &[u8],
) -> Result<(), sled::Error> {
    batch.remove(SNAPSHOT_DATA);
    parts::remove_prefix(tree, batch, SNAPSHOT_PARTS)?;
    parts::insert(batch, SNAPSHOT_PARTS, bytes);
    Ok(())
}

/// The stored snapshot data, whole or joined from its parts.
fn read_snapshot_data(tree: &sled::Tree) -> Result<Option<Vec<u8>>, String> {
    if let Some(bytes) = tree.get(SNAPSHOT_DATA).map_err(|e| e.to_string())? {
        return Ok(Some(bytes.to_vec()));
    }
    parts::Joined::new(tree.scan_prefix(SNAPSHOT_PARTS), split_snapshot_key)
        .next()
        .transpose()
        .map(|joined| joined.map(|(_, bytes)| bytes))
}

/// Reads the state machine back from the store, checking that every stored piece decodes.
pub(crate) fn load(store: &Store) -> Result<SmState, String> {
    let mut data = BTreeMap::new();
    for item in store.sm.scan_prefix(DATA_PREFIX) {
        let (key, value) = item.map_err(|e| format!("cannot read the state machine: {e}"))?;
        let key = String::from_utf8(key[DATA_PREFIX.len()..].to_vec())
            .map_err(|_| format!("state machine key {key:?} is not UTF-8"))?;
        data.insert(key, value.to_vec());
    }
    for item in parts::Joined::new(store.sm.scan_prefix(PARTS_PREFIX), split_parts_key) {
        let (group, value) = item.map_err(|e| format!("cannot read the state machine: {e}"))?;
        let key = String::from_utf8(group[PARTS_PREFIX.len() + 8..].to_vec())
            .map_err(|_| format!("state machine key {group:?} is not UTF-8"))?;
        if data.insert(key.clone(), value).is_some() {
            return Err(format!("state machine key {key} is stored twice"));
        }
    }
    let last_applied: Option<Option<LogId<NodeId>>> =
        read_json(&store.sm, APPLIED, "last applied log id")?;
    let last_membership: Option<StoredMembership<NodeId, Node>> =
        read_json(&store.sm, MEMBERSHIP, "applied membership")?;
    let last_applied = last_applied.flatten();
    let snapshot_meta: Option<SnapshotMeta<NodeId, Node>> =
        read_json(&store.sm, SNAPSHOT_META, "snapshot metadata")?;
    if let Some(meta) = &snapshot_meta {
        if let Some(bytes) = read_snapshot_data(&store.sm)? {
            snapshot_data(&bytes).map_err(|e| format!("the stored snapshot data: {e}"))?;
        }
        if meta.last_log_id > last_applied {
            return Err(format!(
                "the stored snapshot (up to {:?}) is newer than the applied state (up to {:?})",
                meta.last_log_id, last_applied
            ));
        }
    }
    Ok(SmState {
        data,
        last_applied,
        last_membership: last_membership.unwrap_or_default(),
    })
}

/// The state machine handed to openraft.
pub(crate) struct StateMachine {
    store: Arc<Store>,
    state: SharedState,
    /// Serializes snapshot writes (a builder task and an install can overlap).
    snapshot_lock: Arc<tokio::sync::Mutex<()>>,
}

impl StateMachine {
    /// Wraps the state read back by [`load`].
    pub(crate) fn new(store: Arc<Store>, state: SmState) -> Self {
        StateMachine {
            store,
            state: SharedState::new(state),
            snapshot_lock: Arc::default(),
        }
    }

    /// The in-memory view readers use.
    pub(crate) fn shared_state(&self) -> SharedState {
        self.state.clone()
    }
}

fn write_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e)).into()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        let state = self.state.read();
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        let mut responses = Vec::new();
        let mut touched = BTreeSet::new();
        {
            let mut state = self.state.write();
            for entry in entries {
                state.last_applied = Some(entry.log_id);
                let existed = match entry.payload {
                    EntryPayload::Blank => false,
                    EntryPayload::Membership(membership) => {
                        state.last_membership =
                            StoredMembership::new(Some(entry.log_id), membership);
                        false
                    }
                    EntryPayload::Normal(cmd) => apply_command(&mut touched, &mut state, cmd),
                };
                responses.push(Response { existed });
            }
            if responses.is_empty() {
                return Ok(responses);
            }
            // Each touched key is written once, as it stands after all these entries.
            for key in &touched {
                let value = state.data.get(key).map(Vec::as_slice);
                write_value(&self.store.sm, &mut batch, key, value).map_err(write_err)?;
            }
            batch.insert(APPLIED, encode(&state.last_applied).map_err(write_err)?);
            batch.insert(
                MEMBERSHIP,
                encode(&state.last_membership).map_err(write_err)?,
            );
        }
        // The batch (changes + last applied) is recovered atomically; the flush makes it durable so
        // that a restart never re-serves a state older than what readers have already seen.
        self.store.sm.apply_batch(batch).map_err(write_err)?;
        self.store.flush().await.map_err(write_err)?;
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Runs on the state machine worker, between two `apply` calls: this copy is a consistent cut.
        SnapshotBuilder {
            store: self.store.clone(),
            frozen: self.state.read().clone(),
            snapshot_lock: self.snapshot_lock.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let snapshot_err = |e: String| -> StorageError<NodeId> {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::error(e)).into()
        };
        let data = snapshot_data(&bytes).map_err(snapshot_err)?;

        let _guard = self.snapshot_lock.lock().await;
        let mut batch = sled::Batch::default();
        // Replace, not merge: drop every key first (a later insert of the same key wins).
        parts::remove_prefix(&self.store.sm, &mut batch, DATA_PREFIX).map_err(write_err)?;
        parts::remove_prefix(&self.store.sm, &mut batch, PARTS_PREFIX).map_err(write_err)?;
        for (key, value) in &data {
            if value.len() <= PART_BYTES {
                batch.insert(data_key(key), value.as_slice());
            } else {
                parts::insert(&mut batch, &parts_group(key), value);
            }
        }
        batch.insert(APPLIED, encode(&meta.last_log_id).map_err(write_err)?);
        batch.insert(
            MEMBERSHIP,
            encode(&meta.last_membership).map_err(write_err)?,
        );
        batch.insert(SNAPSHOT_META, encode(meta).map_err(write_err)?);
        write_snapshot_data(&self.store.sm, &mut batch, &bytes).map_err(write_err)?;
        self.store.sm.apply_batch(batch).map_err(write_err)?;
        self.store.flush().await.map_err(write_err)?;

        *self.state.write() = SmState {
            data,
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let read_err = |e: String| -> StorageError<NodeId> {
            StorageIOError::read_snapshot(None, AnyError::error(e)).into()
        };
        let _guard = self.snapshot_lock.lock().await;
        let meta: Option<SnapshotMeta<NodeId, Node>> =
            read_json(&self.store.sm, SNAPSHOT_META, "snapshot metadata").map_err(read_err)?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        let data = read_snapshot_data(&self.store.sm)
            .map_err(read_err)?
            .ok_or_else(|| {
                read_err("snapshot metadata is stored but its data is missing".to_string())
            })?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// A snapshot's data: every key with its value as base64 text, as values travel in the log (serde's
/// default for bytes, an array of numbers, is three to four times larger, and a snapshot holds
/// every run record). Snapshots written as number arrays by earlier versions still read.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotData(BTreeMap<String, SnapshotValue>);

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum SnapshotValue {
    Base64(String),
    Bytes(Vec<u8>),
}

impl From<&BTreeMap<String, Vec<u8>>> for SnapshotData {
    fn from(data: &BTreeMap<String, Vec<u8>>) -> Self {
        use base64::Engine as _;
        SnapshotData(
            data.iter()
                .map(|(k, v)| {
                    let text = base64::engine::general_purpose::STANDARD.encode(v);
                    (k.clone(), SnapshotValue::Base64(text))
                })
                .collect(),
        )
    }
}

/// The key → value map in snapshot bytes.
fn snapshot_data(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    use base64::Engine as _;
    let SnapshotData(data) = decode("received snapshot", bytes)?;
    data.into_iter()
        .map(|(k, v)| match v {
            SnapshotValue::Bytes(b) => Ok((k, b)),
            SnapshotValue::Base64(t) => base64::engine::general_purpose::STANDARD
                .decode(t.as_bytes())
                .map(|b| (k.clone(), b))
                .map_err(|e| format!("snapshot value of {k} is not base64: {e}")),
        })
        .collect()
}

/// Applies one command to the in-memory state and records the keys it changed in `touched`;
/// whether a key it touched (any, for a batch) held a value before.
fn apply_command(touched: &mut BTreeSet<String>, state: &mut SmState, cmd: Command) -> bool {
    match cmd {
        Command::Put { key, value } => {
            touched.insert(key.clone());
            state.data.insert(key, value).is_some()
        }
        Command::Delete { key } => {
            let existed = state.data.remove(&key).is_some();
            touched.insert(key);
            existed
        }
        Command::Batch(cmds) => {
            // Every command applies: no short-circuit.
            let mut existed = false;
            for c in cmds {
                existed |= apply_command(touched, state, c);
            }
            existed
        }
    }
}

/// Serializes and stores a frozen copy of the state machine.
pub(crate) struct SnapshotBuilder {
    store: Arc<Store>,
    frozen: SmState,
    snapshot_lock: Arc<tokio::sync::Mutex<()>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let bytes = encode(&SnapshotData::from(&self.frozen.data))
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let snapshot_id = match &self.frozen.last_applied {
            Some(log_id) => format!("{log_id}-{nanos}"),
            None => format!("empty-{nanos}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.frozen.last_applied,
            last_membership: self.frozen.last_membership.clone(),
            snapshot_id,
        };
        let write_err = |e: String| -> StorageError<NodeId> {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::error(e)).into()
        };

        let _guard = self.snapshot_lock.lock().await;
        let stored: Option<SnapshotMeta<NodeId, Node>> =
            read_json(&self.store.sm, SNAPSHOT_META, "snapshot metadata").map_err(write_err)?;
        // An installed snapshot may have overtaken this build; never replace a newer one.
        if stored.is_none_or(|s| s.last_log_id < meta.last_log_id) {
            let mut batch = sled::Batch::default();
            batch.insert(
                SNAPSHOT_META,
                encode(&meta).map_err(|e| write_err(e.to_string()))?,
            );
            write_snapshot_data(&self.store.sm, &mut batch, &bytes)
                .map_err(|e| write_err(e.to_string()))?;
            self.store
                .sm
                .apply_batch(batch)
                .map_err(|e| write_err(e.to_string()))?;
            self.store
                .flush()
                .await
                .map_err(|e| write_err(e.to_string()))?;
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}
