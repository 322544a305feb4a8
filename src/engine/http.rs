//! Sends one HTTP step: renders it with the VU's variables, times it (from the intended start when
//! the open model gives one), reads the body, runs the checks and extractions, and returns the
//! [`Sample`] plus the values extracted for later steps.

use super::checks::{passes, run_extract, Response};
use super::client::{Prepared, Request, VuClient};
use super::template::{expand, Vars};
use crate::config::{CompiledStep, HttpStep};
use crate::metrics::Sample;
use std::time::Instant;

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
    let start = origin.unwrap_or_else(Instant::now);
    let result = match prepared {
        Some(p) => client
            .send_prepared(p)
            .await
            .map_err(|f| f.kind().to_string()),
        None => match build(target, step, compiled, vars) {
            Some(req) => client.send(req).await.map_err(|f| f.kind().to_string()),
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
    if status >= 400 {
        sample.error = Some(format!("status {status}"));
    }
    if compiled.checks.is_empty() && compiled.extract.is_empty() {
        return (sample, Vec::new());
    }
    let text = String::from_utf8_lossy(body);
    let response =
        Response::new(status, latency.as_secs_f64() * 1000.0, &text).with_headers(&reply.headers);
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
        .filter_map(|ex| run_extract(ex, &response).map(|v| (ex.name.clone(), v)))
        .collect();
    (sample, extracted)
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
    let headers = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), expand(v, vars).into_owned()))
        .collect();
    Some(Request {
        method: step.method.clone(),
        url,
        headers,
        body: request
            .body
            .as_ref()
            .map(|b| expand(b, vars).into_owned().into_bytes()),
    })
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
}
