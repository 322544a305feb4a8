//! The engine-ready form of a test: what can be parsed once (request templates, checks,
//! extractions, scenario variables) is parsed here, when the test is loaded or received, never per response. The
//! [`TestFile`] stays the one form that is written, sent over the wire and stored; this form is built
//! from it wherever a test is about to run, and by [`super::check`] so every path that accepts a
//! test refuses the same mistakes.

use super::template::Template;
use super::{CompiledCheck, CompiledExtract, HttpStep, Step, TestFile};
use std::collections::{BTreeMap, HashMap};

/// The compiled parts of one HTTP step.
#[derive(Debug, Clone, Default)]
pub struct CompiledStep {
    pub request: RequestTemplate,
    pub checks: Vec<CompiledCheck>,
    pub extract: Vec<CompiledExtract>,
}

/// The templated parts of a request, parsed once.
#[derive(Debug, Clone, Default)]
pub struct RequestTemplate {
    /// A path joined to `global.base_url`, or a whole URL.
    pub target: Template,
    pub query: Vec<(String, Template)>,
    /// `global.headers` merged with the step's (the step's win).
    pub headers: Vec<(String, Template)>,
    pub body: Option<Template>,
}

impl RequestTemplate {
    /// Parses `step`'s templates, with `global` headers under the step's own.
    pub fn new(step: &HttpStep, global: &BTreeMap<String, String>) -> Self {
        let headers = global
            .iter()
            .filter(|(k, _)| !step.headers.contains_key(*k))
            .chain(&step.headers)
            .map(|(k, v)| (k.clone(), Template::parse(v)))
            .collect();
        Self {
            target: Template::parse(&step.target),
            query: step
                .query
                .iter()
                .map(|(k, v)| (k.clone(), Template::parse(v)))
                .collect(),
            headers,
            body: step.body.as_deref().map(Template::parse),
        }
    }

    /// Whether nothing in the request is templated, so it can be built once for the whole run.
    pub fn is_fixed(&self) -> bool {
        self.target.fixed().is_some()
            && self.query.iter().all(|(_, v)| v.fixed().is_some())
            && self.headers.iter().all(|(_, v)| v.fixed().is_some())
            && self.body.as_ref().is_none_or(|b| b.fixed().is_some())
    }
}

/// A whole test's compiled parts.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// By HTTP step, in the order the engine numbers them (every scenario's HTTP steps in turn).
    pub steps: Vec<CompiledStep>,
    /// By scenario: its `variables` as the text templates substitute.
    pub variables: Vec<HashMap<String, String>>,
}

/// Compiles every check and extraction; an error names the item as `scenarios[i].steps[j].checks[k]`.
pub fn compile(test: &TestFile) -> Result<Compiled, super::Invalid> {
    compile_all(test).map_err(super::Invalid)
}

fn compile_all(test: &TestFile) -> Result<Compiled, String> {
    let mut out = Compiled::default();
    for (i, scenario) in test.scenarios.iter().enumerate() {
        for (j, step) in scenario.steps.iter().enumerate() {
            if let Step::Http(h) = step {
                let at = |what: &str, k: usize, e: String| {
                    format!("scenarios[{i}].steps[{j}].{what}[{k}]: {e}")
                };
                let checks = h
                    .checks
                    .iter()
                    .enumerate()
                    .map(|(k, c)| c.compile().map_err(|e| at("checks", k, e)))
                    .collect::<Result<_, _>>()?;
                let extract = h
                    .extract
                    .iter()
                    .enumerate()
                    .map(|(k, x)| x.compile().map_err(|e| at("extract", k, e)))
                    .collect::<Result<_, _>>()?;
                let request = RequestTemplate::new(h, &test.global.headers);
                out.steps.push(CompiledStep {
                    request,
                    checks,
                    extract,
                });
            }
        }
        out.variables.push(scenario.variable_texts());
    }
    Ok(out)
}
