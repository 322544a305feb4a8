//! Loading a test file: YAML → [`TestFile`], with `includes:` of scenario files, `--env NAME`
//! overrides, and checks that serde cannot express. Every error names the file and, where the
//! parser knows it, the line and column.
//!
//! The model has one file per YAML section, re-exported by [`model`]: `test_file.rs` (`name`,
//! `global:`, `thresholds:`), `load.rs`, `scenario.rs`, `step.rs`, `check.rs` (`checks:` and
//! `extract:`) and `distributed.rs`. The small languages inside values have theirs: `duration.rs`,
//! `threshold.rs`, `json_path.rs`, `template.rs`. `validate.rs` holds the rules across keys, and
//! `compile.rs` builds the engine-ready form (parsed once) that the engine runs.

pub mod balancing;
mod check;
pub mod cluster;
pub mod communication;
pub mod compile;
mod distributed;
pub mod duration;
mod explain;
pub mod faker;
pub mod global_override;
pub mod json_path;
mod load;
pub mod model;
pub mod monitoring;
pub mod outputs;
mod overrides;
pub mod performance;
pub mod results;
mod scenario;
pub mod script;
pub mod security;
mod sibling;
mod step;
pub mod step_options;
pub mod strategy;
pub mod template;
mod test_file;
pub mod threshold;
mod validate;
pub mod xpath;

pub use compile::{compile, Compiled, CompiledStep, RequestTemplate};
pub use duration::ThinkTime;
pub use explain::explain;
pub use explain::process as explain_process;
pub use json_path::JsonPath;
pub use model::*;
pub use overrides::Overrides;
use std::path::{Path, PathBuf};
pub use strategy::Strategy;
use thiserror::Error;
pub use validate::{check, normalize, runnable, warnings, MAX_RATE, MAX_VUS};

/// Deserializes a mapping as `R`, then converts it to `T`, inside the mapping's own visitor: the YAML
/// parser then reports a conversion error at the mapping's line (a step's `-`), where a serde
/// `try_from` would report it at the enclosing list's first item.
fn de_converted<'de, D, R, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    R: serde::Deserialize<'de>,
    T: TryFrom<R, Error = String>,
{
    struct Visitor<R, T>(&'static str, std::marker::PhantomData<(R, T)>);
    impl<'de, R, T> serde::de::Visitor<'de> for Visitor<R, T>
    where
        R: serde::Deserialize<'de>,
        T: TryFrom<R, Error = String>,
    {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = R::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(serde::de::Error::custom)
        }
    }
    d.deserialize_map(Visitor(expecting, std::marker::PhantomData))
}

/// A test that parsed but cannot run as written: what is wrong, naming the key's path
/// (`scenarios[0].steps[2].checks[1]: ...`). File and line are added by [`load`] where known.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Why a test file was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn syntax(path: &Path, e: serde_norway::Error) -> ConfigError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // serde_norway appends " at line L column C"; the prefix already says it. Any later position
    // ("while scanning a quoted scalar at line 7 column 13") is kept: it points at the cause.
    let message = e
        .to_string()
        .replacen(&format!(" at line {line} column {column}"), "", 1);
    let message = sibling::annotate(suggest(message));
    ConfigError::Syntax {
        path: path.display().to_string(),
        line,
        column,
        message,
    }
}

/// Adds "did you mean `x`?" to serde's "unknown field `y`, expected one of `a`, `b`" when one of
/// the expected keys is close to the unknown one.
fn suggest(message: String) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message;
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message;
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| {
            (
                strsim::jaro_winkler(&unknown.to_lowercase(), &k.to_lowercase()),
                k,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!("{message} (did you mean `{k}`?)"),
        None => message,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads, merges and checks a test file. `env` names `environments/NAME.yml` beside the file.
pub fn load(path: &Path, env: Option<&str>) -> Result<TestFile, ConfigError> {
    let text = read(path)?;
    let mut test: TestFile = serde_norway::from_str(&text).map_err(|e| syntax(path, e))?;
    lift_distributed(path, &mut test, &text)?;
    if let Some(name) = env {
        test = apply_env(path, &text, name)?;
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for include in std::mem::take(&mut test.includes) {
        test.scenarios.extend(load_include(&dir.join(&include))?);
    }
    normalize(&mut test).map_err(|m| invalid(path, m.0))?;
    resolve_csv_paths(&mut test, &dir).map_err(|m| invalid(path, m))?;
    template::inline_files(&mut test, &dir).map_err(|m| invalid(path, m))?;
    script::inline_files(&mut test, &dir).map_err(|m| invalid(path, m))?;
    check(&test).map_err(|m| invalid(path, m.0))?;
    Ok(test)
}

/// Parses a test from text (used by workers, which receive the test over the wire).
pub fn from_str(text: &str) -> Result<TestFile, ConfigError> {
    let path = Path::new("<test>");
    let mut test: TestFile = serde_norway::from_str(text).map_err(|e| syntax(path, e))?;
    lift_distributed(path, &mut test, text)?;
    normalize(&mut test).map_err(|m| invalid(path, m.0))?;
    check(&test).map_err(|m| invalid(path, m.0))?;
    Ok(test)
}

fn apply_env(path: &Path, text: &str, name: &str) -> Result<TestFile, ConfigError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join("environments").join(format!("{name}.yml")),
        dir.join("environments").join(format!("{name}.yaml")),
        dir.join("config/environments").join(format!("{name}.yml")),
    ];
    let env_path: PathBuf = candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        // A project laid out by `perfornium init` keeps them in config/environments/ at its root.
        .or_else(|| {
            dir.ancestors()
                .skip(1)
                .map(|a| a.join("config/environments").join(format!("{name}.yml")))
                .find(|p| p.exists())
        })
        .ok_or_else(|| {
            invalid(
                path,
                format!("environment `{name}` not found (looked for environments/{name}.yml)"),
            )
        })?;
    let mut base: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| syntax(path, e))?;
    let over: serde_norway::Value =
        serde_norway::from_str(&read(&env_path)?).map_err(|e| syntax(&env_path, e))?;
    merge(&mut base, over);
    let mut test: TestFile = serde_norway::from_value(base.clone()).map_err(|e| {
        invalid(
            &env_path,
            format!("after merging this environment over the test: {e}"),
        )
    })?;
    distributed::lift_load_distributed(&mut test, &base).map_err(|m| invalid(&env_path, m))?;
    Ok(test)
}

/// `load.distributed` moved into the test's `distributed` block (see `distributed.rs`).
fn lift_distributed(path: &Path, test: &mut TestFile, text: &str) -> Result<(), ConfigError> {
    if !text.contains("distributed") {
        return Ok(());
    }
    let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| syntax(path, e))?;
    distributed::lift_load_distributed(test, &value).map_err(|m| invalid(path, m))
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut serde_norway::Value, over: serde_norway::Value) {
    match (base, over) {
        (serde_norway::Value::Mapping(b), serde_norway::Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// An included file holds one scenario, a list of scenarios, or `scenarios: [...]`.
fn load_include(path: &Path) -> Result<Vec<Scenario>, ConfigError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Included {
        Many(Vec<Scenario>),
        Wrapped { scenarios: Vec<Scenario> },
        One(Box<Scenario>),
    }
    let text = read(path)?;
    // Untagged enums hide the inner error, so on failure re-parse as a single scenario for a precise message.
    match serde_norway::from_str::<Included>(&text) {
        Ok(Included::Many(v)) | Ok(Included::Wrapped { scenarios: v }) => Ok(v),
        Ok(Included::One(s)) => Ok(vec![*s]),
        Err(_) => serde_norway::from_str::<Scenario>(&text)
            .map(|s| vec![s])
            .map_err(|e| syntax(path, e)),
    }
}

fn resolve_csv_paths(test: &mut TestFile, dir: &Path) -> Result<(), String> {
    for (i, s) in test.scenarios.iter_mut().enumerate() {
        for (j, step) in s.steps.iter_mut().enumerate() {
            if let Step::Http(h) = step {
                h.resolve_paths(dir)
                    .map_err(|e| format!("scenarios[{i}].steps[{j}]: {e}"))?;
            }
        }
        if let Some(csv) = &mut s.csv_data {
            if Path::new(&csv.file).is_relative() {
                csv.file = dir.join(&csv.file).display().to_string();
            }
        }
    }
    Ok(())
}

/// The thresholds as parsed rules (already validated by [`check`]).
pub fn rules(test: &TestFile) -> Vec<threshold::Rule> {
    test.thresholds
        .iter()
        .filter_map(|t| match t {
            Threshold::Short(s) => threshold::parse(s, None).ok(),
            Threshold::Long { metric, step } => threshold::parse(metric, step.clone()).ok(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole test with `load:` given as `load` (indented two spaces) and one more top-level block.
    fn test_text(load: &str, extra: &str) -> String {
        format!(
            "name: t\nload:\n{load}\nglobal:\n  base_url: http://127.0.0.1:9\n{extra}\
             scenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /x\n"
        )
    }

    fn basic(duration: &str) -> String {
        test_text(
            &format!("  pattern: basic\n  virtual_users: 2\n  duration: {duration}"),
            "",
        )
    }

    fn refused(text: &str) -> String {
        match from_str(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn null_or_misshapen_duration_says_what_is_expected_and_where() {
        for d in ["~", "[1, 2]", "{a: 1}"] {
            let e = refused(&basic(d));
            assert!(e.contains("expected a duration such as"), "{d}: {e}");
            assert!(e.starts_with("<test>:5:"), "the line of `duration`: {e}");
        }
    }

    #[test]
    fn bad_checks_and_extractions_are_refused_at_their_step_line() {
        let with = |item: &str| {
            basic("1s").replace(
                "        path: /x\n",
                &format!("        path: /x\n      - name: b\n        path: /y\n{item}"),
            )
        };
        let cases = [
            (
                "        checks:\n          - { type: response_time, value: 10, operator: '=<' }\n",
                "checks[0]: unknown operator `=<`",
            ),
            (
                "        extract:\n          - { name: t, type: regex, expression: '(a' }\n",
                "extract[0]: extract `t`: bad regex",
            ),
            (
                "        extract:\n          - { name: t, type: json_path, expression: 'a.b' }\n",
                "extract[0]: JSON path `a.b`",
            ),
            (
                "        checks:\n          - { type: status, value: 2xx }\n",
                "checks[0]: status check",
            ),
            (
                "        extract:\n          - { name: t, type: xpath, expression: '//p:A' }\n",
                "extract[0]: extract `t`: XPath `//p:A`: prefix `p` is not declared",
            ),
        ];
        for (item, want) in cases {
            let e = refused(&with(item));
            assert!(e.starts_with("<test>:13:"), "the line of step `b`: {e}");
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn a_test_survives_the_json_trip_to_a_worker() {
        let text = basic("1.5s").replace(
            "        path: /x\n",
            "        path: /x\n        method: post\n        checks:\n          - { type: json_path, value: '$.n', operator: '>=', expected: 2 }\n      - type: wait\n        duration: 1-2s\n",
        );
        let test = from_str(&text).unwrap();
        let back: TestFile = serde_json::from_str(&serde_json::to_string(&test).unwrap()).unwrap();
        check(&back).unwrap();
        assert_eq!(back.load, test.load);
        let (Step::Http(a), Step::Http(b)) =
            (&test.scenarios[0].steps[0], &back.scenarios[0].steps[0])
        else {
            panic!("an HTTP step")
        };
        assert_eq!(a, b);
        assert_eq!(b.method, http::Method::POST);
        assert_eq!(compile(&back).unwrap().steps[0].checks.len(), 1);
    }

    #[test]
    fn protocol_keys_survive_the_json_trip_to_a_worker() {
        let text = basic("1s").replace(
            "        path: /x\n",
            "        path: /x\n        method: post\n        form: { a: '{{__VU}}', b: 2 }\n        auth: { type: basic, username: u, password: p }\n\
             \x20     - { name: m, path: /m, method: post, multipart: { f: '@MANIFEST', t: x } }\n\
             \x20     - { name: j, path: /j, method: post, json: { a: { b: 1 } }, overrides: { a.b: '{{__ITER}}' } }\n\
             \x20     - { name: s, type: soap, wsdl: 'http://h/s?wsdl', operation: Add, args: { a: { b: 1 } } }\n\
             \x20     - { name: r, type: soap, wsdl: 'http://h/s?wsdl', soap_action: A, envelope: '<e/>' }\n\
             \x20     - { name: t, path: /t, method: post, body: '<a/>' }\n\
             \x20     - { name: e, type: soap, endpoint: 'http://h/e', wsdl: 'http://h/s?wsdl', operation: Add, parameters: { a: 1 } }\n",
        )
        .replace("MANIFEST", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        let test = from_str(&text).unwrap();
        let back: TestFile = serde_json::from_str(&serde_json::to_string(&test).unwrap()).unwrap();
        for (a, b) in test.scenarios[0].steps.iter().zip(&back.scenarios[0].steps) {
            let (Step::Http(a), Step::Http(b)) = (a, b) else {
                panic!("HTTP steps")
            };
            assert_eq!(a, b);
        }
        let Step::Http(raw) = &test.scenarios[0].steps[4] else {
            panic!()
        };
        assert_eq!(
            raw.target, "http://h/s",
            "a raw envelope goes to the WSDL minus ?wsdl"
        );
        assert_eq!(raw.headers["SOAPAction"], "A");
        let Step::Http(xml) = &test.scenarios[0].steps[5] else {
            panic!()
        };
        assert_eq!(xml.headers["Content-Type"], "application/xml", "sniffed");
        let Step::Http(e) = &test.scenarios[0].steps[6] else {
            panic!()
        };
        assert_eq!(e.target, "http://h/e");
        assert_eq!(e.soap.as_ref().unwrap().args, serde_json::json!({"a": 1}));
    }
}
