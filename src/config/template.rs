//! The syntax of `{{...}}` templates in paths, query values, headers, bodies, check values and
//! `variables`: literal text and expressions, split and parsed once when the test is compiled so a
//! request only looks values up. What an expression yields is the engine's business
//! (`engine::template`). A `{{` without its `}}` is literal text, as it always was.
//!
//! Expressions, as the TypeScript tool reads them (`src/utils/template.ts`):
//! - a variable (scenario/global `variables`, CSV columns, extracted values) by name, or a dotted
//!   path into one holding JSON: `{{user.address.city}}`, `{{items.0.id}}` (also `items[0]`); the
//!   prefixes `variables.`, `extracted_data.` and `csv.` name the same values;
//! - `{{vu_id}}` (1-based) and `{{iteration}}` (0-based), as in the TypeScript tool; `{{__VU}}`
//!   (0-based, as before) and `{{__ITER}}` (0-based); `{{env.NAME}}`; `{{csv:column}}`;
//! - `{{timestamp}}` (`file` format) and `{{timestamp:unix|iso|readable|file}}`;
//! - helpers `randomInt(min=1, max=100)`, `randomFloat(min=0, max=1, decimals=2)`,
//!   `randomChoice(a, b, ...)`, `uuid()` (or `uuid`), `isoDate(days=0)`;
//! - `{{faker.<path>}}` (see `config::faker`);
//! - `{{template:FILE|k=v,...}}`: a Handlebars file, read when the test is loaded (the file's text
//!   travels inside the test, so workers need no file) and rendered at every use.
//!
//! An unknown helper, faker path or timestamp format, a helper's wrong arguments and an unreadable
//! or malformed template file are errors (`validate` reports them with the step's line); a name
//! that is not set is left as written, as it always was.

use super::faker::FakerCall;
use std::sync::Arc;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// `expr` trimmed and parsed as `kind`; `raw` as written with its braces, shown when the
    /// expression does not resolve.
    Expr {
        expr: String,
        raw: String,
        kind: Expr,
    },
}

/// `{{timestamp:FORMAT}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// Milliseconds since the epoch.
    Unix,
    /// ISO 8601 in UTC with milliseconds (`2026-11-29T18:52:10.123Z`).
    Iso,
    /// Local date and time with `/`, `:` and spaces made `-` (`11-29-2026,-6-52-10-PM`).
    Readable,
    /// Local `YYYYMMDD-HHMMSS-mmm`, safe in file names (the default).
    File,
}

/// What an expression means.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A variable, or a dotted path into one (segments; an array index is a number segment).
    Var(Vec<String>),
    Env(String),
    Csv(String),
    /// `__VU`: the VU's number from 0.
    Vu,
    /// `vu_id`: the VU's number from 1 (the TypeScript tool's).
    VuId,
    /// `__ITER` and `iteration`: the VU's iteration from 0.
    Iteration,
    Uuid,
    Timestamp(TimeFormat),
    RandomInt(i64, i64),
    /// min, max, decimals.
    RandomFloat(f64, f64, u32),
    RandomChoice(Vec<String>),
    /// Now plus this many days, ISO 8601 in UTC.
    IsoDate(i64),
    Faker(FakerCall),
    File(Arc<FileTemplate>),
    /// Not valid (the message says why): left as written, and refused by [`Template::check`].
    Invalid(String),
}

impl Eq for Expr {}

/// A `{{template:FILE|k=v}}` reference.
pub struct FileTemplate {
    /// The file as written.
    pub file: String,
    /// `k=v` pairs (a value that parses as JSON is that JSON value, else text).
    pub data: Vec<(String, serde_json::Value)>,
    /// The file's text, once [`inline_files`] has read it.
    pub source: Option<String>,
    /// The engine's compiled form (its Handlebars registry), made at first use.
    pub compiled: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for FileTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTemplate")
            .field("file", &self.file)
            .field("data", &self.data)
            .field("read", &self.source.is_some())
            .finish()
    }
}

impl PartialEq for FileTemplate {
    fn eq(&self, o: &Self) -> bool {
        (&self.file, &self.data, &self.source) == (&o.file, &o.data, &o.source)
    }
}

/// The helpers `{{name(...)}}` may call.
const HELPERS: &[&str] = &[
    "randomInt",
    "randomFloat",
    "randomChoice",
    "uuid",
    "isoDate",
];

/// Where a template file's text is carried inside the reference once read: `|@` then base64.
const INLINE: &str = "|@";

impl Expr {
    /// Parses the text between `{{` and `}}` (trimmed).
    pub fn parse(expr: &str) -> Expr {
        Self::try_parse(expr).unwrap_or_else(Expr::Invalid)
    }

    fn try_parse(expr: &str) -> Result<Expr, String> {
        if let Some(spec) = expr.strip_prefix("template:") {
            return file_template(spec).map(|t| Expr::File(Arc::new(t)));
        }
        if let Some(col) = expr.strip_prefix("csv:") {
            return Ok(Expr::Csv(col.trim().to_string()));
        }
        if let Some(name) = expr.strip_prefix("env.") {
            return Ok(Expr::Env(name.trim().to_string()));
        }
        if let Some(path) = expr.strip_prefix("faker.") {
            return FakerCall::parse(path).map(Expr::Faker);
        }
        if expr == "timestamp" {
            return Ok(Expr::Timestamp(TimeFormat::File));
        }
        if let Some(f) = expr.strip_prefix("timestamp:") {
            return Ok(Expr::Timestamp(match f.trim() {
                "unix" => TimeFormat::Unix,
                "iso" => TimeFormat::Iso,
                "readable" => TimeFormat::Readable,
                "file" => TimeFormat::File,
                other => {
                    return Err(format!(
                        "`{{{{timestamp:{other}}}}}`: the format is unix, iso, readable or file"
                    ))
                }
            }));
        }
        match expr {
            "__VU" => return Ok(Expr::Vu),
            "vu_id" => return Ok(Expr::VuId),
            "__ITER" | "iteration" => return Ok(Expr::Iteration),
            "uuid" => return Ok(Expr::Uuid),
            _ => {}
        }
        if let Some(open) = expr.find('(') {
            let name = expr[..open].trim();
            if is_ident(name) {
                let Some(args) = expr[open + 1..].strip_suffix(')') else {
                    return Err(format!("`{{{{{expr}}}}}`: a call must end with `)`"));
                };
                return helper(name, args.trim());
            }
        }
        Ok(Expr::Var(var_path(expr)))
    }
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `a.b[0].c` → `a`, `b`, `0`, `c`; anything else is one name (looked up as written).
fn var_path(expr: &str) -> Vec<String> {
    if !expr.contains(['.', '[']) {
        return vec![expr.to_string()];
    }
    let mut out = Vec::new();
    for part in expr.split('.') {
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !name.is_empty() {
            out.push(name.to_string());
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return vec![expr.to_string()];
            };
            out.push(r[..end].trim().to_string());
            rest = &r[end + 1..];
        }
        if !rest.is_empty() || (name.is_empty() && !part.starts_with('[')) {
            return vec![expr.to_string()];
        }
    }
    out
}

/// TypeScript's argument reading: split at commas; quoted text, numbers, booleans, else text.
fn split_args(args: &str) -> Vec<String> {
    if args.is_empty() {
        return Vec::new();
    }
    args.split(',')
        .map(|a| {
            let a = a.trim();
            let unquoted = (a.len() >= 2
                && ((a.starts_with('"') && a.ends_with('"'))
                    || (a.starts_with('\'') && a.ends_with('\''))))
            .then(|| &a[1..a.len() - 1]);
            unquoted.unwrap_or(a).to_string()
        })
        .collect()
}

fn helper(name: &str, args: &str) -> Result<Expr, String> {
    let call = format!("{name}({args})");
    let a = split_args(args);
    let num = |i: usize, default: f64| -> Result<f64, String> {
        match a.get(i) {
            None => Ok(default),
            Some(t) => t
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("`{{{{{call}}}}}`: `{t}` is not a number")),
        }
    };
    let int = |i: usize, default: i64| -> Result<i64, String> {
        let n = num(i, default as f64)?;
        if n.fract() != 0.0 || n.abs() > 9.0e15 {
            return Err(format!("`{{{{{call}}}}}`: `{n}` is not a whole number"));
        }
        Ok(n as i64)
    };
    let at_most = |n: usize| {
        if a.len() > n {
            Err(format!(
                "`{{{{{call}}}}}`: `{name}` takes at most {n} arguments"
            ))
        } else {
            Ok(())
        }
    };
    match name {
        "randomInt" => {
            at_most(2)?;
            let (x, y) = (int(0, 1)?, int(1, 100)?);
            Ok(Expr::RandomInt(x.min(y), x.max(y)))
        }
        "randomFloat" => {
            at_most(3)?;
            let (x, y) = (num(0, 0.0)?, num(1, 1.0)?);
            let d = int(2, 2)?;
            if !(0..=15).contains(&d) {
                return Err(format!("`{{{{{call}}}}}`: decimals must be 0 to 15"));
            }
            Ok(Expr::RandomFloat(x.min(y), x.max(y), d as u32))
        }
        "randomChoice" => {
            if a.is_empty() {
                return Err(format!(
                    "`{{{{{call}}}}}`: `randomChoice` needs at least one value"
                ));
            }
            Ok(Expr::RandomChoice(a))
        }
        "uuid" => {
            at_most(0)?;
            Ok(Expr::Uuid)
        }
        "isoDate" => {
            at_most(1)?;
            let d = int(0, 0)?;
            if d.abs() > 365_000 {
                return Err(format!("`{{{{{call}}}}}`: {d} days is out of range"));
            }
            Ok(Expr::IsoDate(d))
        }
        other => {
            let best = HELPERS
                .iter()
                .map(|h| {
                    (
                        strsim::jaro_winkler(&other.to_lowercase(), &h.to_lowercase()),
                        h,
                    )
                })
                .max_by(|x, y| x.0.total_cmp(&y.0))
                .filter(|(s, _)| *s >= 0.7);
            let hint = match best {
                Some((_, h)) => format!(" (did you mean `{h}`?)"),
                None => String::new(),
            };
            Err(format!(
                "`{{{{{call}}}}}`: unknown function `{other}`{hint}; the functions are {}",
                HELPERS.join(", ")
            ))
        }
    }
}

/// `FILE|k=v,k2=v2` with, once read, `|@BASE64` (the file's text) at the end.
fn file_template(spec: &str) -> Result<FileTemplate, String> {
    use base64::Engine;
    let (spec, source) = match spec.rsplit_once(INLINE) {
        Some((s, b64)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("template `{s}`: the carried file text is damaged: {e}"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("template `{s}`: the file is not UTF-8"))?;
            (s, Some(text))
        }
        None => (spec, None),
    };
    let mut parts = spec.splitn(2, '|');
    let file = parts.next().unwrap_or_default().trim().to_string();
    if file.is_empty() {
        return Err("`{{template:...}}` needs a file name".into());
    }
    let mut data = Vec::new();
    for pair in parts.next().unwrap_or_default().split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("template `{file}`: `{pair}` is not `key=value`"));
        };
        let (k, v) = (k.trim(), v.trim());
        let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
        data.push((k.to_string(), value));
    }
    if let Some(src) = &source {
        handlebars::Template::compile(src)
            .map_err(|e| format!("template `{file}`: not a valid Handlebars template: {e}"))?;
    }
    Ok(FileTemplate {
        file,
        data,
        source,
        compiled: Default::default(),
    })
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Splits `text` into literal text and `{{expressions}}`.
    pub fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                break;
            };
            literal.push_str(&rest[..open]);
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            let expr = after[..close].trim().to_string();
            parts.push(Part::Expr {
                kind: Expr::parse(&expr),
                expr,
                raw: rest[open..open + 2 + close + 2].to_string(),
            });
            rest = &after[close + 2..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Self { parts }
    }

    /// The pieces in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The text, when nothing in it is templated.
    pub fn fixed(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// The first expression that cannot work. With `read`, a `{{template:...}}` whose file was
    /// not read (a test that did not come from [`super::load`]) is one.
    pub fn check(&self, read: bool) -> Result<(), String> {
        for p in &self.parts {
            match p {
                Part::Expr {
                    kind: Expr::Invalid(why),
                    ..
                } => return Err(why.clone()),
                Part::Expr {
                    kind: Expr::File(f),
                    ..
                } if read && f.source.is_none() => {
                    return Err(format!(
                        "template `{}` was not read: a test using `{{{{template:...}}}}` is loaded from its file, which reads the template files",
                        f.file
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Checks one templated text (`what` names it in the error).
pub fn check_text(what: &str, text: &str, read: bool) -> Result<(), String> {
    if !text.contains("{{") {
        return Ok(());
    }
    Template::parse(text)
        .check(read)
        .map_err(|e| format!("{what}: {e}"))
}

/// Every text of an HTTP step that is templated: `(where, text)`.
fn step_texts(h: &super::HttpStep) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = vec![("path".into(), h.target.as_str())];
    out.extend(
        h.headers
            .iter()
            .map(|(k, v)| (format!("headers.{k}"), v.as_str())),
    );
    out.extend(
        h.query
            .iter()
            .map(|(k, v)| (format!("query.{k}"), v.as_str())),
    );
    out.extend(
        h.form
            .iter()
            .map(|(k, v)| (format!("form.{k}"), v.as_str())),
    );
    out.extend(
        h.overrides
            .iter()
            .map(|(k, v)| (format!("overrides.{k}"), v.as_str())),
    );
    out.extend(h.multipart.iter().filter_map(|(k, v)| match v {
        super::MultipartValue::Text(t) => Some((format!("multipart.{k}"), t.as_str())),
        super::MultipartValue::File { .. } => None,
    }));
    if let Some(b) = &h.body {
        out.push(("body".into(), b));
    }
    if let Some(a) = &h.auth {
        for (k, v) in [
            ("username", &a.username),
            ("password", &a.password),
            ("token", &a.token),
        ] {
            if let Some(v) = v {
                out.push((format!("auth.{k}"), v));
            }
        }
    }
    if let Some(s) = &h.soap {
        json_texts("args", &s.args, &mut out);
    }
    out
}

/// The templated values of a step's checks (`text_contains` values, expected values), by check.
fn check_texts(h: &super::HttpStep) -> Vec<(String, serde_json::Value)> {
    h.checks
        .iter()
        .enumerate()
        .filter_map(|(k, c)| Some((format!("checks[{k}]"), serde_json::to_value(c).ok()?)))
        .collect()
}

fn json_texts<'a>(at: &str, v: &'a serde_json::Value, out: &mut Vec<(String, &'a str)>) {
    match v {
        serde_json::Value::String(s) => out.push((at.to_string(), s)),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                json_texts(&format!("{at}[{i}]"), x, out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                json_texts(&format!("{at}.{k}"), x, out);
            }
        }
        _ => {}
    }
}

/// Checks every template of an HTTP step (see [`Template::check`] for `read`).
pub fn check_step(h: &super::HttpStep, read: bool) -> Result<(), String> {
    for (what, text) in step_texts(h) {
        check_text(&format!("`{what}`"), text, read)?;
    }
    for (what, check) in check_texts(h) {
        let mut texts = Vec::new();
        json_texts(&what, &check, &mut texts);
        for (at, text) in texts {
            check_text(&at, text, read)?;
        }
    }
    Ok(())
}

/// Reads the files of `{{template:FILE...}}` references in the test's steps and variables (relative
/// to `dir`, the test file's, or else to the working directory, where the TypeScript tool looks)
/// and carries each file's text inside its reference, so the test travels to workers whole.
pub fn inline_files(test: &mut super::TestFile, dir: &std::path::Path) -> Result<(), String> {
    for (i, s) in test.scenarios.iter_mut().enumerate() {
        for (k, v) in s.variables.iter_mut() {
            if let serde_norway::Value::String(t) = v {
                inline_text(t, dir).map_err(|e| format!("scenarios[{i}].variables.{k}: {e}"))?;
            }
        }
        for (j, step) in s.steps.iter_mut().enumerate() {
            let super::Step::Http(h) = step else {
                continue;
            };
            let at = |e: String| format!("scenarios[{i}].steps[{j}]: {e}");
            let mut texts: Vec<&mut String> = vec![&mut h.target];
            texts.extend(h.headers.values_mut());
            texts.extend(h.query.values_mut());
            texts.extend(h.form.values_mut());
            texts.extend(h.overrides.values_mut());
            texts.extend(h.body.as_mut());
            texts.extend(h.multipart.values_mut().filter_map(|v| match v {
                super::MultipartValue::Text(t) => Some(t),
                super::MultipartValue::File { .. } => None,
            }));
            for t in texts {
                inline_text(t, dir).map_err(at)?;
            }
            if let Some(soap) = &mut h.soap {
                inline_json(&mut soap.args, dir).map_err(at)?;
            }
        }
    }
    Ok(())
}

fn inline_json(v: &mut serde_json::Value, dir: &std::path::Path) -> Result<(), String> {
    match v {
        serde_json::Value::String(s) => inline_text(s, dir),
        serde_json::Value::Array(a) => a.iter_mut().try_for_each(|x| inline_json(x, dir)),
        serde_json::Value::Object(o) => o.values_mut().try_for_each(|x| inline_json(x, dir)),
        _ => Ok(()),
    }
}

fn inline_text(text: &mut String, dir: &std::path::Path) -> Result<(), String> {
    use base64::Engine;
    const OPEN: &str = "{{template:";
    if !text.contains(OPEN) {
        return Ok(());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find(OPEN) {
        let after = &rest[open + OPEN.len()..];
        let Some(close) = after.find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let spec = &after[..close];
        out.push_str(OPEN);
        out.push_str(spec);
        if !spec.contains(INLINE) {
            let file = spec.split('|').next().unwrap_or_default().trim();
            let beside = dir.join(file);
            let path = if beside.exists() || std::path::Path::new(file).is_absolute() {
                beside
            } else {
                std::path::PathBuf::from(file)
            };
            let source = std::fs::read_to_string(&path)
                .map_err(|e| format!("template `{file}`: cannot read `{}`: {e}", path.display()))?;
            handlebars::Template::compile(&source)
                .map_err(|e| format!("template `{file}`: not a valid Handlebars template: {e}"))?;
            out.push_str(INLINE);
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(source));
        }
        out.push_str("}}");
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    *text = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(e: &str, raw: &str) -> Part {
        Part::Expr {
            expr: e.into(),
            raw: raw.into(),
            kind: Expr::parse(e),
        }
    }

    fn kind(e: &str) -> Expr {
        Expr::parse(e)
    }

    #[test]
    fn splits_text_and_expressions() {
        let t = Template::parse("/u/{{ id }}?v={{__VU}}");
        assert_eq!(
            t.parts(),
            [
                Part::Text("/u/".into()),
                expr("id", "{{ id }}"),
                Part::Text("?v=".into()),
                expr("__VU", "{{__VU}}"),
            ]
        );
        assert_eq!(Template::parse("/static").fixed(), Some("/static"));
        assert_eq!(Template::parse("").fixed(), Some(""));
        assert_eq!(Template::parse("a {{id").fixed(), Some("a {{id"));
        assert_eq!(
            Template::parse("{{a}} {{b").parts(),
            [expr("a", "{{a}}"), Part::Text(" {{b".into())]
        );
    }

    #[test]
    fn parses_every_expression_form() {
        assert_eq!(
            kind("user.address.city"),
            Expr::Var(vec!["user".into(), "address".into(), "city".into()])
        );
        assert_eq!(
            kind("items[0].id"),
            Expr::Var(vec!["items".into(), "0".into(), "id".into()])
        );
        assert_eq!(
            kind("extracted_data.token"),
            Expr::Var(vec!["extracted_data".into(), "token".into()])
        );
        assert_eq!(kind("#if x"), Expr::Var(vec!["#if x".into()]));
        assert_eq!(kind("vu_id"), Expr::VuId);
        assert_eq!(kind("iteration"), Expr::Iteration);
        assert_eq!(kind("timestamp"), Expr::Timestamp(TimeFormat::File));
        assert_eq!(kind("timestamp:iso"), Expr::Timestamp(TimeFormat::Iso));
        assert_eq!(kind("randomInt()"), Expr::RandomInt(1, 100));
        assert_eq!(kind("randomInt(9, 5)"), Expr::RandomInt(5, 9));
        assert_eq!(kind("randomFloat(1, 2, 3)"), Expr::RandomFloat(1.0, 2.0, 3));
        assert_eq!(kind("randomFloat()"), Expr::RandomFloat(0.0, 1.0, 2));
        assert_eq!(
            kind("randomChoice('a', \"b\", c)"),
            Expr::RandomChoice(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(kind("isoDate(-3)"), Expr::IsoDate(-3));
        assert_eq!(kind("isoDate()"), Expr::IsoDate(0));
        assert_eq!(kind("uuid()"), Expr::Uuid);
        assert!(matches!(kind("faker.person.firstName()"), Expr::Faker(_)));
        let Expr::File(f) = kind("template:order.json|id=7,name=x") else {
            panic!("a file template")
        };
        assert_eq!(f.file, "order.json");
        assert_eq!(
            f.data,
            [
                ("id".to_string(), serde_json::json!(7)),
                ("name".to_string(), serde_json::json!("x"))
            ]
        );
        assert!(f.source.is_none());
    }

    #[test]
    fn refuses_unknown_functions_formats_and_arguments() {
        let err = |e: &str| {
            Template::parse(&format!("{{{{{e}}}}}"))
                .check(false)
                .unwrap_err()
        };
        assert!(
            err("random(1,20)").contains("unknown function `random` (did you mean `randomInt`?)")
        );
        assert!(err("randomint(1,20)").contains("did you mean `randomInt`?"));
        assert!(err("timestamp:epoch").contains("unix, iso, readable or file"));
        assert!(err("randomInt(a, 3)").contains("`a` is not a number"));
        assert!(err("randomInt(1.5, 3)").contains("not a whole number"));
        assert!(err("uuid(3)").contains("at most 0"));
        assert!(err("randomChoice()").contains("at least one"));
        assert!(err("faker.person.fristName").contains("did you mean `faker.person.firstName`?"));
        assert!(Template::parse("{{template:x.json}}").check(false).is_ok());
        assert!(Template::parse("{{template:x.json}}")
            .check(true)
            .unwrap_err()
            .contains("was not read"));
        assert!(Template::parse("{{unset_name}} {{#each x}}")
            .check(true)
            .is_ok());
    }

    #[test]
    fn inlines_template_files_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.hbs"), "{\"a\": \"{{a}}\"}").unwrap();
        std::fs::write(dir.path().join("bad.hbs"), "{{#if x}}").unwrap();
        let mut text = "x {{template:t.hbs|a=1}} y".to_string();
        inline_text(&mut text, dir.path()).unwrap();
        let t = Template::parse(&text);
        t.check(true).unwrap();
        let Part::Expr {
            kind: Expr::File(f),
            ..
        } = &t.parts()[1]
        else {
            panic!("{text}")
        };
        assert_eq!(f.source.as_deref(), Some("{\"a\": \"{{a}}\"}"));
        let again = text.clone();
        inline_text(&mut text, dir.path()).unwrap();
        assert_eq!(text, again, "inlining twice changes nothing");
        let mut bad = "{{template:bad.hbs}}".to_string();
        assert!(inline_text(&mut bad, dir.path())
            .unwrap_err()
            .contains("not a valid Handlebars"));
        let mut missing = "{{template:nope.hbs}}".to_string();
        assert!(inline_text(&mut missing, dir.path())
            .unwrap_err()
            .contains("cannot read"));
    }
}
