//! `checks:` and `extract:` of an HTTP step: as written ([`Check`], [`Extract`]), and compiled
//! ([`CompiledCheck`], [`CompiledExtract`]) with their regexes, JSON paths, operators and status
//! lists parsed once. The engine runs only the compiled forms; the same compilation runs when a test
//! is loaded, so `validate` refuses a bad regex, path or operator instead of a run ignoring it.

use super::json_path::JsonPath;
use super::template::Template;
use super::xpath::XPath;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A check on a response; failures are counted, and do not stop the VU.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    Status {
        value: serde_norway::Value,
        #[serde(default)]
        description: Option<String>,
    },
    ResponseTime {
        value: serde_norway::Value,
        #[serde(default)]
        operator: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    JsonPath {
        value: String,
        #[serde(default)]
        operator: Option<String>,
        #[serde(default)]
        expected: Option<serde_norway::Value>,
        #[serde(default)]
        description: Option<String>,
    },
    TextContains {
        value: String,
        #[serde(default)]
        description: Option<String>,
    },
    /// An XPath over an XML response (see `config::xpath` for the subset and namespaces):
    /// existence, or `operator` + `expected` (`value` is accepted for `expected`).
    Xpath {
        expression: String,
        #[serde(default)]
        operator: Option<String>,
        #[serde(default)]
        expected: Option<serde_norway::Value>,
        #[serde(default)]
        value: Option<serde_norway::Value>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        namespaces: BTreeMap<String, String>,
        /// `should_exist: false` or `should_not_exist: true`: passes when nothing is selected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        should_exist: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        should_not_exist: Option<bool>,
        #[serde(default)]
        description: Option<String>,
    },
    /// Whether the response is a SOAP Fault: `expected: true` expects one (default `false`).
    SoapFault {
        #[serde(default, alias = "should_exist")]
        expected: Option<bool>,
        #[serde(default)]
        description: Option<String>,
    },
    /// A response header: present, or compared (`value` or `expected`, with `operator`).
    Header {
        name: String,
        #[serde(default)]
        value: Option<serde_norway::Value>,
        /// Shorthand for `operator: contains` + `expected`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contains: Option<String>,
        #[serde(default)]
        expected: Option<serde_norway::Value>,
        #[serde(default)]
        operator: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    /// A JavaScript expression over `result` (the response) and `context`: passes when truthy.
    Custom {
        script: String,
        #[serde(default)]
        description: Option<String>,
    },
}

/// Pulls a value out of a response into a variable for later steps.
/// `expression` may be written `path`; `default` may be any scalar (a number or boolean becomes its
/// text); `namespaces` serves `xpath`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ExtractKind,
    /// For `type: custom`, the JavaScript expression (written `script`).
    #[serde(alias = "path", alias = "script")]
    pub expression: String,
    #[serde(default, deserialize_with = "scalar_default")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespaces: BTreeMap<String, String>,
    /// `regex`: the capture group to take (default: the first, or the whole match without groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// `xpath`: `text` (the default), `number`, `xml` (the element as written) or `array` (every
    /// selected item's text, as a JSON array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_type: Option<ReturnType>,
}

/// What an `xpath` extraction stores.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReturnType {
    #[default]
    Text,
    Number,
    Xml,
    Array,
}

fn scalar_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_norway::Value>::deserialize(d)? {
        None | Some(serde_norway::Value::Null) => Ok(None),
        Some(
            v @ (serde_norway::Value::String(_)
            | serde_norway::Value::Number(_)
            | serde_norway::Value::Bool(_)),
        ) => Ok(Some(scalar_text(&v))),
        Some(_) => Err(serde::de::Error::custom(
            "`default` must be a string, number or boolean",
        )),
    }
}

/// Where an extracted value comes from (`jsonpath` is read as `json_path`; `header` takes the header's
/// name as `expression`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExtractKind {
    #[serde(alias = "jsonpath")]
    JsonPath,
    Regex,
    Xpath,
    Header,
    /// A JavaScript expression over `result` and `context`; its value is stored.
    Custom,
}

/// A comparison operator of a `response_time` or `json_path` check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    Contains,
}

impl Op {
    /// The operators as they may be written.
    const NAMES: &'static [(&'static str, Op)] = &[
        ("<", Op::Lt),
        ("lt", Op::Lt),
        ("<=", Op::Le),
        ("le", Op::Le),
        ("lte", Op::Le),
        (">", Op::Gt),
        ("gt", Op::Gt),
        (">=", Op::Ge),
        ("ge", Op::Ge),
        ("gte", Op::Ge),
        ("==", Op::Eq),
        ("=", Op::Eq),
        ("eq", Op::Eq),
        ("!=", Op::Ne),
        ("ne", Op::Ne),
        ("contains", Op::Contains),
    ];

    /// Parses an operator; an unknown one is an error (it used to act as `==`).
    pub fn parse(text: &str) -> Result<Op, String> {
        let t = text.trim();
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == t)
            .map(|(_, op)| *op)
            .ok_or_else(|| {
                format!(
                    "unknown operator `{t}` (use <, <=, >, >=, ==, !=, contains, \
                     or lt, le, gt, ge, eq, ne)"
                )
            })
    }

    /// Whether the operator orders values, and so needs numbers on both sides.
    fn orders(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    /// Compares numerically when both sides are numbers, as text otherwise; an ordering of two
    /// texts is false.
    pub fn compare(self, left: &str, right: &str) -> bool {
        if let (Ok(l), Ok(r)) = (left.trim().parse::<f64>(), right.trim().parse::<f64>()) {
            return self
                .compare_numbers(l, r)
                .unwrap_or_else(|| left.contains(right));
        }
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Contains => left.contains(right),
            _ => false,
        }
    }

    /// Compares two numbers; `None` for `contains`, which compares text.
    pub fn compare_numbers(self, l: f64, r: f64) -> Option<bool> {
        Some(match self {
            Op::Lt => l < r,
            Op::Le => l <= r,
            Op::Gt => l > r,
            Op::Ge => l >= r,
            Op::Eq => l == r,
            Op::Ne => l != r,
            Op::Contains => return None,
        })
    }
}

/// What a compiled check tests.
#[derive(Debug, Clone)]
pub enum CheckRule {
    /// The status is one of these.
    Status(Vec<u16>),
    /// The response time in milliseconds compared with a limit.
    Latency { op: Op, limit_ms: f64 },
    /// The path exists and, when given, its value compares with `expected` (a template).
    JsonPath {
        path: JsonPath,
        expected: Option<(Op, Template)>,
    },
    /// The body contains this text (a template).
    Contains(Template),
    /// The XPath selects something and, when given, its text compares with `expected`.
    XPath {
        path: XPath,
        expected: Option<(Op, Template)>,
        /// Passes when the XPath selects nothing.
        absent: bool,
    },
    /// The response is (`true`) or is not (`false`) a SOAP Fault.
    SoapFault(bool),
    /// A JavaScript expression is truthy (run in the VU's context).
    Custom(std::sync::Arc<super::script::Code>),
    /// The header is present and, when given, its value compares with `expected`.
    Header {
        name: http::HeaderName,
        expected: Option<(Op, Template)>,
    },
}

/// A check ready to run on every response.
#[derive(Debug, Clone)]
pub struct CompiledCheck {
    pub rule: CheckRule,
    /// The name failures are reported under ([`Check::label`]).
    pub label: String,
}

/// Where a compiled extraction looks.
#[derive(Debug, Clone)]
pub enum ExtractSource {
    JsonPath(JsonPath),
    /// The capture group `group` (when given), else the first, or the whole match when there is none.
    Regex(regex::Regex, Option<usize>),
    /// The text of the first node the XPath selects (or what `return_type` asks for).
    XPath(XPath, ReturnType),
    /// A response header's value.
    Header(http::HeaderName),
    /// A JavaScript expression's value (run in the VU's context).
    Custom(std::sync::Arc<super::script::Code>),
}

/// An extraction ready to run on every response.
#[derive(Debug, Clone)]
pub struct CompiledExtract {
    pub name: String,
    pub source: ExtractSource,
    pub default: Option<String>,
}

/// A scalar check value as text (`200`, `"<2000"`, `true`); empty for anything else.
fn scalar_text(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Splits `"<2000"` into (`"<"`, `"2000"`); a bare value means `<`.
fn split_op(text: &str) -> (&str, &str) {
    for op in ["<=", ">=", "!=", "==", "<", ">"] {
        if let Some(rest) = text.trim().strip_prefix(op) {
            return (op, rest.trim());
        }
    }
    ("<", text.trim())
}

/// A `response_time` limit in milliseconds: a bare number is milliseconds, a unit may be given.
fn limit_ms(text: &str) -> Result<f64, String> {
    let ms = match text.trim().parse::<f64>() {
        Ok(n) => n,
        Err(_) => super::duration::parse(text)
            .map(|d| d.as_secs_f64() * 1000.0)
            .map_err(|_| format!("response_time limit `{text}` is not a number of milliseconds"))?,
    };
    if ms.is_finite() && ms >= 0.0 {
        Ok(ms)
    } else {
        Err(format!(
            "response_time limit `{text}` must be a finite number of milliseconds, 0 or more"
        ))
    }
}

impl Check {
    /// The name a check is reported under: its `description`, or a short form of what it tests.
    pub fn label(&self) -> String {
        let (description, fallback) = match self {
            Check::Status { value, description } => {
                (description, format!("status == {}", scalar_text(value)))
            }
            Check::ResponseTime {
                value,
                operator,
                description,
            } => {
                let text = scalar_text(value);
                let (op, limit) = match operator {
                    Some(op) => (op.as_str(), text.as_str()),
                    None => split_op(&text),
                };
                (description, format!("response_time {op} {limit}"))
            }
            Check::JsonPath {
                value, description, ..
            } => (description, format!("json_path {value}")),
            Check::TextContains { value, description } => {
                (description, format!("text_contains {value}"))
            }
            Check::Custom {
                script,
                description,
            } => (description, format!("custom {}", script.trim())),
            Check::Xpath {
                expression,
                description,
                ..
            } => (description, format!("xpath {expression}")),
            Check::SoapFault {
                expected,
                description,
            } => (
                description,
                format!("soap_fault == {}", expected.unwrap_or(false)),
            ),
            Check::Header {
                name, description, ..
            } => (description, format!("header {name}")),
        };
        description.clone().unwrap_or(fallback)
    }

    /// Parses what can be parsed once: status lists, operators, limits and paths.
    pub fn compile(&self) -> Result<CompiledCheck, String> {
        let rule = match self {
            Check::Status { value, .. } => {
                let text = scalar_text(value);
                let codes = text
                    .split(['|', ','])
                    .map(|c| match c.trim().parse::<u16>() {
                        Ok(n) if (100..=599).contains(&n) => Ok(n),
                        _ => Err(format!(
                            "status check: `{text}` is not an HTTP status or a list of them \
                             (write 200, or \"200|201\")"
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                CheckRule::Status(codes)
            }
            Check::ResponseTime {
                value, operator, ..
            } => {
                let text = scalar_text(value);
                let (op, limit) = match operator {
                    Some(op) => (op.as_str(), text.as_str()),
                    None => split_op(&text),
                };
                let op = Op::parse(op)?;
                if op == Op::Contains {
                    return Err("response_time cannot use `contains`".into());
                }
                CheckRule::Latency {
                    op,
                    limit_ms: limit_ms(limit)?,
                }
            }
            Check::JsonPath {
                value,
                operator,
                expected,
                ..
            } => {
                let path = JsonPath::parse(value)?;
                let op = operator.as_deref().map(Op::parse).transpose()?;
                let expected = match (op, expected) {
                    (Some(op), None) => {
                        return Err(format!(
                            "json_path `{value}`: `operator` `{op:?}` needs `expected`"
                        ))
                    }
                    (op, Some(exp)) => {
                        let op = op.unwrap_or(Op::Eq);
                        let exp = scalar_text(exp);
                        if op.orders() && !exp.contains("{{") && exp.trim().parse::<f64>().is_err()
                        {
                            return Err(format!(
                                "json_path `{value}`: `{}` compares numbers, and `{exp}` is not one",
                                operator.as_deref().unwrap_or_default()
                            ));
                        }
                        Some((op, Template::parse(&exp)))
                    }
                    (None, None) => None,
                };
                CheckRule::JsonPath { path, expected }
            }
            Check::TextContains { value, .. } => CheckRule::Contains(Template::parse(value)),
            Check::Xpath {
                expression,
                operator,
                expected,
                value,
                namespaces,
                should_exist,
                should_not_exist,
                ..
            } => {
                let path = XPath::parse(expression, namespaces)?;
                let expected = match (expected, value) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "xpath `{expression}`: give `expected` or `value`, not both"
                        ))
                    }
                    (e, v) => e.as_ref().or(v.as_ref()),
                };
                let expected = comparison(&format!("xpath `{expression}`"), operator, expected)?;
                let absent = *should_exist == Some(false) || *should_not_exist == Some(true);
                if absent && expected.is_some() {
                    return Err(format!(
                        "xpath `{expression}`: a check that nothing exists takes no expected value"
                    ));
                }
                CheckRule::XPath {
                    path,
                    expected,
                    absent,
                }
            }
            Check::SoapFault { expected, .. } => CheckRule::SoapFault(expected.unwrap_or(false)),
            Check::Custom { script, .. } => CheckRule::Custom(super::script::Code::new(
                format!("check `{}`", self.label()),
                script.clone(),
                super::script::Form::Expr,
                super::script::DEFAULT_TIMEOUT,
            )),
            Check::Header {
                name,
                value,
                expected,
                operator,
                contains,
                ..
            } => {
                let header = http::HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| format!("header check: `{name}` is not a header name"))?;
                let expected = match (expected, value) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "header `{name}`: give `expected` or `value`, not both"
                        ))
                    }
                    (e, v) => e.as_ref().or(v.as_ref()),
                };
                let expected = match contains {
                    Some(_) if expected.is_some() || operator.is_some() => {
                        return Err(format!(
                        "header `{name}`: `contains` stands for `operator` + `expected`; give one"
                    ))
                    }
                    Some(text) => Some((Op::Contains, Template::parse(text))),
                    None => comparison(&format!("header `{name}`"), operator, expected)?,
                };
                CheckRule::Header {
                    name: header,
                    expected,
                }
            }
        };
        Ok(CompiledCheck {
            rule,
            label: self.label(),
        })
    }
}

/// An `operator` and an expected value, for checks where `exists` (or neither) means presence.
fn comparison(
    what: &str,
    operator: &Option<String>,
    expected: Option<&serde_norway::Value>,
) -> Result<Option<(Op, Template)>, String> {
    match (operator.as_deref().map(str::trim), expected) {
        (Some("exists"), None) | (None, None) => Ok(None),
        (Some("exists"), Some(_)) => Err(format!("{what}: `exists` takes no expected value")),
        (Some(op), None) => Err(format!("{what}: `operator` `{op}` needs `expected`")),
        (op, Some(exp)) => {
            let op = op.map(Op::parse).transpose()?.unwrap_or(Op::Eq);
            let exp = scalar_text(exp);
            if op.orders() && !exp.contains("{{") && exp.trim().parse::<f64>().is_err() {
                return Err(format!(
                    "{what}: `{op:?}` compares numbers, and `{exp}` is not one"
                ));
            }
            Ok(Some((op, Template::parse(&exp))))
        }
    }
}

impl Extract {
    /// Compiles the regex or parses the path.
    pub fn compile(&self) -> Result<CompiledExtract, String> {
        if self.group.is_some() && self.kind != ExtractKind::Regex {
            return Err(format!(
                "extract `{}`: `group` serves only `regex` extractions",
                self.name
            ));
        }
        if self.return_type.is_some() && self.kind != ExtractKind::Xpath {
            return Err(format!(
                "extract `{}`: `return_type` serves only `xpath` extractions",
                self.name
            ));
        }
        if !self.namespaces.is_empty() && self.kind != ExtractKind::Xpath {
            return Err(format!(
                "extract `{}`: `namespaces` serves only `xpath` extractions",
                self.name
            ));
        }
        let source = match self.kind {
            ExtractKind::Xpath => ExtractSource::XPath(
                XPath::parse(&self.expression, &self.namespaces)
                    .map_err(|e| format!("extract `{}`: {e}", self.name))?,
                self.return_type.unwrap_or_default(),
            ),
            ExtractKind::Header => ExtractSource::Header(
                http::HeaderName::from_bytes(self.expression.trim().as_bytes()).map_err(|_| {
                    format!(
                        "extract `{}`: `{}` is not a header name",
                        self.name, self.expression
                    )
                })?,
            ),
            ExtractKind::JsonPath => ExtractSource::JsonPath(JsonPath::parse(&self.expression)?),
            ExtractKind::Custom => ExtractSource::Custom(super::script::Code::new(
                format!("extract `{}`", self.name),
                self.expression.clone(),
                super::script::Form::Expr,
                super::script::DEFAULT_TIMEOUT,
            )),
            ExtractKind::Regex => {
                let re = regex::Regex::new(&self.expression)
                    .map_err(|e| format!("extract `{}`: bad regex: {e}", self.name))?;
                if let Some(g) = self.group {
                    if g >= re.captures_len() {
                        return Err(format!(
                            "extract `{}`: `group: {g}`, and the regex has {} group(s)",
                            self.name,
                            re.captures_len() - 1
                        ));
                    }
                }
                ExtractSource::Regex(re, self.group)
            }
        };
        Ok(CompiledExtract {
            name: self.name.clone(),
            source,
            default: self.default.clone(),
        })
    }
}
