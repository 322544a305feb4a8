//! Where run records are kept. The driver saves the record at every transition through this trait;
//! `distributed` uses [`MemoryStore`], and the HA master puts the records in its replicated state.

use super::run::RunRecord;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Why a record could not be saved (for the replicated store: this node is no longer leader).
#[derive(Debug, Error)]
#[error("cannot save run state: {0}")]
pub struct StoreError(pub String);

/// Saves run records.
pub trait RunStore: Clone + Send + Sync + 'static {
    /// Persists `record`, replacing the previous version with the same id.
    fn save(&self, record: &RunRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Persists run `run_id`'s shared counters' high-water marks (`state_backend: raft`): the
    /// highest value granted of each. Done before a grant is sent, so no value is granted twice.
    fn save_leases(
        &self,
        run_id: &str,
        marks: &BTreeMap<String, u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The marks last saved for run `run_id` (empty when none).
    fn leases(&self, run_id: &str) -> BTreeMap<String, u64>;
}

/// Records kept in this process.
#[derive(Clone, Default)]
pub struct MemoryStore {
    runs: Arc<Mutex<BTreeMap<String, RunRecord>>>,
    leases: Arc<Mutex<BTreeMap<String, BTreeMap<String, u64>>>>,
}

impl MemoryStore {
    /// The latest saved version of run `id`.
    pub fn get(&self, id: &str) -> Option<RunRecord> {
        self.runs.lock().expect("store lock").get(id).cloned()
    }
}

impl RunStore for MemoryStore {
    async fn save(&self, record: &RunRecord) -> Result<(), StoreError> {
        self.runs
            .lock()
            .expect("store lock")
            .insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn save_leases(
        &self,
        run_id: &str,
        marks: &BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        self.leases
            .lock()
            .expect("store lock")
            .insert(run_id.to_string(), marks.clone());
        Ok(())
    }

    fn leases(&self, run_id: &str) -> BTreeMap<String, u64> {
        self.leases
            .lock()
            .expect("store lock")
            .get(run_id)
            .cloned()
            .unwrap_or_default()
    }
}
