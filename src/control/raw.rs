//! Collecting the workers' raw data spools (`results.collection.format.raw_data`) when a run
//! ends: for each worker, the controller pulls its chunks in order (`GET /raw?run_id&after=N`,
//! see [`crate::worker::spool`]), writes them one after another to
//! `<prefix>/raw/<worker>.ndjson.zst` in the run's storage (zstd frames concatenate into one
//! file), and only once that object is complete acknowledges the last chunk (`POST /raw/ack`).
//!
//! Exactly once across a leader change: nothing is acknowledged before the whole file is stored,
//! and the file is written whole under a fixed key. A leader that dies mid-way leaves the chunks
//! on the worker; the next one pulls them all again from chunk 1 and writes the same object,
//! replacing any partial one, so no chunk is lost or stored twice. Past the acknowledgement a
//! worker with `worker_cleanup` may delete its spool; a later leader finding it gone (410) keeps
//! the object already stored.

use super::client::{CallError, RawNext, WorkerClient};
use crate::api::worker::RawAck;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use std::time::Duration;

/// The most a worker may take to finish writing its spool after its run ended.
const WRITING_WAIT: Duration = Duration::from_secs(30);
/// Above this much, the file goes up in parts instead of one put.
const ONE_PUT_BYTES: usize = 8 << 20;

/// Why a worker's raw data could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the spool was still being written after {0:?}")]
    StillWriting(Duration),
    #[error("chunk {got} came where {want} was expected")]
    OutOfOrder { want: u64, got: u64 },
    #[error("storing {key}: {source}")]
    Put {
        key: String,
        source: object_store::Error,
    },
}

/// What was stored of one worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Collected {
    /// `samples` in `chunks` chunks, `bytes` compressed, under `key`.
    Stored {
        key: String,
        samples: u64,
        chunks: u64,
        bytes: u64,
    },
    /// The worker had deleted its spool after an earlier acknowledgement (a previous leader
    /// stored it).
    AlreadyCollected,
}

/// The file name a worker's raw data is stored under (`host_port.ndjson.zst`).
pub fn file_name(worker: &str) -> String {
    let safe: String = worker
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.ndjson.zst")
}

/// Pulls `worker`'s spool of `run_id`, stores it under `key` in `store`, then acknowledges it.
pub async fn collect(
    worker: &WorkerClient,
    run_id: &str,
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Collected, RawError> {
    let mut after = 0u64;
    let mut bytes = 0u64;
    let mut buffered: Vec<u8> = Vec::new();
    let mut parts: Option<WriteMultipart> = None;
    let began = std::time::Instant::now();
    let put_err = |source| RawError::Put {
        key: key.to_string(),
        source,
    };
    let done = loop {
        match worker.raw_chunk(run_id, after).await {
            Ok(RawNext::Chunk { seq, frame }) => {
                if seq != after + 1 {
                    return Err(RawError::OutOfOrder {
                        want: after + 1,
                        got: seq,
                    });
                }
                after = seq;
                bytes += frame.len() as u64;
                match parts.as_mut() {
                    Some(p) => p.write(&frame),
                    None => {
                        buffered.extend_from_slice(&frame);
                        if buffered.len() > ONE_PUT_BYTES {
                            let upload = store
                                .put_multipart(&Key::from(key))
                                .await
                                .map_err(put_err)?;
                            let mut p = WriteMultipart::new(upload);
                            p.write(&std::mem::take(&mut buffered));
                            parts = Some(p);
                        }
                    }
                }
            }
            Ok(RawNext::NotYet) => {
                if began.elapsed() > WRITING_WAIT {
                    if let Some(p) = parts {
                        let _ = p.abort().await;
                    }
                    return Err(RawError::StillWriting(WRITING_WAIT));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(RawNext::Done(d)) => break d,
            Err(e) if e.status() == Some(410) => {
                if let Some(p) = parts {
                    let _ = p.abort().await;
                }
                return Ok(Collected::AlreadyCollected);
            }
            Err(e) => {
                if let Some(p) = parts {
                    let _ = p.abort().await;
                }
                return Err(e.into());
            }
        }
    };
    match parts {
        Some(p) => {
            p.finish().await.map_err(put_err)?;
        }
        None => {
            store
                .put(&Key::from(key), PutPayload::from(buffered))
                .await
                .map_err(put_err)?;
        }
    }
    worker
        .raw_ack(&RawAck {
            run_id: run_id.to_string(),
            seq: done.last,
        })
        .await?;
    Ok(Collected::Stored {
        key: key.to_string(),
        samples: done.samples,
        chunks: done.last,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_are_safe_keys() {
        assert_eq!(
            super::file_name("127.0.0.1:8080"),
            "127.0.0.1_8080.ndjson.zst"
        );
        assert_eq!(super::file_name("../x"), ".._x.ndjson.zst");
    }
}
