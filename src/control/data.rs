//! CSV data across workers. The controller reads each scenario's CSV file when the run is submitted
//! and keeps the rows inline in the run's test, so workers (and a master replica on another machine)
//! never read the controller's disk. `partition` gives each worker a disjoint slice of the n
//! taking part (ranked in the order the workers are listed), by `partition_strategy`:
//! `round_robin` (row i to worker i mod n), `block` (contiguous blocks in file order, the first
//! `len mod n` workers one row more) or `hash` (FNV-1a of the `partition_key` column, mod n);
//! `replicate` and `shared` give every worker every row.

use super::run::{WorkerRun, WorkerState};
use crate::config::{CsvDistribution, CsvDistributionMode, PartitionStrategy, TestFile};
use crate::engine::data::{read_csv, CsvError};
use std::collections::BTreeMap;

/// Reads every scenario's CSV file into inline rows; with `partition_strategy: hash`, every row
/// must have the `partition_key` column.
pub fn inline_rows(test: &mut TestFile) -> Result<(), CsvError> {
    let key = settings(test).and_then(|c| c.partition_key.clone());
    for s in &mut test.scenarios {
        if let Some(csv) = &mut s.csv_data {
            if csv.rows.is_none() {
                let rows = read_csv(csv)?;
                csv.rows = Some(rows.into_iter().map(|r| r.into_iter().collect()).collect());
            }
            if let (Some(k), Some(rows)) = (&key, &csv.rows) {
                if let Some(row) = rows.iter().find(|r| !r.contains_key(k)) {
                    let columns: Vec<&str> = row.keys().map(String::as_str).collect();
                    return Err(CsvError {
                        path: csv.file.clone(),
                        source: csv::Error::from(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "distributed.data_consistency.csv_data.partition_key `{k}` is not a column of this file (columns: {})",
                                columns.join(", ")
                            ),
                        )),
                    });
                }
            }
        }
    }
    Ok(())
}

fn settings(test: &TestFile) -> Option<&CsvDistribution> {
    test.distributed
        .as_ref()
        .and_then(|d| d.data_consistency.as_ref())
        .and_then(|d| d.csv_data.as_ref())
}

fn mode(test: &TestFile) -> CsvDistributionMode {
    settings(test)
        .map(|c| c.distribution_mode)
        .unwrap_or_default()
}

/// FNV-1a, 64 bits: the same value picks the same worker in every run and on every build.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The rows of `rows` that worker `rank` of `n` keeps.
fn partition(
    rows: Vec<BTreeMap<String, String>>,
    strategy: PartitionStrategy,
    key: Option<&str>,
    rank: usize,
    n: usize,
) -> Vec<BTreeMap<String, String>> {
    let len = rows.len();
    let (base, extra) = (len / n, len % n);
    let start = rank * base + rank.min(extra);
    let end = start + base + usize::from(rank < extra);
    rows.into_iter()
        .enumerate()
        .filter(|(j, r)| match strategy {
            PartitionStrategy::RoundRobin => j % n == rank,
            PartitionStrategy::Block => (start..end).contains(j),
            PartitionStrategy::Hash => {
                let v = key.and_then(|k| r.get(k)).map_or("", String::as_str);
                fnv1a(v) % n as u64 == rank as u64
            }
        })
        .map(|(_, r)| r)
        .collect()
}

/// Keeps, in worker `i`'s copy of the test, the rows that worker should see.
pub fn apply_rows(test: &mut TestFile, workers: &[WorkerRun], i: usize) {
    if mode(test) != CsvDistributionMode::Partition {
        return;
    }
    // A restarted or replacing worker's entry (`auto_restart`, `replacement_workers`) runs its
    // first entry's rows.
    let mut i = i;
    // (An entry only continues an earlier one, so this ends.)
    while let Some(first) = workers.get(i).and_then(|w| w.restart_of).filter(|&f| f < i) {
        i = first;
    }
    // A restarted worker's new entry (`auto_restart`) is given its old entry's rows, by index.
    let taking_part: Vec<usize> = (0..workers.len())
        .filter(|&w| workers[w].state != WorkerState::Idle && workers[w].restart_of.is_none())
        .collect();
    let Some(rank) = taking_part.iter().position(|&w| w == i) else {
        return;
    };
    let n = taking_part.len();
    let (strategy, key) = settings(test)
        .map(|c| {
            (
                c.partition_strategy.unwrap_or_default(),
                c.partition_key.clone(),
            )
        })
        .unwrap_or_default();
    for s in &mut test.scenarios {
        if let Some(rows) = s.csv_data.as_mut().and_then(|c| c.rows.as_mut()) {
            *rows = partition(std::mem::take(rows), strategy, key.as_deref(), rank, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<BTreeMap<String, String>> {
        (0..n)
            .map(|i| BTreeMap::from([("id".to_string(), i.to_string())]))
            .collect()
    }

    fn ids(rows: &[BTreeMap<String, String>]) -> Vec<usize> {
        rows.iter().map(|r| r["id"].parse().unwrap()).collect()
    }

    fn split(len: usize, s: PartitionStrategy, n: usize) -> Vec<Vec<usize>> {
        (0..n)
            .map(|rank| ids(&partition(rows(len), s, Some("id"), rank, n)))
            .collect()
    }

    #[test]
    fn round_robin_deals_rows_in_turn() {
        assert_eq!(
            split(7, PartitionStrategy::RoundRobin, 3),
            vec![vec![0, 3, 6], vec![1, 4], vec![2, 5]]
        );
    }

    #[test]
    fn block_gives_contiguous_runs_with_the_remainder_first() {
        assert_eq!(
            split(8, PartitionStrategy::Block, 3),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]
        );
        assert_eq!(
            split(2, PartitionStrategy::Block, 3),
            vec![vec![0], vec![1], vec![]]
        );
    }

    #[test]
    fn hash_keeps_equal_values_on_one_worker_and_covers_every_row_once() {
        let parts = split(50, PartitionStrategy::Hash, 3);
        let mut all: Vec<usize> = parts.concat();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        for (rank, part) in parts.iter().enumerate() {
            for id in part {
                assert_eq!(fnv1a(&id.to_string()) % 3, rank as u64);
            }
        }
        // Known FNV-1a 64 vectors.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
