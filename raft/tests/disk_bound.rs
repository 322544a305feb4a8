//! A leader that keeps writing records over 200 KiB (the master's run records are 150–680 KB)
//! keeps its sled directory bounded once snapshots purge the log.
//!
//! sled 0.34 stores any page over 128 KiB as a file under `blobs/` and defers deleting a replaced
//! one until its log segment fills, which never happens when nearly every byte goes to blobs; the
//! store therefore cuts big values into parts (`src/store/parts.rs`). Before that, this test saw
//! about two new blob files per write and the directory grow by the size of every write (300
//! writes: 700 blob files, 370 MiB).
//!
//! `PERFORNIUM_RAFT_DISK_WRITES=<n>` runs `n` writes instead of the CI-sized 320 (800 shows the
//! directory's plateau, reached after about 400).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use perfornium_raft::{Command, Replica, ReplicaConfig};

/// Bytes of each record written; over sled's 128 KiB blob threshold on its own.
const RECORD_BYTES: usize = 200 << 10;
/// Records rewritten in turn, as the master rewrites a few run records.
const KEYS: u64 = 3;
/// Writes by default: three snapshots (one every 100 logs), two purges.
const WRITES: u64 = 320;

/// Total bytes of the files under `dir`, and how many of them are under `blobs/`.
fn dir_size(dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut blobs = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read the data dir") {
            let entry = entry.expect("dir entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                bytes += meta.len();
                blobs += usize::from(d.file_name().is_some_and(|n| n == "blobs"));
            }
        }
    }
    (bytes, blobs)
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

/// Opens a one-replica cluster in `dir` (it leads at once); the listener holds its port.
async fn open_single(dir: &Path) -> (Replica, tokio::net::TcpListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let cfg = ReplicaConfig::new(1, addr.clone(), BTreeMap::from([(1, addr)]), dir);
    let replica = Replica::open(cfg).await.expect("open replica");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica.status().is_leader {
        assert!(Instant::now() < deadline, "the single replica never led");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (replica, listener)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_writing_big_records_keeps_its_sled_directory_bounded() {
    let writes: u64 = std::env::var("PERFORNIUM_RAFT_DISK_WRITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(WRITES);
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let dir = tmp.path().join("replica-1");
    let (replica, _listener) = open_single(&dir).await;
    let mut expect = BTreeMap::new();
    let mut largest = 0;
    let mut blobs = 0;
    for i in 0..writes {
        let key = format!("run/{}", i % KEYS);
        let value = noise(i, RECORD_BYTES);
        replica
            .write(Command::Put {
                key: key.clone(),
                value: value.clone(),
            })
            .await
            .expect("write");
        expect.insert(key, value);
        let (bytes, blob_files) = dir_size(&dir);
        largest = largest.max(bytes);
        blobs = blobs.max(blob_files);
    }
    let status = replica.status();
    let purged = replica.metrics().borrow().purged.map(|l| l.index);
    assert!(
        purged.is_some_and(|p| p + 1 >= writes.saturating_sub(220)),
        "snapshots purged the log (purged up to {purged:?} of {writes}): {status:?}"
    );
    // What the replica holds: the log it keeps (at most 200 entries of one record each, as base64
    // in JSON), the applied records and the snapshot of them. sled reuses a log segment only once
    // half of it is stale and never shrinks its file, so the high-water mark is a few times that:
    // 3.7x after 800 writes, where it stays.
    let record_json = (RECORD_BYTES as u64) * 4 / 3 + 200;
    let live = 200 * record_json + 2 * KEYS * record_json;
    eprintln!(
        "{writes} writes: the directory peaked at {largest} bytes, {blobs} blob files at most"
    );
    assert!(
        largest <= 5 * live,
        "the directory reached {largest} bytes, over 5x the {live} bytes it holds \
         ({blobs} blob files at most)"
    );
    assert_eq!(blobs, 0, "sled stored values in blob files");
    replica.shutdown().await.expect("shutdown");
    drop(replica);

    // And everything reads back after a restart.
    let (replica, _listener) = open_single(&dir).await;
    let got: BTreeMap<String, Vec<u8>> = replica.scan("run/").into_iter().collect();
    assert!(
        got == expect,
        "the records read back differ after a restart"
    );
    replica.shutdown().await.expect("shutdown");
}
