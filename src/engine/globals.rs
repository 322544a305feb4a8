//! Global variables: values extracted into a name starting with `global.` are shared by every VU
//! of the run, and (in a distributed run) by every worker, the controller carrying them (see
//! `control::variables`). Each value carries the wall-clock instant it was set; two copies merge
//! the same way everywhere, so all workers converge: with `variable_synchronization` the later
//! value wins (a change propagates), without it the first one (set once, then fixed). Equal
//! instants are ordered by the value itself.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The prefix that marks an extraction (and a template name) as global.
pub const PREFIX: &str = "global.";

/// One global value and when it was set (ms since the epoch, on the setting worker's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    pub value: String,
    pub at_ms: u64,
}

/// The run's global variables, by name without the prefix.
#[derive(Debug, Default)]
pub struct Globals {
    values: Mutex<BTreeMap<String, Value>>,
    /// Bumped at every change, so a VU copies the values only when something changed.
    version: AtomicU64,
    /// The later value wins (`variable_synchronization: true`); else the first.
    later_wins: bool,
}

/// Whether `new` replaces `old` under the rule.
fn wins(new: &Value, old: &Value, later_wins: bool) -> bool {
    let (a, b) = ((new.at_ms, &new.value), (old.at_ms, &old.value));
    if later_wins {
        a > b
    } else {
        a < b
    }
}

/// Merges `incoming` into `into`; true when anything changed.
pub fn merge(
    into: &mut BTreeMap<String, Value>,
    incoming: &BTreeMap<String, Value>,
    later_wins: bool,
) -> bool {
    let mut changed = false;
    for (k, v) in incoming {
        match into.get(k) {
            Some(old) if !wins(v, old, later_wins) => {}
            _ => {
                into.insert(k.clone(), v.clone());
                changed = true;
            }
        }
    }
    changed
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Globals {
    pub fn new(later_wins: bool) -> Self {
        Self {
            later_wins,
            ..Default::default()
        }
    }

    /// The rule `test` asks for: `variable_synchronization: false` keeps the first value.
    pub fn for_test(test: &crate::config::TestFile) -> Self {
        let sync = test
            .distributed
            .as_ref()
            .and_then(|d| d.data_consistency.as_ref())
            .and_then(|d| d.variables.as_ref())
            .and_then(|v| v.variable_synchronization);
        Self::new(sync != Some(false))
    }

    /// A VU extracted `value` into `global.NAME`.
    pub fn set(&self, name: &str, value: String) {
        let v = Value {
            value,
            at_ms: now_ms(),
        };
        self.merge(&BTreeMap::from([(name.to_string(), v)]));
    }

    /// Merges values from elsewhere (the controller); true when anything changed.
    pub fn merge(&self, incoming: &BTreeMap<String, Value>) -> bool {
        let mut values = self.values.lock().expect("globals lock");
        let changed = merge(&mut values, incoming, self.later_wins);
        if changed {
            self.version.fetch_add(1, Ordering::Release);
        }
        changed
    }

    /// Whether the later value wins (`variable_synchronization`).
    pub fn later_wins(&self) -> bool {
        self.later_wins
    }

    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        self.values.lock().expect("globals lock").clone()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Copies every value into a VU's variables as `global.NAME`, if anything changed since
    /// `seen`; updates `seen`.
    pub fn copy_into(&self, vars: &mut HashMap<String, String>, seen: &mut u64) {
        let now = self.version();
        if now == *seen {
            return;
        }
        *seen = now;
        for (k, v) in self.values.lock().expect("globals lock").iter() {
            vars.insert(format!("{PREFIX}{k}"), v.value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(value: &str, at_ms: u64) -> BTreeMap<String, Value> {
        BTreeMap::from([(
            "token".to_string(),
            Value {
                value: value.into(),
                at_ms,
            },
        )])
    }

    #[test]
    fn later_wins_with_synchronization_and_first_wins_without() {
        let synced = Globals::new(true);
        assert!(synced.merge(&v("a", 10)));
        assert!(synced.merge(&v("b", 20)));
        assert!(!synced.merge(&v("c", 15)), "older than what is there");
        assert_eq!(synced.snapshot()["token"].value, "b");
        let fixed = Globals::new(false);
        assert!(fixed.merge(&v("a", 10)));
        assert!(!fixed.merge(&v("b", 20)), "set once");
        assert_eq!(fixed.snapshot()["token"].value, "a");
        let mut vars = HashMap::new();
        let mut seen = 0;
        fixed.copy_into(&mut vars, &mut seen);
        assert_eq!(vars["global.token"], "a");
    }
}
