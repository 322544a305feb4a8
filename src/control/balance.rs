//! `load_balancing.algorithm: least_loaded`: the split planned by the load each worker reports.
//!
//! The formula (also in `--explain` and README), per worker `i`, with `T` the saturation CPU
//! (`metrics_based.cpu_threshold`, else 90 %):
//!
//! - `spare_i` = `T − host_cpu_i`, in hundredths of a percent, from the worker's latest sample (a
//!   registered worker's last renewal; a listed worker's `GET /resources` when the run is planned);
//!   at least 1 while the host is under `T`; 0 at or over `T` (saturated), or at or over
//!   `memory_threshold` in host memory when that is given. No sample: counted idle (`spare = T`).
//! - `weight_i` = `capacity_i × spare_i`, where `capacity_i` is the worker's relative capacity (a
//!   registered worker's `max_vus`, or `max_rps`; a listed worker's `capacity`, 100 when not given).
//! - The load's units (VUs, or milli-arrivals/s) are split in proportion to the weights (floor,
//!   then the remainder one each to the first workers in list order), each share capped at the
//!   worker's `max_vus` / `max_rps`, the excess re-split the same way over the workers with room
//!   left, until all is placed. Saturated workers take load only once every other worker is full
//!   (by capacity among themselves); when every worker is saturated, the split is by capacity.
//! - What fits nowhere fails the plan, saying by how much.
//!
//! The plan is pure ([`least_loaded`]); [`apply`] writes its shares into the run's copy of the test
//! as `distributed.weights` (a split by weights equal to the shares reproduces them exactly, and a
//! live change later keeps the proportions), and the run records one event stating every sample,
//! weight and share.

use super::plan::{self, PlanError};
use super::workers::WorkerAddr;
use crate::api::master::LoadUnit;
use crate::config::balancing::Saturation;
use crate::config::{Strategy, TestFile};
use crate::metrics::resources::Resources;

/// One worker as [`least_loaded`] sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Input {
    /// Relative capacity (the weight's factor); 0 takes nothing.
    pub capacity: u64,
    /// The most units it may take (`None`: no cap).
    pub room: Option<u64>,
    /// Host CPU use, percent, of its latest sample (`None`: no sample).
    pub host_cpu_pct: Option<f64>,
    /// Host memory use, percent of its total, of the same sample.
    pub host_memory_pct: Option<f64>,
}

/// What [`least_loaded`] planned, per worker in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Spare CPU under the threshold, hundredths of a percent (0: saturated).
    pub spare: Vec<u64>,
    /// `capacity × spare`.
    pub weights: Vec<u64>,
    /// The units each worker takes; they add up to the total.
    pub shares: Vec<u64>,
    /// Every worker was saturated, so the split followed capacity alone.
    pub all_saturated: bool,
}

/// Hundredths of a percent, rounded.
fn hundredths(pct: f64) -> u64 {
    if pct.is_finite() && pct > 0.0 {
        (pct * 100.0).round() as u64
    } else {
        0
    }
}

/// A worker's spare CPU under `sat`, in hundredths of a percent (see the module's formula).
pub fn spare(input: &Input, sat: Saturation) -> u64 {
    let threshold = hundredths(sat.cpu_pct);
    let Some(cpu) = input.host_cpu_pct else {
        return threshold;
    };
    let cpu = hundredths(cpu);
    let memory_full = match (sat.memory_pct, input.host_memory_pct) {
        (Some(limit), Some(used)) => used >= limit,
        _ => false,
    };
    if cpu >= threshold || memory_full {
        0
    } else {
        (threshold - cpu).max(1)
    }
}

/// Splits `total` units by spare headroom within each worker's room (see the module's formula):
/// deterministic for equal inputs, the shares adding up to `total`. An error when the workers'
/// room cannot hold `total`, or there is no worker.
pub fn least_loaded(total: u64, inputs: &[Input], sat: Saturation) -> Result<Planned, PlanError> {
    if inputs.is_empty() {
        return Err(PlanError::NoWorkers);
    }
    let spare: Vec<u64> = inputs.iter().map(|i| spare(i, sat)).collect();
    let weights: Vec<u64> = inputs
        .iter()
        .zip(&spare)
        .map(|(i, &s)| i.capacity.saturating_mul(s))
        .collect();
    let room: Vec<Option<u64>> = inputs.iter().map(|i| i.room).collect();
    let all_saturated = weights.iter().all(|&w| w == 0);
    let mut shares = vec![0u64; inputs.len()];
    let mut left = total;
    if !all_saturated {
        left = fill(left, &weights, &room, &mut shares);
    }
    if left > 0 {
        // The saturated (or, with every worker saturated, all) by capacity alone.
        let by_capacity: Vec<u64> = inputs
            .iter()
            .zip(&weights)
            .map(|(i, &w)| if w == 0 { i.capacity } else { 0 })
            .collect();
        left = fill(left, &by_capacity, &room, &mut shares);
    }
    if left > 0 {
        let held = total - left;
        return Err(PlanError::OverCapacity(format!(
            "least_loaded: the workers' max_vus/max_rps hold {held} of the load's {total} units ({left} short): add workers or lower the load"
        )));
    }
    Ok(Planned {
        spare,
        weights,
        shares,
        all_saturated,
    })
}

/// Places up to `left` units on the workers with a non-zero weight and room, in proportion to the
/// weights: the workers whose proportional part is over their room are set to their room and
/// left out, and the rest is split again from scratch over the others, until the parts fit.
/// Returns what did not fit.
pub(crate) fn fill(mut left: u64, weights: &[u64], room: &[Option<u64>], out: &mut [u64]) -> u64 {
    let free = |i: usize, out: &[u64]| room[i].map_or(u64::MAX, |r| r.saturating_sub(out[i]));
    let mut open: Vec<usize> = (0..weights.len())
        .filter(|&i| weights[i] > 0 && free(i, out) > 0)
        .collect();
    loop {
        if left == 0 || open.is_empty() {
            return left;
        }
        let w: Vec<u64> = open.iter().map(|&i| weights[i]).collect();
        let parts = plan::proportional(left, &w);
        let over: Vec<usize> = open
            .iter()
            .zip(&parts)
            .filter(|(&i, &part)| part > free(i, out))
            .map(|(&i, _)| i)
            .collect();
        if over.is_empty() {
            for (&i, part) in open.iter().zip(parts) {
                out[i] += part;
            }
            return 0;
        }
        for &i in &over {
            let f = free(i, out);
            out[i] += f;
            left -= f;
        }
        open.retain(|i| !over.contains(i));
    }
}

/// Host memory in use, percent of its total.
fn memory_pct(r: &Resources) -> Option<f64> {
    (r.host_memory_total_bytes > 0)
        .then(|| r.host_memory_used_bytes as f64 * 100.0 / r.host_memory_total_bytes as f64)
}

/// The planner's inputs for `workers` with their latest samples, for a load counted in `unit`.
pub fn inputs(workers: &[WorkerAddr], samples: &[Option<Resources>], unit: LoadUnit) -> Vec<Input> {
    workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let s = samples.get(i).copied().flatten();
            Input {
                capacity: u64::from(w.capacity),
                room: match unit {
                    LoadUnit::Vus => w.max_vus,
                    LoadUnit::ArrivalsPerSecond => w.max_rps.map(|r| r.saturating_mul(1000)),
                },
                host_cpu_pct: s.map(|s| s.host_cpu_pct),
                host_memory_pct: s.as_ref().and_then(memory_pct),
            }
        })
        .collect()
}

/// How a worker is named in the plan event.
fn name(w: &WorkerAddr) -> String {
    w.id.clone().unwrap_or_else(|| w.addr())
}

/// Applies `least_loaded` to a run's copy of `test` before its record is made: when the test asks
/// for it and the command line names no strategy, plans the split from `samples` (one per worker,
/// in order) and writes the shares as `distributed.weights`. Returns the run event that states the
/// samples, weights and shares (or why the algorithm gave way), `None` when the test does not ask.
/// An error when the test also fixes the split itself, or the load does not fit.
pub fn apply(
    test: &mut TestFile,
    workers: &[WorkerAddr],
    samples: &[Option<Resources>],
    cli: Option<Strategy>,
) -> Result<Option<String>, PlanError> {
    let Some(d) = test.distributed.as_mut() else {
        return Ok(None);
    };
    let Some(sat) = d.load_balancing.as_ref().and_then(|l| l.least_loaded()) else {
        return Ok(None);
    };
    if let Some(s) = cli {
        return Ok(Some(format!(
            "least_loaded: not applied; the strategy `{s}` given with the run wins over the test's split"
        )));
    }
    let regions = d.geographic.as_ref().is_some_and(|g| g.active());
    if d.distribution.is_some() || d.weights.is_some() || d.strategy.is_some() || regions {
        return Err(PlanError::Conflict(
            "load_balancing.algorithm `least_loaded` plans the split itself; remove `distributed.strategy`, `distribution`, `weights` and `geographic`, or choose `round_robin`/`adaptive`".into(),
        ));
    }
    let unit = plan::unit(&test.load);
    let total = plan::units(&test.load);
    let inputs = inputs(workers, samples, unit);
    let planned = least_loaded(total, &inputs, sat)?;
    if total > 0 {
        d.weights = Some(
            (0..workers.len())
                .map(|i| (format!("worker-{}", i + 1), planned.shares[i]))
                .collect(),
        );
    }
    Ok(Some(event(workers, samples, &inputs, &planned, sat, unit)))
}

/// The plan event: `least_loaded plan (T=90): NAME host_cpu=12.5 at_ms=... capacity=100
/// spare=7750 weight=775000 share=6; ...` (a worker without a sample says `host_cpu=none`).
fn event(
    workers: &[WorkerAddr],
    samples: &[Option<Resources>],
    inputs: &[Input],
    planned: &Planned,
    sat: Saturation,
    unit: LoadUnit,
) -> String {
    let each: Vec<String> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let sample = match samples.get(i).copied().flatten() {
                Some(s) => format!("host_cpu={} at_ms={}", s.host_cpu_pct, s.at_ms),
                None => "host_cpu=none (counted idle)".to_string(),
            };
            format!(
                "{} {sample} capacity={} spare={} weight={} share={}",
                name(w),
                inputs[i].capacity,
                planned.spare[i],
                planned.weights[i],
                planned.shares[i]
            )
        })
        .collect();
    let how = if planned.all_saturated {
        ", every worker saturated: by capacity"
    } else {
        ""
    };
    let memory = sat
        .memory_pct
        .map(|m| format!(" memory={m}"))
        .unwrap_or_default();
    format!(
        "least_loaded plan (T={}{memory}, {}{how}): {}",
        sat.cpu_pct,
        match unit {
            LoadUnit::Vus => "shares in VUs",
            LoadUnit::ArrivalsPerSecond => "shares in milli-arrivals/s",
        },
        each.join("; ")
    )
}

/// A run record planned by `least_loaded` when the test asks for it, else as
/// [`super::submit::new_record`] plans it: the plan event is the record's first event.
pub fn new_record(
    id: String,
    mut test: TestFile,
    workers: &[WorkerAddr],
    samples: &[Option<Resources>],
    strategy: Option<Strategy>,
    sync_start: bool,
) -> Result<super::run::RunRecord, super::submit::SubmitError> {
    let note = apply(&mut test, workers, samples, strategy)?;
    let applied = note
        .as_ref()
        .is_some_and(|n| n.starts_with("least_loaded plan"));
    let mut rec = super::submit::new_record(id, test, workers, strategy, sync_start)?;
    if applied {
        rec.split = "least_loaded, by reported host CPU".into();
    }
    if let Some(n) = note {
        tracing::info!(event = %n, "run event");
        rec.events.push(n);
        rec.event_seconds.push(0);
    }
    Ok(rec)
}

/// Whether `test` plans by `least_loaded` (so its workers' samples are wanted before the plan).
pub fn wants_samples(test: &TestFile) -> bool {
    test.distributed
        .as_ref()
        .and_then(|d| d.load_balancing.as_ref())
        .and_then(|l| l.least_loaded())
        .is_some()
}

/// Each listed worker's sample from its `GET /resources` (`None` where it did not answer within
/// 2 s), read concurrently.
pub async fn read_samples(
    workers: &[WorkerAddr],
    creds: &super::client::Credentials,
) -> Vec<Option<Resources>> {
    let calls = workers.iter().map(|w| {
        let c = super::client::WorkerClient::new(w, creds, std::time::Duration::from_secs(2));
        async move {
            match c.resources().await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(worker = %w.addr(), error = %e, "least_loaded: no resource sample; counted idle");
                    None
                }
            }
        }
    });
    futures_util::future::join_all(calls).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const T90: Saturation = Saturation {
        cpu_pct: 90.0,
        memory_pct: None,
    };

    fn at(capacity: u64, room: Option<u64>, cpu: Option<f64>) -> Input {
        Input {
            capacity,
            room,
            host_cpu_pct: cpu,
            host_memory_pct: None,
        }
    }

    #[test]
    fn shares_follow_spare_headroom_and_add_up() {
        // Spare 80 % and 20 %: 4 to 1.
        let p = least_loaded(
            10,
            &[at(100, None, Some(10.0)), at(100, None, Some(70.0))],
            T90,
        )
        .unwrap();
        assert_eq!(p.spare, vec![8000, 2000]);
        assert_eq!(p.weights, vec![800_000, 200_000]);
        assert_eq!(p.shares, vec![8, 2]);
        // Capacity multiplies: 50 × 80 % against 200 × 20 % is 1 to 1.
        let p = least_loaded(
            9,
            &[at(50, None, Some(10.0)), at(200, None, Some(70.0))],
            T90,
        )
        .unwrap();
        assert_eq!(p.shares, vec![5, 4], "the remainder to the first");
        // Exact totals on awkward inputs.
        for total in [0, 1, 7, 1001, 999_999] {
            let p = least_loaded(
                total,
                &[
                    at(100, None, Some(33.3)),
                    at(7, None, Some(0.1)),
                    at(100, None, None),
                ],
                T90,
            )
            .unwrap();
            assert_eq!(p.shares.iter().sum::<u64>(), total);
        }
    }

    #[test]
    fn a_saturated_worker_gets_nothing_while_others_have_room_and_a_busy_one_still_some() {
        let p = least_loaded(
            10,
            &[at(100, None, Some(95.0)), at(100, None, Some(89.99))],
            T90,
        )
        .unwrap();
        assert_eq!(
            p.spare,
            vec![0, 1],
            "just under the threshold is floored at 1"
        );
        assert_eq!(p.shares, vec![0, 10]);
        let mem = Saturation {
            cpu_pct: 90.0,
            memory_pct: Some(80.0),
        };
        let mut full = at(100, None, Some(5.0));
        full.host_memory_pct = Some(85.0);
        let p = least_loaded(4, &[full, at(100, None, Some(50.0))], mem).unwrap();
        assert_eq!(
            p.shares,
            vec![0, 4],
            "memory at or over its threshold saturates"
        );
        // Every worker saturated: by capacity.
        let p = least_loaded(
            9,
            &[at(200, None, Some(99.0)), at(100, None, Some(90.0))],
            T90,
        )
        .unwrap();
        assert!(p.all_saturated);
        assert_eq!(p.shares, vec![6, 3]);
    }

    #[test]
    fn capacity_caps_are_respected_and_the_excess_re_split() {
        // The idle one would take 9 of 10 but holds 4; the rest go to the others by weight.
        let p = least_loaded(
            10,
            &[
                at(100, Some(4), Some(0.0)),
                at(100, None, Some(80.0)),
                at(100, Some(100), Some(70.0)),
            ],
            T90,
        )
        .unwrap();
        assert_eq!(p.shares.iter().sum::<u64>(), 10);
        assert_eq!(p.shares[0], 4);
        assert_eq!(p.shares, vec![4, 2, 4]);
        // Full non-saturated workers spill onto a saturated one.
        let p = least_loaded(
            5,
            &[at(100, Some(3), Some(10.0)), at(100, Some(10), Some(95.0))],
            T90,
        )
        .unwrap();
        assert_eq!(p.shares, vec![3, 2]);
        // Nowhere to put it: the shortfall is named.
        let e = least_loaded(
            12,
            &[at(100, Some(3), Some(10.0)), at(100, Some(4), Some(95.0))],
            T90,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hold 7 of the load's 12 units (5 short)"), "{e}");
    }

    #[test]
    fn equal_inputs_plan_equally_and_ties_go_to_the_first() {
        let ins = [
            at(100, None, Some(20.0)),
            at(100, None, Some(20.0)),
            at(100, None, Some(20.0)),
        ];
        let a = least_loaded(8, &ins, T90).unwrap();
        let b = least_loaded(8, &ins, T90).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shares, vec![3, 3, 2]);
        assert_eq!(
            least_loaded(1, &[], T90).unwrap_err().to_string(),
            PlanError::NoWorkers.to_string()
        );
    }

    fn test_yaml(extra: &str) -> TestFile {
        crate::config::from_str(&format!(
            "name: t\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: 10\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\ndistributed:\n  load_balancing:\n    algorithm: least_loaded\n{extra}"
        ))
        .unwrap()
    }

    fn sample(cpu: f64, at_ms: u64) -> Option<Resources> {
        Some(Resources {
            at_ms,
            host_cpu_pct: cpu,
            ..Default::default()
        })
    }

    #[test]
    fn the_record_takes_the_planned_shares_and_states_the_samples() {
        let workers = super::super::workers::parse_list("127.0.0.1:1,127.0.0.1:2").unwrap();
        let samples = [sample(10.5, 111), sample(70.0, 222)];
        let rec = new_record("r".into(), test_yaml(""), &workers, &samples, None, false).unwrap();
        let vus: Vec<u64> = rec.workers.iter().map(|w| plan::units(&w.load)).collect();
        let want = least_loaded(10, &inputs(&workers, &samples, LoadUnit::Vus), T90).unwrap();
        assert_eq!(vus, want.shares);
        assert_eq!(vus, vec![8, 2]);
        let e = &rec.events[0];
        assert!(
            e.contains("127.0.0.1:1 host_cpu=10.5 at_ms=111 capacity=100 spare=7950"),
            "{e}"
        );
        assert!(e.ends_with("share=2"), "{e}");
        assert_eq!(rec.split, "least_loaded, by reported host CPU");
        // The command line's strategy wins, and says so.
        let rec = new_record(
            "r".into(),
            test_yaml(""),
            &workers,
            &samples,
            Some(Strategy::Even),
            false,
        )
        .unwrap();
        assert!(rec.events[0].contains("not applied"), "{:?}", rec.events);
        // A test that fixes the split itself is refused.
        let e = new_record(
            "r".into(),
            test_yaml("  strategy: even\n"),
            &workers,
            &samples,
            None,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("plans the split itself"), "{e}");
    }
}
