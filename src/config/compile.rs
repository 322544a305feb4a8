//! The engine-ready form of a test: what can be parsed once (request templates, checks,
//! extractions, scenario variables) is parsed here, when the test is loaded or received, never per response. The
//! [`TestFile`] stays the one form that is written, sent over the wire and stored; this form is built
//! from it wherever a test is about to run, and by [`super::check`] so every path that accepts a
//! test refuses the same mistakes.

use super::template::Template;
use super::{
    AuthScheme, CompiledCheck, CompiledExtract, HttpStep, MultipartValue, OverridePath, Step,
    TestFile,
};
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
    /// `form:` fields, url-encoded after templating.
    pub form: Vec<(String, Template)>,
    /// `multipart:` fields and the boundary between them.
    pub multipart: Vec<(String, Part)>,
    pub boundary: String,
    /// The JSON body (`json`, `body` or `jsonFile`) and `overrides` set in it per request.
    pub overrides: Option<(serde_json::Value, Vec<(OverridePath, Template)>)>,
    pub auth: Option<AuthTemplate>,
    /// A SOAP call to resolve from its WSDL when the run starts (see `engine::soap`).
    pub wsdl_call: Option<WsdlCall>,
    /// The body is XML built from `args`: values expanded into it are XML-escaped.
    pub xml_values: bool,
    /// A raw envelope without a `SOAPAction`: the WSDL whose operation for the envelope's body
    /// element gives it, when the run starts.
    pub action_from: Option<String>,
    /// A SOAP step: a Fault in the response counts as an error of kind `soap_fault`, unless a
    /// `soap_fault` check expects one.
    pub fault_is_error: bool,
}

/// A `multipart:` field ready to send.
#[derive(Debug, Clone)]
pub enum Part {
    Text(Template),
    /// A file read when the test was compiled.
    File {
        filename: String,
        content_type: String,
        data: bytes::Bytes,
    },
}

/// `auth:` with its values parsed.
#[derive(Debug, Clone)]
pub struct AuthTemplate {
    pub scheme: AuthScheme,
    pub username: Template,
    pub password: Template,
}

/// What a WSDL-mode SOAP step calls: the WSDL's URL, the operation and its `args`.
#[derive(Debug, Clone)]
pub struct WsdlCall {
    pub wsdl: String,
    pub operation: String,
    pub args: serde_json::Value,
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
            form: step
                .form
                .iter()
                .map(|(k, v)| (k.clone(), Template::parse(v)))
                .collect(),
            boundary: format!("perfornium-{:016x}", rand::random::<u64>()),
            auth: step
                .auth
                .as_ref()
                .filter(|a| matches!(a.kind, AuthScheme::Basic | AuthScheme::Digest))
                .map(|a| AuthTemplate {
                    scheme: a.kind,
                    username: Template::parse(a.username.as_deref().unwrap_or_default()),
                    password: Template::parse(a.password.as_deref().unwrap_or_default()),
                }),
            ..Default::default()
        }
    }

    /// Reads the step's files (`jsonFile`, multipart files), applies the SOAP defaults that need
    /// `global`, and parses `overrides`.
    fn load_files(&mut self, step: &HttpStep, wsdl_url: Option<&str>) -> Result<(), String> {
        let json = match &step.json_file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("jsonFile `{file}`: cannot read: {e}"))?;
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("jsonFile `{file}`: not JSON: {e}"))?;
                self.body = Some(Template::parse(&text));
                Some(v)
            }
            None => None,
        };
        if !step.overrides.is_empty() {
            let base = match json {
                Some(v) => v,
                None => serde_json::from_str(step.body.as_deref().unwrap_or_default())
                    .map_err(|e| format!("overrides: the body is not JSON: {e}"))?,
            };
            let over = step
                .overrides
                .iter()
                .map(|(k, v)| Ok((OverridePath::parse(k)?, Template::parse(v))))
                .collect::<Result<_, String>>()?;
            self.overrides = Some((base, over));
        }
        for (name, value) in &step.multipart {
            let file = match value {
                MultipartValue::Text(t) if t.starts_with("@@") => {
                    self.multipart
                        .push((name.clone(), Part::Text(Template::parse(&t[1..]))));
                    continue;
                }
                MultipartValue::Text(t) if t.starts_with('@') => (&t[1..], None, None),
                MultipartValue::Text(t) => {
                    self.multipart
                        .push((name.clone(), Part::Text(Template::parse(t))));
                    continue;
                }
                MultipartValue::File {
                    file,
                    filename,
                    content_type,
                } => (file.as_str(), filename.clone(), content_type.clone()),
            };
            let (path, filename, content_type) = file;
            let data = std::fs::read(path)
                .map_err(|e| format!("multipart `{name}`: cannot read `{path}`: {e}"))?;
            let filename = filename.unwrap_or_else(|| {
                std::path::Path::new(path)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| name.clone())
            });
            let content_type = content_type.unwrap_or_else(|| guess_type(&filename).into());
            self.multipart.push((
                name.clone(),
                Part::File {
                    filename,
                    content_type,
                    data: data.into(),
                },
            ));
        }
        if let Some(soap) = &step.soap {
            self.fault_is_error = !step.checks.iter().any(|c| {
                matches!(
                    c,
                    super::Check::SoapFault {
                        expected: Some(true),
                        ..
                    }
                )
            });
            let wsdl = soap.wsdl.as_deref().or(wsdl_url);
            match (&soap.operation, wsdl) {
                (Some(op), Some(w)) => {
                    self.wsdl_call = Some(WsdlCall {
                        wsdl: w.to_string(),
                        operation: op.clone(),
                        args: soap.args.clone(),
                    })
                }
                (Some(_), None) => {
                    return Err(
                        "a `soap` step with `operation` needs `wsdl` (or `global.wsdl_url`)".into(),
                    )
                }
                (None, Some(w)) if step.target.is_empty() => {
                    self.target = Template::parse(&super::step::strip_wsdl(w));
                }
                (None, None) if step.target.is_empty() => {
                    return Err(
                        "a raw `soap` step needs `path`/`url`, `wsdl` or `global.wsdl_url`".into(),
                    )
                }
                (None, _) => {}
            }
            let has_action = self
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("soapaction"));
            if soap.operation.is_none() && !has_action {
                match wsdl {
                    Some(w) => self.action_from = Some(w.to_string()),
                    // SOAP 1.1 wants the header; empty says "no intent given".
                    None => self
                        .headers
                        .push(("SOAPAction".into(), Template::parse("\"\""))),
                }
            }
        }
        Ok(())
    }

    /// Whether nothing in the request is templated, so it can be built once for the whole run.
    pub fn is_fixed(&self) -> bool {
        self.overrides.is_none()
            && self.wsdl_call.is_none()
            && self.action_from.is_none()
            && self.form.iter().all(|(_, v)| v.fixed().is_some())
            && self.multipart.iter().all(|(_, p)| match p {
                Part::Text(t) => t.fixed().is_some(),
                Part::File { .. } => true,
            })
            && self.auth.as_ref().is_none_or(|a| {
                a.scheme == AuthScheme::Basic
                    && a.username.fixed().is_some()
                    && a.password.fixed().is_some()
            })
            && self.target.fixed().is_some()
            && self.query.iter().all(|(_, v)| v.fixed().is_some())
            && self.headers.iter().all(|(_, v)| v.fixed().is_some())
            && self.body.as_ref().is_none_or(|b| b.fixed().is_some())
    }
}

/// A file's Content-Type from its extension.
fn guess_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "json" => "application/json",
        "xml" => "application/xml",
        "txt" | "csv" => "text/plain",
        "html" | "htm" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
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
                super::template::check_step(h, true)
                    .map_err(|e| format!("scenarios[{i}].steps[{j}]: {e}"))?;
                let mut request = RequestTemplate::new(h, &test.global.headers);
                request
                    .load_files(h, test.global.wsdl_url.as_deref())
                    .map_err(|e| format!("scenarios[{i}].steps[{j}]: {e}"))?;
                out.steps.push(CompiledStep {
                    request,
                    checks,
                    extract,
                });
            }
        }
        let variables = scenario.variable_texts();
        for (k, v) in &variables {
            super::template::check_text(&format!("scenarios[{i}].variables.{k}"), v, true)?;
        }
        out.variables.push(variables);
    }
    Ok(out)
}
