//! CSV data across workers. The controller reads each scenario's CSV file when the run is submitted
//! and keeps the rows inline in the run's test, so workers (and a master replica on another machine)
//! never read the controller's disk. `partition` gives each worker a disjoint slice, row i to the
//! i-th worker modulo the number taking part; `replicate` and `shared` give every worker every row.

use super::run::{WorkerRun, WorkerState};
use crate::config::{CsvDistributionMode, TestFile};
use crate::engine::data::{read_csv, CsvError};

/// Reads every scenario's CSV file into inline rows.
pub fn inline_rows(test: &mut TestFile) -> Result<(), CsvError> {
    for s in &mut test.scenarios {
        if let Some(csv) = &mut s.csv_data {
            if csv.rows.is_none() {
                let rows = read_csv(csv)?;
                csv.rows = Some(rows.into_iter().map(|r| r.into_iter().collect()).collect());
            }
        }
    }
    Ok(())
}

fn mode(test: &TestFile) -> CsvDistributionMode {
    test.distributed
        .as_ref()
        .and_then(|d| d.data_consistency.as_ref())
        .and_then(|d| d.csv_data.as_ref())
        .map(|c| c.distribution_mode)
        .unwrap_or_default()
}

/// Keeps, in worker `i`'s copy of the test, the rows that worker should see.
pub fn apply_rows(test: &mut TestFile, workers: &[WorkerRun], i: usize) {
    if mode(test) != CsvDistributionMode::Partition {
        return;
    }
    // A restarted worker's new entry (`auto_restart`) is given its old entry's rows, by index.
    let taking_part: Vec<usize> = (0..workers.len())
        .filter(|&w| workers[w].state != WorkerState::Idle && workers[w].restart_of.is_none())
        .collect();
    let Some(rank) = taking_part.iter().position(|&w| w == i) else {
        return;
    };
    let n = taking_part.len();
    for s in &mut test.scenarios {
        if let Some(rows) = s.csv_data.as_mut().and_then(|c| c.rows.as_mut()) {
            let mine = std::mem::take(rows)
                .into_iter()
                .enumerate()
                .filter(|(j, _)| j % n == rank)
                .map(|(_, r)| r);
            *rows = mine.collect();
        }
    }
}
