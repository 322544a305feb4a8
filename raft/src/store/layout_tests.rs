//! The stored layout: records, snapshots and log entries over the part size are stored in parts and
//! read back whole after a restart, sled writes no blob file for them, and a directory written by
//! an earlier version (every value whole under one key) still opens and reads.

use std::collections::BTreeMap;
use std::path::Path;

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use tempfile::TempDir;

use super::log::LogStore;
use super::parts::PART_BYTES;
use super::state_machine::StateMachine;
use crate::{Command, NodeId, TypeConfig};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a runtime")
}

fn log_id(index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

/// `len` bytes that differ with `seed` and do not compress.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn put(index: u64, key: &str, value: Vec<u8>) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(Command::Put {
            key: key.to_string(),
            value,
        }),
    }
}

async fn open(dir: &Path) -> (LogStore, StateMachine) {
    let opened = super::open(dir).await.expect("open store");
    (
        LogStore::new(opened.store.clone()),
        StateMachine::new(opened.store, opened.state),
    )
}

fn blob_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("blobs")).map_or(0, |d| d.count())
}

fn data(sm: &StateMachine) -> BTreeMap<String, Vec<u8>> {
    sm.shared_state().read().data.clone()
}

#[test]
fn big_records_and_snapshots_are_stored_in_parts_without_blob_files_and_read_back() {
    let dir = TempDir::new().expect("tempdir");
    let big = |seed| noise(seed, 300 << 10);
    let mut expect = BTreeMap::new();
    expect.insert("run/a".to_string(), big(3));
    expect.insert("run/b".to_string(), big(2));
    expect.insert("small".to_string(), b"s".to_vec());
    expect.insert("edge".to_string(), noise(9, PART_BYTES + 1));
    runtime().block_on(async {
        {
            let (_log, mut sm) = open(dir.path()).await;
            sm.apply([put(1, "run/a", big(1)), put(2, "run/b", big(2))])
                .await
                .expect("apply");
            // One call that grows, shrinks and deletes keys: what is stored is the end state.
            sm.apply([
                put(3, "run/a", big(3)),
                put(4, "gone", big(4)),
                put(5, "small", big(5)),
                put(6, "small", b"s".to_vec()),
                Entry {
                    log_id: log_id(7),
                    payload: EntryPayload::Normal(Command::Delete { key: "gone".into() }),
                },
                put(8, "edge", noise(9, PART_BYTES + 1)),
            ])
            .await
            .expect("apply");
            assert_eq!(data(&sm), expect);
            let snapshot = sm
                .get_snapshot_builder()
                .await
                .build_snapshot()
                .await
                .expect("build");
            assert_eq!(snapshot.meta.last_log_id, Some(log_id(8)));
        }
        let (_log, mut sm) = open(dir.path()).await;
        assert_eq!(data(&sm), expect, "read back after reopening");
        let current = sm
            .get_current_snapshot()
            .await
            .expect("read snapshot")
            .expect("a snapshot");
        assert_eq!(current.meta.last_log_id, Some(log_id(8)));
        // The snapshot installs elsewhere as the same state.
        let other = TempDir::new().expect("tempdir");
        let (_l, mut dst) = open(other.path()).await;
        dst.install_snapshot(&current.meta, current.snapshot)
            .await
            .expect("install");
        assert_eq!(data(&dst), expect);
        drop((_l, dst));
        let (_l, dst) = open(other.path()).await;
        assert_eq!(data(&dst), expect, "installed state read back");
    });
    assert_eq!(blob_files(dir.path()), 0, "no value went to a blob file");
}

#[test]
fn a_directory_written_whole_by_an_earlier_version_opens_and_is_rewritten_in_parts() {
    let dir = TempDir::new().expect("tempdir");
    let old_value = noise(1, 200 << 10);
    let entries = [
        put(1, "run/a", old_value.clone()),
        put(2, "run/b", b"b".to_vec()),
    ];
    runtime().block_on(async {
        {
            // The earlier layout: each entry whole under its bare index, records whole under
            // `d:<key>`, the snapshot whole under `s:data`.
            let opened = super::open(dir.path()).await.expect("open");
            let store = &opened.store;
            for entry in &entries {
                let bytes = serde_json::to_vec(entry).expect("encode");
                store
                    .logs
                    .insert(entry.log_id.index.to_be_bytes(), bytes)
                    .expect("insert");
            }
            store
                .sm
                .insert(b"d:run/a", old_value.as_slice())
                .expect("insert");
            store
                .sm
                .insert(b"d:run/b", b"b".as_slice())
                .expect("insert");
            let applied = serde_json::to_vec(&Some(log_id(2))).expect("encode");
            store.sm.insert(b"m:applied", applied).expect("insert");
            let meta = openraft::SnapshotMeta::<NodeId, crate::Node> {
                last_log_id: Some(log_id(2)),
                last_membership: Default::default(),
                snapshot_id: "old".to_string(),
            };
            let data = format!(r#"{{"run/b":[98],"run/a":{:?}}}"#, old_value);
            store
                .sm
                .insert(b"s:meta", serde_json::to_vec(&meta).expect("encode"))
                .expect("insert");
            store.sm.insert(b"s:data", data.as_bytes()).expect("insert");
            store.flush().await.expect("flush");
        }
        let (mut log, mut sm) = open(dir.path()).await;
        let read = log.try_get_log_entries(1..3).await.expect("read the log");
        assert_eq!(read, entries.to_vec());
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_log_id, Some(log_id(2)));
        assert_eq!(data(&sm).get("run/a"), Some(&old_value));
        let current = sm
            .get_current_snapshot()
            .await
            .expect("read snapshot")
            .expect("the old snapshot");
        assert_eq!(current.meta.snapshot_id, "old");

        // New writes replace the whole values with parts; nothing of the old layout is left.
        let new_value = noise(2, 200 << 10);
        sm.apply([put(3, "run/a", new_value.clone())])
            .await
            .expect("apply");
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        log.purge(log_id(2)).await.expect("purge");
        drop((log, sm));
        let opened = super::open(dir.path()).await.expect("reopen");
        let store = &opened.store;
        assert_eq!(store.sm.get(b"d:run/a").expect("get"), None);
        assert_eq!(store.sm.get(b"s:data").expect("get"), None);
        assert_eq!(store.logs.len(), 0, "purged, old keys included");
        assert_eq!(opened.state.data.get("run/a"), Some(&new_value));
        assert_eq!(
            opened.state.data.get("run/b").map(Vec::as_slice),
            Some(&b"b"[..])
        );
    });
}
