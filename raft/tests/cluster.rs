//! End-to-end test of the replicated store: three replicas in one process, each serving its raft
//! routes over real HTTP on its own 127.0.0.1 port, through election, redirect, replication,
//! leader loss, catch-up (by snapshot) and a full restart from the data directories.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use perfornium_raft::{Command, NodeId, Replica, ReplicaConfig, ReplicaError};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A replica with the HTTP server that carries its raft RPC.
struct Running {
    replica: Replica,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops raft, then closes the HTTP server (gracefully, so peers' pooled keep-alive
    /// connections are closed and reach the next server bound to this port).
    async fn stop(self) {
        self.replica.shutdown().await.expect("replica shutdown");
        let _ = self.stop_server.send(());
        tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .expect("server stops")
            .expect("server task")
            .expect("server io");
    }
}

struct Cluster {
    peers: BTreeMap<NodeId, String>,
    dirs: BTreeMap<NodeId, PathBuf>,
    _tmp: TempDir,
}

impl Cluster {
    async fn new() -> (Cluster, BTreeMap<NodeId, TcpListener>) {
        let tmp = TempDir::new().expect("tempdir");
        let mut listeners = BTreeMap::new();
        let mut peers = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for id in 1..=3 {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            peers.insert(id, listener.local_addr().expect("addr").to_string());
            dirs.insert(id, tmp.path().join(format!("master-{id}")));
            listeners.insert(id, listener);
        }
        (
            Cluster {
                peers,
                dirs,
                _tmp: tmp,
            },
            listeners,
        )
    }

    fn config(&self, id: NodeId) -> ReplicaConfig {
        let mut cfg = ReplicaConfig::new(
            id,
            self.peers[&id].clone(),
            self.peers.clone(),
            self.dirs[&id].clone(),
        );
        cfg.heartbeat_ms = 50;
        cfg.election_min_ms = 300;
        cfg.election_max_ms = 600;
        cfg.token = Some("test-token".to_string());
        cfg
    }

    /// Opens replica `id` from its directory and serves it on `listener` (or on its port again).
    async fn start(&self, id: NodeId, listener: Option<TcpListener>) -> Running {
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind(&self.peers[&id])
                .await
                .expect("rebind the same port"),
        };
        let replica = Replica::open(self.config(id)).await.expect("open replica");
        let (stop_server, stopped) = oneshot::channel::<()>();
        let router = replica.raft_router();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Running {
            replica,
            stop_server,
            server,
        }
    }
}

/// Polls `check` every 10 ms until it holds, failing the test after `timeout`.
async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The leader all `nodes` agree on, once they do.
async fn agreed_leader(nodes: &BTreeMap<NodeId, Running>, timeout: Duration) -> NodeId {
    let mut agreed = None;
    wait_for("all replicas to agree on a leader", timeout, || {
        let leaders: Vec<Option<NodeId>> = nodes
            .values()
            .map(|n| n.replica.status().leader_id)
            .collect();
        agreed = match leaders[0] {
            Some(l)
                if leaders.iter().all(|x| *x == Some(l))
                    && nodes.get(&l).is_some_and(|n| n.replica.status().is_leader) =>
            {
                Some(l)
            }
            _ => None,
        };
        agreed.is_some()
    })
    .await;
    agreed.expect("wait_for returned only once agreed")
}

/// Waits until every replica serves exactly `expected` (replication is asynchronous on followers).
async fn wait_all_hold(nodes: &BTreeMap<NodeId, Running>, expected: &BTreeMap<String, Vec<u8>>) {
    wait_for(
        "every replica to apply the acknowledged writes",
        Duration::from_secs(10),
        || {
            nodes
                .values()
                .all(|n| n.replica.scan("").into_iter().collect::<BTreeMap<_, _>>() == *expected)
        },
    )
    .await;
    for node in nodes.values() {
        assert_data(&node.replica, expected);
    }
}

fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: key.to_string(),
        value: value.as_bytes().to_vec(),
    }
}

fn assert_data(replica: &Replica, expected: &BTreeMap<String, Vec<u8>>) {
    let got: BTreeMap<String, Vec<u8>> = replica.scan("").into_iter().collect();
    if &got != expected {
        let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
        let m = replica.metrics().borrow().clone();
        panic!(
            "replica {} holds different data: missing {missing:?}, extra {extra:?}; status {:?}; metrics {m:?}",
            replica.id(),
            replica.status()
        );
    }
    for (key, value) in expected {
        assert_eq!(
            replica.get(key).as_ref(),
            Some(value),
            "replica {} key {key}",
            replica.id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_elect_replicate_fail_over_and_restart() {
    let (cluster, mut listeners) = Cluster::new().await;
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let listener = listeners.remove(&id);
        nodes.insert(id, cluster.start(id, listener).await);
    }

    // A leader is elected and everyone agrees.
    let leader = agreed_leader(&nodes, Duration::from_secs(10)).await;
    let follower = *nodes.keys().find(|id| **id != leader).expect("a follower");

    // A write on a follower is redirected to the leader at once.
    match nodes[&follower].replica.write(put("run/x", "1")).await {
        Err(ReplicaError::NotLeader {
            leader_id,
            leader_addr,
        }) => {
            assert_eq!(leader_id, Some(leader));
            assert_eq!(
                leader_addr.as_deref(),
                Some(cluster.peers[&leader].as_str())
            );
        }
        other => panic!("expected NotLeader, got {other:?}"),
    }

    // Writes on the leader are readable on all replicas.
    let mut expected = BTreeMap::new();
    for i in 0..20 {
        let key = format!("run/{i:03}");
        let value = format!("{{\"run\":{i}}}");
        let resp = nodes[&leader]
            .replica
            .write(put(&key, &value))
            .await
            .expect("write on leader");
        assert!(!resp.existed);
        expected.insert(key, value.into_bytes());
    }
    let resp = nodes[&leader]
        .replica
        .write(put("run/000", "again"))
        .await
        .expect("overwrite");
    assert!(resp.existed);
    expected.insert("run/000".to_string(), b"again".to_vec());
    let resp = nodes[&leader]
        .replica
        .write(Command::Delete {
            key: "run/019".to_string(),
        })
        .await
        .expect("delete");
    assert!(resp.existed);
    expected.remove("run/019");
    nodes[&leader]
        .replica
        .write(put("other/1", "o"))
        .await
        .expect("write");
    expected.insert("other/1".to_string(), b"o".to_vec());
    nodes[&leader]
        .replica
        .ensure_leader()
        .await
        .expect("leader has a quorum");
    assert!(matches!(
        nodes[&follower].replica.ensure_leader().await,
        Err(ReplicaError::NotLeader { .. })
    ));
    wait_all_hold(&nodes, &expected).await;
    for node in nodes.values() {
        assert_eq!(node.replica.scan("run/").len(), 19);
        assert_eq!(
            node.replica.scan("other/"),
            vec![("other/1".to_string(), b"o".to_vec())]
        );
    }

    // Lose the leader: a new one is elected within 5 s and accepts writes.
    let old_leader = leader;
    let stopped_at = Instant::now();
    nodes
        .remove(&old_leader)
        .expect("leader is running")
        .stop()
        .await;
    let leader = agreed_leader(&nodes, Duration::from_secs(5)).await;
    let failover = stopped_at.elapsed();
    assert_ne!(leader, old_leader);
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    eprintln!("failover: new leader {leader} agreed on {failover:?} after stopping {old_leader}");
    for i in 20..40 {
        let key = format!("run/{i:03}");
        nodes[&leader]
            .replica
            .write(put(&key, "after failover"))
            .await
            .expect("write on new leader");
        expected.insert(key, b"after failover".to_vec());
    }

    // Compact the new leader's log so the old leader can only catch up through a snapshot sent
    // over HTTP.
    let raft = nodes[&leader].replica.raft().clone();
    let applied = nodes[&leader]
        .replica
        .status()
        .last_applied
        .expect("applied");
    raft.trigger().snapshot().await.expect("trigger snapshot");
    wait_for(
        "a snapshot on the new leader",
        Duration::from_secs(5),
        || {
            raft.metrics()
                .borrow()
                .snapshot
                .is_some_and(|s| s.index >= applied)
        },
    )
    .await;
    raft.trigger().purge_log(applied).await.expect("purge");
    wait_for(
        "the new leader to purge its log",
        Duration::from_secs(5),
        || {
            raft.metrics()
                .borrow()
                .purged
                .is_some_and(|p| p.index >= applied)
        },
    )
    .await;

    // The old leader comes back from its directory and catches up.
    nodes.insert(old_leader, cluster.start(old_leader, None).await);
    assert_eq!(agreed_leader(&nodes, Duration::from_secs(10)).await, leader);
    wait_all_hold(&nodes, &expected).await;
    let old = nodes[&old_leader].replica.metrics();
    wait_for(
        "the old leader to report the installed snapshot",
        Duration::from_secs(5),
        || old.borrow().snapshot.is_some_and(|s| s.index >= applied),
    )
    .await;
    // The snapshot went over the wire and the new leader counted it.
    assert!(
        nodes[&leader].replica.replication_bytes().snapshot > 0,
        "{:?}",
        nodes[&leader].replica.replication_bytes()
    );

    // Full restart: everything is read back from the three directories.
    for (_, node) in std::mem::take(&mut nodes) {
        node.stop().await;
    }
    for id in 1..=3 {
        let node = cluster.start(id, None).await;
        // Durable state is served before any election or contact with the peers.
        assert_data(&node.replica, &expected);
        nodes.insert(id, node);
    }
    let leader = agreed_leader(&nodes, Duration::from_secs(10)).await;
    nodes[&leader]
        .replica
        .write(put("run/after-restart", "1"))
        .await
        .expect("write after restart");
    expected.insert("run/after-restart".to_string(), b"1".to_vec());
    wait_all_hold(&nodes, &expected).await;
    for (_, node) in nodes {
        node.stop().await;
    }
}

/// The leader counts the bytes of the append-entries it sends: writing 20 values of 8 KiB each
/// raises its count by at least those bytes (as base64, a third larger) once per follower, and by
/// no more than a few times that (heartbeats, JSON framing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_counts_the_bytes_it_replicates() {
    let (cluster, mut listeners) = Cluster::new().await;
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let listener = listeners.remove(&id);
        nodes.insert(id, cluster.start(id, listener).await);
    }
    let leader = agreed_leader(&nodes, Duration::from_secs(10)).await;
    let before = nodes[&leader].replica.replication_bytes();
    let mut expected = BTreeMap::new();
    const VALUES: usize = 20;
    const SIZE: usize = 8 * 1024;
    for i in 0..VALUES {
        let key = format!("run/{i:03}");
        let value = "x".repeat(SIZE);
        nodes[&leader]
            .replica
            .write(put(&key, &value))
            .await
            .expect("write on leader");
        expected.insert(key, value.into_bytes());
    }
    wait_all_hold(&nodes, &expected).await;
    let after = nodes[&leader].replica.replication_bytes();
    let sent = after.append_entries - before.append_entries;
    let written = (VALUES * SIZE) as u64;
    let followers = 2;
    eprintln!("{written} bytes written, {sent} bytes of append-entries sent");
    assert!(
        sent >= followers * written * 4 / 3,
        "{sent} bytes sent for {written} bytes written to {followers} followers"
    );
    assert!(
        sent < followers * written * 4,
        "{sent} bytes sent for {written} bytes written to {followers} followers"
    );
    assert_eq!(
        after.snapshot, before.snapshot,
        "no follower needed a snapshot"
    );
    for (_, node) in nodes {
        node.stop().await;
    }
}
