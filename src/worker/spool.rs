//! A worker's raw data spool (`results.collection.format.raw_data`): one directory per run under
//! the worker's `--spool-dir`, holding the run's samples as numbered chunk files
//! (`00000001.ndjson.zst`, each a whole zstd frame of NDJSON, written by
//! [`crate::metrics::raw::spawn_writer`] off the async threads), `done.json` once the writer
//! finished, and `acked` (the highest chunk the controller stored).
//!
//! The controller pulls, never the worker pushing: `GET /raw?run_id=R&after=N` answers chunk N+1
//! (202 while the run still writes and N+1 is not on disk, [`RawDone`] after the last chunk), and
//! after storing them `POST /raw/ack` acknowledges them. Chunks are kept until then and read again
//! by whoever asks, so a controller (or a new leader) that fails mid-way pulls the same chunks
//! again and stores the same file: nothing is lost or doubled. With
//! `retention.worker_cleanup: true`, acknowledging the last chunk schedules the directory's
//! deletion `cleanup_delay` later (never before the ack); otherwise it is kept, and `GET /raw`
//! lists every run kept. Files are written to a temporary name and renamed, so a chunk on disk
//! is whole.

use crate::api::worker::{self as api, RawDone};
use crate::metrics::raw::{self, ChunkTarget, RawSink};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DONE: &str = "done.json";
const ACKED: &str = "acked";
const CHUNK_EXT: &str = ".ndjson.zst";

/// Why a spool call was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("run id `{0}` cannot name a spool directory")]
    BadId(String),
    #[error("no raw data spool for run `{0}` on this worker")]
    Unknown(String),
    #[error("the raw data spool of run `{0}` was deleted (retention.worker_cleanup) after its last chunk was acknowledged")]
    Deleted(String),
    #[error("spool of run `{run}`: {source}")]
    Io { run: String, source: io::Error },
}

/// The worker's spools; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    /// Per run: `Some(delay)` deletes it that long after its last chunk is acknowledged.
    cleanup: Arc<Mutex<BTreeMap<String, Option<Duration>>>>,
    /// Runs deleted by cleanup.
    deleted: Arc<Mutex<BTreeSet<String>>>,
    /// Runs whose deletion is scheduled, with when (Unix ms).
    scheduled: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// What `GET /raw?run_id&after` finds.
pub enum Next {
    Chunk { seq: u64, frame: Vec<u8> },
    NotYet,
    Done(RawDone),
}

impl Spool {
    /// Spools under `dir` (created when a run first needs it).
    pub fn new(dir: PathBuf) -> Self {
        Spool {
            dir,
            cleanup: Default::default(),
            deleted: Default::default(),
            scheduled: Default::default(),
        }
    }

    /// The default directory: one per worker process under the system's temporary directory.
    pub fn default_dir() -> PathBuf {
        std::env::temp_dir().join(format!("perfornium-spool-{}", std::process::id()))
    }

    fn run_dir(&self, run_id: &str) -> Result<PathBuf, SpoolError> {
        let ok = !run_id.is_empty()
            && !run_id.starts_with('.')
            && run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(SpoolError::BadId(run_id.to_string()));
        }
        Ok(self.dir.join(run_id))
    }

    /// Starts spooling run `run_id` (a fresh directory; an older one of the same id is replaced):
    /// the sink the run's engines record into. `cleanup`: see [`Spool`].
    pub fn start(
        &self,
        run_id: &str,
        steps: Vec<String>,
        worker: String,
        cleanup: Option<Duration>,
    ) -> Result<RawSink, SpoolError> {
        let dir = self.run_dir(run_id)?;
        let io_err = |source| SpoolError::Io {
            run: run_id.to_string(),
            source,
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err)?;
        }
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        self.cleanup
            .lock()
            .expect("spool lock")
            .insert(run_id.to_string(), cleanup);
        self.deleted.lock().expect("spool lock").remove(run_id);
        let (sink, _writer) = raw::spawn_writer(steps, worker, DirTarget { dir });
        Ok(sink)
    }

    /// Chunk `after + 1` of `run_id`, or why there is none.
    pub fn next(&self, run_id: &str, after: u64) -> Result<Next, SpoolError> {
        let dir = self.existing(run_id)?;
        let io_err = |source| SpoolError::Io {
            run: run_id.to_string(),
            source,
        };
        let seq = after + 1;
        match std::fs::read(dir.join(chunk_name(seq))) {
            Ok(frame) => return Ok(Next::Chunk { seq, frame }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        match read_done(&dir).map_err(io_err)? {
            Some((last, samples)) if after >= last => Ok(Next::Done(RawDone {
                run_id: run_id.to_string(),
                last,
                samples,
            })),
            // A chunk between `after` and `last` is missing: deleted by hand, or acked and cleaned.
            Some(_) => Err(io_err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("chunk {seq} is missing"),
            ))),
            None => Ok(Next::NotYet),
        }
    }

    fn existing(&self, run_id: &str) -> Result<PathBuf, SpoolError> {
        let dir = self.run_dir(run_id)?;
        if !dir.is_dir() {
            if self.deleted.lock().expect("spool lock").contains(run_id) {
                return Err(SpoolError::Deleted(run_id.to_string()));
            }
            return Err(SpoolError::Unknown(run_id.to_string()));
        }
        Ok(dir)
    }

    /// The controller stored chunks up to `seq`; with the last one acknowledged, cleanup (when
    /// the run asked for it) is scheduled.
    pub fn ack(&self, run_id: &str, seq: u64) -> Result<api::RawSpool, SpoolError> {
        let dir = self.existing(run_id)?;
        let io_err = |source| SpoolError::Io {
            run: run_id.to_string(),
            source,
        };
        let acked = read_acked(&dir).max(seq);
        write_atomic(&dir.join(ACKED), acked.to_string().as_bytes()).map_err(io_err)?;
        let done = read_done(&dir).map_err(io_err)?;
        let delay = self
            .cleanup
            .lock()
            .expect("spool lock")
            .get(run_id)
            .copied()
            .flatten();
        if let (Some((last, _)), Some(delay)) = (done, delay) {
            let mut scheduled = self.scheduled.lock().expect("spool lock");
            if acked >= last && !scheduled.contains_key(run_id) {
                let at = crate::time::now_ms() + delay.as_millis() as u64;
                scheduled.insert(run_id.to_string(), at);
                tracing::info!(
                    run_id,
                    delay_s = delay.as_secs_f64(),
                    "raw data spool acknowledged: deleted after the cleanup delay"
                );
                let me = self.clone();
                let id = run_id.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    me.delete(&id);
                });
            }
        }
        self.describe(run_id, &dir).map_err(io_err)
    }

    fn delete(&self, run_id: &str) {
        let Ok(dir) = self.run_dir(run_id) else {
            return;
        };
        self.scheduled.lock().expect("spool lock").remove(run_id);
        self.deleted
            .lock()
            .expect("spool lock")
            .insert(run_id.to_string());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::info!(run_id, "raw data spool deleted (retention.worker_cleanup)"),
            Err(e) => tracing::warn!(run_id, "raw data spool could not be deleted: {e}"),
        }
    }

    fn describe(&self, run_id: &str, dir: &Path) -> io::Result<api::RawSpool> {
        let (mut chunks, mut bytes) = (0, 0);
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().ends_with(CHUNK_EXT) {
                chunks += 1;
                bytes += e.metadata()?.len();
            }
        }
        let done = read_done(dir)?;
        Ok(api::RawSpool {
            run_id: run_id.to_string(),
            chunks,
            bytes,
            acked: read_acked(dir),
            last: done.map(|d| d.0),
            samples: done.map(|d| d.1),
            cleanup_at_ms: self
                .scheduled
                .lock()
                .expect("spool lock")
                .get(run_id)
                .copied(),
        })
    }

    /// Every spool kept in the directory, by run id.
    pub fn list(&self) -> Result<api::RawSpools, SpoolError> {
        let mut runs = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(api::RawSpools { runs });
            }
            Err(source) => {
                return Err(SpoolError::Io {
                    run: "*".into(),
                    source,
                })
            }
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && self.run_dir(&id).is_ok() {
                if let Ok(d) = self.describe(&id, &e.path()) {
                    runs.push(d);
                }
            }
        }
        runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        Ok(api::RawSpools { runs })
    }

    /// `GET /raw` and `POST /raw/ack`, behind the worker's guard.
    pub fn router(self) -> Router {
        Router::new()
            .route("/raw", get(get_raw))
            .route("/raw/ack", post(ack))
            .with_state(self)
    }
}

fn chunk_name(seq: u64) -> String {
    format!("{seq:08}{CHUNK_EXT}")
}

fn read_done(dir: &Path) -> io::Result<Option<(u64, u64)>> {
    match std::fs::read(dir.join(DONE)) {
        Ok(b) => {
            let d: RawDone = serde_json::from_slice(&b).map_err(io::Error::other)?;
            Ok(Some((d.last, d.samples)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_acked(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join(ACKED))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes `body` to a temporary name beside `path`, then renames it over `path`.
fn write_atomic(path: &Path, body: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

/// Chunks as files of one run's directory.
struct DirTarget {
    dir: PathBuf,
}

impl ChunkTarget for DirTarget {
    fn chunk(&mut self, seq: u64, frame: &[u8]) -> io::Result<()> {
        write_atomic(&self.dir.join(chunk_name(seq)), frame)
    }

    fn done(&mut self, last: u64, samples: u64) -> io::Result<()> {
        let run_id = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let body = serde_json::to_vec(&RawDone {
            run_id,
            last,
            samples,
        })
        .map_err(io::Error::other)?;
        write_atomic(&self.dir.join(DONE), &body)
    }
}

#[derive(Deserialize)]
struct RawQuery {
    run_id: Option<String>,
    #[serde(default)]
    after: u64,
}

fn refuse(e: SpoolError) -> Response {
    let code = match e {
        SpoolError::BadId(_) => StatusCode::BAD_REQUEST,
        SpoolError::Unknown(_) => StatusCode::NOT_FOUND,
        SpoolError::Deleted(_) => StatusCode::GONE,
        SpoolError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    crate::api::ApiError::reply(code, e.to_string())
}

async fn get_raw(State(s): State<Spool>, Query(q): Query<RawQuery>) -> Response {
    let Some(run_id) = q.run_id else {
        return match s.list() {
            Ok(l) => Json(l).into_response(),
            Err(e) => refuse(e),
        };
    };
    match s.next(&run_id, q.after) {
        Ok(Next::Chunk { seq, frame }) => (
            [
                (header::CONTENT_TYPE, "application/zstd".to_string()),
                (
                    header::HeaderName::from_static(api::RAW_SEQ_HEADER),
                    seq.to_string(),
                ),
            ],
            frame,
        )
            .into_response(),
        Ok(Next::NotYet) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"run_id": run_id, "status": "writing"})),
        )
            .into_response(),
        Ok(Next::Done(d)) => Json(d).into_response(),
        Err(e) => refuse(e),
    }
}

async fn ack(State(s): State<Spool>, Json(req): Json<api::RawAck>) -> Response {
    match s.ack(&req.run_id, req.seq) {
        Ok(d) => Json(d).into_response(),
        Err(e) => refuse(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Sample;

    fn spool_of(spool: &Spool, run: &str, n: usize, cleanup: Option<Duration>) {
        let sink = spool
            .start(run, vec!["a".into()], "w".into(), cleanup)
            .unwrap();
        let mut buf = raw::RawBuffer::new(sink);
        for i in 0..n {
            buf.push(
                Some(i as u64),
                &Sample {
                    step: 0,
                    latency_us: 1_000,
                    status: Some(200),
                    error: None,
                    checks_passed: 0,
                    failed_checks: vec![],
                    bytes: 1,
                },
            );
        }
        // Dropping the last sink ends the writer, which writes `done.json`.
    }

    fn drain(spool: &Spool, run: &str) -> (u64, Vec<u8>) {
        let (mut after, mut file) = (0, Vec::new());
        loop {
            match spool.next(run, after).unwrap() {
                Next::Chunk { seq, frame } => {
                    assert_eq!(seq, after + 1);
                    after = seq;
                    file.extend(frame);
                }
                Next::NotYet => std::thread::sleep(Duration::from_millis(10)),
                Next::Done(d) => {
                    assert_eq!(d.last, after);
                    return (d.samples, file);
                }
            }
        }
    }

    #[tokio::test]
    async fn chunks_are_served_until_acknowledged_then_kept_or_deleted_after_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().to_path_buf());
        spool_of(&spool, "kept", 500, None);
        spool_of(&spool, "gone", 500, Some(Duration::from_millis(50)));
        for run in ["kept", "gone"] {
            let (samples, file) = drain(&spool, run);
            assert_eq!(samples, 500);
            assert_eq!(raw::read(&file, |_| {}).unwrap(), 500);
            // Pulled again (a new leader): the same chunks.
            assert_eq!(drain(&spool, run).1, file);
        }
        let kept = spool.ack("kept", 1).unwrap();
        assert_eq!((kept.acked, kept.cleanup_at_ms), (1, None));
        let gone = spool.ack("gone", 1).unwrap();
        assert!(gone.cleanup_at_ms.is_some());
        assert!(dir.path().join("gone").is_dir(), "not before the delay");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!dir.path().join("gone").exists());
        assert!(matches!(spool.next("gone", 0), Err(SpoolError::Deleted(_))));
        let listed: Vec<String> = spool
            .list()
            .unwrap()
            .runs
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(listed, ["kept"]);
        assert!(matches!(spool.next("../x", 0), Err(SpoolError::BadId(_))));
        assert!(matches!(spool.next("nope", 0), Err(SpoolError::Unknown(_))));
    }
}
