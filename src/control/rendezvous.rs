//! Rendezvous across workers. A rendezvous point's `count` is over the whole run, but each worker
//! only sees its own VUs, and workers never call the controller. So while a run with rendezvous
//! steps is going, the controller polls every worker's points a few times a second, adds up who
//! waits where, and once a point's total reaches its count, releases that point on every worker
//! (all calls at once, so the spike starts together). Each release names the generation the worker
//! reported, so a repeated or late release frees nobody new.

use super::client::WorkerClient;
use crate::api::worker as api;
use crate::config::{Step, TestFile};
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the points are polled: the release latency a spike can see.
const POLL: Duration = Duration::from_millis(50);

/// Each rendezvous point of `test` and the count it waits for (the largest, if named twice).
pub fn points(test: &TestFile) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for step in test.scenarios.iter().flat_map(|s| &s.steps) {
        if let Step::Rendezvous(r) = step {
            let c = out.entry(r.point.clone()).or_insert(0);
            *c = (*c).max(r.count.max(1));
        }
    }
    out
}

/// Releases points across `workers` until `stop`. Workers that do not answer are skipped: their
/// waiters time out on their own, as the step's `timeout` says.
pub async fn coordinate(
    workers: Vec<WorkerClient>,
    run_id: String,
    counts: BTreeMap<String, u64>,
    stop: CancellationToken,
) {
    if counts.is_empty() {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let states = join_all(workers.iter().map(|w| w.rendezvous(&run_id))).await;
        let states: Vec<(usize, api::RendezvousState)> = states
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| s.ok().map(|s| (i, s)))
            .collect();
        let releases = due(&states, &counts, &run_id);
        join_all(
            releases
                .iter()
                .map(|(i, release)| workers[*i].release(release)),
        )
        .await;
    }
}

/// The releases to send: for every point whose total waiters reach its count, one per worker that
/// has waiters there.
fn due(
    states: &[(usize, api::RendezvousState)],
    counts: &BTreeMap<String, u64>,
    run_id: &str,
) -> Vec<(usize, api::Release)> {
    let mut out = Vec::new();
    for (point, count) in counts {
        let at_point = states
            .iter()
            .filter_map(|(i, s)| s.points.get(point).map(|p| (*i, *p)))
            .filter(|(_, p)| p.waiting > 0);
        let total: u64 = at_point.clone().map(|(_, p)| p.waiting).sum();
        if total < *count {
            continue;
        }
        out.extend(at_point.map(|(i, p)| {
            let release = api::Release {
                run_id: run_id.to_string(),
                point: point.clone(),
                generation: p.generation,
            };
            (i, release)
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rendezvous::PointState;

    fn state(points: &[(&str, u64, u64)]) -> api::RendezvousState {
        api::RendezvousState {
            run_id: "r".into(),
            points: points
                .iter()
                .map(|(n, waiting, generation)| {
                    let p = PointState {
                        waiting: *waiting,
                        generation: *generation,
                    };
                    (n.to_string(), p)
                })
                .collect(),
        }
    }

    #[test]
    fn releases_a_point_once_the_total_over_workers_reaches_its_count() {
        let counts = BTreeMap::from([("spike".to_string(), 4), ("other".to_string(), 9)]);
        let short = [
            (0, state(&[("spike", 2, 0)])),
            (1, state(&[("spike", 1, 3)])),
        ];
        assert!(due(&short, &counts, "r").is_empty(), "3 of 4 waiting");
        let full = [
            (0, state(&[("spike", 2, 0), ("other", 1, 0)])),
            (1, state(&[("spike", 2, 3)])),
            (2, state(&[("spike", 0, 1)])),
        ];
        let r = due(&full, &counts, "r");
        let sent: Vec<(usize, &str, u64)> = r
            .iter()
            .map(|(i, rel)| (*i, rel.point.as_str(), rel.generation))
            .collect();
        assert_eq!(sent, [(0, "spike", 0), (1, "spike", 3)]);
    }
}
