//! Where a VU runs the test's JavaScript (see `script` for the engine and `config::script` for
//! the keys): a scenario's hooks and legacy `setup`/`teardown` around each iteration, `beforeLoop`
//! and `afterLoop` around each round, a step's `condition` and hooks around it, and the `custom`
//! and `script` steps, each recorded as a sample of its own (its time, and its error when it
//! throws or runs out of time). A run whose test holds no script builds none of this
//! ([`Scripts::build`] gives `None`), so its VUs pay one `Option` test per step.

use super::client::VuClient;
use super::http::Target;
use super::template::Vars;
use super::Shared;
use crate::config::script::{Code, Form, Hook, ScriptCode, ScriptStep, StepScripts};
use crate::config::{CompiledStep, HttpStep, Step, TestFile, ThinkTime};
use crate::metrics::Sample;
use crate::script::{Input, LastResponse, ScriptError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The test's scripts, compiled forms by scenario and step.
pub(crate) struct Scripts {
    pub scenarios: Vec<ScenarioJs>,
    /// The test's own hooks (`beforeTest`, `onTestError`, `teardownTest`).
    pub test: TestJs,
    /// Script failures logged so far (the first 20 are).
    logged: AtomicU64,
}

/// The test's own hooks, ready to run (see [`before_test`] and [`after_test`]).
#[derive(Default)]
pub(crate) struct TestJs {
    before: Option<HookJs>,
    on_error: Option<HookJs>,
    teardown: Option<HookJs>,
}

impl TestJs {
    /// Whether the test has any of its own hooks.
    pub fn any(&self) -> bool {
        self.before.is_some() || self.on_error.is_some() || self.teardown.is_some()
    }

    fn each(&self) -> impl Iterator<Item = &HookJs> {
        [&self.before, &self.on_error, &self.teardown]
            .into_iter()
            .flatten()
    }

    fn each_mut(&mut self) -> impl Iterator<Item = &mut HookJs> {
        [&mut self.before, &mut self.on_error, &mut self.teardown]
            .into_iter()
            .flatten()
    }
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
    /// Where it is written (`scenarios[0].hooks.beforeScenario`), for its errors.
    origin: String,
    /// `inline`/`file` hooks: the JavaScript.
    code: Option<Arc<Code>>,
    /// `type: steps` hooks: the steps, run in turn.
    steps: Vec<HookStepJs>,
    continue_on_error: bool,
    /// Runs after the load (`teardownTest`, `onTestError`): its steps are not cut short by the
    /// run's stop or deadline.
    after_load: bool,
}

/// A step of a `type: steps` hook, ready to run.
pub(crate) struct HookStepJs {
    name: String,
    condition: Option<Arc<Code>>,
    continue_on_error: bool,
    kind: HookStepKind,
}

enum HookStepKind {
    /// The step, its compiled checks and extractions, and the id its digest challenges are kept
    /// under (counted down from `usize::MAX`, clear of the run's steps).
    Http(Box<(HttpStep, CompiledStep, usize)>),
    Script(Arc<Code>, Option<serde_json::Value>, Option<String>),
    Wait(ThinkTime),
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

fn hook(
    test: &TestFile,
    scenario: usize,
    origin: String,
    h: &Hook,
    next_id: &mut usize,
) -> Result<Option<HookJs>, String> {
    if let Some(steps) = &h.steps {
        return hook_steps(test, scenario, &origin, &steps.0, next_id).map(|steps| {
            Some(HookJs {
                origin,
                code: None,
                steps,
                continue_on_error: h.continue_on_error,
                after_load: false,
            })
        });
    }
    let Some(text) = h.code() else {
        return Ok(None);
    };
    let form = if h.file.is_some() {
        Form::HookFile
    } else {
        Form::Body
    };
    let at = h.file.clone().unwrap_or(origin.clone());
    Ok(Some(HookJs {
        origin,
        code: Some(Code::new(
            at,
            text,
            form,
            h.timeout.unwrap_or(crate::config::script::DEFAULT_TIMEOUT),
        )),
        steps: Vec::new(),
        continue_on_error: h.continue_on_error,
        after_load: false,
    }))
}

/// Compiles a `type: steps` hook's steps (`at` is the hook's key): its HTTP steps' checks and
/// extractions through the same compiler as the scenario's, with the scenario's variables.
fn hook_steps(
    test: &TestFile,
    scenario: usize,
    at: &str,
    steps: &[Step],
    next_id: &mut usize,
) -> Result<Vec<HookStepJs>, String> {
    let mut alone = test.clone();
    let mut sc = test.scenarios[scenario].clone();
    sc.steps = steps.to_vec();
    sc.hooks = None;
    sc.setup = None;
    sc.teardown = None;
    alone.scenarios = vec![sc];
    let compiled = crate::config::compile(&alone)
        .map_err(|e| e.0.replace("scenarios[0].steps[", &format!("{at}.steps[")))?;
    let mut compiled = compiled.steps.into_iter();
    steps
        .iter()
        .enumerate()
        .map(|(k, st)| {
            let here = format!("{at}.steps[{k}]");
            let condition = |s: Option<&StepScripts>| {
                s.and_then(|s| s.condition.as_ref()).map(|c| {
                    Code::new(
                        format!("{here}.condition"),
                        c.clone(),
                        Form::Expr,
                        crate::config::script::DEFAULT_TIMEOUT,
                    )
                })
            };
            if !crate::config::step_state_refs(st).is_empty() {
                return Err(format!(
                    "{here}: `{{{{state...}}}}` is not supported in a hook's step (shared state is read for the scenario's steps only)"
                ));
            }
            Ok(match st {
                Step::Http(h) => {
                    let c = compiled
                        .next()
                        .ok_or_else(|| format!("{here}: not compiled"))?;
                    *next_id -= 1;
                    HookStepJs {
                        name: h.name.clone(),
                        condition: condition(h.scripts.as_deref()),
                        continue_on_error: h.options.continue_on_error,
                        kind: HookStepKind::Http(Box::new((h.clone(), c, *next_id))),
                    }
                }
                Step::Script(x) => HookStepJs {
                    name: x.name.clone(),
                    condition: condition(Some(&x.scripts)),
                    continue_on_error: x.continue_on_error,
                    kind: HookStepKind::Script(
                        step_code(&here, x),
                        match &x.code {
                            ScriptCode::File { params, .. } => Some(params.clone()),
                            ScriptCode::Inline(_) => None,
                        },
                        x.returns.clone(),
                    ),
                },
                Step::Wait { name, duration } => HookStepJs {
                    name: name.clone(),
                    condition: None,
                    continue_on_error: true,
                    kind: HookStepKind::Wait(*duration),
                },
                Step::Rendezvous(_) => {
                    return Err(format!("{here}: a `rendezvous` step cannot run in a hook"))
                }
            })
        })
        .collect()
}

fn step_js(
    test: &TestFile,
    scenario: usize,
    at: &str,
    s: &StepScripts,
    next_id: &mut usize,
) -> Result<StepJs, String> {
    let mut h = |name: &str, x: &Option<Hook>| {
        x.as_ref()
            .map(|x| hook(test, scenario, format!("{at}.hooks.{name}"), x, next_id))
            .transpose()
            .map(Option::flatten)
    };
    Ok(StepJs {
        condition: s.condition.as_ref().map(|c| {
            Code::new(
                format!("{at}.condition"),
                c.clone(),
                Form::Expr,
                crate::config::script::DEFAULT_TIMEOUT,
            )
        }),
        before: h("beforeStep", &s.hooks.before_step)?,
        on_error: h("onStepError", &s.hooks.on_step_error)?,
        teardown: h("teardownStep", &s.hooks.teardown_step)?,
        body: None,
    })
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

/// A hook's scripts into `out`, and its HTTP steps (whose checks may be scripts) into `http`.
fn hook_codes<'a>(h: &'a HookJs, out: &mut Vec<Arc<Code>>, http: &mut Vec<&'a HttpStep>) {
    out.extend(h.code.clone());
    for st in &h.steps {
        out.extend(st.condition.clone());
        match &st.kind {
            HookStepKind::Http(x) => http.push(&x.0),
            HookStepKind::Script(code, ..) => out.push(code.clone()),
            HookStepKind::Wait(_) => {}
        }
    }
}

/// Every script of a test with the key (or file) it comes from: what `validate` compiles.
pub fn all_codes(test: &TestFile) -> Result<Vec<Arc<Code>>, String> {
    let mut out = Vec::new();
    let mut http: Vec<&HttpStep> = test
        .scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .filter_map(|st| match st {
            Step::Http(h) => Some(h),
            _ => None,
        })
        .collect();
    let built = Scripts::build(test, 0)?;
    if let Some(s) = &built {
        for h in s.test.each() {
            hook_codes(h, &mut out, &mut http);
        }
        for sc in &s.scenarios {
            let hooks = [
                &sc.before_scenario,
                &sc.setup,
                &sc.teardown,
                &sc.teardown_scenario,
                &sc.before_loop,
                &sc.after_loop,
            ]
            .into_iter()
            .chain(
                sc.steps
                    .iter()
                    .flatten()
                    .flat_map(|st| [&st.before, &st.on_error, &st.teardown]),
            )
            .flatten();
            for h in hooks {
                hook_codes(h, &mut out, &mut http);
            }
            for st in sc.steps.iter().flatten() {
                out.extend(st.condition.clone());
                out.extend(st.body.as_ref().map(|b| b.0.clone()));
            }
        }
    }
    for h in http {
        for t in &h.options.thresholds {
            if let Ok(c) = t.compile() {
                out.extend(c.script);
            }
        }
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
    Ok(out)
}

/// Compiles every script of `test` (without running any): the first syntax error, with its file
/// (or key) and line. A hook's steps that do not compile are an error here too.
pub fn check(test: &TestFile) -> Result<(), ScriptError> {
    all_codes(test)
        .map_err(ScriptError)?
        .iter()
        .try_for_each(|c| crate::script::check(c))
}

impl Scripts {
    /// The test's scripts; `None` when it has none. `n_http` is the number of HTTP steps (script
    /// steps are numbered after them). An error when a `type: steps` hook's steps do not compile.
    pub fn build(test: &TestFile, n_http: usize) -> Result<Option<Scripts>, String> {
        let mut next_id = n_http;
        let mut next_hook_id = usize::MAX;
        let mut any = false;
        let mut scenarios = Vec::new();
        let mut own = TestJs::default();
        if let Some(th) = &test.hooks {
            let mut h = |name: &str, x: &Option<Hook>| {
                x.as_ref()
                    .map(|x| hook(test, 0, format!("hooks.{name}"), x, &mut next_hook_id))
                    .transpose()
                    .map(Option::flatten)
            };
            own.before = h("beforeTest", &th.before_test)?;
            own.on_error = h("onTestError", &th.on_test_error)?;
            own.teardown = h("teardownTest", &th.teardown_test)?;
            for h in [&mut own.on_error, &mut own.teardown].into_iter().flatten() {
                h.after_load = true;
            }
            any |= own.any();
        }
        for (i, s) in test.scenarios.iter().enumerate() {
            let at = format!("scenarios[{i}]");
            let hooks = s.hooks.clone().unwrap_or_default();
            let mut h = |name: &str, x: &Option<Hook>| {
                x.as_ref()
                    .map(|x| hook(test, i, format!("{at}.hooks.{name}"), x, &mut next_hook_id))
                    .transpose()
                    .map(Option::flatten)
            };
            let before_scenario = h("beforeScenario", &hooks.before_scenario)?;
            let teardown_scenario = h("teardownScenario", &hooks.teardown_scenario)?;
            let before_loop = h("beforeLoop", &hooks.before_loop)?;
            let after_loop = h("afterLoop", &hooks.after_loop)?;
            let legacy = |name: &str, x: &Option<String>| {
                x.as_ref().map(|t| HookJs {
                    origin: format!("{at}.{name}"),
                    code: Some(Code::new(
                        format!("{at}.{name}"),
                        t.clone(),
                        Form::Body,
                        crate::config::script::DEFAULT_TIMEOUT,
                    )),
                    steps: Vec::new(),
                    // A legacy setup that throws fails the iteration, as in the TypeScript tool.
                    continue_on_error: false,
                    after_load: false,
                })
            };
            let mut steps = Vec::new();
            for (j, st) in s.steps.iter().enumerate() {
                let at = format!("{at}.steps[{j}]");
                steps.push(match st {
                    Step::Http(h) => match h.scripts.as_ref().filter(|x| !x.is_empty()) {
                        Some(x) => Some(step_js(test, i, &at, x, &mut next_hook_id)?),
                        None => None,
                    },
                    Step::Script(x) => {
                        let mut js = step_js(test, i, &at, &x.scripts, &mut next_hook_id)?;
                        js.body = Some((step_code(&at, x), next_id));
                        next_id += 1;
                        Some(js)
                    }
                    _ => None,
                });
            }
            let sc = ScenarioJs {
                name: s.name.clone(),
                before_scenario,
                teardown_scenario,
                before_loop,
                after_loop,
                setup: legacy("setup", &s.setup),
                teardown: legacy("teardown", &s.teardown),
                steps,
            };
            any |= sc.wraps() || sc.steps.iter().any(Option::is_some);
            scenarios.push(sc);
        }
        Ok(any.then(|| Scripts {
            scenarios,
            test: own,
            logged: AtomicU64::new(0),
        }))
    }

    /// The compiled requests of every `type: steps` hook, for the WSDL look-ups the run makes
    /// before it starts.
    pub fn hook_requests(&mut self) -> impl Iterator<Item = &mut CompiledStep> {
        let own = self
            .test
            .each_mut()
            .flat_map(|h| &mut h.steps)
            .filter_map(|st| match &mut st.kind {
                HookStepKind::Http(x) => Some(&mut x.1),
                _ => None,
            });
        own.chain(self.scenarios.iter_mut().flat_map(|sc| {
            [
                &mut sc.before_scenario,
                &mut sc.setup,
                &mut sc.teardown,
                &mut sc.teardown_scenario,
                &mut sc.before_loop,
                &mut sc.after_loop,
            ]
            .into_iter()
            .chain(
                sc.steps
                    .iter_mut()
                    .flatten()
                    .flat_map(|st| [&mut st.before, &mut st.on_error, &mut st.teardown]),
            )
            .flatten()
            .flat_map(|h| &mut h.steps)
            .filter_map(|st| match &mut st.kind {
                HookStepKind::Http(x) => Some(&mut x.1),
                _ => None,
            })
        }))
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
    run_with(vars, scenario, code, params, None)
}

/// [`run`], with `context.error` (an error hook's).
fn run_with(
    vars: &mut Vars,
    scenario: &str,
    code: &Arc<Code>,
    params: Option<&serde_json::Value>,
    error: Option<&str>,
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
            error,
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

/// What a `type: steps` hook's requests go through: the VU's own connection and the run.
pub(crate) struct Io<'a, 'b> {
    pub shared: &'a Shared,
    pub client: &'a mut VuClient,
    pub target: &'a Target<'b>,
}

/// Runs a hook; false when it failed and its `continueOnError` is false.
async fn run_hook(
    all: &Scripts,
    sc: &ScenarioJs,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
    h: &Option<HookJs>,
    name: &str,
) -> bool {
    let Some(h) = h else { return true };
    let result = match &h.code {
        Some(code) => run(vars, &sc.name, code, None).map(drop),
        None => run_steps(all, sc, vars, io, h, None).await,
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            all.log(name, &e);
            h.continue_on_error
        }
    }
}

/// Whether a `condition` holds; one that throws is false (and logged), as in the TypeScript tool.
fn holds(all: &Scripts, scenario: &str, c: &Arc<Code>, vars: &mut Vars) -> bool {
    holds_with(all, scenario, c, vars, None)
}

/// [`holds`], with `context.error` (an error hook's steps).
fn holds_with(
    all: &Scripts,
    scenario: &str,
    c: &Arc<Code>,
    vars: &mut Vars,
    error: Option<&str>,
) -> bool {
    let input = Input {
        error,
        variables: Some(&vars.values),
        vu: vars.vu,
        iteration: vars.iteration,
        scenario,
        ..Default::default()
    };
    match vars.js.call(c, &input) {
        Ok(o) => super::checks::truthy(&o.value),
        Err(e) => {
            all.log("condition", &e);
            false
        }
    }
}

/// A `type: steps` hook's steps in turn. A step that fails (its request's error or failed
/// checks, its script's throw) is logged; it fails the hook when its own `continueOnError` is
/// false, which stops the hook's remaining steps (as in the TypeScript tool). What they extract
/// or set is the VU's for the rest of the iteration. Their requests make no samples.
async fn run_steps(
    all: &Scripts,
    sc: &ScenarioJs,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
    h: &HookJs,
    error: Option<&str>,
) -> Result<(), ScriptError> {
    for st in &h.steps {
        if !h.after_load && io.shared.stopped() {
            break;
        }
        if let Some(c) = &st.condition {
            if !holds_with(all, &sc.name, c, vars, error) {
                continue;
            }
        }
        let result = match &st.kind {
            HookStepKind::Http(x) => request(io, &x.0, &x.1, x.2, vars).await,
            HookStepKind::Script(code, params, returns) => {
                run_with(vars, &sc.name, code, params.as_ref(), error).map(|out| {
                    if let (Some(name), Some(v)) = (returns, out.value_text()) {
                        vars.values.insert(name.clone(), v);
                    }
                })
            }
            HookStepKind::Wait(t) => {
                let mut until = std::time::Instant::now() + t.sample();
                if let Some(d) = io.shared.deadline.filter(|_| !h.after_load) {
                    until = until.min(d);
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    _ = io.shared.cancel.cancelled() => {}
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            let e = ScriptError(format!("{} step `{}`: {}", h.origin, st.name, e.0));
            if !st.continue_on_error {
                return Err(e);
            }
            all.log("hook step", &e);
        }
    }
    Ok(())
}

/// One HTTP request of a hook's step: sent on the VU's connection with the step's `timeout`, its
/// checks and extractions applied, no sample made. Its error, or its failed checks, is the error.
async fn request(
    io: &mut Io<'_, '_>,
    h: &HttpStep,
    compiled: &CompiledStep,
    id: usize,
    vars: &mut Vars,
) -> Result<(), ScriptError> {
    vars.next_request();
    let previous = h.options.timeout.map(|t| io.client.set_timeout(t));
    let (sample, extracted) = super::http::send(
        io.client,
        io.target,
        (h, None, compiled),
        id,
        vars,
        None,
        None,
    )
    .await;
    if let Some(t) = previous {
        io.client.set_timeout(t);
    }
    for (name, value) in extracted {
        match name.strip_prefix(super::globals::PREFIX) {
            Some(global) => {
                io.shared.globals.set(global, value);
                vars.globals_seen = u64::MAX;
            }
            None => {
                vars.values.insert(name, value);
            }
        }
    }
    io.shared
        .globals
        .copy_into(&mut vars.values, &mut vars.globals_seen);
    match (sample.error, sample.failed_checks.is_empty()) {
        (Some(e), _) => Err(ScriptError(match sample.status {
            Some(code) => format!("{e} (status {code})"),
            None => e,
        })),
        (None, false) => Err(ScriptError(format!(
            "failed checks: {}",
            sample.failed_checks.join("; ")
        ))),
        (None, true) => Ok(()),
    }
}

/// `beforeScenario`, then `setup`: false when one failed without `continueOnError` (the
/// iteration's steps are then skipped).
pub async fn begin(all: &Scripts, sc: &ScenarioJs, vars: &mut Vars, io: &mut Io<'_, '_>) -> bool {
    run_hook(all, sc, vars, io, &sc.before_scenario, "beforeScenario").await
        && run_hook(all, sc, vars, io, &sc.setup, "setup").await
}

/// `teardown`, then `teardownScenario`.
pub async fn end(all: &Scripts, sc: &ScenarioJs, vars: &mut Vars, io: &mut Io<'_, '_>) {
    run_hook(all, sc, vars, io, &sc.teardown, "teardown").await;
    run_hook(all, sc, vars, io, &sc.teardown_scenario, "teardownScenario").await;
}

/// `beforeLoop`: false when it failed without `continueOnError`.
pub async fn before_round(
    all: &Scripts,
    sc: &ScenarioJs,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
) -> bool {
    run_hook(all, sc, vars, io, &sc.before_loop, "beforeLoop").await
}

/// `afterLoop`.
pub async fn after_round(
    all: &Scripts,
    sc: &ScenarioJs,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
) -> bool {
    run_hook(all, sc, vars, io, &sc.after_loop, "afterLoop").await
}

/// The step's `condition`, then `beforeStep`: whether the step runs. A condition that throws is
/// false (the step is skipped, as in the TypeScript tool), and logged.
pub async fn before_step(
    all: &Scripts,
    sc: &ScenarioJs,
    st: &StepJs,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
) -> bool {
    if let Some(c) = &st.condition {
        if !holds(all, &sc.name, c, vars) {
            return false;
        }
    }
    run_hook(all, sc, vars, io, &st.before, "beforeStep").await
}

/// `onStepError` (when the step failed), then `teardownStep`. False when one of them failed
/// without `continueOnError`.
pub async fn after_step(
    all: &Scripts,
    sc: &ScenarioJs,
    st: &StepJs,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
    failed: bool,
) -> bool {
    let ok = !failed || run_hook(all, sc, vars, io, &st.on_error, "onStepError").await;
    run_hook(all, sc, vars, io, &st.teardown, "teardownStep").await && ok
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

/// A threshold's `custom_script` over one result: `Ok` when it holds, else the message of the
/// breach. The script sees `context` (the VU's variables, `vu_id`, `iteration`) and `result`, the
/// TypeScript tool's result fields: `duration` / `response_time` (ms), `status`, `success`,
/// `error`, `response_body` / `body`, `step_name`, `vu_id`, `iteration`. It returns the verdict
/// (any truthy value holds), a number compared with `value` by `operator` when `value` is given,
/// or `{pass, message}`. A script that throws breaks the threshold with its JS message, as the
/// TypeScript tool counts an evaluation error as a failure.
pub fn custom_threshold(
    t: &crate::config::step_options::CompiledThreshold,
    h: &HttpStep,
    sample: &crate::metrics::Sample,
    vars: &Vars,
    body: Option<&[u8]>,
) -> Result<(), String> {
    let Some(code) = &t.script else {
        return Ok(());
    };
    let ms = sample.latency_us as f64 / 1000.0;
    let failed = sample.error.is_some() || !sample.failed_checks.is_empty();
    let text = body
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let error = sample
        .error
        .clone()
        .or_else(|| failed.then(|| sample.failed_checks.join("; ")));
    let result = serde_json::json!({
        "duration": ms,
        "response_time": ms,
        "status": sample.status,
        "success": !failed,
        "error": error,
        "response_body": text,
        "body": text,
        "step_name": h.name,
        "vu_id": vars.vu,
        "iteration": vars.iteration,
    });
    let input = Input {
        variables: Some(&vars.values),
        vu: vars.vu,
        iteration: vars.iteration,
        result: Some(result),
        ..Default::default()
    };
    let value = vars.js.call(code, &input).map_err(|e| e.0)?.value;
    match &value {
        serde_json::Value::Number(n) if t.has_value => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if t.holds(n) {
                Ok(())
            } else {
                Err(format!("custom_script gave {n}"))
            }
        }
        serde_json::Value::Object(o) if o.contains_key("pass") => {
            if super::checks::truthy(&o["pass"]) {
                Ok(())
            } else {
                Err(o
                    .get("message")
                    .and_then(crate::script::as_text)
                    .unwrap_or_else(|| "custom_script gave pass: false".into()))
            }
        }
        v if super::checks::truthy(v) => Ok(()),
        v => Err(format!("custom_script gave {v}")),
    }
}

/// Runs one of the test's own hooks in its context: `Err` with its message when it failed
/// (whatever its `continueOnError`; the caller decides).
async fn run_test_hook(
    all: &Scripts,
    h: &HookJs,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
    error: Option<&str>,
) -> Result<(), ScriptError> {
    let outside = ScenarioJs::default();
    let result = match &h.code {
        Some(code) => run_with(vars, "", code, None, error).map(drop),
        None => run_steps(all, &outside, vars, io, h, error).await,
    };
    result.map_err(|e| ScriptError(format!("{} failed: {}", h.origin, e.0)))
}

/// `beforeTest`, once before any VU starts, in the test hooks' own context (`vars`: `vu_id` 0).
/// `Err` (its message, naming the hook and the script's file:line) when it failed without
/// `continueOnError`: the run then makes no load. A failure with `continueOnError` is logged.
pub async fn before_test(
    all: &Scripts,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
) -> Result<(), String> {
    let Some(h) = &all.test.before else {
        return Ok(());
    };
    match run_test_hook(all, h, vars, io, None).await {
        Ok(()) => Ok(()),
        Err(e) if h.continue_on_error => {
            tracing::warn!(error = %e, "beforeTest failed; the run goes on (continueOnError)");
            Ok(())
        }
        Err(e) => Err(e.0),
    }
}

/// After every VU ended: `onTestError` when `failures` is not empty (its `context.error` is
/// them, one a line), then `teardownTest`. Returns the failures of those without
/// `continueOnError` (each fails the run); the others are logged.
pub async fn after_test(
    all: &Scripts,
    vars: &mut Vars,
    io: &mut Io<'_, '_>,
    failures: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    let error = failures.join("\n");
    let hooks = [
        (&all.test.on_error, !failures.is_empty()),
        (&all.test.teardown, true),
    ];
    for (h, due) in hooks {
        let Some(h) = h.as_ref().filter(|_| due) else {
            continue;
        };
        if let Err(e) = run_test_hook(
            all,
            h,
            vars,
            io,
            Some(&error).filter(|e| !e.is_empty()).map(String::as_str),
        )
        .await
        {
            if h.continue_on_error {
                tracing::warn!(error = %e, "test hook failed (continueOnError)");
            } else {
                out.push(e.0);
            }
        }
    }
    out
}
