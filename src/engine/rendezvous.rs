//! Rendezvous points: VUs that reach a named point wait until `count` of them are there (or the
//! timeout passes), then all go at once, producing a coordinated spike. This is the in-process
//! barrier; a distributed run extends it across workers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

struct Point {
    waiting: u64,
    generation: watch::Sender<u64>,
}

/// All rendezvous points of one run.
#[derive(Default)]
pub struct Rendezvous {
    points: Mutex<HashMap<String, Point>>,
}

impl Rendezvous {
    /// Waits at `name` until `count` VUs are waiting or `timeout` passes. Returns true when released
    /// by the count, false on timeout.
    pub async fn wait(&self, name: &str, count: u64, timeout: Duration) -> bool {
        let mut rx = {
            let mut points = self.points.lock().expect("rendezvous lock poisoned");
            let p = points.entry(name.to_string()).or_insert_with(|| Point {
                waiting: 0,
                generation: watch::channel(0).0,
            });
            p.waiting += 1;
            if p.waiting >= count.max(1) {
                p.waiting = 0;
                p.generation.send_modify(|g| *g += 1);
                return true;
            }
            p.generation.subscribe()
        };
        let released = tokio::time::timeout(timeout, rx.changed()).await.is_ok();
        if !released {
            if let Some(p) = self
                .points
                .lock()
                .expect("rendezvous lock poisoned")
                .get_mut(name)
            {
                p.waiting = p.waiting.saturating_sub(1);
            }
        }
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
}
