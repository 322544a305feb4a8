//! `{{faker.<module>.<method>}}` in templates: the paths Perfornium's documentation uses (the
//! @faker-js/faker names), each with the argument forms the documentation writes
//! (`faker.string.numeric(13)`, `faker.number.int({min: 1, max: 10})`,
//! `faker.helpers.arrayElement(['a', 'b'])`, ...). Parsed once when the test is compiled, so an
//! unknown path or a wrong argument is refused by `validate` (with the nearest path suggested);
//! the engine (`engine::faker`) generates the values with the `fake` crate.

/// `global.faker.locale`: the languages the `fake` crate has data for. Spanish (`es`), which the
/// TypeScript tool offers, is not among them and is refused by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    De,
    Fr,
    Nl,
    It,
    PtBr,
    PtPt,
    Ja,
    ZhCn,
    ZhTw,
    Ar,
    Tr,
    Fa,
    Cy,
}

/// The locales accepted, as @faker-js/faker names them (`de_DE`-style names are accepted too).
pub const LOCALES: &str = "en, de, fr, nl, it, pt_BR, pt_PT, ja, zh_CN, zh_TW, ar, tr, fa, cy";

impl Locale {
    pub fn parse(name: &str) -> Result<Self, String> {
        let n = name.trim().replace('-', "_").to_lowercase();
        Ok(match n.as_str() {
            "en" | "en_us" | "en_gb" => Locale::En,
            "de" | "de_de" => Locale::De,
            "fr" | "fr_fr" => Locale::Fr,
            "nl" | "nl_nl" => Locale::Nl,
            "it" | "it_it" => Locale::It,
            "pt_br" => Locale::PtBr,
            "pt" | "pt_pt" => Locale::PtPt,
            "ja" | "ja_jp" => Locale::Ja,
            "zh_cn" => Locale::ZhCn,
            "zh_tw" => Locale::ZhTw,
            "ar" | "ar_sa" => Locale::Ar,
            "tr" | "tr_tr" => Locale::Tr,
            "fa" | "fa_ir" => Locale::Fa,
            "cy" | "cy_gb" => Locale::Cy,
            _ => {
                return Err(format!(
                    "global.faker.locale `{name}` is not supported: the `fake` crate that generates the values has data for {LOCALES}"
                ))
            }
        })
    }
}

/// The arguments a path takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// One count: characters, words, sentences, paragraphs, days or years.
    Count,
    /// `{min, max}` (`number.int`), or `{min, max, precision|fractionDigits}` (`number.float`).
    MinMax,
    /// `(min, max, decimals)` (`commerce.price`).
    Price,
    /// A pattern where `#` is a digit (`phone.number('###-##-####')`).
    Format,
    /// A list of values to pick from (`helpers.arrayElement([...])`).
    Choices,
}

/// Every path, with what it takes. Kept sorted by module.
pub const PATHS: &[(&str, &str)] = &[
    ("color.human", ""),
    ("commerce.department", ""),
    ("commerce.price", "(min, max, decimals)"),
    ("commerce.productAdjective", ""),
    ("commerce.productDescription", ""),
    ("commerce.productMaterial", ""),
    ("commerce.productName", ""),
    ("company.name", ""),
    ("datatype.boolean", ""),
    ("date.birthdate", ""),
    ("date.future", "(years)"),
    ("date.past", "(years)"),
    ("date.recent", "(days)"),
    ("date.timeZone", ""),
    ("finance.account", ""),
    ("finance.amount", ""),
    ("finance.creditCardNumber", ""),
    ("finance.currencyCode", ""),
    ("finance.iban", ""),
    ("finance.routingNumber", ""),
    ("helpers.arrayElement", "([a, b, ...])"),
    ("image.avatar", ""),
    ("internet.email", ""),
    ("internet.ip", ""),
    ("internet.password", ""),
    ("internet.url", ""),
    ("internet.userAgent", ""),
    ("internet.userName", ""),
    ("internet.username", ""),
    ("location.city", ""),
    ("location.country", ""),
    ("location.latitude", ""),
    ("location.longitude", ""),
    ("location.state", ""),
    ("location.streetAddress", ""),
    ("location.zipCode", ""),
    ("lorem.paragraph", ""),
    ("lorem.paragraphs", "(count)"),
    ("lorem.sentence", ""),
    ("lorem.sentences", "(count)"),
    ("lorem.word", ""),
    ("lorem.words", "(count)"),
    ("number.float", "({min, max, precision})"),
    ("number.int", "({min, max})"),
    ("person.firstName", ""),
    ("person.fullName", ""),
    ("person.jobTitle", ""),
    ("person.lastName", ""),
    ("phone.number", "('###-###-####')"),
    ("string.alphanumeric", "(length)"),
    ("string.numeric", "(length)"),
    ("string.uuid", ""),
];

/// Paths the documentation shows that @faker-js/faker does not have (the TypeScript tool sends
/// them as written), refused by name.
const NOT_FAKER: &[&str] = &["business.", "location.locale"];

fn takes(path: &str) -> Takes {
    match path {
        "commerce.price" => Takes::Price,
        "date.future"
        | "date.past"
        | "date.recent"
        | "lorem.paragraphs"
        | "lorem.sentences"
        | "lorem.words"
        | "string.alphanumeric"
        | "string.numeric" => Takes::Count,
        "helpers.arrayElement" => Takes::Choices,
        "number.float" | "number.int" => Takes::MinMax,
        "phone.number" => Takes::Format,
        _ => Takes::Nothing,
    }
}

/// A parsed `faker.*` call.
#[derive(Debug, Clone, PartialEq)]
pub struct FakerCall {
    /// The path without `faker.` (one of [`PATHS`]).
    pub path: &'static str,
    pub count: Option<u64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Decimal places (`fractionDigits`, or from `precision: 0.01`).
    pub digits: Option<u32>,
    pub format: Option<String>,
    pub choices: Vec<String>,
}

impl Eq for FakerCall {}

impl FakerCall {
    /// Parses `person.firstName`, `person.firstName()` or `string.numeric(13)` (without `faker.`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, args) = match text.find('(') {
            Some(open) => {
                let inner = text[open + 1..]
                    .strip_suffix(')')
                    .filter(|_| !text.contains(")."));
                let Some(inner) = inner else {
                    return Err(format!(
                        "`faker.{text}`: only one call is supported (no method chains such as `.toISOString()`)"
                    ));
                };
                (&text[..open], Some(inner.trim()))
            }
            None => (text, None),
        };
        let name = name.trim();
        if let Some(bad) = NOT_FAKER.iter().find(|p| name.starts_with(*p)) {
            return Err(format!(
                "`faker.{name}` is not a @faker-js/faker path (`faker.{}` does not exist there, and the TypeScript tool sends it as written)",
                bad.trim_end_matches('.')
            ));
        }
        let Some(&(path, _)) = PATHS.iter().find(|(p, _)| *p == name) else {
            let best = PATHS
                .iter()
                .map(|(p, _)| {
                    (
                        strsim::jaro_winkler(&name.to_lowercase(), &p.to_lowercase()),
                        p,
                    )
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .filter(|(s, _)| *s >= 0.8);
            let hint = match best {
                Some((_, p)) => format!(" (did you mean `faker.{p}`?)"),
                None => String::new(),
            };
            return Err(format!(
                "unknown faker path `faker.{name}`{hint}; the supported paths are listed in README (Templating)"
            ));
        };
        let mut call = FakerCall {
            path,
            count: None,
            min: None,
            max: None,
            digits: None,
            format: None,
            choices: Vec::new(),
        };
        let args = match args {
            None | Some("") => return Ok(call),
            Some(a) => parse_args(a).map_err(|e| format!("`faker.{text}`: {e}"))?,
        };
        let wrong = |want: &str| format!("`faker.{text}`: expected `faker.{path}{want}`");
        let usage = PATHS.iter().find(|(p, _)| *p == path).map_or("", |x| x.1);
        match (takes(path), args.as_slice()) {
            (Takes::Nothing, _) => {
                return Err(format!("`faker.{text}`: `faker.{path}` takes no arguments"))
            }
            (Takes::Count, [n]) => {
                call.count = Some(
                    n.as_u64()
                        .filter(|n| *n <= 10_000)
                        .ok_or_else(|| wrong(usage))?,
                )
            }
            (Takes::MinMax, [serde_json::Value::Object(o)]) => {
                for k in o.keys() {
                    if !["min", "max", "precision", "fractionDigits"].contains(&k.as_str())
                        || (path == "number.int" && !["min", "max"].contains(&k.as_str()))
                    {
                        return Err(format!("`faker.{text}`: unknown option `{k}`"));
                    }
                }
                let num = |k: &str| o.get(k).and_then(serde_json::Value::as_f64);
                call.min = num("min");
                call.max = num("max");
                call.digits = match (num("fractionDigits"), num("precision")) {
                    (Some(d), _) => Some(d.clamp(0.0, 10.0) as u32),
                    (None, Some(p)) if p > 0.0 => Some((-p.log10()).ceil().clamp(0.0, 10.0) as u32),
                    _ => None,
                };
            }
            (Takes::Price, [min, max, rest @ ..]) if rest.len() <= 1 => {
                call.min = Some(min.as_f64().ok_or_else(|| wrong(usage))?);
                call.max = Some(max.as_f64().ok_or_else(|| wrong(usage))?);
                call.digits = match rest {
                    [d] => Some(
                        d.as_u64()
                            .filter(|d| *d <= 10)
                            .ok_or_else(|| wrong(usage))? as u32,
                    ),
                    _ => None,
                };
            }
            (Takes::Format, [serde_json::Value::String(f)]) => call.format = Some(f.clone()),
            (Takes::Choices, [serde_json::Value::Array(a)]) if !a.is_empty() => {
                call.choices = a
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            }
            _ => return Err(wrong(usage)),
        }
        if let (Some(a), Some(b)) = (call.min, call.max) {
            if !(a.is_finite() && b.is_finite()) || a > b {
                return Err(format!("`faker.{text}`: `min` must not be above `max`"));
            }
        }
        Ok(call)
    }
}

/// Reads JavaScript-style literal arguments (`13`, `'a'`, `{min: 1, max: 5}`, `['x', 'y']`) as
/// JSON values: single quotes become double quotes and bare object keys are quoted.
pub fn parse_args(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut json = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    let mut expect_key = false;
    json.push('[');
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => {
                json.push('"');
                quote = None;
            }
            Some(_) if c == '"' => json.push_str("\\\""),
            Some(_) if c == '\\' => {
                json.push(c);
                if let Some(n) = chars.next() {
                    json.push(n);
                }
            }
            Some(_) => json.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    json.push('"');
                    expect_key = false;
                }
                '{' | ',' => {
                    json.push(c);
                    expect_key = true;
                }
                c if expect_key && (c.is_ascii_alphabetic() || c == '_') => {
                    let mut key = String::from(c);
                    while let Some(&n) = chars.peek() {
                        if n.is_ascii_alphanumeric() || n == '_' {
                            key.push(n);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if matches!(key.as_str(), "true" | "false" | "null") {
                        json.push_str(&key);
                    } else {
                        json.push('"');
                        json.push_str(&key);
                        json.push('"');
                    }
                    expect_key = false;
                }
                c if c.is_whitespace() => json.push(c),
                c => {
                    json.push(c);
                    expect_key = false;
                }
            },
        }
    }
    json.push(']');
    serde_json::from_str::<Vec<serde_json::Value>>(&json)
        .map_err(|_| format!("cannot read the arguments `{text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_argument_forms() {
        assert_eq!(
            FakerCall::parse("person.firstName").unwrap().path,
            "person.firstName"
        );
        assert_eq!(
            FakerCall::parse("person.firstName()").unwrap().path,
            "person.firstName"
        );
        assert_eq!(
            FakerCall::parse("string.numeric(13)").unwrap().count,
            Some(13)
        );
        let i = FakerCall::parse("number.int({min: 18, max: 65})").unwrap();
        assert_eq!((i.min, i.max), (Some(18.0), Some(65.0)));
        let f = FakerCall::parse("number.float({min: 0.1, max: 50.0, precision: 0.1})").unwrap();
        assert_eq!(f.digits, Some(1));
        let p = FakerCall::parse("commerce.price(10, 1000, 2)").unwrap();
        assert_eq!(
            (p.min, p.max, p.digits),
            (Some(10.0), Some(1000.0), Some(2))
        );
        let c = FakerCall::parse("helpers.arrayElement(['light', 'dark', 'auto'])").unwrap();
        assert_eq!(c.choices, ["light", "dark", "auto"]);
        let ph = FakerCall::parse("phone.number('###-##-####')").unwrap();
        assert_eq!(ph.format.as_deref(), Some("###-##-####"));
    }

    #[test]
    fn refuses_unknown_paths_and_wrong_arguments() {
        let e = FakerCall::parse("person.fristName").unwrap_err();
        assert!(e.contains("did you mean `faker.person.firstName`?"), "{e}");
        let e = FakerCall::parse("business.employeeCount").unwrap_err();
        assert!(e.contains("not a @faker-js/faker path"), "{e}");
        let e = FakerCall::parse("date.past(10).toISOString()").unwrap_err();
        assert!(e.contains("method chains"), "{e}");
        assert!(FakerCall::parse("person.firstName(3)")
            .unwrap_err()
            .contains("takes no arguments"));
        assert!(FakerCall::parse("string.numeric('x')").is_err());
        assert!(FakerCall::parse("number.int({min: 5, max: 1})").is_err());
        assert!(FakerCall::parse("number.int({mini: 5})")
            .unwrap_err()
            .contains("unknown option"));
    }
}
