//! The engine-ready form of a test: what can be parsed once (checks, extractions, scenario
//! variables) is parsed here, when the test is loaded or received, never per response. The
//! [`TestFile`] stays the one form that is written, sent over the wire and stored; this form is built
//! from it wherever a test is about to run, and by [`super::check`] so every path that accepts a
//! test refuses the same mistakes.

use super::{CompiledCheck, CompiledExtract, Step, TestFile};
use std::collections::HashMap;

/// The compiled parts of one HTTP step.
#[derive(Debug, Clone, Default)]
pub struct CompiledStep {
    pub checks: Vec<CompiledCheck>,
    pub extract: Vec<CompiledExtract>,
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
pub fn compile(test: &TestFile) -> Result<Compiled, String> {
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
                out.steps.push(CompiledStep { checks, extract });
            }
        }
        out.variables.push(scenario.variable_texts());
    }
    Ok(out)
}
