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
    /// `global.faker.seed`: generated values (faker, `randomInt`, `uuid`) then repeat run to run,
    /// drawn from the seed, the VU, its iteration and the draw's order within it.
    pub seed: Option<u64>,
    pub draws: Draws,
    /// Whether this VU already took a CSV row (for `change_policy: each_vu`).
    pub has_row: bool,
    /// The version of the run's global variables last copied into `values`.
    pub globals_seen: u64,
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

impl Vars {
    /// The generator for one draw: seeded when the test gives a seed, else the thread's.
    fn rng(&self) -> Box<dyn rand::RngCore> {
        match self.seed {
            None => Box::new(rand::thread_rng()),
            Some(seed) => {
                use rand::SeedableRng;
                let n = self
                    .draws
                    .0
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mix = seed
                    ^ self.vu.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ self.iteration.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
                    ^ n.wrapping_mul(0x1656_67B1_9E37_79F9);
                Box::new(rand::rngs::StdRng::seed_from_u64(mix))
            }
        }
    }
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
        "uuid" | "faker.string.uuid" => {
            let mut bytes = [0u8; 16];
            vars.rng().fill_bytes(&mut bytes);
            return Some(
                uuid::Builder::from_random_bytes(bytes)
                    .into_uuid()
                    .to_string(),
            );
        }
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
        return Some(vars.rng().gen_range(lo..=hi).to_string());
    }
    expr.strip_prefix("faker.")
        .and_then(|name| faker(name, &mut vars.rng()))
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

fn pick(rng: &mut rand::rngs::StdRng, list: &[&str]) -> String {
    list[rng.gen_range(0..list.len())].to_string()
}

fn faker(name: &str, source: &mut dyn rand::RngCore) -> Option<String> {
    use rand::SeedableRng;
    let rng = &mut rand::rngs::StdRng::from_rng(source).ok()?;
    Some(match name {
        "person.firstName" => pick(rng, FIRST),
        "person.lastName" => pick(rng, LAST),
        "person.fullName" => format!("{} {}", pick(rng, FIRST), pick(rng, LAST)),
        "internet.email" => format!(
            "{}.{}{}@example.com",
            pick(rng, FIRST),
            pick(rng, LAST),
            rng.gen_range(1..10_000)
        )
        .to_lowercase(),
        "internet.userName" => {
            format!("{}{}", pick(rng, FIRST), rng.gen_range(1..10_000)).to_lowercase()
        }
        "internet.password" => format!("Pw{}!{}", rng.gen_range(100_000..999_999), pick(rng, WORD)),
        "location.city" => pick(rng, CITY),
        "location.streetAddress" => format!("{} {} Street", rng.gen_range(1..999), pick(rng, LAST)),
        "lorem.word" => pick(rng, WORD),
        "lorem.sentence" => format!(
            "{} {} {} {}.",
            pick(rng, WORD),
            pick(rng, WORD),
            pick(rng, WORD),
            pick(rng, WORD)
        ),
        "commerce.productName" => format!("{} {}", pick(rng, WORD), pick(rng, PRODUCT)),
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
        let seeded = |vu| Vars {
            vu,
            seed: Some(7),
            ..Default::default()
        };
        let text = "{{faker.person.fullName}} {{uuid}} {{randomInt(1, 1000000)}}";
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
    fn leaves_unknown_and_unclosed_text() {
        let v = vars();
        assert_eq!(render("a {{nope}} b", &v), "a {{nope}} b");
        assert_eq!(render("a {{id", &v), "a {{id");
    }
}
