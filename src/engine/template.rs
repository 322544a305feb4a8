//! `{{...}}` templating for paths, headers, query values, bodies and check values (parsed once by
//! `config::template`, which lists the expressions; expanded here for every request). A VU's
//! variables (scenario `variables`, CSV columns, extracted values) resolve by name or by a dotted
//! path into a JSON value; a variable whose value is itself a template (`order_id:
//! "{{faker.string.uuid}}"`) is rendered where it is used, once per request (every use within one
//! request sees the same value, as in the TypeScript tool, and the next request a new one). An
//! unknown name is left as written so the request shows what was not resolved.

use super::faker;
use crate::config::faker::Locale;
use crate::config::template::{Expr, FileTemplate, Part, Template, TimeFormat};
use fake::rand::rngs::SmallRng;
use fake::rand::{RngExt, SeedableRng};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The values a VU can template with.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: HashMap<String, String>,
    pub vu: u64,
    pub iteration: u64,
    /// `global.faker.seed`: generated values (faker, `randomInt`, `uuid`, ...) then repeat run to
    /// run, drawn from the seed, the VU, its iteration and the draw's order within it.
    pub seed: Option<u64>,
    pub draws: Draws,
    /// Whether this VU already took a CSV row (for `change_policy: each_vu`).
    pub has_row: bool,
    /// `global.faker.locale`.
    pub locale: Locale,
    /// The scenario's variables whose values are templates, parsed once: name → (text, template).
    pub templated: Arc<HashMap<String, (String, Template)>>,
    /// Those variables as rendered for the current request (see [`Vars::next_request`]).
    pub memo: Memo,
    /// The version of the run's global variables last copied into `values`.
    pub globals_seen: u64,
    /// The VU's JavaScript context, created at its first script (never for a test without).
    pub js: crate::script::Slot,
}

/// How many seeded values a VU has drawn (atomic so a VU's future stays `Send`).
#[derive(Debug, Default)]
pub struct Draws(std::sync::atomic::AtomicU64);

impl Clone for Draws {
    fn clone(&self) -> Self {
        Draws(std::sync::atomic::AtomicU64::new(
            self.0.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

/// Templated variables already rendered for this request.
#[derive(Debug, Default)]
pub struct Memo(std::sync::Mutex<HashMap<String, String>>);

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl Vars {
    /// The generator for one draw: seeded when the test gives a seed, else random.
    pub fn rng(&self) -> SmallRng {
        match self.seed {
            None => SmallRng::seed_from_u64(rand::random::<u64>()),
            Some(seed) => {
                let n = self
                    .draws
                    .0
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mix = seed
                    ^ self.vu.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ self.iteration.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
                    ^ n.wrapping_mul(0x1656_67B1_9E37_79F9);
                SmallRng::seed_from_u64(mix)
            }
        }
    }

    /// A new request: templated variables render anew at their next use.
    pub fn next_request(&mut self) {
        if !self.templated.is_empty() {
            self.memo.0.get_mut().map(HashMap::clear).ok();
        }
    }

    /// Parses the scenario's variables that are templates (done once per scenario, shared).
    pub fn templates_of(
        values: &HashMap<String, String>,
    ) -> Arc<HashMap<String, (String, Template)>> {
        Arc::new(
            values
                .iter()
                .filter(|(_, v)| v.contains("{{"))
                .map(|(k, v)| (k.clone(), (v.clone(), Template::parse(v))))
                .collect(),
        )
    }
}

/// How deep a variable's template may refer to other templated variables.
const MAX_DEPTH: u8 = 4;

/// Renders `text`, borrowing it unchanged when it has no `{{`. Parses on every call: the engine
/// uses [`expand`] on templates parsed once, this is for one-off texts.
pub fn render<'a>(text: &'a str, vars: &Vars) -> Cow<'a, str> {
    if !text.contains("{{") {
        return Cow::Borrowed(text);
    }
    Cow::Owned(expand(&Template::parse(text), vars).into_owned())
}

/// Renders a parsed template, borrowing it when nothing in it is templated.
pub fn expand<'t>(template: &'t Template, vars: &Vars) -> Cow<'t, str> {
    expand_at(template, vars, 0)
}

fn expand_at<'t>(template: &'t Template, vars: &Vars, depth: u8) -> Cow<'t, str> {
    if let Some(text) = template.fixed() {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    for part in template.parts() {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Expr { expr, raw, kind } => match resolve(expr, kind, vars, depth) {
                Some(v) => out.push_str(&v),
                None => out.push_str(raw),
            },
        }
    }
    Cow::Owned(out)
}

/// A variable's value, its template rendered (once per request).
fn variable(name: &str, vars: &Vars, depth: u8) -> Option<String> {
    let value = vars.values.get(name)?;
    if !value.contains("{{") || depth >= MAX_DEPTH {
        return Some(value.clone());
    }
    if let Some(v) = vars.memo.0.lock().ok().and_then(|m| m.get(name).cloned()) {
        return Some(v);
    }
    let rendered = match vars.templated.get(name) {
        Some((text, t)) if text == value => expand_at(t, vars, depth + 1).into_owned(),
        _ => expand_at(&Template::parse(value), vars, depth + 1).into_owned(),
    };
    if let Ok(mut m) = vars.memo.0.lock() {
        m.insert(name.to_string(), rendered.clone());
    }
    Some(rendered)
}

/// `{{a.b.c}}`: the whole text as a name first, then the first segment's value read as JSON and
/// walked (object keys, array indexes). `variables.`, `extracted_data.` and `csv.` name the same
/// values (unless a variable has that name).
fn path(expr: &str, segments: &[String], vars: &Vars, depth: u8) -> Option<String> {
    if let [name] = segments {
        return variable(name, vars, depth);
    }
    if let Some(v) = vars.values.get(expr) {
        return Some(v.clone());
    }
    let mut segs = segments;
    if let [root, rest @ ..] = segs {
        if matches!(root.as_str(), "variables" | "extracted_data" | "csv")
            && !vars.values.contains_key(root.as_str())
        {
            segs = rest;
        }
    }
    let (first, rest) = segs.split_first()?;
    let value = variable(first, vars, depth)?;
    if rest.is_empty() {
        return Some(value);
    }
    let json: serde_json::Value = serde_json::from_str(&value).ok()?;
    let mut cur = &json;
    for key in rest {
        cur = match cur {
            serde_json::Value::Object(o) => o.get(key.as_str())?,
            serde_json::Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(match cur {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn resolve(expr: &str, kind: &Expr, vars: &Vars, depth: u8) -> Option<String> {
    // A variable named like a built-in wins (the TypeScript context spreads variables last).
    let own = || vars.values.get(expr).cloned();
    match kind {
        Expr::Var(segments) => path(expr, segments, vars, depth),
        Expr::Env(name) => std::env::var(name).ok(),
        Expr::Csv(col) => vars.values.get(col.as_str()).cloned(),
        Expr::Vu => own().or_else(|| Some(vars.vu.to_string())),
        Expr::VuId => own().or_else(|| Some((vars.vu + 1).to_string())),
        Expr::Iteration => own().or_else(|| Some(vars.iteration.to_string())),
        Expr::Uuid => own().or_else(|| Some(faker::uuid(&mut vars.rng()))),
        Expr::Timestamp(f) => own().or_else(|| Some(timestamp(*f))),
        Expr::RandomInt(lo, hi) => Some(vars.rng().random_range(*lo..=*hi).to_string()),
        Expr::RandomFloat(lo, hi, d) => {
            let x = lo + vars.rng().random_range(0.0..=1.0) * (hi - lo);
            Some(format!("{x:.*}", *d as usize))
        }
        Expr::RandomChoice(list) => {
            Some(list[vars.rng().random_range(0..list.len().max(1))].clone())
        }
        Expr::IsoDate(days) => Some(iso_date(*days)),
        Expr::Faker(call) => Some(faker::generate(call, vars.locale, &mut vars.rng())),
        Expr::File(f) => render_file(f, vars, depth),
        Expr::Invalid(_) => None,
    }
}

/// `{{timestamp:FORMAT}}` now.
pub fn timestamp(f: TimeFormat) -> String {
    let now = chrono::Local::now();
    match f {
        TimeFormat::Unix => now.timestamp_millis().to_string(),
        TimeFormat::Iso => now
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        TimeFormat::Readable => now
            .format("%-m/%-d/%Y, %-I:%M:%S %p")
            .to_string()
            .replace(['/', ' ', ':'], "-"),
        TimeFormat::File => now.format("%Y%m%d-%H%M%S-%3f").to_string(),
    }
}

/// Now plus `days`, ISO 8601 in UTC with milliseconds.
fn iso_date(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

thread_local! {
    /// The generator and locale the Handlebars helpers of the template being rendered draw from.
    static DRAW: std::cell::RefCell<Option<(SmallRng, Locale)>> = const { std::cell::RefCell::new(None) };
}

fn with_draw<T>(f: impl FnOnce(&mut SmallRng, Locale) -> T) -> T {
    DRAW.with(|d| {
        let mut d = d.borrow_mut();
        let (rng, locale) =
            d.get_or_insert_with(|| (SmallRng::seed_from_u64(rand::random()), Locale::En));
        f(rng, *locale)
    })
}

mod helpers {
    use super::*;
    use handlebars::handlebars_helper;
    use serde_json::Value;

    handlebars_helper!(faker_value: |path: str| {
        match crate::config::faker::FakerCall::parse(path) {
            Ok(call) => Value::String(with_draw(|rng, l| faker::generate(&call, l, rng))),
            Err(_) => Value::Null,
        }
    });
    handlebars_helper!(random_int: |min: i64, max: i64| {
        let (lo, hi) = (min.min(max), min.max(max));
        Value::from(with_draw(|rng, _| rng.random_range(lo..=hi)))
    });
    handlebars_helper!(random_choice: |*args| {
        if args.is_empty() {
            Value::Null
        } else {
            with_draw(|rng, _| args[rng.random_range(0..args.len())].clone())
        }
    });
    handlebars_helper!(uuid: | | Value::String(with_draw(|rng, _| faker::uuid(rng))));
    handlebars_helper!(timestamp: |*args| {
        let f = match args.first().and_then(|v| v.as_str()) {
            Some("iso") => TimeFormat::Iso,
            Some("readable") => TimeFormat::Readable,
            Some("file") => TimeFormat::File,
            _ => TimeFormat::Unix,
        };
        Value::String(super::timestamp(f))
    });
    handlebars_helper!(iso_date: |*args| {
        Value::String(super::iso_date(args.first().and_then(|v| v.as_i64()).unwrap_or(0)))
    });
    handlebars_helper!(length: |v: Json| Value::from(match v {
        Value::Array(a) => a.len(),
        Value::String(s) => s.chars().count(),
        Value::Object(o) => o.len(),
        _ => 0,
    }));
    handlebars_helper!(first: |v: Json| match v {
        Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    });
    handlebars_helper!(last: |v: Json| match v {
        Value::Array(a) => a.last().cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    });

    /// A registry with the TypeScript tool's helpers (`eq`, `ne`, `gt`, `lt` are built in) and
    /// the file's text as template `t`.
    pub fn registry(source: &str) -> Option<handlebars::Handlebars<'static>> {
        let mut h = handlebars::Handlebars::new();
        h.register_helper("faker", Box::new(faker_value));
        h.register_helper("randomInt", Box::new(random_int));
        h.register_helper("randomChoice", Box::new(random_choice));
        h.register_helper("uuid", Box::new(uuid));
        h.register_helper("timestamp", Box::new(timestamp));
        h.register_helper("isoDate", Box::new(iso_date));
        h.register_helper("length", Box::new(length));
        h.register_helper("first", Box::new(first));
        h.register_helper("last", Box::new(last));
        h.register_template_string("t", source).ok()?;
        Some(h)
    }
}

/// `{{template:FILE|k=v}}`: the file rendered with the VU's variables (JSON-looking values as
/// JSON), the reference's data, `vu_id`, `iteration` and `timestamp` (ms); a JSON result is
/// minified.
fn render_file(f: &FileTemplate, vars: &Vars, depth: u8) -> Option<String> {
    let source = f.source.as_deref()?;
    let compiled = f
        .compiled
        .get_or_init(|| Box::new(helpers::registry(source)));
    let registry = compiled
        .downcast_ref::<Option<handlebars::Handlebars<'static>>>()?
        .as_ref()?;
    let mut data = serde_json::Map::new();
    // In name order, so a seeded run draws the same values for the same names.
    let mut names: Vec<&String> = vars.values.keys().collect();
    names.sort();
    for name in names {
        let v = variable(name, vars, depth).unwrap_or_default();
        let t = v.trim_start();
        let json = (t.starts_with('{') || t.starts_with('['))
            .then(|| serde_json::from_str(&v).ok())
            .flatten()
            .unwrap_or(serde_json::Value::String(v));
        data.insert(name.clone(), json);
    }
    for (k, v) in &f.data {
        data.insert(k.clone(), v.clone());
    }
    data.insert("vu_id".into(), (vars.vu + 1).into());
    data.insert("iteration".into(), vars.iteration.into());
    data.insert(
        "timestamp".into(),
        chrono::Utc::now().timestamp_millis().into(),
    );
    DRAW.with(|d| *d.borrow_mut() = Some((vars.rng(), vars.locale)));
    let out = registry.render("t", &data);
    DRAW.with(|d| *d.borrow_mut() = None);
    let out = out.ok()?;
    let t = out.trim();
    if (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']')) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
            return Some(v.to_string());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars {
            vu: 7,
            iteration: 3,
            ..Default::default()
        };
        v.values.insert("id".into(), "42".into());
        v
    }

    #[test]
    fn renders_variables_and_generators() {
        let v = vars();
        assert_eq!(render("/users/{{id}}", &v), "/users/42");
        assert_eq!(
            render("/users/{{ id }}?vu={{__VU}}&i={{__ITER}}", &v),
            "/users/42?vu=7&i=3"
        );
        assert_eq!(
            render("{{vu_id}}/{{iteration}}", &v),
            "8/3",
            "vu_id from 1, iteration from 0"
        );
        assert_eq!(render("{{csv:id}}", &v), "42");
        assert!(matches!(render("/static", &v), Cow::Borrowed(_)));
        let n: i64 = render("{{randomInt(5, 9)}}", &v).parse().unwrap();
        assert!((5..=9).contains(&n));
        let n: i64 = render("{{randomInt()}}", &v).parse().unwrap();
        assert!((1..=100).contains(&n));
        assert_eq!(render("{{uuid}}", &v).len(), 36);
        assert_eq!(render("{{uuid()}}", &v).len(), 36);
        assert!(render("{{faker.internet.email}}", &v).contains('@'));
        let seeded = |vu| Vars {
            vu,
            seed: Some(7),
            ..Default::default()
        };
        let text =
            "{{faker.person.fullName}} {{uuid}} {{randomInt(1, 1000000)}} {{randomFloat(0, 1, 6)}}";
        assert_eq!(
            render(text, &seeded(1)),
            render(text, &seeded(1)),
            "a seed repeats"
        );
        assert_ne!(
            render(text, &seeded(1)),
            render(text, &seeded(2)),
            "VUs differ"
        );
        std::env::set_var("PERFORNIUM_TEMPLATE_TEST", "yes");
        assert_eq!(render("{{env.PERFORNIUM_TEMPLATE_TEST}}", &v), "yes");
    }

    #[test]
    fn helpers_take_the_typescript_argument_forms() {
        let v = vars();
        for _ in 0..50 {
            let f = render("{{randomFloat(1.5, 2.5, 3)}}", &v);
            let x: f64 = f.parse().unwrap();
            assert!(
                (1.5..=2.5).contains(&x) && f.split('.').nth(1).unwrap().len() == 3,
                "{f}"
            );
            let c = render("{{randomChoice('red', \"green\", blue)}}", &v);
            assert!(["red", "green", "blue"].contains(&c.as_ref()), "{c}");
        }
        let day = |d: i64| {
            chrono::DateTime::parse_from_rfc3339(&render(&format!("{{{{isoDate({d})}}}}"), &v))
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let diff = day(2) - day(0);
        assert!((diff.num_hours() - 48).abs() <= 1, "{diff}");
        assert!(render("{{isoDate()}}", &v).ends_with('Z'));
    }

    #[test]
    fn timestamps_have_their_formats() {
        let v = vars();
        let ms: i64 = render("{{timestamp:unix}}", &v).parse().unwrap();
        assert!((ms - chrono::Utc::now().timestamp_millis()).abs() < 5_000);
        assert!(chrono::DateTime::parse_from_rfc3339(&render("{{timestamp:iso}}", &v)).is_ok());
        let file = render("{{timestamp}}", &v).into_owned();
        assert_eq!(file.len(), "20261129-185210-123".len(), "{file}");
        assert!(file.chars().all(|c| c.is_ascii_digit() || c == '-'));
        let readable = render("{{timestamp:readable}}", &v);
        assert!(
            !readable.contains([' ', ':', '/']) && readable.ends_with('M'),
            "{readable}"
        );
    }

    #[test]
    fn dotted_paths_walk_json_values() {
        let mut v = vars();
        v.values.insert(
            "user".into(),
            r#"{"address": {"city": "Oslo"}, "tags": ["a", "b"], "n": 3}"#.into(),
        );
        v.values.insert("token".into(), "t0k".into());
        v.values.insert("a.b".into(), "dotted name".into());
        assert_eq!(render("{{user.address.city}}", &v), "Oslo");
        assert_eq!(render("{{user.tags.1}}", &v), "b");
        assert_eq!(render("{{user.tags[0]}}", &v), "a");
        assert_eq!(render("{{user.n}}", &v), "3");
        assert_eq!(render("{{user.address}}", &v), r#"{"city":"Oslo"}"#);
        assert_eq!(render("{{extracted_data.token}}", &v), "t0k");
        assert_eq!(render("{{variables.user.address.city}}", &v), "Oslo");
        assert_eq!(render("{{csv.id}}", &v), "42");
        assert_eq!(render("{{a.b}}", &v), "dotted name");
        assert_eq!(render("{{user.nope.x}}", &v), "{{user.nope.x}}");
        assert_eq!(
            render("{{token.x}}", &v),
            "{{token.x}}",
            "not JSON: left as written"
        );
    }

    #[test]
    fn templated_variables_render_at_each_request() {
        let mut v = vars();
        v.values
            .insert("order".into(), "{{faker.string.uuid}}".into());
        v.values.insert("label".into(), "order-{{order}}".into());
        v.templated = Vars::templates_of(&v.values);
        let a = render("{{order}} {{order}} {{label}}", &v).into_owned();
        let parts: Vec<&str> = a.split(' ').collect();
        assert_eq!(parts[0].len(), 36, "{a}");
        assert_eq!(parts[0], parts[1], "one request sees one value");
        assert_eq!(parts[2], format!("order-{}", parts[0]));
        v.next_request();
        let b = render("{{order}}", &v).into_owned();
        assert_ne!(parts[0], b, "the next request a new one");
        v.values.insert("self".into(), "x{{self}}".into());
        assert!(render("{{self}}", &v).starts_with("xxx"), "a loop stops");
    }

    #[test]
    fn file_templates_render_with_handlebars() {
        use base64::Engine;
        let src = r#"{ "id": {{id}}, "who": "{{name}}", "vu": {{vu_id}}, "n": {{randomInt 3 3}},
            "tags": [{{#each tags}}"{{this}}"{{#unless @last}},{{/unless}}{{/each}}],
            "first": "{{first tags}}", "len": {{length tags}}, "same": {{#if (eq name "Ada")}}true{{else}}false{{/if}},
            "mail": "{{faker "internet.email"}}", "u": "{{uuid}}", "pick": "{{randomChoice "x" "x"}}" }"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(src);
        let mut v = vars();
        v.values.insert("tags".into(), r#"["p", "q"]"#.into());
        let out = render(&format!("{{{{template:order.hbs|name=Ada|@{b64}}}}}"), &v).into_owned();
        let j: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(j["id"], 42);
        assert_eq!(j["who"], "Ada");
        assert_eq!(j["vu"], 8);
        assert_eq!(j["n"], 3);
        assert_eq!(j["tags"], serde_json::json!(["p", "q"]));
        assert_eq!(
            (j["first"].as_str(), j["len"].as_u64()),
            (Some("p"), Some(2))
        );
        assert_eq!(j["same"], true);
        assert!(j["mail"].as_str().unwrap().contains('@'));
        assert_eq!(j["u"].as_str().unwrap().len(), 36);
        assert_eq!(j["pick"], "x");
        assert!(!out.contains('\n'), "minified");
        let seeded = || Vars {
            seed: Some(3),
            ..vars()
        };
        let t = format!(
            "{{{{template:t|@{}}}}}",
            base64::engine::general_purpose::STANDARD
                .encode("{{faker \"person.firstName\"}} {{uuid}}")
        );
        assert_eq!(
            render(&t, &seeded()),
            render(&t, &seeded()),
            "helpers follow the seed"
        );
    }

    #[test]
    fn leaves_unknown_and_unclosed_text() {
        let v = vars();
        assert_eq!(render("a {{nope}} b", &v), "a {{nope}} b");
        assert_eq!(render("a {{id", &v), "a {{id");
        assert_eq!(render("{{random(1,2)}}", &v), "{{random(1,2)}}");
    }
}

/// What rendering costs, per expansion (`cargo test --release --lib template_cost -- --ignored
/// --nocapture`).
#[cfg(test)]
mod cost {
    use super::*;

    fn per_call(text: &str, vars: &Vars) -> f64 {
        let t = Template::parse(text);
        let n = 200_000;
        let start = std::time::Instant::now();
        let mut len = 0;
        for _ in 0..n {
            len += expand(&t, vars).len();
        }
        assert!(len > 0);
        start.elapsed().as_nanos() as f64 / n as f64
    }

    #[test]
    #[ignore]
    fn template_cost() {
        use base64::Engine;
        let mut v = Vars::default();
        v.values.insert("id".into(), "7".into());
        v.values.insert("name".into(), "ada".into());
        v.values
            .insert("user".into(), r#"{"address": {"city": "Oslo"}}"#.into());
        v.values
            .insert("order".into(), "{{faker.string.uuid}}".into());
        v.templated = Vars::templates_of(&v.values);
        let file = base64::engine::general_purpose::STANDARD
            .encode(r#"{"a": {{id}}, "b": "{{name}}", "c": "{{faker "person.firstName"}}"}"#);
        let seeded = Vars {
            seed: Some(1),
            ..v.clone()
        };
        for (what, text, vars) in [
            ("fixed text", "/users/1", &v),
            ("two variables", "/users/{{id}}?n={{name}}", &v),
            ("vu_id + iteration", "/u?vu={{vu_id}}&i={{iteration}}", &v),
            ("dotted path", "{{user.address.city}}", &v),
            ("randomInt", "{{randomInt(1, 100)}}", &v),
            ("uuid", "{{uuid}}", &v),
            ("uuid, seeded", "{{uuid}}", &seeded),
            ("faker.person.fullName", "{{faker.person.fullName}}", &v),
            ("faker.internet.email", "{{faker.internet.email}}", &v),
            ("timestamp:iso", "{{timestamp:iso}}", &v),
            ("templated variable", "{{order}}", &v),
            ("template file", &format!("{{{{template:t|@{file}}}}}"), &v),
        ] {
            let mut vars = vars.clone();
            let ns = if what == "templated variable" {
                let t = Template::parse(text);
                let start = std::time::Instant::now();
                for _ in 0..200_000 {
                    vars.next_request();
                    expand(&t, &vars);
                }
                start.elapsed().as_nanos() as f64 / 200_000.0
            } else {
                per_call(text, &vars)
            };
            println!("{what:<24} {ns:>8.0} ns");
        }
    }
}
