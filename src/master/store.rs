//! Run records in the replicated state: the [`RunStore`] the leader's drivers save through. A save
//! is a raft write, so it succeeds only on the leader with a quorum; a deposed leader's next save
//! fails and its driver stops at once.

use crate::control::run::RunRecord;
use crate::control::store::{RunStore, StoreError};
use perfornium_raft::{Command, Replica};

/// Key prefix of run records.
pub const RUN_PREFIX: &str = "run/";

/// The key of run `id`.
pub fn run_key(id: &str) -> String {
    format!("{RUN_PREFIX}{id}")
}

/// Key prefix of the shared counters' high-water marks (`state_backend: raft`), by run.
pub const LEASE_PREFIX: &str = "leases/";

/// Run records kept in the raft state machine.
#[derive(Clone)]
pub struct RaftStore {
    pub replica: Replica,
}

impl RaftStore {
    /// Every run record this replica has applied, oldest first.
    pub fn runs(&self) -> Vec<RunRecord> {
        let mut runs: Vec<RunRecord> = self
            .replica
            .scan(RUN_PREFIX)
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect();
        runs.sort_by_key(|r| r.created_ms);
        runs
    }

    /// One run record as this replica has applied it.
    pub fn run(&self, id: &str) -> Option<RunRecord> {
        self.replica
            .get(&run_key(id))
            .and_then(|v| serde_json::from_slice(&v).ok())
    }
}

impl RunStore for RaftStore {
    async fn save(&self, record: &RunRecord) -> Result<(), StoreError> {
        let value = serde_json::to_vec(record).map_err(|e| StoreError(e.to_string()))?;
        self.replica
            .write(Command::Put {
                key: run_key(&record.id),
                value,
            })
            .await
            .map(drop)
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn save_leases(
        &self,
        run_id: &str,
        marks: &std::collections::BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_vec(marks).map_err(|e| StoreError(e.to_string()))?;
        self.replica
            .write(Command::Put {
                key: format!("{LEASE_PREFIX}{run_id}"),
                value,
            })
            .await
            .map(drop)
            .map_err(|e| StoreError(e.to_string()))
    }

    fn leases(&self, run_id: &str) -> std::collections::BTreeMap<String, u64> {
        self.replica
            .get(&format!("{LEASE_PREFIX}{run_id}"))
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default()
    }
}
