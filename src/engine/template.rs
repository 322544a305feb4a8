//! `{{...}}` templating for paths, headers, query values and bodies (parsed once by
//! `config::template`; expanded here for every request). A VU's variables (scenario
//! `variables`, CSV columns, extracted values) resolve by name; a few generators need no variable:
//! `{{env.NAME}}`, `{{randomInt(a, b)}}`, `{{uuid}}`, `{{timestamp}}`, `{{__VU}}`, `{{__ITER}}`,
//! `{{csv:column}}` and some `faker.*` names. An unknown name is left as written so the request
//! shows what was not resolved.

use crate::config::template::{Part, Template};
use rand::Rng;
use std::borrow::Cow;
use std::collections::HashMap;

/// The values a VU can template with.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: HashMap<String, String>,
    pub vu: u64,
    pub iteration: u64,
}

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
    if let Some(text) = template.fixed() {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    for part in template.parts() {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Expr { expr, raw } => match resolve(expr, vars) {
                Some(v) => out.push_str(&v),
                None => out.push_str(raw),
            },
        }
    }
    Cow::Owned(out)
}

fn resolve(expr: &str, vars: &Vars) -> Option<String> {
    if let Some(v) = vars.values.get(expr) {
        return Some(v.clone());
    }
    if let Some(col) = expr.strip_prefix("csv:") {
        return vars.values.get(col.trim()).cloned();
    }
    if let Some(name) = expr.strip_prefix("env.") {
        return std::env::var(name).ok();
    }
    match expr {
        "__VU" => return Some(vars.vu.to_string()),
        "__ITER" => return Some(vars.iteration.to_string()),
        "uuid" | "faker.string.uuid" => return Some(uuid::Uuid::new_v4().to_string()),
        "timestamp" => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            return Some(ms.to_string());
        }
        _ => {}
    }
    if let Some(args) = expr
        .strip_prefix("randomInt(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let (a, b) = args.split_once(',')?;
        let (a, b): (i64, i64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        let (lo, hi) = (a.min(b), a.max(b));
        return Some(rand::thread_rng().gen_range(lo..=hi).to_string());
    }
    expr.strip_prefix("faker.").and_then(faker)
}

const FIRST: &[&str] = &[
    "Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Ken", "Frances",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Thompson", "Allen",
];
const CITY: &[&str] = &[
    "Amsterdam",
    "Lisbon",
    "Oslo",
    "Kyoto",
    "Austin",
    "Nairobi",
    "Lima",
    "Tallinn",
];
const WORD: &[&str] = &[
    "alpha", "beta", "gamma", "delta", "lorem", "ipsum", "dolor", "amet",
];
const PRODUCT: &[&str] = &[
    "Chair", "Lamp", "Keyboard", "Kettle", "Backpack", "Monitor", "Bottle", "Desk",
];

fn pick(list: &[&str]) -> String {
    list[rand::thread_rng().gen_range(0..list.len())].to_string()
}

fn faker(name: &str) -> Option<String> {
    let mut rng = rand::thread_rng();
    Some(match name {
        "person.firstName" => pick(FIRST),
        "person.lastName" => pick(LAST),
        "person.fullName" => format!("{} {}", pick(FIRST), pick(LAST)),
        "internet.email" => format!(
            "{}.{}{}@example.com",
            pick(FIRST),
            pick(LAST),
            rng.gen_range(1..10_000)
        )
        .to_lowercase(),
        "internet.userName" => {
            format!("{}{}", pick(FIRST), rng.gen_range(1..10_000)).to_lowercase()
        }
        "internet.password" => format!("Pw{}!{}", rng.gen_range(100_000..999_999), pick(WORD)),
        "location.city" => pick(CITY),
        "location.streetAddress" => format!("{} {} Street", rng.gen_range(1..999), pick(LAST)),
        "lorem.word" => pick(WORD),
        "lorem.sentence" => format!(
            "{} {} {} {}.",
            pick(WORD),
            pick(WORD),
            pick(WORD),
            pick(WORD)
        ),
        "commerce.productName" => format!("{} {}", pick(WORD), pick(PRODUCT)),
        "number.int" => rng.gen_range(0..1_000_000).to_string(),
        _ => return None,
    })
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
        assert_eq!(render("{{csv:id}}", &v), "42");
        assert!(matches!(render("/static", &v), Cow::Borrowed(_)));
        let n: i64 = render("{{randomInt(5, 9)}}", &v).parse().unwrap();
        assert!((5..=9).contains(&n));
        assert_eq!(render("{{uuid}}", &v).len(), 36);
        assert!(render("{{faker.internet.email}}", &v).contains('@'));
        std::env::set_var("PERFORNIUM_TEMPLATE_TEST", "yes");
        assert_eq!(render("{{env.PERFORNIUM_TEMPLATE_TEST}}", &v), "yes");
    }

    #[test]
    fn leaves_unknown_and_unclosed_text() {
        let v = vars();
        assert_eq!(render("a {{nope}} b", &v), "a {{nope}} b");
        assert_eq!(render("a {{id", &v), "a {{id");
    }
}
