//! How a test's load is split across workers.
//!
//! One invariant holds everywhere: every unit of load (a VU, or a milli-arrival per second) goes to
//! exactly one worker, so the shares add up to the total. Remainders go to the first workers in list
//! order, which keeps plans predictable; a worker with no capacity given counts as capacity 100.

use super::run::RunRecord;
use super::workers::WorkerAddr;
use crate::api::master::LoadUnit;
pub use crate::config::Strategy;
use crate::config::{Distributed, Load};
use thiserror::Error;

/// Why the load could not be split.
#[derive(Debug, Error)]
pub enum PlanError {
    /// There is nothing to split the load across.
    #[error("no workers to split the load across; give at least one worker")]
    NoWorkers,
    /// A `distributed.distribution` or `distributed.weights` key names nothing known.
    #[error("distributed.{field}: `{key}` names no {what}; use one of: {known}")]
    UnknownKey {
        field: &'static str,
        key: String,
        what: &'static str,
        known: String,
    },
    /// Two keys of the same map cover the same worker.
    #[error(
        "distributed.{field}: `{key}` and `{other}` both cover worker {worker}; keep only one"
    )]
    NamedTwice {
        field: &'static str,
        key: String,
        other: String,
        worker: String,
    },
    /// `distributed.distribution` does not add up to the load's VUs.
    #[error("distributed.distribution gives {sum} VUs in all but the load has {total}; make the counts add up to {total}")]
    DistributionSum { sum: u64, total: u64 },
    /// Every weight is zero.
    #[error("distributed.weights are all 0; give at least one worker or region a positive weight")]
    ZeroWeights,
    /// An arrival rate that cannot be split.
    #[error("load.rate must be a positive, finite number of arrivals per second, got {rate}")]
    BadRate { rate: f64 },
    /// A region of `distributed.geographic` covers no worker.
    #[error("distributed.geographic: region `{region}` has no workers: {why}")]
    EmptyRegion { region: String, why: String },
    /// A share is over its worker's `capacity.max_vus` / `max_rps`.
    #[error("the plan does not fit the workers' capacity: {0}")]
    OverCapacity(String),
    /// Two settings of the test decide the same thing.
    #[error("{0}")]
    Conflict(String),
    /// No worker is left to take over a failed worker's share.
    #[error("every worker has failed; no worker is left to take over the load")]
    NoSurvivors,
}

/// Splits `total` units among workers by `strategy`: one entry per worker, summing to `total`
/// (an empty list when there are no workers).
pub fn split(total: u64, workers: &[WorkerAddr], strategy: Strategy) -> Vec<u64> {
    let n = workers.len();
    match strategy {
        Strategy::Even => even(total, n),
        Strategy::RoundRobin => round_robin(total, n),
        Strategy::CapacityBased => capacity_based(total, workers),
        Strategy::Geographic => spread(total, &region_groups(workers), n),
    }
}

/// `total / n` each, the remainder one each to the first workers.
fn even(total: u64, n: usize) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    let (base, rem) = (total / n as u64, total % n as u64);
    (0..n as u64).map(|i| base + u64::from(i < rem)).collect()
}

/// How many of the units 0..total have `k % n == i`: whole rounds, plus one if the last partial
/// round reaches worker i.
fn round_robin(total: u64, n: usize) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    let rounds = total / n as u64;
    let last = total % n as u64;
    (0..n as u64)
        .map(|i| rounds + u64::from(i < last))
        .collect()
}

fn capacity_based(total: u64, workers: &[WorkerAddr]) -> Vec<u64> {
    let caps: Vec<u64> = workers.iter().map(|w| u64::from(w.capacity)).collect();
    proportional(total, &caps)
}

/// `floor(total * w_i / sum)` each, then the leftover one each to the first entries with a non-zero
/// weight (cycling). All weights zero: an even split, so the sum still holds.
pub(crate) fn proportional(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return even(total, weights.len());
    }
    let mut out: Vec<u64> = weights
        .iter()
        .map(|&w| floor_share(total, w, sum))
        .collect();
    let leftover = total - out.iter().sum::<u64>();
    let takers: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    for &i in takers.iter().cycle().take(leftover as usize) {
        out[i] += 1;
    }
    out
}

fn floor_share(total: u64, weight: u64, sum: u128) -> u64 {
    // weight <= sum, so the quotient is at most `total` and fits.
    (u128::from(total) * u128::from(weight) / sum) as u64
}

/// Workers that share one weight: a region, or a single worker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    key: String,
    weight: u64,
    /// Indexes into the worker list, ascending.
    members: Vec<usize>,
}

/// Splits `total` across groups by weight, then evenly within each group. Groups are in the order
/// of their first member, so remainders go to the first workers of the list.
fn spread(total: u64, groups: &[Group], n: usize) -> Vec<u64> {
    let weights: Vec<u64> = groups.iter().map(|g| g.weight).collect();
    let mut out = vec![0; n];
    for (g, part) in groups.iter().zip(proportional(total, &weights)) {
        for (&i, v) in g.members.iter().zip(even(part, g.members.len())) {
            out[i] = v;
        }
    }
    out
}

/// One group per region, in order of first appearance, each with weight 1.
fn region_groups(workers: &[WorkerAddr]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        match groups.iter_mut().find(|g| g.key == w.region) {
            Some(g) => g.members.push(i),
            None => groups.push(Group {
                key: w.region.clone(),
                weight: 1,
                members: vec![i],
            }),
        }
    }
    groups
}

/// The rule a test's `distributed` block and the strategy amount to.
enum Rule {
    /// No explicit map: the strategy.
    Strategy(Strategy),
    /// `distribution`: exact VU counts, and their proportions for anything else that is split.
    Counts(Vec<u64>),
    /// `weights`: weighted groups.
    Weights(Vec<Group>),
}

impl Rule {
    fn new(
        workers: &[WorkerAddr],
        strategy: Strategy,
        dist: Option<&Distributed>,
    ) -> Result<Rule, PlanError> {
        if workers.is_empty() {
            return Err(PlanError::NoWorkers);
        }
        if let Some(map) = dist.and_then(|d| d.distribution.as_ref()) {
            return distribution_counts(map, workers).map(Rule::Counts);
        }
        if let Some(map) = dist.and_then(|d| d.weights.as_ref()) {
            return weight_groups(map, workers).map(Rule::Weights);
        }
        if let Some(g) = dist
            .and_then(|d| d.geographic.as_ref())
            .filter(|g| g.active())
        {
            return region_shares(g, workers).map(Rule::Weights);
        }
        Ok(Rule::Strategy(strategy))
    }

    /// The split of the load's VU total: `distribution` counts must match it exactly.
    fn exact(&self, total: u64, workers: &[WorkerAddr]) -> Result<Vec<u64>, PlanError> {
        if let Rule::Counts(counts) = self {
            let sum = counts.iter().sum();
            if sum != total {
                return Err(PlanError::DistributionSum { sum, total });
            }
        }
        Ok(self.like(total, workers))
    }

    /// A split of any other quantity in the same proportions; always sums to `total`.
    fn like(&self, total: u64, workers: &[WorkerAddr]) -> Vec<u64> {
        match self {
            Rule::Strategy(s) => split(total, workers, *s),
            Rule::Counts(counts) => proportional(total, counts),
            Rule::Weights(groups) => spread(total, groups, workers.len()),
        }
    }
}

/// `distributed.geographic.regions` as groups, in the order written, each weighted by its
/// `load_percentage` in thousandths of a percent (they add up to 100,000): a region gets
/// `floor(total * pct / 100)` units and the remainder goes one unit each to the regions in the order
/// written; within a region the part is split evenly, the remainder to its first workers. A region
/// names its workers (`worker-N`, `host:port` or an `id`), or, with no `workers`, covers the
/// workers whose `region` is its name. Workers no region covers get nothing.
fn region_shares(
    g: &crate::config::Geographic,
    workers: &[WorkerAddr],
) -> Result<Vec<Group>, PlanError> {
    let mut owner: Vec<Option<&str>> = vec![None; workers.len()];
    let mut groups = Vec::new();
    for r in &g.regions {
        let members: Vec<usize> = if r.workers.is_empty() {
            (0..workers.len())
                .filter(|&i| workers[i].region == r.name)
                .collect()
        } else {
            r.workers
                .iter()
                .map(|key| {
                    worker_index(key, workers).ok_or_else(|| PlanError::UnknownKey {
                        field: "geographic.regions[].workers",
                        key: key.clone(),
                        what: "worker",
                        known: known_names(workers, false),
                    })
                })
                .collect::<Result<_, _>>()?
        };
        if members.is_empty() {
            return Err(PlanError::EmptyRegion {
                region: r.name.clone(),
                why: format!(
                    "give `workers`, or list workers with region `{}` (known regions: {})",
                    r.name,
                    region_groups(workers)
                        .iter()
                        .map(|g| g.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        for &i in &members {
            claim(&mut owner, i, &r.name, "geographic.regions", workers)?;
        }
        groups.push(Group {
            key: r.name.clone(),
            weight: (r.load_percentage * 1000.0).round() as u64,
            members,
        });
    }
    Ok(groups)
}

/// Which region of `distributed.geographic` each worker is in (its name and time zone), when the
/// regions split the load; `None` for a worker no region covers.
pub fn worker_regions(
    dist: Option<&Distributed>,
    workers: &[WorkerAddr],
) -> Vec<Option<(String, Option<String>)>> {
    let mut out = vec![None; workers.len()];
    let Some(g) = dist
        .and_then(|d| d.geographic.as_ref())
        .filter(|g| g.active())
    else {
        return out;
    };
    if let Ok(groups) = region_shares(g, workers) {
        for (grp, r) in groups.iter().zip(&g.regions) {
            for &i in &grp.members {
                out[i] = Some((r.name.clone(), r.timezone.as_ref().map(|t| t.0.clone())));
            }
        }
    }
    out
}

/// The worker a key names: `host:port`, `worker-N` (1-based, in list order), or its `id`.
fn worker_index(key: &str, workers: &[WorkerAddr]) -> Option<usize> {
    if let Some(i) = workers.iter().position(|w| w.id.as_deref() == Some(key)) {
        return Some(i);
    }
    let numbered = key
        .strip_prefix("worker-")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=workers.len()).contains(n))
        .map(|n| n - 1);
    numbered.or_else(|| workers.iter().position(|w| w.addr() == key))
}

fn known_names(workers: &[WorkerAddr], with_regions: bool) -> String {
    let mut names: Vec<String> = workers
        .iter()
        .map(|w| match &w.id {
            Some(id) => format!("{} (id `{id}`)", w.addr()),
            None => w.addr(),
        })
        .collect();
    names.push(format!("worker-1..worker-{}", workers.len()));
    if with_regions {
        for g in region_groups(workers) {
            names.push(format!("region `{}`", g.key));
        }
    }
    names.join(", ")
}

/// `distributed.distribution` as one count per worker (0 for workers it does not name).
fn distribution_counts(
    map: &std::collections::BTreeMap<String, u64>,
    workers: &[WorkerAddr],
) -> Result<Vec<u64>, PlanError> {
    let mut counts = vec![0; workers.len()];
    let mut owner: Vec<Option<&str>> = vec![None; workers.len()];
    for (key, &count) in map {
        let i = worker_index(key, workers).ok_or_else(|| PlanError::UnknownKey {
            field: "distribution",
            key: key.clone(),
            what: "worker",
            known: known_names(workers, false),
        })?;
        claim(&mut owner, i, key, "distribution", workers)?;
        counts[i] = count;
    }
    Ok(counts)
}

/// Records that `key` covers worker `i`; an error if another key already does.
fn claim<'a>(
    owner: &mut [Option<&'a str>],
    i: usize,
    key: &'a str,
    field: &'static str,
    workers: &[WorkerAddr],
) -> Result<(), PlanError> {
    match owner[i].replace(key) {
        Some(other) => Err(PlanError::NamedTwice {
            field,
            key: key.to_string(),
            other: other.to_string(),
            worker: workers[i].addr(),
        }),
        None => Ok(()),
    }
}

/// `distributed.weights` as groups: a worker key is a group of one; a region key is all its
/// workers. Workers no key covers get nothing.
fn weight_groups(
    map: &std::collections::BTreeMap<String, u64>,
    workers: &[WorkerAddr],
) -> Result<Vec<Group>, PlanError> {
    let mut owner: Vec<Option<&str>> = vec![None; workers.len()];
    let mut groups = Vec::new();
    for (key, &weight) in map {
        let members = weight_members(key, workers)?;
        for &i in &members {
            claim(&mut owner, i, key, "weights", workers)?;
        }
        groups.push(Group {
            key: key.clone(),
            weight,
            members,
        });
    }
    if groups.iter().all(|g| g.weight == 0) {
        return Err(PlanError::ZeroWeights);
    }
    groups.sort_by_key(|g| g.members[0]);
    Ok(groups)
}

/// The workers a weights key covers: the worker it names, else the workers of the region.
fn weight_members(key: &str, workers: &[WorkerAddr]) -> Result<Vec<usize>, PlanError> {
    if let Some(i) = worker_index(key, workers) {
        return Ok(vec![i]);
    }
    let members: Vec<usize> = (0..workers.len())
        .filter(|&i| workers[i].region == key)
        .collect();
    if members.is_empty() {
        return Err(PlanError::UnknownKey {
            field: "weights",
            key: key.to_string(),
            what: "worker or region",
            known: known_names(workers, true),
        });
    }
    Ok(members)
}

/// Splits `total` VUs among workers, honouring the test's `distributed` block.
///
/// The YAML forms of the seed: `distributed.distribution` maps a worker (`host:port` or
/// `worker-N`, 1-based in list order) to an absolute VU count, and the counts must add up to
/// `total`; unnamed workers get 0. Otherwise `distributed.weights` maps a region name, `host:port`
/// or `worker-N` to a relative weight: `total` is split by weight (floor, then the remainder one
/// each to the first entries in worker-list order), and a region's part evenly among its workers;
/// workers no key covers get 0. With neither, `split(total, workers, strategy)`.
pub fn split_with(
    total: u64,
    workers: &[WorkerAddr],
    strategy: Strategy,
    dist: Option<&Distributed>,
) -> Result<Vec<u64>, PlanError> {
    Rule::new(workers, strategy, dist)?.exact(total, workers)
}

/// The units (VUs, or milli-arrivals/s for arrivals) a load gives out — what `shares` splits.
/// For arrivals this is `round(rate * 1000)`; a negative or non-finite rate counts as 0.
pub fn units(load: &Load) -> u64 {
    match load {
        Load::Basic { virtual_users, .. } => *virtual_users,
        Load::Stepping { max_users, .. } => *max_users,
        Load::Levels { levels } => levels.iter().map(|l| l.users).max().unwrap_or(0),
        Load::Arrivals { rate, .. } => milli(*rate),
        Load::Phases(ps) => ps.iter().map(|p| units(&p.load)).max().unwrap_or(0),
    }
}

/// What a load's units count: VUs, or (in thousandths) arrivals per second.
pub fn unit(load: &Load) -> LoadUnit {
    match load {
        Load::Arrivals { .. } => LoadUnit::ArrivalsPerSecond,
        Load::Basic { .. } | Load::Stepping { .. } | Load::Levels { .. } => LoadUnit::Vus,
        Load::Phases(ps) => ps.first().map_or(LoadUnit::Vus, |p| unit(&p.load)),
    }
}

/// `units` of [`units`] as the figure users read: VUs, or arrivals per second.
pub fn amount(units: u64, unit: LoadUnit) -> f64 {
    match unit {
        LoadUnit::Vus => units as f64,
        LoadUnit::ArrivalsPerSecond => units as f64 / 1000.0,
    }
}

/// The plan as a table, one line per worker: its share, region and capacity.
pub fn text(rec: &RunRecord) -> String {
    let unit = unit(&rec.test.load);
    let rule = if rec.split.is_empty() {
        rec.strategy.to_string()
    } else {
        rec.split.clone()
    };
    let mut out = format!("plan ({rule} strategy, run {}):\n", rec.id);
    let addrs: Vec<WorkerAddr> = rec.workers.iter().map(|w| w.addr.clone()).collect();
    let regions = worker_regions(rec.test.distributed.as_ref(), &addrs);
    for (w, r) in rec.workers.iter().zip(&regions) {
        let share = amount(units(&w.load), unit);
        let (region, tz) = match r {
            Some((name, tz)) => (name.as_str(), tz.as_deref()),
            None => (w.addr.region.as_str(), None),
        };
        out.push_str(&format!(
            "  {:<21} {share:>8} {:<10} region {:<10} capacity {}{}\n",
            w.addr.addr(),
            unit.label(),
            region,
            w.addr.capacity,
            tz.map(|t| format!(" timezone {t}")).unwrap_or_default()
        ));
    }
    for r in region_views(rec) {
        out.push_str(&format!(
            "  region {:<12} {:>6}% {:>8} {:<10} timezone {:<20} workers {}\n",
            r.name,
            r.load_percentage,
            amount(r.planned_units, unit),
            unit.label(),
            r.timezone.as_deref().unwrap_or("-"),
            r.workers.join(", ")
        ));
    }
    out
}

/// The regions of `distributed.geographic` as planned: each one's percentage, planned units (VUs
/// or milli-arrivals/s), time zone and workers. Empty when the regions do not split the load.
pub fn region_views(rec: &RunRecord) -> Vec<crate::api::master::RegionView> {
    let Some(g) = rec
        .test
        .distributed
        .as_ref()
        .and_then(|d| d.geographic.as_ref())
        .filter(|g| g.active())
    else {
        return Vec::new();
    };
    let addrs: Vec<WorkerAddr> = rec.workers.iter().map(|w| w.addr.clone()).collect();
    let Ok(groups) = region_shares(g, &addrs) else {
        return Vec::new();
    };
    groups
        .iter()
        .zip(&g.regions)
        .map(|(grp, r)| crate::api::master::RegionView {
            name: r.name.clone(),
            load_percentage: r.load_percentage,
            timezone: r.timezone.as_ref().map(|t| t.0.clone()),
            planned_units: grp
                .members
                .iter()
                .map(|&i| units(&rec.workers[i].load))
                .sum(),
            workers: grp.members.iter().map(|&i| addrs[i].addr()).collect(),
        })
        .collect()
}

fn milli(rate: f64) -> u64 {
    // `as` saturates: NaN and negatives become 0.
    (rate * 1000.0).round() as u64
}

/// One worker's part of the load: the test's `Load` rewritten for that worker, one per worker.
///
/// - `basic`: `virtual_users` is split; ramp-up, duration and iterations are unchanged.
/// - `stepping`: `max_users` is split like `split_with` does, `start_users` and `step_users` in the
///   same proportions (with `distribution`, in proportion to its counts).
/// - `arrivals`: the rate is split in whole milli-arrivals per second so the shares add up exactly;
///   `max_virtual_users` and `preallocation` are split the same way but are at least 1 for a worker
///   with a non-zero rate, and preallocation never exceeds the worker's maximum. With
///   `distribution`, its counts are the workers' maximum VUs (they must add up to
///   `max_virtual_users` when that is set) and the rate follows their proportions.
///
/// A worker whose share is zero gets a load of 0 VUs (or rate 0); callers skip it.
pub fn shares(
    load: &Load,
    workers: &[WorkerAddr],
    strategy: Strategy,
    dist: Option<&Distributed>,
) -> Result<Vec<Load>, PlanError> {
    let out = split_shares(load, workers, strategy, dist)?;
    fit(load, &out, workers)?;
    Ok(out)
}

/// The most VUs an arrivals load may use (its `max_virtual_users`; the largest over phases), when
/// it says.
pub fn peak_arrival_vus(load: &Load) -> Option<u64> {
    match load {
        Load::Arrivals {
            max_virtual_users, ..
        } => *max_virtual_users,
        Load::Phases(ps) => ps.iter().filter_map(|p| peak_arrival_vus(&p.load)).max(),
        _ => None,
    }
}

/// Checks every share against its worker's `max_vus` / `max_rps` (registered capacity): the first
/// worker over names by how much, and the whole pool's room against the load's total.
fn fit(load: &Load, shares: &[Load], workers: &[WorkerAddr]) -> Result<(), PlanError> {
    if workers
        .iter()
        .all(|w| w.max_vus.is_none() && w.max_rps.is_none())
    {
        return Ok(());
    }
    let unit = unit(load);
    let total = units(load);
    // Each worker's room in the load's units (None: no cap).
    let room = |w: &WorkerAddr| -> Option<u64> {
        match unit {
            LoadUnit::Vus => w.max_vus,
            LoadUnit::ArrivalsPerSecond => w.max_rps.map(|r| r.saturating_mul(1000)),
        }
    };
    let pool_room: Option<u64> = workers
        .iter()
        .map(room)
        .try_fold(0u64, |acc, r| r.map(|r| acc.saturating_add(r)));
    let label = unit.label();
    let whole = match pool_room {
        Some(r) if r < total => format!(
            "; the load is {} {label} but the pool's capacity is {} {label} in all ({} short): add workers or lower the load",
            amount(total, unit),
            amount(r, unit),
            amount(total - r, unit)
        ),
        Some(r) => format!(
            "; the pool's capacity ({} {label}) would hold the load ({} {label}) with a split that follows it: use `-s capacity_based` or `distributed.distribution`",
            amount(r, unit),
            amount(total, unit)
        ),
        None => String::new(),
    };
    for (w, share) in workers.iter().zip(shares) {
        let name = w.id.clone().unwrap_or_else(|| w.addr());
        let got = units(share);
        if let Some(r) = room(w) {
            if got > r {
                return Err(PlanError::OverCapacity(format!(
                    "worker {name} would get {} {label}, over its capacity of {} ({} over){whole}",
                    amount(got, unit),
                    amount(r, unit),
                    amount(got - r, unit)
                )));
            }
        }
        if unit == LoadUnit::ArrivalsPerSecond {
            if let (Some(v), Some(max)) = (peak_arrival_vus(share), w.max_vus) {
                if v > max {
                    return Err(PlanError::OverCapacity(format!(
                        "worker {name} would get max_virtual_users {v}, over its capacity.max_vus {max} ({} over)",
                        v - max
                    )));
                }
            }
        }
    }
    Ok(())
}

fn split_shares(
    load: &Load,
    workers: &[WorkerAddr],
    strategy: Strategy,
    dist: Option<&Distributed>,
) -> Result<Vec<Load>, PlanError> {
    let rule = Rule::new(workers, strategy, dist)?;
    match load {
        Load::Basic { .. } => basic_shares(load, &rule, workers),
        Load::Stepping { .. } => stepping_shares(load, &rule, workers),
        Load::Arrivals { .. } => arrival_shares(load, &rule, workers),
        Load::Levels { levels } => {
            let each: Vec<Vec<u64>> = levels.iter().map(|l| rule.like(l.users, workers)).collect();
            Ok((0..workers.len())
                .map(|w| Load::Levels {
                    levels: levels
                        .iter()
                        .zip(&each)
                        .map(|(l, e)| crate::config::Level { users: e[w], ..*l })
                        .collect(),
                })
                .collect())
        }
        Load::Phases(ps) => {
            let each = ps
                .iter()
                .map(|p| shares(&p.load, workers, strategy, dist))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((0..workers.len())
                .map(|w| {
                    Load::Phases(
                        ps.iter()
                            .zip(&each)
                            .map(|(p, e)| crate::config::Phase {
                                name: p.name.clone(),
                                load: e[w].clone(),
                            })
                            .collect(),
                    )
                })
                .collect())
        }
    }
}

fn basic_shares(load: &Load, rule: &Rule, workers: &[WorkerAddr]) -> Result<Vec<Load>, PlanError> {
    let vus = rule.exact(units(load), workers)?;
    Ok(vus
        .into_iter()
        .map(|v| {
            let mut l = load.clone();
            if let Load::Basic { virtual_users, .. } = &mut l {
                *virtual_users = v;
            }
            l
        })
        .collect())
}

fn stepping_shares(
    load: &Load,
    rule: &Rule,
    workers: &[WorkerAddr],
) -> Result<Vec<Load>, PlanError> {
    let Load::Stepping {
        start_users,
        step_users,
        ..
    } = load
    else {
        return Ok(Vec::new());
    };
    let max = rule.exact(units(load), workers)?;
    let start = rule.like(*start_users, workers);
    let step = rule.like(*step_users, workers);
    Ok((0..workers.len())
        .map(|i| {
            let mut l = load.clone();
            if let Load::Stepping {
                start_users,
                step_users,
                max_users,
                ..
            } = &mut l
            {
                (*start_users, *step_users, *max_users) = (start[i], step[i], max[i]);
            }
            l
        })
        .collect())
}

fn arrival_shares(
    load: &Load,
    rule: &Rule,
    workers: &[WorkerAddr],
) -> Result<Vec<Load>, PlanError> {
    let Load::Arrivals {
        rate,
        max_virtual_users,
        preallocation,
        ..
    } = load
    else {
        return Ok(Vec::new());
    };
    if !(rate.is_finite() && *rate >= 0.0) {
        return Err(PlanError::BadRate { rate: *rate });
    }
    let rates = rule.like(milli(*rate), workers);
    let max = match (rule, max_virtual_users) {
        (Rule::Counts(_), Some(m)) => Some(rule.exact(*m, workers)?),
        _ => max_virtual_users.map(|m| at_least_one(rule.like(m, workers), &rates)),
    };
    let pre = preallocation.map(|p| at_least_one(rule.like(p, workers), &rates));
    Ok((0..workers.len())
        .map(|i| {
            arrival_share(
                load,
                rates[i],
                max.as_ref().map(|m| m[i]),
                pre.as_ref().map(|p| p[i]),
            )
        })
        .collect())
}

fn arrival_share(load: &Load, milli_rate: u64, max: Option<u64>, pre: Option<u64>) -> Load {
    let mut l = load.clone();
    if let Load::Arrivals {
        rate,
        max_virtual_users,
        preallocation,
        ..
    } = &mut l
    {
        *rate = milli_rate as f64 / 1000.0;
        *max_virtual_users = max;
        *preallocation = match (pre, max) {
            (Some(p), Some(m)) => Some(p.min(m)),
            (p, _) => p,
        };
    }
    l
}

/// A worker that gets arrivals needs at least one VU to run them.
fn at_least_one(mut vus: Vec<u64>, rates: &[u64]) -> Vec<u64> {
    for (v, &r) in vus.iter_mut().zip(rates) {
        if r > 0 {
            *v = (*v).max(1);
        }
    }
    vus
}

/// Re-assigns a failed worker's share to the survivors: returns, for each worker, the extra units it
/// takes (0 for every failed worker), splitting `units` evenly across the `alive` ones with the
/// remainder to the first alive ones. An error if no worker is alive.
pub fn redistribute(units: u64, alive: &[bool]) -> Result<Vec<u64>, PlanError> {
    let survivors: Vec<usize> = (0..alive.len()).filter(|&i| alive[i]).collect();
    if survivors.is_empty() {
        return Err(PlanError::NoSurvivors);
    }
    let mut out = vec![0; alive.len()];
    for (&i, v) in survivors.iter().zip(even(units, survivors.len())) {
        out[i] = v;
    }
    Ok(out)
}

/// [`redistribute`] within each survivor's room: `room[i]` is `None` for a worker that takes
/// nothing (failed), else the most units it may still take (`u64::MAX`: no capacity given). Splits
/// `units` evenly over the survivors with room, caps each at its room and splits what is left over
/// those still with room, until all is placed or nobody has room. Returns each worker's extra
/// units and the units that did not fit. An error if no worker is alive.
pub fn redistribute_within(units: u64, room: &[Option<u64>]) -> Result<(Vec<u64>, u64), PlanError> {
    if room.iter().all(Option::is_none) {
        return Err(PlanError::NoSurvivors);
    }
    let mut out = vec![0u64; room.len()];
    let mut left = units;
    loop {
        let open: Vec<usize> = (0..room.len())
            .filter(|&i| room[i].is_some_and(|r| r > out[i]))
            .collect();
        if left == 0 || open.is_empty() {
            break;
        }
        let mut placed = 0;
        for (&i, share) in open.iter().zip(even(left, open.len())) {
            let free = room[i].map_or(0, |r| r - out[i]);
            let give = share.min(free);
            out[i] += give;
            placed += give;
        }
        left -= placed;
        if placed == 0 {
            break;
        }
    }
    Ok((out, left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest, ProptestConfig};
    use proptest::strategy::Strategy as _;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn w(port: u16, capacity: u32, region: &str) -> WorkerAddr {
        WorkerAddr {
            host: "h".into(),
            port,
            capacity,
            region: region.into(),
            id: None,
            max_vus: None,
            max_rps: None,
        }
    }

    fn plain(n: u16) -> Vec<WorkerAddr> {
        (1..=n).map(|p| WorkerAddr::new("h", p)).collect()
    }

    fn map(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn with_distribution(entries: &[(&str, u64)]) -> Distributed {
        Distributed {
            distribution: Some(map(entries)),
            ..Default::default()
        }
    }

    fn with_weights(entries: &[(&str, u64)]) -> Distributed {
        Distributed {
            weights: Some(map(entries)),
            ..Default::default()
        }
    }

    fn basic(vus: u64) -> Load {
        Load::Basic {
            virtual_users: vus,
            ramp_up: Duration::from_secs(5),
            duration: Some(Duration::from_secs(60)),
            iterations: None,
        }
    }

    fn arrivals(rate: f64, max: Option<u64>, pre: Option<u64>) -> Load {
        Load::Arrivals {
            rate,
            duration: Duration::from_secs(30),
            max_virtual_users: max,
            preallocation: pre,
            shape: Default::default(),
        }
    }

    fn arrival_fields(l: &Load) -> (u64, Option<u64>, Option<u64>) {
        match l {
            Load::Arrivals {
                rate,
                max_virtual_users,
                preallocation,
                ..
            } => (milli(*rate), *max_virtual_users, *preallocation),
            other => panic!("not arrivals: {other:?}"),
        }
    }

    fn with_regions(regions: &[(&str, &[&str], f64)]) -> Distributed {
        Distributed {
            geographic: Some(crate::config::Geographic {
                enabled: None,
                regions: regions
                    .iter()
                    .map(|(name, workers, pct)| crate::config::Region {
                        name: name.to_string(),
                        workers: workers.iter().map(|w| w.to_string()).collect(),
                        load_percentage: *pct,
                        timezone: None,
                    })
                    .collect(),
                coordination: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn regions_split_by_percentage_exactly_with_the_remainder_in_the_order_written() {
        let mut ws = plain(4);
        ws[3].region = "eu".into();
        ws[0].id = Some("east-1".into());
        let d = with_regions(&[
            ("west", &["worker-3"], 30.0),
            ("east", &["east-1", "h:2"], 40.0),
            ("eu", &[], 30.0),
        ]);
        // 11 VUs: floors 3 / 4 / 3, the one left over to `west`, written first.
        assert_eq!(
            split_with(11, &ws, Strategy::Even, Some(&d)).unwrap(),
            vec![2, 2, 4, 3]
        );
        // 7.001 arrivals/s in milli-arrivals: 2100 / 2800 / 2100 + 1 to `west`; the sum holds.
        let loads = shares(&arrivals(7.001, None, None), &ws, Strategy::Even, Some(&d)).unwrap();
        let rates: Vec<u64> = loads.iter().map(|l| arrival_fields(l).0).collect();
        assert_eq!(rates, vec![1400, 1400, 2101, 2100]);
        assert_eq!(rates.iter().sum::<u64>(), 7001);
    }

    #[test]
    fn a_region_naming_an_unknown_worker_or_covering_none_is_refused() {
        let e = split_with(
            4,
            &plain(2),
            Strategy::Even,
            Some(&with_regions(&[("a", &["worker-9"], 100.0)])),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`worker-9` names no worker"), "{e}");
        let e = split_with(
            4,
            &plain(2),
            Strategy::Even,
            Some(&with_regions(&[("mars", &[], 100.0)])),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("region `mars` has no workers"), "{e}");
        let e = split_with(
            4,
            &plain(2),
            Strategy::Even,
            Some(&with_regions(&[
                ("a", &["worker-1"], 50.0),
                ("b", &["h:1"], 50.0),
            ])),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("both cover worker h:1"), "{e}");
    }

    #[test]
    fn even_gives_remainder_to_first() {
        assert_eq!(split(10, &plain(3), Strategy::Even), vec![4, 3, 3]);
        assert_eq!(split(2, &plain(3), Strategy::Even), vec![1, 1, 0]);
        assert_eq!(split(0, &plain(2), Strategy::Even), vec![0, 0]);
        assert_eq!(split(5, &[], Strategy::Even), Vec::<u64>::new());
    }

    #[test]
    fn shares_over_a_registered_capacity_fail_saying_by_how_much() {
        let capped = |port: u16, max: u64| {
            let mut w = w(port, u32::try_from(max).unwrap(), "a");
            w.max_vus = Some(max);
            w
        };
        // 12 VUs on capacities 4 and 8: capacity_based fits them exactly.
        let ws = [capped(1, 4), capped(2, 8)];
        let got = shares(&basic(12), &ws, Strategy::CapacityBased, None).unwrap();
        assert_eq!(got.iter().map(units).collect::<Vec<_>>(), vec![4, 8]);
        // An even split of the same load puts 6 on the first.
        let e = shares(&basic(12), &ws, Strategy::Even, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("would get 6 VUs, over its capacity of 4 (2 over)"),
            "{e}"
        );
        // More than the pool holds: short by 3.
        let e = shares(&basic(15), &ws, Strategy::CapacityBased, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("capacity is 12 VUs in all (3 short)"), "{e}");
        // Workers without caps are never refused.
        assert!(shares(&basic(1000), &plain(2), Strategy::Even, None).is_ok());
    }

    #[test]
    fn capacity_based_follows_capacities() {
        let ws = [w(1, 100, "a"), w(2, 150, "a"), w(3, 50, "a")];
        assert_eq!(split(30, &ws, Strategy::CapacityBased), vec![10, 15, 5]);
        assert_eq!(split(31, &ws, Strategy::CapacityBased), vec![11, 15, 5]);
        assert_eq!(split(1, &ws, Strategy::CapacityBased), vec![1, 0, 0]);
    }

    #[test]
    fn capacity_defaults_to_100_so_never_one_vu() {
        let ws =
            parse_workers(r#"[{"host":"a","port":1},{"host":"b","port":2},{"host":"c","port":3}]"#);
        assert_eq!(split(10, &ws, Strategy::CapacityBased), vec![4, 3, 3]);
    }

    fn parse_workers(json: &str) -> Vec<WorkerAddr> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn round_robin_counts_unit_k_to_worker_k_mod_n() {
        assert_eq!(split(10, &plain(3), Strategy::RoundRobin), vec![4, 3, 3]);
        assert_eq!(split(7, &plain(4), Strategy::RoundRobin), vec![2, 2, 2, 1]);
        let by_unit = (0..7u64).fold(vec![0u64; 4], |mut acc, k| {
            acc[(k % 4) as usize] += 1;
            acc
        });
        assert_eq!(split(7, &plain(4), Strategy::RoundRobin), by_unit);
    }

    #[test]
    fn geographic_is_even_by_region_then_within() {
        let ws = [w(1, 100, "a"), w(2, 100, "a"), w(3, 100, "b")];
        assert_eq!(split(10, &ws, Strategy::Geographic), vec![3, 2, 5]);
        let ws = [w(1, 1, "b"), w(2, 1, "a"), w(3, 1, "b"), w(4, 1, "c")];
        // regions in first-appearance order b, a, c: 4, 3, 3; b's 4 over workers 1 and 3.
        assert_eq!(split(10, &ws, Strategy::Geographic), vec![2, 3, 2, 3]);
    }

    #[test]
    fn distribution_is_exact_and_names_workers() {
        let ws = plain(3);
        let d = with_distribution(&[("h:1", 6), ("worker-3", 4)]);
        assert_eq!(
            split_with(10, &ws, Strategy::Even, Some(&d)).unwrap(),
            vec![6, 0, 4]
        );
    }

    #[test]
    fn distribution_errors() {
        let ws = plain(2);
        let d = with_distribution(&[("h:1", 6), ("h:9", 4)]);
        let e = split_with(10, &ws, Strategy::Even, Some(&d))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`h:9`") && e.contains("worker-1..worker-2"),
            "{e}"
        );
        let d = with_distribution(&[("worker-3", 1)]);
        let e = split_with(1, &ws, Strategy::Even, Some(&d))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`worker-3`"), "{e}");
        let d = with_distribution(&[("h:1", 6), ("worker-2", 3)]);
        let e = split_with(10, &ws, Strategy::Even, Some(&d))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gives 9 VUs") && e.contains("has 10"), "{e}");
        let d = with_distribution(&[("h:1", 5), ("worker-1", 5)]);
        let e = split_with(10, &ws, Strategy::Even, Some(&d))
            .unwrap_err()
            .to_string();
        assert!(e.contains("both cover worker h:1"), "{e}");
    }

    #[test]
    fn weights_by_region_and_worker() {
        let ws = [
            w(1, 100, "us"),
            w(2, 100, "us"),
            w(3, 100, "eu"),
            w(4, 100, "ap"),
        ];
        let d = with_weights(&[("us", 70), ("eu", 30)]);
        // us: 7 (split 4/3), eu: 3, ap: not named.
        assert_eq!(
            split_with(10, &ws, Strategy::Even, Some(&d)).unwrap(),
            vec![4, 3, 3, 0]
        );
        let d = with_weights(&[("worker-4", 1), ("h:1", 1)]);
        assert_eq!(
            split_with(5, &ws, Strategy::Even, Some(&d)).unwrap(),
            vec![3, 0, 0, 2]
        );
        // Remainder to the first entries in worker-list order, whatever the key order.
        let d = with_weights(&[("eu", 1), ("us", 1), ("ap", 1)]);
        assert_eq!(
            split_with(4, &ws, Strategy::Even, Some(&d)).unwrap(),
            vec![1, 1, 1, 1]
        );
        assert_eq!(
            split_with(2, &ws, Strategy::Even, Some(&d)).unwrap(),
            vec![1, 0, 1, 0]
        );
    }

    #[test]
    fn weights_errors() {
        let ws = [w(1, 100, "us"), w(2, 100, "eu")];
        let e = split_with(10, &ws, Strategy::Even, Some(&with_weights(&[("mars", 5)])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`mars`") && e.contains("region `us`"), "{e}");
        let e = split_with(10, &ws, Strategy::Even, Some(&with_weights(&[("us", 0)])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("all 0"), "{e}");
        let d = with_weights(&[("us", 1), ("h:1", 1)]);
        let e = split_with(10, &ws, Strategy::Even, Some(&d))
            .unwrap_err()
            .to_string();
        assert!(e.contains("both cover worker h:1"), "{e}");
    }

    #[test]
    fn no_workers_is_an_error() {
        assert!(matches!(
            split_with(1, &[], Strategy::Even, None),
            Err(PlanError::NoWorkers)
        ));
        assert!(matches!(
            shares(&basic(1), &[], Strategy::Even, None),
            Err(PlanError::NoWorkers)
        ));
    }

    #[test]
    fn basic_shares_split_vus_only() {
        let s = shares(&basic(10), &plain(3), Strategy::Even, None).unwrap();
        assert_eq!(s, vec![basic(4), basic(3), basic(3)]);
        let s = shares(&basic(1), &plain(2), Strategy::Even, None).unwrap();
        assert_eq!(s, vec![basic(1), basic(0)]);
    }

    #[test]
    fn stepping_shares_split_each_count() {
        let load = Load::Stepping {
            start_users: 5,
            step_users: 2,
            step_duration: Duration::from_secs(10),
            max_users: 20,
            duration: Duration::from_secs(120),
        };
        let s = shares(&load, &plain(3), Strategy::Even, None).unwrap();
        let got: Vec<(u64, u64, u64)> = s
            .iter()
            .map(|l| match l {
                Load::Stepping {
                    start_users,
                    step_users,
                    max_users,
                    step_duration,
                    duration,
                } => {
                    assert_eq!(*step_duration, Duration::from_secs(10));
                    assert_eq!(*duration, Duration::from_secs(120));
                    (*start_users, *step_users, *max_users)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, vec![(2, 1, 7), (2, 1, 7), (1, 0, 6)]);
        assert_eq!(units(&load), 20);
    }

    #[test]
    fn arrivals_split_rate_exactly_in_milli() {
        let load = arrivals(10.5, Some(3), Some(3));
        assert_eq!(units(&load), 10_500);
        let s = shares(&load, &plain(2), Strategy::Even, None).unwrap();
        let fields: Vec<_> = s.iter().map(arrival_fields).collect();
        assert_eq!(
            fields,
            vec![(5250, Some(2), Some(2)), (5250, Some(1), Some(1))]
        );
        let total: u64 = fields.iter().map(|f| f.0).sum();
        assert_eq!(total, 10_500);
    }

    #[test]
    fn arrivals_give_every_busy_worker_a_vu() {
        let load = arrivals(0.003, Some(1), None);
        let s = shares(&load, &plain(3), Strategy::Even, None).unwrap();
        let fields: Vec<_> = s.iter().map(arrival_fields).collect();
        assert_eq!(
            fields,
            vec![(1, Some(1), None), (1, Some(1), None), (1, Some(1), None)]
        );
        let load = arrivals(0.001, Some(4), Some(4));
        let s = shares(&load, &plain(2), Strategy::Even, None).unwrap();
        let fields: Vec<_> = s.iter().map(arrival_fields).collect();
        assert_eq!(fields, vec![(1, Some(2), Some(2)), (0, Some(2), Some(2))]);
    }

    #[test]
    fn arrivals_with_distribution_use_counts_as_max_vus() {
        let d = with_distribution(&[("worker-1", 30), ("worker-2", 10)]);
        let s = shares(
            &arrivals(8.0, Some(40), None),
            &plain(2),
            Strategy::Even,
            Some(&d),
        )
        .unwrap();
        let fields: Vec<_> = s.iter().map(arrival_fields).collect();
        assert_eq!(fields, vec![(6000, Some(30), None), (2000, Some(10), None)]);
        let e = shares(
            &arrivals(8.0, Some(50), None),
            &plain(2),
            Strategy::Even,
            Some(&d),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("gives 40 VUs") && e.contains("has 50"), "{e}");
        let e = shares(
            &arrivals(f64::NAN, None, None),
            &plain(2),
            Strategy::Even,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("load.rate"), "{e}");
    }

    #[test]
    fn redistribution_stays_within_each_survivors_room() {
        let open = u64::MAX;
        assert_eq!(
            redistribute_within(6, &[Some(open), None, Some(open)]).unwrap(),
            (vec![3, 0, 3], 0)
        );
        // One survivor has room for 1: the other takes the rest.
        assert_eq!(
            redistribute_within(6, &[Some(1), None, Some(open)]).unwrap(),
            (vec![1, 0, 5], 0)
        );
        // Not enough room anywhere: the shortfall is returned.
        assert_eq!(
            redistribute_within(10, &[Some(2), None, Some(3)]).unwrap(),
            (vec![2, 0, 3], 5)
        );
        assert_eq!(
            redistribute_within(4, &[Some(0), Some(0)]).unwrap(),
            (vec![0, 0], 4)
        );
        assert!(matches!(
            redistribute_within(4, &[None, None]),
            Err(PlanError::NoSurvivors)
        ));
        // Odd remainders go to the first with room, as in `redistribute`.
        assert_eq!(
            redistribute_within(5, &[Some(open), Some(open), Some(open)]).unwrap(),
            (vec![2, 2, 1], 0)
        );
    }

    #[test]
    fn redistribute_to_survivors() {
        assert_eq!(
            redistribute(5, &[true, false, true]).unwrap(),
            vec![3, 0, 2]
        );
        assert_eq!(redistribute(0, &[true, false]).unwrap(), vec![0, 0]);
        assert!(matches!(
            redistribute(5, &[false, false]),
            Err(PlanError::NoSurvivors)
        ));
    }

    fn arb_workers() -> impl proptest::strategy::Strategy<Value = Vec<WorkerAddr>> {
        let one =
            (1u32..500, 0usize..4).prop_map(|(cap, r)| w(0, cap, ["us", "eu", "ap", "sa"][r]));
        proptest::collection::vec(one, 1..20).prop_map(|mut ws| {
            for (i, x) in ws.iter_mut().enumerate() {
                x.port = i as u16 + 1;
            }
            ws
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn split_sums_to_total(total in 0u64..100_000, ws in arb_workers()) {
            for s in Strategy::ALL {
                let out = split(total, &ws, s);
                prop_assert_eq!(out.len(), ws.len());
                prop_assert_eq!(out.iter().sum::<u64>(), total, "strategy {}", s);
            }
        }

        #[test]
        fn redistribute_sums_and_skips_dead(
            units in 0u64..100_000,
            alive in proptest::collection::vec(proptest::bool::ANY, 1..20),
        ) {
            match redistribute(units, &alive) {
                Ok(out) => {
                    prop_assert_eq!(out.len(), alive.len());
                    prop_assert_eq!(out.iter().sum::<u64>(), units);
                    for (v, a) in out.iter().zip(&alive) {
                        prop_assert!(*a || *v == 0);
                    }
                }
                Err(_) => prop_assert!(alive.iter().all(|a| !a)),
            }
        }

        #[test]
        fn arrival_shares_sum_exactly(rate_milli in 1u64..1_000_000, ws in arb_workers()) {
            let load = arrivals(rate_milli as f64 / 1000.0, None, None);
            for s in Strategy::ALL {
                let out = shares(&load, &ws, s, None).unwrap();
                let sum: u64 = out.iter().map(|l| arrival_fields(l).0).sum();
                prop_assert_eq!(sum, rate_milli);
            }
        }
    }
}
