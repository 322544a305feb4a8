//! Runs the compiled checks and extractions of a step on a response (see `config::check` for what
//! they are and how they are compiled). Nothing here parses the test: regexes, JSON paths, operators
//! and status lists were parsed once when the run was set up.

use super::template::{expand, Vars};
use crate::config::{CheckRule, CompiledCheck, CompiledExtract, ExtractSource, ReturnType};
use serde_json::Value;
/// A response as checks see it.
pub struct Response<'a> {
    pub status: u16,
    pub elapsed_ms: f64,
    pub body: &'a str,
    pub headers: Option<&'a http::HeaderMap>,
    /// Parsed once, lazily, by the first check or extraction that needs JSON.
    pub json: std::cell::OnceCell<Option<Value>>,
    /// Parsed once, lazily, by the first check or extraction that needs XML.
    xml: std::cell::OnceCell<Option<roxmltree::Document<'a>>>,
}

impl<'a> Response<'a> {
    pub fn new(status: u16, elapsed_ms: f64, body: &'a str) -> Self {
        Self {
            status,
            elapsed_ms,
            body,
            headers: None,
            json: std::cell::OnceCell::new(),
            xml: std::cell::OnceCell::new(),
        }
    }

    /// With the response's headers, for `header` checks and extractions.
    pub fn with_headers(mut self, headers: &'a http::HeaderMap) -> Self {
        self.headers = Some(headers);
        self
    }

    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_str(self.body).ok())
            .as_ref()
    }

    fn xml(&self) -> Option<&roxmltree::Document<'a>> {
        self.xml
            .get_or_init(|| roxmltree::Document::parse(self.body).ok())
            .as_ref()
    }

    fn header(&self, name: &http::HeaderName) -> Option<String> {
        self.headers?
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// Whether the body is a SOAP envelope whose Body holds a Fault (SOAP 1.1 or 1.2).
    pub fn is_soap_fault(&self) -> bool {
        // Cheap test first: most responses are not faults.
        if !self.body.contains("Fault") {
            return false;
        }
        let Some(doc) = self.xml() else { return false };
        let soap = |n: &roxmltree::Node| {
            matches!(n.tag_name().namespace(), Some(SOAP11_NS) | Some(SOAP12_NS))
        };
        let root = doc.root_element();
        soap(&root)
            && root.tag_name().name() == "Envelope"
            && root
                .children()
                .filter(|b| b.is_element() && soap(b) && b.tag_name().name() == "Body")
                .flat_map(|b| b.children())
                .any(|f| f.is_element() && soap(&f) && f.tag_name().name() == "Fault")
    }
}

/// The SOAP 1.1 envelope namespace.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP 1.2 envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether one check passes on `resp` (a failure is counted under the check's `label`). Expected
/// values are templated with the VU's variables, so a check can compare against a CSV column or an
/// extracted value.
pub fn passes(check: &CompiledCheck, resp: &Response, vars: &Vars) -> bool {
    match &check.rule {
        CheckRule::Status(codes) => codes.contains(&resp.status),
        CheckRule::Latency { op, limit_ms } => op
            .compare_numbers(resp.elapsed_ms, *limit_ms)
            .unwrap_or(false),
        CheckRule::JsonPath { path, expected } => {
            match (resp.json().and_then(|j| path.lookup(j)), expected) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(v), Some((op, exp))) => op.compare(&as_text(&v), &expand(exp, vars)),
            }
        }
        CheckRule::Contains(text) => resp.body.contains(expand(text, vars).as_ref()),
        CheckRule::XPath {
            path,
            expected,
            absent,
        } => {
            let Some(doc) = resp.xml() else {
                return false;
            };
            if *absent {
                return !path.exists(doc);
            }
            match expected {
                None => path.exists(doc),
                Some((op, exp)) => path
                    .text(doc)
                    .is_some_and(|v| op.compare(&v, &expand(exp, vars))),
            }
        }
        CheckRule::SoapFault(expected) => resp.is_soap_fault() == *expected,
        CheckRule::Header { name, expected } => match (resp.header(name), expected) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some((op, exp))) => op.compare(&v, &expand(exp, vars)),
        },
        CheckRule::Custom(code) => match script(code, resp, vars) {
            Ok(v) => truthy(&v),
            Err(e) => {
                // As in the TypeScript tool, a throwing check fails; the message is logged.
                tracing::warn!(error = %e, "custom check failed to run");
                false
            }
        },
    }
}

/// JavaScript truthiness of a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The response as a custom check's or extractor's `result`: `status`, `body` (text), `data`
/// (the parsed JSON, else the text), `headers` (lower-case names) and `response_time` (ms).
pub fn result_json(resp: &Response) -> Value {
    let headers: serde_json::Map<String, Value> = resp
        .headers
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "status": resp.status,
        "success": (200..400).contains(&resp.status),
        "body": resp.body,
        "data": resp.json().cloned().unwrap_or_else(|| Value::String(resp.body.to_string())),
        "headers": headers,
        "response_time": resp.elapsed_ms,
        "duration": resp.elapsed_ms,
    })
}

fn script(
    code: &std::sync::Arc<crate::script::Code>,
    resp: &Response,
    vars: &Vars,
) -> Result<Value, crate::script::ScriptError> {
    let input = crate::script::Input {
        variables: Some(&vars.values),
        vu: vars.vu,
        iteration: vars.iteration,
        result: Some(result_json(resp)),
        ..Default::default()
    };
    vars.js.call(code, &input).map(|o| o.value)
}

/// [`run_extract`], with the VU's variables for a `custom` extractor.
pub fn run_extract_in(ex: &CompiledExtract, resp: &Response, vars: &Vars) -> Option<String> {
    if let ExtractSource::Custom(code) = &ex.source {
        let found = match script(code, resp, vars) {
            Ok(v) => crate::script::as_text(&v),
            Err(e) => {
                tracing::warn!(error = %e, "custom extractor failed to run");
                None
            }
        };
        return found.or_else(|| ex.default.clone());
    }
    run_extract(ex, resp)
}

/// Runs one extraction; falls back to `default`, and yields `None` when there is neither.
pub fn run_extract(ex: &CompiledExtract, resp: &Response) -> Option<String> {
    let found = match &ex.source {
        ExtractSource::JsonPath(path) => resp
            .json()
            .and_then(|j| path.lookup(j))
            .map(|v| as_text(&v)),
        ExtractSource::Regex(re, group) => re
            .captures(resp.body)
            .and_then(|c| match group {
                Some(g) => c.get(*g),
                None => c.get(1).or_else(|| c.get(0)),
            })
            .map(|m| m.as_str().to_string()),
        ExtractSource::XPath(path, kind) => resp.xml().and_then(|d| match kind {
            ReturnType::Text => path.text(d),
            ReturnType::Number => {
                path.text(d)
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .map(|n| {
                        if n.fract() == 0.0 && n.abs() < 1e15 {
                            format!("{}", n as i64)
                        } else {
                            n.to_string()
                        }
                    })
            }
            ReturnType::Xml => path.xml(d),
            ReturnType::Array => {
                let all = path.texts(d);
                (!all.is_empty()).then(|| Value::from(all).to_string())
            }
        }),
        ExtractSource::Header(name) => resp.header(name),
        // Needs the VU's context: see `run_extract_in`.
        ExtractSource::Custom(_) => None,
    };
    found.or_else(|| ex.default.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Check, Extract, ExtractKind};

    fn check(yaml: &str) -> CompiledCheck {
        serde_norway::from_str::<Check>(yaml)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn checks_pass_and_fail() {
        let body = r#"{"users":[{"id":1}],"ok":true}"#;
        let r = Response::new(200, 12.0, body);
        let mut vars = Vars::default();
        vars.values.insert("word".into(), "users".into());
        let passes = |c: &CompiledCheck, r: &Response| passes(c, r, &vars);
        assert!(passes(&check("{type: status, value: 200}"), &r));
        assert!(passes(&check("{type: status, value: '201|200'}"), &r));
        assert!(!passes(&check("{type: status, value: 201}"), &r));
        assert!(passes(&check("{type: response_time, value: '<2000'}"), &r));
        assert!(passes(&check("{type: response_time, value: '<2s'}"), &r));
        assert!(!passes(
            &check("{type: response_time, value: 10, operator: lt}"),
            &r
        ));
        assert!(passes(
            &check("{type: json_path, value: '$.users[0].id'}"),
            &r
        ));
        assert!(passes(
            &check("{type: json_path, value: '$.users.length', operator: '>', expected: 0}"),
            &r
        ));
        assert!(!passes(&check("{type: json_path, value: '$.nope'}"), &r));
        assert!(passes(&check("{type: text_contains, value: users}"), &r));
        assert!(passes(
            &check("{type: text_contains, value: '{{word}}'}"),
            &r
        ));
        assert!(!passes(
            &check("{type: json_path, value: '$.ok', expected: '{{yes}}'}"),
            &r
        ));
        let described = check("{type: text_contains, value: zzz, description: has zzz}");
        assert!(!passes(&described, &r));
        assert_eq!(described.label, "has zzz");
    }

    #[test]
    fn bad_checks_do_not_compile() {
        let refused = |yaml: &str| {
            serde_norway::from_str::<Check>(yaml)
                .unwrap()
                .compile()
                .unwrap_err()
        };
        assert!(refused("{type: response_time, value: 10, operator: '=<'}")
            .contains("unknown operator `=<`"));
        assert!(
            refused("{type: json_path, value: '$.a', operator: '~', expected: 1}")
                .contains("unknown operator")
        );
        assert!(refused("{type: json_path, value: '$.a[0', expected: 1}").contains("not closed"));
        assert!(
            refused("{type: json_path, value: '$.a', operator: '<', expected: abc}")
                .contains("compares numbers")
        );
        assert!(refused("{type: json_path, value: '$.a', operator: '<'}").contains("expected"));
        assert!(refused("{type: status, value: '2xx'}").contains("not an HTTP status"));
        assert!(refused("{type: response_time, value: '<soon'}").contains("milliseconds"));
    }

    #[test]
    fn extraction_with_default() {
        let r = Response::new(200, 1.0, r#"{"id": 77, "token": "abc"} session=xyz;"#);
        let ex = |kind, expr: &str, default: Option<&str>| {
            Extract {
                name: "x".into(),
                kind,
                expression: expr.into(),
                default: default.map(String::from),
                namespaces: Default::default(),
                group: None,
                return_type: None,
            }
            .compile()
            .unwrap()
        };
        // Not valid JSON as a whole, so JSON extraction falls back.
        assert_eq!(
            run_extract(&ex(ExtractKind::JsonPath, "$.id", Some("d")), &r).as_deref(),
            Some("d")
        );
        assert_eq!(
            run_extract(&ex(ExtractKind::Regex, "session=([^;]+)", None), &r).as_deref(),
            Some("xyz")
        );
        let r = Response::new(200, 1.0, r#"{"id": 77}"#);
        assert_eq!(
            run_extract(&ex(ExtractKind::JsonPath, "$.id", None), &r).as_deref(),
            Some("77")
        );
        assert_eq!(
            run_extract(&ex(ExtractKind::JsonPath, "$.nope", None), &r),
            None
        );
        let bad = Extract {
            name: "x".into(),
            kind: ExtractKind::Regex,
            expression: "(unclosed".into(),
            default: None,
            namespaces: Default::default(),
            group: None,
            return_type: None,
        };
        assert!(bad.compile().unwrap_err().contains("bad regex"));
    }

    #[test]
    fn xml_header_and_fault_checks_and_extractions() {
        let body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
            <AddResponse xmlns="http://tempuri.org/"><AddResult>12</AddResult></AddResponse>
            </s:Body></s:Envelope>"#;
        let mut headers = http::HeaderMap::new();
        headers.insert("x-request-id", "abc-1".parse().unwrap());
        let r = Response::new(200, 1.0, body).with_headers(&headers);
        let vars = Vars::default();
        let ok = |yaml: &str| passes(&check(yaml), &r, &vars);
        assert!(ok("{type: xpath, expression: '//AddResult'}"));
        assert!(ok(
            "{type: xpath, expression: '//AddResult/text()', expected: 12}"
        ));
        assert!(ok("{type: xpath, expression: '//AddResult', value: '12'}"));
        assert!(ok("{type: xpath, expression: '//t:AddResult', operator: '>', expected: 11, namespaces: {t: 'http://tempuri.org/'}}"));
        assert!(!ok(
            "{type: xpath, expression: '//AddResult', expected: 13}"
        ));
        assert!(!ok("{type: xpath, expression: '//Missing'}"));
        assert!(ok("{type: soap_fault}"));
        assert!(!ok("{type: soap_fault, expected: true}"));
        assert!(ok("{type: header, name: X-Request-Id}"));
        assert!(ok("{type: header, name: x-request-id, value: abc-1}"));
        assert!(ok(
            "{type: header, name: x-request-id, operator: contains, expected: abc}"
        ));
        assert!(!ok("{type: header, name: x-other}"));
        let fault = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>bad</faultstring></soap:Fault></soap:Body></soap:Envelope>"#;
        let f = Response::new(500, 1.0, fault);
        assert!(f.is_soap_fault());
        assert!(passes(
            &check("{type: soap_fault, expected: true}"),
            &f,
            &vars
        ));

        let ex = |yaml: &str| {
            let x: Extract = serde_norway::from_str(yaml).unwrap();
            run_extract(&x.compile().unwrap(), &r)
        };
        assert_eq!(
            ex("{name: s, type: xpath, expression: '//AddResult/text()'}").as_deref(),
            Some("12")
        );
        assert_eq!(
            ex("{name: s, type: header, expression: X-Request-Id}").as_deref(),
            Some("abc-1")
        );
        assert_eq!(
            ex("{name: s, type: header, path: x-none, default: 0}").as_deref(),
            Some("0")
        );
        assert_eq!(
            ex("{name: s, type: jsonpath, path: '$.a', default: true}").as_deref(),
            Some("true")
        );
        assert_eq!(
            ex("{name: s, type: xpath, expression: '//Nope', default: 1.5}").as_deref(),
            Some("1.5")
        );
    }

    #[test]
    fn bad_xml_checks_are_refused() {
        let refused = |yaml: &str| {
            serde_norway::from_str::<Check>(yaml)
                .unwrap()
                .compile()
                .unwrap_err()
        };
        assert!(
            refused("{type: xpath, expression: '//x:A'}").contains("prefix `x` is not declared")
        );
        assert!(refused("{type: xpath, expression: '//A[', expected: 1}").contains("XPath"));
        assert!(
            refused("{type: xpath, expression: '//A', expected: 1, value: 2}").contains("not both")
        );
        assert!(refused("{type: header, name: 'a b'}").contains("not a header name"));
        assert!(refused("{type: header, name: a, operator: '<'}").contains("needs `expected`"));
        let x: Result<Extract, _> =
            serde_norway::from_str("{name: s, type: regex, expression: a, default: [1]}");
        assert!(x
            .unwrap_err()
            .to_string()
            .contains("string, number or boolean"));
        let x: Extract =
            serde_norway::from_str("{name: s, type: regex, expression: a, namespaces: {a: b}}")
                .unwrap();
        assert!(x.compile().unwrap_err().contains("only `xpath`"));
        let x: Extract =
            serde_norway::from_str("{name: s, type: regex, expression: '(a)', group: 2}").unwrap();
        assert!(x.compile().unwrap_err().contains("has 1 group(s)"));
    }
}
