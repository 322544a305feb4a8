//! Sends one HTTP step: renders it with the VU's variables, times it (from the intended start when
//! the open model gives one), reads the body, runs the checks and extractions, and returns the
//! [`Sample`] plus the values extracted for later steps.

use super::checks::{run_check, run_extract, Response};
use super::client::{Prepared, Request, VuClient};
use super::template::{render, Vars};
use crate::config::{CompiledStep, HttpStep};
use crate::metrics::Sample;
use std::collections::BTreeMap;
use std::time::Instant;

/// What every VU shares to send steps.
pub struct Target<'a> {
    pub base_url: Option<&'a str>,
    pub headers: &'a BTreeMap<String, String>,
}

/// `step` rendered once, when nothing in it is templated.
pub fn prepare(target: &Target<'_>, step: &HttpStep) -> Option<Prepared> {
    let templated = |s: &String| s.contains("{{");
    let fixed = !templated(&step.target)
        && !step.query.iter().any(|(k, v)| templated(k) || templated(v))
        && !step
            .headers
            .values()
            .chain(target.headers.values())
            .any(templated)
        && !step.body.as_ref().is_some_and(templated);
    fixed
        .then(|| build(target, step, &Vars::default()).ok())
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
        None => match build(target, step, vars) {
            Ok(req) => client.send(req).await.map_err(|f| f.kind().to_string()),
            Err(e) => Err(e),
        },
    };
    let latency = start.elapsed();
    sample.latency_us = latency.as_micros() as u64;
    let (status, body) = match result {
        Ok(pair) => pair,
        Err(kind) => {
            sample.error = Some(kind);
            return (sample, Vec::new());
        }
    };
    sample.status = Some(status);
    sample.bytes = body.len() as u64;
    if status >= 400 {
        sample.error = Some(format!("status {status}"));
    }
    if compiled.checks.is_empty() && compiled.extract.is_empty() {
        return (sample, Vec::new());
    }
    let text = String::from_utf8_lossy(&body);
    let response = Response::new(status, latency.as_secs_f64() * 1000.0, &text);
    for check in &compiled.checks {
        match run_check(check, &response, vars) {
            Ok(()) => sample.checks_passed += 1,
            Err(what) => sample.failed_checks.push(what),
        }
    }
    let extracted = compiled
        .extract
        .iter()
        .filter_map(|ex| run_extract(ex, &response).map(|v| (ex.name.clone(), v)))
        .collect();
    (sample, extracted)
}

/// Renders the step into a request; an unusable URL is an error of kind `url`.
fn build(target: &Target<'_>, step: &HttpStep, vars: &Vars) -> Result<Request, String> {
    let url = url_for(target.base_url, &render(&step.target, vars));
    let mut url = url::Url::parse(&url).map_err(|_| "url".to_string())?;
    if !step.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in &step.query {
            pairs.append_pair(k, &render(v, vars));
        }
    }
    let headers = target
        .headers
        .iter()
        .filter(|(k, _)| !step.headers.contains_key(*k))
        .chain(&step.headers)
        .map(|(k, v)| (k.clone(), render(v, vars).into_owned()))
        .collect();
    Ok(Request {
        method: step.method.clone(),
        url,
        headers,
        body: step.body.as_ref().map(|b| render(b, vars).into_owned()),
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

    #[test]
    fn only_steps_with_nothing_templated_are_prepared() {
        let mut headers = BTreeMap::new();
        let target = Target {
            base_url: Some("http://127.0.0.1:9"),
            headers: &headers,
        };
        assert!(prepare(&target, &step("/users")).is_some());
        assert!(prepare(&target, &step("/users/{{id}}")).is_none());
        assert!(prepare(&target, &step("https://example.test/")).is_some());
        let mut with_body = step("/users");
        with_body.body = Some("{\"n\": {{__VU}}}".into());
        assert!(prepare(&target, &with_body).is_none());
        headers.insert("X-Run".into(), "{{env.RUN}}".into());
        let target = Target {
            base_url: Some("http://127.0.0.1:9"),
            headers: &headers,
        };
        assert!(
            prepare(&target, &step("/users")).is_none(),
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
