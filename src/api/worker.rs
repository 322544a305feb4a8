//! The worker API's messages: what a controller sends to a worker (`/prepare`, `/start`, `/scale`,
//! `/stop`, `/rendezvous`) and what the worker answers (`/health`, `/status`, `/metrics`,
//! `/results`). The worker serves them and the controller calls them; neither imports the other.

use crate::config::TestFile;
use crate::metrics::collector::{Interval, Live};
use crate::metrics::StepStats;
use serde::{Deserialize, Serialize};

/// The capacity a worker gets when none is given.
pub const DEFAULT_CAPACITY: u32 = 100;

/// The region a worker is in when none is given.
pub const DEFAULT_REGION: &str = "default";

/// A worker the controller drives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerAddr {
    /// Host name or IP address (an IPv6 address in brackets, e.g. `[::1]`).
    pub host: String,
    /// The worker's HTTP port.
    pub port: u16,
    /// Relative capacity, used by the `capacity_based` strategy; 100 when not given.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Region, used by the `geographic` strategy and `distributed.weights`; `default` when not given.
    #[serde(default = "default_region")]
    pub region: String,
    /// A name for the worker (`worker-us-east-1`), usable wherever the test names workers
    /// (`distributed.distribution`, `weights`, `geographic.regions[].workers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The most virtual users the plan may give this worker (`worker.capacity.max_vus` of a
    /// registered worker); no cap when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vus: Option<u64>,
    /// The most arrivals per second the plan may give it (`worker.capacity.max_rps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rps: Option<u64>,
}

fn default_capacity() -> u32 {
    DEFAULT_CAPACITY
}

fn default_region() -> String {
    DEFAULT_REGION.to_string()
}

impl WorkerAddr {
    /// A worker at `host:port` with the default capacity and region.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            capacity: DEFAULT_CAPACITY,
            region: default_region(),
            id: None,
            max_vus: None,
            max_rps: None,
        }
    }

    /// `host:port`, as used in URLs and as a key of `distributed.distribution`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Where a worker is in its current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerPhase {
    Idle,
    Prepared,
    /// Started, waiting for the start instant.
    Scheduled,
    Running,
    Finished,
    Stopped,
}

impl std::fmt::Display for WorkerPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            WorkerPhase::Idle => "idle",
            WorkerPhase::Prepared => "prepared",
            WorkerPhase::Scheduled => "scheduled",
            WorkerPhase::Running => "running",
            WorkerPhase::Finished => "finished",
            WorkerPhase::Stopped => "stopped",
        })
    }
}

impl WorkerPhase {
    /// True once the run has ended and final results exist.
    pub fn is_done(self) -> bool {
        matches!(self, WorkerPhase::Finished | WorkerPhase::Stopped)
    }
}

/// The answer to `/prepare`, `/start`, `/scale` and `/stop`: the worker's phase after the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub phase: WorkerPhase,
}

/// The header every load request of a distributed run carries: the worker's name in the run, so
/// the system under test (and the mock's start-skew check) can tell the workers' traffic apart.
pub const WORKER_HEADER: &str = "x-perfornium-worker";

/// `POST /prepare`: the test with this worker's share already applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepare {
    pub run_id: String,
    pub test: TestFile,
    /// This worker's name in the run (its address as the controller knows it); its load requests
    /// carry it in [`WORKER_HEADER`].
    #[serde(default)]
    pub worker: Option<String>,
    /// What the test's `beforeTest` left in its variables (run once, on one worker, through
    /// [`TestHook`]): every VU of this worker starts with them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub variables: std::collections::BTreeMap<String, String>,
}

/// Which of the test's own hooks a [`TestHook`] call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestHookKind {
    /// `beforeTest` (and, when it fails, `onTestError` and `teardownTest` at once).
    Before,
    /// `onTestError` (when the run failed) then `teardownTest`.
    After,
}

/// `POST /test-hook`: run the test's own hooks of `hook` once for the run, without load, and
/// answer when they ended. A worker that predates test hooks in distributed runs answers 404,
/// which fails the run (its hooks would otherwise not run).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestHook {
    pub run_id: String,
    pub hook: TestHookKind,
    pub test: TestFile,
    /// This worker's name in the run (its hooks' requests carry it in [`WORKER_HEADER`]).
    #[serde(default)]
    pub worker: Option<String>,
    /// `after`: what `beforeTest` left (the hooks' `context.variables` start with them).
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
    /// `after`: why the run failed (empty: it did not; `onTestError` runs when not empty).
    #[serde(default)]
    pub failures: Vec<String>,
}

/// The answer to [`TestHook`]: the hooks ran (a failure of theirs is `error`, not an HTTP error).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestHookDone {
    /// `before`: what `beforeTest` left in its variables.
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
    /// Why the hooks failed the run (`beforeTest`'s error naming the hook and its file:line, or
    /// `onTestError`/`teardownTest` failures one a line); `None` when they did not.
    #[serde(default)]
    pub error: Option<String>,
}

/// `POST /start`: when to start, in the worker's own clock (Unix ms); now when absent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Start {
    pub run_id: String,
    /// The start instant in the worker's clock, ms since the epoch (fractional: µs precision).
    #[serde(default)]
    pub start_at_ms: Option<f64>,
}

/// `POST /scale`: extra load for a running run (a share of a failed worker's), as a test with the
/// same steps. `scale_id` makes the call idempotent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scale {
    pub run_id: String,
    pub scale_id: String,
    pub test: TestFile,
    /// Live control (`PATCH /runs/{id}` on the master): this worker's whole new share. When
    /// given, `test` does not add to the run's load but replaces it (every engine the run has is
    /// stopped once the new one runs), and the run is paused or resumed as `paused` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveShare>,
}

/// A worker's share under live control (see [`Scale::live`]). Generations only go up: a share
/// at or below the generation the worker already applied changes nothing, so a controller (or a
/// new leader) may send the recorded share again as often as it likes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveShare {
    /// The change's generation in the run's record (1, 2, ...).
    pub generation: u64,
    /// The share in the load's units (VUs, or milli-arrivals/s); 0 keeps the run open with no load.
    pub units: u64,
    /// What the worker ran before any live change (its planned share plus load taken over from
    /// failed workers): the worker replaces its load only when `units` differs from what it runs.
    pub base_units: u64,
    /// True: no new iterations (closed models) or arrivals (open) start until resumed.
    pub paused: bool,
}

/// `POST /stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stop {
    pub run_id: String,
}

/// `GET /rendezvous?run_id=...`: who waits at each rendezvous point of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RendezvousState {
    pub run_id: String,
    pub points: std::collections::BTreeMap<String, crate::engine::rendezvous::PointState>,
}

/// `POST /rendezvous`: let the waiters of `point` go, if they still wait for `generation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    pub run_id: String,
    pub point: String,
    pub generation: u64,
}

/// `GET /variables?run_id=...` (the worker's global variables) and `POST /variables` (values
/// merged in from the other workers, by the controller).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variables {
    pub run_id: String,
    pub values: std::collections::BTreeMap<String, crate::engine::globals::Value>,
}

/// The answer to a [`Release`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Released {
    /// VUs set going by this call (0 when the release was stale or repeated).
    pub released: u64,
}

/// `GET /health` (no token needed): also the worker's clock, for offset estimates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    /// The worker's clock, ms since the epoch with µs precision (for clock-offset estimates).
    pub now_ms: f64,
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub phase: WorkerPhase,
    pub run_id: Option<String>,
    pub started_at_ms: Option<f64>,
    pub live: Live,
    pub now_ms: u64,
    /// When a controller last pulled metrics (Unix ms; 0 = never).
    #[serde(default)]
    pub last_poll_ms: u64,
}

/// `GET /metrics?since=SEQ`: every interval after `SEQ` not yet acknowledged. Asking with `since=N`
/// acknowledges everything up to N, which the worker then forgets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    pub run_id: Option<String>,
    pub phase: WorkerPhase,
    pub started_at_ms: Option<f64>,
    pub batches: Vec<Interval>,
    pub live: Live,
}

/// `GET /results?run_id=...`: the run's totals once it has ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub run_id: String,
    pub phase: WorkerPhase,
    pub step_names: Vec<String>,
    pub steps: Vec<StepStats>,
    pub elapsed_s: f64,
    pub dropped: u64,
    pub started_at_ms: Option<f64>,
    /// The sequence number of the last interval; the batches up to it add up to `steps`.
    pub last_seq: u64,
    /// Why the run fails on this worker whatever its thresholds (a step threshold's `fail_test`
    /// or `abort`, CSV `stop_test`); the controller fails the whole run with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// One of them stopped the test here (`abort`, `stop_test`): the controller stops the others.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aborted: bool,
    /// The test's `debug` captures made here (the first 100 of the run on this worker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captured: Vec<serde_json::Value>,
}

/// `GET /leases?run_id=...`: the worker's shared counters (`state_backend: raft`) as the controller
/// needs them to grant more values: what is left of the ranges it holds, what its VUs claimed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseReport {
    pub run_id: String,
    /// Whether the worker's run is still going (a finished one needs no more values).
    pub active: bool,
    pub counters: std::collections::BTreeMap<String, CounterLease>,
}

/// One counter on one worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterLease {
    /// Values granted and not yet claimed.
    pub left: u64,
    /// Values its VUs claimed since the run was prepared.
    pub claimed: u64,
    /// VUs waiting for a value right now.
    pub waiting: u64,
    /// The highest value ever granted to it (0: none).
    pub granted_to: u64,
}

/// `POST /leases`: ranges of counter values granted to a worker, and the run-wide claimed counts
/// (`{{state.get(NAME)}}`). A range that does not start above the worker's `granted_to` is a
/// repeat and adds nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseGrant {
    pub run_id: String,
    /// By counter: the values `first..=last` are this worker's alone.
    pub grants: std::collections::BTreeMap<String, (u64, u64)>,
    /// By counter: the values claimed over all workers, as the controller last counted them.
    pub totals: std::collections::BTreeMap<String, u64>,
}

/// A `GET /metrics` answer as the controller reads it: the [`Metrics`] and, in the same JSON
/// object, the [`PullExtras`] workers add since monitoring (a controller that only knows
/// `Metrics` still reads the body). Not `#[serde(flatten)]`: flattening buffers the body through
/// serde's untyped content, which the batches' histograms do not survive.
#[derive(Debug, Clone)]
pub struct Pull {
    pub metrics: Metrics,
    pub extras: PullExtras,
}

/// What a worker measured about itself and the log records it ships to the controller
/// (pull-based: they ride on the pulls), as fields beside [`Metrics`]' in `GET /metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PullExtras {
    /// The worker process's and host's CPU and memory at this pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::metrics::resources::Resources>,
    /// Log records of the run since the previous pull (when the run asked for `logging.centralized`).
    /// Handed over once: a pull whose answer is lost loses them (at most once, unlike batches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogRecord>,
    /// Records this worker dropped for the run because its buffer was full, since the run began.
    #[serde(default)]
    pub logs_dropped: u64,
}

/// One structured log record of a run, as workers ship them and `GET /runs/{id}/logs` serves them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When it was logged, Unix ms (the controller corrects workers' records by their clock offset).
    pub ts_ms: f64,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// Who logged it: `master`, or the worker's `host:port`.
    pub source: String,
    /// The module that logged it (`perfornium::worker::slot`), or `communication` for the
    /// controller's records of its calls to workers.
    pub target: String,
    pub message: String,
    /// The run id: the correlation id every record of a run carries.
    pub run_id: String,
    /// The event's other fields.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// `GET /raw?run_id=R&after=N` answers chunk N+1 of the run's raw data spool as
/// `application/zstd`, its number in this header (see [`crate::worker::spool`]).
pub const RAW_SEQ_HEADER: &str = "x-perfornium-raw-seq";

/// `GET /raw?run_id=R&after=N` when chunk N was the last: the spool is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawDone {
    pub run_id: String,
    /// The last chunk's number (0: the run kept no sample).
    pub last: u64,
    /// Samples in all the chunks.
    pub samples: u64,
}

/// `POST /raw/ack`: the controller stored the run's raw chunks up to `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawAck {
    pub run_id: String,
    pub seq: u64,
}

/// A run's raw data spool on a worker: `GET /raw` lists them, `POST /raw/ack` answers one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawSpool {
    pub run_id: String,
    /// Chunk files on disk.
    pub chunks: u64,
    /// Their compressed size.
    pub bytes: u64,
    /// The highest chunk the controller acknowledged.
    pub acked: u64,
    /// The last chunk's number once the run's writer finished (`None`: still writing).
    pub last: Option<u64>,
    /// Samples in the spool, once complete.
    pub samples: Option<u64>,
    /// When the worker deletes it (`retention.worker_cleanup`), Unix ms; `None`: kept.
    pub cleanup_at_ms: Option<u64>,
}

/// `GET /raw`: the raw data spools this worker keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawSpools {
    pub runs: Vec<RawSpool>,
}
