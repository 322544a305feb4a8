//! Loading a test file: YAML → [`TestFile`], with `includes:` of scenario files, `--env NAME`
//! overrides, and checks that serde cannot express. Every error names the file and, where the
//! parser knows it, the line and column.

pub mod duration;
pub mod model;
pub mod threshold;

pub use duration::ThinkTime;
pub use model::*;
use std::path::{Path, PathBuf};
use thiserror::Error;

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
    // serde_norway appends " at line L column C"; the prefix already says it.
    let mut message = e.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
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

/// Rules serde cannot express: non-empty scenarios, sane load numbers, parseable thresholds.
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
    for t in &test.thresholds {
        match t {
            Threshold::Short(s) => threshold::parse(s, None).map(drop)?,
            Threshold::Long { metric, step } => threshold::parse(metric, step.clone()).map(drop)?,
        }
    }
    Ok(())
}

fn check_load(load: &Load) -> Result<(), String> {
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
        Load::Arrivals { rate, .. } if !(*rate > 0.0 && rate.is_finite()) => Err(format!(
            "load.rate must be a positive number of arrivals per second, got {rate}"
        )),
        Load::Arrivals {
            max_virtual_users: Some(0),
            ..
        } => Err("load.max_virtual_users must be at least 1".into()),
        _ => Ok(()),
    }
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
