//! The load engine: turns a [`TestFile`] into virtual users on tokio and their measurements.
//! Closed models (`basic`, `stepping`) start a task per VU at its scheduled offset; the open model
//! (`arrivals`) starts iterations on a fixed clock whatever the target does ([`arrivals`]).
//! Every request becomes a sample for the [`Collector`], which owns the numbers.

mod arrivals;
pub mod checks;
mod client;
pub use client::set_socket_options;
pub mod data;
pub mod digest;
mod faker;
mod fast;
pub mod globals;
mod http;
pub mod leases;
pub mod rendezvous;
pub mod schedule;
mod scripting;
mod soap;
pub mod state;
pub mod template;
mod vu;

use crate::config::{self, Load, Step, TestFile};
use crate::metrics::collector::Recorder;
use crate::metrics::collector::{Collector, Gauges, Interval, Live, Totals};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use tokio_util::sync::CancellationToken as StopToken;

/// Why a run could not start.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("scenario `{scenario}`: {source}")]
    Data {
        scenario: String,
        source: data::CsvError,
    },
    #[error("cannot set up TLS for the load: {0}")]
    Tls(String),
    /// A WSDL-mode SOAP step whose WSDL cannot be fetched or has no such operation.
    #[error("soap: {0}")]
    Soap(String),
    /// A check or extraction that does not compile (a test that skipped `config::check`).
    #[error("the test was refused: {0}")]
    Invalid(#[from] config::Invalid),
    /// The shared state's backend (redis) cannot be reached.
    #[error("shared state: {0}")]
    State(String),
    /// The test's `hooks.beforeTest` failed without `continueOnError`: no load was made.
    #[error("{0}; the run was stopped before any load")]
    BeforeTest(String),
}

/// Hooks a caller can attach to a run.
#[derive(Default)]
pub struct Options {
    /// Receives every closed one-second interval (workers keep them for their controller).
    pub sink: Option<mpsc::UnboundedSender<Interval>>,
    /// Receives the live view once a second.
    pub live: Option<watch::Sender<Live>>,
    /// Stops the run early; requests in flight finish and are counted.
    pub stop: CancellationToken,
    /// Rendezvous points shared with others (a worker's engines, released by the controller);
    /// a fresh in-process set when `None`.
    pub rendezvous: Option<Arc<rendezvous::Rendezvous>>,
    /// Global variables shared with others (a worker's engines, merged by the controller); a
    /// fresh in-process set when `None`.
    pub globals: Option<Arc<globals::Globals>>,
    /// The run's id, which prefixes the shared state's keys (the same on every worker); a fresh
    /// `local-...` id when `None`.
    pub run_id: Option<String>,
    /// The shared counters of `state_backend: raft`, granted by the controller (a worker's
    /// engines share one set); held in this process when `None`.
    pub leases: Option<Arc<leases::Leases>>,
    /// While it reads true, no new iteration (closed models) or arrival (open) starts; requests
    /// in flight finish (a worker's live control: pause and resume).
    pub pause: Option<watch::Receiver<bool>>,
    /// Keeps every request sample too (`results.collection.format.raw_data`), written by the
    /// run's writer behind this sink.
    pub raw: Option<crate::metrics::raw::RawSink>,
    /// Which of the test's own hooks (`beforeTest`, `onTestError`, `teardownTest`) this engine
    /// runs: all of them around its load in a local run; a distributed run splits them.
    pub test_hooks: TestHookRole,
}

/// The part of a run one engine plays for the test's own hooks. A distributed run runs
/// `beforeTest` once on one worker ([`TestHookRole::Before`]), every worker's load with its
/// variables ([`TestHookRole::Load`]), and `onTestError`/`teardownTest` once after the load on
/// one worker ([`TestHookRole::After`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TestHookRole {
    /// A local run: `beforeTest`, the load, then `onTestError` and `teardownTest`.
    #[default]
    All,
    /// `beforeTest` only, no load: [`Outcome::test_variables`] holds what it set. When it fails
    /// (without `continueOnError`) `onTestError` and `teardownTest` run at once, as in a local run.
    Before,
    /// The load only, every VU starting with `variables` (what `beforeTest` set elsewhere).
    Load {
        variables: std::collections::HashMap<String, String>,
    },
    /// No load: `onTestError` (when `failures` is not empty) then `teardownTest`, in a context
    /// holding `variables`. Their failures are [`Outcome::failures`].
    After {
        variables: std::collections::HashMap<String, String>,
        failures: Vec<String>,
    },
}

/// How many `debug` captures a run keeps (per engine, per worker, and in a merged summary).
pub const DEBUG_CAPTURES: usize = 100;

/// A finished run's numbers.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub step_names: Vec<String>,
    pub totals: Totals,
    /// Why the run failed regardless of its thresholds: a step threshold's `fail_test` or `abort`,
    /// CSV rows exhausted with `stop_test`. Each fails the verdict (exit code 1).
    pub failures: Vec<String>,
    /// One of them stopped the whole test (a threshold's `abort`, CSV `stop_test`): in a
    /// distributed run the controller then stops every other worker too.
    pub aborted: bool,
    /// What `beforeTest` left in its variables (set by [`TestHookRole::Before`] and `All`).
    pub test_variables: std::collections::HashMap<String, String>,
    /// `debug` captures of requests (see `config::Debug`), the first 100.
    pub captured: Vec<serde_json::Value>,
}

/// State every VU of a run shares.
pub(crate) struct Shared {
    test: Arc<TestFile>,
    /// The rustls configuration every VU's `https://` connections use.
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    /// Connections kept between open-model iterations, so arrivals reuse them like VUs do.
    idle_clients: std::sync::Mutex<Vec<client::VuClient>>,
    /// `step_ids[scenario][step]`: the step's index in the flat list of HTTP steps.
    step_ids: Vec<Vec<Option<usize>>>,
    /// By that index: the step's request rendered once, when nothing in it is templated.
    prepared: Vec<Option<client::Prepared>>,
    /// By that index: the step's checks and extractions, compiled once.
    compiled: Vec<config::CompiledStep>,
    /// By scenario: its `variables` as text, rendered once (each VU starts from a copy).
    variables: Vec<std::collections::HashMap<String, String>>,
    /// By scenario: those of its variables that are templates, parsed once (rendered at use).
    templated: Vec<Arc<std::collections::HashMap<String, (String, config::template::Template)>>>,
    feeders: Vec<Option<data::Feeder>>,
    picker: Picker,
    rendezvous: Arc<rendezvous::Rendezvous>,
    globals: Arc<globals::Globals>,
    /// The shared state (`state_management.shared_state`), when on.
    state: Option<state::State>,
    /// The test's `performance.network` socket options for the load connections, when given.
    socket: Option<config::performance::SocketOptions>,
    /// By HTTP step: its `{{state.OP(NAME)}}` references, resolved before each request.
    state_refs: Vec<Vec<config::StateRef>>,
    samples: Recorder,
    gauges: Arc<Gauges>,
    cancel: CancellationToken,
    deadline: Option<Instant>,
    /// By HTTP step: its `thresholds[]`, compiled.
    compiled_thresholds: Vec<Vec<config::step_options::CompiledThreshold>>,
    /// Step threshold breaches logged so far (the first 20 are).
    threshold_logs: std::sync::atomic::AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
    /// Set with the failure that stops the whole test (see [`Shared::abort`]).
    aborted: std::sync::atomic::AtomicBool,
    /// `debug` captures asked for, and those made.
    debug: Option<config::Debug>,
    captured: std::sync::Mutex<Vec<serde_json::Value>>,
    /// The run's pause switch ([`Options::pause`]).
    pause: Option<watch::Receiver<bool>>,
    /// The test's JavaScript (hooks, conditions, script steps); `None` when it has none.
    scripts: Option<scripting::Scripts>,
    /// The run's id, on the lines scripts log.
    run_id: Arc<str>,
}

impl Shared {
    /// Records why the run fails (kept once per reason).
    fn fail(&self, why: String) {
        let mut f = self.failures.lock().expect("failures lock");
        if !f.contains(&why) {
            f.push(why);
        }
    }

    /// Records why the run fails and stops it: every VU ends.
    fn abort(&self, why: String) {
        self.fail(why);
        self.aborted
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.cancel.cancel();
    }

    /// True while the run is paused.
    fn paused(&self) -> bool {
        self.pause.as_ref().is_some_and(|p| *p.borrow())
    }

    /// Waits while the run is paused; false when the run (or `until`) ended meanwhile.
    async fn unpaused(&self, until: Option<Instant>) -> bool {
        let Some(mut rx) = self.pause.clone() else {
            return true;
        };
        loop {
            if !*rx.borrow_and_update() {
                return !self.stopped();
            }
            let end = match (self.deadline, until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let end = async move {
                match end {
                    Some(e) => tokio::time::sleep_until(e.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return !self.stopped() },
                _ = self.cancel.cancelled() => return false,
                _ = end => return false,
            }
        }
    }

    fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn client(&self) -> client::VuClient {
        client::VuClient::new(self.tls.clone(), self.timeout).with_socket_options(self.socket)
    }

    /// A pooled connection for an open-model iteration.
    fn take_client(&self) -> client::VuClient {
        self.idle_clients
            .lock()
            .expect("client pool lock")
            .pop()
            .unwrap_or_else(|| self.client())
    }

    fn return_client(&self, c: client::VuClient) {
        self.idle_clients.lock().expect("client pool lock").push(c);
    }

    /// The variables of the test's own hooks (`vu_id` 0): those every scenario starts with alike
    /// (the test's `global.variables`, merged into each scenario when it was loaded).
    fn outside_vars(&self) -> template::Vars {
        let mut values = self.variables.first().cloned().unwrap_or_default();
        values.retain(|k, v| self.variables.iter().all(|m| m.get(k) == Some(v)));
        let templated = template::Vars::templates_of(&values);
        self.initial_vars_of(0, values, templated)
    }

    /// Adds what `beforeTest` left in its variables to every scenario's starting variables (a
    /// scenario's variable of the same name is replaced, and is no longer a template).
    fn starts_with(&mut self, set: &std::collections::HashMap<String, String>) {
        if set.is_empty() {
            return;
        }
        for (values, templated) in self.variables.iter_mut().zip(&mut self.templated) {
            values.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            *templated = Arc::new(
                templated
                    .iter()
                    .filter(|(k, _)| !set.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
        }
    }

    fn initial_vars(&self, scenario: usize, vu: u64) -> template::Vars {
        self.initial_vars_of(
            vu,
            self.variables[scenario].clone(),
            self.templated[scenario].clone(),
        )
    }

    fn initial_vars_of(
        &self,
        vu: u64,
        values: std::collections::HashMap<String, String>,
        templated: Arc<std::collections::HashMap<String, (String, config::template::Template)>>,
    ) -> template::Vars {
        template::Vars {
            vu,
            seed: self.test.global.faker.as_ref().and_then(|f| f.seed),
            values,
            templated,
            locale: self
                .test
                .global
                .faker
                .as_ref()
                .and_then(|f| f.locale.as_deref())
                .and_then(|l| config::faker::Locale::parse(l).ok())
                .unwrap_or_default(),
            js: crate::script::Slot::new(self.run_id.clone()),
            ..Default::default()
        }
    }
}

/// Names of the steps that make samples in the order the engine numbers them: the HTTP steps,
/// then the `custom`/`script` steps.
pub fn step_names(test: &TestFile) -> Vec<String> {
    let steps = || test.scenarios.iter().flat_map(|s| s.steps.iter());
    steps()
        .filter(|st| matches!(st, Step::Http(_)))
        .chain(steps().filter(|st| matches!(st, Step::Script(_))))
        .map(|st| st.name().to_string())
        .collect()
}

/// Compiles every script of the test without running it: the first syntax error, with its file
/// (or key) and line.
pub fn check_scripts(test: &TestFile) -> Result<(), crate::script::ScriptError> {
    scripting::check(test)
}

fn prepared(test: &TestFile, compiled: &[config::CompiledStep]) -> Vec<Option<client::Prepared>> {
    let target = http::Target {
        base_url: test.global.base_url.as_deref(),
    };
    test.scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .filter_map(|st| match st {
            Step::Http(h) => Some(h),
            _ => None,
        })
        .zip(compiled)
        .map(|(h, c)| http::prepare(&target, h, c))
        .collect()
}

fn step_ids(test: &TestFile) -> Vec<Vec<Option<usize>>> {
    let mut next = 0;
    test.scenarios
        .iter()
        .map(|s| {
            s.steps
                .iter()
                .map(|st| {
                    matches!(st, Step::Http(_)).then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect()
        })
        .collect()
}

/// Runs the test to the end (or until stopped) and returns its numbers.
pub async fn run(test: Arc<TestFile>, opts: Options) -> Result<Outcome, EngineError> {
    run_from(test, opts, None).await
}

/// [`run`] with the schedule timed from `origin` (`distributed.orchestration.synchronization.
/// phase_synchronization`): VU starts, stepping levels and arrivals are due at `origin` plus their
/// offset, and each phase of a list starts at `origin` plus the durations of the phases before it,
/// instead of when the engine is built or the previous phase drains. Offsets already past when the
/// engine is ready are run at once. `None`: timed from when the engine is ready.
pub async fn run_from(
    test: Arc<TestFile>,
    opts: Options,
    origin: Option<Instant>,
) -> Result<Outcome, EngineError> {
    let names = step_names(&test);
    config::runnable(&test)?;
    scripting::check(&test).map_err(|e| EngineError::Invalid(config::Invalid(e.0)))?;
    let mut compiled = config::compile(&test)?;
    let compiled_thresholds = test
        .scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .filter_map(|st| match st {
            Step::Http(h) => Some(
                h.options
                    .thresholds
                    .iter()
                    .map(|t| t.compile().map_err(config::Invalid))
                    .collect::<Result<Vec<_>, _>>(),
            ),
            _ => None,
        })
        .collect::<Result<Vec<_>, _>>()?;
    let feeders = test
        .scenarios
        .iter()
        .map(|s| {
            s.csv_data
                .as_ref()
                .map(|c| {
                    data::Feeder::load(c, s.csv_mode.as_deref()).map_err(|source| {
                        EngineError::Data {
                            scenario: s.name.clone(),
                            source,
                        }
                    })
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = Duration::from_millis(test.global.timeout.max(1));
    let tls = client::tls_config().map_err(EngineError::Tls)?;
    soap::resolve(&mut compiled.steps, tls.clone(), timeout)
        .await
        .map_err(EngineError::Soap)?;
    let state = match test
        .distributed
        .as_ref()
        .and_then(|d| d.data_consistency.as_ref())
        .and_then(|d| d.state_management.as_ref())
        .filter(|s| s.on())
    {
        Some(cfg) if cfg.state_backend.as_deref() != Some("redis") => {
            Some(state::State::Leased(opts.leases.clone().unwrap_or_else(
                || {
                    // No controller: this process holds the counters.
                    Arc::new(leases::Leases::local())
                },
            )))
        }
        Some(cfg) => {
            let run_id = opts
                .run_id
                .clone()
                .unwrap_or_else(|| format!("local-{}", uuid::Uuid::new_v4().simple()));
            Some(state::State::Redis(
                state::Redis::connect(cfg, &run_id)
                    .await
                    .map_err(EngineError::State)?,
            ))
        }
        None => None,
    };
    let state_refs = test
        .scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .filter(|st| matches!(st, Step::Http(_)))
        .map(config::step_state_refs)
        .collect();
    let mut scripts = scripting::Scripts::build(
        &test,
        test.scenarios
            .iter()
            .flat_map(|s| &s.steps)
            .filter(|st| matches!(st, Step::Http(_)))
            .count(),
    )
    .map_err(|e| EngineError::Invalid(config::Invalid(e)))?;
    if let Some(s) = &mut scripts {
        let mut hook_requests: Vec<_> = s.hook_requests().map(std::mem::take).collect();
        soap::resolve(&mut hook_requests, tls.clone(), timeout)
            .await
            .map_err(EngineError::Soap)?;
        for (slot, c) in s.hook_requests().zip(hook_requests) {
            *slot = c;
        }
    }
    let gauges = Arc::new(Gauges::default());
    let live = opts
        .live
        .unwrap_or_else(|| watch::channel(Live::default()).0);
    // The test's own hooks make no samples: while they run, `samples` is a recorder nobody reads,
    // so the run's clock (its seconds, its rate) starts after `beforeTest` and stops before
    // `teardownTest`.
    let unread = || {
        let live = watch::channel(Live::default()).0;
        Collector::new(names.len(), Arc::new(Gauges::default()), None, live).1
    };
    let mut shared = Shared {
        picker: Picker::new(test.scenarios.iter().map(|s| s.weight).collect()),
        step_ids: step_ids(&test),
        prepared: prepared(&test, &compiled.steps),
        compiled: compiled.steps,
        templated: compiled
            .variables
            .iter()
            .map(template::Vars::templates_of)
            .collect(),
        variables: compiled.variables,
        // Set once `beforeTest` ran (see below), so the hook's time is not taken from the load's.
        deadline: None,
        test: test.clone(),
        tls,
        timeout,
        idle_clients: Default::default(),
        feeders,
        rendezvous: opts.rendezvous.unwrap_or_default(),
        globals: opts
            .globals
            .unwrap_or_else(|| Arc::new(globals::Globals::for_test(&test))),
        state,
        socket: test
            .distributed
            .as_ref()
            .and_then(|d| d.performance.as_ref())
            .map(|p| p.socket_options())
            .filter(|o| *o != Default::default()),
        state_refs,
        samples: unread(),
        gauges: gauges.clone(),
        cancel: opts.stop,
        compiled_thresholds,
        threshold_logs: Default::default(),
        failures: Default::default(),
        aborted: Default::default(),
        debug: test.global.debug.clone().filter(|d| d.captures()),
        captured: Default::default(),
        pause: opts.pause,
        scripts,
        run_id: opts.run_id.clone().unwrap_or_else(|| "local".into()).into(),
    };
    // The test's own hooks (`hooks:`) run here, outside any VU, in a context of their own.
    let role = opts.test_hooks;
    let hooks_only = matches!(role, TestHookRole::Before | TestHookRole::After { .. });
    let mut own = shared
        .scripts
        .as_ref()
        .filter(|s| s.test.any() && !matches!(role, TestHookRole::Load { .. }))
        .map(|_| (shared.outside_vars(), shared.client()));
    let mut before_failed = None;
    let mut test_variables = std::collections::HashMap::new();
    if let TestHookRole::Load { variables } = &role {
        shared.starts_with(variables);
    }
    if let (Some((vars, _)), TestHookRole::After { variables, .. }) = (&mut own, &role) {
        vars.values
            .extend(variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    } else if let (Some((vars, client)), Some(all)) = (&mut own, &shared.scripts) {
        let target = http::Target {
            base_url: test.global.base_url.as_deref(),
        };
        let start = vars.values.clone();
        let io = &mut scripting::Io {
            shared: &shared,
            client,
            target: &target,
        };
        before_failed = scripting::before_test(all, vars, io).await.err();
        test_variables = vars
            .values
            .iter()
            .filter(|(k, v)| start.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        shared.starts_with(&test_variables);
    }
    let (collector, samples) = Collector::new(names.len(), gauges, opts.sink, live);
    if let Some(raw) = &opts.raw {
        samples.spool(raw);
    }
    let collecting = tokio::spawn(collector.run());
    shared.samples = samples;
    shared.deadline =
        schedule::duration(&test.load).map(|d| origin.unwrap_or_else(Instant::now) + d);
    let mut shared = Arc::new(shared);
    match &test.load {
        _ if before_failed.is_some() || hooks_only => {}
        Load::Phases(phases) => {
            let offsets = origin.and_then(|_| schedule::phase_offsets(phases));
            for (k, p) in phases.iter().enumerate() {
                if shared.stopped() {
                    break;
                }
                if let Some(name) = &p.name {
                    tracing::info!(phase = %name, "load phase");
                }
                let at = origin.zip(offsets.as_ref()).map(|(o, offs)| o + offs[k]);
                run_load(shared.clone(), &p.load, at).await;
            }
        }
        load => run_load(shared.clone(), load, origin).await,
    }
    if own.is_some() {
        // Every VU has ended: the run's recorder is let go, so its clock stops here (a clone
        // still held somewhere only keeps it open until `teardownTest` ends).
        if let Some(s) = Arc::get_mut(&mut shared) {
            s.samples = unread();
        }
    }
    // `Before` runs the after-hooks only when `beforeTest` failed (the run ends there).
    let after_due = !matches!(role, TestHookRole::Before) || before_failed.is_some();
    if let (Some((vars, client)), Some(all), true) = (&mut own, &shared.scripts, after_due) {
        let target = http::Target {
            base_url: test.global.base_url.as_deref(),
        };
        let mut why: Vec<String> = before_failed.iter().cloned().collect();
        if let TestHookRole::After { failures, .. } = &role {
            why.extend(failures.iter().cloned());
        }
        why.extend(
            shared
                .failures
                .lock()
                .expect("failures lock")
                .iter()
                .cloned(),
        );
        let io = &mut scripting::Io {
            shared: &shared,
            client,
            target: &target,
        };
        for e in scripting::after_test(all, vars, io, &why).await {
            shared.fail(e);
        }
    }
    drop(own);
    if let Some(e) = before_failed {
        drop(shared);
        let _ = collecting.await;
        return Err(EngineError::BeforeTest(e));
    }
    let failures = std::mem::take(&mut *shared.failures.lock().expect("failures lock"));
    let aborted = shared.aborted.load(std::sync::atomic::Ordering::Relaxed);
    let captured = std::mem::take(&mut *shared.captured.lock().expect("captures lock"));
    drop(shared);
    let totals = collecting.await.expect("the collector task does not panic");
    Ok(Outcome {
        step_names: names,
        totals,
        failures,
        aborted,
        test_variables,
        captured,
    })
}

/// Runs one load pattern (a whole test, or one phase) to its end.
async fn run_load(shared: Arc<Shared>, load: &Load, origin: Option<Instant>) {
    match load {
        Load::Arrivals {
            rate,
            duration,
            shape,
            ..
        } => {
            let vus = max_vus(load);
            arrivals::run(shared, *rate, *duration, shape, vus, origin).await
        }
        load => run_closed(shared, load, origin).await,
    }
}

/// Starts every VU at its offset, stops it at its own end or the pattern's, and waits for all.
async fn run_closed(shared: Arc<Shared>, load: &Load, origin: Option<Instant>) {
    let iterations = match load {
        Load::Basic {
            iterations,
            duration,
            ..
        } => iterations.or(if duration.is_none() { Some(1) } else { None }),
        _ => None,
    };
    let start = origin.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std);
    let end = schedule::duration(load).map(|d| start.into_std() + d);
    let tasks: Vec<_> = schedule::vu_windows(load)
        .into_iter()
        .enumerate()
        // A VU due at or after the end never starts (a ramp longer than `--duration`): waiting for
        // its start would only keep the run open with nothing to do.
        .filter(|(_, (offset, _))| end.is_none_or(|e| start.into_std() + *offset < e))
        .map(|(i, (offset, stop))| {
            let shared = shared.clone();
            let until = match (stop.map(|s| start.into_std() + s), end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep_until(start + offset) => {}
                    _ = shared.cancel.cancelled() => return,
                }
                if !shared.stopped() && until.is_none_or(|u| Instant::now() < u) {
                    vu::run_closed(shared, i as u64, iterations, until).await;
                }
            })
        })
        .collect();
    drop(shared);
    for t in tasks {
        let _ = t.await;
    }
}

/// The most VUs a load pattern runs at once.
pub fn max_vus(load: &Load) -> u64 {
    match load {
        Load::Basic { virtual_users, .. } => *virtual_users,
        Load::Stepping {
            start_users,
            max_users,
            ..
        } => (*start_users).max(*max_users),
        Load::Levels { levels } => levels.iter().map(|l| l.users).max().unwrap_or(0),
        Load::Arrivals {
            max_virtual_users,
            preallocation,
            rate,
            shape,
            ..
        } => max_virtual_users.or(*preallocation).unwrap_or_else(|| {
            let busy = shape
                .vu_duration
                .map_or(10.0, |d| d.as_secs_f64() * 1.5 + 1.0);
            ((rate * busy).ceil().min(config::MAX_VUS as f64) as u64).clamp(100, config::MAX_VUS)
        }),
        Load::Phases(ps) => ps.iter().map(|p| max_vus(&p.load)).max().unwrap_or(0),
    }
}

/// Assigns scenarios to VUs in exact proportion to their weights, interleaved (smooth weighted
/// round robin over one cycle), so 10 VUs at weights 50/25/25 get 5/3/2 rather than a random mix.
struct Picker {
    cycle: Vec<usize>,
}

impl Picker {
    fn new(weights: Vec<u32>) -> Self {
        let g = weights
            .iter()
            .copied()
            .filter(|w| *w > 0)
            .fold(0, gcd)
            .max(1);
        let reduced: Vec<i64> = weights.iter().map(|w| i64::from(*w / g)).collect();
        let total: i64 = reduced.iter().sum();
        let mut current = vec![0i64; reduced.len()];
        let cycle = (0..total.clamp(1, 100_000))
            .map(|_| {
                for (c, w) in current.iter_mut().zip(&reduced) {
                    *c += w;
                }
                let best = (0..current.len())
                    .max_by_key(|&i| (current[i], -(i as i64)))
                    .unwrap_or(0);
                current[best] -= total;
                best
            })
            .collect();
        Self { cycle }
    }

    fn pick(&self, vu: u64) -> usize {
        self.cycle[(vu % self.cycle.len() as u64) as usize]
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::Picker;

    #[test]
    fn picker_follows_weights_exactly() {
        let p = Picker::new(vec![50, 25, 25]);
        let mut counts = [0; 3];
        for vu in 0..400 {
            counts[p.pick(vu)] += 1;
        }
        assert_eq!(counts, [200, 100, 100]);
        let p = Picker::new(vec![100]);
        assert_eq!(p.pick(5), 0);
        let p = Picker::new(vec![0, 3]);
        assert!((0..10).all(|vu| p.pick(vu) == 1));
    }
}
