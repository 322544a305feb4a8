//! The raft log and vote on sled: openraft's `RaftLogStorage` and `RaftLogReader`.
//!
//! Raft's safety rests on two promises made here: a vote is on disk before this node answers a
//! vote request (or it could vote twice in one term after a crash), and an appended entry is on
//! disk before openraft is told so (the leader counts it towards a commit quorum). Hence the
//! `flush_async().await` before `save_vote` returns and before the append callback fires, and also
//! after `truncate` and `purge` so the log never comes back from a crash with a hole or a stale
//! tail. `save_committed` is the one write that is not flushed: losing it only means re-applying a
//! few entries at restart.
//!
//! Keys: an entry is stored in parts of at most [`parts::PART_BYTES`] (see [`parts`] for why),
//! under its index (big-endian `u64`, so key order is log order) followed by the part number
//! (big-endian `u32`). Directories written before parts hold each entry whole under the bare
//! index; those keys still read, and are removed by the same ranges.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, StorageError, StorageIOError, Vote};
use serde::de::DeserializeOwned;

use super::{decode, encode, parts, read_json, Store};
use crate::{NodeId, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The log store. Cheap to clone; clones are the log readers of the replication tasks.
#[derive(Clone)]
pub(crate) struct LogStore {
    store: Arc<Store>,
}

impl LogStore {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        LogStore { store }
    }

    fn read_raft<T: DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<T>, AnyError> {
        read_json(&self.store.raft, key, what).map_err(AnyError::error)
    }

    async fn flush(&self) -> Result<(), StorageError<NodeId>> {
        self.store
            .flush()
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

/// The key bound just past every key of entry `index`: `None` when unbounded.
fn after_index(index: u64) -> Option<[u8; 8]> {
    index.checked_add(1).map(index_key)
}

/// A log key as (the entry's index key, its part number); a bare index key is a whole entry.
fn split_key(key: &[u8]) -> Option<(&[u8], Option<u32>)> {
    match key.len() {
        8 => Some((key, None)),
        12 => {
            let part = <[u8; 4]>::try_from(&key[8..]).ok()?;
            Some((&key[..8], Some(u32::from_be_bytes(part))))
        }
        _ => None,
    }
}

/// The entries (index, JSON bytes) among `keys`, their parts joined, in log order.
fn entries<I>(keys: I) -> impl Iterator<Item = Result<(u64, Vec<u8>), String>>
where
    I: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
{
    parts::Joined::new(keys, split_key).map(|item| {
        let (group, bytes) = item.map_err(|e| format!("cannot read the log: {e}"))?;
        let index =
            key_index(&group).ok_or_else(|| format!("log key {group:?} is not a u64 index"))?;
        Ok((index, bytes))
    })
}

/// The JSON bytes of the entry with the highest index, if any.
fn last_entry(logs: &sled::Tree) -> Result<Option<(u64, Vec<u8>)>, String> {
    let Some((key, _)) = logs
        .last()
        .map_err(|e| format!("cannot read the log: {e}"))?
    else {
        return Ok(None);
    };
    let (group, _) = split_key(&key).ok_or_else(|| format!("unexpected log key {key:?}"))?;
    let index = key_index(group).ok_or_else(|| format!("log key {key:?} is not a u64 index"))?;
    let keys = match after_index(index) {
        Some(end) => logs.range(index_key(index)..end),
        None => logs.range(index_key(index)..),
    };
    entries(keys).last().transpose()
}

/// Checks, when the store is opened, that the vote, committed and purge records decode and that the
/// log is a run of decodable entries with no hole. Returns whether any raft state is present.
pub(crate) fn validate(store: &Store) -> Result<bool, String> {
    let vote: Option<Vote<NodeId>> = read_json(&store.raft, VOTE, "vote")?;
    let _committed: Option<Option<LogId<NodeId>>> =
        read_json(&store.raft, COMMITTED, "committed log id")?;
    let purged: Option<LogId<NodeId>> = read_json(&store.raft, LAST_PURGED, "last purged log id")?;
    let mut first = None;
    let mut prev: Option<u64> = None;
    for item in entries(store.logs.iter()) {
        let (index, value) = item?;
        let entry: Entry<TypeConfig> = decode(&format!("log entry {index}"), &value)?;
        if entry.log_id.index != index {
            return Err(format!(
                "log entry stored at index {index} claims index {}",
                entry.log_id.index
            ));
        }
        if let Some(prev) = prev {
            if index == prev {
                return Err(format!("log entry {index} is stored twice"));
            }
            if index != prev + 1 {
                return Err(format!(
                    "the log has a hole between index {prev} and {index}"
                ));
            }
        }
        first.get_or_insert(index);
        prev = Some(index);
    }
    if let (Some(first), Some(purged)) = (first, &purged) {
        if first > purged.index + 1 {
            return Err(format!(
                "the log starts at index {first} but was purged only up to {}",
                purged.index
            ));
        }
    }
    Ok(vote.is_some() || prev.is_some() || purged.is_some())
}

/// Converts any range of log indexes into a `[start, end)` pair, `end == None` meaning unbounded.
fn index_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => i.checked_add(1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let (start, end) = index_bounds(&range);
        let iter = match end {
            Some(end) if end <= start => return Ok(Vec::new()),
            Some(end) => self.store.logs.range(index_key(start)..index_key(end)),
            None => self.store.logs.range(index_key(start)..),
        };
        let mut read = Vec::new();
        for item in entries(iter) {
            let (index, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::error(e)))?;
            let entry = decode(&format!("log entry {index}"), &value)
                .map_err(|e| StorageIOError::read_log_at_index(index, AnyError::error(e)))?;
            read.push(entry);
        }
        Ok(read)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self
            .read_raft(LAST_PURGED, "last purged log id")
            .map_err(StorageIOError::read_logs)?;
        let last = match last_entry(&self.store.logs)
            .map_err(|e| StorageIOError::read_logs(AnyError::error(e)))?
        {
            Some((_, value)) => {
                let entry: Entry<TypeConfig> = decode("last log entry", &value)
                    .map_err(|e| StorageIOError::read_logs(AnyError::error(e)))?;
                Some(entry.log_id)
            }
            None => None,
        };
        // After a crash between recording a purge and deleting the entries, leftovers below the
        // purge point may remain; the purge point still bounds the log from below.
        let last_log_id = std::cmp::max(last, last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = encode(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.store
            .raft
            .insert(VOTE, bytes)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        // The vote must be on disk before this node acts on it (answers a vote request).
        self.store
            .flush()
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read_raft(VOTE, "vote")
            .map_err(StorageIOError::read_vote)?)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Not flushed on purpose: a lost `committed` only means re-applying entries on restart,
        // and the state machine itself is flushed at the end of every `apply`.
        let bytes = encode(&committed).map_err(|e| StorageIOError::write(&e))?;
        self.store
            .raft
            .insert(COMMITTED, bytes)
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let committed: Option<Option<LogId<NodeId>>> = self
            .read_raft(COMMITTED, "committed log id")
            .map_err(StorageIOError::read)?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes =
                encode(&entry).map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
            let index = entry.log_id.index;
            // Whatever this index held (a whole entry from an older version, or more parts than
            // the new entry has) goes in the same batch; the new parts' inserts win.
            let old = match after_index(index) {
                Some(end) => self.store.logs.range(index_key(index)..end),
                None => self.store.logs.range(index_key(index)..),
            };
            for item in old {
                let (key, _) =
                    item.map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
                batch.remove(key);
            }
            parts::insert(&mut batch, &index_key(index), &bytes);
        }
        if let Err(e) = self.store.logs.apply_batch(batch) {
            callback.log_io_completed(Err(io::Error::other(e.to_string())));
            return Err(StorageIOError::write_logs(&e).into());
        }
        // Entries are readable now; they count towards a commit only once they are on disk.
        match self.store.flush().await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut batch = sled::Batch::default();
        for item in self.store.logs.range(index_key(log_id.index)..) {
            let (key, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(key);
        }
        self.store
            .logs
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Record the purge point first: if we crash before the entries are gone, the log still
        // reads as starting after it (no hole), and the next purge removes the leftovers.
        let bytes = encode(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        self.store
            .raft
            .insert(LAST_PURGED, bytes)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        let mut batch = sled::Batch::default();
        let purged = match after_index(log_id.index) {
            Some(end) => self.store.logs.range(..end),
            None => self.store.logs.range::<&[u8], _>(..),
        };
        for item in purged {
            let (key, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(key);
        }
        self.store
            .logs
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_bounds_cover_all_range_shapes() {
        assert_eq!(index_bounds(&(3..7)), (3, Some(7)));
        assert_eq!(index_bounds(&(3..=7)), (3, Some(8)));
        assert_eq!(index_bounds(&(..7)), (0, Some(7)));
        assert_eq!(index_bounds(&(3..)), (3, None));
        assert_eq!(index_bounds(&(..=u64::MAX)), (0, None));
    }

    #[test]
    fn index_keys_sort_in_log_order() {
        assert!(index_key(255) < index_key(256));
        assert_eq!(key_index(&index_key(42)), Some(42));
        assert_eq!(key_index(b"short"), None);
        let part = parts::part_key(&index_key(42), 3);
        assert_eq!(split_key(&part), Some((index_key(42).as_slice(), Some(3))));
        assert_eq!(
            split_key(&index_key(42)),
            Some((index_key(42).as_slice(), None))
        );
        assert_eq!(split_key(b"short"), None);
        assert!(part > index_key(42).to_vec() && part < index_key(43).to_vec());
    }
}
