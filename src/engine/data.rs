//! CSV data for data-driven scenarios. Rows come from the file, or inline from a controller that
//! split them across workers; each mode decides which row a VU gets for an iteration.

use crate::config::{CsvData, CsvExhausted, CsvPolicy, CsvScope};
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Hands rows to VUs.
#[derive(Debug)]
pub struct Feeder {
    rows: Vec<HashMap<String, String>>,
    policy: CsvPolicy,
    /// The order rows are taken in (shuffled once for `order: random` with a cursor).
    order: Vec<usize>,
    cursor: AtomicU64,
}

/// What a VU gets when it asks for a row.
#[derive(Debug, PartialEq)]
pub enum Pick<'a> {
    Row(&'a HashMap<String, String>),
    /// No row this time (`on_exhausted: no_value`, no rows when rows cycle, or `each_vu` after
    /// the first).
    None,
    /// The rows ran out: this VU stops (`stop_vu`, `cycleOnExhaustion: false`, `unique`).
    StopVu,
    /// The rows ran out: the whole run stops (`stop_test`).
    StopTest,
}

impl Feeder {
    /// Reads the rows (or takes the inline ones), keeps those the `filter` passes and renames
    /// columns as `variables` says. `csv_mode` is the scenario's (or the global) `csv_mode`.
    pub fn load(csv: &CsvData, csv_mode: Option<&str>) -> Result<Self, CsvError> {
        let policy = csv.policy(csv_mode).map_err(|e| CsvError {
            path: csv.file.clone(),
            source: csv::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)),
        })?;
        let rows = match &csv.rows {
            Some(rows) => rows
                .iter()
                .map(|r| r.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .collect(),
            None => read_csv(csv)?,
        };
        let rows = shape_rows(csv, rows);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        if policy.random && policy.scope != CsvScope::Global {
            use rand::seq::SliceRandom;
            order.shuffle(&mut rand::thread_rng());
        }
        Ok(Self {
            rows,
            policy,
            order,
            cursor: AtomicU64::new(0),
        })
    }

    /// `change_policy: each_vu`: a VU keeps the first row it got.
    pub fn keeps_row(&self) -> bool {
        self.policy.per_vu
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row for VU `vu` in its iteration `iteration`.
    pub fn row(&self, vu: u64, iteration: u64) -> Pick<'_> {
        let n = self.rows.len() as u64;
        if n == 0 {
            // No rows at all (an empty file, or a worker's empty share of a partition) is rows
            // that ran out at once when running out stops the VU or the test.
            return match self.policy.on_exhausted {
                CsvExhausted::StopVu => Pick::StopVu,
                CsvExhausted::StopTest => Pick::StopTest,
                CsvExhausted::Cycle | CsvExhausted::NoValue => Pick::None,
            };
        }
        let at = |i: u64| Pick::Row(&self.rows[self.order[(i % n) as usize]]);
        match self.policy.scope {
            CsvScope::Offset => at(vu + iteration),
            CsvScope::Local => at(vu),
            CsvScope::Global if self.policy.random => {
                Pick::Row(&self.rows[rand::thread_rng().gen_range(0..n) as usize])
            }
            CsvScope::Global | CsvScope::Unique => {
                let i = self.cursor.fetch_add(1, Ordering::Relaxed);
                if i < n {
                    return at(i);
                }
                match self.policy.on_exhausted {
                    CsvExhausted::Cycle => at(i),
                    CsvExhausted::NoValue => Pick::None,
                    CsvExhausted::StopVu => Pick::StopVu,
                    CsvExhausted::StopTest => Pick::StopTest,
                }
            }
        }
    }
}

/// Applies `filter` and `variables` (renames) to rows.
fn shape_rows(csv: &CsvData, rows: Vec<HashMap<String, String>>) -> Vec<HashMap<String, String>> {
    let filter = csv
        .filter
        .as_deref()
        .and_then(|f| crate::config::parse_filter(f).ok());
    rows.into_iter()
        .filter(|row| match &filter {
            None => true,
            Some((col, op, want)) => {
                let got = row.get(col).map(String::as_str).unwrap_or("");
                let cmp = match (got.parse::<f64>(), want.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.partial_cmp(&b),
                    _ => Some(got.cmp(want.as_str())),
                };
                use std::cmp::Ordering::*;
                match (*op, cmp) {
                    ("=", Some(Equal))
                    | (">=", Some(Greater | Equal))
                    | ("<=", Some(Less | Equal)) => true,
                    (">", Some(Greater)) | ("<", Some(Less)) => true,
                    ("!=", c) => c != Some(Equal),
                    _ => false,
                }
            }
        })
        .map(|row| {
            if csv.variables.is_empty() {
                return row;
            }
            row.into_iter()
                .map(|(k, v)| match csv.variables.get(&k) {
                    Some(name) => (name.clone(), v),
                    None => (k, v),
                })
                .collect()
        })
        .collect()
}

/// Reads `csv.file` with its parse options: `delimiter`, `columns` (no header row then),
/// `skipFirstLine`; blank lines are skipped.
pub fn read_csv(csv: &CsvData) -> Result<Vec<HashMap<String, String>>, CsvError> {
    let path = csv.file.as_str();
    let err = |source| CsvError {
        path: path.to_string(),
        source,
    };
    let delimiter = csv.delimiter.unwrap_or(',');
    let text = std::fs::read_to_string(path).map_err(|e| err(csv::Error::from(e)))?;
    let mut lines: Vec<&str> = text.lines().collect();
    if csv.skip_first_line == Some(true) && !lines.is_empty() {
        lines.remove(0);
    }
    let body = lines.join("\n");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter as u8)
        .trim(csv::Trim::All)
        .has_headers(csv.columns.is_none())
        .from_reader(body.as_bytes());
    let headers: Vec<String> = match &csv.columns {
        Some(c) => c.clone(),
        None => reader
            .headers()
            .map_err(err)?
            .iter()
            .map(String::from)
            .collect(),
    };
    reader
        .records()
        .filter(|r| {
            r.as_ref()
                .map_or(true, |r| !(r.len() == 1 && r[0].is_empty()))
        })
        .map(|r| {
            let r = r.map_err(err)?;
            Ok(headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.clone(), v.to_string()))
                .collect())
        })
        .collect()
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
    read_csv(&CsvData {
        file: path.to_string(),
        delimiter: Some(delimiter),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn csv_with(f: impl FnOnce(&mut CsvData)) -> CsvData {
        let rows = (0..3)
            .map(|i| BTreeMap::from([("n".to_string(), i.to_string())]))
            .collect();
        let mut c = CsvData {
            rows: Some(rows),
            ..Default::default()
        };
        f(&mut c);
        c
    }

    fn feeder(mode: &str) -> Feeder {
        Feeder::load(&csv_with(|c| c.mode = Some(mode.into())), None).unwrap()
    }

    fn n(p: Pick<'_>) -> String {
        match p {
            Pick::Row(r) => r["n"].clone(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn modes_pick_rows() {
        let f = feeder("sequential");
        assert_eq!(n(f.row(0, 0)), "0");
        assert_eq!(n(f.row(0, 1)), "1");
        assert_eq!(n(f.row(1, 2)), "0");
        let f = feeder("shared");
        let got: Vec<_> = (0..4).map(|vu| n(f.row(vu, 0))).collect();
        assert_eq!(got, ["0", "1", "2", "0"]);
        let f = feeder("random");
        assert!(matches!(f.row(0, 0), Pick::Row(_)));
        let f = feeder("unique");
        let got: Vec<_> = (0..4).map(|vu| n(f.row(vu, 0))).collect();
        assert_eq!(got, ["0", "1", "2", "StopVu"]);
    }

    #[test]
    fn policies_exhaustion_and_shapes() {
        let load = |f: fn(&mut CsvData)| Feeder::load(&csv_with(f), None).unwrap();
        let f = load(|c| {
            c.distribution = Some(crate::config::CsvRowDistribution {
                scope: Some("global".into()),
                on_exhausted: Some("stop_test".into()),
                ..Default::default()
            })
        });
        let got: Vec<_> = (0..4).map(|vu| n(f.row(vu, 0))).collect();
        assert_eq!(got, ["0", "1", "2", "StopTest"]);
        let f = load(|c| {
            c.distribution = Some(crate::config::CsvRowDistribution {
                scope: Some("local".into()),
                ..Default::default()
            })
        });
        assert_eq!(n(f.row(1, 0)), "1");
        assert_eq!(n(f.row(1, 5)), "1");
        let f = load(|c| {
            c.mode = Some("shared".into());
            c.cycle_on_exhaustion = Some(false);
            c.change_policy = Some("each_vu".into());
        });
        assert!(f.keeps_row(), "each_vu: the VU keeps its first row");
        let f = load(|c| c.filter = Some("n>=1".into()));
        assert_eq!(f.len(), 2);
        let f = load(|c| c.filter = Some("n != 1".into()));
        assert_eq!(f.len(), 2);
        let f = load(|c| {
            c.variables = BTreeMap::from([("n".to_string(), "num".to_string())]);
        });
        assert!(matches!(f.row(0, 0), Pick::Row(r) if r["num"] == "0"));
        let f = load(|c| c.randomize = Some(true));
        let mut seen: Vec<_> = (0..3).map(|i| n(f.row(0, i))).collect();
        seen.sort();
        assert_eq!(
            seen,
            ["0", "1", "2"],
            "a shuffled order still uses every row"
        );
        assert!(
            Feeder::load(&csv_with(|c| c.encoding = Some("latin1".into())), None)
                .unwrap_err()
                .to_string()
                .contains("only utf-8")
        );
        assert!(Feeder::load(&csv_with(|_| {}), Some("next")).is_ok());
        assert!(Feeder::load(&csv_with(|c| c.mode = Some("next".into())), Some("next")).is_err());
    }

    #[test]
    fn reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.csv");
        std::fs::write(&p, "email, id\na@x.io, 1\n\nb@x.io, 2\n").unwrap();
        let rows = read_rows(p.to_str().unwrap(), ',').unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["email"], "b@x.io");
        assert!(read_rows("/nonexistent.csv", ',').is_err());
        let csv = CsvData {
            file: p.to_str().unwrap().into(),
            columns: Some(vec!["mail".into(), "num".into()]),
            skip_first_line: Some(true),
            ..Default::default()
        };
        let rows = read_csv(&csv).unwrap();
        assert_eq!(rows.len(), 2, "the header line skipped, the blank line too");
        assert_eq!(rows[0]["mail"], "a@x.io");
        std::fs::write(&p, "a;b\n1;2\n").unwrap();
        let csv = CsvData {
            file: p.to_str().unwrap().into(),
            delimiter: Some(';'),
            ..Default::default()
        };
        assert_eq!(read_csv(&csv).unwrap()[0]["b"], "2");
    }
}
