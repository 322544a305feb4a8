//! Checks on a response and extraction of values from it. JSON paths cover what load tests use:
//! `$.a.b`, `$.items[0].id`, `$[2]`, `$['key']` and `.length` of an array, object or string. (A full
//! RFC 9535 crate was not worth its weight for this subset; say so if you need filters.)

use super::template::{render, Vars};
use crate::config::{Check, Extract, ExtractKind};
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

/// Looks up a JSON path; `None` when any segment is missing.
pub fn json_path<'v>(root: &'v Value, path: &str) -> Option<std::borrow::Cow<'v, Value>> {
    use std::borrow::Cow;
    let mut rest = path.trim().strip_prefix('$').unwrap_or(path.trim());
    let mut cur: Cow<'v, Value> = Cow::Borrowed(root);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            cur = child(cur, key)?;
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let key = r[..end].trim().trim_matches(|c| c == '\'' || c == '"');
            rest = &r[end + 1..];
            cur = child(cur, key)?;
        } else {
            return None;
        }
    }
    Some(cur)
}

fn child<'v>(cur: std::borrow::Cow<'v, Value>, key: &str) -> Option<std::borrow::Cow<'v, Value>> {
    use std::borrow::Cow;
    if key == "length" {
        let len = match cur.as_ref() {
            Value::Array(a) => a.len(),
            Value::Object(o) if !o.contains_key("length") => o.len(),
            Value::String(s) => s.chars().count(),
            _ => return get(cur, key),
        };
        return Some(Cow::Owned(Value::from(len)));
    }
    get(cur, key)
}

fn get<'v>(cur: std::borrow::Cow<'v, Value>, key: &str) -> Option<std::borrow::Cow<'v, Value>> {
    use std::borrow::Cow;
    match cur {
        Cow::Borrowed(v) => match v {
            Value::Object(o) => o.get(key).map(Cow::Borrowed),
            Value::Array(a) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .map(Cow::Borrowed),
            _ => None,
        },
        Cow::Owned(_) => None,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn yaml_text(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Compares two values: numerically when both are numbers, as text otherwise.
fn compare(left: &str, op: &str, right: &str) -> bool {
    if let (Ok(l), Ok(r)) = (left.parse::<f64>(), right.parse::<f64>()) {
        return match op {
            "<" | "lt" => l < r,
            "<=" | "lte" | "le" => l <= r,
            ">" | "gt" => l > r,
            ">=" | "gte" | "ge" => l >= r,
            "!=" | "ne" => l != r,
            _ => l == r,
        };
    }
    match op {
        "!=" | "ne" => left != right,
        "contains" => left.contains(right),
        _ => left == right,
    }
}

/// Splits `"<2000"` into (`"<"`, `"2000"`); a bare value means `<`.
fn split_op(text: &str) -> (&str, &str) {
    for op in ["<=", ">=", "!=", "==", "<", ">"] {
        if let Some(rest) = text.trim().strip_prefix(op) {
            return (op, rest.trim());
        }
    }
    ("<", text.trim())
}

/// Runs one check; `Err` carries a description of the failure for the summary. Expected values are
/// templated with the VU's variables, so a check can compare against a CSV column or extracted value.
pub fn run_check(check: &Check, resp: &Response, vars: &Vars) -> Result<(), String> {
    let ok = match check {
        Check::Status { value, .. } => {
            let want = yaml_text(value);
            want.split(['|', ','])
                .any(|w| w.trim() == resp.status.to_string())
        }
        Check::ResponseTime {
            value, operator, ..
        } => {
            let text = yaml_text(value);
            let (op, limit) = match operator {
                Some(op) => (op.as_str(), text.as_str()),
                None => split_op(&text),
            };
            compare(&resp.elapsed_ms.to_string(), op, limit)
        }
        Check::JsonPath {
            value,
            operator,
            expected,
            ..
        } => match (resp.json().and_then(|j| json_path(j, value)), expected) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(exp)) => {
                let exp = render(&yaml_text(exp), vars).into_owned();
                compare(&as_text(&v), operator.as_deref().unwrap_or("=="), &exp)
            }
        },
        Check::TextContains { value, .. } => resp.body.contains(render(value, vars).as_ref()),
    };
    if ok {
        Ok(())
    } else {
        Err(label(check))
    }
}

/// The name a check is reported under: its `description`, or a short form of what it tests.
pub fn label(check: &Check) -> String {
    let (description, fallback) = match check {
        Check::Status { value, description } => {
            (description, format!("status == {}", yaml_text(value)))
        }
        Check::ResponseTime {
            value,
            operator,
            description,
        } => {
            let text = yaml_text(value);
            let (op, limit) = match operator {
                Some(op) => (op.as_str(), text.as_str()),
                None => split_op(&text),
            };
            (description, format!("response_time {op} {limit}"))
        }
        Check::JsonPath {
            value, description, ..
        } => (description, format!("json_path {value}")),
        Check::TextContains { value, description } => {
            (description, format!("text_contains {value}"))
        }
    };
    description.clone().unwrap_or(fallback)
}

/// Runs one extraction; falls back to `default`, and yields `None` when there is neither.
pub fn run_extract(ex: &Extract, resp: &Response) -> Option<String> {
    let found = match ex.kind {
        ExtractKind::JsonPath => resp
            .json()
            .and_then(|j| json_path(j, &ex.expression))
            .map(|v| as_text(&v)),
        ExtractKind::Regex => regex::Regex::new(&ex.expression).ok().and_then(|re| {
            re.captures(resp.body)
                .and_then(|c| c.get(1).or_else(|| c.get(0)))
                .map(|m| m.as_str().to_string())
        }),
    };
    found.or_else(|| ex.default.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_paths() {
        let v = json!({"user": {"id": 5, "tags": ["a", "b"]}, "items": [{"id": 1}, {"id": 2}]});
        assert_eq!(*json_path(&v, "$.user.id").unwrap(), json!(5));
        assert_eq!(*json_path(&v, "$.items[1].id").unwrap(), json!(2));
        assert_eq!(*json_path(&v, "$['user'].tags[0]").unwrap(), json!("a"));
        assert_eq!(*json_path(&v, "$.items.length").unwrap(), json!(2));
        assert!(json_path(&v, "$.user.missing").is_none());
        assert!(json_path(&v, "$.items[9]").is_none());
        assert_eq!(*json_path(&json!([1, 2, 3]), "$[2]").unwrap(), json!(3));
    }

    fn check(yaml: &str) -> Check {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn checks_pass_and_fail() {
        let body = r#"{"users":[{"id":1}],"ok":true}"#;
        let r = Response::new(200, 12.0, body);
        let mut vars = Vars::default();
        vars.values.insert("word".into(), "users".into());
        let run_check = |c: &Check, r: &Response| run_check(c, r, &vars);
        assert!(run_check(&check("{type: status, value: 200}"), &r).is_ok());
        assert!(run_check(&check("{type: status, value: 201}"), &r).is_err());
        assert!(run_check(&check("{type: response_time, value: '<2000'}"), &r).is_ok());
        assert!(run_check(&check("{type: response_time, value: 10, operator: lt}"), &r).is_err());
        assert!(run_check(&check("{type: json_path, value: '$.users[0].id'}"), &r).is_ok());
        assert!(run_check(
            &check("{type: json_path, value: '$.users.length', operator: '>', expected: 0}"),
            &r
        )
        .is_ok());
        assert!(run_check(&check("{type: json_path, value: '$.nope'}"), &r).is_err());
        assert!(run_check(&check("{type: text_contains, value: users}"), &r).is_ok());
        assert!(run_check(&check("{type: text_contains, value: '{{word}}'}"), &r).is_ok());
        assert!(run_check(
            &check("{type: json_path, value: '$.ok', expected: '{{yes}}'}"),
            &r
        )
        .is_err());
        let err = run_check(
            &check("{type: text_contains, value: zzz, description: has zzz}"),
            &r,
        )
        .unwrap_err();
        assert_eq!(err, "has zzz");
    }

    #[test]
    fn extraction_with_default() {
        let r = Response::new(200, 1.0, r#"{"id": 77, "token": "abc"} session=xyz;"#);
        let ex = |kind, expr: &str, default: Option<&str>| Extract {
            name: "x".into(),
            kind,
            expression: expr.into(),
            default: default.map(String::from),
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
    }
}
