//! A replica killed with SIGKILL (no shutdown, no destructor) loses no acknowledged write.
//!
//! sled keeps writes in process memory until flushed, so this is the test that catches a missing
//! `flush_async` on the append or apply path. The test binary re-runs itself as the victim: the
//! ignored `crash_victim` test, enabled by an environment variable, writes to a single-replica
//! cluster and prints `ack <i>` after each acknowledged write; the parent kills it mid-stream and
//! reopens its directory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use perfornium_raft::{Command, Replica, ReplicaConfig};

const DIR_ENV: &str = "PERFORNIUM_RAFT_CRASH_DIR";
const ACKS_BEFORE_KILL: usize = 60;

async fn open_single(dir: &std::path::Path) -> (Replica, tokio::net::TcpListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let cfg = ReplicaConfig::new(1, addr.clone(), BTreeMap::from([(1, addr)]), dir);
    (Replica::open(cfg).await.expect("open replica"), listener)
}

async fn wait_leader(replica: &Replica) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica.status().is_leader {
        assert!(
            Instant::now() < deadline,
            "single replica never became leader"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The victim: writes forever, acknowledging each write on stdout. Does nothing unless run by
/// `acknowledged_writes_survive_sigkill`.
#[tokio::test]
#[ignore = "run as a child process by acknowledged_writes_survive_sigkill"]
async fn crash_victim() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let (replica, _listener) = open_single(std::path::Path::new(&dir)).await;
    wait_leader(&replica).await;
    for i in 0.. {
        let cmd = Command::Put {
            key: format!("k/{i:06}"),
            value: i.to_string().into_bytes(),
        };
        replica.write(cmd).await.expect("write");
        println!("ack {i}");
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut child = Process::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "crash_victim",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the victim");
    let stdout = child.stdout.take().expect("piped stdout");
    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read victim output");
            if let Some(i) = line.strip_prefix("ack ") {
                acked.push(i.parse::<u64>().expect("ack number"));
                if acked.len() == ACKS_BEFORE_KILL {
                    break;
                }
            }
        }
        acked
    });
    let acked = tokio::time::timeout(Duration::from_secs(30), acked)
        .await
        .expect("victim acknowledged writes in time")
        .expect("reader task");
    child.kill().expect("SIGKILL the victim");
    child.wait().expect("reap the victim");
    assert_eq!(acked.len(), ACKS_BEFORE_KILL, "the victim stopped early");

    let (replica, _listener) = open_single(dir.path()).await;
    // Served from the durable state machine, before any election.
    for i in &acked {
        assert_eq!(
            replica.get(&format!("k/{i:06}")),
            Some(i.to_string().into_bytes()),
            "acknowledged write {i} was lost"
        );
    }
    wait_leader(&replica).await;
    replica
        .write(Command::Delete {
            key: "k/000000".to_string(),
        })
        .await
        .expect("the reopened replica accepts writes");
    replica.shutdown().await.expect("shutdown");
}
