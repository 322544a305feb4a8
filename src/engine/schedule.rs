//! Load-pattern arithmetic, kept pure so it can be tested without a clock: when each VU of a closed
//! model starts, and when each arrival of an open model is due.

use crate::config::Load;
use std::time::Duration;

/// Start offsets of every VU of a closed model (`basic`, `stepping`, levels); empty for `arrivals`
/// and for a list of phases (each phase is scheduled on its own).
///
/// `basic` spreads starts evenly over `ramp_up`: VU i of n starts at `ramp_up * i / n`, so the first
/// starts at once and the last one step before the ramp ends. `stepping` starts `start_users` at
/// once, then `step_users` more every `step_duration` until `max_users` or the test ends.
pub fn vu_starts(load: &Load) -> Vec<Duration> {
    vu_windows(load)
        .into_iter()
        .map(|(start, _)| start)
        .collect()
}

/// When each VU of a closed model starts, and when it is stopped (`None`: at the end of the run).
/// Levels add VUs evenly over a level's `ramp_up` when they rise, and stop the most recently
/// started ones, evenly over the `ramp_up`, when they fall.
pub fn vu_windows(load: &Load) -> Vec<(Duration, Option<Duration>)> {
    match load {
        Load::Basic {
            virtual_users,
            ramp_up,
            ..
        } => (0..*virtual_users)
            .map(|i| (ramp_up.mul_f64(i as f64 / *virtual_users as f64), None))
            .collect(),
        Load::Stepping {
            start_users,
            step_users,
            step_duration,
            max_users,
            duration,
        } => {
            let mut out = vec![(Duration::ZERO, None); (*start_users).min(*max_users) as usize];
            let mut at = *step_duration;
            while (out.len() as u64) < *max_users && *step_users > 0 && at < *duration {
                let add = (*step_users).min(max_users - out.len() as u64);
                out.extend(std::iter::repeat_n((at, None), add as usize));
                at += *step_duration;
            }
            out
        }
        Load::Levels { levels } => {
            let mut out: Vec<(Duration, Option<Duration>)> = Vec::new();
            let mut running: Vec<usize> = Vec::new();
            let mut at = Duration::ZERO;
            for level in levels {
                let now = running.len() as u64;
                if level.users > now {
                    let add = level.users - now;
                    for i in 0..add {
                        running.push(out.len());
                        out.push((at + level.ramp_up.mul_f64(i as f64 / add as f64), None));
                    }
                } else {
                    let stop = now - level.users;
                    for i in 0..stop {
                        let vu = running.pop().expect("as many running as counted");
                        out[vu].1 = Some(at + level.ramp_up.mul_f64((i + 1) as f64 / stop as f64));
                    }
                }
                at += level.duration;
            }
            out
        }
        Load::Arrivals { .. } | Load::Phases(_) => Vec::new(),
    }
}

/// The stepping level (VUs running) at `t`, for progress displays and tests.
pub fn users_at(load: &Load, t: Duration) -> u64 {
    vu_windows(load)
        .iter()
        .filter(|(start, stop)| *start <= t && stop.is_none_or(|s| s > t))
        .count() as u64
}

/// How long the test may run: `duration` when given, otherwise unbounded (`basic` with iterations,
/// or run once). Arrivals with `vu_duration` run until the last arrival's VU is done. Phases add up.
pub fn duration(load: &Load) -> Option<Duration> {
    match load {
        Load::Basic { duration, .. } => *duration,
        Load::Stepping { duration, .. } => Some(*duration),
        Load::Levels { levels } => Some(levels.iter().map(|l| l.duration).sum()),
        Load::Arrivals {
            duration, shape, ..
        } => Some(duration.saturating_add(shape.vu_duration.unwrap_or_default())),
        Load::Phases(ps) => ps
            .iter()
            .map(|p| duration(&p.load))
            .try_fold(Duration::ZERO, |a, d| d.map(|d| a.saturating_add(d))),
    }
}

/// When each phase of a list starts, from the start of the first, if every phase but the last has a
/// fixed duration (a phase bounded by iterations ends when it ends: `None`).
pub fn phase_offsets(phases: &[crate::config::Phase]) -> Option<Vec<Duration>> {
    let mut at = Duration::ZERO;
    let mut out = Vec::with_capacity(phases.len());
    for (k, p) in phases.iter().enumerate() {
        out.push(at);
        if k + 1 < phases.len() {
            at = at.saturating_add(duration(&p.load)?);
        }
    }
    Some(out)
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

/// The arrival instants of an open model whose rate moves (a `ramp_up`, a `rate_profile`), in
/// order, lazily: segments of linearly changing rate, each arrival where the cumulative count
/// reaches the next whole number. With a constant rate this is exactly [`arrival_at`].
pub struct Arrivals {
    /// (start, length, rate at start, rate at end).
    segments: Vec<(f64, f64, f64, f64)>,
    seg: usize,
    /// Arrivals due before the current segment (fractional).
    before: f64,
    next: u64,
}

impl Arrivals {
    pub fn new(rate: f64, duration: Duration, shape: &crate::config::ArrivalShape) -> Self {
        let total = duration.as_secs_f64();
        let mut segments = Vec::new();
        let mut at = 0.0;
        let first = shape.profile.first().map_or(1.0, |(f, _)| *f) * rate;
        let ramp = shape.ramp_up.as_secs_f64().min(total);
        if ramp > 0.0 {
            segments.push((0.0, ramp, 0.0, first));
            at = ramp;
        }
        let mut last = first;
        for (f, d) in &shape.profile {
            if at >= total {
                break;
            }
            let len = d.as_secs_f64().min(total - at);
            segments.push((at, len, f * rate, f * rate));
            last = f * rate;
            at += len;
        }
        if at < total {
            segments.push((at, total - at, last, last));
        }
        Self {
            segments,
            seg: 0,
            before: 0.0,
            next: 0,
        }
    }
}

impl Iterator for Arrivals {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        while let Some(&(start, len, a, b)) = self.segments.get(self.seg) {
            let need = self.next as f64 - self.before;
            let slope = (b - a) / len.max(f64::MIN_POSITIVE);
            // Solve a*t + slope*t^2/2 = need for t in [0, len).
            let t = if slope.abs() < 1e-12 {
                if a > 0.0 {
                    need / a
                } else {
                    f64::INFINITY
                }
            } else {
                let disc = a * a + 2.0 * slope * need;
                if disc < 0.0 {
                    f64::INFINITY
                } else {
                    (-a + disc.sqrt()) / slope
                }
            };
            if t < len - 1e-9 {
                self.next += 1;
                return Some(Duration::from_secs_f64((start + t).max(0.0)));
            }
            self.before += a * len + slope * len * len / 2.0;
            self.seg += 1;
        }
        None
    }
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
    fn levels_rise_and_fall() {
        use crate::config::Level;
        let load = Load::Levels {
            levels: vec![
                Level {
                    users: 2,
                    ramp_up: Duration::ZERO,
                    duration: s(10),
                },
                Level {
                    users: 4,
                    ramp_up: s(4),
                    duration: s(10),
                },
                Level {
                    users: 1,
                    ramp_up: Duration::ZERO,
                    duration: s(5),
                },
            ],
        };
        let w = vu_windows(&load);
        assert_eq!(w.len(), 4);
        assert_eq!(w[2], (s(10), Some(s(20))));
        assert_eq!(w[3], (s(12), Some(s(20))));
        assert_eq!(users_at(&load, s(5)), 2);
        assert_eq!(users_at(&load, s(15)), 4);
        assert_eq!(users_at(&load, s(22)), 1);
        assert_eq!(duration(&load), Some(s(25)));
    }

    #[test]
    fn moving_rates() {
        use crate::config::ArrivalShape;
        let flat: Vec<_> = Arrivals::new(10.0, s(3), &ArrivalShape::default()).collect();
        assert_eq!(flat.len() as u64, arrival_count(10.0, s(3)));
        for (k, t) in flat.iter().enumerate() {
            assert!((t.as_secs_f64() - arrival_at(k as u64, 10.0).as_secs_f64()).abs() < 1e-9);
        }
        // A ramp from 0 to 10/s over 2 s makes 10 arrivals, then 10/s for 1 s makes 10 more.
        let ramp = ArrivalShape {
            ramp_up: s(2),
            ..Default::default()
        };
        let got: Vec<_> = Arrivals::new(10.0, s(3), &ramp).collect();
        assert!((19..=20).contains(&got.len()), "{}", got.len());
        assert!(got.windows(2).all(|w| w[0] <= w[1]));
        let profile = ArrivalShape {
            profile: vec![(0.5, s(2)), (1.0, s(1))],
            ..Default::default()
        };
        let got: Vec<_> = Arrivals::new(10.0, s(3), &profile).collect();
        assert_eq!(got.len(), 20);
        assert_eq!(got.iter().filter(|t| **t < s(2)).count(), 10);
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
