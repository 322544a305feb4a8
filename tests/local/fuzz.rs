//! Hostile input, bounded: proptest throws random and mutated text at the test-file parser, random
//! JSON at every worker endpoint, and random or truncated JSON at the master API and the raft RPC
//! (in process, through the real routers; the master is a real one-replica raft group on sled).
//! Nothing may panic, every answer is a 2xx or a 4xx, and neither ends with a run stored.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use perfornium::worker::{router, WorkerOptions};
use proptest::prelude::*;
use tower::ServiceExt;

const EXAMPLE: &str = include_str!("../../examples/basic.yaml");

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[a-z_]{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("r1")),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let keys = prop_oneof![
            Just("run_id".to_string()),
            Just("test".to_string()),
            Just("name".to_string()),
            Just("load".to_string()),
            Just("scenarios".to_string()),
            Just("start_at_ms".to_string()),
            Just("scale_id".to_string()),
            "[a-z]{1,8}"
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_on_random_text(text in "\\PC{0,400}") {
        let _ = perfornium::config::from_str(&text);
    }

    #[test]
    fn the_parser_never_panics_on_a_mutated_example(at in 0usize..EXAMPLE.len(), cut in 0usize..40, insert in "[ :\\-\\[\\]{}a-z0-9\"'\\n]{0,12}") {
        let mut text = EXAMPLE.to_string();
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (at..=(at + cut).min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(at);
        text.replace_range(at..end, &insert);
        if let Err(e) = perfornium::config::from_str(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn worker_endpoints_answer_random_json_with_4xx_and_store_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = router(WorkerOptions::default());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    });
    let paths = ["/prepare", "/start", "/stop", "/scale", "/rendezvous"];
    runner
        .run(
            &(json_value(), 0usize..paths.len(), "[a-z0-9=&%_-]{0,24}"),
            |(body, i, query)| {
                rt.block_on(async {
                    let req = Request::post(paths[i])
                        .header("content-type", "application/json")
                        .body(Body::from(body.to_string()))
                        .unwrap();
                    let status = app.clone().oneshot(req).await.unwrap().status();
                    prop_assert!(
                        status.is_client_error() || status.is_success(),
                        "{} {body} -> {status}",
                        paths[i]
                    );
                    for get in [
                        format!("/metrics?{query}"),
                        format!("/results?{query}"),
                        format!("/rendezvous?{query}"),
                    ] {
                        let status = app
                            .clone()
                            .oneshot(Request::get(&get).body(Body::empty()).unwrap())
                            .await
                            .unwrap()
                            .status();
                        prop_assert!(
                            status != StatusCode::INTERNAL_SERVER_ERROR,
                            "{get} -> {status}"
                        );
                    }
                    Ok(())
                })
            },
        )
        .unwrap();
    rt.block_on(async {
        let resp = app
            .oneshot(Request::get("/status").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status["phase"], "idle", "random bodies stored no run");
    });
}

/// Random JSON for the master: keys of a submission, so bodies get past the first field checks.
fn submission_like() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z0-9_:.]{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("127.0.0.1:1")),
        Just(serde_json::Value::from("even")),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let keys = prop_oneof![
            Just("test".to_string()),
            Just("test_yaml".to_string()),
            Just("workers".to_string()),
            Just("strategy".to_string()),
            Just("sync_start".to_string()),
            Just("host".to_string()),
            Just("port".to_string()),
            Just("name".to_string()),
            Just("load".to_string()),
            Just("scenarios".to_string()),
            "[a-z]{1,8}"
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn master_and_raft_endpoints_answer_random_json_with_4xx_and_store_nothing() {
    use perfornium::control::client::Credentials;
    use perfornium::master::{api, embedded::Embedded, leader::Drivers};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let master = rt
        .block_on(Embedded::open(None))
        .expect("a one-replica master");
    let store = master.store.clone();
    let applied = store.replica.status().last_applied;
    let app = perfornium::master::routes(api::Master {
        store: store.clone(),
        drivers: Drivers::default(),
        workers: Credentials::default(),
        max_workers: None,
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    });
    let paths = [
        "/runs",
        "/runs/r1/stop",
        "/raft/append",
        "/raft/vote",
        "/raft/snapshot",
    ];
    runner
        .run(
            &(submission_like(), 0usize..paths.len(), any::<bool>()),
            |(body, i, garble)| {
                let text = if garble {
                    // Cut the JSON short: a body that is not JSON at all.
                    let t = body.to_string();
                    t[..t.len() / 2].to_string()
                } else {
                    body.to_string()
                };
                rt.block_on(async {
                    let req = Request::post(paths[i])
                        .header("content-type", "application/json")
                        .body(Body::from(text.clone()))
                        .unwrap();
                    let status = app.clone().oneshot(req).await.unwrap().status();
                    prop_assert!(status.is_client_error(), "{} {text} -> {status}", paths[i]);
                    Ok(())
                })
            },
        )
        .unwrap();
    assert!(store.runs().is_empty(), "random bodies stored no run");
    assert_eq!(
        store.replica.status().last_applied,
        applied,
        "nothing reached the raft log"
    );
    rt.block_on(async {
        let huge = vec![b' '; perfornium::master::BODY_LIMIT + 1];
        let req = Request::post("/runs")
            .header("content-type", "application/json")
            .body(Body::from(huge))
            .unwrap();
        let status = app.clone().oneshot(req).await.unwrap().status();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        master.close().await.unwrap();
    });
}

/// Every numeric field of a real test, one at a time, set to an extreme and sent to a worker's
/// `/prepare` (the JSON a controller sends): the answer is a 2xx or a 4xx, never a panic or a 5xx;
/// and `/start` with extreme instants is refused without leaving the slot stuck.
#[test]
fn numeric_extremes_in_every_field_are_refused_or_accepted_never_panicked_on() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let test = perfornium::config::from_str(EXAMPLE).unwrap();
    let base = serde_json::to_value(&test).unwrap();
    fn numeric_paths(v: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            serde_json::Value::Number(_) => out.push(at.clone()),
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    at.push(k.clone());
                    numeric_paths(x, at, out);
                    at.pop();
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    at.push(i.to_string());
                    numeric_paths(x, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut paths = Vec::new();
    numeric_paths(&base, &mut Vec::new(), &mut paths);
    assert!(
        paths.len() >= 3,
        "the example has numeric fields: {paths:?}"
    );
    let extremes: [serde_json::Value; 6] = [
        serde_json::json!(1e300),
        serde_json::json!(-1),
        serde_json::json!(-1e300),
        serde_json::json!(1e-300),
        serde_json::json!(u64::MAX),
        serde_json::json!(i64::MIN),
    ];
    let post = |app: &axum::Router, path: &str, body: String| {
        rt.block_on(async {
            let req = Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            app.clone().oneshot(req).await.unwrap().status()
        })
    };
    for p in &paths {
        for x in &extremes {
            let mut t = base.clone();
            let mut slot = &mut t;
            for k in p {
                slot = match slot {
                    serde_json::Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
                    other => &mut other[k.as_str()],
                };
            }
            *slot = x.clone();
            let app = router(WorkerOptions::default());
            let status = post(
                &app,
                "/prepare",
                serde_json::json!({"run_id": "r", "test": t}).to_string(),
            );
            assert!(
                status.is_success() || status.is_client_error(),
                "{} = {x} -> {status}",
                p.join(".")
            );
        }
    }
    let app = router(WorkerOptions::default());
    let ok = post(
        &app,
        "/prepare",
        serde_json::json!({"run_id": "r", "test": base}).to_string(),
    );
    assert!(ok.is_success());
    for at in [
        serde_json::json!(1e300),
        serde_json::json!(-5),
        serde_json::json!(f64::MAX),
    ] {
        let status = post(
            &app,
            "/start",
            serde_json::json!({"run_id": "r", "start_at_ms": at}).to_string(),
        );
        assert!(status.is_client_error(), "start_at_ms {at} -> {status}");
    }
    let stop = post(
        &app,
        "/stop",
        serde_json::json!({"run_id": "r"}).to_string(),
    );
    assert!(
        stop.is_success(),
        "the refused starts left the run stoppable: {stop}"
    );
}
