//! Hostile input, bounded: proptest throws random and mutated text at the test-file parser and
//! random JSON at every worker endpoint (in process, through the real router). Nothing may panic,
//! every answer is a 2xx or a 4xx, and the worker ends with no run stored.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use perfornium::worker::{router, WorkerOptions};
use proptest::prelude::*;
use tower::ServiceExt;

const EXAMPLE: &str = include_str!("../examples/basic.yaml");

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
    let paths = ["/prepare", "/start", "/stop", "/scale"];
    runner
        .run(
            &(json_value(), 0usize..4, "[a-z0-9=&%_-]{0,24}"),
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
                    for get in [format!("/metrics?{query}"), format!("/results?{query}")] {
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
