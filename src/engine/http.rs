//! Sends one HTTP step: renders it with the VU's variables, times it (from the intended start when
//! the open model gives one), reads the body, runs the checks and extractions, and returns the
//! [`Sample`] plus the values extracted for later steps.

use super::checks::{passes, run_extract_in, Response};
use super::client::{Prepared, Reply, Request, VuClient};
use super::template::{expand, Vars};
use crate::config::compile::Part;
use crate::config::template::{Part as TemplatePart, Template};
use crate::config::{AuthScheme, CheckRule, CompiledStep, HttpStep};
use crate::metrics::Sample;
use std::time::Instant;

/// What was sent and received, kept for `debug` captures when asked (`send`'s `capture`).
#[derive(Debug, Default)]
pub struct Captured {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub response: Option<bytes::Bytes>,
}

/// What every VU shares to send steps.
pub struct Target<'a> {
    pub base_url: Option<&'a str>,
}

/// `step` built once, when nothing in it is templated.
pub fn prepare(target: &Target<'_>, step: &HttpStep, compiled: &CompiledStep) -> Option<Prepared> {
    compiled
        .request
        .is_fixed()
        .then(|| build(target, step, compiled, &Vars::default()))
        .flatten()
        .and_then(Prepared::new)
}

/// Sends `step` (or its `prepared` form), measures it and runs its `compiled` checks and extractions. `origin` is when the request should have
/// started (open model).
pub async fn send(
    client: &mut VuClient,
    target: &Target<'_>,
    (step, prepared, compiled): (&HttpStep, Option<&Prepared>, &CompiledStep),
    id: usize,
    vars: &Vars,
    origin: Option<Instant>,
    mut capture: Option<&mut Captured>,
) -> (Sample, Vec<(String, String)>) {
    let mut sample = Sample {
        step: id,
        latency_us: 0,
        status: None,
        error: None,
        checks_passed: 0,
        failed_checks: Vec::new(),
        bytes: 0,
    };
    if let Some(c) = capture.as_deref_mut() {
        if let Some(r) = build(target, step, compiled, vars).filter(|_| prepared.is_some()) {
            (c.method, c.url, c.headers, c.body) = (
                r.method.to_string(),
                r.url.to_string(),
                r.headers,
                r.body.map(|b| String::from_utf8_lossy(&b).into_owned()),
            );
        }
    }
    let fault_matters = compiled.request.fault_is_error
        || compiled
            .checks
            .iter()
            .any(|c| matches!(c.rule, CheckRule::SoapFault(true)));
    // The response is read beyond its status and length only for checks and extractions.
    let inspected = !compiled.checks.is_empty() || !compiled.extract.is_empty() || fault_matters;
    let start = origin.unwrap_or_else(Instant::now);
    let result = match prepared {
        Some(p) => client
            .send_prepared(p, inspected)
            .await
            .map_err(|f| f.kind().to_string()),
        None => match build(target, step, compiled, vars) {
            Some(req) => {
                if let Some(c) = capture.as_deref_mut() {
                    (c.method, c.url, c.headers, c.body) = (
                        req.method.to_string(),
                        req.url.to_string(),
                        req.headers.clone(),
                        req.body
                            .as_ref()
                            .map(|b| String::from_utf8_lossy(b).into_owned()),
                    );
                }
                send_built(client, req, (id, compiled), vars, inspected).await
            }
            None => Err("url".to_string()),
        },
    };
    let latency = start.elapsed();
    sample.latency_us = latency.as_micros() as u64;
    let reply = match result {
        Ok(reply) => reply,
        Err(kind) => {
            sample.error = Some(kind);
            return (sample, Vec::new());
        }
    };
    let (status, body) = (reply.status, &reply.body);
    sample.status = Some(status);
    sample.bytes = body.len() as u64;
    if let Some(c) = capture {
        c.response = Some(body.clone());
    }
    // A 4xx/5xx is an error unless the step's own `status` check names it (`status: 404` on a
    // step that expects "not found"); as with a SOAP Fault that a check expects.
    if status >= 400 && !expects_status(&compiled.checks, status) {
        sample.error = Some(format!("status {status}"));
    }
    if !inspected {
        return (sample, Vec::new());
    }
    let text = String::from_utf8_lossy(body);
    let response =
        Response::new(status, latency.as_secs_f64() * 1000.0, &text).with_headers(&reply.headers);
    if fault_matters && response.is_soap_fault() {
        // A Fault is an error of its own kind, or no error when a check expects it.
        sample.error = compiled
            .request
            .fault_is_error
            .then(|| "soap_fault".to_string());
    }
    for check in &compiled.checks {
        if passes(check, &response, vars) {
            sample.checks_passed += 1;
        } else {
            sample.failed_checks.push(check.label.clone());
        }
    }
    let extracted = compiled
        .extract
        .iter()
        .filter_map(|ex| run_extract_in(ex, &response, vars).map(|v| (ex.name.clone(), v)))
        .collect();
    (sample, extracted)
}

/// Sends a built request; with `auth: {type: digest}`, answers the server's `401` Digest challenge
/// on the same connection with the computed `Authorization`, and keeps the challenge (per step) so
/// the VU's later requests authenticate at once with the next `nc`; a `401` to those (a stale
/// nonce) is answered once more with the new challenge.
async fn send_built(
    client: &mut VuClient,
    req: Request,
    (id, compiled): (usize, &CompiledStep),
    vars: &Vars,
    inspected: bool,
) -> Result<Reply, String> {
    let kind = |f: super::client::Failure| f.kind().to_string();
    let digest = compiled
        .request
        .auth
        .as_ref()
        .filter(|a| a.scheme == AuthScheme::Digest);
    let Some(auth) = digest else {
        return client.send_request(req, inspected).await.map_err(kind);
    };
    let (user, password) = (expand(&auth.username, vars), expand(&auth.password, vars));
    let uri = match req.url.query() {
        Some(q) => format!("{}?{q}", req.url.path()),
        None => req.url.path().to_string(),
    };
    let answer = |c: &super::digest::Challenge, nc: u32| {
        let cnonce = format!("{:016x}", rand::random::<u64>());
        super::digest::authorization(
            c,
            (req.method.as_str(), &uri),
            (&user, &password),
            &cnonce,
            nc,
        )
        .ok_or_else(|| "digest".to_string())
    };
    let mut first = req.clone();
    if let Some((challenge, nc)) = client.digest.get_mut(&id) {
        *nc += 1;
        first
            .headers
            .push(("Authorization".into(), answer(challenge, *nc)?));
    }
    let reply = client.send(first).await.map_err(kind)?;
    if reply.status != 401 {
        return Ok(reply);
    }
    let challenge = reply
        .headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(super::digest::parse);
    let Some(challenge) = challenge else {
        client.digest.remove(&id);
        return Ok(reply);
    };
    let mut again = req.clone();
    again
        .headers
        .push(("Authorization".into(), answer(&challenge, 1)?));
    client.digest.insert(id, (challenge, 1));
    client.send(again).await.map_err(kind)
}

/// Renders the step into a request; `None` for an unusable URL (counted as an error of kind `url`).
fn build(
    target: &Target<'_>,
    step: &HttpStep,
    compiled: &CompiledStep,
    vars: &Vars,
) -> Option<Request> {
    let request = &compiled.request;
    let url = url_for(target.base_url, &expand(&request.target, vars));
    let mut url = url::Url::parse(&url).ok()?;
    if !request.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in &request.query {
            pairs.append_pair(k, &expand(v, vars));
        }
    }
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), expand(v, vars).into_owned()))
        .collect();
    let body = if !request.form.is_empty() {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &request.form {
            form.append_pair(k, &expand(v, vars));
        }
        Some(form.finish().into_bytes())
    } else if !request.multipart.is_empty() {
        // The boundary is ours, so it replaces a bare `multipart/form-data` the step may set.
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        headers.push((
            "Content-Type".into(),
            format!("multipart/form-data; boundary={}", request.boundary),
        ));
        Some(multipart(&request.multipart, &request.boundary, vars))
    } else if let Some((base, overrides)) = &request.overrides {
        let mut json = base.clone();
        for (path, value) in overrides {
            path.set(&mut json, json_scalar(&expand(value, vars)));
        }
        Some(serde_json::to_vec(&json).ok()?)
    } else if request.xml_values {
        request
            .body
            .as_ref()
            .map(|b| expand_xml(b, vars).into_bytes())
    } else {
        request
            .body
            .as_ref()
            .map(|b| expand(b, vars).into_owned().into_bytes())
    };
    if let Some(auth) = &request.auth {
        if auth.scheme == AuthScheme::Basic
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            use base64::Engine;
            let pair = format!(
                "{}:{}",
                expand(&auth.username, vars),
                expand(&auth.password, vars)
            );
            headers.push((
                "Authorization".into(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            ));
        }
    }
    Some(Request {
        method: step.method.clone(),
        url,
        headers,
        body,
    })
}

/// Expands an XML body built from `args`, escaping what each `{{...}}` gives (`&`, `<`, `>`), so a
/// value such as `Smith & Sons` keeps the envelope well formed.
fn expand_xml(body: &Template, vars: &Vars) -> String {
    let mut out = String::new();
    for part in body.parts() {
        match part {
            TemplatePart::Text(t) => out.push_str(t),
            TemplatePart::Expr { raw, .. } => {
                let value = expand(&Template::parse(raw), vars).into_owned();
                out.push_str(
                    &value
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;"),
                );
            }
        }
    }
    out
}

/// An override's text as JSON: `true`, `false` and numbers become JSON values (as the TypeScript
/// tool does), anything else a string.
fn json_scalar(text: &str) -> serde_json::Value {
    match text {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        t => match t.trim().parse::<f64>() {
            Ok(n) if !t.trim().is_empty() => serde_json::Number::from_f64(n)
                .map(|n| {
                    // Keep integers integers.
                    t.trim()
                        .parse::<i64>()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::Number(n))
                })
                .unwrap_or_else(|| serde_json::Value::String(t.into())),
            _ => serde_json::Value::String(t.into()),
        },
    }
}

/// A `multipart/form-data` body.
fn multipart(parts: &[(String, Part)], boundary: &str, vars: &Vars) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, part) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let name = name.replace('"', "%22");
        match part {
            Part::Text(t) => {
                out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                );
                out.extend_from_slice(expand(t, vars).as_bytes());
            }
            Part::File {
                filename,
                content_type,
                data,
            } => {
                let filename = filename.replace('"', "%22");
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                         Content-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(data);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn url_for(base: Option<&str>, target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        return target.to_string();
    }
    let base = base.unwrap_or("").trim_end_matches('/');
    if target.starts_with('/') {
        format!("{base}{target}")
    } else {
        format!("{base}/{target}")
    }
}

/// Whether a `status` check of the step lists this status.
fn expects_status(checks: &[crate::config::CompiledCheck], status: u16) -> bool {
    checks
        .iter()
        .any(|c| matches!(&c.rule, CheckRule::Status(codes) if codes.contains(&status)))
}

#[cfg(test)]
mod tests {
    use super::{prepare, url_for, HttpStep, Target};
    use crate::config::{CompiledStep, RequestTemplate};
    use std::collections::BTreeMap;

    fn step(target: &str) -> HttpStep {
        HttpStep {
            name: "s".into(),
            method: http::Method::GET,
            target: target.into(),
            headers: BTreeMap::new(),
            query: BTreeMap::new(),
            body: None,
            checks: vec![],
            extract: vec![],
            options: Default::default(),
            form: BTreeMap::new(),
            multipart: BTreeMap::new(),
            json_file: None,
            overrides: BTreeMap::new(),
            auth: None,
            soap: None,
            scripts: None,
        }
    }

    fn prepared(step: &HttpStep, global: &BTreeMap<String, String>) -> bool {
        let target = Target {
            base_url: Some("http://127.0.0.1:9"),
        };
        let compiled = CompiledStep {
            request: RequestTemplate::new(step, global),
            ..Default::default()
        };
        prepare(&target, step, &compiled).is_some()
    }

    #[test]
    fn only_steps_with_nothing_templated_are_prepared() {
        let mut headers = BTreeMap::new();
        assert!(prepared(&step("/users"), &headers));
        assert!(!prepared(&step("/users/{{id}}"), &headers));
        assert!(prepared(&step("https://example.test/"), &headers));
        let mut with_body = step("/users");
        with_body.body = Some("{\"n\": {{__VU}}}".into());
        assert!(!prepared(&with_body, &headers));
        headers.insert("X-Run".into(), "{{env.RUN}}".into());
        assert!(
            !prepared(&step("/users"), &headers),
            "a templated global header"
        );
    }

    #[test]
    fn joins_urls() {
        assert_eq!(url_for(Some("http://h:1/"), "/a"), "http://h:1/a");
        assert_eq!(url_for(Some("http://h:1/api"), "a"), "http://h:1/api/a");
        assert_eq!(url_for(Some("http://h:1"), "https://x/y"), "https://x/y");
    }

    #[test]
    fn values_expanded_into_a_built_envelope_are_escaped() {
        let mut vars = crate::engine::template::Vars::default();
        vars.values.insert("who".into(), "Smith & <Sons>".into());
        let body = crate::config::template::Template::parse("<n>{{who}}</n><i>{{__VU}}</i>");
        assert_eq!(
            super::expand_xml(&body, &vars),
            "<n>Smith &amp; &lt;Sons&gt;</n><i>0</i>"
        );
    }
}
