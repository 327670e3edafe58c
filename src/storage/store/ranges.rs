//! Byte-range planning for ranged GETs: nearby ranges of one object are merged into one request
//! when the gap between them is small (reading a few unused bytes is cheaper than another round
//! trip), merged requests are capped in size, and the fetched parts can be sliced again by
//! absolute offset.

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::storage::bucket::ObjectStore;

/// Merges half-open ranges `[start, end)`: sorts them and joins neighbours whose gap is at most
/// `max_gap`, as long as the merged range stays within `max_len` (a single range longer than
/// `max_len` is kept whole). Empty ranges are dropped.
pub fn merge_ranges(mut ranges: Vec<(u64, u64)>, max_gap: u64, max_len: u64) -> Vec<(u64, u64)> {
    ranges.retain(|r| r.1 > r.0);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        if let Some(last) = out.last_mut() {
            let joinable = s <= last.1.saturating_add(max_gap);
            if joinable && e.max(last.1) - last.0 <= max_len {
                last.1 = last.1.max(e);
                continue;
            }
            if s < last.1 {
                // Overlapping but too long to join: start after the previous range.
                if e > last.1 {
                    let from = last.1;
                    out.push((from, e));
                }
                continue;
            }
        }
        out.push((s, e));
    }
    out
}

/// Bytes fetched for a set of merged ranges of one object, addressable by absolute offset.
#[derive(Default)]
pub struct Fetched {
    /// (absolute start, bytes), sorted by start, non-overlapping.
    parts: Vec<(u64, Bytes)>,
}

impl Fetched {
    /// The bytes from `offset` to the end of the part containing it (possibly fewer than the
    /// caller hoped for, if the object ended early).
    pub fn from(&self, offset: u64) -> Option<Bytes> {
        let i = self.parts.partition_point(|(s, _)| *s <= offset);
        let (start, bytes) = self.parts.get(i.checked_sub(1)?)?;
        let rel = usize::try_from(offset - start).ok()?;
        if rel >= bytes.len() {
            return None;
        }
        Some(bytes.slice(rel..))
    }

    pub fn total_bytes(&self) -> u64 {
        self.parts.iter().map(|(_, b)| b.len() as u64).sum()
    }
}

/// Fetches the (already merged) ranges of `key` with at most `concurrency` requests in flight.
pub async fn fetch_ranges(
    store: &dyn ObjectStore,
    key: &str,
    ranges: Vec<(u64, u64)>,
    concurrency: usize,
) -> crate::storage::bucket::Result<Fetched> {
    let mut parts: Vec<(u64, Bytes)> = stream::iter(ranges)
        .map(|(s, e)| async move {
            let b = store.get_range(key, s, e - s).await?;
            Ok::<_, crate::storage::bucket::BucketError>((s, b))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    parts.sort_by_key(|p| p.0);
    Ok(Fetched { parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_close_ranges_only() {
        let r = merge_ranges(vec![(100, 110), (0, 10), (15, 20), (60, 70)], 10, 1000);
        assert_eq!(r, vec![(0, 20), (60, 70), (100, 110)]);
        let r = merge_ranges(vec![(0, 10), (15, 20)], 10, 12);
        assert_eq!(r, vec![(0, 10), (15, 20)]);
        let r = merge_ranges(vec![(0, 10), (5, 30)], 0, 12);
        assert_eq!(r, vec![(0, 10), (10, 30)]);
    }

    #[test]
    fn fetched_slices_by_absolute_offset() {
        let f = Fetched {
            parts: vec![
                (10, Bytes::from_static(b"abcd")),
                (100, Bytes::from_static(b"xy")),
            ],
        };
        assert_eq!(f.from(12).unwrap().as_ref(), b"cd");
        assert_eq!(f.from(101).unwrap().as_ref(), b"y");
        assert!(f.from(14).is_none());
        assert!(f.from(5).is_none());
        assert_eq!(f.total_bytes(), 6);
    }

    proptest! {
        #[test]
        fn merged_ranges_cover_inputs(
            input in proptest::collection::vec((0u64..10_000, 1u64..500), 0..40),
            gap in 0u64..200,
        ) {
            let ranges: Vec<(u64, u64)> = input.iter().map(|(s, l)| (*s, s + l)).collect();
            let merged = merge_ranges(ranges.clone(), gap, 2_000);
            for w in merged.windows(2) {
                prop_assert!(w[0].1 <= w[1].0);
            }
            for (s, e) in ranges {
                for x in [s, e - 1] {
                    prop_assert!(merged.iter().any(|m| m.0 <= x && x < m.1));
                }
            }
        }
    }
}
