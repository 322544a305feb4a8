//! Run records in the replicated state: the [`RunStore`] the leader's drivers save through. A save
//! is a raft write, so it succeeds only on the leader with a quorum; a deposed leader's next save
//! fails and its driver stops at once.
//!
//! A record's lists that grow with the run's length (the timeline, each worker's points, the
//! events) are saved in parts: every full chunk of [`CHUNK`] entries (but the last few, which may
//! still change in place) goes under `runpart/<id>/<list>/<n>` once, and the record under
//! `run/<id>` (the head) holds only the rest and how many entries of each list are in parts. A save
//! writes the head and the chunks that are new or changed since this store last wrote them, all in
//! one raft entry ([`Command::Batch`]), so a reader never sees a head without its parts. What a
//! save costs thus stays flat over a long run instead of growing with every second it has run.
//!
//! The workers (each with its merged histograms, about 5 KB) grow with the run's size instead: once
//! they are more than [`WORKERS_INLINE_BYTES`] in all, they go under
//! `runpart/<id>/workers/<generation>/<n>` in chunks of at most about that size, each chunk its own
//! raft entry, written before the head that names their generation; the head's entry deletes the
//! previous generation. A reader assembles a head with its own generation's chunks, so it never
//! sees a mix; chunks of a generation whose head never committed (a leader that died between) are
//! deleted by the next leader's first save. No raft entry then grows with the number of workers:
//! openraft gives an append-entries call one heartbeat interval (100 ms), which a single entry of
//! a thousand workers' state (5 MB) could not always meet on a busy host.

use crate::control::run::{RunRecord, WorkerRun};
use crate::control::store::{RunStore, StoreError};
use crate::metrics::collector::Point;
use crate::report::WorkerPoint;
use perfornium_raft::{Command, Replica};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Key prefix of run records.
pub const RUN_PREFIX: &str = "run/";

/// The key of run `id`.
pub fn run_key(id: &str) -> String {
    format!("{RUN_PREFIX}{id}")
}

/// Key prefix of the saved parts of run records' growing lists.
pub const PART_PREFIX: &str = "runpart/";

/// Entries per saved part.
pub const CHUNK: usize = 64;

/// The last entries of a list stay in the head: a worker's last point grows while batches of its
/// second still arrive, and a list is only cut into parts behind them.
const OPEN_TAIL: usize = 4;

/// A record's workers go into chunks of their own once their JSON is larger than this.
const WORKERS_INLINE_BYTES: usize = 1024 * 1024;

/// About the most a chunk of workers holds (a chunk holds at least one worker). Every raft entry
/// costs the replicas a sled flush, about 1 MB written whatever its size (`bench/results/scale.md`
/// measured 64 KiB chunks at three times the bytes written of one entry a save), so chunks are as
/// large as an append-entries call carries in its heartbeat's time on a busy host.
const WORKER_CHUNK_BYTES: usize = 512 * 1024;

/// Chunks written at the same time: few, so that openraft's append-entries calls, which carry
/// every entry not yet replicated, stay a few chunks large.
const CHUNKS_IN_FLIGHT: usize = 2;

/// Key prefix of the shared counters' high-water marks (`state_backend: raft`), by run.
pub const LEASE_PREFIX: &str = "leases/";

/// Key prefix of archived runs (retention's `keep_runs`, `keep_days`): what `GET /runs` lists of
/// them and where each whole record went.
pub const ARCHIVE_PREFIX: &str = "archived/";

/// A run whose record was moved out of the replicated state to a storage backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Archived {
    pub id: String,
    pub name: String,
    pub phase: crate::phase::Phase,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    /// When it was archived, Unix ms.
    pub archived_ms: u64,
    /// The storage the record went to, and the object's key there.
    pub storage: crate::config::results::Storage,
    pub key: String,
    /// `s3://bucket/key` or `directory/key`, for people.
    pub location: String,
}

/// Which ended runs (id, creation time in Unix ms) retention archives: all but the `keep_runs`
/// newest, and those created more than `keep_days` days before `now_ms`.
pub fn to_archive(
    ended: &[(String, u64)],
    keep_runs: Option<u64>,
    keep_days: Option<f64>,
    now_ms: u64,
) -> Vec<String> {
    let mut newest_first: Vec<&(String, u64)> = ended.iter().collect();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let oldest_kept = keep_days.map(|d| now_ms.saturating_sub((d * 86_400_000.0) as u64));
    newest_first
        .into_iter()
        .enumerate()
        .filter(|(i, (_, created))| {
            keep_runs.is_some_and(|n| *i as u64 >= n) || oldest_kept.is_some_and(|t| *created < t)
        })
        .map(|(_, (id, _))| id.clone())
        .collect()
}

/// Set (to anything) in a master's environment: save every record whole, as before parts existed.
/// Only for `bench/results/scale.md`'s "before" column, measured by the same script.
pub const WHOLE_RECORDS_ENV: &str = "PERFORNIUM_BENCH_WHOLE_RECORDS";

/// The key of part `n` of list `list` of run `id`.
fn part_key(id: &str, list: &str, n: usize) -> String {
    format!("{PART_PREFIX}{id}/{list}/{n:08}")
}

/// Where run `id`'s worker chunks are, of every generation.
fn workers_prefix(id: &str) -> String {
    format!("{PART_PREFIX}{id}/workers/")
}

/// The key of chunk `n` of generation `generation` of run `id`'s workers.
fn worker_chunk_key(id: &str, generation: u64, n: usize) -> String {
    format!("{}{generation:012}/{n:06}", workers_prefix(id))
}

/// The generation a worker chunk key names.
fn chunk_generation(key: &str, id: &str) -> Option<u64> {
    key.strip_prefix(&workers_prefix(id))?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// How many entries of each growing list are in parts (in order, before the head's own entries).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Parts {
    timeline: usize,
    events: usize,
    event_seconds: usize,
    worker_points: Vec<usize>,
    /// The record's workers when they are in chunks (its head's `workers` is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workers: Option<WorkerChunks>,
}

/// Which chunks hold a record's workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct WorkerChunks {
    generation: u64,
    chunks: usize,
    workers: usize,
    /// How many workers have points (the rest of each worker's list, after its parts, is in its
    /// chunk item).
    points: usize,
}

/// What `run/<id>` holds once a record is saved in parts.
#[derive(Deserialize)]
struct Head {
    parts: Parts,
    record: RunRecord,
}

/// The lists of one run as this store last wrote their parts (only the entries in parts), and the
/// term it wrote them in: another term may have had another leader writing, so it starts over.
#[derive(Default)]
struct Written {
    term: u64,
    timeline: Vec<Point>,
    events: Vec<String>,
    event_seconds: Vec<u64>,
    worker_points: Vec<Vec<WorkerPoint>>,
    /// The generation of worker chunks this store last committed a head for in this term (0: none
    /// yet), and their keys, which the next generation's head deletes.
    worker_generation: u64,
    worker_keys: Vec<String>,
}

/// Run records kept in the raft state machine.
#[derive(Clone)]
pub struct RaftStore {
    pub replica: Replica,
    /// Per run: what this store wrote last, so that a save writes only the parts that changed. One
    /// lock for all runs, held across the write, so two saves of a run never interleave.
    written: Arc<tokio::sync::Mutex<HashMap<String, Written>>>,
    whole: bool,
    /// Per run: the last `GET /runs/{id}` body rendered and the head it was rendered from, so
    /// polls between two saves of the record answer without assembling and rendering it again.
    views: Arc<std::sync::Mutex<Views>>,
}

/// Per run id: a head and the view rendered from it.
type Views = HashMap<String, Arc<(Vec<u8>, bytes::Bytes)>>;

/// The most runs whose rendered view is kept.
const VIEWS_KEPT: usize = 2;

impl RaftStore {
    /// The store on `replica`.
    pub fn new(replica: Replica) -> Self {
        RaftStore {
            replica,
            written: Default::default(),
            whole: std::env::var_os(WHOLE_RECORDS_ENV).is_some(),
            views: Default::default(),
        }
    }

    /// Run `id`'s view (what `GET /runs/{id}` answers) as JSON, as this replica has applied it:
    /// rendered once per change of the record's head (every save writes the head), then served
    /// from that rendering. `None`: no such run in the state.
    pub fn view_json(&self, id: &str) -> Option<bytes::Bytes> {
        let head = self.replica.get(&run_key(id))?;
        let cached = self.lock_views().get(id).cloned();
        if let Some(c) = cached.filter(|c| c.0 == head) {
            return Some(c.1.clone());
        }
        let view = self.assemble(&head)?.view(self.replica.id());
        let body = bytes::Bytes::from(serde_json::to_vec(&view).ok()?);
        let mut views = self.lock_views();
        if views.len() >= VIEWS_KEPT && !views.contains_key(id) {
            views.clear();
        }
        views.insert(id.to_string(), Arc::new((head, body.clone())));
        Some(body)
    }

    fn lock_views(&self) -> std::sync::MutexGuard<'_, Views> {
        // A poisoned lock only means a render panicked; the map itself is always whole.
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every run record this replica has applied, oldest first.
    pub fn runs(&self) -> Vec<RunRecord> {
        let mut runs: Vec<RunRecord> = self
            .replica
            .scan(RUN_PREFIX)
            .into_iter()
            .filter_map(|(_, v)| self.assemble(&v))
            .collect();
        runs.sort_by_key(|r| r.created_ms);
        runs
    }

    /// One run record as this replica has applied it.
    pub fn run(&self, id: &str) -> Option<RunRecord> {
        self.replica
            .get(&run_key(id))
            .and_then(|v| self.assemble(&v))
    }

    /// A record from its head and parts (or from a record saved whole).
    fn assemble(&self, head: &[u8]) -> Option<RunRecord> {
        // A head is `{"parts":…,"record":…}` (keys in order); a record saved whole starts `{"id":`.
        if !head.starts_with(br#"{"parts":"#) {
            return serde_json::from_slice(head).ok();
        }
        let Head { parts, mut record } = serde_json::from_slice::<Head>(head).ok()?;
        let id = record.id.clone();
        if let Some(wc) = parts.workers {
            // Before the points' parts are put in front of each worker's rest of them.
            let mut workers = Vec::with_capacity(wc.workers);
            let mut points = Vec::with_capacity(wc.points);
            for n in 0..wc.chunks {
                let bytes = self.replica.get(&worker_chunk_key(&id, wc.generation, n))?;
                let chunk: Vec<(WorkerRun, Option<Vec<WorkerPoint>>)> =
                    serde_json::from_slice(&bytes).ok()?;
                for (w, p) in chunk {
                    workers.push(w);
                    points.extend(p);
                }
            }
            if workers.len() != wc.workers || points.len() != wc.points {
                return None;
            }
            record.workers = workers;
            record.worker_points = points;
        }
        let timeline = self.read_parts::<Point>(&id, "timeline", parts.timeline)?;
        record.timeline.splice(0..0, timeline);
        let events = self.read_parts::<String>(&id, "events", parts.events)?;
        record.events.splice(0..0, events);
        let seconds = self.read_parts::<u64>(&id, "event_seconds", parts.event_seconds)?;
        record.event_seconds.splice(0..0, seconds);
        for (w, &n) in parts.worker_points.iter().enumerate() {
            let points = self.read_parts::<WorkerPoint>(&id, &format!("worker_points/{w}"), n)?;
            if let Some(list) = record.worker_points.get_mut(w) {
                list.splice(0..0, points);
            }
        }
        Some(record)
    }

    /// The first `n` entries of list `list` of run `id`, from its parts.
    fn read_parts<T: DeserializeOwned>(&self, id: &str, list: &str, n: usize) -> Option<Vec<T>> {
        let mut out = Vec::with_capacity(n);
        for k in 0..n.div_ceil(CHUNK) {
            let bytes = self.replica.get(&part_key(id, list, k))?;
            let chunk: Vec<T> = serde_json::from_slice(&bytes).ok()?;
            out.extend(chunk);
        }
        out.truncate(n);
        (out.len() == n).then_some(out)
    }

    /// Every archived run this replica knows of, oldest first.
    pub fn archived(&self) -> Vec<Archived> {
        let mut all: Vec<Archived> = self
            .replica
            .scan(ARCHIVE_PREFIX)
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect();
        all.sort_by_key(|a| a.created_ms);
        all
    }

    /// Archived run `id`'s entry, if it was archived.
    pub fn archived_entry(&self, id: &str) -> Option<Archived> {
        self.replica
            .get(&format!("{ARCHIVE_PREFIX}{id}"))
            .and_then(|v| serde_json::from_slice(&v).ok())
    }

    /// Archived run `id`'s whole record, read back from its storage (`None`: not archived).
    pub async fn read_archived(&self, id: &str) -> Option<Result<(RunRecord, Archived), String>> {
        let entry = self.archived_entry(id)?;
        Some(
            crate::control::storage::read_archive(&entry.storage, &entry.key)
                .await
                .map(|rec| (rec, entry))
                .map_err(|e| e.to_string()),
        )
    }

    /// After run `ended` ended: moves the records retention says to (`results.collection.retention`
    /// `keep_runs`/`keep_days` of `ended`'s test) to its storage, each in one raft write that
    /// deletes the record and its parts and adds its archive entry. The record is stored before it
    /// is deleted, so a failure in between leaves it in place. Returns the ids archived.
    pub async fn apply_retention(&self, ended: &RunRecord) -> Result<Vec<String>, StoreError> {
        let Some(c) = ended
            .test
            .distributed
            .as_ref()
            .and_then(|d| d.results.as_ref())
            .and_then(|r| r.collection.as_ref())
        else {
            return Ok(Vec::new());
        };
        let (Some(r), Some(storage)) = (&c.retention, &c.storage) else {
            return Ok(Vec::new());
        };
        if !r.bounds_history() {
            return Ok(Vec::new());
        }
        let runs: HashMap<String, RunRecord> = self
            .runs()
            .into_iter()
            .filter(|r| r.phase.is_final())
            .map(|r| (r.id.clone(), r))
            .collect();
        let ended_list: Vec<(String, u64)> = runs
            .values()
            .map(|r| (r.id.clone(), r.created_ms))
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let mut done = Vec::new();
        for id in to_archive(&ended_list, r.keep_runs, r.keep_days, now) {
            let rec = &runs[&id];
            let (key, place) = crate::control::storage::archive(storage, rec)
                .await
                .map_err(|e| StoreError(format!("archiving run {id}: {e}")))?;
            let entry = Archived {
                id: id.clone(),
                name: rec.test.name.clone(),
                phase: rec.phase,
                created_ms: rec.created_ms,
                finished_ms: rec.finished_ms,
                archived_ms: now,
                storage: storage.clone(),
                location: format!("{place}/{key}"),
                key,
            };
            let mut cmds: Vec<Command> = self
                .part_keys(&id)
                .into_iter()
                .map(|key| Command::Delete { key })
                .collect();
            cmds.push(Command::Delete { key: run_key(&id) });
            cmds.push(Command::Delete {
                key: format!("{LEASE_PREFIX}{id}"),
            });
            cmds.push(Command::Put {
                key: format!("{ARCHIVE_PREFIX}{id}"),
                value: serde_json::to_vec(&entry).map_err(|e| StoreError(e.to_string()))?,
            });
            let mut written = self.written.lock().await;
            self.replica
                .write(Command::Batch(cmds))
                .await
                .map_err(|e| StoreError(e.to_string()))?;
            written.remove(&id);
            drop(written);
            tracing::info!(run_id = %id, location = %entry.location, "retention: run record archived");
            done.push(id);
        }
        Ok(done)
    }

    /// The keys of every part of run `id`.
    pub fn part_keys(&self, id: &str) -> Vec<String> {
        self.replica
            .scan(&format!("{PART_PREFIX}{id}/"))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// The changed parts of `record` (serialized as `head`, which loses the entries now in
    /// parts), with which lists are how far in parts; `written` is updated to match.
    fn split(
        record: &RunRecord,
        head: &mut serde_json::Value,
        written: &mut Written,
    ) -> Result<(Vec<Command>, Parts), StoreError> {
        let id = &record.id;
        let mut cmds = Vec::new();
        let mut parts = Parts {
            timeline: freeze(
                id,
                "timeline",
                &record.timeline,
                &mut written.timeline,
                &mut cmds,
            )?,
            events: freeze(id, "events", &record.events, &mut written.events, &mut cmds)?,
            event_seconds: freeze(
                id,
                "event_seconds",
                &record.event_seconds,
                &mut written.event_seconds,
                &mut cmds,
            )?,
            worker_points: Vec::new(),
            workers: None,
        };
        written
            .worker_points
            .resize_with(record.worker_points.len(), Vec::new);
        for (w, points) in record.worker_points.iter().enumerate() {
            let list = format!("worker_points/{w}");
            let n = freeze(id, &list, points, &mut written.worker_points[w], &mut cmds)?;
            parts.worker_points.push(n);
        }
        // The head: the record without the entries now in parts.
        if let Some(obj) = head.as_object_mut() {
            let mut cut = |key: &str, n: usize| {
                if let Some(serde_json::Value::Array(a)) = obj.get_mut(key) {
                    a.drain(..n.min(a.len()));
                }
            };
            cut("timeline", parts.timeline);
            cut("events", parts.events);
            cut("event_seconds", parts.event_seconds);
            if let Some(serde_json::Value::Array(lists)) = obj.get_mut("worker_points") {
                for (list, &n) in lists.iter_mut().zip(&parts.worker_points) {
                    if let serde_json::Value::Array(a) = list {
                        a.drain(..n.min(a.len()));
                    }
                }
            }
        }
        Ok((cmds, parts))
    }
}

impl RaftStore {
    /// When the workers in `head` (a record's serialized head, its lists cut to what is not in
    /// parts), each with the rest of its points, are more than [`WORKERS_INLINE_BYTES`]: writes them,
    /// in order, into chunks of a new generation, each its own raft entry, and empties both arrays
    /// of the head; returns which chunks, with the keys of older generations for the head's entry
    /// to delete. `None`: they stay in the head.
    async fn write_worker_chunks(
        &self,
        record: &RunRecord,
        head: &mut serde_json::Value,
        written: &mut Written,
    ) -> Result<Option<(WorkerChunks, Vec<String>)>, StoreError> {
        let err = |e: serde_json::Error| StoreError(e.to_string());
        let array = |v: Option<&serde_json::Value>| match v {
            Some(serde_json::Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let workers = array(head.get("workers"));
        let points = array(head.get("worker_points"));
        // A chunk's items: `[worker, the rest of its points]` (null past the points' list).
        let each: Vec<Vec<u8>> = workers
            .iter()
            .enumerate()
            .map(|(w, worker)| serde_json::to_vec(&(worker, points.get(w))))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        if each.iter().map(|w| w.len() + 1).sum::<usize>() <= WORKERS_INLINE_BYTES
            || points.len() > workers.len()
        {
            return Ok(None);
        }
        let id = &record.id;
        // The first save of this term: whatever generations are there (a committed one, and any a
        // dead leader wrote chunks for without its head) go with this generation's head.
        let (generation, stale) = if written.worker_generation == 0 {
            let old: Vec<String> = self
                .replica
                .scan(&workers_prefix(id))
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            let newest = old
                .iter()
                .filter_map(|k| chunk_generation(k, id))
                .max()
                .unwrap_or(0);
            (newest + 1, old)
        } else {
            (
                written.worker_generation + 1,
                std::mem::take(&mut written.worker_keys),
            )
        };
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        for w in each {
            match chunks.last_mut() {
                Some(c) if c.len() + w.len() < WORKER_CHUNK_BYTES => {
                    c.push(b',');
                    c.extend_from_slice(&w);
                }
                _ => {
                    let mut c = Vec::with_capacity(WORKER_CHUNK_BYTES + 2);
                    c.push(b'[');
                    c.extend_from_slice(&w);
                    chunks.push(c);
                }
            }
        }
        let n = chunks.len();
        use futures_util::stream::{StreamExt, TryStreamExt};
        futures_util::stream::iter(chunks.into_iter().enumerate().map(|(k, mut value)| {
            value.push(b']');
            let cmd = Command::Put {
                key: worker_chunk_key(id, generation, k),
                value,
            };
            async move { self.replica.write(cmd).await.map(drop) }
        }))
        .buffer_unordered(CHUNKS_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| {
            // The keys of the generation before are still to be deleted by a later head.
            StoreError(e.to_string())
        })?;
        if let Some(obj) = head.as_object_mut() {
            obj.insert("workers".into(), serde_json::Value::Array(Vec::new()));
            obj.insert("worker_points".into(), serde_json::Value::Array(Vec::new()));
        }
        Ok(Some((
            WorkerChunks {
                generation,
                chunks: n,
                workers: workers.len(),
                points: points.len(),
            },
            stale,
        )))
    }
}

/// Puts into `cmds` every full chunk of `current` (but the open tail) that `written` does not hold
/// as it is now, and makes `written` hold them; how many entries are in parts.
fn freeze<T: Serialize + Clone + PartialEq>(
    id: &str,
    list: &str,
    current: &[T],
    written: &mut Vec<T>,
    cmds: &mut Vec<Command>,
) -> Result<usize, StoreError> {
    let chunks = current.len().saturating_sub(OPEN_TAIL) / CHUNK;
    let n = chunks * CHUNK;
    let mut same = 0;
    while same < chunks {
        let range = same * CHUNK..(same + 1) * CHUNK;
        if written.len() < range.end || written[range.clone()] != current[range] {
            break;
        }
        same += 1;
    }
    for k in same..chunks {
        let value = serde_json::to_vec(&current[k * CHUNK..(k + 1) * CHUNK])
            .map_err(|e| StoreError(e.to_string()))?;
        cmds.push(Command::Put {
            key: part_key(id, list, k),
            value,
        });
    }
    written.truncate(same * CHUNK);
    written.extend_from_slice(&current[same * CHUNK..n]);
    Ok(n)
}

impl RunStore for RaftStore {
    async fn save(&self, record: &RunRecord) -> Result<(), StoreError> {
        if self.whole {
            let value = serde_json::to_vec(record).map_err(|e| StoreError(e.to_string()))?;
            return self
                .replica
                .write(Command::Put {
                    key: run_key(&record.id),
                    value,
                })
                .await
                .map(drop)
                .map_err(|e| StoreError(e.to_string()));
        }
        let term = self.replica.status().term;
        let mut all = self.written.lock().await;
        let mut written = all.remove(&record.id).unwrap_or_default();
        if written.term != term {
            written = Written {
                term,
                ..Written::default()
            };
        }
        let err = |e: serde_json::Error| StoreError(e.to_string());
        let mut head = serde_json::to_value(record).map_err(err)?;
        let (mut cmds, mut parts) = Self::split(record, &mut head, &mut written)?;
        let chunks = self
            .write_worker_chunks(record, &mut head, &mut written)
            .await?;
        if let Some((c, stale)) = &chunks {
            parts.workers = Some(*c);
            cmds.extend(stale.iter().map(|key| Command::Delete { key: key.clone() }));
        }
        cmds.push(Command::Put {
            key: run_key(&record.id),
            value: serde_json::to_vec(&serde_json::json!({"parts": parts, "record": head}))
                .map_err(err)?,
        });
        self.replica
            .write(Command::Batch(cmds))
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        if let Some((c, _)) = chunks {
            written.worker_generation = c.generation;
            written.worker_keys = (0..c.chunks)
                .map(|n| worker_chunk_key(&record.id, c.generation, n))
                .collect();
        }
        // Kept only after a committed write: a failed one leaves nothing assumed written.
        all.insert(record.id.clone(), written);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn record(id: &str) -> RunRecord {
        let test = crate::config::from_str(
            "name: t\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: 2\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n",
        )
        .unwrap();
        let workers = crate::control::workers::parse_list("127.0.0.1:1,127.0.0.1:2").unwrap();
        crate::control::submit::new_record(id.into(), test, &workers, None, false).unwrap()
    }

    /// `got` is `want`, field by field as saved.
    fn same(got: Option<RunRecord>, want: &RunRecord) {
        let got = serde_json::to_value(got.expect("the record reads back")).unwrap();
        assert_eq!(got, serde_json::to_value(want).unwrap());
    }

    /// Grows `rec` by `seconds` of timeline, worker points and events.
    fn grow(rec: &mut RunRecord, seconds: u64) {
        rec.worker_points.resize_with(2, Vec::new);
        for _ in 0..seconds {
            let second = rec.timeline.len() as u64 + 1;
            rec.timeline.push(Point {
                second,
                requests: second,
                errors: 0,
                active_vus: 2,
                dropped: 0,
                arrivals: 0,
                target_arrivals: None,
                p50_ms: 1.0,
                p90_ms: 2.0,
                p95_ms: 3.0,
                p99_ms: 4.0,
                steps: Vec::new(),
                status: Default::default(),
            });
            for points in &mut rec.worker_points {
                points.push(WorkerPoint {
                    second,
                    requests: 7,
                    errors: 0,
                    p95_ms: 1.5,
                    p50_ms: 1.0,
                    p99_ms: 2.0,
                    arrivals: 0,
                    target_arrivals: None,
                });
            }
            rec.events.push(format!("second {second}"));
            rec.event_seconds.push(second);
        }
    }

    #[tokio::test]
    async fn a_record_saved_in_parts_reads_back_whole_and_later_saves_write_only_new_parts() {
        let m = crate::master::embedded::Embedded::open(None).await.unwrap();
        let store = m.store.clone();
        let mut rec = record("r1");
        grow(&mut rec, 3 * CHUNK as u64 + 10);
        store.save(&rec).await.unwrap();
        same(store.run("r1"), &rec);
        // Three chunks of each list (4 lists + 2 workers' points, less the open tail).
        assert_eq!(store.part_keys("r1").len(), 3 * 5);
        let head = store.replica.get(&run_key("r1")).unwrap().len();

        // A second later: the last point grows in place, one more second arrives.
        rec.worker_points[0].last_mut().unwrap().requests += 1;
        grow(&mut rec, 1);
        let before = store.replica.status().last_applied;
        store.save(&rec).await.unwrap();
        same(store.run("r1"), &rec);
        assert!(store.replica.status().last_applied > before);
        let head_after = store.replica.get(&run_key("r1")).unwrap().len();
        assert!(
            head_after < head + 1024,
            "the head stays small ({head} then {head_after} bytes)"
        );

        // A change inside a saved part is written again, not lost.
        rec.timeline[5].requests = 999;
        rec.events[70] = "rewritten".into();
        store.save(&rec).await.unwrap();
        same(store.run("r1"), &rec);

        // A list that shrinks reads back as it is now.
        rec.worker_points[1].truncate(10);
        store.save(&rec).await.unwrap();
        same(store.run("r1"), &rec);
        let all = store.runs();
        assert_eq!(all.len(), 1);
        same(all.into_iter().next(), &rec);

        // Another store on the same replica (a new leader's) reads it and saves over it.
        let other = RaftStore::new(store.replica.clone());
        grow(&mut rec, CHUNK as u64);
        other.save(&rec).await.unwrap();
        same(store.run("r1"), &rec);
        m.close().await.unwrap();
    }

    /// Keys of run `id`'s worker chunks, of every generation.
    fn chunk_keys(store: &RaftStore, id: &str) -> Vec<String> {
        store
            .replica
            .scan(&workers_prefix(id))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[tokio::test]
    async fn many_workers_are_saved_in_chunks_of_bounded_size_and_each_generation_replaces_the_last(
    ) {
        let m = crate::master::embedded::Embedded::open(None).await.unwrap();
        let store = m.store.clone();
        let list: Vec<String> = (1..=400).map(|p| format!("127.0.0.1:{p}")).collect();
        let test = record("x").test;
        let workers = crate::control::workers::parse_list(&list.join(",")).unwrap();
        let mut rec =
            crate::control::submit::new_record("r2".into(), test, &workers, None, false).unwrap();
        // Histograms of many distinct latencies: a few KB per worker, as a busy worker's are.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for w in rec.workers.iter_mut() {
            for _ in 0..3_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w.merged[0].latency.record_us(1 + x % 2_000_000);
                w.merged[0].count += 1;
            }
        }
        // Points: each worker's first 64 go into parts, the rest into its chunk item.
        grow(&mut rec, CHUNK as u64 + 10);
        rec.worker_points.resize(40, rec.worker_points[0].clone());
        let per_worker = serde_json::to_vec(&(&rec.workers[0], &rec.worker_points[0]))
            .unwrap()
            .len();
        assert!(
            400 * per_worker > WORKERS_INLINE_BYTES.max(2 * WORKER_CHUNK_BYTES),
            "{per_worker} B a worker"
        );

        store.save(&rec).await.unwrap();
        same(store.run("r2"), &rec);
        let first = chunk_keys(&store, "r2");
        assert!(first.len() >= 2, "{first:?}");
        assert!(first.iter().all(|k| chunk_generation(k, "r2") == Some(1)));
        for k in &first {
            let len = store.replica.get(k).unwrap().len();
            assert!(len <= WORKER_CHUNK_BYTES + per_worker, "{k}: {len} B");
        }
        let head = store.replica.get(&run_key("r2")).unwrap().len();
        assert!(head < 16 * 1024, "the head holds no worker: {head} B");
        assert_eq!(
            store.part_keys("r2").len(),
            first.len() + 3 + 40,
            "one part of each list"
        );
        assert!(store.part_keys("r2").iter().any(|k| first.contains(k)));

        // The next save writes generation 2 and its head's entry deletes generation 1.
        rec.workers[7].merged[0].latency.record_us(123_456);
        rec.workers[7].last_seq = 9;
        rec.worker_points[39].last_mut().unwrap().requests += 1;
        store.save(&rec).await.unwrap();
        same(store.run("r2"), &rec);
        let second = chunk_keys(&store, "r2");
        assert_eq!(second.len(), first.len());
        assert!(second.iter().all(|k| chunk_generation(k, "r2") == Some(2)));

        // Chunks of a generation whose head never committed (a leader died in between), as a
        // new leader finds them: its first save deletes them and writes past them.
        store
            .replica
            .write(Command::Put {
                key: worker_chunk_key("r2", 7, 0),
                value: b"not a chunk".to_vec(),
            })
            .await
            .unwrap();
        same(store.run("r2"), &rec);
        let other = RaftStore::new(store.replica.clone());
        rec.workers[0].last_seq = 3;
        other.save(&rec).await.unwrap();
        same(store.run("r2"), &rec);
        let third = chunk_keys(&store, "r2");
        assert!(
            third.iter().all(|k| chunk_generation(k, "r2") == Some(8)),
            "{third:?}"
        );
        m.close().await.unwrap();
    }

    #[test]
    fn retention_keeps_the_newest_runs_and_the_recent_days() {
        let day = 86_400_000;
        let now = 100 * day;
        let ended: Vec<(String, u64)> = [("a", 90), ("b", 95), ("c", 99), ("d", 100)]
            .iter()
            .map(|(id, d)| (id.to_string(), d * day))
            .collect();
        assert_eq!(to_archive(&ended, Some(2), None, now), ids(&["b", "a"]));
        assert_eq!(to_archive(&ended, Some(9), None, now), ids(&[]));
        assert_eq!(to_archive(&ended, None, Some(2.0), now), ids(&["b", "a"]));
        assert_eq!(to_archive(&ended, None, Some(7.5), now), ids(&["a"]));
        // Both: a run goes when either says so.
        assert_eq!(to_archive(&ended, Some(3), Some(7.5), now), ids(&["a"]));
        assert_eq!(
            to_archive(&ended, Some(1), Some(30.0), now),
            ids(&["c", "b", "a"])
        );
    }
}
