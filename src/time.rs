//! Wall-clock readings in the units the wire uses. Every role stamps events in Unix milliseconds;
//! clock-offset estimates and start instants need µs, so there is a fractional reading too. One
//! home so that the worker, the controller and the console agree on what "now" means.

use std::time::{SystemTime, UNIX_EPOCH};

/// This machine's clock in whole milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// This machine's clock in milliseconds since the Unix epoch, with µs precision.
pub fn precise_now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}
