//! openraft's storage conformance suite run against the sled store, plus the durability and
//! snapshot properties the suite does not check (restart read-back, replace-not-merge install,
//! corrupt data refused at open).

use std::collections::BTreeMap;
use std::io::Cursor;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StoredMembership,
};
use tempfile::TempDir;

use super::log::LogStore;
use super::state_machine::StateMachine;
use crate::{Command, NodeId, ReplicaError, TypeConfig};

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for SledBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = TempDir::new().expect("create a temp dir");
        let opened = super::open(dir.path()).await.expect("open a fresh store");
        let log = LogStore::new(opened.store.clone());
        let sm = StateMachine::new(opened.store, opened.state);
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    // Not #[tokio::test]: the suite builds its own runtime per case.
    Suite::test_all(SledBuilder).expect("the sled store passes openraft's storage suite");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a runtime")
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn put(term: u64, index: u64, key: &str, value: &str) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Command::Put {
            key: key.to_string(),
            value: value.as_bytes().to_vec(),
        }),
    }
}

async fn open_sm(dir: &std::path::Path) -> (LogStore, StateMachine) {
    let opened = super::open(dir).await.expect("open store");
    (
        LogStore::new(opened.store.clone()),
        StateMachine::new(opened.store, opened.state),
    )
}

#[test]
fn applied_state_survives_reopen() {
    let dir = TempDir::new().expect("tempdir");
    runtime().block_on(async {
        {
            let (_log, mut sm) = open_sm(dir.path()).await;
            let out = sm
                .apply([
                    put(1, 1, "run/a", "1"),
                    put(1, 2, "run/b", "2"),
                    put(1, 3, "run/a", "3"),
                ])
                .await
                .expect("apply");
            let existed: Vec<bool> = out.iter().map(|r| r.existed).collect();
            assert_eq!(existed, [false, false, true]);
        }
        let (_log, mut sm) = open_sm(dir.path()).await;
        let (applied, _) = sm.applied_state().await.expect("applied state");
        assert_eq!(applied, Some(log_id(1, 3)));
        let state = sm.shared_state();
        let state = state.read();
        assert_eq!(state.data.get("run/a").map(Vec::as_slice), Some(&b"3"[..]));
        assert_eq!(state.data.get("run/b").map(Vec::as_slice), Some(&b"2"[..]));
    });
}

#[test]
fn snapshot_is_point_in_time_and_install_replaces() {
    let src_dir = TempDir::new().expect("tempdir");
    let dst_dir = TempDir::new().expect("tempdir");
    runtime().block_on(async {
        let (_l, mut src) = open_sm(src_dir.path()).await;
        src.apply([put(1, 1, "keep", "k"), put(1, 2, "both", "src")])
            .await
            .expect("apply");
        let mut builder = src.get_snapshot_builder().await;
        // Applied after the builder was taken: must not appear in the snapshot.
        src.apply([put(1, 3, "late", "x")]).await.expect("apply");
        let snapshot = builder.build_snapshot().await.expect("build");
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 2)));

        let (_l, mut dst) = open_sm(dst_dir.path()).await;
        dst.apply([put(1, 1, "stale", "s"), put(1, 2, "both", "dst")])
            .await
            .expect("apply");
        dst.install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .expect("install");
        let expect: BTreeMap<String, Vec<u8>> = [("both", "src"), ("keep", "k")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(dst.shared_state().read().data, expect);
        drop((_l, dst));

        // And the replacement is what comes back from disk.
        let (_l, mut dst) = open_sm(dst_dir.path()).await;
        assert_eq!(dst.shared_state().read().data, expect);
        let current = dst
            .get_current_snapshot()
            .await
            .expect("read snapshot")
            .expect("a snapshot");
        assert_eq!(current.meta.last_log_id, Some(log_id(1, 2)));
    });
}

#[test]
fn install_of_garbage_snapshot_fails() {
    let dir = TempDir::new().expect("tempdir");
    runtime().block_on(async {
        let (_l, mut sm) = open_sm(dir.path()).await;
        let meta = SnapshotMeta {
            last_log_id: Some(log_id(1, 5)),
            last_membership: StoredMembership::default(),
            snapshot_id: "x".to_string(),
        };
        let res = sm
            .install_snapshot(&meta, Box::new(Cursor::new(b"not json".to_vec())))
            .await;
        assert!(res.is_err());
    });
}

#[test]
fn corrupt_records_are_refused_at_open() {
    let dir = TempDir::new().expect("tempdir");
    runtime().block_on(async {
        {
            let (mut log, _sm) = open_sm(dir.path()).await;
            log.save_vote(&openraft::Vote::new(1, 1))
                .await
                .expect("save vote");
        }
        {
            // Tamper with the vote as another program might.
            let opened = super::open(dir.path()).await.expect("reopen");
            opened
                .store
                .raft
                .insert(b"vote", &b"{garbage"[..])
                .expect("insert");
            opened.store.flush().await.expect("flush");
        }
        match super::open(dir.path()).await {
            Err(ReplicaError::Open { dir: d, reason }) => {
                assert_eq!(d, dir.path());
                assert!(reason.contains("vote"), "{reason}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a corrupt vote must not open"),
        }
    });
}

#[test]
fn log_hole_is_refused_at_open() {
    let dir = TempDir::new().expect("tempdir");
    runtime().block_on(async {
        {
            let opened = super::open(dir.path()).await.expect("open");
            for index in [1u64, 2, 4] {
                let bytes = serde_json::to_vec(&put(1, index, "k", "v")).expect("encode");
                opened
                    .store
                    .logs
                    .insert(index.to_be_bytes(), bytes)
                    .expect("insert");
            }
            opened.store.flush().await.expect("flush");
        }
        let err = super::open(dir.path())
            .await
            .err()
            .expect("a log with a hole must not open");
        assert!(err.to_string().contains("hole"), "{err}");
    });
}

#[test]
fn garbage_directory_is_refused_at_open() {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(dir.path().join("conf"), b"\xff\xfe not a sled config").expect("write");
    std::fs::write(dir.path().join("db"), vec![0xAB; 4096]).expect("write");
    runtime().block_on(async {
        let err = super::open(dir.path())
            .await
            .err()
            .expect("garbage must not open");
        let msg = err.to_string();
        assert!(matches!(err, ReplicaError::Open { .. }), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    });
}

#[test]
fn second_open_of_a_held_directory_fails_with_open_error() {
    let dir = TempDir::new().expect("tempdir");
    runtime().block_on(async {
        let _held = super::open(dir.path()).await.expect("open");
        let started = std::time::Instant::now();
        let err = super::open(dir.path())
            .await
            .err()
            .expect("the dir is locked");
        assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
        assert!(err.to_string().contains("in use"), "{err}");
    });
}
