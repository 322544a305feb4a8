//! Values for `{{faker.*}}` (parsed by `config::faker`), generated with the `fake` crate in the
//! test's `global.faker.locale`. The few modules `fake` has no data for (commerce, colour names,
//! avatars, bank numbers) are made here from short lists and digit patterns. Dates are ISO 8601
//! in UTC (the TypeScript tool prints JavaScript's `Date` text).

use crate::config::faker::{FakerCall, Locale};
use fake::faker::{
    address::raw as address, boolean::raw as boolean, company::raw as company,
    creditcard::raw as creditcard, currency::raw as currency, internet::raw as internet,
    job::raw as job, lorem::raw as lorem, name::raw as name, number::raw as number,
    phone_number::raw as phone,
};
use fake::locales::{
    Data, AR_SA, CY_GB, DE_DE, EN, FA_IR, FR_FR, IT_IT, JA_JP, NL_NL, PT_BR, PT_PT, TR_TR, ZH_CN,
    ZH_TW,
};
use fake::rand::rngs::SmallRng;
use fake::rand::RngExt;
use fake::Fake;

/// One value for `call` in `locale`.
pub fn generate(call: &FakerCall, locale: Locale, rng: &mut SmallRng) -> String {
    match locale {
        Locale::En => gen(call, EN, rng),
        Locale::De => gen(call, DE_DE, rng),
        Locale::Fr => gen(call, FR_FR, rng),
        Locale::Nl => gen(call, NL_NL, rng),
        Locale::It => gen(call, IT_IT, rng),
        Locale::PtBr => gen(call, PT_BR, rng),
        Locale::PtPt => gen(call, PT_PT, rng),
        Locale::Ja => gen(call, JA_JP, rng),
        Locale::ZhCn => gen(call, ZH_CN, rng),
        Locale::ZhTw => gen(call, ZH_TW, rng),
        Locale::Ar => gen(call, AR_SA, rng),
        Locale::Tr => gen(call, TR_TR, rng),
        Locale::Fa => gen(call, FA_IR, rng),
        Locale::Cy => gen(call, CY_GB, rng),
    }
}

const ADJECTIVES: &[&str] = &[
    "Small",
    "Ergonomic",
    "Rustic",
    "Intelligent",
    "Gorgeous",
    "Incredible",
    "Practical",
    "Sleek",
    "Handcrafted",
    "Refined",
    "Awesome",
    "Generic",
];
const MATERIALS: &[&str] = &[
    "Steel", "Wooden", "Concrete", "Plastic", "Cotton", "Granite", "Rubber", "Metal", "Soft",
    "Fresh", "Frozen", "Bronze",
];
const PRODUCTS: &[&str] = &[
    "Chair", "Car", "Computer", "Keyboard", "Mouse", "Bike", "Ball", "Gloves", "Pants", "Shirt",
    "Table", "Shoes", "Hat", "Towels", "Soap", "Tuna", "Chicken", "Fish", "Cheese", "Bacon",
];
const DEPARTMENTS: &[&str] = &[
    "Books",
    "Movies",
    "Music",
    "Games",
    "Electronics",
    "Computers",
    "Home",
    "Garden",
    "Tools",
    "Grocery",
    "Health",
    "Beauty",
    "Toys",
    "Kids",
    "Baby",
    "Clothing",
    "Shoes",
    "Jewelery",
    "Sports",
    "Outdoors",
    "Automotive",
    "Industrial",
];
const COLOURS: &[&str] = &[
    "red",
    "green",
    "blue",
    "yellow",
    "purple",
    "mint green",
    "teal",
    "white",
    "black",
    "orange",
    "pink",
    "grey",
    "maroon",
    "violet",
    "turquoise",
    "tan",
    "sky blue",
    "salmon",
    "plum",
    "orchid",
    "olive",
    "magenta",
    "lime",
    "ivory",
    "indigo",
    "gold",
    "fuchsia",
    "cyan",
    "azure",
    "lavender",
    "silver",
];

fn pick<'a>(rng: &mut SmallRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

fn digits(rng: &mut SmallRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn fixed(x: f64, d: u32) -> String {
    format!("{x:.*}", d as usize)
}

fn date(rng: &mut SmallRng, from_days: f64, to_days: f64) -> String {
    let days = from_days + rng.random_range(0.0..1.0) * (to_days - from_days);
    let t = chrono::Utc::now() + chrono::Duration::milliseconds((days * 86_400_000.0) as i64);
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn gen<L: Data + Copy + fake::faker::impls::address::CityNameGenFn>(
    call: &FakerCall,
    l: L,
    rng: &mut SmallRng,
) -> String {
    let count = |default: u64| call.count.unwrap_or(default) as usize;
    match call.path {
        "color.human" => pick(rng, COLOURS).into(),
        "commerce.department" => pick(rng, DEPARTMENTS).into(),
        "commerce.price" => {
            let (lo, hi) = (call.min.unwrap_or(1.0), call.max.unwrap_or(1000.0));
            fixed(
                lo + rng.random_range(0.0..=1.0) * (hi - lo),
                call.digits.unwrap_or(2),
            )
        }
        "commerce.productAdjective" => pick(rng, ADJECTIVES).into(),
        "commerce.productMaterial" => pick(rng, MATERIALS).into(),
        "commerce.productName" => format!(
            "{} {} {}",
            pick(rng, ADJECTIVES),
            pick(rng, MATERIALS),
            pick(rng, PRODUCTS)
        ),
        "commerce.productDescription" => format!(
            "The {} {} {} {}",
            pick(rng, ADJECTIVES),
            pick(rng, MATERIALS).to_lowercase(),
            pick(rng, PRODUCTS).to_lowercase(),
            lorem::Sentence(l, 6..10)
                .fake_with_rng::<String, _>(rng)
                .to_lowercase()
        ),
        "company.name" => company::CompanyName(l).fake_with_rng(rng),
        "datatype.boolean" => boolean::Boolean(l, 50)
            .fake_with_rng::<bool, _>(rng)
            .to_string(),
        "date.birthdate" => date(rng, -80.0 * 365.25, -18.0 * 365.25),
        "date.future" => date(rng, 0.0, count(1) as f64 * 365.25),
        "date.past" => date(rng, -(count(1) as f64) * 365.25, 0.0),
        "date.recent" => date(rng, -(count(1) as f64), 0.0),
        "date.timeZone" => address::TimeZone(l).fake_with_rng(rng),
        "finance.account" => digits(rng, 8),
        "finance.amount" => fixed(rng.random_range(0.0..=1000.0), 2),
        "finance.creditCardNumber" => creditcard::CreditCardNumber(l).fake_with_rng(rng),
        "finance.currencyCode" => currency::CurrencyCode(l).fake_with_rng(rng),
        "finance.iban" => {
            let bank: String = (0..4)
                .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
                .collect();
            format!("GB{}{bank}{}", digits(rng, 2), digits(rng, 14))
        }
        "finance.routingNumber" => {
            // Eight digits and the ABA check digit.
            let d: Vec<u32> = (0..8).map(|_| rng.random_range(0..10)).collect();
            let w = [3, 7, 1, 3, 7, 1, 3, 7];
            let sum: u32 = d.iter().zip(w).map(|(a, b)| a * b).sum();
            let check = (10 - sum % 10) % 10;
            d.iter()
                .chain([check].iter())
                .map(|x| x.to_string())
                .collect()
        }
        "helpers.arrayElement" => {
            call.choices[rng.random_range(0..call.choices.len().max(1))].clone()
        }
        "image.avatar" => format!(
            "https://avatars.githubusercontent.com/u/{}",
            rng.random_range(1..100_000_000u32)
        ),
        "internet.email" => internet::SafeEmail(l).fake_with_rng(rng),
        "internet.ip" => internet::IPv4(l).fake_with_rng(rng),
        "internet.password" => internet::Password(l, 15..16).fake_with_rng(rng),
        "internet.url" => {
            let word: String = lorem::Word(l).fake_with_rng(rng);
            let suffix: String = internet::DomainSuffix(l).fake_with_rng(rng);
            format!("https://{}.{suffix}", word.to_lowercase())
        }
        "internet.userAgent" => internet::UserAgent(l).fake_with_rng(rng),
        "internet.userName" | "internet.username" => internet::Username(l).fake_with_rng(rng),
        "location.city" => address::CityName(l).fake_with_rng(rng),
        "location.country" => address::CountryName(l).fake_with_rng(rng),
        "location.latitude" => address::Latitude(l).fake_with_rng(rng),
        "location.longitude" => address::Longitude(l).fake_with_rng(rng),
        "location.state" => address::StateName(l).fake_with_rng(rng),
        "location.streetAddress" => {
            let n: String = address::BuildingNumber(l).fake_with_rng(rng);
            let street: String = address::StreetName(l).fake_with_rng(rng);
            format!("{n} {street}")
        }
        "location.zipCode" => address::ZipCode(l).fake_with_rng(rng),
        "lorem.paragraph" => paragraph(l, rng),
        "lorem.paragraphs" => {
            let v: Vec<String> = (0..count(3)).map(|_| paragraph(l, rng)).collect();
            v.join("\n")
        }
        "lorem.sentence" => lorem::Sentence(l, 4..10).fake_with_rng(rng),
        "lorem.sentences" => {
            let n = count(3);
            let v: Vec<String> = lorem::Sentences(l, n..n + 1).fake_with_rng(rng);
            v.join(" ")
        }
        "lorem.word" => lorem::Word(l).fake_with_rng(rng),
        "lorem.words" => {
            let n = count(3);
            let v: Vec<String> = lorem::Words(l, n..n + 1).fake_with_rng(rng);
            v.join(" ")
        }
        "number.float" => {
            let (lo, hi) = (call.min.unwrap_or(0.0), call.max.unwrap_or(1.0));
            let x = lo + rng.random_range(0.0..=1.0) * (hi - lo);
            match call.digits {
                Some(d) => fixed(x, d),
                None => x.to_string(),
            }
        }
        "number.int" => {
            let lo = call.min.unwrap_or(0.0).ceil() as i64;
            let hi = call.max.unwrap_or(9_007_199_254_740_991.0).floor() as i64;
            rng.random_range(lo..=hi.max(lo)).to_string()
        }
        "person.firstName" => name::FirstName(l).fake_with_rng(rng),
        "person.fullName" => name::Name(l).fake_with_rng(rng),
        "person.jobTitle" => job::Title(l).fake_with_rng(rng),
        "person.lastName" => name::LastName(l).fake_with_rng(rng),
        "phone.number" => match &call.format {
            Some(f) => number::NumberWithFormat(l, f).fake_with_rng(rng),
            None => phone::PhoneNumber(l).fake_with_rng(rng),
        },
        "string.alphanumeric" => {
            const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            (0..count(1))
                .map(|_| char::from(SET[rng.random_range(0..SET.len())]))
                .collect()
        }
        "string.numeric" => digits(rng, count(1)),
        "string.uuid" => uuid(rng),
        // `config::faker::PATHS` lists exactly the paths above; a test checks they agree.
        other => format!("{{{{faker.{other}}}}}"),
    }
}

/// One paragraph of three to six sentences, on one line.
fn paragraph<L: Data + Copy>(l: L, rng: &mut SmallRng) -> String {
    let s: String = lorem::Paragraph(l, 3..7).fake_with_rng(rng);
    s.replace('\n', " ")
}

/// A random (v4) UUID from `rng`.
pub fn uuid(rng: &mut SmallRng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::faker::PATHS;
    use fake::rand::SeedableRng;

    fn call(text: &str) -> FakerCall {
        FakerCall::parse(text).unwrap()
    }

    #[test]
    fn every_listed_path_generates_a_value_in_every_locale() {
        let locales = [
            Locale::En,
            Locale::De,
            Locale::Fr,
            Locale::Nl,
            Locale::It,
            Locale::PtBr,
            Locale::PtPt,
            Locale::Ja,
            Locale::ZhCn,
            Locale::ZhTw,
            Locale::Ar,
            Locale::Tr,
            Locale::Fa,
            Locale::Cy,
        ];
        let mut rng = SmallRng::seed_from_u64(1);
        for (path, usage) in PATHS {
            let text = match *usage {
                "" => path.to_string(),
                "([a, b, ...])" => format!("{path}(['a', 'b'])"),
                "({min, max})" | "({min, max, precision})" => format!("{path}({{min: 1, max: 5}})"),
                "(min, max, decimals)" => format!("{path}(1, 5, 2)"),
                "('###-###-####')" => format!("{path}('###-###-####')"),
                _ => format!("{path}(2)"),
            };
            for l in locales {
                let v = generate(&call(&text), l, &mut rng);
                assert!(!v.is_empty() && !v.contains("{{"), "{text} in {l:?}: {v:?}");
            }
        }
    }

    #[test]
    fn values_have_their_shape() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut g = |t: &str| generate(&call(t), Locale::En, &mut rng);
        assert!(g("internet.email").contains('@'));
        assert_eq!(g("string.numeric(13)").len(), 13);
        assert!(g("string.numeric(13)").chars().all(|c| c.is_ascii_digit()));
        assert_eq!(g("string.alphanumeric(8)").len(), 8);
        for _ in 0..50 {
            let n: i64 = g("number.int({min: 18, max: 65})").parse().unwrap();
            assert!((18..=65).contains(&n));
            let p: f64 = g("commerce.price(10, 1000, 2)").parse().unwrap();
            assert!((10.0..=1000.0).contains(&p));
            assert!(["x", "y"].contains(&g("helpers.arrayElement(['x', 'y'])").as_str()));
        }
        let ph = g("phone.number('###-##-####')");
        assert!(ph.len() == 11 && ph.chars().nth(3) == Some('-'), "{ph}");
        assert_eq!(g("lorem.paragraphs(3)").lines().count(), 3);
        assert!(chrono::DateTime::parse_from_rfc3339(&g("date.past(10)")).is_ok());
        assert_eq!(g("string.uuid").len(), 36);
        assert_eq!(
            g("number.float({min: 0.1, max: 50.0, precision: 0.1})")
                .split('.')
                .nth(1)
                .map(str::len),
            Some(1)
        );
        let mut a = SmallRng::seed_from_u64(9);
        let mut b = SmallRng::seed_from_u64(9);
        let de = call("person.lastName");
        assert_eq!(
            generate(&de, Locale::De, &mut a),
            generate(&de, Locale::De, &mut b)
        );
    }
}
