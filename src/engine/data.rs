//! CSV data for data-driven scenarios. Rows come from the file, or inline from a controller that
//! split them across workers; each mode decides which row a VU gets for an iteration.

use crate::config::{CsvData, CsvMode};
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Hands rows to VUs.
#[derive(Debug)]
pub struct Feeder {
    rows: Vec<HashMap<String, String>>,
    mode: CsvMode,
    cursor: AtomicU64,
}

impl Feeder {
    /// Reads the rows (or takes the inline ones).
    pub fn load(csv: &CsvData) -> Result<Self, CsvError> {
        let rows = match &csv.rows {
            Some(rows) => rows
                .iter()
                .map(|r| r.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .collect(),
            None => read_rows(&csv.file, csv.delimiter.unwrap_or(','))?,
        };
        Ok(Self {
            rows,
            mode: csv.mode,
            cursor: AtomicU64::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row for VU `vu` in its iteration `iteration`; `None` when there are no rows.
    pub fn row(&self, vu: u64, iteration: u64) -> Option<&HashMap<String, String>> {
        let n = self.rows.len() as u64;
        if n == 0 {
            return None;
        }
        let i = match self.mode {
            CsvMode::Sequential => (vu + iteration) % n,
            CsvMode::Shared => self.cursor.fetch_add(1, Ordering::Relaxed) % n,
            CsvMode::Random => rand::thread_rng().gen_range(0..n),
        };
        self.rows.get(i as usize)
    }
}

/// A CSV file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[error("csv_data `{path}`: {source}")]
pub struct CsvError {
    pub path: String,
    pub source: csv::Error,
}

/// Reads a CSV file with a header row into maps of column → value.
pub fn read_rows(path: &str, delimiter: char) -> Result<Vec<HashMap<String, String>>, CsvError> {
    let err = |source| CsvError {
        path: path.to_string(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter as u8)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(err)?;
    let headers = reader.headers().map_err(err)?.clone();
    reader
        .records()
        .map(|r| {
            let r = r.map_err(err)?;
            Ok(headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn feeder(mode: CsvMode) -> Feeder {
        let rows = (0..3)
            .map(|i| BTreeMap::from([("n".to_string(), i.to_string())]))
            .collect();
        Feeder::load(&CsvData {
            file: String::new(),
            mode,
            delimiter: None,
            rows: Some(rows),
        })
        .unwrap()
    }

    #[test]
    fn modes_pick_rows() {
        let f = feeder(CsvMode::Sequential);
        assert_eq!(f.row(0, 0).unwrap()["n"], "0");
        assert_eq!(f.row(0, 1).unwrap()["n"], "1");
        assert_eq!(f.row(1, 2).unwrap()["n"], "0");
        let f = feeder(CsvMode::Shared);
        let got: Vec<_> = (0..4)
            .map(|vu| f.row(vu, 0).unwrap()["n"].clone())
            .collect();
        assert_eq!(got, ["0", "1", "2", "0"]);
        let f = feeder(CsvMode::Random);
        assert!(f.row(0, 0).is_some());
    }

    #[test]
    fn reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.csv");
        std::fs::write(&p, "email, id\na@x.io, 1\nb@x.io, 2\n").unwrap();
        let rows = read_rows(p.to_str().unwrap(), ',').unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["email"], "b@x.io");
        assert!(read_rows("/nonexistent.csv", ',').is_err());
    }
}
