//! `-g/--global KEY=VALUE` (the TypeScript tool's `run -g`): sets a key of the test's `global:`
//! block from the command line, dot paths reaching into nested maps (`headers.x-team=perf`,
//! `variables.user=alice`). The value is read as the TypeScript tool reads it: `true`/`false` (any
//! case), an integer, a decimal, JSON when it starts with `{` or `[`, else the text itself. The
//! result goes through the same reader and checks as the file, so an unknown key is refused by name
//! (with "did you mean") and a refused one (`browser`, `proxy`, ...) with its reason.

use super::{Invalid, TestFile};
use serde_norway::Value;

/// Applies each `KEY=VALUE` of `pairs` to `test.global`, in order (a later one wins).
pub fn apply(test: &mut TestFile, pairs: &[String]) -> Result<(), Invalid> {
    if pairs.is_empty() {
        return Ok(());
    }
    let mut global = serde_norway::to_value(&test.global)
        .map_err(|e| Invalid(format!("-g: global did not serialize: {e}")))?;
    for pair in pairs {
        let (key, raw) = pair.split_once('=').ok_or_else(|| {
            Invalid(format!(
                "-g `{pair}`: expected KEY=VALUE, e.g. -g base_url=http://localhost:3000 or -g headers.x-team=perf"
            ))
        })?;
        let path: Vec<&str> = key.trim().split('.').collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(Invalid(format!(
                "-g `{pair}`: the key `{key}` has an empty part; write a dot path such as headers.x-team"
            )));
        }
        set(&mut global, &path, value(raw), pair)?;
    }
    test.global = serde_norway::from_value(global)
        .map_err(|e| Invalid(format!("-g: global.{}", super::suggest(e.to_string()))))?;
    super::check(test)
}

/// `raw` as the TypeScript tool reads a `-g` value.
fn value(raw: &str) -> Value {
    let lower = raw.to_ascii_lowercase();
    if lower == "true" || lower == "false" {
        return Value::Bool(lower == "true");
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = raw.strip_prefix('-').unwrap_or(raw);
    if digits(unsigned) {
        if let Ok(n) = raw.parse::<i64>() {
            return Value::Number(n.into());
        }
    }
    if let Some((int, frac)) = unsigned.split_once('.') {
        if digits(int) && digits(frac) {
            if let Ok(f) = raw.parse::<f64>() {
                return Value::Number(f.into());
            }
        }
    }
    if raw.starts_with('{') || raw.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) {
            if let Ok(v) = serde_norway::to_value(v) {
                return v;
            }
        }
    }
    Value::String(raw.to_string())
}

fn set(node: &mut Value, path: &[&str], v: Value, pair: &str) -> Result<(), Invalid> {
    let Some((first, rest)) = path.split_first() else {
        *node = v;
        return Ok(());
    };
    if node.is_null() {
        *node = Value::Mapping(Default::default());
    }
    let Value::Mapping(map) = node else {
        return Err(Invalid(format!(
            "-g `{pair}`: `{first}` is inside a value that is not a map"
        )));
    };
    let slot = map
        .entry(Value::String(first.to_string()))
        .or_insert(Value::Null);
    set(slot, rest, v, pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test() -> TestFile {
        super::super::from_str(
            "name: t\nglobal:\n  base_url: http://a\nload:\n  pattern: basic\n  virtual_users: 1\nscenarios:\n  - name: s\n    steps:\n      - name: x\n        type: rest\n        method: GET\n        path: /\n",
        )
        .unwrap()
    }

    fn pairs(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_are_read_as_the_typescript_tool_reads_them() {
        assert_eq!(value("TRUE"), Value::Bool(true));
        assert_eq!(value("-12"), Value::Number((-12i64).into()));
        assert_eq!(value("1.5"), Value::Number(1.5f64.into()));
        assert_eq!(value("1.5.2"), Value::String("1.5.2".into()));
        assert_eq!(
            value("[1,2]"),
            serde_norway::from_str::<Value>("[1, 2]").unwrap()
        );
        assert_eq!(value("{oops"), Value::String("{oops".into()));
        assert_eq!(value(""), Value::String(String::new()));
    }

    #[test]
    fn keys_and_dot_paths_set_the_global_block() {
        let mut t = test();
        apply(
            &mut t,
            &pairs(&[
                "base_url=http://b:3000",
                "timeout=5s",
                "headers.x-team=perf",
                "variables.user=alice",
                "base_url=http://c",
            ]),
        )
        .unwrap();
        assert_eq!(t.global.base_url.as_deref(), Some("http://c"));
        assert_eq!(t.global.timeout, 5000);
        assert_eq!(t.global.headers["x-team"], "perf");
        assert_eq!(t.global.variables["user"], Value::String("alice".into()));
    }

    #[test]
    fn bad_pairs_and_unknown_or_refused_keys_are_refused_by_name() {
        let err = |p: &str| apply(&mut test(), &pairs(&[p])).unwrap_err().0;
        assert!(err("base_url").contains("expected KEY=VALUE"));
        assert!(err("headers..x=1").contains("empty part"));
        assert!(err("base_url.x=1").contains("not a map"));
        let unknown = err("bse_url=http://x");
        assert!(unknown.contains("unknown field `bse_url`"), "{unknown}");
        assert!(unknown.contains("did you mean `base_url`"), "{unknown}");
        let refused = err("browser.headless=false");
        assert!(refused.contains("browser"), "{refused}");
    }
}
