//! The test file as serde types, one file per YAML section, re-exported here so
//! `config::model::X` keeps naming every one of them. Every struct denies unknown keys so a typo or an
//! unsupported feature is refused by name instead of silently ignored.

pub use super::check::*;
pub use super::distributed::*;
pub use super::load::*;
pub use super::outputs::{Output, OutputKind, Report};
pub use super::scenario::*;
pub use super::step::*;
pub use super::test_file::*;
