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
pub enum Step {
    Http(HttpStep),
    Wait { name: String, duration: ThinkTime },
    Rendezvous(Rendezvous),
}

impl Step {
    /// The name shown in summaries.
    pub fn name(&self) -> &str {
        match self {
            Step::Http(h) => &h.name,
            Step::Wait { name, .. } => name,
            Step::Rendezvous(r) => &r.name,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Refused by name: a JavaScript expression in the TypeScript tool.
    #[serde(default, skip_serializing)]
    pub condition: Option<serde_norway::Value>,
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
        if raw.condition.is_some() {
            return Err(
                "`condition` is not supported: it is a JavaScript expression in the \
                 TypeScript tool, and Perfornium-rs runs no scripts"
                    .into(),
            );
        }
        let kind = raw.kind.clone().unwrap_or_else(|| {
            if raw.rendezvous.is_some() {
                "rendezvous".into()
            } else {
                "rest".into()
            }
        });
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
            "rest" | "soap" => raw.into_http(&kind).map(Step::Http),
            "wait" => raw.into_wait(),
            "rendezvous" => raw.into_rendezvous().map(Step::Rendezvous),
            other => Err(format!(
                "step type `{other}` is not supported by this program \
                 (supported: rest, soap, wait, rendezvous)"
            )),
        }
    }
}

impl RawStep {
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
        let target = match (self.path, self.url) {
            (Some(p), None) => p,
            (None, Some(u)) => u,
            (Some(_), Some(_)) => return Err("a step takes `path` or `url`, not both".into()),
            (None, None) => return Err(format!("a `{kind}` step needs `path` or `url`")),
        };
        let mut headers = self.headers;
        let body = if kind == "soap" {
            let env = self
                .envelope
                .or(self.body.as_ref().map(yaml_scalar))
                .ok_or("a `soap` step needs `envelope`")?;
            headers
                .entry("Content-Type".into())
                .or_insert_with(|| "text/xml; charset=utf-8".into());
            if let Some(a) = self.soap_action {
                headers.insert("SOAPAction".into(), a);
            }
            Some(env)
        } else if let Some(j) = self.json {
            headers
                .entry("Content-Type".into())
                .or_insert_with(|| "application/json".into());
            Some(serde_json::to_string(&j).map_err(|e| e.to_string())?)
        } else {
            match self.body {
                Some(serde_norway::Value::String(s)) => Some(s),
                Some(v @ (serde_norway::Value::Mapping(_) | serde_norway::Value::Sequence(_))) => {
                    headers
                        .entry("Content-Type".into())
                        .or_insert_with(|| "application/json".into());
                    Some(serde_json::to_string(&v).map_err(|e| e.to_string())?)
                }
                Some(v) => Some(yaml_scalar(&v)),
                None => None,
            }
        };
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
        })
    }
}

impl From<Step> for RawStep {
    fn from(step: Step) -> Self {
        match step {
            Step::Http(h) => RawStep {
                name: Some(h.name),
                kind: Some("rest".into()),
                method: Some(h.method.to_string()),
                path: Some(h.target),
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
        }
    }
}
