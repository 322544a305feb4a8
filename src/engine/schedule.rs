//! Load-pattern arithmetic, kept pure so it can be tested without a clock: when each VU of a closed
//! model starts, and when each arrival of an open model is due.

use crate::config::Load;
use std::time::Duration;

/// Start offsets of every VU of a closed model (`basic`, `stepping`); empty for `arrivals`.
///
/// `basic` spreads starts evenly over `ramp_up`: VU i of n starts at `ramp_up * i / n`, so the first
/// starts at once and the last one step before the ramp ends. `stepping` starts `start_users` at
/// once, then `step_users` more every `step_duration` until `max_users` or the test ends.
pub fn vu_starts(load: &Load) -> Vec<Duration> {
    match *load {
        Load::Basic {
            virtual_users,
            ramp_up,
            ..
        } => (0..virtual_users)
            .map(|i| ramp_up.mul_f64(i as f64 / virtual_users as f64))
            .collect(),
        Load::Stepping {
            start_users,
            step_users,
            step_duration,
            max_users,
            duration,
        } => {
            let mut out = vec![Duration::ZERO; start_users.min(max_users) as usize];
            let mut at = step_duration;
            while (out.len() as u64) < max_users && step_users > 0 && at < duration {
                let add = step_users.min(max_users - out.len() as u64);
                out.extend(std::iter::repeat_n(at, add as usize));
                at += step_duration;
            }
            out
        }
        Load::Arrivals { .. } => Vec::new(),
    }
}

/// The stepping level (VUs running) at `t`, for progress displays and tests.
pub fn users_at(load: &Load, t: Duration) -> u64 {
    vu_starts(load).iter().filter(|s| **s <= t).count() as u64
}

/// How long the test may run: `duration` when given, otherwise unbounded (`basic` with iterations).
pub fn duration(load: &Load) -> Option<Duration> {
    match *load {
        Load::Basic { duration, .. } => duration,
        Load::Stepping { duration, .. } | Load::Arrivals { duration, .. } => Some(duration),
    }
}

/// Intended start of arrival `k` (0-based) at `rate` per second: `k / rate`. Computed from `k`
/// rather than accumulated so rounding never drifts over a long run.
pub fn arrival_at(k: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(k as f64 / rate)
}

/// Number of arrivals due in `[0, duration)`.
pub fn arrival_count(rate: f64, duration: Duration) -> u64 {
    (duration.as_secs_f64() * rate - 1e-9).ceil().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn basic_spreads_starts_over_ramp_up() {
        let load = Load::Basic {
            virtual_users: 4,
            ramp_up: s(8),
            duration: Some(s(20)),
            iterations: None,
        };
        assert_eq!(vu_starts(&load), vec![s(0), s(2), s(4), s(6)]);
        let load = Load::Basic {
            virtual_users: 3,
            ramp_up: Duration::ZERO,
            duration: None,
            iterations: Some(1),
        };
        assert_eq!(vu_starts(&load), vec![Duration::ZERO; 3]);
    }

    #[test]
    fn stepping_levels() {
        let load = Load::Stepping {
            start_users: 1,
            step_users: 2,
            step_duration: s(10),
            max_users: 6,
            duration: s(60),
        };
        assert_eq!(
            vu_starts(&load),
            vec![s(0), s(10), s(10), s(20), s(20), s(30)]
        );
        assert_eq!(users_at(&load, s(0)), 1);
        assert_eq!(users_at(&load, s(15)), 3);
        assert_eq!(users_at(&load, s(59)), 6);
        // The test ends before the cap is reached.
        let short = Load::Stepping {
            start_users: 2,
            step_users: 2,
            step_duration: s(10),
            max_users: 100,
            duration: s(25),
        };
        assert_eq!(vu_starts(&short).len(), 6);
    }

    #[test]
    fn arrival_schedule() {
        assert_eq!(arrival_at(0, 10.0), Duration::ZERO);
        assert_eq!(arrival_at(25, 10.0), Duration::from_millis(2500));
        assert_eq!(arrival_count(10.0, s(3)), 30);
        assert_eq!(arrival_count(2.5, s(2)), 5);
        assert_eq!(arrival_count(0.5, s(3)), 2);
    }
}
