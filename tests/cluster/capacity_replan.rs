//! Capacity on a live re-plan: a pool run on two registered workers capped at 3 and 5 VUs. A
//! `PATCH` to more VUs than they hold is refused with 422 saying by how much, and the run's
//! control is unchanged; a `PATCH` they can hold is split within the caps (the capped worker's
//! excess goes to the other), and each worker's count equals the mock's `by_worker`.

use super::registry::{registering_worker, up};
use crate::support::*;
use serde_json::Value;

fn run_view(master: &Proc, id: &str) -> Value {
    get_json(&format!("http://{}/runs/{id}", master.addr)).unwrap_or_default()
}

fn patch(master: &Proc, id: &str, body: &str) -> (u16, String) {
    call(
        "PATCH",
        &format!("http://{}/runs/{id}", master.addr),
        None,
        Some(body),
    )
    .expect("PATCH /runs/{id}")
}

#[test]
fn a_live_change_over_the_running_workers_capacity_is_refused_by_how_much_and_one_under_fits_the_caps(
) {
    let dir = tempfile::tempdir().unwrap();
    let master = one_replica_master(dir.path());
    let mock = mock(20);
    let a = registering_worker(&master.addr, "k-a", &["--max-vus", "3"]);
    let b = registering_worker(&master.addr, "k-b", &["--max-vus", "5"]);
    assert!(
        wait_for(10, || up(&master.addr) == ["k-a", "k-b"]),
        "{:?}",
        up(&master.addr)
    );
    // `even`: 2 and 2, so the proportional re-plan of 8 (4 and 4) is over k-a's 3.
    let text = yaml(&mock)
        .name("capacity-replan")
        .load("pattern: basic, virtual_users: 4, duration: 4s")
        .step("{ name: list, path: /users }")
        .text();
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", master.addr),
        None,
        Some(&serde_json::json!({ "test_yaml": text, "strategy": "even" }).to_string()),
    )
    .expect("POST /runs");
    assert_eq!(code, 201, "{resp}");
    let id = serde_json::from_str::<Value>(&resp).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_running(&a, 15);
    wait_running(&b, 15);
    assert!(
        wait_for(10, || run_view(&master, &id)["phase"] == "started"),
        "{}",
        master.stderr_tail()
    );

    let (code, body) = patch(&master, &id, "{\"virtual_users\": 10}");
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("they hold 8 VUs in all, 2 VUs short; nothing changed"),
        "{body}"
    );
    assert!(run_view(&master, &id).get("control").is_none());

    let (code, body) = patch(&master, &id, "{\"virtual_users\": 8}");
    assert_eq!(code, 202, "{body}");
    let shares: Vec<u64> = serde_json::from_str::<Value>(&body).unwrap()["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(shares, vec![3, 5], "within the caps");

    let mut view = Value::Null;
    assert!(
        wait_for(30, || {
            view = run_view(&master, &id);
            matches!(
                view["phase"].as_str(),
                Some("finished" | "failed" | "stopped")
            )
        }),
        "run did not end: {view}\n{}",
        master.stderr_tail()
    );
    assert_eq!(view["phase"], "finished", "{view}");
    let rows = view["summary"]["workers"].as_array().unwrap();
    assert_eq!(rows[0]["planned"], 3.0);
    assert_eq!(rows[1]["planned"], 5.0);
    let stats = mock_stats(&mock);
    for (k, w) in [&a, &b].iter().enumerate() {
        assert_eq!(rows[k]["count"], stats["by_worker"][&w.addr], "{}", w.addr);
    }
    assert_eq!(view["summary"]["overall"]["count"], stats["total"]);
}
