//! Our raw data files (`results.collection.format.raw_data`: `raw/<worker>.ndjson.zst` of a
//! distributed run, `raw.ndjson.zst` of a local one) read back into a [`RunSummary`] for
//! `perfornium report`: every figure recomputed from the per-request records, latencies into HDR
//! histograms as for a run, through the same code that reads the TypeScript tool's per-request
//! results ([`super::ts`]). Several files (one per worker) are read as one run.

use super::RunSummary;
use crate::metrics::raw::{self, RawReadError};

/// Why raw data could not be turned into a summary.
#[derive(Debug, thiserror::Error)]
pub enum RawReportError {
    #[error("{file}: {source}")]
    Read { file: String, source: RawReadError },
    #[error("no request records in {0}")]
    Empty(String),
    #[error(transparent)]
    Build(#[from] super::ts::TsError),
}

/// The summary of the requests in `files` (name, bytes of a `.ndjson.zst` or `.ndjson` file).
pub fn from_files(name: &str, files: &[(String, Vec<u8>)]) -> Result<RunSummary, RawReportError> {
    let mut requests = Vec::new();
    let mut vus: std::collections::BTreeMap<(String, u64), u64> = Default::default();
    for (file, bytes) in files {
        raw::read(bytes, |r| {
            // VU numbers are per worker: one id per (worker, VU) for the active-VU counts.
            let next = vus.len() as u64;
            let vu = *vus
                .entry((r.worker.clone(), r.vu.unwrap_or(u64::MAX)))
                .or_insert(next);
            requests.push((
                r.ts_ms,
                vu,
                r.step,
                r.latency_us as f64 / 1000.0,
                r.status,
                r.error,
                r.bytes,
            ));
        })
        .map_err(|source| RawReportError::Read {
            file: file.clone(),
            source,
        })?;
    }
    if requests.is_empty() {
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        return Err(RawReportError::Empty(names.join(", ")));
    }
    Ok(super::ts::from_requests(name, requests)?)
}
