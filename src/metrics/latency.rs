//! A latency histogram in microseconds (1 µs to 1 h, 3 significant digits) that serializes to a
//! compact base64 string (HDR V2 + deflate) so it can cross the wire and be merged without loss.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use thiserror::Error;

/// The cookie that opens an HDR V2 deflate-compressed histogram (`0x1c849304 | 0x10`).
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

/// Highest trackable latency: one hour, in microseconds.
const MAX_US: u64 = 3_600_000_000;

/// Why a histogram could not be read or merged.
#[derive(Debug, Error)]
pub enum LatencyError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram bytes are corrupt: {0}")]
    Decode(String),
    #[error("histograms could not be merged: {0}")]
    Merge(String),
}

/// Latencies of one step (or the whole run), in microseconds.
#[derive(Clone, Debug)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Latency {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Latency {
    /// An empty histogram with the project's fixed bounds.
    pub fn new() -> Self {
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("constant bounds are valid"))
    }

    /// Records one latency; values beyond an hour are clamped rather than lost.
    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(1, MAX_US));
    }

    /// Adds every sample of `other` (exact).
    pub fn merge(&mut self, other: &Latency) -> Result<(), LatencyError> {
        self.0
            .add(&other.0)
            .map_err(|e| LatencyError::Merge(format!("{e:?}")))
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// How many recorded latencies are at most `us` (at the histogram's resolution).
    pub fn count_at_most_us(&self, us: u64) -> u64 {
        self.0.count_between(0, us)
    }

    /// The value at `q` (0..=1) in milliseconds, 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn min_ms(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.min() as f64 / 1000.0
        }
    }

    pub fn max_ms(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.max() as f64 / 1000.0
        }
    }

    pub fn mean_ms(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.mean() / 1000.0
        }
    }

    /// Every distinct recorded value (ms, at the histogram's resolution) with its count, lowest
    /// first: what a per-request view can be rebuilt from (`worker::ts_compat`).
    pub fn recorded_ms(&self) -> Vec<(f64, u64)> {
        self.0
            .iter_recorded()
            .map(|v| {
                let us = self.0.median_equivalent(v.value_iterated_to());
                (us as f64 / 1000.0, v.count_at_value())
            })
            .collect()
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// HDR V2 deflate bytes, base64-encoded.
    ///
    /// The standard V2 deflate layout (cookie, compressed length, zlib stream), written here rather
    /// than with hdrhistogram's `V2DeflateSerializer` only to pick zlib's fast level: any HDR
    /// decoder reads it, and the master, which re-serializes every worker's histograms each second,
    /// spends a fraction of the time for output a few percent larger.
    pub fn to_base64(&self) -> String {
        let mut plain = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut plain)
            .expect("serializing to a Vec cannot fail");
        let mut out = Vec::with_capacity(plain.len() / 2 + 8);
        out.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::fast());
        z.write_all(&plain)
            .expect("compressing into a Vec cannot fail");
        let mut out = z.finish().expect("compressing into a Vec cannot fail");
        let len = (out.len() - 8) as u32;
        out[4..8].copy_from_slice(&len.to_be_bytes());
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// The inverse of [`Latency::to_base64`].
    pub fn from_base64(text: &str) -> Result<Self, LatencyError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| LatencyError::Decode(format!("{e:?}")))?;
        // Ours, with the project's bounds, is used as read: the master reads every worker's
        // histograms each second, and copying each into a fresh one doubled that.
        if h.low() == 1 && h.high() == MAX_US && h.sigfig() == 3 {
            return Ok(Latency(h));
        }
        let mut out = Latency::new();
        out.0
            .add(&h)
            .map_err(|e| LatencyError::Decode(format!("{e:?}")))?;
        Ok(out)
    }
}

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Latency::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_through_base64() {
        let mut h = Latency::new();
        for v in [1, 10, 100, 1_000, 250_000] {
            h.record_us(v);
        }
        let back = Latency::from_base64(&h.to_base64()).unwrap();
        assert_eq!(back, h);
        assert!(Latency::from_base64("not base64!").is_err());
        assert!(Latency::from_base64("aGVsbG8=").is_err());
    }

    proptest! {
        /// Merging per-part histograms gives exactly the percentiles of one histogram over the union.
        #[test]
        fn merge_equals_union(parts in proptest::collection::vec(proptest::collection::vec(1u64..5_000_000, 0..200), 1..6)) {
            let mut union = Latency::new();
            let mut merged = Latency::new();
            for part in &parts {
                let mut h = Latency::new();
                for &v in part { h.record_us(v); union.record_us(v); }
                let wire = Latency::from_base64(&h.to_base64()).unwrap();
                merged.merge(&wire).unwrap();
            }
            for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                prop_assert_eq!(merged.quantile_ms(q), union.quantile_ms(q));
            }
            prop_assert_eq!(merged.count(), union.count());
        }
    }
}
