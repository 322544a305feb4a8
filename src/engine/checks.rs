//! Runs the compiled checks and extractions of a step on a response (see `config::check` for what
//! they are and how they are compiled). Nothing here parses the test: regexes, JSON paths, operators
//! and status lists were parsed once when the run was set up.

use super::template::{expand, Vars};
use crate::config::{CheckRule, CompiledCheck, CompiledExtract, ExtractSource};
use serde_json::Value;
/// A response as checks see it.
pub struct Response<'a> {
    pub status: u16,
    pub elapsed_ms: f64,
    pub body: &'a str,
    /// Parsed once, lazily, by the first check or extraction that needs JSON.
    pub json: std::cell::OnceCell<Option<Value>>,
}

impl<'a> Response<'a> {
    pub fn new(status: u16, elapsed_ms: f64, body: &'a str) -> Self {
        Self {
            status,
            elapsed_ms,
            body,
            json: std::cell::OnceCell::new(),
        }
    }

    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_str(self.body).ok())
            .as_ref()
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether one check passes on `resp` (a failure is counted under the check's `label`). Expected
/// values are templated with the VU's variables, so a check can compare against a CSV column or an
/// extracted value.
pub fn passes(check: &CompiledCheck, resp: &Response, vars: &Vars) -> bool {
    match &check.rule {
        CheckRule::Status(codes) => codes.contains(&resp.status),
        CheckRule::Latency { op, limit_ms } => op
            .compare_numbers(resp.elapsed_ms, *limit_ms)
            .unwrap_or(false),
        CheckRule::JsonPath { path, expected } => {
            match (resp.json().and_then(|j| path.lookup(j)), expected) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(v), Some((op, exp))) => op.compare(&as_text(&v), &expand(exp, vars)),
            }
        }
        CheckRule::Contains(text) => resp.body.contains(expand(text, vars).as_ref()),
    }
}

/// Runs one extraction; falls back to `default`, and yields `None` when there is neither.
pub fn run_extract(ex: &CompiledExtract, resp: &Response) -> Option<String> {
    let found = match &ex.source {
        ExtractSource::JsonPath(path) => resp
            .json()
            .and_then(|j| path.lookup(j))
            .map(|v| as_text(&v)),
        ExtractSource::Regex(re) => re
            .captures(resp.body)
            .and_then(|c| c.get(1).or_else(|| c.get(0)))
            .map(|m| m.as_str().to_string()),
    };
    found.or_else(|| ex.default.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Check, Extract, ExtractKind};

    fn check(yaml: &str) -> CompiledCheck {
        serde_norway::from_str::<Check>(yaml)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn checks_pass_and_fail() {
        let body = r#"{"users":[{"id":1}],"ok":true}"#;
        let r = Response::new(200, 12.0, body);
        let mut vars = Vars::default();
        vars.values.insert("word".into(), "users".into());
        let passes = |c: &CompiledCheck, r: &Response| passes(c, r, &vars);
        assert!(passes(&check("{type: status, value: 200}"), &r));
        assert!(passes(&check("{type: status, value: '201|200'}"), &r));
        assert!(!passes(&check("{type: status, value: 201}"), &r));
        assert!(passes(&check("{type: response_time, value: '<2000'}"), &r));
        assert!(passes(&check("{type: response_time, value: '<2s'}"), &r));
        assert!(!passes(
            &check("{type: response_time, value: 10, operator: lt}"),
            &r
        ));
        assert!(passes(
            &check("{type: json_path, value: '$.users[0].id'}"),
            &r
        ));
        assert!(passes(
            &check("{type: json_path, value: '$.users.length', operator: '>', expected: 0}"),
            &r
        ));
        assert!(!passes(&check("{type: json_path, value: '$.nope'}"), &r));
        assert!(passes(&check("{type: text_contains, value: users}"), &r));
        assert!(passes(
            &check("{type: text_contains, value: '{{word}}'}"),
            &r
        ));
        assert!(!passes(
            &check("{type: json_path, value: '$.ok', expected: '{{yes}}'}"),
            &r
        ));
        let described = check("{type: text_contains, value: zzz, description: has zzz}");
        assert!(!passes(&described, &r));
        assert_eq!(described.label, "has zzz");
    }

    #[test]
    fn bad_checks_do_not_compile() {
        let refused = |yaml: &str| {
            serde_norway::from_str::<Check>(yaml)
                .unwrap()
                .compile()
                .unwrap_err()
        };
        assert!(refused("{type: response_time, value: 10, operator: '=<'}")
            .contains("unknown operator `=<`"));
        assert!(
            refused("{type: json_path, value: '$.a', operator: '~', expected: 1}")
                .contains("unknown operator")
        );
        assert!(refused("{type: json_path, value: '$.a[0', expected: 1}").contains("not closed"));
        assert!(
            refused("{type: json_path, value: '$.a', operator: '<', expected: abc}")
                .contains("compares numbers")
        );
        assert!(refused("{type: json_path, value: '$.a', operator: '<'}").contains("expected"));
        assert!(refused("{type: status, value: '2xx'}").contains("not an HTTP status"));
        assert!(refused("{type: response_time, value: '<soon'}").contains("milliseconds"));
    }

    #[test]
    fn extraction_with_default() {
        let r = Response::new(200, 1.0, r#"{"id": 77, "token": "abc"} session=xyz;"#);
        let ex = |kind, expr: &str, default: Option<&str>| {
            Extract {
                name: "x".into(),
                kind,
                expression: expr.into(),
                default: default.map(String::from),
            }
            .compile()
            .unwrap()
        };
        // Not valid JSON as a whole, so JSON extraction falls back.
        assert_eq!(
            run_extract(&ex(ExtractKind::JsonPath, "$.id", Some("d")), &r).as_deref(),
            Some("d")
        );
        assert_eq!(
            run_extract(&ex(ExtractKind::Regex, "session=([^;]+)", None), &r).as_deref(),
            Some("xyz")
        );
        let r = Response::new(200, 1.0, r#"{"id": 77}"#);
        assert_eq!(
            run_extract(&ex(ExtractKind::JsonPath, "$.id", None), &r).as_deref(),
            Some("77")
        );
        assert_eq!(
            run_extract(&ex(ExtractKind::JsonPath, "$.nope", None), &r),
            None
        );
        let bad = Extract {
            name: "x".into(),
            kind: ExtractKind::Regex,
            expression: "(unclosed".into(),
            default: None,
        };
        assert!(bad.compile().unwrap_err().contains("bad regex"));
    }
}
