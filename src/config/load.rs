//! `load:`, the load pattern. Written as one flat mapping ([`RawLoad`]) so the YAML parser reports the
//! exact line of a wrongly typed field, then converted to [`Load`], whose variants carry only the
//! fields their pattern uses, so the engine never meets a half-filled pattern. `load:` may also be a
//! list of such mappings, the phases of a test, run one after another.
//!
//! Units: `duration`, `ramp_up`, `ramp_down`, `step_duration`, `hold_final`, `ramp_step`,
//! `vu_duration` and each `steps[]`/`rate_profile[]` `duration` take `"30s"`, `"500ms"`, `"2m"`,
//! `"1h"`; a bare number is **milliseconds**, as in the TypeScript tool. `rate` is per second.

use super::duration::{de_opt_duration_ms, ser_duration, ser_opt_duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The load pattern: how many virtual users, when they start, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// A closed model: `virtual_users` loop over their scenario, started evenly over `ramp_up`.
    /// Without `duration` and `iterations`, each VU runs its scenario once.
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
    /// A closed model in levels, one after another (the TypeScript `steps[]`, and the other closed
    /// forms with `ramp_down` or `ramp_step`): each moves from the previous level to `users` over its
    /// `ramp_up` (adding VUs, or stopping the most recently started ones), then holds until its
    /// `duration` (which includes the ramp) ends.
    Levels { levels: Vec<Level> },
    /// An open model: arrivals start at `rate` per second whatever the target does. Without
    /// `vu_duration` an arrival runs one scenario iteration; with it, an arrival is a new VU that
    /// loops over its scenario for `vu_duration` (the TypeScript meaning).
    Arrivals {
        rate: f64,
        duration: Duration,
        max_virtual_users: Option<u64>,
        preallocation: Option<u64>,
        shape: ArrivalShape,
    },
    /// Phases run one after another, each with its own pattern.
    Phases(Vec<Phase>),
}

/// One level of [`Load::Levels`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub users: u64,
    #[serde(
        default,
        deserialize_with = "de_ms_or_zero",
        serialize_with = "ser_duration"
    )]
    pub ramp_up: Duration,
    #[serde(deserialize_with = "de_ms", serialize_with = "ser_duration")]
    pub duration: Duration,
}

/// How the arrival rate moves over an open-model run, and how long an arrival lasts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArrivalShape {
    /// The rate climbs linearly from 0 over this long at the start.
    pub ramp_up: Duration,
    /// Each arrival loops over its scenario this long (TypeScript's `vu_duration`).
    pub vu_duration: Option<Duration>,
    /// `rate_profile`: fractions of `rate` (its peak), each held for its duration after the ramp.
    pub profile: Vec<(f64, Duration)>,
}

/// One named phase of a `load:` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: Option<String>,
    pub load: Load,
}

/// `rate_profile[]` as written: a rate per second held for a duration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStep {
    pub rate: f64,
    #[serde(deserialize_with = "de_ms", serialize_with = "ser_duration")]
    pub duration: Duration,
}

fn de_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_opt_duration_ms(d).map(|d| d.unwrap_or_default())
}

fn de_ms_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_ms(d)
}

/// `load:` as written. A plain struct (not a tagged enum) so serde_norway reports the exact line of a
/// wrongly typed field; the conversion then checks which fields the pattern needs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    /// A phase's label (in a `load:` list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_users: Option<u64>,
    /// Aliases of `virtual_users` (the TypeScript tool reads `users`; `vus` is in its types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration_ms",
        serialize_with = "ser_opt_duration"
    )]
    pub ramp_up: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration_ms",
        serialize_with = "ser_opt_duration"
    )]
    pub ramp_down: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration_ms",
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
        deserialize_with = "de_opt_duration_ms",
        serialize_with = "ser_opt_duration"
    )]
    pub step_duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration_ms",
        serialize_with = "ser_opt_duration"
    )]
    pub hold_final: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration_ms",
        serialize_with = "ser_opt_duration"
    )]
    pub ramp_step: Option<Duration>,
    /// The TypeScript stepping format: levels one after another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Level>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_profile: Option<Vec<RateStep>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_duration_ms",
        serialize_with = "ser_opt_duration"
    )]
    pub vu_duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_virtual_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preallocation: Option<u64>,
    /// Refused by name: the TypeScript tool ignores it.
    #[serde(default, skip_serializing)]
    pub think_time: Option<serde_norway::Value>,
    /// The seed's spelling of `distributed.{strategy, distribution, weights}`: type-checked here,
    /// moved to the test's `distributed` block when the test is read (`lift_load_distributed`).
    #[serde(default, skip_serializing)]
    pub distributed: Option<super::distributed::LoadDistributed>,
}

fn need<T>(v: Option<T>, pattern: &str, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("the `{pattern}` load pattern needs `{field}`"))
}

impl<'de> Deserialize<'de> for Load {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Load;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a load pattern (a mapping with `pattern`) or a list of phases")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Load, A::Error> {
                let raw = RawLoad::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if raw.name.is_some() {
                    return Err(serde::de::Error::custom(
                        "`name` labels a phase: write `load:` as a list of phases to name them",
                    ));
                }
                Load::try_from(raw).map_err(serde::de::Error::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Load, A::Error> {
                let mut phases = Vec::new();
                while let Some(p) = seq.next_element::<Phase>()? {
                    phases.push(p);
                }
                if phases.is_empty() {
                    return Err(serde::de::Error::custom(
                        "`load:` is an empty list: give at least one phase",
                    ));
                }
                Ok(Load::Phases(phases))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de_converted::<D, RawLoad, Phase>(d, "a load phase (a mapping with `pattern`)")
    }
}

impl TryFrom<RawLoad> for Phase {
    type Error = String;
    fn try_from(mut r: RawLoad) -> Result<Self, String> {
        if r.distributed.is_some() {
            return Err("`distributed` in a load phase: write it once, in a single `load:` mapping or as the top-level `distributed:`".into());
        }
        let name = r.name.take();
        let load = Load::try_from(r).map_err(|e| match &name {
            Some(n) => format!("phase `{n}`: {e}"),
            None => e,
        })?;
        Ok(Phase { name, load })
    }
}

impl Serialize for Load {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Load::Phases(ps) => s.collect_seq(ps.iter().map(|p| {
                let mut raw = RawLoad::from(p.load.clone());
                raw.name = p.name.clone();
                raw
            })),
            other => RawLoad::from(other.clone()).serialize(s),
        }
    }
}

impl TryFrom<RawLoad> for Load {
    type Error = String;

    fn try_from(mut r: RawLoad) -> Result<Self, String> {
        if r.think_time.is_some() {
            return Err(
                "`load.think_time` is not supported: the TypeScript tool ignores it; \
                 set `global.think_time` (or a scenario's or step's `think_time`)"
                    .into(),
            );
        }
        let aliases = [
            ("virtual_users", r.virtual_users),
            ("vus", r.vus),
            ("users", r.users),
        ];
        let given: Vec<&str> = aliases
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
        if given.len() > 1 {
            return Err(format!(
                "`{}` and `{}` are the same setting (the number of virtual users): give one",
                given[0], given[1]
            ));
        }
        r.virtual_users = r.virtual_users.or(r.vus).or(r.users);
        let pattern = if r.pattern.is_empty() {
            if r.steps.is_some() {
                "stepping".to_string()
            } else {
                return Err("`load` needs `pattern` (basic, stepping or arrivals)".into());
            }
        } else {
            r.pattern.clone()
        };
        let p = pattern.as_str();
        let stray = |fields: &[(&str, bool)]| -> Result<(), String> {
            match fields.iter().find(|(_, present)| *present) {
                Some((name, _)) => {
                    Err(format!("`{name}` does not apply to the `{p}` load pattern"))
                }
                None => Ok(()),
            }
        };
        let closed_only = [
            ("rate", r.rate.is_some()),
            ("rate_profile", r.rate_profile.is_some()),
            ("vu_duration", r.vu_duration.is_some()),
            ("max_virtual_users", r.max_virtual_users.is_some()),
            ("preallocation", r.preallocation.is_some()),
        ];
        match p {
            "basic" => {
                stray(&closed_only)?;
                stray(&[
                    ("start_users", r.start_users.is_some()),
                    ("step_users", r.step_users.is_some()),
                    ("step_duration", r.step_duration.is_some()),
                    ("max_users", r.max_users.is_some()),
                    ("hold_final", r.hold_final.is_some()),
                    ("ramp_step", r.ramp_step.is_some()),
                    ("steps", r.steps.is_some()),
                ])?;
                let virtual_users = need(r.virtual_users, p, "virtual_users")?;
                let ramp_up = r.ramp_up.unwrap_or_default();
                match r.ramp_down {
                    None => Ok(Load::Basic {
                        virtual_users,
                        ramp_up,
                        duration: r.duration,
                        iterations: r.iterations,
                    }),
                    Some(down) => {
                        let duration = r
                            .duration
                            .ok_or("`ramp_down` needs `duration` (it ends the duration)")?;
                        if r.iterations.is_some() {
                            return Err("`ramp_down` and `iterations` do not go together: \
                                 ramp-down ends a `duration`"
                                .into());
                        }
                        if ramp_up + down > duration {
                            return Err(format!(
                                "`ramp_up` ({ramp_up:?}) and `ramp_down` ({down:?}) together are longer than `duration` ({duration:?})"
                            ));
                        }
                        Ok(Load::Levels {
                            levels: vec![
                                Level {
                                    users: virtual_users,
                                    ramp_up,
                                    duration: duration - down,
                                },
                                Level {
                                    users: 0,
                                    ramp_up: down,
                                    duration: down,
                                },
                            ],
                        })
                    }
                }
            }
            "stepping" => {
                stray(&closed_only)?;
                stray(&[
                    ("virtual_users", r.virtual_users.is_some()),
                    ("iterations", r.iterations.is_some()),
                    ("ramp_down", r.ramp_down.is_some()),
                ])?;
                if let Some(levels) = r.steps {
                    stray(&[
                        ("start_users", r.start_users.is_some()),
                        ("step_users", r.step_users.is_some()),
                        ("step_duration", r.step_duration.is_some()),
                        ("max_users", r.max_users.is_some()),
                        ("hold_final", r.hold_final.is_some()),
                        ("ramp_step", r.ramp_step.is_some()),
                        ("duration", r.duration.is_some()),
                        ("ramp_up", r.ramp_up.is_some()),
                    ])
                    .map_err(|e| format!("{e} when `steps` lists the levels"))?;
                    if levels.is_empty() {
                        return Err("`steps` is empty: give at least one level".into());
                    }
                    for (i, l) in levels.iter().enumerate() {
                        if l.ramp_up > l.duration {
                            return Err(format!(
                                "steps[{i}]: `ramp_up` ({:?}) is longer than the step's `duration` ({:?}), which includes it",
                                l.ramp_up, l.duration
                            ));
                        }
                    }
                    return Ok(Load::Levels { levels });
                }
                if r.ramp_up.is_some() {
                    return Err(
                        "`ramp_up` does not apply to the docs-style `stepping` pattern: \
                         use `ramp_step` (the ramp within each step), or `steps[]` with a \
                         `ramp_up` per level"
                            .into(),
                    );
                }
                let start_users = r.start_users.unwrap_or(0);
                let step_users = need(r.step_users, p, "step_users (or `steps`)")?;
                let step_duration = need(r.step_duration, p, "step_duration")?;
                let max_users = need(r.max_users, p, "max_users")?;
                let duration = match (r.duration, r.hold_final) {
                    (Some(_), Some(_)) => {
                        return Err("give `duration` or `hold_final`, not both: \
                             `hold_final` sets the duration (the time to reach `max_users`, then this)"
                            .into())
                    }
                    (Some(d), None) => d,
                    (None, hold) => {
                        if step_users == 0 || step_duration.is_zero() {
                            return Err("the `stepping` load pattern needs `duration` (or `hold_final`)".into());
                        }
                        let steps = max_users.saturating_sub(start_users).div_ceil(step_users);
                        let reach = step_duration
                            .checked_mul(u32::try_from(steps).unwrap_or(u32::MAX))
                            .unwrap_or(super::duration::MAX);
                        let hold = hold.unwrap_or_default();
                        // At least one step's time at the top, so the last VUs run.
                        reach.saturating_add(hold.max(if hold.is_zero() { step_duration } else { hold }))
                    }
                };
                match r.ramp_step {
                    None => Ok(Load::Stepping {
                        start_users,
                        step_users,
                        step_duration,
                        max_users,
                        duration,
                    }),
                    Some(ramp) => {
                        if ramp > step_duration {
                            return Err(format!(
                                "`ramp_step` ({ramp:?}) is longer than `step_duration` ({step_duration:?})"
                            ));
                        }
                        if step_users == 0 || step_duration.is_zero() {
                            return Err(
                                "`ramp_step` needs `step_users` and `step_duration` above zero"
                                    .into(),
                            );
                        }
                        Ok(Load::Levels {
                            levels: stepping_levels(
                                start_users,
                                step_users,
                                step_duration,
                                max_users,
                                duration,
                                ramp,
                            ),
                        })
                    }
                }
            }
            "arrivals" => {
                stray(&[
                    ("virtual_users", r.virtual_users.is_some()),
                    ("iterations", r.iterations.is_some()),
                    ("start_users", r.start_users.is_some()),
                    ("step_users", r.step_users.is_some()),
                    ("step_duration", r.step_duration.is_some()),
                    ("max_users", r.max_users.is_some()),
                    ("hold_final", r.hold_final.is_some()),
                    ("ramp_step", r.ramp_step.is_some()),
                    ("steps", r.steps.is_some()),
                    ("ramp_down", r.ramp_down.is_some()),
                ])?;
                let (rate, profile, total) = match (r.rate, r.rate_profile) {
                    (Some(_), Some(_)) => {
                        return Err("give `rate` or `rate_profile`, not both".into())
                    }
                    (Some(rate), None) => (rate, Vec::new(), None),
                    (None, Some(steps)) => {
                        if steps.is_empty() {
                            return Err("`rate_profile` is empty".into());
                        }
                        let peak = steps.iter().map(|s| s.rate).fold(0.0, f64::max);
                        if peak <= 0.0 || !peak.is_finite() {
                            return Err("`rate_profile` needs a rate above 0".into());
                        }
                        if let Some(s) = steps
                            .iter()
                            .find(|s| !(s.rate >= 0.0 && s.rate.is_finite()))
                        {
                            return Err(format!(
                                "`rate_profile` rate {} is not a rate per second of 0 or more",
                                s.rate
                            ));
                        }
                        let total = steps.iter().map(|s| s.duration).sum::<Duration>();
                        (
                            peak,
                            steps.iter().map(|s| (s.rate / peak, s.duration)).collect(),
                            Some(total),
                        )
                    }
                    (None, None) => {
                        return Err(
                            "the `arrivals` load pattern needs `rate` (or `rate_profile`)".into(),
                        )
                    }
                };
                let ramp_up = r.ramp_up.unwrap_or_default();
                let duration = match (r.duration, total) {
                    (Some(d), _) => d,
                    (None, Some(t)) => ramp_up.saturating_add(t),
                    (None, None) => {
                        return Err("the `arrivals` load pattern needs `duration`".into())
                    }
                };
                if ramp_up > duration {
                    return Err(format!(
                        "`ramp_up` ({ramp_up:?}) is longer than `duration` ({duration:?})"
                    ));
                }
                if r.vu_duration.is_some_and(|d| d.is_zero()) {
                    return Err("`vu_duration` must be above zero".into());
                }
                Ok(Load::Arrivals {
                    rate,
                    duration,
                    max_virtual_users: r.max_virtual_users,
                    preallocation: r.preallocation,
                    shape: ArrivalShape {
                        ramp_up,
                        vu_duration: r.vu_duration,
                        profile,
                    },
                })
            }
            other => Err(format!(
                "unknown load pattern `{other}` (supported: basic, stepping, arrivals)"
            )),
        }
    }
}

/// The docs-style stepping with a `ramp_step` as levels: `start_users` at once, then each step
/// ramps `step_users` more over `ramp` and holds, until `max_users`, all within `duration`.
fn stepping_levels(
    start: u64,
    step: u64,
    step_duration: Duration,
    max: u64,
    duration: Duration,
    ramp: Duration,
) -> Vec<Level> {
    let mut levels = Vec::new();
    let mut users = start.min(max);
    let mut at = Duration::ZERO;
    levels.push(Level {
        users,
        ramp_up: Duration::ZERO,
        duration: step_duration.min(duration),
    });
    at += step_duration;
    while users < max && at < duration {
        users = (users + step).min(max);
        let len = step_duration.min(duration - at);
        levels.push(Level {
            users,
            ramp_up: ramp.min(len),
            duration: len,
        });
        at += step_duration;
    }
    if at < duration {
        levels.push(Level {
            users,
            ramp_up: Duration::ZERO,
            duration: duration - at,
        });
    }
    levels
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
            Load::Levels { levels } => RawLoad {
                pattern: "stepping".into(),
                steps: Some(levels),
                ..Default::default()
            },
            Load::Arrivals {
                rate,
                duration,
                max_virtual_users,
                preallocation,
                shape,
            } => {
                let profile = (!shape.profile.is_empty()).then(|| {
                    shape
                        .profile
                        .iter()
                        .map(|(f, d)| RateStep {
                            rate: f * rate,
                            duration: *d,
                        })
                        .collect()
                });
                RawLoad {
                    pattern: "arrivals".into(),
                    rate: profile.is_none().then_some(rate),
                    rate_profile: profile,
                    duration: Some(duration),
                    ramp_up: (!shape.ramp_up.is_zero()).then_some(shape.ramp_up),
                    vu_duration: shape.vu_duration,
                    max_virtual_users,
                    preallocation,
                    ..Default::default()
                }
            }
            Load::Phases(_) => RawLoad {
                pattern: "phases".into(),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Load, String> {
        serde_norway::from_str::<Load>(text).map_err(|e| e.to_string())
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn bare_numbers_are_milliseconds_and_aliases_name_the_vus() {
        let l = load("{pattern: basic, vus: 3, duration: 1500, ramp_up: 500}").unwrap();
        assert_eq!(
            l,
            Load::Basic {
                virtual_users: 3,
                ramp_up: Duration::from_millis(500),
                duration: Some(Duration::from_millis(1500)),
                iterations: None
            }
        );
        let l = load("{pattern: basic, users: 2}").unwrap();
        assert!(matches!(
            l,
            Load::Basic {
                virtual_users: 2,
                duration: None,
                iterations: None,
                ..
            }
        ));
        assert!(load("{pattern: basic, users: 2, vus: 3}")
            .unwrap_err()
            .contains("the same setting"));
        assert!(load("{pattern: basic, vus: 1, think_time: 1s}")
            .unwrap_err()
            .contains("global.think_time"));
        assert!(load("{pattern: basic, vus: 1, rate: 3}")
            .unwrap_err()
            .contains("`rate` does not apply"));
        assert!(load("{pattern: basic, vus: 1, name: x}")
            .unwrap_err()
            .contains("labels a phase"));
    }

    #[test]
    fn stepping_forms() {
        let l = load("{pattern: stepping, steps: [{users: 2, duration: 2s}, {users: 5, duration: 3s, ramp_up: 1s}, {users: 1, duration: 1s}]}").unwrap();
        let Load::Levels { levels } = &l else {
            panic!("{l:?}")
        };
        assert_eq!(levels.len(), 3);
        assert_eq!(levels[1].ramp_up, s(1));
        assert!(
            load("{pattern: stepping, steps: [{users: 2, duration: 1s, ramp_up: 2s}]}")
                .unwrap_err()
                .contains("includes it")
        );
        assert!(
            load("{pattern: stepping, steps: [{users: 2, duration: 1s}], ramp_up: 1s}")
                .unwrap_err()
                .contains("`ramp_up` does not apply")
        );
        assert!(load("{pattern: stepping, start_users: 1, step_users: 1, step_duration: 1s, max_users: 3, duration: 5s, ramp_up: 2s}")
            .unwrap_err()
            .contains("ramp_step"));
        let l = load("{pattern: stepping, start_users: 1, step_users: 2, step_duration: 10s, max_users: 5, hold_final: 30s}").unwrap();
        assert!(matches!(l, Load::Stepping { duration, .. } if duration == s(50)));
        let l = load("{pattern: stepping, start_users: 1, step_users: 2, step_duration: 10s, max_users: 5, duration: 40s, ramp_step: 4s}").unwrap();
        let Load::Levels { levels } = &l else {
            panic!("{l:?}")
        };
        let users: Vec<u64> = levels.iter().map(|l| l.users).collect();
        assert_eq!(users, [1, 3, 5, 5]);
        assert_eq!(levels.iter().map(|l| l.duration).sum::<Duration>(), s(40));
    }

    #[test]
    fn arrival_forms_and_phases() {
        let l = load("{pattern: arrivals, rate_profile: [{rate: 10, duration: 2s}, {rate: 40, duration: 1s}], ramp_up: 1s, vu_duration: 500}").unwrap();
        let Load::Arrivals {
            rate,
            duration,
            shape,
            ..
        } = &l
        else {
            panic!("{l:?}")
        };
        assert_eq!((*rate, *duration), (40.0, s(4)));
        assert_eq!(shape.profile, vec![(0.25, s(2)), (1.0, s(1))]);
        assert_eq!(shape.vu_duration, Some(Duration::from_millis(500)));
        let back: Load = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
        assert!(
            load("{pattern: arrivals, rate: 1, duration: 1s, ramp_up: 2s}")
                .unwrap_err()
                .contains("longer than `duration`")
        );
        let l = load("[{name: warm, pattern: basic, vus: 1, duration: 1s}, {pattern: arrivals, rate: 2, duration: 1s}]").unwrap();
        let Load::Phases(ps) = &l else {
            panic!("{l:?}")
        };
        assert_eq!(ps[0].name.as_deref(), Some("warm"));
        let back: Load = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }
}
