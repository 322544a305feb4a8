//! Handing a failed worker's share to the survivors (`load_redistribution`): its units (VUs in
//! closed models, arrival rate in `arrivals`) are split evenly across the workers still running,
//! each of which runs its part as extra load until the test's end, with the failed worker's slice of
//! partitioned CSV rows split among them. A share defined by iterations, not time, cannot be handed
//! on: nobody knows how many iterations the dead worker had left.

use super::plan;
use super::run::{RunRecord, WorkerState};
use crate::config::{Load, TestFile};
use crate::time::now_ms;
use std::time::Duration;

/// Time left in the run, if its load is time-bound and it has started.
pub fn remaining(rec: &RunRecord) -> Option<Duration> {
    let total = crate::engine::schedule::duration(&rec.test.load)?;
    let started = rec.start_at_ms.map(|t| t as f64).or_else(|| {
        rec.workers
            .iter()
            .filter_map(|w| w.started_at_ms)
            .reduce(f64::min)
    })?;
    let elapsed = Duration::from_secs_f64(((now_ms() as f64 - started) / 1000.0).max(0.0));
    total.checked_sub(elapsed)
}

/// The extra load carrying `units` of `load` for `left`.
pub fn scaled(load: &Load, units: u64, of: u64, left: Duration) -> Load {
    match load {
        Load::Phases(ps) => match ps.last() {
            Some(p) => scaled(&p.load, units, of, left),
            None => load.clone(),
        },
        Load::Basic { .. } | Load::Stepping { .. } | Load::Levels { .. } => Load::Basic {
            virtual_users: units,
            ramp_up: Duration::ZERO,
            duration: Some(left),
            iterations: None,
        },
        Load::Arrivals {
            max_virtual_users,
            shape,
            ..
        } => Load::Arrivals {
            rate: units as f64 / 1000.0,
            duration: left,
            max_virtual_users: max_virtual_users.map(|m| (m * units).div_ceil(of.max(1)).max(1)),
            preallocation: None,
            shape: crate::config::ArrivalShape {
                vu_duration: shape.vu_duration,
                ..Default::default()
            },
        },
    }
}

/// What a failed worker's share becomes: the extra tests to send, as (survivor index, test with
/// its extra load and rows, units), and the units no survivor had the capacity for.
pub struct Handover {
    pub parts: Vec<(usize, TestFile, u64)>,
    pub shortfall: u64,
}

/// The extra tests to send, or why not. A survivor never gets more than its capacity
/// (`max_vus`, or `max_rps` in open models) allows beyond what it already runs; what fits nowhere
/// is the [`Handover::shortfall`].
pub fn plan_for(rec: &RunRecord, dead: usize) -> Result<Handover, String> {
    let left =
        remaining(rec).ok_or("its share is defined by iterations or the run has not started")?;
    if left < Duration::from_secs(1) {
        return Err("less than a second of the run is left".into());
    }
    let dead_load = &rec.workers[dead].load;
    let units = plan::units(dead_load);
    let unit = plan::unit(&rec.test.load);
    let room: Vec<Option<u64>> = (0..rec.workers.len())
        .map(|j| {
            let w = &rec.workers[j];
            if !matches!(w.state, WorkerState::Started | WorkerState::Running) {
                return None;
            }
            let cap = match unit {
                crate::api::master::LoadUnit::Vus => w.addr.max_vus,
                crate::api::master::LoadUnit::ArrivalsPerSecond => {
                    w.addr.max_rps.map(|r| r.saturating_mul(1000))
                }
            };
            Some(cap.map_or(u64::MAX, |c| {
                c.saturating_sub(super::rescale::current_units(rec, j))
            }))
        })
        .collect();
    let (extra, shortfall) = plan::redistribute_within(units, &room).map_err(|e| e.to_string())?;
    let takers: Vec<usize> = (0..extra.len()).filter(|&j| extra[j] > 0).collect();
    let mut dead_test = rec.test.clone();
    super::data::apply_rows(&mut dead_test, &rec.workers, dead);
    let parts = takers
        .iter()
        .enumerate()
        .map(|(rank, &j)| {
            let mut test = dead_test.clone();
            test.load = scaled(dead_load, extra[j], units, left);
            for s in &mut test.scenarios {
                if let Some(rows) = s.csv_data.as_mut().and_then(|c| c.rows.as_mut()) {
                    let mine = std::mem::take(rows)
                        .into_iter()
                        .enumerate()
                        .filter(|(k, _)| k % takers.len() == rank);
                    *rows = mine.map(|(_, r)| r).collect();
                }
            }
            (j, test, extra[j])
        })
        .collect();
    Ok(Handover { parts, shortfall })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_loads() {
        let basic = Load::Basic {
            virtual_users: 10,
            ramp_up: Duration::from_secs(5),
            duration: Some(Duration::from_secs(60)),
            iterations: None,
        };
        assert_eq!(
            scaled(&basic, 3, 10, Duration::from_secs(20)),
            Load::Basic {
                virtual_users: 3,
                ramp_up: Duration::ZERO,
                duration: Some(Duration::from_secs(20)),
                iterations: None
            }
        );
        let open = Load::Arrivals {
            rate: 10.0,
            duration: Duration::from_secs(60),
            max_virtual_users: Some(20),
            preallocation: None,
            shape: Default::default(),
        };
        match scaled(&open, 2500, 5000, Duration::from_secs(30)) {
            Load::Arrivals {
                rate,
                max_virtual_users,
                ..
            } => {
                assert_eq!(rate, 2.5);
                assert_eq!(max_virtual_users, Some(10));
            }
            other => panic!("{other:?}"),
        }
    }
}
