//! The strategies that split a test's load across workers. They are part of the test's vocabulary
//! (`distributed.strategy` in YAML, `-s` on the command line, `strategy` in a run submission), so the
//! names live here with the rest of the model; [`crate::control::plan`] does the splitting.

use serde::{Deserialize, Serialize};

/// How load is split when the test gives no explicit `distributed.distribution` or `weights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The same share for every worker.
    #[value(name = "even")]
    Even,
    /// Shares in proportion to each worker's `capacity`.
    #[default]
    #[value(name = "capacity_based", alias = "capacity-based")]
    CapacityBased,
    /// Unit k goes to worker k mod n.
    #[value(name = "round_robin", alias = "round-robin")]
    RoundRobin,
    /// Even across regions, then even within each region.
    #[value(name = "geographic")]
    Geographic,
}

impl Strategy {
    /// Every strategy, in the order they are listed to users.
    pub const ALL: [Strategy; 4] = [
        Strategy::Even,
        Strategy::CapacityBased,
        Strategy::RoundRobin,
        Strategy::Geographic,
    ];

    /// The name used on the command line and in records.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Even => "even",
            Strategy::CapacityBased => "capacity_based",
            Strategy::RoundRobin => "round_robin",
            Strategy::Geographic => "geographic",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Strategy;
    use clap::ValueEnum;

    #[test]
    fn names_round_trip_through_clap_and_serde() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::from_str(&s.to_string(), false).unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
        }
        assert_eq!(Strategy::default(), Strategy::CapacityBased);
        assert_eq!(
            Strategy::from_str("capacity-based", false).unwrap(),
            Strategy::CapacityBased
        );
        assert!(Strategy::from_str("fastest", false).is_err());
    }
}
