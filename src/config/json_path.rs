//! The JSON path subset that checks and extractions use: `$.a.b`, `$.items[0].id`, `$[2]`,
//! `$['key']` and `.length` of an array, object or string. A full RFC 9535 crate was not worth its
//! weight for this subset, and `.length` is not standard JSONPath. A path is parsed once, when the
//! test is loaded, so a malformed one is refused by `validate` instead of never matching.

use serde_json::Value;
use std::borrow::Cow;

/// A parsed path: the keys (or indexes) to follow from the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    keys: Vec<String>,
}

impl JsonPath {
    /// Parses `$.a[0]['b'].length`; the leading `$` may be left out (`.a.b`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("JSON path `{text}`: {why}");
        let trimmed = text.trim();
        let mut rest = trimmed.strip_prefix('$').unwrap_or(trimmed);
        let mut keys = Vec::new();
        while !rest.is_empty() {
            let key = if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                rest = &r[end..];
                r[..end].trim()
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| bad("a `[` is not closed"))?;
                rest = &r[end + 1..];
                r[..end].trim().trim_matches(|c| c == '\'' || c == '"')
            } else {
                return Err(bad(&format!(
                    "expected `.name` or `[index]` at `{rest}` (paths start with `$`)"
                )));
            };
            if key.is_empty() {
                return Err(bad("a key is empty (filters and `..` are not supported)"));
            }
            if key == "*" {
                return Err(bad("wildcards are not supported"));
            }
            keys.push(key.to_string());
        }
        Ok(Self {
            text: text.to_string(),
            keys,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path, or `None` when any key is missing.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<Cow<'v, Value>> {
        let mut cur = Cow::Borrowed(root);
        for key in &self.keys {
            cur = child(cur, key)?;
        }
        Some(cur)
    }
}

fn child<'v>(cur: Cow<'v, Value>, key: &str) -> Option<Cow<'v, Value>> {
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

fn get<'v>(cur: Cow<'v, Value>, key: &str) -> Option<Cow<'v, Value>> {
    match cur {
        Cow::Borrowed(Value::Object(o)) => o.get(key).map(Cow::Borrowed),
        Cow::Borrowed(Value::Array(a)) => key
            .parse::<usize>()
            .ok()
            .and_then(|i| a.get(i))
            .map(Cow::Borrowed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(v: &Value, path: &str) -> Option<Value> {
        JsonPath::parse(path)
            .unwrap()
            .lookup(v)
            .map(Cow::into_owned)
    }

    #[test]
    fn follows_keys_indexes_and_length() {
        let v = json!({"user": {"id": 5, "tags": ["a", "b"]}, "items": [{"id": 1}, {"id": 2}]});
        assert_eq!(at(&v, "$.user.id"), Some(json!(5)));
        assert_eq!(at(&v, "$.items[1].id"), Some(json!(2)));
        assert_eq!(at(&v, "$['user'].tags[0]"), Some(json!("a")));
        assert_eq!(at(&v, "$.items.length"), Some(json!(2)));
        assert_eq!(at(&v, ".user.id"), Some(json!(5)));
        assert_eq!(at(&v, "$"), Some(v.clone()));
        assert_eq!(at(&v, "$.user.missing"), None);
        assert_eq!(at(&v, "$.items[9]"), None);
        assert_eq!(at(&json!([1, 2, 3]), "$[2]"), Some(json!(3)));
    }

    #[test]
    fn refuses_what_would_never_match() {
        for bad in ["$.a[0", "user.id", "$..a", "$.a.", "$[]", "$.a[*]", "$.*"] {
            let e = JsonPath::parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("JSON path `{bad}`")), "{e}");
        }
    }
}
