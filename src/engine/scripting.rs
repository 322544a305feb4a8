//! Where a VU runs the test's JavaScript (see `script` for the engine and `config::script` for
//! the keys): a scenario's hooks and legacy `setup`/`teardown` around each iteration, `beforeLoop`
//! and `afterLoop` around each round, a step's `condition` and hooks around it, and the `custom`
//! and `script` steps, each recorded as a sample of its own (its time, and its error when it
//! throws or runs out of time). A run whose test holds no script builds none of this
//! ([`Scripts::build`] gives `None`), so its VUs pay one `Option` test per step.

use super::template::Vars;
use crate::config::script::{Code, Form, Hook, ScriptCode, ScriptStep, StepScripts};
use crate::config::{Step, TestFile};
use crate::metrics::Sample;
use crate::script::{Input, LastResponse, ScriptError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The test's scripts, compiled forms by scenario and step.
pub(crate) struct Scripts {
    pub scenarios: Vec<ScenarioJs>,
    /// Script failures logged so far (the first 20 are).
    logged: AtomicU64,
}

#[derive(Default)]
pub(crate) struct ScenarioJs {
    name: String,
    before_scenario: Option<HookJs>,
    setup: Option<HookJs>,
    teardown: Option<HookJs>,
    teardown_scenario: Option<HookJs>,
    before_loop: Option<HookJs>,
    after_loop: Option<HookJs>,
    /// By step index.
    pub steps: Vec<Option<StepJs>>,
}

pub(crate) struct HookJs {
    code: Arc<Code>,
    continue_on_error: bool,
}

#[derive(Default)]
pub(crate) struct StepJs {
    condition: Option<Arc<Code>>,
    before: Option<HookJs>,
    on_error: Option<HookJs>,
    teardown: Option<HookJs>,
    /// A `custom`/`script` step: its code and its sample's step id.
    body: Option<(Arc<Code>, usize)>,
}

fn hook(origin: String, h: &Hook) -> Option<HookJs> {
    let text = h.code()?;
    let form = if h.file.is_some() {
        Form::HookFile
    } else {
        Form::Body
    };
    let origin = h.file.clone().unwrap_or(origin);
    Some(HookJs {
        code: Code::new(
            origin,
            text,
            form,
            h.timeout.unwrap_or(crate::config::script::DEFAULT_TIMEOUT),
        ),
        continue_on_error: h.continue_on_error,
    })
}

fn step_js(at: &str, s: &StepScripts) -> StepJs {
    StepJs {
        condition: s.condition.as_ref().map(|c| {
            Code::new(
                format!("{at}.condition"),
                c.clone(),
                Form::Expr,
                crate::config::script::DEFAULT_TIMEOUT,
            )
        }),
        before: s
            .hooks
            .before_step
            .as_ref()
            .and_then(|h| hook(format!("{at}.hooks.beforeStep"), h)),
        on_error: s
            .hooks
            .on_step_error
            .as_ref()
            .and_then(|h| hook(format!("{at}.hooks.onStepError"), h)),
        teardown: s
            .hooks
            .teardown_step
            .as_ref()
            .and_then(|h| hook(format!("{at}.hooks.teardownStep"), h)),
        body: None,
    }
}

/// The code a `custom` or `script` step runs.
pub fn step_code(at: &str, s: &ScriptStep) -> Arc<Code> {
    match &s.code {
        ScriptCode::Inline(text) => {
            Code::new(format!("{at}.script"), text.clone(), Form::Body, s.timeout)
        }
        ScriptCode::File {
            file,
            source,
            function,
            ..
        } => Code::new(
            file.clone(),
            source.clone().unwrap_or_default(),
            Form::Export {
                function: function.clone(),
            },
            s.timeout,
        ),
    }
}

/// Every script of a test with the key (or file) it comes from: what `validate` compiles.
pub fn all_codes(test: &TestFile) -> Vec<Arc<Code>> {
    let mut out = Vec::new();
    if let Some(s) = Scripts::build(test, 0) {
        for sc in &s.scenarios {
            for h in [
                &sc.before_scenario,
                &sc.setup,
                &sc.teardown,
                &sc.teardown_scenario,
                &sc.before_loop,
                &sc.after_loop,
            ]
            .into_iter()
            .flatten()
            {
                out.push(h.code.clone());
            }
            for st in sc.steps.iter().flatten() {
                out.extend(st.condition.clone());
                out.extend(st.body.as_ref().map(|b| b.0.clone()));
                for h in [&st.before, &st.on_error, &st.teardown]
                    .into_iter()
                    .flatten()
                {
                    out.push(h.code.clone());
                }
            }
        }
    }
    for s in &test.scenarios {
        for st in &s.steps {
            if let Step::Http(h) = st {
                for c in &h.checks {
                    if let Ok(crate::config::CompiledCheck {
                        rule: crate::config::CheckRule::Custom(code),
                        ..
                    }) = c.compile()
                    {
                        out.push(code);
                    }
                }
                for x in &h.extract {
                    if let Ok(crate::config::CompiledExtract {
                        source: crate::config::ExtractSource::Custom(code),
                        ..
                    }) = x.compile()
                    {
                        out.push(code);
                    }
                }
            }
        }
    }
    out
}

/// Compiles every script of `test` (without running any): the first syntax error, with its file
/// (or key) and line.
pub fn check(test: &TestFile) -> Result<(), ScriptError> {
    all_codes(test)
        .iter()
        .try_for_each(|c| crate::script::check(c))
}

impl Scripts {
    /// The test's scripts; `None` when it has none. `n_http` is the number of HTTP steps (script
    /// steps are numbered after them).
    pub fn build(test: &TestFile, n_http: usize) -> Option<Scripts> {
        let mut next_id = n_http;
        let mut any = false;
        let scenarios = test
            .scenarios
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let at = format!("scenarios[{i}]");
                let hooks = s.hooks.clone().unwrap_or_default();
                let h = |name: &str, x: &Option<Hook>| {
                    x.as_ref()
                        .and_then(|x| hook(format!("{at}.hooks.{name}"), x))
                };
                let legacy = |name: &str, x: &Option<String>| {
                    x.as_ref().map(|t| HookJs {
                        code: Code::new(
                            format!("{at}.{name}"),
                            t.clone(),
                            Form::Body,
                            crate::config::script::DEFAULT_TIMEOUT,
                        ),
                        // A legacy setup that throws fails the iteration, as in the TypeScript tool.
                        continue_on_error: false,
                    })
                };
                let sc = ScenarioJs {
                    name: s.name.clone(),
                    before_scenario: h("beforeScenario", &hooks.before_scenario),
                    teardown_scenario: h("teardownScenario", &hooks.teardown_scenario),
                    before_loop: h("beforeLoop", &hooks.before_loop),
                    after_loop: h("afterLoop", &hooks.after_loop),
                    setup: legacy("setup", &s.setup),
                    teardown: legacy("teardown", &s.teardown),
                    steps: s
                        .steps
                        .iter()
                        .enumerate()
                        .map(|(j, st)| {
                            let at = format!("{at}.steps[{j}]");
                            match st {
                                Step::Http(h) => h
                                    .scripts
                                    .as_ref()
                                    .filter(|x| !x.is_empty())
                                    .map(|x| step_js(&at, x)),
                                Step::Script(x) => {
                                    let mut js = step_js(&at, &x.scripts);
                                    js.body = Some((step_code(&at, x), next_id));
                                    next_id += 1;
                                    Some(js)
                                }
                                _ => None,
                            }
                        })
                        .collect(),
                };
                any |= sc.before_scenario.is_some()
                    || sc.teardown_scenario.is_some()
                    || sc.before_loop.is_some()
                    || sc.after_loop.is_some()
                    || sc.setup.is_some()
                    || sc.teardown.is_some()
                    || sc.steps.iter().any(Option::is_some);
                sc
            })
            .collect();
        any.then(|| Scripts {
            scenarios,
            logged: AtomicU64::new(0),
        })
    }

    fn log(&self, what: &str, e: &ScriptError) {
        if self.logged.fetch_add(1, Ordering::Relaxed) < 20 {
            tracing::warn!(error = %e, "{what} failed");
        }
    }
}

impl ScenarioJs {
    /// Whether the scenario has a hook around its iteration or its rounds.
    pub fn wraps(&self) -> bool {
        self.before_scenario.is_some()
            || self.setup.is_some()
            || self.teardown.is_some()
            || self.teardown_scenario.is_some()
            || self.before_loop.is_some()
            || self.after_loop.is_some()
    }
}

/// Runs `code` for the VU and keeps its changes to `context.variables`.
fn run(
    vars: &mut Vars,
    scenario: &str,
    code: &Arc<Code>,
    params: Option<&serde_json::Value>,
) -> Result<crate::script::Output, ScriptError> {
    let out = vars.js.call(
        code,
        &Input {
            variables: Some(&vars.values),
            vu: vars.vu,
            iteration: vars.iteration,
            scenario,
            result: None,
            params,
        },
    )?;
    if let Some(changed) = &out.variables {
        for (k, v) in changed {
            if vars.values.get(k) != Some(v) {
                vars.values.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(out)
}

/// Runs a hook; false when it failed and its `continueOnError` is false.
fn run_hook(
    all: &Scripts,
    sc: &ScenarioJs,
    vars: &mut Vars,
    h: &Option<HookJs>,
    name: &str,
) -> bool {
    let Some(h) = h else { return true };
    match run(vars, &sc.name, &h.code, None) {
        Ok(_) => true,
        Err(e) => {
            all.log(name, &e);
            h.continue_on_error
        }
    }
}

/// `beforeScenario`, then `setup`: false when one failed without `continueOnError` (the
/// iteration's steps are then skipped).
pub fn begin(all: &Scripts, sc: &ScenarioJs, vars: &mut Vars) -> bool {
    run_hook(all, sc, vars, &sc.before_scenario, "beforeScenario")
        && run_hook(all, sc, vars, &sc.setup, "setup")
}

/// `teardown`, then `teardownScenario`.
pub fn end(all: &Scripts, sc: &ScenarioJs, vars: &mut Vars) {
    run_hook(all, sc, vars, &sc.teardown, "teardown");
    run_hook(all, sc, vars, &sc.teardown_scenario, "teardownScenario");
}

/// `beforeLoop`: false when it failed without `continueOnError`.
pub fn before_round(all: &Scripts, sc: &ScenarioJs, vars: &mut Vars) -> bool {
    run_hook(all, sc, vars, &sc.before_loop, "beforeLoop")
}

/// `afterLoop`.
pub fn after_round(all: &Scripts, sc: &ScenarioJs, vars: &mut Vars) -> bool {
    run_hook(all, sc, vars, &sc.after_loop, "afterLoop")
}

/// The step's `condition`, then `beforeStep`: whether the step runs. A condition that throws is
/// false (the step is skipped, as in the TypeScript tool), and logged.
pub fn before_step(all: &Scripts, sc: &ScenarioJs, st: &StepJs, vars: &mut Vars) -> bool {
    if let Some(c) = &st.condition {
        let input = Input {
            variables: Some(&vars.values),
            vu: vars.vu,
            iteration: vars.iteration,
            scenario: &sc.name,
            ..Default::default()
        };
        match vars.js.call(c, &input) {
            Ok(o) if super::checks::truthy(&o.value) => {}
            Ok(_) => return false,
            Err(e) => {
                all.log("condition", &e);
                return false;
            }
        }
    }
    run_hook(all, sc, vars, &st.before, "beforeStep")
}

/// `onStepError` (when the step failed), then `teardownStep`. False when one of them failed
/// without `continueOnError`.
pub fn after_step(
    all: &Scripts,
    sc: &ScenarioJs,
    st: &StepJs,
    vars: &mut Vars,
    failed: bool,
) -> bool {
    let ok = !failed || run_hook(all, sc, vars, &st.on_error, "onStepError");
    run_hook(all, sc, vars, &st.teardown, "teardownStep") && ok
}

/// Runs a `custom` or `script` step: one sample (its time; its error when it threw or ran out of
/// time). A `script` step's return value goes into `returns`. Returns whether it failed.
pub fn script_step(
    all: &Scripts,
    sc: &ScenarioJs,
    st: &StepJs,
    step: &ScriptStep,
    vars: &mut Vars,
    samples: &crate::metrics::collector::Recorder,
) -> bool {
    let Some((code, id)) = &st.body else {
        return false;
    };
    let params = match &step.code {
        ScriptCode::File { params, .. } => Some(params),
        ScriptCode::Inline(_) => None,
    };
    let started = Instant::now();
    let result = run(vars, &sc.name, code, params);
    let latency_us = started.elapsed().as_micros() as u64;
    let error = match result {
        Ok(out) => {
            if let (Some(name), Some(v)) = (&step.returns, out.value_text()) {
                vars.values.insert(name.clone(), v);
            }
            None
        }
        Err(e) => {
            all.log(&format!("step `{}`", step.name), &e);
            Some(e.0)
        }
    };
    vars.js.set_last_response(LastResponse {
        step: step.name.clone(),
        status: None,
        body: String::new(),
        response_time: latency_us as f64 / 1000.0,
        error: error.clone(),
    });
    let failed = error.is_some();
    samples.record(&Sample {
        step: *id,
        latency_us,
        status: None,
        error,
        checks_passed: 0,
        failed_checks: Vec::new(),
        bytes: 0,
    });
    failed
}
