//! Counters of one step beside its latency histogram, and the sample a VU produces per request.

use super::Latency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one request produced.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index of the HTTP step in the test's flat step list.
    pub step: usize,
    pub latency_us: u64,
    /// `None` when no response came back (timeout, refused connection).
    pub status: Option<u16>,
    /// Why the request counts as an error, if it does.
    pub error: Option<String>,
    pub checks_passed: u32,
    /// Descriptions of the checks that failed.
    pub failed_checks: Vec<String>,
    pub bytes: u64,
}

/// Everything measured for one step over some period; adds up exactly.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepStats {
    pub latency: Latency,
    pub count: u64,
    pub errors: u64,
    pub bytes: u64,
    pub status: BTreeMap<u16, u64>,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub check_failures: BTreeMap<String, u64>,
}

impl StepStats {
    /// Adds one request.
    pub fn record(&mut self, s: &Sample) {
        self.latency.record_us(s.latency_us);
        self.count += 1;
        self.bytes += s.bytes;
        if let Some(code) = s.status {
            *self.status.entry(code).or_default() += 1;
        }
        if let Some(kind) = &s.error {
            self.errors += 1;
            *self.errors_by_kind.entry(kind.clone()).or_default() += 1;
        }
        self.checks_passed += u64::from(s.checks_passed);
        self.checks_failed += s.failed_checks.len() as u64;
        for c in &s.failed_checks {
            *self.check_failures.entry(c.clone()).or_default() += 1;
        }
    }

    /// Adds everything in `other`.
    pub fn merge(&mut self, other: &StepStats) {
        self.latency
            .merge(&other.latency)
            .expect("histograms share fixed bounds");
        self.count += other.count;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.checks_passed += other.checks_passed;
        self.checks_failed += other.checks_failed;
        add_maps(&mut self.status, &other.status);
        add_maps(&mut self.errors_by_kind, &other.errors_by_kind);
        add_maps(&mut self.check_failures, &other.check_failures);
    }

    /// Empties the stats, keeping the histogram's allocation.
    pub fn reset(&mut self) {
        let mut latency = std::mem::take(&mut self.latency);
        latency.reset();
        *self = StepStats {
            latency,
            ..Default::default()
        };
    }
}

fn add_maps<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}
