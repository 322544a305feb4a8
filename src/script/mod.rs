//! JavaScript in tests, on an embedded QuickJS engine (`rquickjs`; chosen by measurement, see
//! `bench/results/scripting.md`). Each VU gets its own runtime and context ([`Vu`]), created the
//! first time the VU runs a script (a test without scripts never creates one), and kept for the
//! VU's life, so globals a script sets persist across its iterations as in the TypeScript tool.
//!
//! A script is one of four [`Form`]s: an expression (`condition`, `custom` checks, extractors and
//! thresholds), the body of an async function (a `custom` step, an inline hook, legacy
//! `setup`/`teardown`), a function a `.js` file exports (a `script` step), or a hook file. Each
//! call gets a `context` object (`vu_id`, `iteration`, `variables`, `extracted_data`,
//! `last_response`) and its changes to `context.variables` are written back to the VU's
//! variables. Every call has a time limit (QuickJS's interrupt handler), and an error names the
//! script (its file, or the key that holds it) and the line.

use rquickjs::function::Rest;
use rquickjs::{Array, Coerced, Context, Ctx, Function, Object, Promise, Runtime, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use thiserror::Error;

pub use crate::config::script::{Code, Form};

impl Code {
    fn is_module(&self) -> bool {
        let esm = self.text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("export ") || l.starts_with("export{")
        });
        match self.form {
            Form::Export { .. } => true,
            Form::HookFile => {
                esm || self.text.contains("module.exports") || self.text.contains("exports.")
            }
            _ => false,
        }
    }

    fn is_esm(&self) -> bool {
        self.text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("export ") || l.starts_with("export{") || l.starts_with("import ")
        })
    }

    /// The code wrapped into an expression whose value is the function to call. Wrappers open on
    /// the script's first line, so the engine's line numbers are the script's.
    fn wrapped(&self) -> String {
        match self.form {
            Form::Expr => format!(
                "(function (context, result) {{ return ({}); }})",
                self.text
            ),
            Form::Predicate => format!(
                "(function (context, result) {{ {}\n}})",
                self.text
            ),
            Form::Body => format!(
                "(async function (context, require) {{ const setVariable = (k, v) => {{ context.variables[k] = v; }}; \
                 const getVariable = (k) => context.variables[k]; let returnValue; \
                 const __r = await (async () => {{ {}\n}})(); return __r === undefined ? returnValue : __r; }})",
                self.text
            ),
            Form::Export { .. } | Form::HookFile if self.is_module() => format!(
                "(function (module, exports, require) {{ {}\n; return module.exports; }})",
                self.text
            ),
            Form::HookFile => Code {
                origin: self.origin.clone(),
                text: self.text.clone(),
                form: Form::Body,
                timeout: self.timeout,
            }
            .wrapped(),
            Form::Export { .. } => unreachable!("an export is a module"),
        }
    }
}

/// A script that failed: its message names the script and line.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{0}")]
pub struct ScriptError(pub String);

/// What a call gives the script.
#[derive(Default)]
pub struct Input<'a> {
    /// The VU's variables (and extracted values: one namespace here).
    pub variables: Option<&'a HashMap<String, String>>,
    pub vu: u64,
    pub iteration: u64,
    /// The scenario's name, as `context.scenario_name`.
    pub scenario: &'a str,
    /// `result` of an expression (a check's or extractor's response), as JSON.
    pub result: Option<serde_json::Value>,
    /// A `script` step's `params`.
    pub params: Option<&'a serde_json::Value>,
    /// `context.error` of an error hook (`onTestError`: why the run failed); absent when `None`.
    pub error: Option<&'a str>,
}

/// What a call gave back.
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    /// The return value (`null` for `undefined`).
    pub value: serde_json::Value,
    /// `context.variables` after the call, as text (strings as they are, anything else as JSON);
    /// `None` for an expression (its changes are not kept).
    pub variables: Option<HashMap<String, String>>,
}

impl Output {
    /// The value as a variable's text: a string as it is, anything else as JSON.
    pub fn value_text(&self) -> Option<String> {
        as_text(&self.value)
    }
}

/// A JSON value as a variable's text: a string as it is, `null` as nothing, anything else as JSON.
pub fn as_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The VU's last response, as `context.last_response`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LastResponse {
    pub step: String,
    pub status: Option<u16>,
    pub body: String,
    pub response_time: f64,
    pub error: Option<String>,
}

/// A VU's JavaScript: its own runtime and context, created on first use, and its last response.
#[derive(Default)]
pub struct Slot {
    /// Boxed so a VU without scripts carries one pointer.
    inner: Mutex<Option<Box<Inner>>>,
    /// The run's id, which `console.log` lines carry.
    run_id: Arc<str>,
}

#[derive(Default)]
struct Inner {
    vu: Option<Box<Vu>>,
    last: Option<LastResponse>,
}

impl Clone for Slot {
    /// A copy starts without a context (a context belongs to one VU).
    fn clone(&self) -> Self {
        Slot::new(self.run_id.clone())
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl Slot {
    /// An empty slot of the run `run_id`.
    pub fn new(run_id: Arc<str>) -> Self {
        Slot {
            inner: Mutex::default(),
            run_id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<Inner>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `code` in the VU's context (created now if this is the VU's first script).
    pub fn call(&self, code: &Arc<Code>, input: &Input<'_>) -> Result<Output, ScriptError> {
        let mut guard = self.lock();
        let inner = guard.get_or_insert_with(Default::default);
        if inner.vu.is_none() {
            inner.vu = Some(Box::new(Vu::new(&self.run_id, input.vu)?));
        }
        let last = inner.last.as_ref();
        inner.vu.as_mut().expect("just set").call(code, input, last)
    }

    /// Keeps the VU's last response, for `context.last_response`.
    pub fn set_last_response(&self, r: LastResponse) {
        self.lock().get_or_insert_with(Default::default).last = Some(r);
    }

    /// Whether the VU's last step failed (for `onStepError`).
    pub fn last_failed(&self) -> bool {
        self.lock()
            .as_ref()
            .and_then(|i| i.last.as_ref())
            .is_some_and(|l| l.error.is_some())
    }

    /// Whether this VU has created its context.
    pub fn is_live(&self) -> bool {
        self.lock().as_ref().is_some_and(|i| i.vu.is_some())
    }
}

/// Names Node.js modules get in `require`'s refusal.
const PRELUDE: &str = r#"
globalThis.require = function (name) {
  throw new Error("require('" + name + "') is not available: Perfornium scripts run in an embedded JavaScript engine (QuickJS) without Node.js modules");
};
globalThis.utils = {
  randomInt: (min = 1, max = 100) => Math.floor(Math.random() * (max - min + 1)) + min,
  randomChoice: (...choices) => choices[Math.floor(Math.random() * choices.length)],
  uuid: () => 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => { const r = Math.random() * 16 | 0; return (c === 'x' ? r : (r & 3 | 8)).toString(16); }),
  timestamp: () => Date.now(),
  isoDate: (days = 0) => { const d = new Date(); d.setDate(d.getDate() + days); return d.toISOString(); },
  sleep: () => { throw new Error("utils.sleep is not available: Perfornium scripts have no timers (use a `wait` step)"); },
};
globalThis.__pf_fns = [];
globalThis.__pf_call = function (fn, contextJson, resultJson, paramsJson, kind) {
  const context = JSON.parse(contextJson);
  context.extracted_data = context.variables;
  const out = (v) => ({ value: v, variables: kind === 'expr' ? undefined : context.variables });
  if (kind === 'expr') return out(fn(context, resultJson === undefined ? undefined : JSON.parse(resultJson)));
  if (kind === 'body') return Promise.resolve(fn(context, globalThis.require)).then(out);
  if (kind === 'hook') {
    const helpers = { setVariable: (k, v) => { context.variables[k] = v; }, getVariable: (k) => context.variables[k], utils: globalThis.utils };
    return Promise.resolve(fn(context, helpers)).then(out);
  }
  const params = Object.assign({}, JSON.parse(paramsJson), { __context: context, __variables: context.variables, __extracted_data: context.extracted_data, __vu_id: context.vu_id, __iteration: context.iteration });
  return Promise.resolve(fn(params)).then(out);
};
"#;

/// One VU's QuickJS runtime and context, and the functions compiled in it.
pub struct Vu {
    /// A script (by its address; the `Arc` is kept so the address is not reused) → its
    /// function's index in the context's `__pf_fns` array.
    compiled: HashMap<usize, (Arc<Code>, u32)>,
    // Field order matters: the context must be dropped before its runtime.
    cx: Context,
    rt: Runtime,
    /// When the running call must stop, in microseconds after `epoch` (0: no call running).
    deadline: Arc<AtomicU64>,
    epoch: Instant,
}

impl Vu {
    pub fn new(run_id: &str, vu: u64) -> Result<Self, ScriptError> {
        let fail =
            |e: rquickjs::Error| ScriptError(format!("cannot start the JavaScript engine: {e}"));
        let rt = Runtime::new().map_err(fail)?;
        let deadline = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let d = deadline.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            let due = d.load(Ordering::Relaxed);
            due != 0 && epoch.elapsed().as_micros() as u64 >= due
        })));
        let cx = Context::full(&rt).map_err(fail)?;
        let run_id = run_id.to_string();
        cx.with(|ctx| -> Result<(), ScriptError> {
            let console = Object::new(ctx.clone()).map_err(|e| js_error(&ctx, e, "prelude"))?;
            for level in ["log", "info", "warn", "error", "debug"] {
                let run_id = run_id.clone();
                let f = Function::new(ctx.clone(), move |args: Rest<Coerced<String>>| {
                    let text = args.0.iter().map(|a| a.0.as_str()).collect::<Vec<_>>().join(" ");
                    match level {
                        "warn" => tracing::warn!(target: "perfornium::script", run_id = %run_id, vu, "{text}"),
                        "error" => tracing::error!(target: "perfornium::script", run_id = %run_id, vu, "{text}"),
                        "debug" => tracing::debug!(target: "perfornium::script", run_id = %run_id, vu, "{text}"),
                        _ => tracing::info!(target: "perfornium::script", run_id = %run_id, vu, "{text}"),
                    }
                })
                .map_err(|e| js_error(&ctx, e, "prelude"))?;
                console.set(level, f).map_err(|e| js_error(&ctx, e, "prelude"))?;
            }
            ctx.globals()
                .set("console", console)
                .map_err(|e| js_error(&ctx, e, "prelude"))?;
            ctx.eval::<(), _>(PRELUDE)
                .map_err(|e| js_error(&ctx, e, "prelude"))
        })?;
        Ok(Self {
            compiled: HashMap::new(),
            cx,
            rt,
            deadline,
            epoch,
        })
    }

    /// Compiles (once per VU) and calls `code`.
    pub fn call(
        &mut self,
        code: &Arc<Code>,
        input: &Input<'_>,
        last: Option<&LastResponse>,
    ) -> Result<Output, ScriptError> {
        let key = Arc::as_ptr(code) as usize;
        let mut context = serde_json::json!({
            "vu_id": input.vu,
            "iteration": input.iteration,
            "scenario_name": input.scenario,
            "variables": input.variables,
            "last_response": last,
        });
        if let Some(e) = input.error {
            context["error"] = serde_json::Value::String(e.to_string());
        }
        let context = context.to_string();
        let result = input.result.as_ref().map(|r| r.to_string());
        let params = input
            .params
            .map(|p| p.to_string())
            .unwrap_or_else(|| "{}".into());
        let due = self.epoch.elapsed() + code.timeout;
        self.deadline
            .store(due.as_micros().max(1) as u64, Ordering::Relaxed);
        let compiled = &mut self.compiled;
        let out = self.cx.with(|ctx| -> Result<Output, ScriptError> {
            let fns: Array = ctx
                .globals()
                .get("__pf_fns")
                .map_err(|e| js_error(&ctx, e, "prelude"))?;
            let f: Function = match compiled.get(&key) {
                Some((_, i)) => fns
                    .get(*i as usize)
                    .map_err(|e| js_error(&ctx, e, &code.origin))?,
                None => {
                    let f = compile(&ctx, code)?;
                    let i = fns.len() as u32;
                    fns.set(i as usize, f.clone())
                        .map_err(|e| js_error(&ctx, e, &code.origin))?;
                    compiled.insert(key, (code.clone(), i));
                    f
                }
            };
            let kind = match code.form {
                Form::Expr | Form::Predicate => "expr",
                Form::Body => "body",
                Form::HookFile if code.is_module() => "hook",
                Form::HookFile => "body",
                Form::Export { .. } => "export",
            };
            let call: Function = ctx
                .globals()
                .get("__pf_call")
                .map_err(|e| js_error(&ctx, e, "prelude"))?;
            let v: Value = call
                .call((f, context, result, params, kind))
                .map_err(|e| js_error(&ctx, e, &code.origin))?;
            let v = match v.as_promise() {
                Some(p) => finish(&ctx, p, &code.origin)?,
                None => v,
            };
            let obj = v
                .as_object()
                .ok_or_else(|| ScriptError("no result".into()))?;
            let value: Value = obj
                .get("value")
                .map_err(|e| js_error(&ctx, e, &code.origin))?;
            let value = to_json(&ctx, value, &code.origin)?;
            let vars: Value = obj
                .get("variables")
                .map_err(|e| js_error(&ctx, e, &code.origin))?;
            let variables = if vars.is_undefined() {
                None
            } else {
                match to_json(&ctx, vars, &code.origin)? {
                    serde_json::Value::Object(m) => Some(
                        m.iter()
                            .filter_map(|(k, v)| as_text(v).map(|t| (k.clone(), t)))
                            .collect(),
                    ),
                    _ => None,
                }
            };
            Ok(Output { value, variables })
        });
        let timed_out = self.epoch.elapsed() >= due;
        self.deadline.store(0, Ordering::Relaxed);
        // Drop whatever a failed call left queued.
        while self.rt.is_job_pending() {
            if self.rt.execute_pending_job().is_err() {
                break;
            }
        }
        match out {
            Err(_) if timed_out => Err(ScriptError(format!(
                "{}: timed out after {} ms",
                code.origin,
                code.timeout.as_millis()
            ))),
            other => other,
        }
    }
}

/// Compiles `code` into the function to call (for a file: its exported function).
fn compile<'js>(ctx: &Ctx<'js>, code: &Code) -> Result<Function<'js>, ScriptError> {
    let e = |err| js_error(ctx, err, &code.origin);
    let mut opts = rquickjs::context::EvalOptions::default();
    opts.filename = Some(code.origin.clone());
    opts.strict = false;
    let exports: Value = if code.is_module() && code.is_esm() {
        let module = rquickjs::Module::declare(ctx.clone(), code.origin.clone(), code.text.clone())
            .map_err(e)?;
        let (module, promise) = module.eval().map_err(e)?;
        promise.finish::<()>().map_err(e)?;
        module.namespace().map_err(e)?.into_value()
    } else {
        let wrapper: Function = ctx.eval_with_options(code.wrapped(), opts).map_err(e)?;
        if !code.is_module() {
            return Ok(wrapper);
        }
        let module = Object::new(ctx.clone()).map_err(e)?;
        let exports = Object::new(ctx.clone()).map_err(e)?;
        module.set("exports", exports.clone()).map_err(e)?;
        let require: Value = ctx.globals().get("require").map_err(e)?;
        wrapper.call((module, exports, require)).map_err(e)?
    };
    let pick = |v: &Value<'js>, name: &str| -> Option<Function<'js>> {
        let o = v.as_object()?;
        o.get::<_, Value>(name).ok()?.into_function()
    };
    match &code.form {
        Form::Export { function } => pick(&exports, function)
            .or_else(|| {
                let d = exports.as_object()?.get::<_, Value>("default").ok()?;
                pick(&d, function)
            })
            .ok_or_else(|| {
                ScriptError(format!(
                    "{}: exports no function `{function}`",
                    code.origin
                ))
            }),
        _ => exports
            .clone()
            .into_function()
            .or_else(|| pick(&exports, "default"))
            .ok_or_else(|| {
                ScriptError(format!(
                    "{}: a hook file must export a function (module.exports = function (context, helpers) {{ ... }})",
                    code.origin
                ))
            }),
    }
}

/// Runs the job queue until `p` settles.
fn finish<'js>(ctx: &Ctx<'js>, p: &Promise<'js>, origin: &str) -> Result<Value<'js>, ScriptError> {
    match p.finish::<Value>() {
        Ok(v) => Ok(v),
        Err(rquickjs::Error::WouldBlock) => Err(ScriptError(format!(
            "{origin}: the script awaits something that never settles (Perfornium scripts have no timers or I/O)"
        ))),
        Err(err) => Err(js_error(ctx, err, origin)),
    }
}

fn to_json<'js>(
    ctx: &Ctx<'js>,
    v: Value<'js>,
    origin: &str,
) -> Result<serde_json::Value, ScriptError> {
    if v.is_undefined() || v.is_null() {
        return Ok(serde_json::Value::Null);
    }
    let text = ctx
        .json_stringify(v)
        .map_err(|e| js_error(ctx, e, origin))?
        .map(|s| s.to_string())
        .transpose()
        .map_err(|e| js_error(ctx, e, origin))?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null))
}

/// The message of a failed call: the JavaScript error's name and message, and where it was
/// thrown in `origin` (`origin:line`).
fn js_error(ctx: &Ctx<'_>, err: rquickjs::Error, origin: &str) -> ScriptError {
    if !matches!(err, rquickjs::Error::Exception) {
        return ScriptError(format!("{origin}: {err}"));
    }
    let thrown = ctx.catch();
    let (text, stack) = match thrown.as_exception() {
        Some(ex) => {
            let name: String = ex
                .get::<_, Coerced<String>>("name")
                .map(|c| c.0)
                .unwrap_or_else(|_| "Error".into());
            (
                format!("{name}: {}", ex.message().unwrap_or_default()),
                ex.stack().unwrap_or_default(),
            )
        }
        None => (
            format!(
                "uncaught {}",
                thrown
                    .get::<Coerced<String>>()
                    .map(|c| c.0)
                    .unwrap_or_else(|_| "value".into())
            ),
            String::new(),
        ),
    };
    match line_in(&stack, origin) {
        Some(line) => ScriptError(format!("{origin}:{line}: {text}")),
        None => ScriptError(format!("{origin}: {text}")),
    }
}

/// The first line number the stack gives for `origin`.
fn line_in(stack: &str, origin: &str) -> Option<u32> {
    let at = stack.find(&format!("{origin}:"))? + origin.len() + 1;
    let digits: String = stack[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Compiles `code` in a throwaway context: a syntax error is reported with its line (what
/// `validate` runs over every script of a test).
pub fn check(code: &Code) -> Result<(), ScriptError> {
    let rt = Runtime::new().map_err(|e| ScriptError(e.to_string()))?;
    let cx = Context::full(&rt).map_err(|e| ScriptError(e.to_string()))?;
    cx.with(|ctx| {
        let e = |err| js_error(&ctx, err, &code.origin);
        if code.is_module() && code.is_esm() {
            rquickjs::Module::declare(ctx.clone(), code.origin.clone(), code.text.clone())
                .map_err(e)?;
            return Ok(());
        }
        let mut opts = rquickjs::context::EvalOptions::default();
        opts.filename = Some(code.origin.clone());
        opts.strict = false;
        // Compiling the wrapper checks the syntax without running the script.
        ctx.eval_with_options::<Value, _>(code.wrapped(), opts)
            .map(|_| ())
            .map_err(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn code(text: &str, form: Form) -> Arc<Code> {
        Code::new("t.js", text, form, Duration::from_millis(300))
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_vu_context_keeps_its_globals_and_writes_back_variables() {
        let slot = Slot::new("r".into());
        assert!(!slot.is_live(), "no context before the first script");
        let body = code(
            "globalThis.n = (globalThis.n || 0) + 1; context.variables.count = globalThis.n; return {n: globalThis.n};",
            Form::Body,
        );
        let v = vars(&[("a", "1")]);
        let input = Input {
            variables: Some(&v),
            ..Default::default()
        };
        slot.call(&body, &input).unwrap();
        let out = slot.call(&body, &input).unwrap();
        assert_eq!(out.value, serde_json::json!({"n": 2}));
        let back = out.variables.unwrap();
        assert_eq!(back["count"], "2");
        assert_eq!(back["a"], "1");
        assert!(slot.is_live());
        // A copy of the slot (another VU's) starts afresh.
        let other = slot.clone();
        assert_eq!(
            other.call(&body, &input).unwrap().value,
            serde_json::json!({"n": 1})
        );
    }

    #[test]
    fn expressions_see_result_and_context() {
        let slot = Slot::default();
        let v = vars(&[("want", "200")]);
        let e = code(
            "result.status == context.variables.want && context.vu_id === 7",
            Form::Expr,
        );
        let input = Input {
            variables: Some(&v),
            vu: 7,
            result: Some(serde_json::json!({"status": 200})),
            ..Default::default()
        };
        let out = slot.call(&e, &input).unwrap();
        assert_eq!(out.value, serde_json::json!(true));
        assert_eq!(out.variables, None, "an expression's changes are not kept");
    }

    #[test]
    fn exports_in_commonjs_and_es_module_form_are_called_with_params() {
        let slot = Slot::default();
        let params = serde_json::json!({"x": 2});
        let input = Input {
            params: Some(&params),
            iteration: 4,
            ..Default::default()
        };
        for text in [
            "exports.f = (p) => p.x * 10 + p.__iteration;",
            "module.exports = { f(p) { return p.x * 10 + p.__iteration; } };",
            "export function f(p) {\n  return p.x * 10 + p.__iteration;\n}\n",
        ] {
            let c = code(
                text,
                Form::Export {
                    function: "f".into(),
                },
            );
            assert_eq!(
                slot.call(&c, &input).unwrap().value,
                serde_json::json!(24),
                "{text}"
            );
        }
        let missing = code(
            "exports.g = () => 1;",
            Form::Export {
                function: "f".into(),
            },
        );
        assert_eq!(
            slot.call(&missing, &input).unwrap_err().0,
            "t.js: exports no function `f`"
        );
    }

    #[test]
    fn a_throw_names_the_line_and_a_spin_is_stopped_by_the_time_limit() {
        let slot = Slot::default();
        let input = Input::default();
        let thrown = slot
            .call(
                &code("let a = 1;\n\nthrow new TypeError('no ' + a);", Form::Body),
                &input,
            )
            .unwrap_err();
        assert_eq!(thrown.0, "t.js:3: TypeError: no 1");
        let started = Instant::now();
        let spun = slot
            .call(&code("for (;;) {}", Form::Body), &input)
            .unwrap_err();
        assert_eq!(spun.0, "t.js: timed out after 300 ms");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The context still works after an interrupted call.
        let ok = slot.call(&code("1 + 1", Form::Expr), &input).unwrap();
        assert_eq!(ok.value, serde_json::json!(2));
    }

    #[test]
    fn require_is_refused_naming_the_module_and_await_without_timers_fails_clearly() {
        let slot = Slot::default();
        let input = Input::default();
        let e = slot
            .call(&code("require('crypto')", Form::Body), &input)
            .unwrap_err();
        assert!(e.0.contains("require('crypto') is not available"), "{e}");
        let e = slot
            .call(&code("await new Promise(() => {});", Form::Body), &input)
            .unwrap_err();
        assert!(e.0.contains("never settles"), "{e}");
        let ok = slot
            .call(
                &code("const v = await Promise.resolve(5); return v;", Form::Body),
                &input,
            )
            .unwrap();
        assert_eq!(ok.value, serde_json::json!(5));
    }

    #[test]
    fn check_reports_a_syntax_error_with_its_line_without_running() {
        let e = check(&code("let a = 1;\nlet b = ;\n", Form::Body)).unwrap_err();
        assert!(e.0.starts_with("t.js:2: SyntaxError"), "{e}");
        check(&code("throw new Error('not run')", Form::Body)).unwrap();
    }
}
