//! HAR (HTTP Archive 1.2, as browsers' devtools and proxies save it) → a test: the recorded
//! requests in the order they started, in one scenario, each with its recorded method, headers,
//! query and body and a check on its recorded status; the pause the user took after a request (the
//! next request's start minus this one's end, from `startedDateTime` and `time`) becomes that
//! step's `think_time`. Static assets (scripts, styles, images, fonts, by extension or response
//! type) are left out unless asked for. The most frequent origin becomes `base_url` and its requests
//! get a `path`; requests to other origins keep their full `url`.
//!
//! The format is read with plain serde structs: it is a small JSON schema, and only these fields
//! matter.

use super::{unique, Check, Generated, Global, ImportError, Load, Scenario, Step, Test};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// What to take from the recording.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replaces the recorded origin as `base_url`.
    pub base_url: Option<String>,
    /// Keep scripts, styles, images and fonts (left out by default).
    pub keep_static: bool,
    /// Keep only requests to these hosts.
    pub domains: Vec<String>,
    /// Leave out requests to these hosts.
    pub exclude_domains: Vec<String>,
    /// Keep only these methods (any case).
    pub methods: Vec<String>,
    /// Pauses shorter than this are not written (ms).
    pub min_think_ms: u64,
}

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    started_date_time: String,
    /// Total time of the request in ms (-1 or absent when unknown).
    #[serde(default)]
    time: f64,
    request: Request,
    response: Response,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    #[serde(default)]
    mime_type: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    params: Vec<NameValue>,
}

#[derive(Deserialize)]
struct Response {
    status: i64,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    #[serde(default)]
    mime_type: String,
}

const STATIC_EXTENSIONS: &[&str] = &[
    ".js", ".mjs", ".css", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".webp", ".avif",
    ".woff", ".woff2", ".ttf", ".otf", ".eot", ".map",
];

/// Headers the client sets itself (or that would pin a recorded session).
const DROPPED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "accept-encoding",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "cookie",
    "x-perfornium-worker",
];

fn is_static(url: &url::Url, mime: &str) -> bool {
    let path = url.path().to_ascii_lowercase();
    STATIC_EXTENSIONS.iter().any(|e| path.ends_with(e))
        || mime.starts_with("image/")
        || mime.starts_with("font/")
        || mime.starts_with("text/css")
        || mime.contains("javascript")
}

fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Reads a HAR recording and generates its test.
pub fn import(text: &str, source: &str, opts: &Options) -> Result<Generated, ImportError> {
    let bad = |why: String| ImportError::Source { what: "HAR", why };
    let har: Har = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let methods: Vec<String> = opts.methods.iter().map(|m| m.to_uppercase()).collect();
    let mut notes = Vec::new();
    let mut kept = Vec::new();
    let mut static_left = 0;
    for (i, e) in har.log.entries.into_iter().enumerate() {
        let url = url::Url::parse(&e.request.url)
            .map_err(|err| bad(format!("entry {i}: url `{}`: {err}", e.request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        let start = chrono::DateTime::parse_from_rfc3339(&e.started_date_time).map_err(|err| {
            bad(format!(
                "entry {i}: startedDateTime `{}`: {err}",
                e.started_date_time
            ))
        })?;
        let host = url.host_str().unwrap_or("").to_string();
        let mime = e
            .response
            .content
            .as_ref()
            .map(|c| c.mime_type.to_ascii_lowercase())
            .unwrap_or_default();
        if !opts.keep_static && is_static(&url, &mime) {
            static_left += 1;
            continue;
        }
        if !opts.domains.is_empty() && !opts.domains.contains(&host) {
            continue;
        }
        if opts.exclude_domains.contains(&host) {
            continue;
        }
        if !methods.is_empty() && !methods.contains(&e.request.method.to_uppercase()) {
            continue;
        }
        kept.push((start, e, url));
    }
    if static_left > 0 {
        notes.push(format!(
            "{static_left} static asset request(s) left out (--keep-static keeps them)"
        ));
    }
    if kept.is_empty() {
        return Err(ImportError::Empty(
            "no request in the recording is left after the filters".into(),
        ));
    }
    // Entries are usually in start order already; a stable sort keeps ties as recorded.
    kept.sort_by_key(|(start, _, _)| *start);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, url) in &kept {
        *counts.entry(origin(url)).or_default() += 1;
    }
    let main = kept
        .iter()
        .map(|(_, _, u)| origin(u))
        .max_by_key(|o| (counts[o], std::cmp::Reverse(o.clone())))
        .expect("kept is not empty");
    let mut names = HashSet::new();
    let mut steps = Vec::new();
    for k in 0..kept.len() {
        let (start, e, url) = &kept[k];
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut step = Step {
            name: unique(format!("{} {}", e.request.method, url.path()), &mut names),
            kind: "rest",
            method: Some(e.request.method.to_uppercase()),
            ..Default::default()
        };
        if origin(url) == main {
            step.path = Some(target);
        } else {
            step.url = Some(url.as_str().to_string());
        }
        for h in &e.request.headers {
            let lower = h.name.to_ascii_lowercase();
            if h.name.starts_with(':') || DROPPED_HEADERS.contains(&lower.as_str()) {
                continue;
            }
            step.headers.insert(h.name.clone(), h.value.clone());
        }
        if let Some(post) = &e.request.post_data {
            match &post.text {
                Some(t) if !t.is_empty() => {
                    if !step
                        .headers
                        .keys()
                        .any(|h| h.eq_ignore_ascii_case("content-type"))
                        && !post.mime_type.is_empty()
                    {
                        step.headers
                            .insert("Content-Type".into(), post.mime_type.clone());
                    }
                    step.body = Some(t.clone());
                }
                _ if !post.params.is_empty() => {
                    step.form = post
                        .params
                        .iter()
                        .map(|p| (p.name.clone(), p.value.clone()))
                        .collect();
                    step.headers
                        .retain(|h, _| !h.eq_ignore_ascii_case("content-type"));
                }
                _ => {}
            }
        }
        if let Ok(status) = u16::try_from(e.response.status) {
            if (100..600).contains(&status) {
                step.checks.push(Check::Status { value: status });
            }
        }
        if let Some((next, _, _)) = kept.get(k + 1) {
            let end_ms = start.timestamp_micros() as f64 / 1000.0 + e.time.max(0.0);
            let gap = next.timestamp_micros() as f64 / 1000.0 - end_ms;
            if gap >= opts.min_think_ms.max(1) as f64 {
                step.think_time = Some(format!("{}ms", gap.round() as u64));
            }
        }
        steps.push(step);
    }
    let base_url = opts.base_url.clone().unwrap_or(main);
    Ok(Generated {
        header: format!(
            "Generated by `perfornium import har` from {source}: {} request(s) in the order recorded,\nthe pauses between them as think_time. One virtual user, one iteration.",
            steps.len()
        ),
        test: Test {
            name: format!("Recorded session ({source})"),
            description: None,
            global: Global {
                base_url: base_url.trim_end_matches('/').to_string(),
                timeout: 30_000,
            },
            load: Load::once_each(1),
            scenarios: vec![Scenario {
                name: "recorded".into(),
                steps,
            }],
        },
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start: &str, time: f64, method: &str, url: &str, status: i64, mime: &str) -> String {
        format!(
            r#"{{"startedDateTime": "{start}", "time": {time}, "request": {{"method": "{method}", "url": "{url}", "headers": [{{"name": "Host", "value": "x"}}, {{"name": "Accept", "value": "application/json"}}]}}, "response": {{"status": {status}, "content": {{"mimeType": "{mime}"}}}}}}"#
        )
    }

    #[test]
    fn keeps_order_turns_gaps_into_think_times_and_filters_static_assets() {
        let entries = [
            entry(
                "2024-05-01T10:00:00.000Z",
                40.0,
                "GET",
                "http://shop.test/users",
                200,
                "application/json",
            ),
            entry(
                "2024-05-01T10:00:00.050Z",
                5.0,
                "GET",
                "http://shop.test/app.css",
                200,
                "text/css",
            ),
            entry(
                "2024-05-01T10:00:01.290Z",
                10.0,
                "POST",
                "http://shop.test/users?x=1",
                201,
                "application/json",
            ),
            entry(
                "2024-05-01T10:00:01.300Z",
                10.0,
                "GET",
                "http://cdn.test/logo",
                200,
                "image/png",
            ),
            entry(
                "2024-05-01T10:00:01.200+00:00",
                60.0,
                "GET",
                "http://api.other.test/ping",
                200,
                "application/json",
            ),
        ];
        let har = format!(
            r#"{{"log": {{"version": "1.2", "entries": [{}]}}}}"#,
            entries.join(",")
        );
        let g = import(&har, "s.har", &Options::default()).unwrap();
        let steps = &g.test.scenarios[0].steps;
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["GET /users", "GET /ping", "POST /users"]);
        assert_eq!(g.test.global.base_url, "http://shop.test");
        // 10:00:00.000 + 40 ms ends at .040; the next kept request starts at 01.200.
        assert_eq!(steps[0].think_time.as_deref(), Some("1160ms"));
        // 01.200 + 60 ms = 01.260; next at 01.290.
        assert_eq!(steps[1].think_time.as_deref(), Some("30ms"));
        assert_eq!(
            steps[2].think_time, None,
            "nothing follows the last request"
        );
        assert_eq!(steps[1].url.as_deref(), Some("http://api.other.test/ping"));
        assert_eq!(steps[2].path.as_deref(), Some("/users?x=1"));
        assert!(!steps[0].headers.contains_key("Host"));
        assert_eq!(
            steps[0].headers.get("Accept").map(String::as_str),
            Some("application/json")
        );
        assert!(g.notes[0].starts_with("2 static"), "{:?}", g.notes);
        let all = import(
            &har,
            "s.har",
            &Options {
                keep_static: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(all.test.scenarios[0].steps.len(), 5);
    }

    #[test]
    fn bad_recordings_are_refused_with_the_reason() {
        assert!(import("{}", "s", &Options::default())
            .unwrap_err()
            .to_string()
            .contains("log"));
        let bad_time = format!(
            r#"{{"log": {{"entries": [{}]}}}}"#,
            entry("yesterday", 1.0, "GET", "http://a.test/", 200, "")
        );
        assert!(import(&bad_time, "s", &Options::default())
            .unwrap_err()
            .to_string()
            .contains("startedDateTime"));
        let none = r#"{"log": {"entries": []}}"#;
        assert!(matches!(
            import(none, "s", &Options::default()),
            Err(ImportError::Empty(_))
        ));
    }
}
