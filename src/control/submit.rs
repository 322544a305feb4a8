//! Turning a test and a worker list into a new [`RunRecord`]: the plan (each worker's share), the
//! settings from the test's `distributed:` block and the command line, and the CSV rows inlined.

use super::plan::{self, Strategy};
use super::run::{Phase, RunRecord, Settings, WorkerRun, WorkerState};
use super::workers::WorkerAddr;
use crate::config::{Load, TestFile};
use crate::engine;
use crate::time::now_ms;
use std::time::Duration;

fn ms(d: Option<Duration>, default_ms: u64) -> u64 {
    d.map(|d| d.as_millis() as u64).unwrap_or(default_ms)
}

/// Settings from the test's `distributed:` block; `sync_start` from the command line wins when set.
pub fn settings(test: &TestFile, sync_start: bool) -> Settings {
    let d = test.distributed.clone().unwrap_or_default();
    let coord = d.coordination.unwrap_or_default();
    let orch = d.orchestration.unwrap_or_default();
    let handling = orch.failure_handling.clone().unwrap_or_default();
    let failures = d
        .fault_tolerance
        .as_ref()
        .and_then(|f| f.worker_failures.clone())
        .unwrap_or_default();
    let balancing = d.load_balancing.clone().unwrap_or_default();
    let heartbeat_ms = ms(
        orch.heartbeat_interval.or(balancing.health_interval()),
        5_000,
    );
    let sync = orch.synchronization.clone().unwrap_or_default();
    let geo = d
        .geographic
        .as_ref()
        .and_then(|g| g.coordination.clone())
        .unwrap_or_default();
    let partitions = d
        .fault_tolerance
        .as_ref()
        .and_then(|f| f.network_partitions.clone())
        .unwrap_or_default();
    let degrade = failures.graceful_degradation.clone().unwrap_or_default();
    Settings {
        sync_start: sync_start
            || coord.synchronized_start.unwrap_or(false)
            || geo.synchronized_start.unwrap_or(false)
            || sync.start_barrier.unwrap_or(false)
            || sync.phase_synchronization.unwrap_or(false),
        heartbeat_ms,
        detection_timeout_ms: ms(
            failures
                .detection_timeout
                .or(partitions.detection_timeout)
                .or(balancing.health_timeout()),
            3 * heartbeat_ms,
        ),
        coordination_timeout_ms: ms(orch.coordination_timeout, 60_000),
        failure_threshold_pct: handling
            .worker_failure_threshold
            .or(failures.max_failure_rate)
            .unwrap_or(20.0),
        continue_on_partial_failure: handling
            .continue_on_partial_failure
            .or(handling.graceful_degradation)
            .or(degrade.enabled)
            .unwrap_or(true),
        load_redistribution: failures
            .recovery
            .as_ref()
            .and_then(|r| r.load_redistribution)
            .or(balancing.redistribute())
            .unwrap_or(false),
        start_delay_ms: 5_000,
        time_skew_tolerance_ms: coord
            .time_skew_tolerance
            .or(geo.time_skew_tolerance)
            .map(|d| d.as_millis() as u64),
        clock_sync: sync.clock_sync.unwrap_or(true),
        min_workers: degrade.min_workers_threshold.unwrap_or(0),
        scale_down_load: degrade.scale_down_load.unwrap_or(false),
        auto_reconnect: partitions
            .recovery
            .and_then(|r| r.auto_reconnect)
            .unwrap_or(true),
        auto_restart: failures
            .recovery
            .as_ref()
            .and_then(|r| r.auto_restart)
            .unwrap_or(false),
        replacements: test
            .distributed
            .as_ref()
            .map_or(0, |d| crate::config::balancing::replacements(d).limit()),
    }
}

/// The masters a run is submitted to, as `fault_tolerance.master_failure` is checked against them.
#[derive(Debug, Clone, Copy)]
pub struct Masters {
    /// Replicas in the cluster (1 for `perfornium distributed`'s embedded master).
    pub replicas: usize,
    /// The cluster's election timeout, upper bound (0: no elections, a single master).
    pub election_max_ms: u64,
}

/// `distributed.fault_tolerance.master_failure` against the masters that take the run: with
/// `high_availability: true` there must be a replica cluster (3 or more masters, so a majority
/// survives one loss); `failover.backup_masters` must be the replica count minus one; the
/// cluster's election timeout must not exceed `failover.election_timeout`. (`election_algorithm`,
/// `state_persistence` are checked when the test is read.)
pub fn check_masters(test: &TestFile, masters: Masters) -> Result<(), String> {
    match test
        .distributed
        .as_ref()
        .and_then(|d| d.fault_tolerance.as_ref())
        .and_then(|f| f.master_failure.as_ref())
    {
        Some(m) => check_master_failure(m, masters),
        None => Ok(()),
    }
}

/// One `master_failure` block against the masters (a test's, or a replica's own `--config`).
pub fn check_master_failure(
    m: &crate::config::MasterFailure,
    masters: Masters,
) -> Result<(), String> {
    let at = "distributed.fault_tolerance.master_failure";
    let n = masters.replicas;
    if m.high_availability == Some(true) && n < 3 {
        return Err(format!(
            "{at}.high_availability: needs a replica cluster of 3 or more masters (`perfornium master --peers`), but this run goes to {n} master{}",
            if n == 1 { " (`perfornium distributed` runs one, embedded)" } else { "s" }
        ));
    }
    let f = m.failover.clone().unwrap_or_default();
    if let Some(b) = f.backup_masters {
        if b as usize + 1 != n {
            return Err(format!(
                "{at}.failover.backup_masters: {b}, but the cluster taking this run has {n} master{} ({} backup{})",
                if n == 1 { "" } else { "s" },
                n.saturating_sub(1),
                if n == 2 { "" } else { "s" }
            ));
        }
    }
    if let Some(t) = f.election_timeout {
        if masters.election_max_ms as u128 > t.as_millis() {
            return Err(format!(
                "{at}.failover.election_timeout: {} ms, but this cluster's elections may take up to {} ms (`perfornium master --raft-election-ms`)",
                t.as_millis(),
                masters.election_max_ms
            ));
        }
    }
    Ok(())
}

/// True when a share gives a worker nothing to do.
fn is_empty(load: &Load) -> bool {
    plan::units(load) == 0
}

/// Why a run could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A scenario's CSV file could not be read.
    #[error(transparent)]
    Data(#[from] crate::engine::data::CsvError),
    /// The load cannot be split across these workers.
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    /// A `ts+` worker reached a controller that has no adapter for it (a master's submission).
    #[error("worker {0}: a TypeScript tool's worker is driven only by `perfornium distributed` or `run -w` (their controller runs its adapter); a master cannot drive it")]
    TsWorker(String),
}

/// How the load is split, and who said so: the command line's `-s` (or a submission's `strategy`)
/// wins over the test; otherwise `distributed.strategy`, then `distributed.distribution` (exact
/// counts), then `distributed.weights`, then `capacity_based`. When the command line wins, the test's
/// maps are dropped from the run's copy of the test, so every later split (a redistribution) follows
/// the same rule. Returns the strategy the plan falls back to and the rule's name for the plan text.
pub fn resolve_split(cli: Option<Strategy>, test: &mut TestFile) -> (Strategy, String) {
    use crate::config::SplitStrategy as S;
    if let Some(s) = cli {
        if let Some(d) = &mut test.distributed {
            let regions = d.geographic.as_ref().is_some_and(|g| g.active());
            let overridden =
                d.distribution.is_some() || d.weights.is_some() || d.strategy.is_some() || regions;
            d.distribution = None;
            d.weights = None;
            d.strategy = None;
            if let Some(g) = d.geographic.as_mut().filter(|_| regions) {
                g.enabled = Some(false);
            }
            if overridden {
                return (s, format!("{s}, from the command line over the test's"));
            }
        }
        return (s, s.to_string());
    }
    let d = test.distributed.as_ref();
    let by_map = |name: &str| (Strategy::CapacityBased, name.to_string());
    if d.and_then(|d| d.geographic.as_ref())
        .is_some_and(|g| g.active())
    {
        return (
            Strategy::Geographic,
            "geographic, by the regions' load_percentage".into(),
        );
    }
    match d.and_then(|d| d.strategy) {
        Some(S::Weighted) => by_map("weighted"),
        Some(S::Custom) => by_map("custom"),
        Some(S::Even) => (Strategy::Even, "even".into()),
        Some(S::Geographic) => (Strategy::Geographic, "geographic".into()),
        Some(S::CapacityBased) => (Strategy::CapacityBased, "capacity_based".into()),
        Some(S::RoundRobin) => (Strategy::RoundRobin, "round_robin".into()),
        None if d.is_some_and(|d| d.distribution.is_some()) => by_map("custom"),
        None if d.is_some_and(|d| d.weights.is_some()) => by_map("weighted"),
        None => (Strategy::CapacityBased, "capacity_based".into()),
    }
}

/// A new run record in phase `Submitted`; `strategy` is the command line's, if it gave one.
pub fn new_record(
    id: String,
    mut test: TestFile,
    workers: &[WorkerAddr],
    strategy: Option<Strategy>,
    sync_start: bool,
) -> Result<RunRecord, SubmitError> {
    if let Some(w) = workers.iter().find(|w| super::ts_worker::is_ts(w)) {
        return Err(SubmitError::TsWorker(w.addr()));
    }
    super::data::inline_rows(&mut test)?;
    let (strategy, split) = resolve_split(strategy, &mut test);
    let shares = plan::shares(&test.load, workers, strategy, test.distributed.as_ref())?;
    let step_names = engine::step_names(&test);
    let runs = workers
        .iter()
        .zip(shares)
        .map(|(addr, load)| WorkerRun {
            addr: addr.clone(),
            state: if is_empty(&load) {
                WorkerState::Idle
            } else {
                WorkerState::Pending
            },
            load,
            last_seq: 0,
            merged: vec![Default::default(); step_names.len()],
            results: None,
            offset: None,
            started_at_ms: None,
            last_seen_ms: now_ms(),
            error: None,
            live: Default::default(),
            csv_rows: Default::default(),
            extra_units: 0,
            redistributed: false,
            scaled_down: false,
            restarted_as: None,
            restart_of: None,
            replacement: false,
            late: None,
            monitor: Default::default(),
            short_units: 0,
        })
        .collect();
    Ok(RunRecord {
        id,
        feed: super::stream::Feed::for_test(&test),
        settings: settings(&test, sync_start),
        test,
        strategy,
        split,
        phase: Phase::Submitted,
        workers: runs,
        step_names,
        start_at_ms: None,
        skew_ms: None,
        timeline: Vec::new(),
        pending: Default::default(),
        pending_arrivals: Default::default(),
        created_ms: now_ms(),
        finished_ms: None,
        events: Vec::new(),
        stop_requested: false,
        event_seconds: Vec::new(),
        worker_points: Vec::new(),
        control: None,
        monitoring: Default::default(),
        pool: None,
        test_hooks: None,
    })
}

/// A fresh run id: time-ordered, unique.
pub fn run_id() -> String {
    format!(
        "run-{}-{}",
        now_ms(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::workers::parse_list;

    fn test_with(distributed: &str) -> TestFile {
        crate::config::from_str(&format!(
            "name: t\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: 10\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n{distributed}"
        ))
        .unwrap()
    }

    fn vus(rec: &RunRecord) -> Vec<u64> {
        rec.workers.iter().map(|w| plan::units(&w.load)).collect()
    }

    const TWO: &str = "127.0.0.1:1,127.0.0.1:2";

    #[test]
    fn the_tests_strategy_splits_when_the_command_line_says_nothing() {
        let weighted = test_with(
            "distributed:\n  strategy: weighted\n  weights:\n    127.0.0.1:1: 4\n    127.0.0.1:2: 1\n",
        );
        let rec = new_record("r".into(), weighted, &parse_list(TWO).unwrap(), None, false).unwrap();
        assert_eq!(vus(&rec), vec![8, 2]);
        assert!(
            plan::text(&rec).contains("(weighted strategy"),
            "{}",
            plan::text(&rec)
        );
        let even = test_with("distributed:\n  strategy: round_robin\n");
        let rec = new_record("r".into(), even, &parse_list(TWO).unwrap(), None, false).unwrap();
        assert_eq!(
            (rec.strategy, rec.split.as_str()),
            (Strategy::RoundRobin, "round_robin")
        );
    }

    #[test]
    fn the_command_line_turns_the_regions_off_and_the_view_carries_them_otherwise() {
        let geo = "distributed:\n  geographic:\n    regions:\n      - { name: a, workers: [worker-1], load_percentage: 70, timezone: Europe/Paris }\n      - { name: b, workers: [worker-2], load_percentage: 30 }\n";
        let rec = new_record(
            "r".into(),
            test_with(geo),
            &parse_list(TWO).unwrap(),
            None,
            false,
        )
        .unwrap();
        assert_eq!(vus(&rec), vec![7, 3]);
        let view = rec.view(1);
        assert_eq!(view.regions.len(), 2);
        assert_eq!(view.regions[0].timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(view.regions[0].planned_units, 7);
        assert!(
            plan::text(&rec).contains("timezone Europe/Paris"),
            "{}",
            plan::text(&rec)
        );
        let rec = new_record(
            "r".into(),
            test_with(geo),
            &parse_list(TWO).unwrap(),
            Some(Strategy::Even),
            false,
        )
        .unwrap();
        assert_eq!(vus(&rec), vec![5, 5]);
        assert!(rec.view(1).regions.is_empty());
        assert!(plan::text(&rec).contains("from the command line"));
    }

    #[test]
    fn load_distributed_is_the_same_setting_as_the_top_level_block() {
        let base = "name: t\nglobal:\n  base_url: http://127.0.0.1:9\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n";
        let load = "load:\n  pattern: basic\n  virtual_users: 10\n  duration: 1s\n  distributed:\n    strategy: custom\n    distribution: { worker-1: 9, worker-2: 1 }\n";
        let t = crate::config::from_str(&format!("{base}{load}")).unwrap();
        let rec = new_record("r".into(), t, &parse_list(TWO).unwrap(), None, false).unwrap();
        assert_eq!(vus(&rec), vec![9, 1]);
        let e = crate::config::from_str(&format!("{base}{load}distributed:\n  strategy: custom\n  distribution: {{ worker-1: 5, worker-2: 5 }}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`load.distributed.distribution`") && e.contains("different values"),
            "{e}"
        );
        let phases = "load:\n  - pattern: basic\n    virtual_users: 1\n    duration: 1s\n    distributed: { strategy: even }\n";
        let e = crate::config::from_str(&format!("{base}{phases}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`distributed` in a load phase"), "{e}");
    }

    #[test]
    fn the_command_line_wins_and_the_runs_copy_drops_the_tests_maps() {
        let weighted = test_with(
            "distributed:\n  strategy: weighted\n  weights:\n    127.0.0.1:1: 4\n    127.0.0.1:2: 1\n",
        );
        let rec = new_record(
            "r".into(),
            weighted,
            &parse_list(TWO).unwrap(),
            Some(Strategy::Even),
            false,
        )
        .unwrap();
        assert_eq!(vus(&rec), vec![5, 5]);
        let d = rec.test.distributed.as_ref().unwrap();
        assert!(d.weights.is_none() && d.strategy.is_none());
        assert!(
            plan::text(&rec).contains("from the command line"),
            "{}",
            plan::text(&rec)
        );
    }

    #[test]
    fn contradictory_or_incomplete_strategies_are_refused_by_name() {
        let base = "name: t\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: 10\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n";
        for (block, says) in [
            (
                "distributed:\n  strategy: weighted\n",
                "needs `distributed.weights`",
            ),
            (
                "distributed:\n  strategy: custom\n",
                "needs `distributed.distribution`",
            ),
            (
                "distributed:\n  strategy: even\n  weights:\n    a: 1\n",
                "would not use `distributed.weights`",
            ),
            (
                "distributed:\n  strategy: fastest\n",
                "unknown variant `fastest`",
            ),
        ] {
            let e = crate::config::from_str(&format!("{base}{block}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{block}: {e}");
        }
    }
}
