//! Measurements: HDR latency histograms per step ([`Latency`]), the counters beside them
//! ([`StepStats`]), and the task that closes a batch of them every second ([`collector`]).
//! Everything here merges exactly, so numbers from many VUs, seconds or workers add up to the
//! same percentiles a single histogram over all samples would give.

pub mod collector;
mod latency;
pub mod monitor;
pub mod raw;
pub mod resources;
mod sparse;
mod stats;

pub use latency::{Latency, LatencyError};
pub use stats::{Sample, StepStats};
