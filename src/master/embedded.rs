//! The single-node master that `perfornium distributed` runs inside its own process, so a run
//! without a cluster goes through the same replicated store and the same driver as one submitted
//! to the HA master: one controller implementation, not two. Its raft group has one member and
//! never opens a socket; the sled directory is `--data` when given (the run is kept there) or a
//! temporary directory removed at the end.

use super::store::RaftStore;
use super::MasterError;
use perfornium_raft::{Replica, ReplicaConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the lone replica may take to elect itself.
const ELECTION_WAIT: Duration = Duration::from_secs(10);

/// A running one-replica master.
pub struct Embedded {
    pub store: RaftStore,
    /// Keeps the temporary directory alive until [`Embedded::close`].
    _temp: Option<tempfile::TempDir>,
}

impl Embedded {
    /// Opens the replica in `data` (or a fresh temporary directory) and waits until it leads.
    pub async fn open(data: Option<&Path>) -> Result<Embedded, MasterError> {
        let (dir, temp): (PathBuf, _) = match data {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("perfornium-master-")
                    .tempdir()
                    .map_err(MasterError::TempDir)?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let peers = [(1, "127.0.0.1:0".to_string())].into_iter().collect();
        let mut cfg = ReplicaConfig::new(1, "127.0.0.1:0", peers, &dir);
        cfg.heartbeat_ms = 50;
        cfg.election_min_ms = 150;
        cfg.election_max_ms = 300;
        let replica = Replica::open(cfg)
            .await
            .map_err(|source| MasterError::Open {
                id: 1,
                dir: dir.clone(),
                source,
            })?;
        let mut metrics = replica.metrics();
        let leads = tokio::time::timeout(
            ELECTION_WAIT,
            // Leading, and its own term's first entry applied: the store is settled from here on.
            metrics.wait_for(|m| {
                m.current_leader == Some(1)
                    && m.last_applied.map(|l| l.leader_id.term) == Some(m.current_term)
            }),
        )
        .await;
        if !matches!(leads, Ok(Ok(_))) {
            let _ = replica.shutdown().await;
            return Err(MasterError::NoLeader(dir));
        }
        Ok(Embedded {
            store: RaftStore::new(replica),
            _temp: temp,
        })
    }

    /// Stops raft and releases (or removes) the directory.
    pub async fn close(self) -> Result<(), MasterError> {
        self.store
            .replica
            .shutdown()
            .await
            .map_err(MasterError::Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::store::RunStore;

    #[tokio::test]
    async fn keeps_runs_in_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let rec = sample();
        let m = Embedded::open(Some(dir.path())).await.unwrap();
        m.store.save(&rec).await.unwrap();
        m.close().await.unwrap();
        let m = Embedded::open(Some(dir.path())).await.unwrap();
        assert_eq!(m.store.run(&rec.id).map(|r| r.id), Some(rec.id.clone()));
        m.close().await.unwrap();
    }

    fn sample() -> crate::control::run::RunRecord {
        let test = crate::config::from_str("name: t\nload:\n  pattern: basic\n  virtual_users: 2\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        url: http://127.0.0.1:9/\n").unwrap();
        let workers = crate::control::workers::parse_list("127.0.0.1:1").unwrap();
        crate::control::submit::new_record(
            "r1".into(),
            test,
            &workers,
            Some(crate::control::plan::Strategy::Even),
            false,
        )
        .unwrap()
    }
}
