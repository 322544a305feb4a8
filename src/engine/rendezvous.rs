//! Rendezvous points: VUs that reach a named point wait until `count` of them are there (or the
//! timeout passes), then all go at once, producing a coordinated spike.
//!
//! In one process ([`Rendezvous::default`]) the point releases itself when its count is reached. On a
//! worker of a distributed run ([`Rendezvous::coordinated`]) the count is over all workers, which
//! only the controller sees: the point just counts who waits, and the controller, having summed the
//! counts of every worker, releases each worker's waiters through the worker API (workers never
//! call the controller). A release names the generation it saw, so a repeated one frees nobody new.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

struct Point {
    waiting: u64,
    generation: watch::Sender<u64>,
}

/// What a point looks like from outside: who waits, and which release they wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointState {
    pub waiting: u64,
    /// Bumped by every release; a release for an older generation is ignored.
    pub generation: u64,
}

/// All rendezvous points of one run.
#[derive(Default)]
pub struct Rendezvous {
    points: Mutex<HashMap<String, Point>>,
    /// Released from outside (by the controller) instead of by the local count.
    coordinated: bool,
}

impl Rendezvous {
    /// Points whose count spans several workers: only [`Rendezvous::release`] lets waiters go.
    pub fn coordinated() -> Self {
        Self {
            coordinated: true,
            ..Default::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Point>> {
        self.points.lock().expect("rendezvous lock poisoned")
    }

    /// Waits at `name` until released (by `count` local waiters, or by the controller) or until
    /// `timeout` passes. Returns true when released, false on timeout.
    pub async fn wait(&self, name: &str, count: u64, timeout: Duration) -> bool {
        let mut rx = {
            let mut points = self.lock();
            let p = points.entry(name.to_string()).or_insert_with(|| Point {
                waiting: 0,
                generation: watch::channel(0).0,
            });
            p.waiting += 1;
            if !self.coordinated && p.waiting >= count.max(1) {
                p.waiting = 0;
                p.generation.send_modify(|g| *g += 1);
                return true;
            }
            p.generation.subscribe()
        };
        let released = tokio::time::timeout(timeout, rx.changed()).await.is_ok();
        if !released {
            if let Some(p) = self.lock().get_mut(name) {
                p.waiting = p.waiting.saturating_sub(1);
            }
        }
        released
    }

    /// Every point's waiters and generation.
    pub fn state(&self) -> BTreeMap<String, PointState> {
        self.lock()
            .iter()
            .map(|(name, p)| {
                let state = PointState {
                    waiting: p.waiting,
                    generation: *p.generation.borrow(),
                };
                (name.clone(), state)
            })
            .collect()
    }

    /// Lets everyone waiting at `name` go, if they still wait for `generation`. Returns how many
    /// were released (0 for a stale or repeated release).
    pub fn release(&self, name: &str, generation: u64) -> u64 {
        let mut points = self.lock();
        let Some(p) = points.get_mut(name) else {
            return 0;
        };
        if *p.generation.borrow() != generation || p.waiting == 0 {
            return 0;
        }
        let released = std::mem::take(&mut p.waiting);
        p.generation.send_modify(|g| *g += 1);
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn releases_when_count_reached() {
        let r = Arc::new(Rendezvous::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let r = r.clone();
                tokio::spawn(async move { r.wait("p", 3, Duration::from_secs(10)).await })
            })
            .collect();
        for w in waiters {
            assert!(w.await.unwrap());
        }
    }

    #[tokio::test]
    async fn times_out_when_short() {
        let r = Rendezvous::default();
        assert!(!r.wait("p", 2, Duration::from_millis(50)).await);
    }

    #[tokio::test]
    async fn a_coordinated_point_waits_for_its_release() {
        let r = Arc::new(Rendezvous::coordinated());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                tokio::spawn(async move { r.wait("p", 1, Duration::from_secs(10)).await })
            })
            .collect();
        // Count 1 is reached, but only the controller may release a coordinated point.
        while r.state().get("p").map(|s| s.waiting) != Some(2) {
            tokio::task::yield_now().await;
        }
        assert!(waiters.iter().all(|w| !w.is_finished()));
        assert_eq!(r.release("p", 7), 0, "a stale generation releases nobody");
        assert_eq!(r.release("p", 0), 2);
        assert_eq!(r.release("p", 0), 0, "a repeated release frees nobody new");
        for w in waiters {
            assert!(w.await.unwrap());
        }
        assert_eq!(
            r.state()["p"],
            PointState {
                waiting: 0,
                generation: 1
            }
        );
    }
}
