//! The dashboard's runs when no master is given: the summaries that `-o DIR` (`DIR/summary.json`)
//! and `-o FILE.json` wrote under one directory, read again at every request so a run that ends
//! while the page is open shows up. A run's id is its file's path under the directory.

use super::{RunEntry, RunPage};
use crate::report::RunSummary;
use std::path::{Path, PathBuf};

/// How deep under the root summaries are looked for (`results/2024-01-01/api/summary.json`).
const DEPTH: usize = 4;

/// Summaries larger than this are not ours (a summary holds histograms, not raw samples).
const MAX_BYTES: u64 = 64 << 20;

/// A results directory.
#[derive(Debug, Clone)]
pub struct Results {
    root: PathBuf,
}

impl Results {
    /// The summaries under `root`.
    pub fn new(root: PathBuf) -> Results {
        Results { root }
    }

    /// The directory read.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every `.json` file under the root that holds a run summary, with its modification time.
    fn files(&self) -> Vec<(String, PathBuf, u64)> {
        let mut out = Vec::new();
        walk(&self.root, DEPTH, &mut out);
        let mut found: Vec<(String, PathBuf, u64)> = out
            .into_iter()
            .filter_map(|p| {
                let meta = std::fs::metadata(&p).ok()?;
                if meta.len() > MAX_BYTES {
                    return None;
                }
                let ms = meta
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_millis() as u64;
                let id = p
                    .strip_prefix(&self.root)
                    .ok()?
                    .to_string_lossy()
                    .replace('\\', "/");
                Some((id, p, ms))
            })
            .collect();
        found.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        found
    }

    fn read(path: &Path) -> Option<RunSummary> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn entry(id: String, s: &RunSummary, ms: u64) -> RunEntry {
        let phase = match s.phase {
            Some(p) => p.to_string(),
            None if s.passed => "passed".into(),
            None => "failed".into(),
        };
        let created = ms.saturating_sub((s.duration_s * 1000.0) as u64);
        RunEntry {
            id,
            name: s.name.clone(),
            phase,
            is_final: true,
            created_ms: created,
            finished_ms: Some(ms),
            requests: s.overall.count,
            errors: s.overall.errors,
        }
    }

    /// The runs, newest first.
    pub fn list(&self) -> Vec<RunEntry> {
        self.files()
            .into_iter()
            .filter_map(|(id, p, ms)| Self::read(&p).map(|s| Self::entry(id, &s, ms)))
            .collect()
    }

    /// One run by its id (a path under the root, never outside it).
    pub fn page(&self, id: &str) -> Option<RunPage> {
        let (id, path, ms) = self.files().into_iter().find(|(i, _, _)| i == id)?;
        let summary = Self::read(&path)?;
        Some(RunPage {
            entry: Self::entry(id, &summary, ms),
            summary,
            record: None,
            streamed: false,
        })
    }
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        let path = e.path();
        if kind.is_dir() && depth > 0 {
            walk(&path, depth - 1, out);
        } else if kind.is_file() && path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
}
