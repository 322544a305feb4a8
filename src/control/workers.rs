//! The workers a controller drives, from the `-w host:port,...` flag or a `workers.json` file.
//!
//! Both forms go through the same checks (at least one worker, no worker twice, a usable host, port
//! and capacity) so a typo stops the run before any worker is contacted, with a message that names
//! the bad entry.

pub use crate::api::worker::{WorkerAddr, DEFAULT_CAPACITY, DEFAULT_REGION};
use serde::Deserialize as _;
use std::path::Path;
use thiserror::Error;

/// How the `-w` flag is named in error messages.
const FLAG: &str = "-w";

/// Why a worker list was refused.
#[derive(Debug, Error)]
pub enum WorkersError {
    /// The list holds no worker.
    #[error("{origin}: no workers given; list at least one as host:port, e.g. localhost:8081")]
    Empty { origin: String },
    /// An entry of the `-w` flag is not `host:port`.
    #[error("-w entry {position} `{entry}`: {reason} (expected host:port, e.g. localhost:8081)")]
    BadEntry {
        /// 1-based position in the comma-separated list.
        position: usize,
        entry: String,
        reason: String,
    },
    /// The same `host:port` appears twice.
    #[error("{origin}: worker `{addr}` is listed twice (entries {first} and {second}); list each worker once")]
    Duplicate {
        origin: String,
        addr: String,
        first: usize,
        second: usize,
    },
    /// The workers file could not be read.
    #[error("{path}: cannot read the workers file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The workers file is not valid JSON, or an entry has a missing, unknown or mistyped field.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// An entry of the workers file parsed but holds an unusable value.
    #[error("{path}: worker entry {index} ({addr}): {reason}")]
    BadWorker {
        path: String,
        /// 1-based position in the file's array.
        index: usize,
        addr: String,
        reason: String,
    },
}

/// Parses the `-w` flag: `localhost:8081,127.0.0.1:8082` (spaces around entries are ignored).
/// `ts+HOST:PORT` (here and as a workers file's `"host": "ts+HOST"`) is a TypeScript tool's worker,
/// driven through an adapter (see [`super::ts_worker`]).
pub fn parse_list(s: &str) -> Result<Vec<WorkerAddr>, WorkersError> {
    if s.trim().is_empty() {
        return Err(WorkersError::Empty {
            origin: FLAG.to_string(),
        });
    }
    let workers = s
        .split(',')
        .enumerate()
        .map(|(i, entry)| parse_entry(i + 1, entry.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    check_list(&workers, FLAG)?;
    Ok(workers)
}

fn parse_entry(position: usize, entry: &str) -> Result<WorkerAddr, WorkersError> {
    let bad = |reason: &str| WorkersError::BadEntry {
        position,
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    if entry.is_empty() {
        return Err(bad(
            "the entry is empty (two commas in a row, or a trailing comma?)",
        ));
    }
    let (host, port) = entry
        .rsplit_once(':')
        .ok_or_else(|| bad("the `:port` is missing"))?;
    check_host(host).map_err(bad)?;
    let port = parse_port(port).map_err(bad)?;
    Ok(WorkerAddr::new(host, port))
}

fn parse_port(port: &str) -> Result<u16, &'static str> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err("the port must be a number from 1 to 65535"),
    }
}

fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host.chars().any(char::is_whitespace) {
        return Err("the host contains a space");
    }
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed {
        return Err("an IPv6 address needs brackets, e.g. [::1]:8081");
    }
    Ok(())
}

/// Reads a `workers.json` file: `[{"host": "10.0.0.1", "port": 8081, "capacity": 100, "region": "us-east"}]`.
/// `host` and `port` are required; `capacity` defaults to 100 and `region` to `default`; an optional
/// `id` names the worker in the test (`distribution`, `weights`, `geographic.regions[].workers`)
/// and must be unique.
pub fn read_file(path: &Path) -> Result<Vec<WorkerAddr>, WorkersError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| WorkersError::Read {
        path: shown.clone(),
        source,
    })?;
    let workers = parse_json(&shown, &text)?;
    for (i, w) in workers.iter().enumerate() {
        check_worker(w).map_err(|reason| WorkersError::BadWorker {
            path: shown.clone(),
            index: i + 1,
            addr: w.addr(),
            reason: reason.to_string(),
        })?;
    }
    check_list(&workers, &shown)?;
    Ok(workers)
}

fn parse_json(path: &str, text: &str) -> Result<Vec<WorkerAddr>, WorkersError> {
    serde_json::from_str(text).map_err(|e| WorkersError::Syntax {
        path: path.to_string(),
        line: e.line(),
        column: e.column(),
        message: json_message(text, &e),
    })
}

/// serde_json's message without its location, naming the failing entry when the JSON itself is fine.
fn json_message(text: &str, e: &serde_json::Error) -> String {
    let mut message = e.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Ok(entries) => failing_entry(&entries).unwrap_or(message),
        Err(_) if e.is_data() => format!(
            "{message}; the file must be a JSON array of {{\"host\": ..., \"port\": ...}} objects"
        ),
        Err(_) => message,
    }
}

fn failing_entry(entries: &[serde_json::Value]) -> Option<String> {
    entries.iter().enumerate().find_map(|(i, v)| {
        WorkerAddr::deserialize(v)
            .err()
            .map(|e| format!("worker entry {}: {e}", i + 1))
    })
}

fn check_worker(w: &WorkerAddr) -> Result<(), &'static str> {
    check_host(&w.host)?;
    if w.port == 0 {
        return Err("`port` must be from 1 to 65535");
    }
    if w.capacity == 0 {
        return Err("`capacity` must be at least 1 (leave it out for the default of 100)");
    }
    if w.region.trim().is_empty() {
        return Err("`region` is empty (leave it out for `default`)");
    }
    Ok(())
}

/// A usable list is non-empty and names each `host:port` once.
fn check_list(workers: &[WorkerAddr], origin: &str) -> Result<(), WorkersError> {
    if workers.is_empty() {
        return Err(WorkersError::Empty {
            origin: origin.to_string(),
        });
    }
    for (j, w) in workers.iter().enumerate() {
        let same = |o: &WorkerAddr| o.addr() == w.addr() || (w.id.is_some() && o.id == w.id);
        if let Some(i) = workers[..j].iter().position(same) {
            return Err(WorkersError::Duplicate {
                origin: origin.to_string(),
                addr: w
                    .id
                    .clone()
                    .filter(|id| workers[i].id.as_ref() == Some(id))
                    .unwrap_or_else(|| w.addr()),
                first: i + 1,
                second: j + 1,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn file_err(text: &str) -> String {
        let f = file(text);
        read_file(f.path()).unwrap_err().to_string()
    }

    #[test]
    fn addr_joins_host_and_port() {
        assert_eq!(WorkerAddr::new("localhost", 8081).addr(), "localhost:8081");
    }

    #[test]
    fn list_parses_with_whitespace_and_defaults() {
        let w = parse_list(" localhost:8081 , 127.0.0.1:8082,[::1]:9000 ").unwrap();
        assert_eq!(
            w,
            vec![
                WorkerAddr::new("localhost", 8081),
                WorkerAddr::new("127.0.0.1", 8082),
                WorkerAddr::new("[::1]", 9000),
            ]
        );
        assert_eq!(w[0].capacity, 100);
        assert_eq!(w[0].region, "default");
    }

    #[test]
    fn list_errors_name_the_bad_entry() {
        let e = parse_list("localhost:8081,localhost")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("entry 2 `localhost`") && e.contains(":port"),
            "{e}"
        );
        let e = parse_list("a:1,b:http").unwrap_err().to_string();
        assert!(e.contains("`b:http`") && e.contains("1 to 65535"), "{e}");
        let e = parse_list("a:0").unwrap_err().to_string();
        assert!(e.contains("1 to 65535"), "{e}");
        let e = parse_list("a:1,,b:2").unwrap_err().to_string();
        assert!(e.contains("entry 2") && e.contains("empty"), "{e}");
        let e = parse_list(":8081").unwrap_err().to_string();
        assert!(e.contains("host is empty"), "{e}");
        let e = parse_list("::1:8081").unwrap_err().to_string();
        assert!(e.contains("brackets"), "{e}");
    }

    #[test]
    fn list_refuses_empty_and_duplicates() {
        assert!(matches!(parse_list("  "), Err(WorkersError::Empty { .. })));
        let e = parse_list("a:1, b:2, a:1").unwrap_err();
        assert!(matches!(
            &e,
            WorkersError::Duplicate { addr, first: 1, second: 3, .. } if addr == "a:1"
        ));
        assert!(e.to_string().contains("listed twice"), "{e}");
    }

    #[test]
    fn file_parses_with_defaults() {
        let f = file(
            r#"[{"host": "10.0.0.1", "port": 8081, "capacity": 150, "region": "us-east"},
                {"host": "10.0.0.2", "port": 8082}]"#,
        );
        let w = read_file(f.path()).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].capacity, 150);
        assert_eq!(w[0].region, "us-east");
        assert_eq!(w[1], WorkerAddr::new("10.0.0.2", 8082));
    }

    #[test]
    fn file_missing_field_names_entry_field_and_position() {
        let e = file_err("[{\"host\": \"a\", \"port\": 1},\n {\"host\": \"b\"}]");
        assert!(e.contains("worker entry 2") && e.contains("`port`"), "{e}");
        assert!(e.contains(":2:"), "line of the error: {e}");
    }

    #[test]
    fn file_ids_are_read_and_must_be_unique() {
        let f = file(r#"[{"host": "a", "port": 1, "id": "east-1"}, {"host": "a", "port": 2}]"#);
        let ws = read_file(f.path()).unwrap();
        assert_eq!(ws[0].id.as_deref(), Some("east-1"));
        assert_eq!(ws[1].id, None);
        let e = file_err(
            r#"[{"host": "a", "port": 1, "id": "x"}, {"host": "b", "port": 1, "id": "x"}]"#,
        );
        assert!(e.contains("`x` is listed twice"), "{e}");
    }

    #[test]
    fn file_refuses_unknown_keys_and_bad_types() {
        let e = file_err(r#"[{"host": "a", "port": 1, "capcity": 5}]"#);
        assert!(
            e.contains("worker entry 1") && e.contains("`capcity`"),
            "{e}"
        );
        let e = file_err(r#"[{"host": "a", "port": 70000}]"#);
        assert!(e.contains("worker entry 1") && e.contains("70000"), "{e}");
        let e = file_err(r#"{"host": "a", "port": 1}"#);
        assert!(e.contains("JSON array"), "{e}");
        let e = file_err(r#"[{"host": "a", "port": 1}"#);
        assert!(e.contains(":1:"), "{e}");
    }

    #[test]
    fn file_refuses_bad_values() {
        let e = file_err(r#"[{"host": "a", "port": 1, "capacity": 0}]"#);
        assert!(
            e.contains("worker entry 1 (a:1)") && e.contains("capacity"),
            "{e}"
        );
        let e = file_err(r#"[{"host": "a", "port": 0}]"#);
        assert!(e.contains("port"), "{e}");
        let e = file_err(r#"[{"host": "", "port": 1}]"#);
        assert!(e.contains("host is empty"), "{e}");
    }

    #[test]
    fn file_refuses_empty_and_duplicates() {
        let e = file_err("[]");
        assert!(e.contains("no workers given"), "{e}");
        let e = file_err(r#"[{"host": "a", "port": 1}, {"host": "a", "port": 1, "region": "x"}]"#);
        assert!(e.contains("`a:1` is listed twice (entries 1 and 2)"), "{e}");
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let e = read_file(Path::new("/nonexistent/workers.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/workers.json: cannot read"),
            "{e}"
        );
    }
}
