//! Sends one HTTP step: renders it with the VU's variables, times it (from the intended start when
//! the open model gives one), reads the body, runs the checks and extractions, and returns the
//! [`Sample`] plus the values extracted for later steps.

use super::checks::{run_check, run_extract, Response};
use super::template::{render, Vars};
use crate::config::HttpStep;
use crate::metrics::Sample;
use std::collections::BTreeMap;
use std::time::Instant;

/// What a VU needs to send steps.
pub struct Target<'a> {
    pub client: &'a reqwest::Client,
    pub base_url: Option<&'a str>,
    pub headers: &'a BTreeMap<String, String>,
}

/// Sends `step` and measures it. `origin` is when the request should have started (open model).
pub async fn send(
    target: &Target<'_>,
    step: &HttpStep,
    id: usize,
    vars: &Vars,
    origin: Option<Instant>,
) -> (Sample, Vec<(String, String)>) {
    let url = url_for(target.base_url, &render(&step.target, vars));
    let method =
        reqwest::Method::from_bytes(step.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = target.client.request(method, url);
    for (k, v) in target
        .headers
        .iter()
        .filter(|(k, _)| !step.headers.contains_key(*k))
        .chain(&step.headers)
    {
        req = req.header(k.as_str(), render(v, vars).as_ref());
    }
    if !step.query.is_empty() {
        let q: Vec<(&str, String)> = step
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), render(v, vars).into_owned()))
            .collect();
        req = req.query(&q);
    }
    if let Some(body) = &step.body {
        req = req.body(render(body, vars).into_owned());
    }
    let start = origin.unwrap_or_else(Instant::now);
    let result = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            resp.text().await.map(|body| (status, body))
        }
        Err(e) => Err(e),
    };
    let latency = start.elapsed();
    let mut sample = Sample {
        step: id,
        latency_us: latency.as_micros() as u64,
        status: None,
        error: None,
        checks_passed: 0,
        failed_checks: Vec::new(),
        bytes: 0,
    };
    let (status, body) = match result {
        Ok(pair) => pair,
        Err(e) => {
            sample.error = Some(error_kind(&e).to_string());
            return (sample, Vec::new());
        }
    };
    sample.status = Some(status);
    sample.bytes = body.len() as u64;
    if status >= 400 {
        sample.error = Some(format!("status {status}"));
    }
    let response = Response::new(status, latency.as_secs_f64() * 1000.0, &body);
    for check in &step.checks {
        match run_check(check, &response, vars) {
            Ok(()) => sample.checks_passed += 1,
            Err(what) => sample.failed_checks.push(what),
        }
    }
    let extracted = step
        .extract
        .iter()
        .filter_map(|ex| run_extract(ex, &response).map(|v| (ex.name.clone(), v)))
        .collect();
    (sample, extracted)
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

fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}

#[cfg(test)]
mod tests {
    use super::url_for;

    #[test]
    fn joins_urls() {
        assert_eq!(url_for(Some("http://h:1/"), "/a"), "http://h:1/a");
        assert_eq!(url_for(Some("http://h:1/api"), "a"), "http://h:1/api/a");
        assert_eq!(url_for(Some("http://h:1"), "https://x/y"), "https://x/y");
    }
}
