//! The shared counters of `state_backend: raft` on one engine (or one worker's engines): block
//! leasing. The controller owns each counter's high-water mark (replicated through raft before it
//! grants anything); it grants each worker ranges of values on its calls, sized to the rate the
//! worker claims them at, and a VU claims the next value of its worker's ranges, waiting for the
//! next grant when they are empty. Ranges never overlap, so every value is claimed once in the
//! whole run; values are not dense (a range's unclaimed tail is never handed to anyone else) and
//! only increase within one worker.
//!
//! A run without a controller (`perfornium run`) holds the counter itself: [`Leases::local`]
//! hands out 1, 2, 3, … with nothing to wait for.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::watch;

/// One counter on this worker, as the controller needs to see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Values granted and not yet claimed.
    pub left: u64,
    /// Values claimed here since the run was prepared.
    pub claimed: u64,
    /// VUs waiting for a value.
    pub waiting: u64,
    /// The highest value granted here (0: none).
    pub granted_to: u64,
}

#[derive(Debug, Default)]
struct Held {
    /// Granted ranges, `first..=last`, oldest first.
    ranges: VecDeque<(u64, u64)>,
    counter: Counter,
}

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<String, Held>,
    /// Run-wide claimed counts, as the controller last sent them.
    totals: BTreeMap<String, u64>,
}

/// A worker's (or a local run's) leased counters.
#[derive(Debug)]
pub struct Leases {
    inner: Mutex<Inner>,
    /// Bumped at every grant, so waiting VUs look again.
    granted: watch::Sender<u64>,
    /// No controller: values are made here, densely.
    local: bool,
}

impl Leases {
    /// Counters whose values come from the controller's grants.
    pub fn granted() -> Self {
        Self {
            inner: Mutex::default(),
            granted: watch::channel(0).0,
            local: false,
        }
    }

    /// Counters held in this process (a run without a controller).
    pub fn local() -> Self {
        Self {
            local: true,
            ..Self::granted()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("leases lock")
    }

    /// Claims the next value of counter `name`, waiting for a grant when none is held. The caller
    /// bounds the wait (the run's stop).
    pub async fn claim(&self, name: &str) -> u64 {
        let mut rx = self.granted.subscribe();
        let mut counted = false;
        loop {
            {
                let mut inner = self.lock();
                let held = inner.counters.entry(name.to_string()).or_default();
                if self.local {
                    held.counter.claimed += 1;
                    held.counter.granted_to = held.counter.claimed;
                    return held.counter.claimed;
                }
                if let Some(v) = take(&mut held.ranges) {
                    held.counter.left -= 1;
                    held.counter.claimed += 1;
                    if counted {
                        held.counter.waiting -= 1;
                    }
                    return v;
                }
                if !counted {
                    held.counter.waiting += 1;
                    counted = true;
                }
                rx.borrow_and_update();
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`: unreachable, but never spin.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Run-wide claimed count of `name`: exact in a local run; in a distributed run, what the
    /// controller counted at its last call.
    pub fn get(&self, name: &str) -> u64 {
        let inner = self.lock();
        if self.local {
            return inner.counters.get(name).map_or(0, |h| h.counter.claimed);
        }
        inner.totals.get(name).copied().unwrap_or(0)
    }

    /// Every counter used or granted so far.
    pub fn report(&self) -> BTreeMap<String, Counter> {
        self.lock()
            .counters
            .iter()
            .map(|(k, h)| (k.clone(), h.counter))
            .collect()
    }

    /// Adds granted ranges (a range that does not start above what was granted before is a
    /// repeat and is skipped) and the controller's run-wide counts; wakes waiting VUs.
    pub fn grant(&self, grants: &BTreeMap<String, (u64, u64)>, totals: &BTreeMap<String, u64>) {
        let mut inner = self.lock();
        for (name, &(first, last)) in grants {
            let held = inner.counters.entry(name.clone()).or_default();
            if first == 0 || last < first || first <= held.counter.granted_to {
                continue;
            }
            held.ranges.push_back((first, last));
            held.counter.left += last - first + 1;
            held.counter.granted_to = last;
        }
        for (name, &n) in totals {
            let t = inner.totals.entry(name.clone()).or_default();
            *t = (*t).max(n);
        }
        drop(inner);
        self.granted.send_modify(|g| *g += 1);
    }
}

/// The first value of the oldest range, dropping the range once used up.
fn take(ranges: &mut VecDeque<(u64, u64)>) -> Option<u64> {
    let (first, last) = ranges.front_mut()?;
    let v = *first;
    if *first == *last {
        ranges.pop_front();
    } else {
        *first += 1;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_local_counter_is_dense() {
        let l = Leases::local();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got: Vec<u64> = rt.block_on(async { vec![l.claim("a").await, l.claim("a").await] });
        assert_eq!(got, [1, 2]);
        assert_eq!(l.get("a"), 2);
        assert_eq!(l.get("b"), 0);
    }

    #[tokio::test]
    async fn claims_wait_for_a_grant_and_repeated_grants_add_nothing() {
        let l = Arc::new(Leases::granted());
        let waiter = tokio::spawn({
            let l = l.clone();
            async move {
                (
                    l.claim("id").await,
                    l.claim("id").await,
                    l.claim("id").await,
                )
            }
        });
        while l.report().get("id").map_or(0, |c| c.waiting) == 0 {
            tokio::task::yield_now().await;
        }
        let g = BTreeMap::from([("id".to_string(), (5, 6))]);
        l.grant(&g, &BTreeMap::new());
        l.grant(&g, &BTreeMap::new());
        let g = BTreeMap::from([("id".to_string(), (9, 9))]);
        l.grant(&g, &BTreeMap::from([("id".to_string(), 3)]));
        assert_eq!(waiter.await.unwrap(), (5, 6, 9));
        let c = l.report()["id"];
        assert_eq!(
            c,
            Counter {
                left: 0,
                claimed: 3,
                waiting: 0,
                granted_to: 9
            }
        );
        assert_eq!(l.get("id"), 3);
    }
}
