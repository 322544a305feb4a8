//! A latency histogram in microseconds (1 µs to 1 h, 3 significant digits) that serializes to a
//! compact base64 string (HDR V2 + deflate) so it can cross the wire and be merged without loss.
//!
//! A full histogram with these bounds is 23,552 counters (188 KB). Most histograms a master
//! handles hold a few hundred distinct values (one step of one worker for one second), so a
//! histogram starts as its non-zero counts by value: read straight from the wire ([`sparse`]),
//! merged as sorted lists while the result has at most [`SPARSE_MAX`] values, asked for quantiles
//! by walking them, written back as read. It becomes a full histogram when it records, or when a
//! merge would take it over that.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::Write as _;
use std::sync::{Arc, LazyLock};
use thiserror::Error;

use super::sparse::{self, Bounds, Read, V2_COMPRESSED_COOKIE};

/// Highest trackable latency: one hour, in microseconds.
const MAX_US: u64 = 3_600_000_000;
/// Most distinct values a histogram keeps as a list before it becomes a full one.
const SPARSE_MAX: usize = 512;

/// An empty full histogram: the bounds' reference for value arithmetic (equivalent ranges).
static EMPTY: LazyLock<Histogram<u64>> =
    LazyLock::new(|| Histogram::new_with_bounds(1, MAX_US, 3).expect("constant bounds are valid"));

/// The project's bounds, for reading histograms sparsely (see [`sparse`]).
static BOUNDS: LazyLock<Bounds> = LazyLock::new(|| Bounds {
    low: 1,
    high: MAX_US,
    sigfig: 3,
    len: EMPTY.distinct_values(),
    half_magnitude: 10,
});

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
pub struct Latency(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// A histogram that records and merges.
    Full(Histogram<u64>),
    /// Counts by value: any number as read, at most [`SPARSE_MAX`] once merged into.
    Sparse {
        /// Non-zero counts by value (each its bucket's lowest value), lowest first.
        counts: Vec<(u64, u64)>,
        /// The text it was read from, while unchanged.
        text: Option<Arc<str>>,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Latency {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Sparse { counts: a, .. }, Repr::Sparse { counts: b, .. }) => a == b,
            _ => *self.full() == *other.full(),
        }
    }
}

impl Latency {
    /// An empty histogram with the project's fixed bounds.
    pub fn new() -> Self {
        Self(Repr::Sparse {
            counts: Vec::new(),
            text: None,
        })
    }

    /// The full histogram (for a sparse one, built from its counts: only comparisons need it).
    fn full(&self) -> Cow<'_, Histogram<u64>> {
        match &self.0 {
            Repr::Full(h) => Cow::Borrowed(h),
            Repr::Sparse { counts, .. } => Cow::Owned(build(counts)),
        }
    }

    /// The full histogram to record into, built first if this one is sparse.
    fn full_mut(&mut self) -> &mut Histogram<u64> {
        if let Repr::Sparse { counts, .. } = &self.0 {
            self.0 = Repr::Full(build(counts));
        }
        match &mut self.0 {
            Repr::Full(h) => h,
            Repr::Sparse { .. } => unreachable!("just built"),
        }
    }

    /// Records one latency; values beyond an hour are clamped rather than lost.
    pub fn record_us(&mut self, us: u64) {
        self.full_mut().saturating_record(us.clamp(1, MAX_US));
    }

    /// Adds every sample of `other` (exact).
    pub fn merge(&mut self, other: &Latency) -> Result<(), LatencyError> {
        match (&mut self.0, &other.0) {
            (_, Repr::Sparse { counts: add, .. }) if add.is_empty() => Ok(()),
            (Repr::Sparse { counts, text }, Repr::Sparse { counts: add, .. })
                if counts.len() + add.len() <= SPARSE_MAX =>
            {
                *counts = merge_sorted(counts, add);
                *text = None;
                Ok(())
            }
            (_, Repr::Sparse { counts: add, .. }) => {
                let h = self.full_mut();
                for &(value, n) in add {
                    h.saturating_record_n(value, n);
                }
                Ok(())
            }
            (_, Repr::Full(o)) => self
                .full_mut()
                .add(o)
                .map_err(|e| LatencyError::Merge(format!("{e:?}"))),
        }
    }

    pub fn count(&self) -> u64 {
        match &self.0 {
            Repr::Full(h) => h.len(),
            Repr::Sparse { counts, .. } => counts.iter().map(|(_, n)| n).sum(),
        }
    }

    /// How many recorded latencies are at most `us` (at the histogram's resolution).
    pub fn count_at_most_us(&self, us: u64) -> u64 {
        match &self.0 {
            Repr::Full(h) => h.count_between(0, us),
            Repr::Sparse { counts, .. } => {
                let top = EMPTY.lowest_equivalent(us);
                counts
                    .iter()
                    .take_while(|(v, _)| *v <= top)
                    .map(|(_, n)| n)
                    .sum()
            }
        }
    }

    /// The value at `q` (0..=1) in milliseconds, 0 when empty. A sparse histogram walks its
    /// counts as `hdrhistogram`'s `value_at_quantile` walks its counters (the tests hold them equal).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let us = match &self.0 {
            Repr::Full(h) if h.is_empty() => 0,
            Repr::Full(h) => h.value_at_quantile(q),
            Repr::Sparse { counts, .. } => {
                let q = q.min(1.0);
                let total = self.count();
                let target = ((q * total as f64).ceil() as u64).max(1);
                let mut seen = 0;
                let found = counts.iter().find(|(_, n)| {
                    seen += n;
                    seen >= target
                });
                match found {
                    None => 0,
                    Some(&(v, _)) if q == 0.0 => EMPTY.lowest_equivalent(v),
                    Some(&(v, _)) => EMPTY.highest_equivalent(v),
                }
            }
        };
        us as f64 / 1000.0
    }

    pub fn min_ms(&self) -> f64 {
        let us = match &self.0 {
            Repr::Full(h) if h.is_empty() => 0,
            Repr::Full(h) => h.min(),
            Repr::Sparse { counts, .. } => counts.first().map_or(0, |&(v, _)| v),
        };
        us as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        let us = match &self.0 {
            Repr::Full(h) if h.is_empty() => 0,
            Repr::Full(h) => h.max(),
            Repr::Sparse { counts, .. } => counts
                .last()
                .map_or(0, |&(v, _)| EMPTY.highest_equivalent(v)),
        };
        us as f64 / 1000.0
    }

    /// The mean in milliseconds, summed as `hdrhistogram`'s `mean` sums (each distinct value at
    /// the middle of its bucket, lowest first), 0 when empty.
    pub fn mean_ms(&self) -> f64 {
        let us = match &self.0 {
            Repr::Full(h) if h.is_empty() => 0.0,
            Repr::Full(h) => h.mean(),
            Repr::Sparse { counts, .. } => {
                let total = self.count() as f64;
                counts.iter().fold(0.0, |sum, &(v, n)| {
                    sum + middle(v) as f64 * n as f64 / total
                })
            }
        };
        us / 1000.0
    }

    /// Every distinct recorded value (ms, at the middle of its bucket) with its count, lowest
    /// first: what a per-request view can be rebuilt from (`worker::ts_compat`).
    pub fn recorded_ms(&self) -> Vec<(f64, u64)> {
        match &self.0 {
            Repr::Full(h) => h
                .iter_recorded()
                .map(|v| {
                    let us = h.median_equivalent(v.value_iterated_to());
                    (us as f64 / 1000.0, v.count_at_value())
                })
                .collect(),
            Repr::Sparse { counts, .. } => counts
                .iter()
                .map(|&(v, n)| (middle(v) as f64 / 1000.0, n))
                .collect(),
        }
    }

    pub fn reset(&mut self) {
        match &mut self.0 {
            Repr::Full(h) => h.reset(),
            Repr::Sparse { .. } => *self = Latency::new(),
        }
    }

    /// HDR V2 deflate bytes, base64-encoded (see [`encode`]). One read from the wire and unchanged
    /// since is written back as it was read.
    pub fn to_base64(&self) -> String {
        match &self.0 {
            Repr::Sparse { text: Some(t), .. } => t.to_string(),
            Repr::Sparse { counts, .. } => deflate(sparse::write(counts, &BOUNDS)),
            Repr::Full(h) => encode(h),
        }
    }

    /// The inverse of [`Latency::to_base64`]. A histogram with the project's bounds is kept as its
    /// counts (see [`sparse`]), however many (merging it records each into the target); any other
    /// HDR V2 histogram is read whole and added into one with the project's bounds.
    pub fn from_base64(text: &str) -> Result<Self, LatencyError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
        if let Read::Sparse(counts) = sparse::read(&bytes, &BOUNDS).map_err(LatencyError::Decode)? {
            return Ok(Latency(Repr::Sparse {
                counts,
                text: Some(text.into()),
            }));
        }
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| LatencyError::Decode(format!("{e:?}")))?;
        let mut out = Latency::new();
        out.full_mut()
            .add(&h)
            .map_err(|e| LatencyError::Decode(format!("{e:?}")))?;
        Ok(out)
    }
}

/// A full histogram with the project's bounds holding `counts` (values within bounds, as
/// [`sparse::read`] gives them).
fn build(counts: &[(u64, u64)]) -> Histogram<u64> {
    // A new one, not a clone of `EMPTY`: its zeroed counters are mapped lazily by the system, while
    // a clone writes (and so faults in) every page of its 188 KB.
    let mut h = Histogram::new_with_bounds(1, MAX_US, 3).expect("constant bounds are valid");
    for &(value, n) in counts {
        h.saturating_record_n(value, n);
    }
    h
}

/// The middle of the bucket whose lowest value is `v`, as `hdrhistogram` reports a recorded value.
fn middle(v: u64) -> u64 {
    EMPTY.median_equivalent(EMPTY.highest_equivalent(v))
}

/// Two lists of counts by value (each lowest first, values unique) as one.
fn merge_sorted(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let ((va, na), (vb, nb)) = (a[i], b[j]);
        if va == vb {
            out.push((va, na.saturating_add(nb)));
            i += 1;
            j += 1;
        } else if va < vb {
            out.push((va, na));
            i += 1;
        } else {
            out.push((vb, nb));
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The standard V2 deflate layout (cookie, compressed length, zlib stream), written here rather
/// than with hdrhistogram's `V2DeflateSerializer` only to pick zlib's fast level: any HDR decoder
/// reads it, and the master, which re-serializes every worker's histograms each second, spends a
/// fraction of the time for output a few percent larger.
fn encode(h: &Histogram<u64>) -> String {
    let mut plain = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut plain)
        .expect("serializing to a Vec cannot fail");
    deflate(plain)
}

/// Plain V2 bytes in the V2 deflate layout, base64-encoded (see [`encode`]).
fn deflate(plain: Vec<u8>) -> String {
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

    /// The V2 bytes of `h` as `hdrhistogram`'s own deflate serializer writes them.
    fn their_base64(h: &Histogram<u64>) -> String {
        use hdrhistogram::serialization::V2DeflateSerializer;
        let mut out = Vec::new();
        V2DeflateSerializer::new().serialize(h, &mut out).unwrap();
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    #[test]
    fn a_histogram_with_other_bounds_is_read_whole_and_merged_exactly() {
        let mut theirs = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
        for v in [3, 40, 512, 9_999, 1_234_567] {
            theirs.record(v).unwrap();
        }
        let read = Latency::from_base64(&their_base64(&theirs)).unwrap();
        assert!(matches!(read.0, Repr::Full(_)));
        assert_eq!(read.count(), 5);
        // At their resolution (2 significant digits).
        let max = theirs.max() as f64;
        assert!(
            (read.max_ms() * 1000.0 - max).abs() <= max * 0.01,
            "{}",
            read.max_ms()
        );
    }

    #[test]
    fn a_histogram_stays_a_list_of_counts_until_it_outgrows_it() {
        let mut parts = (0..2).map(|k| {
            let mut h = Latency::new();
            for v in 0..(SPARSE_MAX as u64 / 2) {
                h.record_us(1 + 2 * v + k);
            }
            Latency::from_base64(&h.to_base64()).unwrap()
        });
        let mut m = Latency::new();
        m.merge(&parts.next().unwrap()).unwrap();
        m.merge(&parts.next().unwrap()).unwrap();
        assert!(matches!(m.0, Repr::Sparse { .. }), "{SPARSE_MAX} values");
        let mut one_more = Latency::new();
        one_more.record_us(100_000);
        m.merge(&Latency::from_base64(&one_more.to_base64()).unwrap())
            .unwrap();
        assert!(matches!(m.0, Repr::Full(_)));
        assert_eq!(m.count(), SPARSE_MAX as u64 + 1);
    }

    #[test]
    fn an_empty_histogram_reads_as_empty() {
        let read = Latency::from_base64(&Latency::new().to_base64()).unwrap();
        assert!(matches!(read.0, Repr::Sparse { .. }));
        assert_eq!(read.count(), 0);
        assert_eq!(read.quantile_ms(0.99), 0.0);
        let mut m = Latency::new();
        m.merge(&read).unwrap();
        assert_eq!(m, Latency::new());
    }

    proptest! {
        /// A histogram read sparsely is the histogram `hdrhistogram` reads from the same bytes,
        /// whichever serializer wrote them, and merging it adds exactly what adding that one does.
        #[test]
        fn sparse_reading_equals_reading_whole(
            values in proptest::collection::vec((1u64..=MAX_US, 1u64..1_000), 0..300),
            base in proptest::collection::vec(1u64..=MAX_US, 0..50),
        ) {
            let mut h = Latency::new();
            for &(v, n) in &values {
                for _ in 0..n.min(3) { h.record_us(v); }
            }
            let whole: Histogram<u64> = Deserializer::new()
                .deserialize(&mut base64::engine::general_purpose::STANDARD.decode(h.to_base64()).unwrap().as_slice())
                .unwrap();
            for text in [h.to_base64(), their_base64(&h.full())] {
                let read = Latency::from_base64(&text).unwrap();
                prop_assert!(matches!(read.0, Repr::Sparse { .. }), "read sparsely");
                prop_assert_eq!(read.count(), whole.len());
                prop_assert!(*read.full() == whole);
                let Repr::Sparse { counts, .. } = &read.0 else { unreachable!() };
                let mut theirs = Vec::new();
                V2Serializer::new().serialize(&whole, &mut theirs).unwrap();
                prop_assert_eq!(sparse::write(counts, &BOUNDS), theirs, "written as hdrhistogram writes it");
                prop_assert_eq!(read.to_base64(), text);
                let mut a = Latency::new();
                let mut b = Latency::new();
                for &v in &base { a.record_us(v); b.record_us(v); }
                a.merge(&read).unwrap();
                b.full_mut().add(&whole).unwrap();
                prop_assert!(a == b);
            }
        }

        /// Bytes that are not a histogram are refused, never a panic.
        #[test]
        fn arbitrary_bytes_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), cookie in any::<bool>()) {
            let mut b = bytes;
            if cookie && b.len() >= 4 {
                b[..4].copy_from_slice(&0x1c84_9313u32.to_be_bytes());
            }
            let _ = Latency::from_base64(&base64::engine::general_purpose::STANDARD.encode(&b));
        }

        /// Merging per-part histograms read from the wire (sparse lists, and full histograms once
        /// they outgrow [`SPARSE_MAX`]) gives exactly the figures of one histogram over the union.
        #[test]
        fn merge_equals_union(parts in proptest::collection::vec(proptest::collection::vec(1u64..5_000_000, 0..400), 1..6)) {
            let mut union = Latency::new();
            let mut merged = Latency::new();
            for part in &parts {
                let mut h = Latency::new();
                for &v in part { h.record_us(v); union.record_us(v); }
                let wire = Latency::from_base64(&h.to_base64()).unwrap();
                merged.merge(&wire).unwrap();
            }
            for q in [0.0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                prop_assert_eq!(merged.quantile_ms(q), union.quantile_ms(q));
            }
            prop_assert_eq!(merged.count(), union.count());
            prop_assert_eq!(merged.min_ms(), union.min_ms());
            prop_assert_eq!(merged.max_ms(), union.max_ms());
            prop_assert_eq!(merged.mean_ms(), union.mean_ms());
            for us in [0, 1, 999, 2_500, 65_537, 4_999_999, u64::MAX] {
                prop_assert_eq!(merged.count_at_most_us(us), union.count_at_most_us(us));
            }
            prop_assert_eq!(merged.recorded_ms(), union.recorded_ms());
            prop_assert!(merged == union);
            prop_assert_eq!(Latency::from_base64(&merged.to_base64()).unwrap(), union);
        }
    }
}
