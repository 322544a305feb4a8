//! The script-bearing keys of a test, as written: hooks (`{type: inline|file|steps, content, file,
//! steps, continueOnError, timeout}` or the documentation's plain-string form), a scenario's `hooks`,
//! `setup` and `teardown`, a step's `condition` and `hooks`, and the `custom` / `script` steps. The
//! `script` module compiles and runs them; here they are only parsed and shaped. A hook's or
//! script step's `file` is read when the test is loaded ([`inline_files`]) and travels in the
//! test as `source`, so workers never read the controller's disk.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The time limit of one call when no `timeout` is given (the TypeScript tool's fixed 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A hook: JavaScript run at a point of a VU's journey.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hook {
    /// Inline code (`type: inline`, or the plain-string form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `type: file`: a `.js` file relative to the test file, exporting a function
    /// `(context, helpers)` (or holding a body run like inline code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The file's text, read when the test is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `type: steps`: ordinary steps run in turn at the hook's point (see [`HookSteps`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<HookSteps>,
    /// Whether a failing hook is only logged (the TypeScript default) or fails its step/iteration.
    #[serde(rename = "continueOnError")]
    pub continue_on_error: bool,
    /// The call's time limit.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_ms"
    )]
    pub timeout: Option<Duration>,
}

fn ser_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    steps: Option<Vec<super::Step>>,
    #[serde(default, rename = "continueOnError", alias = "continue_on_error")]
    continue_on_error: Option<bool>,
    #[serde(default, deserialize_with = "super::duration::de_opt_duration_ms")]
    timeout: Option<Duration>,
}

impl<'de> Deserialize<'de> for Hook {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Object(RawHook),
        }
        let raw = match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::String(s) => Either::Text(s),
            other => Either::Object(
                serde_norway::from_value::<RawHook>(other).map_err(serde::de::Error::custom)?,
            ),
        };
        let o = match raw {
            Either::Text(code) => {
                return Ok(Hook {
                    content: Some(code),
                    file: None,
                    source: None,
                    steps: None,
                    continue_on_error: true,
                    timeout: None,
                })
            }
            Either::Object(o) => o,
        };
        let kind = o.kind.as_deref().unwrap_or(if o.file.is_some() {
            "file"
        } else if o.steps.is_some() {
            "steps"
        } else {
            "inline"
        });
        let err = |m: String| Err(serde::de::Error::custom(m));
        if o.timeout.is_some_and(|t| t.is_zero()) {
            return err("a hook's `timeout` must be above zero".into());
        }
        match kind {
            "inline" => {
                if o.content.is_none() || o.file.is_some() {
                    return err("a hook of `type: inline` needs `content` (and no `file`)".into());
                }
            }
            "file" => {
                if o.file.is_none() || o.content.is_some() {
                    return err("a hook of `type: file` needs `file` (and no `content`)".into());
                }
            }
            "steps" => {
                if o.content.is_some() || o.file.is_some() {
                    return err(
                        "a hook of `type: steps` needs `steps` (and no `content` or `file`)".into(),
                    );
                }
                let steps = o.steps.clone().unwrap_or_default();
                if steps.is_empty() {
                    return err("a hook of `type: steps` needs at least one step in `steps`".into());
                }
                if o.timeout.is_some() {
                    return err("a hook of `type: steps` takes no `timeout`: give each step its own (`timeout` of an HTTP step, of a `custom`/`script` step)".into());
                }
                for (k, st) in steps.iter().enumerate() {
                    hook_step_allowed(st).map_err(|e| {
                        serde::de::Error::custom(format!("steps[{k}] (`{}`): {e}", st.name()))
                    })?;
                }
            }
            other => {
                return err(format!(
                    "hook `type` must be inline, file or steps, got `{other}`"
                ))
            }
        }
        if kind != "steps" && o.steps.is_some() {
            return err(format!(
                "`steps` belongs to a hook of `type: steps`, not `{kind}`"
            ));
        }
        Ok(Hook {
            content: o.content,
            file: o.file,
            source: o.source,
            steps: o.steps.map(HookSteps),
            continue_on_error: o.continue_on_error.unwrap_or(true),
            timeout: o.timeout,
        })
    }
}

/// The steps of a `type: steps` hook. They run as the scenario's steps do (templates, checks,
/// extractions, `condition`, `timeout`, `continueOnError`) but make no samples: as in the
/// TypeScript tool, a hook's requests are not in the run's totals or step statistics.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct HookSteps(pub Vec<super::Step>);

impl PartialEq for HookSteps {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

/// What a hook's step may carry: the keys that act outside the scenario's own steps. The others
/// are refused by name with the reason.
fn hook_step_allowed(st: &super::Step) -> Result<(), String> {
    use super::Step;
    match st {
        Step::Http(h) => {
            let o = &h.options;
            for (key, present, why) in [
                ("thresholds", !o.thresholds.is_empty(), "a hook's requests make no samples, and the TypeScript tool checks thresholds only on the scenario's steps"),
                ("retry", o.retry.is_some(), "not supported in a hook's steps"),
                ("think_time", o.think_time.is_some(), "a hook's steps run back to back, as in the TypeScript tool"),
                ("hooks", h.scripts.as_ref().is_some_and(|s| s.hooks != StepHooks::default()), "hooks do not nest"),
            ] {
                if present {
                    return Err(format!("`{key}` is not supported in a hook's step: {why}"));
                }
            }
            Ok(())
        }
        Step::Script(s) => {
            if s.scripts.hooks != StepHooks::default() {
                return Err("`hooks` is not supported in a hook's step: hooks do not nest".into());
            }
            Ok(())
        }
        Step::Wait { .. } => Ok(()),
        Step::Rendezvous(_) => Err(
            "a `rendezvous` step cannot run in a hook: a meeting point counts the scenario's VUs at one place of their steps"
                .into(),
        ),
    }
}

impl Hook {
    /// The code to run: the inline content, or the file's text once loaded.
    pub fn code(&self) -> Option<&str> {
        self.content.as_deref().or(self.source.as_deref())
    }
}

/// A scenario's `hooks:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioHooks {
    /// Once per iteration of the scenario, before its steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_scenario: Option<Hook>,
    /// Once per iteration of the scenario, after its steps (also after a failed step ended it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown_scenario: Option<Hook>,
    /// Before each round of the scenario's `loop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_loop: Option<Hook>,
    /// After each round of the scenario's `loop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_loop: Option<Hook>,
}

/// The test's own `hooks:` (top level): JavaScript run once per run, outside any VU, in a
/// context of its own (`vu_id` 0, `iteration` 0, `scenario_name` empty). A local run runs them
/// around its load; a distributed run runs each once for the run, on one worker (`/test-hook`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestHooks {
    /// Once, before any VU starts. What it leaves in `context.variables` (set, `setVariable`, or
    /// extracted by its steps) is every VU's starting variables. A failure without
    /// `continueOnError` stops the run before any load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_test: Option<Hook>,
    /// Once, after every VU ended (also after a stop, an abort or a failed `beforeTest`).
    /// `afterTest` (the TypeScript documentation's name) is the same key.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "afterTest")]
    pub teardown_test: Option<Hook>,
    /// Once, before `teardownTest`, when the run failed while it ran: `beforeTest` failed, or
    /// a failure was recorded during the load (a step threshold's `fail_test`/`abort`, CSV
    /// rows exhausted with `stop_test`). Not for run-level `thresholds:`/`checks:`, which are
    /// judged on the summary after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_test_error: Option<Hook>,
}

impl TestHooks {
    /// The hooks given, with their keys.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &Hook)> {
        [
            ("beforeTest", &self.before_test),
            ("onTestError", &self.on_test_error),
            ("teardownTest", &self.teardown_test),
        ]
        .into_iter()
        .filter_map(|(n, h)| h.as_ref().map(|h| (n, h)))
    }
}

/// The test's own hooks, when it has any (top level, or `global.hooks` where validation has not
/// yet moved them there).
pub fn test_hooks(test: &super::TestFile) -> Option<&TestHooks> {
    test.hooks
        .as_ref()
        .or(test.global.hooks.as_ref())
        .filter(|h| h.all().next().is_some())
}

/// Test-level `hooks:` are refused where a TypeScript tool takes part in a run (a TS controller
/// preparing one of our workers, or a TS worker behind our controller): the run's hooks run once
/// for the run through our own workers' `/test-hook`, which the TS side neither calls nor serves.
pub fn refuse_ts(test: &super::TestFile, who: &str) -> Result<(), String> {
    match test_hooks(test) {
        Some(_) => Err(format!(
            "`hooks` (beforeTest, teardownTest, onTestError) is not supported with {who}: a \
             test-level hook runs once per run on one perfornium worker, which the TypeScript side \
             cannot do; use perfornium workers, or move the work into a scenario's `beforeScenario`"
        )),
        None => Ok(()),
    }
}

/// A step's `hooks:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepHooks {
    /// Before the step (after its `condition` passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_step: Option<Hook>,
    /// When the step failed (error, failed check, threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_step_error: Option<Hook>,
    /// After the step, whether it failed or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown_step: Option<Hook>,
}

/// What a step may carry besides its own work: its `condition` and `hooks`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepScripts {
    /// A JavaScript expression over `context`; when false the step is skipped.
    pub condition: Option<String>,
    pub hooks: StepHooks,
}

impl StepScripts {
    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.condition.is_none() && self.hooks == StepHooks::default()
    }

    pub fn hooks(&self) -> impl Iterator<Item = (&'static str, &Hook)> {
        [
            ("beforeStep", &self.hooks.before_step),
            ("onStepError", &self.hooks.on_step_error),
            ("teardownStep", &self.hooks.teardown_step),
        ]
        .into_iter()
        .filter_map(|(n, h)| h.as_ref().map(|h| (n, h)))
    }
}

/// A `custom` step (inline `script`) or a `script` step (`file` + `function`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptStep {
    pub name: String,
    pub code: ScriptCode,
    /// `script` steps: the key of `extracted_data` (a variable) the return value is stored in.
    pub returns: Option<String>,
    pub timeout: Duration,
    /// `continueOnError` / `on_error.continue`: whether a failure lets the iteration go on
    /// (default true, as for HTTP steps).
    pub continue_on_error: bool,
    pub scripts: StepScripts,
}

/// What a script step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptCode {
    /// `type: custom`: the body of an async function `(context, require)`; its return value is
    /// the step's data.
    Inline(String),
    /// `type: script`: `function` of the file, called with `{...params, __context, ...}`.
    File {
        file: String,
        /// The file's text, read when the test is loaded.
        source: Option<String>,
        function: String,
        params: serde_json::Value,
    },
}

/// Reads every hook's and script step's `file` (relative to `dir`, the test file's folder) into
/// its `source`; `.ts` files are refused by name.
pub fn inline_files(test: &mut super::TestFile, dir: &Path) -> Result<(), String> {
    let read = |file: &str, source: &mut Option<String>| -> Result<(), String> {
        if source.is_some() {
            return Ok(());
        }
        check_extension(file)?;
        let path = dir.join(file);
        *source = Some(
            std::fs::read_to_string(&path)
                .map_err(|e| format!("script file `{}`: {e}", path.display()))?,
        );
        Ok(())
    };
    // A hook's own file, and the files of its steps.
    let read_hook = |h: &mut Option<Hook>| -> Result<(), String> {
        if let Some(Hook {
            file: Some(f),
            source,
            ..
        }) = h
        {
            read(f, source)?;
        }
        read_hook_steps(h, &read)
    };
    for h in test.hooks.iter_mut().flat_map(|h| {
        [
            &mut h.before_test,
            &mut h.teardown_test,
            &mut h.on_test_error,
        ]
    }) {
        read_hook(h)?;
    }
    for s in &mut test.scenarios {
        for h in s.hooks.iter_mut().flat_map(|h| {
            [
                &mut h.before_scenario,
                &mut h.teardown_scenario,
                &mut h.before_loop,
                &mut h.after_loop,
            ]
        }) {
            read_hook(h)?;
        }
        for step in &mut s.steps {
            let scripts = match step {
                super::Step::Http(h) => h.scripts.as_deref_mut(),
                super::Step::Script(sc) => {
                    if let ScriptCode::File { file, source, .. } = &mut sc.code {
                        read(file, source)?;
                    }
                    Some(&mut sc.scripts)
                }
                _ => None,
            };
            for h in scripts.into_iter().flat_map(|s| {
                [
                    &mut s.hooks.before_step,
                    &mut s.hooks.on_step_error,
                    &mut s.hooks.teardown_step,
                ]
            }) {
                if let Some(Hook {
                    file: Some(f),
                    source,
                    ..
                }) = h
                {
                    read(f, source)?;
                }
                read_hook_steps(h, &read)?;
            }
        }
    }
    Ok(())
}

/// A `type: steps` hook's `script` steps' files, read as the scenario's are.
fn read_hook_steps(
    h: &mut Option<Hook>,
    read: &impl Fn(&str, &mut Option<String>) -> Result<(), String>,
) -> Result<(), String> {
    for st in h
        .iter_mut()
        .flat_map(|h| h.steps.iter_mut())
        .flat_map(|s| s.0.iter_mut())
    {
        if let super::Step::Script(ScriptStep {
            code: ScriptCode::File { file, source, .. },
            ..
        }) = st
        {
            read(file, source)?;
        }
    }
    Ok(())
}

/// A `type: steps` hook's `script` steps whose file was not read.
fn hook_steps_unread(h: &Hook) -> Result<(), String> {
    for st in h.steps.iter().flat_map(|s| s.0.iter()) {
        if let super::Step::Script(ScriptStep {
            code: ScriptCode::File {
                file, source: None, ..
            },
            ..
        }) = st
        {
            return Err(format!(
                "script file `{file}` was not sent with the test: submit the test with `perfornium \
                 distributed` or `run`, which read it, or give its text as `source`"
            ));
        }
    }
    Ok(())
}

/// Scripts are JavaScript: TypeScript files are refused with what to do instead. The choice was
/// measured (`bench/script-engines/ts-strip`, `bench/results/typescript.md`): the maintained
/// stripper (swc_ts_fast_strip, what Node's amaro uses) would add about 10 MB to the binary and
/// minutes to every release build, for a step users can take once with esbuild.
pub fn check_extension(file: &str) -> Result<(), String> {
    if file.ends_with(".ts") || file.ends_with(".mts") || file.ends_with(".cts") {
        return Err(format!(
            "script file `{file}`: TypeScript files are not supported (Perfornium-rs embeds a \
             JavaScript engine and does not strip types: a type-stripper would add about 10 MB \
             to the binary, see bench/results/typescript.md); compile it to JavaScript first, \
             e.g. `npx esbuild {file} --format=cjs --outfile=x.js`, and name the .js file"
        ));
    }
    Ok(())
}

fn hook_text(name: &str, h: &Hook) -> String {
    if let Some(steps) = &h.steps {
        let names: Vec<&str> = steps.0.iter().map(|s| s.name()).collect();
        return format!(
            "{name} (steps {}: run in turn on the VU's connection, no samples made (as in the TypeScript tool); a failed step with `continueOnError: false` stops them and {})",
            names.join(", "),
            if h.continue_on_error {
                "is logged, the VU goes on"
            } else {
                "fails the step and ends the iteration"
            }
        );
    }
    format!(
        "{name} ({}{}, {}, limit {} ms)",
        match &h.file {
            Some(f) => format!("file {f}"),
            None => "inline".into(),
        },
        if h.source.is_none() && h.file.is_some() {
            " (not read yet)"
        } else {
            ""
        },
        if h.continue_on_error {
            "a failure is logged and the VU goes on"
        } else {
            "a failure fails the step and ends the iteration"
        },
        h.timeout.unwrap_or(DEFAULT_TIMEOUT).as_millis()
    )
}

/// `--explain`'s words for a step's `condition` and `hooks`.
pub fn explain_step(s: &StepScripts) -> String {
    let mut l = String::new();
    if let Some(c) = &s.condition {
        l.push_str(&format!(
            ", runs only when `{c}` is truthy (JavaScript; a throwing condition skips the step, as in the TypeScript tool)"
        ));
    }
    for (name, h) in s.hooks() {
        l.push_str(", hook ");
        l.push_str(&hook_text(name, h));
    }
    l
}

/// `--explain`'s words for a `custom` or `script` step.
pub fn explain_script_step(s: &ScriptStep) -> String {
    let mut l = match &s.code {
        ScriptCode::Inline(_) => "custom: inline JavaScript (an async function body; its return value is the step's data)".to_string(),
        ScriptCode::File { file, function, .. } => format!(
            "script: calls `{function}` of {file} with its params{}",
            s.returns
                .as_ref()
                .map(|r| format!(", stores the return value in `{r}`"))
                .unwrap_or_default()
        ),
    };
    l.push_str(&format!(
        ", limit {} ms, recorded as a sample of its own (a throw or time-out is its error){}",
        s.timeout.as_millis(),
        if s.continue_on_error {
            ""
        } else {
            ", a failure ends the iteration"
        }
    ));
    l.push_str(&explain_step(&s.scripts));
    l
}

/// `--explain`'s line for the test's own `hooks:`, when it has any.
pub fn explain_test(test: &super::TestFile) -> Option<String> {
    let h = test.hooks.as_ref()?;
    let parts: Vec<String> = h
        .all()
        .map(|(name, hook)| {
            let when = match name {
                "beforeTest" => "once before any VU starts; what it leaves in `context.variables` starts every VU's variables; a failure without `continueOnError` stops the run before any load (an error: exit code 2, no summary)",
                "onTestError" => "once when the run failed while it ran (beforeTest failed, or a step threshold's fail_test/abort or CSV stop_test recorded a failure; not run-level `thresholds:`, judged after the run), before teardownTest; `context.error` holds the reasons",
                _ => "once after every VU ended, also after a stop (Ctrl-C), an abort or a failed beforeTest; its `type: steps` requests are not cut by the run's end",
            };
            let text = hook_text(name, hook)
                .replace("on the VU's connection", "on the hook's own connection")
                .replace("is logged, the VU goes on", "is logged, the run goes on")
                .replace("a failure is logged and the VU goes on", "a failure is logged and the run goes on")
                .replace("fails the step and ends the iteration", "fails the run")
                .replace("a failure fails the step and ends the iteration", "a failure fails the run");
            format!("{text}: {when}")
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "test hooks (once per run; JavaScript in a context of their own outside any VU: vu_id 0, iteration 0; their requests make no samples, as scenario hooks' do; in a distributed run beforeTest runs on the plan's first worker before any worker is prepared, its variables are kept in the run's record and sent to every worker, and onTestError/teardownTest run on one live worker after every worker ended; a new leader reuses what the record holds, and if the leader dies after a hook ran but before the record was saved the new leader asks the same worker again, which answers from what it kept, so the hook runs a second time only if that worker restarted meanwhile): {}",
            parts.join("; ")
        )
    })
}

/// `--explain`'s line for a scenario's hooks and legacy `setup`/`teardown`, when it has any.
pub fn explain_scenario(s: &super::Scenario) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(h) = &s.hooks {
        for (name, hook) in [
            ("beforeScenario", &h.before_scenario),
            ("beforeLoop", &h.before_loop),
            ("afterLoop", &h.after_loop),
            ("teardownScenario", &h.teardown_scenario),
        ] {
            if let Some(hook) = hook {
                parts.push(hook_text(name, hook));
            }
        }
    }
    if s.setup.is_some() {
        parts.push("setup (legacy inline JavaScript, each iteration before the steps)".into());
    }
    if s.teardown.is_some() {
        parts.push("teardown (legacy inline JavaScript, each iteration after the steps)".into());
    }
    (!parts.is_empty()).then(|| {
        format!(
            "JavaScript (one QuickJS context per VU, created at its first script; each iteration): {}",
            parts.join("; ")
        )
    })
}

/// How a script is written, which decides how it is wrapped and called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// A JavaScript expression over `context` and `result` (its value is returned).
    Expr,
    /// The body of an async function `(context, require)`: `return` (or `returnValue = ...`)
    /// gives its value; `setVariable(name, value)` and `getVariable(name)` are at hand.
    Body,
    /// A file (CommonJS `module.exports`/`exports.f`, or an ES module's `export`) whose function
    /// `function` is called with one argument, the step's `params` plus `__context`, `__variables`,
    /// `__extracted_data`, `__vu_id` and `__iteration`.
    Export { function: String },
    /// A hook file: a module exporting a function `(context, helpers)`, or else a body as [`Form::Body`].
    HookFile,
    /// The body of a function `(context, result)` run synchronously (a threshold's
    /// `custom_script`): `return` gives its value.
    Predicate,
}

/// A script of the test, ready to be compiled in any VU's context.
#[derive(Debug, PartialEq)]
pub struct Code {
    /// Where it is written: a file's path, or the key that holds it (`scenarios[0].steps[2].condition`).
    pub origin: String,
    pub text: String,
    pub form: Form,
    pub timeout: Duration,
}

impl Code {
    pub fn new(
        origin: impl Into<String>,
        text: impl Into<String>,
        form: Form,
        timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            origin: origin.into(),
            text: text.into(),
            form,
            timeout,
        })
    }
}

/// Every script `file` must have its text (`source`) by the time the test is checked: a test read
/// with `config::load` has it; a test submitted as text (`POST /runs`) must carry it.
pub fn check_sources(test: &super::TestFile) -> Result<(), String> {
    let missing = |file: &Option<String>, source: &Option<String>| match (file, source) {
        (Some(f), None) => Err(format!(
            "script file `{f}` was not sent with the test: submit the test with `perfornium \
             distributed` or `run`, which read it, or give its text as `source`"
        )),
        _ => Ok(()),
    };
    for (_, h) in test.hooks.iter().flat_map(|h| h.all()) {
        missing(&h.file, &h.source)?;
        hook_steps_unread(h)?;
    }
    for s in &test.scenarios {
        if let Some(h) = &s.hooks {
            for h in [
                &h.before_scenario,
                &h.teardown_scenario,
                &h.before_loop,
                &h.after_loop,
            ]
            .into_iter()
            .flatten()
            {
                missing(&h.file, &h.source)?;
                hook_steps_unread(h)?;
            }
        }
        for step in &s.steps {
            let scripts = match step {
                super::Step::Http(h) => h.scripts.as_deref(),
                super::Step::Script(sc) => {
                    if let ScriptCode::File { file, source, .. } = &sc.code {
                        missing(&Some(file.clone()), source)?;
                    }
                    Some(&sc.scripts)
                }
                _ => None,
            };
            for (_, h) in scripts.into_iter().flat_map(|s| s.hooks()) {
                missing(&h.file, &h.source)?;
                hook_steps_unread(h)?;
            }
        }
    }
    Ok(())
}
