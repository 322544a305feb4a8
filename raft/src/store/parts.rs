//! Values stored as parts small enough that sled never spills a page into a blob file.
//!
//! Why: sled 0.34 writes any page (a tree node with all its keys and values, or one update to it)
//! larger than a quarter of a segment (128 KiB with the default 512 KiB segments) to its own file
//! under `blobs/`, and when such a page is replaced it does not delete the old file at once: the
//! removal waits until the log segment that recorded the replacement is full
//! (`Segment::deferred_rm_blob`, run on the segment's move from active to inactive). When almost
//! every byte goes to blobs, the log itself grows by a few bytes per write, the segment stays
//! active for hours, and every purged raft entry and every overwritten record keeps its blob file;
//! a restart forgets the pending removals, so those files are never deleted. A leaf holds up to 16
//! keys (sled splits nodes by count, not bytes), so even values well under 128 KiB make blob pages.
//!
//! Hence every value over [`PART_BYTES`] is cut into parts of at most that size, each under its own
//! key (`<group> ++ part number as big-endian u32`, so the parts of one value sort together and in
//! order), written and removed in the same atomic batch as the rest of the change. A node then
//! holds at most a few dozen parts of 4 KiB, far under the blob threshold, and sled's own segment
//! cleaning reclaims replaced data.

use std::iter::Peekable;

use sled::{IVec, Tree};

/// The largest part stored under one key. sled splits a leaf over 16 keys and merges one under 4
/// into its sibling, so a node holds at most about 20 parts: 80 KiB, under the 128 KiB blob
/// threshold of the default segment size (all data directories use it).
pub(crate) const PART_BYTES: usize = 4096;

/// `group ++ part` as a key.
pub(crate) fn part_key(group: &[u8], part: u32) -> Vec<u8> {
    [group, &part.to_be_bytes()].concat()
}

/// Adds `value` to `batch` as parts under `group` (at least one part, so an empty value is stored).
pub(crate) fn insert(batch: &mut sled::Batch, group: &[u8], value: &[u8]) {
    if value.is_empty() {
        batch.insert(part_key(group, 0), IVec::default());
        return;
    }
    for (part, chunk) in (0u32..).zip(value.chunks(PART_BYTES)) {
        batch.insert(part_key(group, part), chunk);
    }
}

/// Adds to `batch` the removal of every key of `tree` that starts with `prefix`.
pub(crate) fn remove_prefix(
    tree: &Tree,
    batch: &mut sled::Batch,
    prefix: &[u8],
) -> Result<(), sled::Error> {
    for item in tree.scan_prefix(prefix) {
        let (key, _) = item?;
        batch.remove(key);
    }
    Ok(())
}

/// How a stored key splits: the value's group and, when stored in parts, the part number.
/// `None` for a key that is neither.
pub(crate) type Split = fn(&[u8]) -> Option<(&[u8], Option<u32>)>;

/// Joins the parts of consecutive keys back into values: yields `(group, value)` in key order.
/// A key without a part number is a whole value (as stored before parts existed).
pub(crate) struct Joined<I: Iterator<Item = sled::Result<(IVec, IVec)>>> {
    inner: Peekable<I>,
    split: Split,
}

impl<I: Iterator<Item = sled::Result<(IVec, IVec)>>> Joined<I> {
    pub(crate) fn new(inner: I, split: Split) -> Self {
        Joined {
            inner: inner.peekable(),
            split,
        }
    }
}

impl<I: Iterator<Item = sled::Result<(IVec, IVec)>>> Iterator for Joined<I> {
    type Item = Result<(Vec<u8>, Vec<u8>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let (key, value) = match self.inner.next()? {
            Ok(kv) => kv,
            Err(e) => return Some(Err(e.to_string())),
        };
        let Some((group, part)) = (self.split)(&key) else {
            return Some(Err(format!("unexpected key {key:?}")));
        };
        let group = group.to_vec();
        match part {
            None => return Some(Ok((group, value.to_vec()))),
            Some(0) => {}
            Some(part) => {
                return Some(Err(format!(
                    "the value under {group:?} starts at part {part}, not 0"
                )))
            }
        }
        let mut joined = value.to_vec();
        let mut expected: u32 = 1;
        // A read error on the next key is reported by the next call.
        while let Some(Ok((key, _))) = self.inner.peek() {
            let next_part = match (self.split)(key) {
                Some((g, part)) if g == group.as_slice() => part,
                _ => break,
            };
            let Some(Ok((_, value))) = self.inner.next() else {
                break;
            };
            if next_part != Some(expected) {
                return Some(Err(format!(
                    "the value under {group:?} has part {next_part:?} where part {expected} belongs"
                )));
            }
            joined.extend_from_slice(&value);
            expected = expected.saturating_add(1);
        }
        Some(Ok((group, joined)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(key: &[u8]) -> Option<(&[u8], Option<u32>)> {
        match key.len() {
            1 => Some((key, None)),
            5 => Some((
                &key[..1],
                Some(u32::from_be_bytes(key[1..].try_into().ok()?)),
            )),
            _ => None,
        }
    }

    type Values = Vec<(Vec<u8>, Vec<u8>)>;

    fn joined(tree: &Tree) -> Result<Values, String> {
        Joined::new(tree.iter(), split).collect()
    }

    #[test]
    fn values_come_back_whole_from_parts_and_from_whole_keys() {
        let db = sled::Config::new().temporary(true).open().expect("open");
        let tree = db.open_tree("t").expect("tree");
        let big: Vec<u8> = (0..3 * PART_BYTES + 17).map(|i| (i % 251) as u8).collect();
        let mut batch = sled::Batch::default();
        insert(&mut batch, b"a", &big);
        insert(&mut batch, b"b", b"");
        batch.insert(b"c", b"whole".as_slice());
        insert(&mut batch, b"d", b"small");
        tree.apply_batch(batch).expect("apply");
        assert_eq!(tree.len(), 4 + 1 + 1 + 1, "big is 4 parts");
        assert_eq!(
            joined(&tree).expect("joins"),
            vec![
                (b"a".to_vec(), big),
                (b"b".to_vec(), Vec::new()),
                (b"c".to_vec(), b"whole".to_vec()),
                (b"d".to_vec(), b"small".to_vec()),
            ]
        );
        let mut batch = sled::Batch::default();
        remove_prefix(&tree, &mut batch, b"a").expect("scan");
        tree.apply_batch(batch).expect("apply");
        assert_eq!(joined(&tree).expect("joins").len(), 3);
    }

    #[test]
    fn a_missing_or_misplaced_part_is_an_error() {
        let db = sled::Config::new().temporary(true).open().expect("open");
        let tree = db.open_tree("t").expect("tree");
        let value = vec![7u8; 3 * PART_BYTES];
        let mut batch = sled::Batch::default();
        insert(&mut batch, b"a", &value);
        tree.apply_batch(batch).expect("apply");
        tree.remove(part_key(b"a", 1)).expect("remove");
        let err = joined(&tree).expect_err("a hole in the parts");
        assert!(err.contains("part Some(2) where part 1 belongs"), "{err}");
        tree.remove(part_key(b"a", 0)).expect("remove");
        let err = joined(&tree).expect_err("no part 0");
        assert!(err.contains("starts at part 2"), "{err}");
        tree.insert(b"xy", b"?".as_slice()).expect("insert");
        tree.remove(part_key(b"a", 2)).expect("remove");
        let err = joined(&tree).expect_err("bad key");
        assert!(err.contains("unexpected key"), "{err}");
    }
}
