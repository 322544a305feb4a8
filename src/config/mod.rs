//! Loading a test file: YAML → [`TestFile`], with `includes:` of scenario files, `--env NAME`
//! overrides, and checks that serde cannot express. Every error names the file and, where the
//! parser knows it, the line and column.

mod check;
pub mod compile;
mod distributed;
pub mod duration;
pub mod json_path;
mod load;
pub mod model;
mod scenario;
mod step;
pub mod template;
mod test_file;
pub mod threshold;

pub use compile::{compile, Compiled, CompiledStep, RequestTemplate};
pub use duration::ThinkTime;
pub use json_path::JsonPath;
pub use model::*;
use std::path::{Path, PathBuf};
use thiserror::Error;

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
    ConfigError::Syntax {
        path: path.display().to_string(),
        line,
        column,
        message,
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
    if let Some(name) = env {
        test = apply_env(path, &text, name)?;
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for include in std::mem::take(&mut test.includes) {
        test.scenarios.extend(load_include(&dir.join(&include))?);
    }
    resolve_csv_paths(&mut test, &dir);
    check(&test).map_err(|m| invalid(path, m))?;
    Ok(test)
}

/// Parses a test from text (used by workers, which receive the test over the wire).
pub fn from_str(text: &str) -> Result<TestFile, ConfigError> {
    let path = Path::new("<test>");
    let test: TestFile = serde_norway::from_str(text).map_err(|e| syntax(path, e))?;
    check(&test).map_err(|m| invalid(path, m))?;
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
    serde_norway::from_value(base).map_err(|e| {
        invalid(
            &env_path,
            format!("after merging this environment over the test: {e}"),
        )
    })
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

fn resolve_csv_paths(test: &mut TestFile, dir: &Path) {
    for s in &mut test.scenarios {
        if let Some(csv) = &mut s.csv_data {
            if Path::new(&csv.file).is_relative() {
                csv.file = dir.join(&csv.file).display().to_string();
            }
        }
    }
}

/// Rules serde cannot express: non-empty scenarios, numbers in range, parseable thresholds, and
/// checks and extractions that compile.
pub fn check(test: &TestFile) -> Result<(), String> {
    if test.scenarios.is_empty() {
        return Err("`scenarios` is empty: a test needs at least one scenario with steps".into());
    }
    for (i, s) in test.scenarios.iter().enumerate() {
        if s.steps.is_empty() {
            return Err(format!("scenarios[{i}] (`{}`): `steps` is empty", s.name));
        }
        for step in &s.steps {
            if let Step::Http(h) = step {
                let absolute = h.target.starts_with("http://") || h.target.starts_with("https://");
                if !absolute && test.global.base_url.is_none() && !h.target.starts_with("{{") {
                    return Err(format!(
                        "scenarios[{i}] step `{}`: path `{}` needs `global.base_url` (or use a full `url`)",
                        h.name, h.target
                    ));
                }
            }
        }
    }
    if test.scenarios.iter().all(|s| s.weight == 0) {
        return Err("every scenario has `weight: 0`".into());
    }
    check_load(&test.load)?;
    check_numbers(test)?;
    compile(test)?;
    for t in &test.thresholds {
        match t {
            Threshold::Short(s) => threshold::parse(s, None).map(drop)?,
            Threshold::Long { metric, step } => threshold::parse(metric, step.clone()).map(drop)?,
        }
    }
    Ok(())
}

/// The most virtual users one test (or one worker's share of it) may ask for. Each one is a task
/// and a connection; above this a typo (an extra zero, `1e12`) would exhaust memory, not load a target.
pub const MAX_VUS: u64 = 1_000_000;

/// The highest arrival rate accepted, per second.
pub const MAX_RATE: f64 = 1_000_000.0;

fn check_load(load: &Load) -> Result<(), String> {
    let vus = |name: &str, n: u64| {
        if n > MAX_VUS {
            Err(format!(
                "load.{name} is {n}, above the {MAX_VUS} virtual users a test may run"
            ))
        } else {
            Ok(())
        }
    };
    match load {
        Load::Basic { virtual_users, .. } => vus("virtual_users", *virtual_users)?,
        Load::Stepping {
            start_users,
            step_users,
            max_users,
            ..
        } => {
            vus("start_users", *start_users)?;
            vus("step_users", *step_users)?;
            vus("max_users", *max_users)?;
        }
        Load::Arrivals {
            max_virtual_users,
            preallocation,
            ..
        } => {
            vus("max_virtual_users", max_virtual_users.unwrap_or(0))?;
            vus("preallocation", preallocation.unwrap_or(0))?;
        }
    }
    match load {
        Load::Basic {
            virtual_users: 0, ..
        } => Err("load.virtual_users must be at least 1".into()),
        Load::Basic {
            duration: None,
            iterations: None,
            ..
        } => Err("load: a `basic` pattern needs `duration` or `iterations`".into()),
        Load::Stepping { step_duration, .. } if step_duration.is_zero() => {
            Err("load.step_duration must be above zero".into())
        }
        Load::Stepping { max_users: 0, .. } => Err("load.max_users must be at least 1".into()),
        Load::Arrivals { rate, .. } if !(*rate > 0.0 && *rate <= MAX_RATE) => Err(format!(
            "load.rate must be a number of arrivals per second above 0 and at most {MAX_RATE}, got {rate}"
        )),
        Load::Arrivals {
            max_virtual_users: Some(0),
            ..
        } => Err("load.max_virtual_users must be at least 1".into()),
        _ => Ok(()),
    }
}

/// Range rules of the numbers outside `load:` (durations are bounded when they are parsed).
fn check_numbers(test: &TestFile) -> Result<(), String> {
    let max_ms = duration::MAX.as_millis();
    if u128::from(test.global.timeout) > max_ms {
        return Err(format!(
            "global.timeout is {} ms, longer than the 365 days ({max_ms} ms) a duration may last",
            test.global.timeout
        ));
    }
    let failures = test
        .distributed
        .as_ref()
        .and_then(|d| d.orchestration.as_ref())
        .and_then(|o| o.failure_handling.as_ref())
        .and_then(|f| f.worker_failure_threshold)
        .map(|v| ("orchestration.failure_handling.worker_failure_threshold", v));
    let rate = test
        .distributed
        .as_ref()
        .and_then(|d| d.fault_tolerance.as_ref())
        .and_then(|f| f.worker_failures.as_ref())
        .and_then(|w| w.max_failure_rate)
        .map(|v| ("fault_tolerance.worker_failures.max_failure_rate", v));
    for (name, v) in failures.into_iter().chain(rate) {
        if !(0.0..=100.0).contains(&v) {
            return Err(format!(
                "distributed.{name} is a percentage from 0 to 100, got {v}"
            ));
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

/// Command-line overrides of `run` (and later `distributed`/`console`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub vus: Option<u64>,
    pub duration: Option<std::time::Duration>,
    pub iterations: Option<u64>,
    pub base_url: Option<String>,
}

impl Overrides {
    /// Applies the overrides that fit the test's load pattern; refuses the ones that do not.
    pub fn apply(&self, test: &mut TestFile) -> Result<(), String> {
        if let Some(url) = &self.base_url {
            test.global.base_url = Some(url.clone());
        }
        match &mut test.load {
            Load::Basic {
                virtual_users,
                duration,
                iterations,
                ..
            } => {
                if let Some(v) = self.vus {
                    *virtual_users = v;
                }
                if let Some(d) = self.duration {
                    *duration = Some(d);
                }
                if let Some(i) = self.iterations {
                    *iterations = Some(i);
                    if self.duration.is_none() {
                        *duration = None;
                    }
                }
            }
            Load::Stepping {
                duration,
                max_users,
                ..
            } => {
                if self.iterations.is_some() {
                    return Err("--iterations applies to the `basic` pattern only".into());
                }
                if let Some(v) = self.vus {
                    *max_users = v;
                }
                if let Some(d) = self.duration {
                    *duration = d;
                }
            }
            Load::Arrivals {
                duration,
                max_virtual_users,
                ..
            } => {
                if self.iterations.is_some() {
                    return Err("--iterations applies to the `basic` pattern only".into());
                }
                if let Some(v) = self.vus {
                    *max_virtual_users = Some(v);
                }
                if let Some(d) = self.duration {
                    *duration = d;
                }
            }
        }
        check(test)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn huge_and_infinite_durations_are_refused_not_panicked_on() {
        for d in ["1e300", ".inf", "-.inf", "1e20"] {
            let e = refused(&basic(d));
            assert!(e.contains("365 days") || e.contains("negative"), "{d}: {e}");
        }
        assert_eq!(
            refused(&basic("1e300")),
            "<test>:5:13: load.duration: `1e300` is longer than the 365 days a duration may last"
        );
        assert!(refused(&basic(".inf")).contains("`.inf` is longer"));
        let e = refused(&basic("\"99999999999999999999999h\""));
        assert!(e.contains("365 days"), "{e}");
        assert!(refused(&basic("-1")).contains("negative"));
        assert!(refused(&basic(".nan")).contains("not a number"));
        assert!(from_str(&basic("1e-300")).is_ok());
        assert!(from_str(&basic("365d")).is_err());
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
    fn vus_rates_timeouts_and_percentages_are_bounded() {
        let vus = test_text(
            "  pattern: basic\n  virtual_users: 1000001\n  duration: 1s",
            "",
        );
        assert!(refused(&vus).contains("1000000 virtual users"));
        let big = test_text(
            "  pattern: basic\n  virtual_users: 18446744073709551616\n  duration: 1s",
            "",
        );
        refused(&big);
        for rate in ["1e300", ".inf", ".nan", "-1", "0"] {
            let t = test_text(
                &format!("  pattern: arrivals\n  rate: {rate}\n  duration: 1s"),
                "",
            );
            assert!(refused(&t).contains("load.rate"), "{rate}");
        }
        let t = test_text("  pattern: arrivals\n  rate: 1e-300\n  duration: 1s", "");
        assert!(
            from_str(&t).is_ok(),
            "a tiny rate makes no arrivals, which is harmless"
        );
        let timeout = basic("1s").replace(
            "  base_url: http://127.0.0.1:9\n",
            "  base_url: http://127.0.0.1:9\n  timeout: 31536000001\n",
        );
        assert!(refused(&timeout).contains("global.timeout"));
        let pct = test_text(
            "  pattern: basic\n  virtual_users: 1\n  duration: 1s",
            "distributed:\n  fault_tolerance:\n    worker_failures:\n      max_failure_rate: 1e300\n",
        );
        assert!(refused(&pct).contains("percentage"));
    }

    #[test]
    fn a_wrong_think_time_in_a_step_is_refused() {
        let t = basic("1s").replace(
            "        path: /x\n",
            "        path: /x\n      - type: wait\n        duration: 1e300\n",
        );
        assert!(refused(&t).contains("365 days"));
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
        ];
        for (item, want) in cases {
            let e = refused(&with(item));
            assert!(e.starts_with("<test>:13:"), "the line of step `b`: {e}");
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn check_refuses_a_bad_check_in_a_test_built_in_code() {
        let mut test = from_str(&basic("1s")).unwrap();
        if let Step::Http(h) = &mut test.scenarios[0].steps[0] {
            h.checks.push(Check::TextContains {
                value: "x".into(),
                description: None,
            });
            h.extract.push(Extract {
                name: "t".into(),
                kind: ExtractKind::Regex,
                expression: "[".into(),
                default: None,
            });
        }
        let e = check(&test).unwrap_err();
        assert!(e.starts_with("scenarios[0].steps[0].extract[0]: "), "{e}");
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

    const EXTREMES: &[&str] = &[
        "1e300",
        "-1",
        ".inf",
        "-.inf",
        ".nan",
        "1e-300",
        "18446744073709551616",
        "0",
        "-0.0",
        "~",
        "\"1e300s\"",
        "\"-5ms\"",
    ];

    /// Every numeric key of a test, with where it sits; `{}` is replaced by the value under test.
    const FIELDS: &[&str] = &[
        "load:\n  pattern: basic\n  virtual_users: {}\n  duration: 1s\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  ramp_up: {}\n  iterations: 1\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  iterations: {}\n",
        "load:\n  pattern: stepping\n  start_users: {}\n  step_users: 1\n  step_duration: 1s\n  max_users: 2\n  duration: 1s\n",
        "load:\n  pattern: stepping\n  step_users: {}\n  step_duration: 1s\n  max_users: 2\n  duration: 1s\n",
        "load:\n  pattern: stepping\n  step_users: 1\n  step_duration: {}\n  max_users: 2\n  duration: 1s\n",
        "load:\n  pattern: stepping\n  step_users: 1\n  step_duration: 1s\n  max_users: {}\n  duration: 1s\n",
        "load:\n  pattern: arrivals\n  rate: {}\n  duration: 1s\n",
        "load:\n  pattern: arrivals\n  rate: 1\n  duration: {}\n",
        "load:\n  pattern: arrivals\n  rate: 1\n  duration: 1s\n  max_virtual_users: {}\n",
        "load:\n  pattern: arrivals\n  rate: 1\n  duration: 1s\n  preallocation: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\nglobal:\n  timeout: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\nglobal:\n  think_time: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\ndistributed:\n  coordination:\n    time_skew_tolerance: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\ndistributed:\n  orchestration:\n    heartbeat_interval: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\ndistributed:\n  orchestration:\n    failure_handling:\n      worker_failure_threshold: {}\n",
    ];

    /// Whatever value any numeric key gets, loading neither panics nor yields a test whose numbers
    /// would panic the engine later: each is finite and within its bound, in YAML and over JSON.
    fn load_never_panics(field: &str, value: &str, step: &str) {
        let text = format!(
            "name: t\n{}scenarios:\n  - name: s\n    think_time: 1\n    steps:\n      - url: http://127.0.0.1:9/\n{step}",
            field.replace("{}", value)
        );
        if let Ok(test) = from_str(&text) {
            assert!(
                crate::engine::max_vus(&test.load) <= MAX_VUS.max(100),
                "{text}"
            );
            let json = serde_json::to_string(&test).expect("a loaded test serialises");
            let back: TestFile = serde_json::from_str(&json).expect("and reads back");
            check(&back).expect("and is still valid");
            let _ = crate::engine::schedule::vu_starts(&back.load);
        }
    }

    proptest! {
        #[test]
        fn numeric_extremes_never_panic(
            field in 0..FIELDS.len(),
            value in 0..EXTREMES.len(),
            step in 0..4usize,
            n in any::<f64>(),
        ) {
            let value = if value == 0 { format!("{n:e}") } else { EXTREMES[value].to_string() };
            let step = [
                String::new(),
                format!("      - type: wait\n        duration: {value}\n"),
                format!("      - rendezvous: r\n        count: 1\n        timeout: {value}\n"),
                format!("      - url: http://127.0.0.1:9/\n        checks:\n          - {{ type: response_time, value: {value} }}\n"),
            ][step].clone();
            load_never_panics(FIELDS[field], &value, &step);
        }
    }

    #[test]
    fn every_extreme_in_every_field() {
        for f in FIELDS {
            for v in EXTREMES {
                load_never_panics(f, v, "");
            }
        }
    }
}
