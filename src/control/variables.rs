//! Global variables across workers (`distributed.data_consistency.variables`). A VU's extraction
//! into `global.NAME` sets the value on its worker; workers never call the controller, so while a
//! run whose test extracts global values is going, the controller reads every worker's values a
//! few times a second, merges them by the rule every worker uses (see `engine::globals`), and
//! sends the merged set to each worker that lacks part of it. A value set on one worker thus
//! reaches the others' VUs within about two polls.

use super::client::WorkerClient;
use crate::api::worker as api;
use crate::config::{Step, TestFile};
use crate::engine::globals::{self, Value, PREFIX};
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the values are read: the propagation latency is about twice this.
const POLL: Duration = Duration::from_millis(100);

/// Whether `test` extracts any value into a `global.` name.
pub fn used(test: &TestFile) -> bool {
    test.scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .any(|step| match step {
            Step::Http(h) => h.extract.iter().any(|e| e.name.starts_with(PREFIX)),
            _ => false,
        })
}

/// Merges and spreads the workers' global variables until `stop`. Workers that do not answer are
/// skipped; they get the values on a later poll. `clients` follows the run's workers.
pub async fn coordinate(
    clients: tokio::sync::watch::Receiver<Vec<WorkerClient>>,
    run_id: String,
    later_wins: bool,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        // Read afresh each poll: a worker restarted by `auto_restart` joins the list mid-run.
        let workers = clients.borrow().clone();
        let states = join_all(workers.iter().map(|w| w.variables(&run_id))).await;
        let states: Vec<(usize, BTreeMap<String, Value>)> = states
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| s.ok().map(|s| (i, s.values)))
            .collect();
        let mut merged = BTreeMap::new();
        for (_, values) in &states {
            globals::merge(&mut merged, values, later_wins);
        }
        let body = api::Variables {
            run_id: run_id.clone(),
            values: merged.clone(),
        };
        join_all(
            states
                .iter()
                .filter(|(_, values)| *values != merged)
                .map(|(i, _)| workers[*i].set_variables(&body)),
        )
        .await;
    }
}
