//! Command-line overrides of a test's load (`--vus`, `--duration`, `--iterations`, `--ramp-up`,
//! `--base-url`), applied only where they fit the load pattern, then re-checked.

use super::{check, Load, TestFile};

#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub vus: Option<u64>,
    pub duration: Option<std::time::Duration>,
    pub iterations: Option<u64>,
    /// The ramp of `basic` (VU starts) or `arrivals` (the rate's climb).
    pub ramp_up: Option<std::time::Duration>,
    pub base_url: Option<String>,
}

impl Overrides {
    /// Applies the overrides that fit the test's load pattern; refuses the ones that do not.
    pub fn apply(&self, test: &mut TestFile) -> Result<(), super::Invalid> {
        if let Some(url) = &self.base_url {
            test.global.base_url = Some(url.clone());
        }
        match &mut test.load {
            Load::Levels { .. } | Load::Phases(_) => {
                if self.vus.is_some()
                    || self.duration.is_some()
                    || self.iterations.is_some()
                    || self.ramp_up.is_some()
                {
                    return Err(super::Invalid(
                        "--vus, --duration, --iterations and --ramp-up do not apply to `steps[]` levels or a `load:` list of phases".into(),
                    ));
                }
            }
            Load::Basic {
                virtual_users,
                duration,
                iterations,
                ramp_up,
            } => {
                if let Some(r) = self.ramp_up {
                    *ramp_up = r;
                }
                if let Some(v) = self.vus {
                    *virtual_users = v;
                }
                if let Some(d) = self.duration {
                    *duration = Some(d);
                }
                if let Some(i) = self.iterations {
                    *iterations = Some(i);
                    if self.duration.is_none() {
                        *duration = None;
                    }
                }
            }
            Load::Stepping {
                duration,
                max_users,
                ..
            } => {
                if self.iterations.is_some() {
                    return Err(super::Invalid(
                        "--iterations applies to the `basic` pattern only".into(),
                    ));
                }
                if self.ramp_up.is_some() {
                    return Err(super::Invalid(
                        "--ramp-up applies to `basic` and `arrivals`; stepping adds users every `step_duration`".into(),
                    ));
                }
                if let Some(v) = self.vus {
                    *max_users = v;
                }
                if let Some(d) = self.duration {
                    *duration = d;
                }
            }
            Load::Arrivals {
                duration,
                max_virtual_users,
                shape,
                ..
            } => {
                if let Some(r) = self.ramp_up {
                    shape.ramp_up = r;
                }
                if self.iterations.is_some() {
                    return Err(super::Invalid(
                        "--iterations applies to the `basic` pattern only".into(),
                    ));
                }
                if let Some(v) = self.vus {
                    *max_virtual_users = Some(v);
                }
                if let Some(d) = self.duration {
                    *duration = d;
                }
            }
        }
        check(test)
    }
}
