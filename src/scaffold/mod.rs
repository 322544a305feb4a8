//! `perfornium init`: a new project's files, laid out the way the TypeScript tool lays them out
//! (`tests/api`, `tests/mixed`, `config/environments`, `config/workers.json`, `data`, `payloads`,
//! `results`, `reports`, a README), so a team moving over finds what it knows. Every generated
//! test is written in the format this crate reads and aims at `perfornium mock` on port 3000, so
//! the scaffold validates and runs as soon as the mock is up.
//!
//! The files' text lives in `src/scaffold/files/` (compiled in with `include_str!`); this module
//! only decides which files a template gets, and writes them without overwriting anything unless
//! asked to.

use std::path::{Path, PathBuf};

/// A project template, as `--template` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// A smoke test and a load test.
    Basic,
    /// `basic` plus payload templating, faker data, CSV data and a stepped load.
    Api,
    /// `basic` plus a journey mixing REST, a pause and SOAP.
    Mixed,
}

impl Template {
    /// The names `--template` accepts.
    pub const NAMES: &'static [&'static str] = &["basic", "api", "mixed"];

    /// Parses a template name; `web` is refused with the reason.
    pub fn parse(name: &str) -> Result<Template, ScaffoldError> {
        match name {
            "basic" => Ok(Template::Basic),
            "api" => Ok(Template::Api),
            "mixed" => Ok(Template::Mixed),
            "web" => Err(ScaffoldError::Template(
                "`web`: its tests drive a browser (`type: web` steps), which this Perfornium does not run; use `basic`, `api` or `mixed`".into(),
            )),
            other => Err(ScaffoldError::Template(format!(
                "`{other}` is not a template (basic, api or mixed)"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Template::Basic => "basic",
            Template::Api => "api",
            Template::Mixed => "mixed",
        }
    }
}

/// One file of the scaffold: its path inside the project and its text.
#[derive(Debug, Clone)]
pub struct File {
    pub path: &'static str,
    pub text: String,
}

/// Why a scaffold could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("--template {0}")]
    Template(String),
    #[error("{} already exist{} in {}: nothing written (--force overwrites)", .existing.join(", "), if .existing.len() == 1 { "s" } else { "" }, .dir.display())]
    Exists { dir: PathBuf, existing: Vec<String> },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Directories every project gets, even when no file lands in them yet.
pub const DIRS: &[&str] = &[
    "tests/api",
    "tests/mixed",
    "config/environments",
    "data",
    "payloads",
    "results",
    "reports",
];

macro_rules! file {
    ($path:literal, $name:literal) => {
        File {
            path: $path,
            text: include_str!(concat!("files/", $name)).to_string(),
        }
    };
}

/// The files of a project named `project` from `template`; `examples` adds the examples every
/// template leaves out (an open-model arrival-rate test, the mixed journey, the stepped load).
pub fn files(project: &str, template: Template, examples: bool) -> Vec<File> {
    let mut out = vec![
        File {
            path: "README.md",
            text: readme(project, template),
        },
        file!(".gitignore", "gitignore"),
        file!("config/workers.json", "workers.json"),
        file!("config/environments/dev.yml", "dev.yml"),
        file!("config/environments/staging.yml", "staging.yml"),
        file!("config/environments/production.yml", "production.yml"),
        file!("data/users.csv", "users.csv"),
        file!("payloads/create-user.json", "create-user.json"),
        file!("payloads/update-user.json", "update-user.json"),
        file!("payloads/calculator.wsdl", "calculator.wsdl"),
        file!("tests/api/sample-test.yml", "sample-test.yml"),
        file!("tests/api/load-test.yml", "load-test.yml"),
    ];
    match template {
        Template::Basic => {}
        Template::Api => out.extend([
            file!("tests/api/templating-test.yml", "templating-test.yml"),
            file!("tests/api/faker-test.yml", "faker-test.yml"),
            file!("tests/api/data-driven-test.yml", "data-driven-test.yml"),
            file!("tests/api/advanced-test.yml", "advanced-test.yml"),
        ]),
        Template::Mixed => out.push(file!("tests/mixed/sample-mixed-test.yml", "mixed-test.yml")),
    }
    if examples {
        out.push(file!(
            "tests/api/arrivals-example.yml",
            "arrivals-example.yml"
        ));
        if template != Template::Api {
            out.push(file!("tests/api/advanced-example.yml", "advanced-test.yml"));
        }
        if template != Template::Mixed {
            out.push(file!("tests/mixed/mixed-example.yml", "mixed-test.yml"));
        }
    }
    out
}

/// Writes `files` under `dir` (created as needed), with [`DIRS`]. Unless `force`, refuses before
/// writing anything when any of the files already exists, naming them all.
pub fn write(dir: &Path, files: &[File], force: bool) -> Result<(), ScaffoldError> {
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|f| dir.join(f.path).exists())
            .map(|f| f.path.to_string())
            .collect();
        if !existing.is_empty() {
            return Err(ScaffoldError::Exists {
                dir: dir.to_path_buf(),
                existing,
            });
        }
    }
    let io = |path: PathBuf| move |source| ScaffoldError::Io { path, source };
    for d in DIRS {
        let path = dir.join(d);
        std::fs::create_dir_all(&path).map_err(io(path.clone()))?;
    }
    for f in files {
        let path = dir.join(f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent.to_path_buf()))?;
        }
        std::fs::write(&path, &f.text).map_err(io(path.clone()))?;
    }
    Ok(())
}

fn readme(project: &str, template: Template) -> String {
    let about = match template {
        Template::Basic => "A smoke test and a load test of a REST API.",
        Template::Api => {
            "REST API tests: a smoke test, a load test, JSON payloads with overrides, faker data, CSV data and a stepped load."
        }
        Template::Mixed => "REST API tests and a journey that mixes REST, a pause and SOAP (WSDL mode).",
    };
    format!(
        r#"# {project}

Performance tests for [Perfornium](https://github.com/testsmith-io/perfornium), template `{template}`.
{about}

## Run

```sh
perfornium mock &                                   # the demo target on http://127.0.0.1:3000
perfornium validate tests/api/sample-test.yml
perfornium run tests/api/sample-test.yml
perfornium run tests/api/load-test.yml -o results --report     # results/summary.json and report.html
perfornium run tests/api/load-test.yml --env staging           # merges config/environments/staging.yml
perfornium run tests/api/load-test.yml --base-url http://127.0.0.1:8080 --vus 20 --duration 1m
```

## Distributed

```sh
perfornium worker --port 8080 &
perfornium worker --port 8081 &
perfornium distributed tests/api/load-test.yml --workers-file config/workers.json -s even --sync-start --report
```

## Layout

```
tests/api/            REST tests
tests/mixed/          tests mixing protocols
config/environments/  overrides merged with --env NAME (dev, staging, production)
config/workers.json   the workers of a distributed run
data/                 CSV data (csv_data)
payloads/             JSON bodies (jsonFile) and WSDLs
results/              -o results: summary.json, timeline.ndjson, junit.xml
reports/              HTML reports
```

Paths inside a test (`jsonFile`, `csv_data.file`, `wsdl`) are relative to the test file.
"#,
        template = template.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_web_is_refused_with_the_reason() {
        for name in Template::NAMES {
            assert_eq!(Template::parse(name).unwrap().name(), *name);
        }
        let web = Template::parse("web").unwrap_err().to_string();
        assert!(web.contains("browser"), "{web}");
        assert!(Template::parse("apu").is_err());
    }

    #[test]
    fn no_path_is_written_twice() {
        for t in [Template::Basic, Template::Api, Template::Mixed] {
            for examples in [false, true] {
                let files = files("p", t, examples);
                let mut paths: Vec<_> = files.iter().map(|f| f.path).collect();
                paths.sort();
                paths.dedup();
                assert_eq!(paths.len(), files.len(), "{t:?} {examples}");
            }
        }
    }
}
