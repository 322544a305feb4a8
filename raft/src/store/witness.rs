//! A durability witness kept beside the sled files.
//!
//! sled recovers a damaged or truncated log by stopping, silently, at the last intact record. A
//! replica could then come back holding less than it acknowledged (a forgotten vote or lost log
//! entries, the one thing raft cannot survive) or, from an emptied file, look brand new and form a
//! cluster of its own. So every flush raises an epoch stored inside sled and, once sled has made
//! it durable, records it in a small file of its own; at open, sled's epoch must be at least the
//! recorded one, or the directory is refused.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The witness file's name inside the data directory.
pub(crate) const FILE: &str = "perfornium.epoch";
/// The key of sled's own epoch in the `raft` tree.
pub(crate) const EPOCH_KEY: &[u8] = b"epoch";

/// The witness file, written in place (16 bytes: the epoch and its complement, so a damaged file
/// is told from a valid one; one sector, so a write is not torn).
pub(crate) struct Witness {
    file: Mutex<(File, u64)>,
}

impl Witness {
    /// Reads the epoch recorded in `dir`: `None` when there is no witness yet.
    pub(crate) fn read(dir: &Path) -> Result<Option<u64>, String> {
        let path = dir.join(FILE);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => f
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        decode(&bytes)
            .map(Some)
            .ok_or_else(|| format!("{} is damaged", path.display()))
    }

    /// Opens the witness in `dir`, creating it (atomically, by rename) with `epoch` if missing.
    pub(crate) fn open(dir: &Path, epoch: u64) -> io::Result<Witness> {
        let path = dir.join(FILE);
        if !path.exists() {
            let tmp: PathBuf = dir.join(format!("{FILE}.tmp"));
            let mut f = File::create(&tmp)?;
            f.write_all(&encode(epoch))?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            File::open(dir)?.sync_all()?;
        }
        let file = OpenOptions::new().write(true).open(&path)?;
        Ok(Witness {
            file: Mutex::new((file, epoch)),
        })
    }

    /// Records `epoch` (already durable in sled) unless a later one is recorded.
    pub(crate) fn record(&self, epoch: u64) -> io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let (file, recorded) = &mut *guard;
        if epoch <= *recorded {
            return Ok(());
        }
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&encode(epoch))?;
        file.sync_data()?;
        *recorded = epoch;
        Ok(())
    }
}

fn encode(epoch: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&epoch.to_be_bytes());
    out[8..].copy_from_slice(&(!epoch).to_be_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<u64> {
    let epoch = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let check = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
    (bytes.len() == 16 && check == !epoch).then_some(epoch)
}

/// sled's epoch as stored in the `raft` tree (0 before the first flush).
pub(crate) fn stored_epoch(raft: &sled::Tree) -> Result<u64, String> {
    match raft.get(EPOCH_KEY).map_err(|e| e.to_string())? {
        None => Ok(0),
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| "the stored epoch is damaged".to_string()),
    }
}

/// Checks sled's `epoch` against the witness in `dir`.
pub(crate) fn check(dir: &Path, epoch: u64) -> Result<(), String> {
    match Witness::read(dir)? {
        None if epoch == 0 => Ok(()),
        None => Err(format!(
            "its durability witness {FILE} is missing although the store has acknowledged writes \
             (epoch {epoch}); refusing to serve state that cannot be verified"
        )),
        Some(recorded) if epoch < recorded => Err(format!(
            "it holds less than it acknowledged (epoch {epoch}, {FILE} records {recorded}): the \
             files were truncated or damaged and sled recovered an older state; refusing to serve it \
             (restore the directory from a backup)"
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_forward_and_detects_damage() {
        let dir = tempfile::TempDir::new().unwrap();
        assert_eq!(Witness::read(dir.path()).unwrap(), None);
        let w = Witness::open(dir.path(), 0).unwrap();
        w.record(5).unwrap();
        w.record(3).unwrap();
        assert_eq!(Witness::read(dir.path()).unwrap(), Some(5));
        assert!(check(dir.path(), 5).is_ok());
        assert!(check(dir.path(), 4).unwrap_err().contains("holds less"));
        std::fs::write(dir.path().join(FILE), b"garbage").unwrap();
        assert!(Witness::read(dir.path()).unwrap_err().contains("damaged"));
        std::fs::remove_file(dir.path().join(FILE)).unwrap();
        assert!(check(dir.path(), 0).is_ok());
        assert!(check(dir.path(), 2).unwrap_err().contains("missing"));
    }
}
