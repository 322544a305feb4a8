//! Templating end to end: the `templating` example against the mock, whose `/record/...` keeps
//! what every request carried (path, headers, body), so each expression is checked in what the
//! server received; a seeded run repeats its faker values; a `{{template:FILE}}` test runs on a
//! worker that has no file; `validate` refuses unknown functions, faker paths and locales with the
//! line and the nearest name.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn example() -> String {
    format!("{}/examples/templating.yaml", env!("CARGO_MANIFEST_DIR"))
}

fn recorded(mock: &Proc) -> Vec<Value> {
    get_json(&format!("http://{}/__recorded", mock.addr))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("/__recorded; the mock's stderr:\n{}", mock.stderr_tail()))
}

/// Runs the example against a fresh mock; returns the summary and what the mock received.
fn run_example() -> (Value, Vec<Value>) {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let base = format!("http://{}", mock.addr);
    let res = run(&[
        "run",
        &example(),
        "--base-url",
        &base,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    let n = s["overall"]["count"].as_u64().unwrap();
    assert_eq!(
        mock_stats(&mock)["total"].as_u64().unwrap(),
        n,
        "counts agree"
    );
    (s, recorded(&mock))
}

fn bodies<'a>(all: &'a [Value], prefix: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with(prefix))
        .collect()
}

#[test]
fn the_templating_example_sends_what_each_expression_means() {
    let res = run(&["validate", "--explain", &example()]);
    let out = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(out.contains("faker: locale de, seed 42"), "{out}");
    let started_ms = chrono::Utc::now().timestamp_millis();
    let (s, all) = run_example();
    assert_eq!(s["overall"]["count"], 12, "2 VUs × 2 iterations × 3 steps");
    assert_eq!(s["overall"]["checks_failed"], 0, "{s}");
    assert_eq!(all.len(), 12);
    assert!(
        all.iter().all(|r| !r.to_string().contains("{{")),
        "nothing left unrendered: {all:?}"
    );
    let profiles = bodies(&all, "/record/profiles");
    let orders = bodies(&all, "/record/orders/");
    let files = bodies(&all, "/record/orders-from-file");
    assert_eq!((profiles.len(), orders.len(), files.len()), (4, 4, 4));
    // vu_id counts from 1 and iteration from 0, as in the TypeScript tool.
    let pairs: BTreeSet<(String, String)> = profiles
        .iter()
        .map(|p| {
            let b = &p["body"];
            (
                b["vu"].as_str().unwrap().into(),
                b["iteration"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [("1", "0"), ("1", "1"), ("2", "0"), ("2", "1")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(pairs, want);
    for p in &profiles {
        let b = &p["body"];
        assert!(b["email"].as_str().unwrap().contains('@'));
        let phone = b["phone"].as_str().unwrap();
        assert!(
            phone.len() == 12 && phone.chars().filter(|c| *c == '-').count() == 2,
            "{phone}"
        );
        assert_eq!(b["pin"].as_str().unwrap().len(), 6);
        let age: u32 = b["age"].as_str().unwrap().parse().unwrap();
        assert!((18..=65).contains(&age));
        assert!(["light", "dark", "auto"].contains(&b["theme"].as_str().unwrap()));
    }
    let cities: BTreeSet<&str> = profiles
        .iter()
        .map(|p| p["body"]["address"]["city"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    for o in &orders {
        let b = &o["body"];
        let path = o["path"].as_str().unwrap();
        let id = b["order"].as_str().unwrap();
        // A templated variable: one value within a request (path, header, body), new per request.
        assert_eq!(id.len(), 36, "{id}");
        assert!(
            path.starts_with(&format!("/record/orders/{id}?vu=")),
            "{path}"
        );
        assert_eq!(o["headers"]["x-order"], id);
        ids.insert(id.to_string());
        // Dotted paths into the extracted profile object, both spellings.
        assert!(cities.contains(b["city"].as_str().unwrap()), "{b}");
        assert_eq!(b["city"], b["also_city"]);
        let price: f64 = b["price"].as_str().unwrap().parse().unwrap();
        assert!(
            (5.0..=50.0).contains(&price)
                && b["price"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .nth(1)
                    .unwrap()
                    .len()
                    == 2
        );
        assert!(["S", "M", "L"].contains(&b["size"].as_str().unwrap()));
        let unix: i64 = b["stamp_unix"].as_str().unwrap().parse().unwrap();
        assert!(unix >= started_ms && unix <= chrono::Utc::now().timestamp_millis());
        let file = b["stamp_file"].as_str().unwrap();
        assert!(
            file.len() == 19 && file.as_bytes()[8] == b'-' && file.as_bytes()[15] == b'-',
            "{file}"
        );
        let due = chrono::DateTime::parse_from_rfc3339(b["due"].as_str().unwrap()).unwrap();
        let ahead = due.timestamp_millis() - unix;
        assert!(
            (ahead - 7 * 86_400_000).abs() < 60_000,
            "isoDate(7) is 7 days ahead: {ahead}"
        );
        assert!(
            chrono::DateTime::parse_from_rfc3339(o["headers"]["x-sent-at"].as_str().unwrap())
                .is_ok()
        );
    }
    assert_eq!(ids.len(), 4, "a new order id for every request");
    for f in &files {
        let b = &f["body"];
        assert_eq!(b["channel"], "web");
        assert_eq!(b["web"], true);
        assert_eq!(b["items"], serde_json::json!(["tea", "cake"]));
        assert_eq!(
            (b["first_item"].as_str(), b["item_count"].as_u64()),
            (Some("tea"), Some(2))
        );
        let q = b["quantity"].as_u64().unwrap();
        assert!((1..=5).contains(&q));
        assert!([1, 2].contains(&b["vu"].as_u64().unwrap()));
        assert_eq!(b["order_id"].as_str().unwrap().len(), 36);
        assert!(
            !ids.contains(b["order_id"].as_str().unwrap()),
            "rendered anew for this request"
        );
    }
}

#[test]
fn a_faker_seed_repeats_the_values_run_to_run() {
    let names = |all: &[Value]| -> Vec<String> {
        let mut v: Vec<String> = bodies(all, "/record/profiles")
            .iter()
            .map(|p| {
                format!(
                    "{} {} {}",
                    p["body"]["name"], p["body"]["address"]["street"], p["body"]["pin"]
                )
            })
            .collect();
        v.sort();
        v
    };
    let (_, a) = run_example();
    let (_, b) = run_example();
    assert_eq!(
        names(&a),
        names(&b),
        "global.faker.seed: 42 repeats the faker values"
    );
    assert_eq!(
        names(&a).iter().collect::<BTreeSet<_>>().len(),
        4,
        "and each VU and iteration differs"
    );
}

#[test]
fn a_template_file_travels_to_a_worker_that_has_no_file() {
    let mock = mock(0);
    let w = worker(None);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "body.hbs",
        "{\"vu\": {{vu_id}}, \"who\": \"{{who}}\"}",
    );
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 2, iterations: 2")
        .step("{ name: t, method: POST, path: /record/t, body: '{{template:body.hbs|who=Ada}}' }")
        .write(dir.path());
    std::fs::remove_file(dir.path().join("body.hbs")).ok();
    let res = run(&["distributed", &file, "-w", &w.addr]);
    assert!(
        !res.status.success(),
        "a missing template file is refused before the run"
    );
    assert!(String::from_utf8_lossy(&res.stderr).contains("template `body.hbs`: cannot read"));
    write(
        dir.path(),
        "body.hbs",
        "{\"vu\": {{vu_id}}, \"who\": \"{{who}}\"}",
    );
    // The worker runs elsewhere (its own working directory): it gets the file's text in the test.
    let res = run(&["distributed", &file, "-w", &w.addr]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let all = recorded(&mock);
    assert_eq!(all.len(), 4);
    for r in &all {
        assert_eq!(r["body"]["who"], "Ada", "{r}");
        assert!([1, 2].contains(&r["body"]["vu"].as_u64().unwrap()), "{r}");
    }
}

#[test]
fn validate_refuses_unknown_functions_faker_paths_and_locales_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "path: '/u/{{random(1,20)}}'",
            "unknown function `random` (did you mean `randomInt`?)",
        ),
        (
            "path: '/u/{{faker.person.fristName}}'",
            "did you mean `faker.person.firstName`?",
        ),
        (
            "path: /u, headers: { X-T: '{{timestamp:epoch}}' }",
            "unix, iso, readable or file",
        ),
        (
            "path: /u, body: '{{randomFloat(a)}}'",
            "`a` is not a number",
        ),
        (
            "path: /u, body: '{{faker.business.employeeCount}}'",
            "not a @faker-js/faker path",
        ),
    ];
    for (step, want) in cases {
        let text = format!(
            "name: t\nload: {{ pattern: basic, virtual_users: 1 }}\nglobal:\n  base_url: http://127.0.0.1:9\nscenarios:\n  - name: s\n    steps:\n      - {{ name: ok, path: /ok }}\n      - {{ name: bad, {step} }}\n"
        );
        let file = write(dir.path(), "t.yaml", &text);
        let res = run(&["validate", &file]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{step}: {err}");
        assert!(
            err.contains(&format!("{file}:9:")),
            "the bad step's line: {err}"
        );
        assert!(err.contains(want), "{step}: {err}");
    }
    let with_global = |g: &str| {
        let text = format!(
            "name: t\nload: {{ pattern: basic, virtual_users: 1 }}\nglobal:\n  base_url: http://127.0.0.1:9\n{g}scenarios:\n  - name: s\n    steps:\n      - {{ name: ok, path: /ok }}\n"
        );
        let file = write(dir.path(), "g.yaml", &text);
        let res = run(&["validate", &file]);
        (
            res.status.code(),
            String::from_utf8_lossy(&res.stderr).into_owned(),
        )
    };
    let (code, err) = with_global("  faker: { locale: es }\n");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("`es` is not supported") && err.contains("de, fr, nl"),
        "{err}"
    );
    assert_eq!(with_global("  faker: { locale: de, seed: 1 }\n").0, Some(0));
    let (code, err) = with_global("  variables: { v: '{{randomIntt(1, 2)}}' }\n");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("variables.v") && err.contains("did you mean `randomInt`?"),
        "{err}"
    );
    let (code, err) = with_global("  variables: { v: '{{template:nope.hbs}}' }\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("template `nope.hbs`: cannot read"), "{err}");
}
