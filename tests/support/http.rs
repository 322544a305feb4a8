//! Blocking HTTP for tests (ureq, plain HTTP): every status is an answer, not an error, and
//! redirects are not followed, because tests look at 401s, 413s and the 307 a follower answers with.

use std::time::Duration;

/// What a call got back: (status, body), or why there was no answer.
pub type Reply = Result<(u16, String), ureq::Error>;

/// The timeout of [`call`] and [`http_get`]: a stopped process accepts connections but never answers.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking HTTP call with a method, optional bearer token and JSON body; returns (status, body).
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> Reply {
    call_within(method, url, token, body, TIMEOUT)
}

/// [`call`] that gives up after `timeout`.
pub fn call_within(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
    timeout: Duration,
) -> Reply {
    // One agent per call: no connection is reused across a killed or restarted server.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut resp = match body {
        Some(b) => agent.run(req.body(b.to_string()).expect("a valid request"))?,
        None => agent.run(req.body(()).expect("a valid request"))?,
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string()?;
    Ok((status, text))
}

/// A blocking `GET url`.
pub fn http_get(url: &str) -> Reply {
    call("GET", url, None, None)
}

/// `GET url` as JSON, if it answers 200 with JSON.
pub fn get_json(url: &str) -> Option<serde_json::Value> {
    get_json_within(url, None, TIMEOUT)
}

/// [`get_json`] with a bearer token and a timeout.
pub fn get_json_within(
    url: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Option<serde_json::Value> {
    let (code, body) = call_within("GET", url, token, None, timeout).ok()?;
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}
