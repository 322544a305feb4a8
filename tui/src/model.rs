//! What the console shows, as plain data. The binary maps the master's views into it once a second.

/// One master replica.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replica {
    pub id: u64,
    pub addr: String,
    /// leader, follower, candidate, learner, or "unreachable".
    pub role: String,
    pub reachable: bool,
    pub last_applied: Option<u64>,
}

/// One worker's row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerRow {
    pub address: String,
    pub region: String,
    pub state: String,
    /// VUs (or arrivals/s) assigned by the plan.
    pub planned: f64,
    pub active_vus: u64,
    pub requests: u64,
    pub rps: f64,
    pub errors: u64,
    pub p95_ms: f64,
    /// Seconds since the worker last answered.
    pub heartbeat_age_s: Option<f64>,
    pub clock_offset_ms: Option<f64>,
    /// What the worker's own view shows (Enter on its row).
    pub detail: WorkerDetail,
}

/// One second of one worker's part.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerSecond {
    pub second: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// The last CPU and memory sample of a worker's process and host.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceRow {
    pub process_cpu_pct: f64,
    pub host_cpu_pct: f64,
    pub process_memory_bytes: u64,
    pub host_memory_used_bytes: u64,
    pub host_memory_total_bytes: u64,
    /// At or above the saturation threshold (~90 % CPU): this generator's latencies are suspect.
    pub saturated: bool,
}

/// A worker's own figures: its seconds, steps, resources, control calls and health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerDetail {
    pub points: Vec<WorkerSecond>,
    pub steps: Vec<StepRow>,
    pub resources: Option<ResourceRow>,
    pub peak_process_cpu_pct: f64,
    pub peak_host_cpu_pct: f64,
    /// Resource samples taken, and how many of them were saturated.
    pub samples: u64,
    pub saturated_samples: u64,
    /// The controller's calls to this worker, the failed ones, and their round-trip times.
    pub calls: u64,
    pub failed_calls: u64,
    pub rtt_last_ms: f64,
    pub rtt_mean_ms: f64,
    pub rtt_max_ms: f64,
    pub planned_share_pct: Option<f64>,
    pub actual_share_pct: Option<f64>,
    /// Health changes, oldest first: ("+12.3s", "running").
    pub health: Vec<(String, String)>,
    pub logs_dropped: u64,
    /// Why the worker failed, when it did.
    pub error: Option<String>,
}

/// One step's row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepRow {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Merged percentiles of one second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimePoint {
    pub second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// The run being followed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub id: String,
    pub name: String,
    pub phase: String,
    pub elapsed_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub active_vus: u64,
    /// "VUs" or "arrivals/s": the unit of `WorkerRow::planned`.
    pub unit: String,
    pub workers: Vec<WorkerRow>,
    pub steps: Vec<StepRow>,
    pub timeline: Vec<TimePoint>,
    pub errors_seen: Vec<String>,
    pub start_skew_ms: Option<f64>,
    /// The plan's regions (`distributed.geographic`), with their time zones; empty without.
    pub regions: Vec<RegionRow>,
    /// The run's total load now (VUs, or arrivals/s), after any live change.
    pub load_target: f64,
    /// New iterations and arrivals are held back (live control).
    pub paused: bool,
    /// The last live change's generation (0: none).
    pub live_generation: u64,
    /// Which of the per-worker and topology views the run's test allows
    /// (`monitoring.dashboards`).
    pub views: Views,
}

/// The views a run's test allows (`monitoring.dashboards.worker_dashboards` and
/// `network_topology`); both are on unless the test turns them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Views {
    pub worker: bool,
    pub topology: bool,
}

impl Default for Views {
    fn default() -> Self {
        Views {
            worker: true,
            topology: true,
        }
    }
}

/// What fills the screen between the header and the footer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Screen {
    /// Cluster, distribution, workers, chart, steps, events.
    #[default]
    Main,
    /// One worker's own view, by its index in `Run::workers`.
    Worker(usize),
    /// Replicas and their roles, regions, workers with their links.
    Topology,
}

/// One region of a geographic plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionRow {
    pub name: String,
    pub load_percentage: f64,
    /// An IANA time-zone name, when the test gave one.
    pub timezone: Option<String>,
}

/// A live change waiting for the user's `y`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pending {
    /// Set the total load to this figure (VUs, or arrivals/s).
    Load(f64),
    /// Pause (true) or resume (false).
    Pause(bool),
}

/// Which pane has the focus (tab and arrows move it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pane {
    #[default]
    Workers,
    Steps,
    Errors,
}

impl Pane {
    /// The next pane in tab order.
    pub fn next(self) -> Pane {
        match self {
            Pane::Workers => Pane::Steps,
            Pane::Steps => Pane::Errors,
            Pane::Errors => Pane::Workers,
        }
    }

    /// The previous pane.
    pub fn prev(self) -> Pane {
        match self {
            Pane::Workers => Pane::Errors,
            Pane::Steps => Pane::Workers,
            Pane::Errors => Pane::Steps,
        }
    }
}

/// Everything on screen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    pub cluster: Vec<Replica>,
    /// (leader id, term).
    pub leader: Option<(u64, u64)>,
    /// Leader changes seen, newest last ("leader changed: node 1 → node 2 (term 7)").
    pub leader_changes: Vec<String>,
    pub run: Option<Run>,
    pub focus: Pane,
    /// Scroll offset of the focused table.
    pub scroll: usize,
    pub confirm_stop: bool,
    /// A live change asked for with `+`, `-`, `=` or `p`, waiting for confirmation.
    pub pending: Option<Pending>,
    /// The exact figure being typed after `=` (Enter asks to confirm it, Esc cancels).
    pub prompt: Option<String>,
    pub show_help: bool,
    /// A line for transient messages ("stop requested", connection errors).
    pub status: String,
    /// The registered pool ("pool: 2 up (w-a, w-b)"), shown in the cluster pane's title.
    pub pool: Option<String>,
    /// The view on screen (Enter on a worker, `t`, Esc back).
    pub screen: Screen,
    /// The selected worker row (↑/↓ in the workers pane).
    pub selected: usize,
}

impl Model {
    /// Records a new leader, noting the change when it differs from the last one.
    pub fn set_leader(&mut self, id: u64, term: u64) {
        if let Some((old, _)) = self.leader {
            if old != id {
                self.leader_changes.push(format!(
                    "leader changed: node {old} → node {id} (term {term})"
                ));
            }
        }
        self.leader = Some((id, term));
    }
}
