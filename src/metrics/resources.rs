//! What a load generator costs its machine: this process's and the host's CPU and memory, read with
//! the `sysinfo` crate. A generator above ~90 % CPU measures its own queueing as the target's
//! latency, so a sample says when it is [`Resources::saturated`]. Workers sample on every pull of
//! their controller (about once a second) and send it with their batches; the controller keeps the
//! samples per worker (see `control::run::Monitor`).
//!
//! CPU usage is a rate: `sysinfo` computes it between two refreshes, so the first sample of a
//! [`Sampler`] reads 0 % and every later one covers the time since the one before.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// CPU use, in percent of the whole host, at or above which a generator counts as saturated.
pub const SATURATED_CPU_PCT: f64 = 90.0;

/// One sample of a process and its host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// When it was taken, in the sampling machine's clock (Unix ms).
    pub at_ms: u64,
    /// This process's CPU use in percent of the whole host (all cores = 100).
    pub process_cpu_pct: f64,
    /// This process's resident memory, bytes.
    pub process_memory_bytes: u64,
    /// The host's CPU use in percent (all cores = 100).
    pub host_cpu_pct: f64,
    /// The host's used memory, bytes.
    pub host_memory_used_bytes: u64,
    /// The host's total memory, bytes.
    pub host_memory_total_bytes: u64,
    /// Number of logical CPUs of the host.
    pub cpus: u32,
    /// The process or the host is at or above [`SATURATED_CPU_PCT`].
    pub saturated: bool,
}

impl Resources {
    /// Whether `process_cpu_pct` or `host_cpu_pct` is at or above `threshold_pct`.
    pub fn above(&self, threshold_pct: f64) -> bool {
        self.process_cpu_pct >= threshold_pct || self.host_cpu_pct >= threshold_pct
    }
}

/// Takes [`Resources`] samples of the current process; cheap to share (one lock per sample).
pub struct Sampler {
    sys: Mutex<(System, Option<(std::time::Instant, u64)>)>,
    pid: Option<Pid>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    /// A sampler of the current process.
    pub fn new() -> Self {
        let mut sys = System::new();
        let pid = sysinfo::get_current_pid().ok();
        // The baseline the first real sample's CPU rates are measured from.
        sys.refresh_cpu_usage();
        if let Some(pid) = pid {
            sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
        }
        let base = pid
            .and_then(|p| sys.process(p))
            .map(|p| (std::time::Instant::now(), p.accumulated_cpu_time()));
        Self {
            sys: Mutex::new((sys, base)),
            pid,
        }
    }

    /// A sample now; CPU figures cover the time since the previous sample.
    pub fn sample(&self) -> Resources {
        let mut guard = match self.sys.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (sys, last) = &mut *guard;
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let cpus = sys.cpus().len().max(1);
        let (process_cpu_pct, process_memory_bytes) = match self.pid {
            Some(pid) => {
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing().with_cpu().with_memory(),
                );
                sys.process(pid).map_or((0.0, 0), |p| {
                    // CPU time used since the last sample over the wall time since, scaled to
                    // the host (two cores busy on a four-core host = 50 %).
                    let now = (std::time::Instant::now(), p.accumulated_cpu_time());
                    let pct = match last.replace(now) {
                        Some((at, cpu_ms)) => {
                            let wall_ms = now.0.duration_since(at).as_secs_f64() * 1000.0;
                            let used = now.1.saturating_sub(cpu_ms) as f64;
                            if wall_ms > 0.0 {
                                (used * 100.0 / wall_ms / cpus as f64).min(100.0)
                            } else {
                                0.0
                            }
                        }
                        None => 0.0,
                    };
                    (pct, p.memory())
                })
            }
            None => (0.0, 0),
        };
        let mut r = Resources {
            at_ms: crate::time::now_ms(),
            process_cpu_pct: round1(process_cpu_pct),
            process_memory_bytes,
            host_cpu_pct: round1(sys.global_cpu_usage() as f64),
            host_memory_used_bytes: sys.used_memory(),
            host_memory_total_bytes: sys.total_memory(),
            cpus: cpus as u32,
            saturated: false,
        };
        r.saturated = r.above(SATURATED_CPU_PCT);
        r
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_process_shows_cpu_and_memory() {
        let s = Sampler::new();
        // Burn CPU on this thread for a while, so the next sample sees it.
        let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let r = s.sample();
        assert!(r.process_cpu_pct > 0.0, "{r:?}");
        assert!(r.process_memory_bytes > 1_000_000, "{r:?}");
        assert!(
            r.host_memory_total_bytes >= r.host_memory_used_bytes,
            "{r:?}"
        );
        assert!(r.host_memory_used_bytes > 0 && r.cpus >= 1, "{r:?}");
    }

    #[test]
    fn saturated_means_at_or_above_the_threshold() {
        let r = Resources {
            host_cpu_pct: 90.0,
            ..Default::default()
        };
        assert!(r.above(SATURATED_CPU_PCT));
        assert!(!r.above(90.1));
    }
}
