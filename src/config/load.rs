//! `load:`, the load pattern. Written as one flat mapping ([`RawLoad`]) so the YAML parser reports the
//! exact line of a wrongly typed field, then converted to [`Load`], whose variants carry only the
//! fields their pattern uses, so the engine never meets a half-filled pattern.

use super::duration::de_opt_duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The load pattern: how many virtual users, when they start, and for how long.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(into = "RawLoad")]
pub enum Load {
    /// A closed model: `virtual_users` loop over their scenario, started evenly over `ramp_up`.
    Basic {
        virtual_users: u64,
        ramp_up: Duration,
        duration: Option<Duration>,
        /// Scenario iterations per virtual user.
        iterations: Option<u64>,
    },
    /// A closed model that adds `step_users` every `step_duration` up to `max_users`.
    Stepping {
        start_users: u64,
        step_users: u64,
        step_duration: Duration,
        max_users: u64,
        duration: Duration,
    },
    /// An open model: `rate` scenario iterations start per second whatever the target does.
    Arrivals {
        rate: f64,
        duration: Duration,
        max_virtual_users: Option<u64>,
        preallocation: Option<u64>,
    },
}

/// `load:` as written. A plain struct (not a tagged enum) so serde_norway reports the exact line of a
/// wrongly typed field; the conversion then checks which fields the pattern needs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_users: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub ramp_up: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_users: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub step_duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_virtual_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preallocation: Option<u64>,
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format!("{}ms", d.as_millis())),
        None => s.serialize_none(),
    }
}

fn need<T>(v: Option<T>, pattern: &str, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("the `{pattern}` load pattern needs `{field}`"))
}

impl<'de> Deserialize<'de> for Load {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de_converted::<D, RawLoad, Load>(d, "a load pattern (a mapping with `pattern`)")
    }
}

impl TryFrom<RawLoad> for Load {
    type Error = String;

    fn try_from(r: RawLoad) -> Result<Self, String> {
        let p = r.pattern.as_str();
        let stray = |fields: &[(&str, bool)]| -> Result<(), String> {
            match fields.iter().find(|(_, present)| *present) {
                Some((name, _)) => {
                    Err(format!("`{name}` does not apply to the `{p}` load pattern"))
                }
                None => Ok(()),
            }
        };
        match p {
            "basic" => {
                stray(&[
                    ("start_users", r.start_users.is_some()),
                    ("step_users", r.step_users.is_some()),
                    ("rate", r.rate.is_some()),
                ])?;
                Ok(Load::Basic {
                    virtual_users: need(r.virtual_users, p, "virtual_users")?,
                    ramp_up: r.ramp_up.unwrap_or_default(),
                    duration: r.duration,
                    iterations: r.iterations,
                })
            }
            "stepping" => {
                stray(&[
                    ("virtual_users", r.virtual_users.is_some()),
                    ("rate", r.rate.is_some()),
                    ("iterations", r.iterations.is_some()),
                ])?;
                Ok(Load::Stepping {
                    start_users: r.start_users.unwrap_or(0),
                    step_users: need(r.step_users, p, "step_users")?,
                    step_duration: need(r.step_duration, p, "step_duration")?,
                    max_users: need(r.max_users, p, "max_users")?,
                    duration: need(r.duration, p, "duration")?,
                })
            }
            "arrivals" => {
                stray(&[
                    ("virtual_users", r.virtual_users.is_some()),
                    ("iterations", r.iterations.is_some()),
                    ("step_users", r.step_users.is_some()),
                ])?;
                Ok(Load::Arrivals {
                    rate: need(r.rate, p, "rate")?,
                    duration: need(r.duration, p, "duration")?,
                    max_virtual_users: r.max_virtual_users,
                    preallocation: r.preallocation,
                })
            }
            other => Err(format!(
                "unknown load pattern `{other}` (supported: basic, stepping, arrivals)"
            )),
        }
    }
}

impl From<Load> for RawLoad {
    fn from(l: Load) -> Self {
        match l {
            Load::Basic {
                virtual_users,
                ramp_up,
                duration,
                iterations,
            } => RawLoad {
                pattern: "basic".into(),
                virtual_users: Some(virtual_users),
                ramp_up: Some(ramp_up),
                duration,
                iterations,
                ..Default::default()
            },
            Load::Stepping {
                start_users,
                step_users,
                step_duration,
                max_users,
                duration,
            } => RawLoad {
                pattern: "stepping".into(),
                start_users: Some(start_users),
                step_users: Some(step_users),
                step_duration: Some(step_duration),
                max_users: Some(max_users),
                duration: Some(duration),
                ..Default::default()
            },
            Load::Arrivals {
                rate,
                duration,
                max_virtual_users,
                preallocation,
            } => RawLoad {
                pattern: "arrivals".into(),
                rate: Some(rate),
                duration: Some(duration),
                max_virtual_users,
                preallocation,
                ..Default::default()
            },
        }
    }
}
