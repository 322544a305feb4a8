//! Periodic backups of the replicated state (`perfornium master --backup-dir DIR`, every
//! `fault_tolerance.master_failure.state_persistence.backup_interval` of its `--config`, default
//! 60 s). Each replica writes every key its state machine has applied (runs, the worker pool, the
//! shared counters' marks) as one JSON file, so an operator can copy the cluster's state off the
//! machines it runs on. A file is written under a temporary name and renamed: it is whole or absent.
//! The newest [`KEEP`] files are kept.

use perfornium_raft::Replica;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How many backup files a replica keeps in its directory.
pub const KEEP: usize = 3;

/// One backup file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Backup {
    /// The replica that wrote it.
    pub replica: u64,
    /// When (the replica's clock, Unix ms).
    pub taken_ms: u64,
    /// Every key of the applied state, with its value (JSON; text when a value is not JSON).
    pub entries: BTreeMap<String, serde_json::Value>,
}

/// Writes a backup of `replica` into `dir` every `every` until `stop`.
pub async fn run(
    replica: Replica,
    id: u64,
    dir: PathBuf,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        match write(&replica, id, &dir) {
            Ok(path) => info!(file = %path.display(), "state backed up"),
            Err(e) => {
                warn!(dir = %dir.display(), error = %e, "state backup failed; retrying at the next interval")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Writes one backup file now and prunes the oldest beyond [`KEEP`]; its path.
pub fn write(replica: &Replica, id: u64, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let taken_ms = crate::time::now_ms();
    let entries = replica
        .scan("")
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_slice(&v)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&v).into()));
            (k, value)
        })
        .collect();
    let backup = Backup {
        replica: id,
        taken_ms,
        entries,
    };
    let name = format!("perfornium-state-{id}-{taken_ms:016}.json");
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(
        &tmp,
        serde_json::to_vec(&backup).map_err(std::io::Error::other)?,
    )?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("perfornium-state-{id}-")) && n.ends_with(".json")
            })
        })
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(KEEP);
    for old in &files[..excess] {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}
