//! Durations as users write them: `"30s"`, `"2m"`, `"500ms"`, `"1h"`, or a bare number: seconds
//! for think times and `distributed.*`, milliseconds for `load.*` durations, a wait's `duration`,
//! `timeout`s and `vu_duration` (as the TypeScript tool reads them),
//! and think times as ranges (`"1-3"` seconds, `"2-5s"`, `"500ms"`). Every value is range-checked
//! here (no NaN, negative, infinite or over-a-year durations), so nothing later can panic on one.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The longest duration accepted anywhere in a test (durations, timeouts, think times, start
/// delays): a year is far beyond any load test, and the bound keeps every later `Instant + d` from
/// overflowing.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `"1.5s"`, `"250ms"`, `"2m"`, `"1h"`, `"10"` (seconds), at most [`MAX`].
pub fn parse(text: &str) -> Result<Duration, String> {
    parse_in(text, "s")
}

/// Like [`parse`], for the keys where a number without a unit means milliseconds (as in the
/// TypeScript tool: `load.duration`, `load.ramp_up`, a wait's `duration`, timeouts).
pub fn parse_ms(text: &str) -> Result<Duration, String> {
    parse_in(text, "ms")
}

fn parse_in(text: &str, default_unit: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, default_unit),
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try \"30s\", \"500ms\", \"2m\")"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "sec" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}` (use ms, s, m, h)"
            ))
        }
    };
    from_secs(secs).map_err(|why| format!("`{text}` {why}"))
}

/// A number of seconds as a [`Duration`], refusing NaN, negative, infinite and over-[`MAX`] values
/// (which `Duration::from_secs_f64` would panic on). The error completes "`<value>` ...".
pub fn from_secs(secs: f64) -> Result<Duration, String> {
    if secs.is_nan() {
        return Err("is not a number".into());
    }
    if secs < 0.0 {
        return Err("is negative; a duration must be 0 or more".into());
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d <= MAX => Ok(d),
        _ => Err("is longer than the 365 days a duration may last".into()),
    }
}

/// A number as a user would write it: `1e300`, not three hundred digits.
struct Shown(f64);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.0.is_nan() {
            f.write_str(".nan")
        } else if self.0.is_infinite() {
            f.write_str(if self.0 > 0.0 { ".inf" } else { "-.inf" })
        } else if self.0 == 0.0 || (1e-4..1e15).contains(&self.0.abs()) {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

/// A duration or think time as users write it: a number of seconds (`30`) or a text with a unit
/// (`"30s"`, `"1-3s"`). Read with a visitor rather than an untagged enum, so a wrong value (`null`,
/// a list) is reported at its own line with the shape expected instead of "did not match any
/// variant"; written back unchanged so a test survives the trip to a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum NumOrText {
    Num(f64),
    Text(String),
}

impl NumOrText {
    /// As a single duration.
    pub fn duration(&self) -> Result<Duration, String> {
        match self {
            NumOrText::Num(n) => from_secs(*n).map_err(|why| format!("`{}` {why}", Shown(*n))),
            NumOrText::Text(s) => parse(s),
        }
    }

    /// As a think time (a text may be a range).
    pub fn think_time(&self) -> Result<ThinkTime, String> {
        match self {
            NumOrText::Num(_) => self.duration().map(|d| ThinkTime { min: d, max: d }),
            NumOrText::Text(s) => ThinkTime::parse(s),
        }
    }

    /// As a single duration where a number without a unit is milliseconds.
    pub fn duration_ms(&self) -> Result<Duration, String> {
        match self {
            NumOrText::Num(n) => from_secs(*n / 1000.0)
                .map_err(|why| format!("`{}` {why} (a bare number is ms)", Shown(*n))),
            NumOrText::Text(s) => parse_ms(s),
        }
    }

    /// As a pause or range where a number without a unit is milliseconds (`500`, `"200-400"`).
    pub fn think_time_ms(&self) -> Result<ThinkTime, String> {
        match self {
            NumOrText::Num(_) => self.duration_ms().map(|d| ThinkTime { min: d, max: d }),
            NumOrText::Text(s) => ThinkTime::parse_in(s, "ms"),
        }
    }
}

impl serde::Serialize for NumOrText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NumOrText::Num(n) => s.serialize_f64(*n),
            NumOrText::Text(t) => s.serialize_str(t),
        }
    }
}

impl NumOrText {
    /// Reads a number or a text and converts it with `then` inside the visitor, so a conversion
    /// error (a duration out of range) is reported at the value's own line and column.
    pub fn deserialize_then<'de, D, T>(
        d: D,
        then: impl FnOnce(NumOrText) -> Result<T, String>,
    ) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
    {
        struct Visitor<F>(F);
        impl<T, F: FnOnce(NumOrText) -> Result<T, String>> serde::de::Visitor<'_> for Visitor<F> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"30s\", \"500ms\", \"2m\" or a number of seconds")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
                (self.0)(NumOrText::Num(v)).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<T, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<T, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
                (self.0)(NumOrText::Text(v.to_string())).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor(then))
    }
}

impl<'de> Deserialize<'de> for NumOrText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NumOrText::deserialize_then(d, Ok)
    }
}

/// A duration field that accepts a string with a unit or a number of seconds.
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    NumOrText::deserialize_then(d, |v| v.duration())
}

/// Like [`de_duration`] for an optional field (present means a duration; `null` is refused).
pub fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// An optional duration where a number without a unit is milliseconds.
pub fn de_opt_duration_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    NumOrText::deserialize_then(d, |v| v.duration_ms()).map(Some)
}

/// A think time: a fixed pause or a uniform range between two bounds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}

impl ThinkTime {
    /// Parses `"1-3"` (seconds), `"2-5s"`, `"500ms"`, `"1"`. A unit after the range applies to both ends.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_in(text, "s")
    }

    /// Like [`ThinkTime::parse`] with `default_unit` for numbers written without one.
    pub fn parse_in(text: &str, default_unit: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some((a, b)) = t.split_once('-') {
            let unit: String = b.chars().skip_while(|c| !c.is_ascii_alphabetic()).collect();
            let a = if a.chars().any(|c| c.is_ascii_alphabetic()) {
                a.to_string()
            } else {
                format!("{a}{unit}")
            };
            let (min, max) = (parse_in(&a, default_unit)?, parse_in(b, default_unit)?);
            if min > max {
                return Err(format!(
                    "think time `{text}`: lower bound is above upper bound"
                ));
            }
            Ok(Self { min, max })
        } else {
            let d = parse_in(t, default_unit)?;
            Ok(Self { min: d, max: d })
        }
    }

    /// Draws one pause from the range.
    pub fn sample(&self) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let span = (self.max - self.min).as_secs_f64();
        self.min + Duration::from_secs_f64(rand::random::<f64>() * span)
    }
}

/// Written back in the form [`ThinkTime::parse`] reads, so a test survives the trip to a worker.
impl serde::Serialize for ThinkTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        if self.min == self.max {
            s.serialize_str(&format!("{}ms", ms(self.min)))
        } else {
            s.serialize_str(&format!("{}ms-{}ms", ms(self.min), ms(self.max)))
        }
    }
}

impl<'de> Deserialize<'de> for ThinkTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NumOrText::deserialize_then(d, |v| v.think_time())
    }
}

/// Writes a duration as text in ms (`"1500ms"`), which every duration key reads back exactly,
/// whatever its bare-number unit: a test sent over the wire as JSON keeps its durations.
pub fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}ms", d.as_secs_f64() * 1000.0))
}

/// [`ser_duration`] for an optional duration.
pub fn ser_opt_duration<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("10").unwrap(), Duration::from_secs(10));
        assert!(parse("ten").is_err());
        assert!(parse("5 parsecs").is_err());
    }

    #[test]
    fn think_time_ranges() {
        let t = ThinkTime::parse("1-3").unwrap();
        assert_eq!(
            (t.min, t.max),
            (Duration::from_secs(1), Duration::from_secs(3))
        );
        let t = ThinkTime::parse("200-400ms").unwrap();
        assert_eq!(
            (t.min, t.max),
            (Duration::from_millis(200), Duration::from_millis(400))
        );
        for _ in 0..100 {
            let s = t.sample();
            assert!(s >= t.min && s <= t.max);
        }
        assert!(ThinkTime::parse("3-1").is_err());
    }
}
