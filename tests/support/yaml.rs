//! The one builder of test files aimed at the mock (or any base URL), and of the `POST /runs` body
//! that carries one to a master.
//!
//! ```ignore
//! let text = yaml(&mock).load("pattern: basic, virtual_users: 2, iterations: 5").text();
//! ```

use super::Proc;

/// A test file: `name`, `global.base_url` (with a 5 s request timeout), a `load` section, one
/// scenario `s` with its steps (by default one `GET /users` named `list`), and any top-level
/// sections after it (`thresholds`, `distributed`).
#[derive(Clone, Debug)]
pub struct Yaml {
    name: String,
    base_url: String,
    load: String,
    scenario: String,
    steps: String,
    extra: String,
}

/// A test aimed at `mock`: 1 VU, 1 iteration, `GET /users`.
pub fn yaml(mock: &Proc) -> Yaml {
    Yaml::at(&format!("http://{}", mock.addr))
}

impl Yaml {
    /// A test aimed at `base_url`.
    pub fn at(base_url: &str) -> Yaml {
        Yaml {
            name: "t".into(),
            base_url: base_url.into(),
            load: "pattern: basic, virtual_users: 1, iterations: 1".into(),
            scenario: String::new(),
            steps: String::new(),
            extra: String::new(),
        }
    }

    pub fn name(mut self, name: &str) -> Yaml {
        self.name = name.into();
        self
    }

    /// The `load` section's keys, comma-separated (a YAML flow mapping).
    pub fn load(mut self, keys: &str) -> Yaml {
        self.load = keys.into();
        self
    }

    /// Adds a step given as a flow mapping, e.g. `{ name: one, path: /users/1 }`.
    pub fn step(mut self, flow: &str) -> Yaml {
        self.steps.push_str(&format!("      - {flow}\n"));
        self
    }

    /// Adds steps written out as block YAML, indented as list items under `steps:` (6 spaces).
    pub fn steps(mut self, block: &str) -> Yaml {
        self.steps.push_str(block);
        if !block.ends_with('\n') {
            self.steps.push('\n');
        }
        self
    }

    /// Adds a key of the scenario, e.g. `think_time: 10ms`.
    pub fn scenario(mut self, line: &str) -> Yaml {
        self.scenario.push_str(&format!("    {line}\n"));
        self
    }

    /// Feeds the scenario from `file` (beside the test file), rows shared by the VUs.
    pub fn csv(self, file: &str) -> Yaml {
        self.scenario(&format!("csv_data: {{ file: {file}, mode: shared }}"))
    }

    /// Adds top-level sections after the scenarios, as block YAML.
    pub fn extra(mut self, block: &str) -> Yaml {
        self.extra.push_str(block);
        if !block.ends_with('\n') {
            self.extra.push('\n');
        }
        self
    }

    /// `thresholds:` with these expressions.
    pub fn thresholds(self, exprs: &[&str]) -> Yaml {
        let mut block = "thresholds:\n".to_string();
        for e in exprs {
            block.push_str(&format!("  - \"{e}\"\n"));
        }
        self.extra(&block)
    }

    /// The test file's text.
    pub fn text(&self) -> String {
        let steps = if self.steps.is_empty() {
            "      - { name: list, path: /users }\n"
        } else {
            &self.steps
        };
        format!(
            "name: {}\nglobal:\n  base_url: \"{}\"\n  timeout: 5000\nload: {{ {} }}\nscenarios:\n  - name: s\n{}    steps:\n{steps}{}",
            self.name, self.base_url, self.load, self.scenario, self.extra
        )
    }

    /// Writes the test as `t.yaml` in `dir`; returns its path.
    pub fn write(&self, dir: &std::path::Path) -> String {
        super::write(dir, "t.yaml", &self.text())
    }

    /// The body of `POST /runs` that runs this test on `workers`, split evenly.
    pub fn submit_body(&self, workers: &[&Proc]) -> String {
        let workers: Vec<serde_json::Value> = workers
            .iter()
            .map(|w| {
                let (host, port) = w.addr.split_once(':').expect("host:port");
                serde_json::json!({"host": host, "port": port.parse::<u16>().expect("a port")})
            })
            .collect();
        serde_json::json!({"test_yaml": self.text(), "workers": workers, "strategy": "even"})
            .to_string()
    }
}
