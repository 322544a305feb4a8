//! Durations as users write them: `"30s"`, `"2m"`, `"500ms"`, `"1h"`, or a bare number of seconds,
//! and think times as ranges (`"1-3"` seconds, `"2-5s"`, `"500ms"`).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parses `"1.5s"`, `"250ms"`, `"2m"`, `"1h"`, `"10"` (seconds).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try \"30s\", \"500ms\", \"2m\")"))?;
    if !(value >= 0.0 && value.is_finite()) {
        return Err(format!("`{text}` must be a non-negative duration"));
    }
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
    Ok(Duration::from_secs_f64(secs))
}

/// A duration field that accepts a string with a unit or a number of seconds.
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(n) if n >= 0.0 => Ok(Duration::from_secs_f64(n)),
        Raw::Num(n) => Err(serde::de::Error::custom(format!(
            "duration must be >= 0, got {n}"
        ))),
        Raw::Text(s) => parse(&s).map_err(serde::de::Error::custom),
    }
}

/// Like [`de_duration`] for an optional field.
pub fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
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
        let t = text.trim();
        if let Some((a, b)) = t.split_once('-') {
            let unit: String = b.chars().skip_while(|c| !c.is_ascii_alphabetic()).collect();
            let a = if a.chars().any(|c| c.is_ascii_alphabetic()) {
                a.to_string()
            } else {
                format!("{a}{unit}")
            };
            let (min, max) = (parse(&a)?, parse(b)?);
            if min > max {
                return Err(format!(
                    "think time `{text}`: lower bound is above upper bound"
                ));
            }
            Ok(Self { min, max })
        } else {
            let d = parse(t)?;
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
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => ThinkTime::parse(&n.to_string()),
            Raw::Text(s) => ThinkTime::parse(&s),
        }
        .map_err(serde::de::Error::custom)
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
