//! Reads an HDR V2 histogram's non-zero counts without building the histogram.
//!
//! The leader reads every worker's histograms every second. A full histogram with the project's
//! bounds is 23,552 counters (188 KB), most of them zero for one second of one step; building one
//! per batch and adding it to the merged one was most of the leader's CPU at 1,000 workers
//! (zeroing and faulting in the counters, then walking all of them). The V2 layout already lists
//! only runs of counts, so this reads them as (value, count) pairs, and merging records each pair.
//!
//! Only histograms with the project's own bounds (and no index offset) are read this way: their
//! index-to-value map is fixed. Anything else goes through `hdrhistogram`'s deserializer.

use std::io::Read as _;

/// The cookie of an HDR V2 histogram (8-byte counts), uncompressed.
const V2_COOKIE: u32 = 0x1c84_9313;
/// The cookie of an HDR V2 deflate-compressed histogram.
pub(super) const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// cookie, payload length, normalizing index offset, significant digits (4 bytes each), lowest
/// and highest trackable values, integer-to-double ratio (8 bytes each).
const HEADER: usize = 40;
/// A decompressed histogram larger than this is not one of ours (ours are at most ~210 KB).
const MAX_PLAIN: u64 = 4 << 20;

/// The bounds a histogram must have to be read sparsely.
pub(super) struct Bounds {
    pub low: u64,
    pub high: u64,
    pub sigfig: u8,
    /// How many counters a histogram with these bounds has.
    pub len: usize,
    /// log2 of half the sub-buckets per bucket (10 for 3 significant digits).
    pub half_magnitude: u32,
}

impl Bounds {
    /// The value whose counter is at `index` (`lowest_equivalent` of its bucket), for a lowest
    /// trackable value of 1 (unit magnitude 0).
    fn value_at(&self, index: usize) -> u64 {
        let half = 1u64 << self.half_magnitude;
        let bucket = (index >> self.half_magnitude) as i64 - 1;
        let sub = (index as u64 & (half - 1)) + half;
        if bucket < 0 {
            sub - half
        } else {
            sub << bucket
        }
    }
}

impl Bounds {
    /// The index of the counter holding `value` (the inverse of `value_at` for values within
    /// bounds; lowest trackable value 1).
    fn index_of(&self, value: u64) -> usize {
        let mask = (1u64 << (self.half_magnitude + 1)) - 1;
        let bucket = 64 - (self.half_magnitude + 1) - (value | mask).leading_zeros();
        let sub = value >> bucket;
        (((bucket + 1) << self.half_magnitude) as usize) + sub as usize - (1 << self.half_magnitude)
    }
}

/// What [`read`] found.
pub(super) enum Read {
    /// A histogram with `bounds`: its non-zero counts by value, lowest first.
    Sparse(Vec<(u64, u64)>),
    /// Not one of ours (other bounds, a V2 with an index offset, another cookie): read it whole.
    Other,
}

/// Reads `bytes` (V2, plain or deflate-compressed) as sparse counts when they have `bounds`.
pub(super) fn read(bytes: &[u8], bounds: &Bounds) -> Result<Read, String> {
    let cookie = be_u32(bytes, 0).ok_or("shorter than an HDR cookie")?;
    if cookie == V2_COMPRESSED_COOKIE {
        let len = be_u32(bytes, 4).ok_or("no compressed length")? as usize;
        let z = bytes
            .get(8..8 + len)
            .ok_or("compressed length beyond the bytes")?;
        let mut plain = Vec::new();
        flate2::read::ZlibDecoder::new(z)
            .take(MAX_PLAIN)
            .read_to_end(&mut plain)
            .map_err(|e| format!("cannot inflate: {e}"))?;
        return read_plain(&plain, bounds);
    }
    read_plain(bytes, bounds)
}

fn read_plain(bytes: &[u8], bounds: &Bounds) -> Result<Read, String> {
    if be_u32(bytes, 0) != Some(V2_COOKIE) || bytes.len() < HEADER {
        return Ok(Read::Other);
    }
    let payload_len = be_u32(bytes, 4).unwrap_or(0) as usize;
    let offset = be_u32(bytes, 8).unwrap_or(1);
    let sigfig = be_u32(bytes, 12).unwrap_or(0);
    let low = be_u64(bytes, 16).unwrap_or(0);
    let high = be_u64(bytes, 24).unwrap_or(0);
    if offset != 0 || sigfig != u32::from(bounds.sigfig) || low != bounds.low || high != bounds.high
    {
        return Ok(Read::Other);
    }
    let payload = bytes
        .get(HEADER..HEADER + payload_len)
        .ok_or("payload length beyond the bytes")?;
    let mut counts = Vec::new();
    let mut index: usize = 0;
    let mut at = 0;
    while at < payload.len() {
        let (n, used) = zig_zag(&payload[at..]).ok_or("a count is cut short")?;
        at += used;
        if n < 0 {
            index = index
                .checked_add(n.unsigned_abs() as usize)
                .ok_or("a run of zeros overflows")?;
            continue;
        }
        if index >= bounds.len {
            return Err(format!(
                "a count at index {index}, beyond the histogram's {}",
                bounds.len
            ));
        }
        if n > 0 {
            counts.push((bounds.value_at(index), n as u64));
        }
        index += 1;
    }
    Ok(Read::Sparse(counts))
}

/// The plain HDR V2 bytes of a histogram with `bounds` holding `counts` (values within bounds,
/// lowest first, as [`read`] gives them): what `hdrhistogram`'s `V2Serializer` writes for it.
pub(super) fn write(counts: &[(u64, u64)], bounds: &Bounds) -> Vec<u8> {
    let mut payload = Vec::with_capacity(counts.len() * 3 + 4);
    let mut next = 0usize;
    for &(value, n) in counts {
        let index = bounds.index_of(value);
        match index - next {
            0 => {}
            1 => put_zig_zag(&mut payload, 0),
            gap => put_zig_zag(&mut payload, -(gap as i64)),
        }
        put_zig_zag(&mut payload, n.min(i64::MAX as u64) as i64);
        next = index + 1;
    }
    if counts.is_empty() {
        // Counters up to the index of the maximum (0 when empty): one zero.
        put_zig_zag(&mut payload, 0);
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&V2_COOKIE.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&u32::from(bounds.sigfig).to_be_bytes());
    out.extend_from_slice(&bounds.low.to_be_bytes());
    out.extend_from_slice(&bounds.high.to_be_bytes());
    out.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

fn put_zig_zag(out: &mut Vec<u8>, n: i64) {
    let mut v = ((n << 1) ^ (n >> 63)) as u64;
    for _ in 0..8 {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One zig-zag LEB128 number as HDR writes it (at most 9 bytes; the ninth carries 8 bits), and
/// how many bytes it took.
fn zig_zag(b: &[u8]) -> Option<(i64, usize)> {
    let mut v: u64 = 0;
    for i in 0..8 {
        let byte = *b.get(i)?;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((unzig(v), i + 1));
        }
    }
    v |= u64::from(*b.get(8)?) << 56;
    Some((unzig(v), 9))
}

fn unzig(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
