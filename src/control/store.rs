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
}

/// Records kept in this process.
#[derive(Clone, Default)]
pub struct MemoryStore {
    runs: Arc<Mutex<BTreeMap<String, RunRecord>>>,
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
}
