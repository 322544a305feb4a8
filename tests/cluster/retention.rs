//! `results.collection.retention.keep_runs`: the master keeps the last N ended runs in its
//! replicated state and moves older records to the run's storage (a local directory here), where
//! `GET /runs` still lists them and `GET /runs/{id}` reads them back, marked archived, on every
//! replica. The mock's count is the reference for the numbers read back.

use crate::support::*;
use std::io::Read;

#[test]
fn retention_archives_all_but_the_last_two_runs_and_reads_them_back() {
    let c = Cluster::start();
    let leader = c.agreed_leader(20);
    let mock = mock(0);
    let a = worker(None);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let extra = format!(
        "distributed:\n  results:\n    collection:\n      storage:\n        backend: local\n        path: {}\n        prefix: \"kept/{{{{run_id}}}}\"\n      retention:\n        keep_runs: 2\n",
        archive.display()
    );
    let mut ids = Vec::new();
    for (i, n) in [3u64, 4, 5].into_iter().enumerate() {
        let body = yaml(&mock)
            .name(&format!("kept-{i}"))
            .load(&format!(
                "pattern: basic, virtual_users: 1, iterations: {n}"
            ))
            .extra(&extra)
            .submit_body(&[&a]);
        let id = c.submit(leader, &body);
        let view = c.wait_phase(&[leader], &id, "finished", 30);
        assert_eq!(view["summary"]["overall"]["count"], n);
        ids.push(id);
    }
    assert_eq!(mock_stats(&mock)["total"], 12, "3 + 4 + 5 requests");
    // The first run's record leaves the state once the third has ended.
    let archived = |i: usize| -> Option<String> {
        let runs = c.get_json(i, "/runs")?;
        let first = runs
            .as_array()?
            .iter()
            .find(|r| r["id"] == ids[0].as_str())?
            .clone();
        first["archived"].as_str().map(String::from)
    };
    assert!(
        wait_for(20, || (0..3).all(|i| archived(i).is_some())),
        "run {} archived on every replica: {:?}",
        ids[0],
        (0..3).map(|i| c.get_json(i, "/runs")).collect::<Vec<_>>()
    );
    let runs = c.get_json(leader, "/runs").unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "still listed: {runs:?}");
    for r in runs.iter().filter(|r| r["id"] != ids[0].as_str()) {
        assert!(
            r["archived"].is_null(),
            "the last two stay in the state: {r}"
        );
    }
    // The archive is where the entry says, and holds the whole record.
    let file = archive.join("kept").join(&ids[0]).join("run.json.gz");
    assert!(
        archived(leader).unwrap().ends_with("run.json.gz"),
        "{:?}",
        archived(leader)
    );
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap())
        .read_to_end(&mut json)
        .unwrap();
    let rec: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(rec["id"], ids[0].as_str());
    // Read back through the API on every replica, with the numbers it ran with.
    for i in 0..3 {
        let view = c
            .get_json(i, &format!("/runs/{}", ids[0]))
            .unwrap_or_else(|| panic!("replica {i} reads the archived run back"));
        assert_eq!(view["phase"], "finished");
        assert_eq!(view["summary"]["overall"]["count"], 3);
        assert!(view["archived"].as_str().is_some(), "marked: {view}");
        assert_merged_exactly_once(&view["summary"]);
    }
    // A run in the state is not marked.
    let kept = c.get_json(leader, &format!("/runs/{}", ids[2])).unwrap();
    assert_eq!(kept["summary"]["overall"]["count"], 5);
    assert!(kept["archived"].is_null());
}
