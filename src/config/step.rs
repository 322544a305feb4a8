//! `steps:`, one journey's requests, pauses and meeting points. A step is written as one flat mapping
//! ([`RawStep`]) and its `type` decides, in the conversion to [`Step`], which keys it needs; doing
//! it there (not with a tagged enum) keeps the line and column of the step in every error.

use super::duration::{NumOrText, ThinkTime};
use super::step_options::{OnError, Retry, StepOptions, StepThreshold};
use super::{Check, Extract};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A step, after its `type` has been checked.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "RawStep")]
// Steps are built once per test and never moved per request, so the HTTP variant's size is fine.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    Http(HttpStep),
    Wait {
        name: String,
        duration: ThinkTime,
    },
    Rendezvous(Rendezvous),
    /// A `custom` step (inline JavaScript) or a `script` step (a function of a `.js` file).
    Script(super::script::ScriptStep),
}

impl Step {
    /// The name shown in summaries.
    pub fn name(&self) -> &str {
        match self {
            Step::Http(h) => &h.name,
            Step::Wait { name, .. } => name,
            Step::Rendezvous(r) => &r.name,
            Step::Script(s) => &s.name,
        }
    }
}

/// An HTTP request step (`rest`, or `soap`, which is a POST of an XML envelope). Read and written
/// through [`RawStep`].
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStep {
    pub name: String,
    pub method: http::Method,
    /// A path joined to `base_url`, or a whole URL.
    pub target: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub body: Option<String>,
    pub checks: Vec<Check>,
    pub extract: Vec<Extract>,
    /// The keys common to every step (`think_time`, `timeout`, `on_error`, `retry`, `thresholds`).
    pub options: Box<StepOptions>,
    /// `form:` fields, sent as `application/x-www-form-urlencoded` (values are templates).
    pub form: BTreeMap<String, String>,
    /// `multipart:` fields, sent as `multipart/form-data`.
    pub multipart: BTreeMap<String, MultipartValue>,
    /// `jsonFile:` the JSON body's file, relative to the test file. `config::load` reads it into
    /// `body` (so the test travels to workers whole); a test parsed from text reads it when compiled.
    pub json_file: Option<String>,
    /// `overrides:` `dot.path[i]` → a template, set in the JSON body (of `json`, `body` or
    /// `jsonFile`) for every request; `true`/`false`/numbers become JSON booleans and numbers.
    pub overrides: BTreeMap<String, String>,
    pub auth: Option<Auth>,
    /// Set on `soap` steps: what the engine resolves from a WSDL, and whether Faults count as errors.
    pub soap: Option<Soap>,
    /// `condition` and `hooks` (JavaScript), when given.
    pub scripts: Option<Box<super::script::StepScripts>>,
}

/// A `multipart:` field: text (a template), or a file: `"@path"` or `{file: path, filename?,
/// content_type?}`. A text starting with `@` is written `"@@..."`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MultipartValue {
    File {
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
    },
    Text(String),
}

/// `auth:` on a REST step. `basic` and `bearer`/`oauth` become an `Authorization` header; `digest`
/// answers the server's `401` challenge (RFC 7616, MD5 or SHA-256) on the same connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(rename = "type")]
    pub kind: AuthScheme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The `auth.type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthScheme {
    Basic,
    Bearer,
    Digest,
    Oauth,
}

/// The SOAP side of a `soap` step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Soap {
    /// The step's `wsdl` (else `global.wsdl_url` is used).
    pub wsdl: Option<String>,
    /// WSDL mode: the operation to call with `args`; `None` for a raw envelope.
    pub operation: Option<String>,
    pub args: serde_json::Value,
}

/// A named meeting point: VUs wait until `count` arrive (or `timeout`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rendezvous {
    pub name: String,
    pub point: String,
    pub count: u64,
    pub timeout: Duration,
}

/// The step as written, before its type decides which fields it needs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `endpoint` is the SOAP documentation's name for it.
    #[serde(default, alias = "endpoint", skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, serde_norway::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_norway::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_norway::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soap_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wsdl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `parameters` is the SOAP documentation's name for it.
    #[serde(default, alias = "parameters", skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_norway::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<BTreeMap<String, serde_norway::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<BTreeMap<String, MultipartValue>>,
    #[serde(default, rename = "jsonFile", skip_serializing_if = "Option::is_none")]
    pub json_file: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, serde_norway::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract: Vec<Extract>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<NumOrText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendezvous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<NumOrText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    // The keys common to every step (config/step_options.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<ThinkTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    #[serde(
        default,
        rename = "continueOnError",
        skip_serializing_if = "Option::is_none"
    )]
    pub continue_on_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<StepThreshold>,
    /// A JavaScript expression over `context`: when false the step is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<super::script::StepHooks>,
    /// `type: custom`: the inline JavaScript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// `type: script`: the `.js` file, its `function`, the `params` it is given and the variable
    /// its return value is stored in (`returns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The script file's text, read when the test is loaded (so it travels to workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returns: Option<String>,
}

fn yaml_scalar(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Bool(b) => b.to_string(),
        serde_norway::Value::Null => String::new(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de_converted::<D, RawStep, Step>(
            d,
            "a step (a mapping with `path` or `url`, or a `type`)",
        )
    }
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Self, String> {
        let kind = raw.kind.clone().unwrap_or_else(|| {
            if raw.rendezvous.is_some() {
                "rendezvous".into()
            } else {
                "rest".into()
            }
        });
        if kind != "custom" && kind != "script" {
            for (key, present) in [
                ("script", raw.script.is_some()),
                ("file", raw.file.is_some()),
                ("source", raw.source.is_some()),
                ("function", raw.function.is_some()),
                ("params", raw.params.is_some()),
                ("returns", raw.returns.is_some()),
            ] {
                if present {
                    return Err(format!(
                        "`{key}` belongs to `type: custom` / `type: script` steps, not to a `{kind}` step"
                    ));
                }
            }
        }
        if kind == "wait" || kind == "rendezvous" {
            for (key, present) in [
                ("condition", raw.condition.is_some()),
                ("hooks", raw.hooks.is_some()),
            ] {
                if present {
                    return Err(format!(
                        "`{key}` is not supported on a `{kind}` step (it applies to rest, soap, custom and script steps)"
                    ));
                }
            }
        }
        if kind == "custom" || kind == "script" {
            return raw.into_script(&kind).map(Step::Script);
        }
        if kind != "rest" && kind != "soap" {
            let common = [
                ("think_time", raw.think_time.is_some()),
                ("on_error", raw.on_error.is_some()),
                ("continueOnError", raw.continue_on_error.is_some()),
                ("retry", raw.retry.is_some()),
                ("thresholds", !raw.thresholds.is_empty()),
                ("timeout", kind == "wait" && raw.timeout.is_some()),
            ];
            if let Some((key, _)) = common.iter().find(|(_, present)| *present) {
                return Err(format!(
                    "`{key}` applies to HTTP steps (rest, soap), not to a `{kind}` step"
                ));
            }
        }
        match kind.as_str() {
            "rest" | "soap" => raw
                .into_http(&kind)
                .and_then(|h| super::template::check_step(&h, false).map(|()| Step::Http(h))),
            "wait" => raw.into_wait(),
            "rendezvous" => raw.into_rendezvous().map(Step::Rendezvous),
            other => Err(format!(
                "step type `{other}` is not supported by this program \
                 (supported: rest, soap, wait, rendezvous, custom, script)"
            )),
        }
    }
}

impl RawStep {
    fn into_script(self, kind: &str) -> Result<super::script::ScriptStep, String> {
        use super::script::{ScriptCode, ScriptStep, StepScripts};
        for (key, present) in [
            ("method", self.method.is_some()),
            ("path", self.path.is_some()),
            ("url", self.url.is_some()),
            ("headers", !self.headers.is_empty()),
            ("body", self.body.is_some()),
            ("json", self.json.is_some()),
            ("checks", !self.checks.is_empty()),
            ("extract", !self.extract.is_empty()),
            ("retry", self.retry.is_some()),
            ("thresholds", !self.thresholds.is_empty()),
            ("think_time", self.think_time.is_some()),
            ("duration", self.duration.is_some()),
        ] {
            if present {
                return Err(format!("`{key}` does not apply to a `{kind}` step"));
            }
        }
        let code = if kind == "custom" {
            for (key, present) in [
                ("file", self.file.is_some()),
                ("function", self.function.is_some()),
                ("params", self.params.is_some()),
                ("returns", self.returns.is_some()),
            ] {
                if present {
                    return Err(format!(
                        "`{key}` belongs to `type: script` steps; a `custom` step runs its inline `script`"
                    ));
                }
            }
            ScriptCode::Inline(
                self.script
                    .ok_or("a `custom` step needs `script` (inline JavaScript)")?,
            )
        } else {
            if self.script.is_some() {
                return Err("`script` belongs to `type: custom` steps; a `script` step calls `function` of `file`".into());
            }
            let file = self
                .file
                .ok_or("a `script` step needs `file` (a .js file)")?;
            super::script::check_extension(&file)?;
            let params = self
                .params
                .unwrap_or(serde_json::Value::Object(Default::default()));
            if !params.is_object() {
                return Err("`params` must be a mapping".into());
            }
            ScriptCode::File {
                file,
                source: self.source,
                function: self
                    .function
                    .ok_or("a `script` step needs `function` (the name of an exported function)")?,
                params,
            }
        };
        let timeout = match self.timeout {
            Some(t) => t.duration_ms()?,
            None => super::script::DEFAULT_TIMEOUT,
        };
        if timeout.is_zero() {
            return Err("`timeout` must be above zero".into());
        }
        if self
            .on_error
            .as_ref()
            .is_some_and(|o| o.log_full_response.is_some())
        {
            return Err(format!("`on_error.log_full_response` does not apply to a `{kind}` step (it has no response)"));
        }
        let continue_on_error = match (
            self.on_error.as_ref().and_then(|o| o.continue_),
            self.continue_on_error,
        ) {
            (Some(o), Some(c)) if o != c => {
                return Err("`on_error.continue` and `continueOnError` disagree".into())
            }
            (a, b) => a.or(b).unwrap_or(true),
        };
        let name = self.name.unwrap_or_else(|| match &code {
            ScriptCode::Inline(_) => "custom".into(),
            ScriptCode::File { function, .. } => function.clone(),
        });
        Ok(ScriptStep {
            name,
            code,
            returns: self.returns,
            timeout,
            continue_on_error,
            scripts: StepScripts {
                condition: self.condition,
                hooks: self.hooks.unwrap_or_default(),
            },
        })
    }

    fn into_wait(self) -> Result<Step, String> {
        let duration = self
            .duration
            .ok_or("a `wait` step needs `duration`")?
            .think_time_ms()?;
        let name = self.name.unwrap_or_else(|| "wait".into());
        Ok(Step::Wait { name, duration })
    }

    fn into_rendezvous(self) -> Result<Rendezvous, String> {
        let point = self
            .rendezvous
            .ok_or("a `rendezvous` step needs `rendezvous` (its name)")?;
        let count = self.count.ok_or("a `rendezvous` step needs `count`")?;
        if let Some(p) = self.policy.as_deref() {
            if p != "all" && p != "count" {
                return Err(format!(
                    "rendezvous `policy` must be `all` or `count`, got `{p}`"
                ));
            }
        }
        let timeout = match self.timeout {
            Some(t) => t.duration_ms()?,
            None => Duration::from_secs(30),
        };
        Ok(Rendezvous {
            name: self.name.unwrap_or_else(|| point.clone()),
            point,
            count,
            timeout,
        })
    }

    fn into_http(self, kind: &str) -> Result<HttpStep, String> {
        let soap_mode = kind == "soap";
        if !soap_mode {
            for (key, set) in [
                ("wsdl", self.wsdl.is_some()),
                ("operation", self.operation.is_some()),
                ("args", self.args.is_some()),
                ("envelope", self.envelope.is_some()),
                ("soap_action", self.soap_action.is_some()),
            ] {
                if set {
                    return Err(format!("`{key}` belongs to `type: soap` steps"));
                }
            }
        }
        let wsdl_mode = soap_mode && self.operation.is_some();
        let target = match (self.path, self.url) {
            (Some(p), None) => p,
            (None, Some(u)) => u,
            (Some(_), Some(_)) => return Err("a step takes `path` or `url`, not both".into()),
            // A raw SOAP step without a path posts to its WSDL's URL minus `?wsdl` (the WSDL, or
            // `global.wsdl_url`, resolved when the test is compiled); a WSDL call goes to the
            // service's address.
            (None, None) if soap_mode => match &self.wsdl {
                Some(w) if !wsdl_mode => strip_wsdl(w),
                _ => String::new(),
            },
            (None, None) => return Err(format!("a `{kind}` step needs `path` or `url`")),
        };
        let mut headers = self.headers;
        let bodies = [
            ("body", self.body.is_some()),
            ("json", self.json.is_some()),
            ("form", self.form.is_some()),
            ("multipart", self.multipart.is_some()),
            ("jsonFile", self.json_file.is_some()),
            ("envelope", self.envelope.is_some()),
            ("args", self.args.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| format!("`{k}`"))
        .collect::<Vec<_>>();
        if bodies.len() > 1 {
            return Err(format!(
                "a step takes one body, and this one has {}",
                bodies.join(" and ")
            ));
        }
        if !self.overrides.is_empty()
            && self.json_file.is_none()
            && self.json.is_none()
            && !matches!(
                &self.body,
                Some(serde_norway::Value::Mapping(_) | serde_norway::Value::String(_))
            )
        {
            return Err("`overrides` needs a JSON body (`jsonFile`, `json` or `body`)".into());
        }
        let mut soap = None;
        let body = if soap_mode {
            let args = match self.args {
                Some(a) => serde_json::to_value(&a).map_err(|e| e.to_string())?,
                None => serde_json::Value::Object(Default::default()),
            };
            set_default(&mut headers, "Content-Type", "text/xml; charset=utf-8");
            if let Some(a) = self.soap_action {
                headers.insert("SOAPAction".into(), a);
            }
            soap = Some(Soap {
                wsdl: self.wsdl,
                operation: self.operation,
                args,
            });
            if wsdl_mode {
                if self.envelope.is_some() || self.body.is_some() {
                    return Err("a `soap` step takes `operation` + `args`, or a raw `envelope`/`body`, not both".into());
                }
                None
            } else {
                if !matches!(&soap, Some(Soap { args: serde_json::Value::Object(m), .. }) if m.is_empty())
                {
                    return Err("`args` needs `operation` (WSDL mode)".into());
                }
                Some(
                    self.envelope
                        .or(self.body.as_ref().map(yaml_scalar))
                        .ok_or(
                            "a `soap` step needs `operation` + `args` (with a WSDL), or `envelope`",
                        )?,
                )
            }
        } else if let Some(j) = self.json {
            set_default(&mut headers, "Content-Type", "application/json");
            Some(serde_json::to_string(&j).map_err(|e| e.to_string())?)
        } else if self.json_file.is_some() {
            set_default(&mut headers, "Content-Type", "application/json");
            None
        } else {
            match self.body {
                Some(serde_norway::Value::String(s)) => {
                    set_default(&mut headers, "Content-Type", sniff(&s));
                    Some(s)
                }
                Some(v @ (serde_norway::Value::Mapping(_) | serde_norway::Value::Sequence(_))) => {
                    set_default(&mut headers, "Content-Type", "application/json");
                    Some(serde_json::to_string(&v).map_err(|e| e.to_string())?)
                }
                Some(v) => Some(yaml_scalar(&v)),
                None => None,
            }
        };
        if let Some(auth) = &self.auth {
            if soap_mode {
                // Fine: a SOAP endpoint may sit behind HTTP auth.
            }
            let need = |what: &str, v: &Option<String>| {
                v.is_some().then_some(()).ok_or(
                    format!("`auth` of type `{:?}` needs `{what}`", auth.kind).to_lowercase(),
                )
            };
            match auth.kind {
                AuthScheme::Basic | AuthScheme::Digest => {
                    need("username", &auth.username)?;
                    need("password", &auth.password)?;
                    if auth.token.is_some() {
                        return Err("`auth.token` serves `bearer` and `oauth`".into());
                    }
                }
                AuthScheme::Bearer | AuthScheme::Oauth => {
                    need("token", &auth.token)?;
                    if auth.username.is_some() || auth.password.is_some() {
                        return Err("`auth.username`/`password` serve `basic` and `digest`".into());
                    }
                    set_default(
                        &mut headers,
                        "Authorization",
                        &format!("Bearer {}", auth.token.as_deref().unwrap_or_default()),
                    );
                }
            }
        }
        let form: BTreeMap<String, String> = self
            .form
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.clone(), yaml_scalar(v)))
            .collect();
        if !form.is_empty() {
            set_default(
                &mut headers,
                "Content-Type",
                "application/x-www-form-urlencoded",
            );
        }
        let overrides = self
            .overrides
            .iter()
            .map(|(k, v)| {
                OverridePath::parse(k).map_err(|e| format!("overrides: {e}"))?;
                Ok((k.clone(), yaml_scalar(v)))
            })
            .collect::<Result<_, String>>()?;
        let method = self
            .method
            .unwrap_or_else(|| {
                if kind == "soap" {
                    "POST".into()
                } else {
                    "GET".into()
                }
            })
            .to_uppercase();
        let method = match method.as_str() {
            "GET" => http::Method::GET,
            "POST" => http::Method::POST,
            "PUT" => http::Method::PUT,
            "PATCH" => http::Method::PATCH,
            "DELETE" => http::Method::DELETE,
            "HEAD" => http::Method::HEAD,
            "OPTIONS" => http::Method::OPTIONS,
            _ => return Err(format!("`method` `{method}` is not an HTTP method")),
        };
        // Compiled here too (and dropped) so a bad check is reported at the step's line.
        for (k, c) in self.checks.iter().enumerate() {
            c.compile().map_err(|e| format!("checks[{k}]: {e}"))?;
        }
        for (k, x) in self.extract.iter().enumerate() {
            x.compile().map_err(|e| format!("extract[{k}]: {e}"))?;
        }
        let scripts = super::script::StepScripts {
            condition: self.condition,
            hooks: self.hooks.unwrap_or_default(),
        };
        let options = super::step_options::options(
            self.think_time,
            self.timeout.as_ref(),
            self.on_error,
            self.continue_on_error,
            self.retry,
            self.thresholds,
        )?;
        Ok(HttpStep {
            options: Box::new(options),
            name: self.name.unwrap_or_else(|| format!("{method} {target}")),
            method,
            target,
            headers,
            query: self
                .query
                .iter()
                .map(|(k, v)| (k.clone(), yaml_scalar(v)))
                .collect(),
            body,
            checks: self.checks,
            extract: self.extract,
            form,
            multipart: self.multipart.unwrap_or_default(),
            json_file: self.json_file,
            overrides,
            auth: self.auth,
            soap,
            scripts: (!scripts.is_empty()).then(|| Box::new(scripts)),
        })
    }
}

/// A key of `overrides:`: `a.b`, `items[0].id` (the TypeScript tool's dot paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverridePath(Vec<PathKey>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathKey {
    Key(String),
    Index(usize),
}

impl OverridePath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a dot path such as `user.name` or `items[0].id`");
        let mut keys = Vec::new();
        for part in text.split('.') {
            let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
            if name.is_empty() && keys.is_empty() && rest.is_empty() {
                return Err(bad());
            }
            if !name.is_empty() {
                keys.push(PathKey::Key(name.to_string()));
            } else if rest.is_empty() {
                return Err(bad());
            }
            while let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(bad)?;
                keys.push(PathKey::Index(r[..end].trim().parse().map_err(|_| bad())?));
                rest = &r[end + 1..];
            }
            if !rest.is_empty() {
                return Err(bad());
            }
        }
        Ok(Self(keys))
    }

    /// Sets the value at this path, making objects and arrays on the way as needed.
    pub fn set(&self, root: &mut serde_json::Value, value: serde_json::Value) {
        use serde_json::Value;
        let mut cur = root;
        for key in &self.0 {
            cur = match key {
                PathKey::Key(k) => {
                    if !cur.is_object() {
                        *cur = Value::Object(Default::default());
                    }
                    cur.as_object_mut()
                        .expect("an object")
                        .entry(k.clone())
                        .or_insert(Value::Null)
                }
                PathKey::Index(i) => {
                    if !cur.is_array() {
                        *cur = Value::Array(Vec::new());
                    }
                    let a = cur.as_array_mut().expect("an array");
                    if a.len() <= *i {
                        a.resize(*i + 1, Value::Null);
                    }
                    &mut a[*i]
                }
            };
        }
        *cur = value;
    }
}

/// A WSDL's URL without its `?wsdl` query: where raw SOAP envelopes go.
pub fn strip_wsdl(url: &str) -> String {
    for q in ["?wsdl", "?WSDL", "?singleWsdl"] {
        if let Some(base) = url.strip_suffix(q) {
            return base.to_string();
        }
    }
    url.to_string()
}

/// Sets `name` unless the headers already have it (in any case).
fn set_default(headers: &mut BTreeMap<String, String>, name: &str, value: &str) {
    if !headers.keys().any(|k| k.eq_ignore_ascii_case(name)) {
        headers.insert(name.into(), value.into());
    }
}

/// The Content-Type of a string body, guessed from its text (templates and all):
/// `{...}`/`[...]` is JSON, `<...>` is XML, anything else plain text.
fn sniff(body: &str) -> &'static str {
    let t = body.trim();
    if (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']')) {
        "application/json"
    } else if t.starts_with('<') && t.ends_with('>') {
        "application/xml"
    } else {
        "text/plain"
    }
}

impl HttpStep {
    /// Makes the step's file paths (multipart files, a WSDL file) relative to `dir` (the test
    /// file's), and reads `jsonFile` into the body, so a worker that receives the test needs no file.
    pub fn resolve_paths(&mut self, dir: &std::path::Path) -> Result<(), String> {
        // Relative to the test file; failing that, to the working directory (where the TypeScript
        // tool looks), so tests written for it run unchanged.
        let join = |p: &mut String| {
            let beside = dir.join(p.as_str());
            if std::path::Path::new(p.as_str()).is_relative()
                && (beside.exists() || !std::path::Path::new(p.as_str()).exists())
            {
                *p = beside.display().to_string();
            }
        };
        if let Some(mut f) = self.json_file.take() {
            join(&mut f);
            let text = std::fs::read_to_string(&f)
                .map_err(|e| format!("jsonFile `{f}`: cannot read: {e}"))?;
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("jsonFile `{f}`: not JSON: {e}"))?;
            self.body = Some(text);
        }
        if let Some(w) = self.soap.as_mut().and_then(|s| s.wsdl.as_mut()) {
            if !w.starts_with("http://") && !w.starts_with("https://") {
                join(w);
            }
        }
        for v in self.multipart.values_mut() {
            match v {
                MultipartValue::File { file, .. } => join(file),
                MultipartValue::Text(t) if t.starts_with('@') && !t.starts_with("@@") => {
                    let mut path = t[1..].to_string();
                    join(&mut path);
                    *t = format!("@{path}");
                }
                MultipartValue::Text(_) => {}
            }
        }
        Ok(())
    }
}

impl From<Step> for RawStep {
    fn from(step: Step) -> Self {
        match step {
            Step::Http(h) => RawStep {
                name: Some(h.name),
                kind: Some(if h.soap.is_some() { "soap" } else { "rest" }.into()),
                method: Some(h.method.to_string()),
                path: (!h.target.is_empty()).then_some(h.target),
                wsdl: h.soap.as_ref().and_then(|s| s.wsdl.clone()),
                operation: h.soap.as_ref().and_then(|s| s.operation.clone()),
                args: h
                    .soap
                    .as_ref()
                    .filter(|s| s.operation.is_some())
                    .and_then(|s| serde_norway::to_value(&s.args).ok()),
                form: (!h.form.is_empty()).then(|| {
                    h.form
                        .into_iter()
                        .map(|(k, v)| (k, serde_norway::Value::String(v)))
                        .collect()
                }),
                multipart: (!h.multipart.is_empty()).then_some(h.multipart),
                json_file: h.json_file,
                overrides: h
                    .overrides
                    .into_iter()
                    .map(|(k, v)| (k, serde_norway::Value::String(v)))
                    .collect(),
                auth: h.auth,
                headers: h.headers,
                query: h
                    .query
                    .into_iter()
                    .map(|(k, v)| (k, serde_norway::Value::String(v)))
                    .collect(),
                body: h.body.map(serde_norway::Value::String),
                checks: h.checks,
                extract: h.extract,
                think_time: h.options.think_time,
                timeout: h
                    .options
                    .timeout
                    .map(|t| NumOrText::Text(format!("{}ms", t.as_secs_f64() * 1000.0))),
                on_error: h.options.on_error(),
                retry: h.options.retry,
                thresholds: h.options.thresholds,
                condition: h.scripts.as_ref().and_then(|s| s.condition.clone()),
                hooks: h
                    .scripts
                    .map(|s| s.hooks)
                    .filter(|h| *h != Default::default()),
                ..Default::default()
            },
            Step::Wait { name, duration } => RawStep {
                name: Some(name),
                kind: Some("wait".into()),
                duration: Some(NumOrText::Text(format!(
                    "{}ms-{}ms",
                    duration.min.as_millis(),
                    duration.max.as_millis()
                ))),
                ..Default::default()
            },
            Step::Rendezvous(r) => RawStep {
                name: Some(r.name),
                kind: Some("rendezvous".into()),
                rendezvous: Some(r.point),
                count: Some(r.count),
                timeout: Some(NumOrText::Text(format!("{}ms", r.timeout.as_millis()))),
                ..Default::default()
            },
            Step::Script(s) => {
                use super::script::ScriptCode;
                let mut raw = RawStep {
                    name: Some(s.name),
                    timeout: Some(NumOrText::Text(format!("{}ms", s.timeout.as_millis()))),
                    continue_on_error: (!s.continue_on_error).then_some(false),
                    returns: s.returns,
                    condition: s.scripts.condition,
                    hooks: Some(s.scripts.hooks).filter(|h| *h != Default::default()),
                    ..Default::default()
                };
                match s.code {
                    ScriptCode::Inline(code) => {
                        raw.kind = Some("custom".into());
                        raw.script = Some(code);
                    }
                    ScriptCode::File {
                        file,
                        source,
                        function,
                        params,
                    } => {
                        raw.kind = Some("script".into());
                        raw.file = Some(file);
                        raw.source = source;
                        raw.function = Some(function);
                        raw.params = Some(params);
                    }
                }
                raw
            }
        }
    }
}
