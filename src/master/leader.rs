//! Only the leader drives runs. This task watches raft's metrics; when this replica becomes leader it
//! resumes every unfinished run from its saved phase (re-attaching to workers through idempotent,
//! run-id keyed calls), and when it stops being leader it aborts its drivers at once, without
//! touching the workers, so two replicas never drive the same run for long.

use super::store::RaftStore;
use crate::control::client::Credentials;
use crate::control::driver::Driver;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A running driver task and the token that asks its run to stop.
type Driving = (JoinHandle<()>, CancellationToken);

/// The drivers this replica runs, by run id, with each run's stop token.
#[derive(Clone, Default)]
pub struct Drivers {
    inner: Arc<Mutex<HashMap<String, Driving>>>,
    /// How many drivers this replica has started, ever.
    started: Arc<std::sync::atomic::AtomicU64>,
    /// Where each driven run takes live changes of its load (`PATCH /runs/{id}`).
    controls: Arc<Mutex<HashMap<String, crate::control::rescale::ControlHandle>>>,
}

impl Drivers {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (JoinHandle<()>, CancellationToken)>> {
        self.inner.lock().expect("drivers lock")
    }

    /// Asks run `id` to stop, if this replica drives it. Returns whether it does.
    pub fn stop(&self, id: &str) -> bool {
        self.lock().get(id).map(|(_, stop)| stop.cancel()).is_some()
    }

    /// The live-control handle of run `id`, if this replica drives it.
    pub fn control(&self, id: &str) -> Option<crate::control::rescale::ControlHandle> {
        if !self.is_driving(id) {
            return None;
        }
        self.controls
            .lock()
            .expect("controls lock")
            .get(id)
            .cloned()
    }

    /// True when run `id` has a live driver here.
    pub fn is_driving(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|(h, _)| !h.is_finished())
    }

    /// How many drivers this replica has started since it began.
    pub fn started(&self) -> u64 {
        self.started.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts driving every unfinished run that has no live driver here. The check and the start
    /// happen under one lock: the submit handler and the supervisor call this concurrently, and
    /// two drivers of one run would acknowledge batches to the workers behind each other's back.
    pub fn resume_all(&self, store: &RaftStore, creds: &Credentials) {
        let mut drivers = self.lock();
        for rec in store.runs().into_iter().filter(|r| !r.phase.is_final()) {
            if drivers.get(&rec.id).is_some_and(|(h, _)| !h.is_finished()) {
                continue;
            }
            let stop = CancellationToken::new();
            if rec.stop_requested {
                stop.cancel();
            }
            let id = rec.id.clone();
            info!(run_id = %id, phase = %rec.phase, "resuming run as leader");
            let driver = Driver::new(store.clone(), rec, creds, stop.clone())
                .with_pool(super::pool::source(store));
            self.controls
                .lock()
                .expect("controls lock")
                .insert(id.clone(), driver.control());
            self.started
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let retained = store.clone();
            let handle = tokio::spawn(async move {
                // An Err means the record could not be saved: this replica is no longer leader.
                if let Ok(rec) = driver.drive().await {
                    // Retention (`results.collection.retention.keep_runs/keep_days`) acts when a
                    // run ends; a failure leaves the records in place and is tried again after
                    // the next run.
                    if rec.phase.is_final() {
                        if let Err(e) = retained.apply_retention(&rec).await {
                            warn!(run_id = %rec.id, "retention: {e}");
                        }
                    }
                }
            });
            drivers.insert(id, (handle, stop));
        }
    }

    /// Aborts every driver (this replica lost leadership); the workers are not touched.
    pub fn abort_all(&self) {
        for (id, (handle, _)) in self.lock().drain() {
            if !handle.is_finished() {
                warn!(run_id = %id, "no longer leader: stopped driving the run (workers untouched)");
            }
            handle.abort();
        }
    }
}

/// Follows leadership until `shutdown`: drive while leader, abort when not.
pub async fn supervise(
    store: RaftStore,
    drivers: Drivers,
    creds: Credentials,
    shutdown: CancellationToken,
) {
    let mut metrics = store.replica.metrics();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    let mut seen = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = metrics.changed() => {
                if changed.is_err() {
                    break;
                }
                // Metrics change at every heartbeat and every quorum check (including the one
                // below); only a change of role, term or leader is news here.
                let now = {
                    let m = metrics.borrow_and_update();
                    (m.state, m.current_term, m.current_leader)
                };
                if seen == Some(now) {
                    continue;
                }
                seen = Some(now);
                let status = store.replica.status();
                match status.role {
                    perfornium_raft::Role::Leader => info!(
                        term = status.term,
                        members = status.members.len(),
                        "elected leader"
                    ),
                    role => info!(
                        %role,
                        term = status.term,
                        leader = status.leader_id,
                        leader_addr = status.leader_addr.as_deref().unwrap_or("none"),
                        "raft role"
                    ),
                }
            }
            _ = tick.tick() => {}
        }
        // The read barrier makes sure this replica has applied everything committed before it resumes.
        if store.replica.status().is_leader && store.replica.ensure_leader().await.is_ok() {
            drivers.resume_all(&store, &creds);
        } else {
            drivers.abort_all();
        }
    }
    drivers.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::store::RunStore;

    /// `resume_all` runs from the submit handler and from the supervisor's tick at the same time.
    /// Two drivers for one run would each acknowledge batches to the workers with their own
    /// `since`, so one could skip batches the other had acknowledged: at most one may start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_resumes_start_one_driver_per_run() {
        let m = crate::master::embedded::Embedded::open(None).await.unwrap();
        let test = crate::config::from_str("name: t\nload:\n  pattern: basic\n  virtual_users: 2\n  duration: 1s\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        url: http://127.0.0.1:9/\n").unwrap();
        let workers = crate::control::workers::parse_list("127.0.0.1:1,127.0.0.1:2").unwrap();
        let rec = crate::control::submit::new_record(
            "race".into(),
            test,
            &workers,
            Some(crate::control::plan::Strategy::Even),
            false,
        )
        .unwrap();
        m.store.save(&rec).await.unwrap();
        let drivers = Drivers::default();
        let creds = Credentials::default();
        let runtime = tokio::runtime::Handle::current();
        let callers = 8;
        let barrier = std::sync::Barrier::new(callers);
        std::thread::scope(|s| {
            for _ in 0..callers {
                s.spawn(|| {
                    let _in_runtime = runtime.enter();
                    barrier.wait();
                    drivers.resume_all(&m.store, &creds);
                });
            }
        });
        assert_eq!(drivers.started(), 1, "one driver for the run");
        assert!(drivers.is_driving("race"));
        drivers.abort_all();
        m.close().await.unwrap();
    }
}
