//! Live control of a running run (`PATCH /runs/{id}`, the console's `+`/`-`/`p` keys, and
//! `load_balancing.algorithm: adaptive`): a new total of VUs (closed models) or arrivals per
//! second (open), and pause/resume. The change is recorded in the run's record first
//! ([`LoadControl`], replicated with it), then the driver sends each running worker its whole new
//! share through the worker's `/scale` route with [`api::LiveShare`]: the worker replaces the load
//! it runs with that share for the time left, and pauses or resumes it. Generations only go up,
//! so re-sending a recorded share (a retry, or a new leader after a failover) changes nothing
//! twice.
//!
//! The new total is split over the workers still running in proportion to the shares the run's
//! plan gave them (so `weights`, `distribution`, capacities and regions keep their proportions);
//! `adaptive` balancing moves units between workers without changing the total. After a change
//! the load is flat at its new figure for the rest of the run (a `stepping` ramp does not go on),
//! the run still ends when its duration does, and pausing does not extend it.

use super::run::{Phase, RunRecord, WorkerState};
use crate::api::master::{LoadControl, LoadUnit, RunPatch};
use crate::api::worker as api;
use crate::config::{Load, TestFile};
use crate::time::now_ms;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// Why a change was refused, with the HTTP status that goes with it.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{error}")]
pub struct Refusal {
    /// 409 (the run is not in a state to change) or 422 (the change does not fit the run).
    pub status: u16,
    pub error: String,
}

impl Refusal {
    fn conflict(error: impl Into<String>) -> Self {
        Self {
            status: 409,
            error: error.into(),
        }
    }

    fn unfit(error: impl Into<String>) -> Self {
        Self {
            status: 422,
            error: error.into(),
        }
    }
}

/// A change asked of a run's driver, and where its answer goes.
pub struct ControlRequest {
    pub patch: RunPatch,
    pub reply: oneshot::Sender<Result<LoadControl, Refusal>>,
}

/// Hands changes to the driver of one run.
#[derive(Clone)]
pub struct ControlHandle(pub(crate) mpsc::UnboundedSender<ControlRequest>);

impl ControlHandle {
    /// Asks the driver for `patch`; the answer comes once the change is recorded (saved in the
    /// run's record), before the workers have it. `None`: the driver is gone.
    pub async fn change(&self, patch: RunPatch) -> Option<Result<LoadControl, Refusal>> {
        let (reply, rx) = oneshot::channel();
        self.0.send(ControlRequest { patch, reply }).ok()?;
        rx.await.ok()
    }
}

/// Whether worker entry `w` is running its share (and can take a new one).
pub fn running(rec: &RunRecord, w: usize) -> bool {
    matches!(
        rec.workers[w].state,
        WorkerState::Started | WorkerState::Running
    )
}

/// The units worker `w` runs now: its recorded live share, else its planned share plus what it
/// took over from failed workers.
pub fn current_units(rec: &RunRecord, w: usize) -> u64 {
    match rec.control.as_ref().and_then(|c| c.shares.get(w)) {
        Some(&u) => u,
        None => super::plan::units(&rec.workers[w].load) + rec.workers[w].extra_units,
    }
}

/// The total the run's running workers carry now, in units.
pub fn current_total(rec: &RunRecord) -> u64 {
    (0..rec.workers.len())
        .filter(|&w| running(rec, w))
        .map(|w| current_units(rec, w))
        .sum()
}

/// Splits `total` units over the running workers in proportion to their planned shares (largest
/// remainder, ties to the first); others get 0.
pub fn replan(rec: &RunRecord, total: u64) -> Vec<u64> {
    proportional(total, &running_weights(rec))
}

/// Each worker entry's planned share (at least 1) when it runs, 0 when not: the weights live
/// changes are split by.
fn running_weights(rec: &RunRecord) -> Vec<u64> {
    (0..rec.workers.len())
        .map(|w| {
            if running(rec, w) {
                super::plan::units(&rec.workers[w].load).max(1)
            } else {
                0
            }
        })
        .collect()
}

/// The most units worker entry `w` may run: its `max_vus`, or `max_rps` in milli-arrivals/s for an
/// arrivals load; `None`: no cap.
pub fn room(rec: &RunRecord, w: usize) -> Option<u64> {
    let a = &rec.workers[w].addr;
    match super::plan::unit(&rec.test.load) {
        LoadUnit::Vus => a.max_vus,
        LoadUnit::ArrivalsPerSecond => a.max_rps.map(|r| r.saturating_mul(1000)),
    }
}

/// [`replan`] within each running worker's capacity ([`room`]): when a proportional share is
/// over a worker's room, the worker is capped and the excess re-split over those with room left
/// (by the same weights). Returns the shares and the units that fit nowhere (0 when all fit).
pub fn replan_within(rec: &RunRecord, total: u64) -> (Vec<u64>, u64) {
    let shares = replan(rec, total);
    let rooms: Vec<Option<u64>> = (0..rec.workers.len())
        .map(|w| {
            if running(rec, w) {
                room(rec, w)
            } else {
                Some(0)
            }
        })
        .collect();
    if shares
        .iter()
        .zip(&rooms)
        .all(|(&s, r)| r.is_none_or(|r| s <= r))
    {
        return (shares, 0);
    }
    let weights = running_weights(rec);
    let mut out = vec![0; weights.len()];
    let short = super::balance::fill(total, &weights, &rooms, &mut out);
    (out, short)
}

/// Moves up to `give` units onto the workers `to` (in proportion to `weights`, one per entry of
/// `to`) within each one's room; adds them to `shares` and returns how many were placed.
pub fn give_within(
    rec: &RunRecord,
    give: u64,
    to: &[usize],
    weights: &[u64],
    shares: &mut [u64],
) -> u64 {
    let rooms: Vec<Option<u64>> = to
        .iter()
        .map(|&w| room(rec, w).map(|r| r.saturating_sub(shares[w])))
        .collect();
    let mut out = vec![0; to.len()];
    let left = super::balance::fill(give, weights, &rooms, &mut out);
    for (k, &w) in to.iter().enumerate() {
        shares[w] += out[k];
    }
    give - left
}

/// `total` split by `weights` (largest remainder, ties to the first); all 0 when every weight is.
pub fn proportional(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| w as u128).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut out: Vec<u64> = weights
        .iter()
        .map(|&w| (total as u128 * w as u128 / sum) as u64)
        .collect();
    let mut rest = total - out.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    order.sort_by_key(|&i| {
        let r = (total as u128 * weights[i] as u128) % sum;
        (std::cmp::Reverse(r), i)
    });
    for i in order.into_iter().cycle() {
        if rest == 0 {
            break;
        }
        out[i] += 1;
        rest -= 1;
    }
    out
}

/// Why the run's load cannot be changed live at all, if it cannot.
fn changeable(rec: &RunRecord) -> Result<Duration, Refusal> {
    if rec.phase.is_final() {
        return Err(Refusal::conflict(format!(
            "run `{}` has already ended ({})",
            rec.id, rec.phase
        )));
    }
    if rec.phase != Phase::Started {
        return Err(Refusal::conflict(format!(
            "run `{}` has not started yet ({}); change it once it runs",
            rec.id, rec.phase
        )));
    }
    if rec.stop_requested {
        return Err(Refusal::conflict(format!("run `{}` is stopping", rec.id)));
    }
    if matches!(rec.test.load, Load::Phases(_)) {
        return Err(Refusal::unfit(
            "a load made of phases cannot be changed live: each phase has its own figures, and a \
             new total would have to say which phases it replaces",
        ));
    }
    let left = super::redistribute::remaining(rec).ok_or_else(|| {
        Refusal::unfit(
            "the load is bounded by iterations, not time: a new share would have no end to run to",
        )
    })?;
    if left < Duration::from_secs(1) {
        return Err(Refusal::conflict("less than a second of the run is left"));
    }
    Ok(left)
}

/// The control record `patch` leads to from `rec`'s, or why not. `Ok(None)`: nothing changes
/// (a repeated `change_id`, or the same targets again).
pub fn decide(rec: &RunRecord, patch: &RunPatch) -> Result<Option<LoadControl>, Refusal> {
    patch.check().map_err(Refusal::unfit)?;
    if let (Some(c), Some(id)) = (&rec.control, &patch.change_id) {
        if c.change_id.as_ref() == Some(id) {
            return Ok(None);
        }
    }
    changeable(rec)?;
    let unit = super::plan::unit(&rec.test.load);
    let asked = match (patch.virtual_users, patch.arrival_rate, unit) {
        (Some(_), _, LoadUnit::ArrivalsPerSecond) => {
            return Err(Refusal::unfit(
                "the run's load is `arrivals`: change `arrival_rate`, not `virtual_users`",
            ))
        }
        (_, Some(_), LoadUnit::Vus) => {
            return Err(Refusal::unfit(
                "the run's load is counted in virtual users: change `virtual_users`, not `arrival_rate`",
            ))
        }
        (Some(n), _, _) => Some(n),
        (_, Some(r), _) => Some((r * 1000.0).round() as u64),
        (None, None, _) => None,
    };
    let runners = (0..rec.workers.len()).filter(|&w| running(rec, w)).count();
    if runners == 0 {
        return Err(Refusal::conflict("no worker is running the run"));
    }
    let prev_paused = rec.control.as_ref().is_some_and(|c| c.paused);
    let paused = patch.paused.unwrap_or(prev_paused);
    let total_now = current_total(rec);
    let shares = match asked {
        Some(t) if t != total_now => {
            let (shares, short) = replan_within(rec, t);
            if short > 0 {
                let label = unit.label();
                return Err(Refusal::unfit(format!(
                    "{} {label} do not fit the running workers' capacity (max_vus / max_rps): they hold {} {label} in all, {} {label} short; nothing changed",
                    super::plan::amount(t, unit),
                    super::plan::amount(t - short, unit),
                    super::plan::amount(short, unit),
                )));
            }
            shares
        }
        _ => (0..rec.workers.len())
            .map(|w| {
                if running(rec, w) {
                    current_units(rec, w)
                } else {
                    0
                }
            })
            .collect(),
    };
    let total = asked.unwrap_or(total_now);
    if asked.is_none_or(|t| t == total_now) && paused == prev_paused {
        return Ok(None);
    }
    let generation = rec.control.as_ref().map_or(0, |c| c.generation) + 1;
    Ok(Some(LoadControl {
        generation,
        change_id: patch.change_id.clone(),
        unit,
        target: super::plan::amount(total, unit),
        paused,
        shares,
        applied: false,
        changed_ms: now_ms(),
        acked: rec
            .control
            .as_ref()
            .map(|c| c.acked.clone())
            .unwrap_or_default(),
    }))
}

/// The event line for an accepted change.
pub fn describe(rec: &RunRecord, before: f64, c: &LoadControl, why: &str) -> String {
    let label = c.unit.label();
    let shares: Vec<String> = c
        .shares
        .iter()
        .enumerate()
        .filter(|(w, _)| running(rec, *w))
        .map(|(w, &u)| {
            format!(
                "{} {}",
                rec.workers[w].addr.addr(),
                super::plan::amount(u, c.unit)
            )
        })
        .collect();
    let pause = if c.paused { ", paused" } else { "" };
    format!(
        "live change {} ({why}): {before} → {} {label}{pause}; shares: {}",
        c.generation,
        c.target,
        shares.join(", ")
    )
}

/// What worker `w` is sent for the recorded control: its share of the load for the time `left`,
/// with its CSV rows.
pub fn share_for(rec: &RunRecord, w: usize, c: &LoadControl, left: Duration) -> api::Scale {
    let units = c.shares.get(w).copied().unwrap_or(0);
    let mut test: TestFile = rec.test.clone();
    super::data::apply_rows(&mut test, &rec.workers, w);
    let of = super::plan::units(&rec.test.load).max(1);
    test.load = super::redistribute::scaled(&rec.test.load, units.max(1), of, left);
    api::Scale {
        run_id: rec.id.clone(),
        scale_id: format!("live-{}", c.generation),
        test,
        live: Some(api::LiveShare {
            generation: c.generation,
            units,
            base_units: super::plan::units(&rec.workers[w].load) + rec.workers[w].extra_units,
            paused: c.paused,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A started run of `vus` VUs over workers capped at `caps` VUs (`None`: no cap), all running.
    fn started(vus: u64, caps: &[Option<u64>]) -> RunRecord {
        let test = crate::config::from_str(&format!("name: t\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: {vus}\n  duration: 60s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n")).unwrap();
        let mut workers: Vec<_> = (1..=caps.len() as u16)
            .map(|p| crate::api::worker::WorkerAddr::new("127.0.0.1", p))
            .collect();
        for (w, c) in workers.iter_mut().zip(caps) {
            w.max_vus = *c;
        }
        let mut rec = super::super::submit::new_record(
            "r".into(),
            test,
            &workers,
            Some(crate::config::Strategy::Even),
            false,
        )
        .unwrap();
        rec.phase = Phase::Started;
        rec.start_at_ms = Some(now_ms());
        for w in &mut rec.workers {
            w.state = WorkerState::Running;
        }
        rec
    }

    #[test]
    fn a_live_change_is_split_within_capacity_or_refused_saying_by_how_much() {
        // 4 VUs even on caps 3 and 10: 2 and 2. Asking 12: 6/6 would put 6 on a 3-VU worker; the
        // excess goes to the other.
        let rec = started(4, &[Some(3), Some(10)]);
        assert_eq!(replan_within(&rec, 12), (vec![3, 9], 0));
        let up = RunPatch {
            virtual_users: Some(12),
            ..Default::default()
        };
        assert_eq!(decide(&rec, &up).unwrap().unwrap().shares, vec![3, 9]);
        // 15 VUs: the workers hold 13; refused with the shortfall, nothing recorded.
        let over = RunPatch {
            virtual_users: Some(15),
            ..Default::default()
        };
        let e = decide(&rec, &over).unwrap_err();
        assert_eq!(e.status, 422);
        assert!(
            e.error
                .contains("hold 13 VUs in all, 2 VUs short; nothing changed"),
            "{}",
            e.error
        );
        // Without caps, the split is the plain proportional one.
        let free = started(4, &[None, None]);
        assert_eq!(replan_within(&free, 7), (replan(&free, 7), 0));
    }

    #[test]
    fn a_failed_share_re_planned_under_live_control_stops_at_the_survivors_capacity() {
        let mut rec = started(9, &[Some(3), Some(5), None]);
        rec.workers[2].state = WorkerState::Failed;
        // 9 units over the two running workers, whose caps hold 8.
        assert_eq!(replan_within(&rec, 9), (vec![3, 5, 0], 1));
        // Adaptive moves stop at the receiver's room too.
        let mut shares = vec![1, 4, 0];
        assert_eq!(give_within(&rec, 3, &[1], &[4], &mut shares), 1);
        assert_eq!(shares, vec![1, 5, 0]);
    }

    #[test]
    fn proportional_splits_keep_the_total_and_the_proportions() {
        assert_eq!(proportional(30, &[10, 10, 10]), vec![10, 10, 10]);
        assert_eq!(proportional(31, &[10, 10, 10]), vec![11, 10, 10]);
        assert_eq!(proportional(30, &[5, 0, 5]), vec![15, 0, 15]);
        assert_eq!(proportional(7, &[3, 1]), vec![5, 2]);
        assert_eq!(proportional(5, &[0, 0]), vec![0, 0]);
        let big = proportional(300_000, &[33_334, 33_333, 33_333]);
        assert_eq!(big.iter().sum::<u64>(), 300_000);
    }

    #[test]
    fn patches_that_ask_for_nothing_or_nonsense_are_refused() {
        assert!(RunPatch::default().check().is_err());
        let both = RunPatch {
            virtual_users: Some(3),
            arrival_rate: Some(3.0),
            ..Default::default()
        };
        assert!(both.check().unwrap_err().contains("not both"));
        let zero = RunPatch {
            virtual_users: Some(0),
            ..Default::default()
        };
        assert!(zero.check().unwrap_err().contains("paused"));
        let nan = RunPatch {
            arrival_rate: Some(f64::NAN),
            ..Default::default()
        };
        assert!(nan.check().is_err());
    }
}
