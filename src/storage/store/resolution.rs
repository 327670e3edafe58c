//! Which blocks answer a query at a requested maximum resolution: a pure function over the
//! bucket's block extents `(min_time, max_time, resolution)`, a time range and the query's
//! `max_source_resolution`. The `BucketStore` runs it over every block of the bucket (not only
//! the ones this node serves), so that all StoreShards take the same decision and a shard
//! holding only a coarse block does not answer where another shard's finer block covers.
//!
//! Rules, in order of preference for every part of the range that is still uncovered:
//! 1. the coarsest level at or below the requested maximum (Thanos `bucketBlockSet.getFor`);
//! 2. then each finer level, coarsest first, for the gaps the previous levels left (Thanos);
//! 3. then, unlike Thanos, each **coarser** level above the maximum, finest first, for what is
//!    still uncovered: where raw data is past retention (no raw block covers that time) a
//!    5m or 1h block answers instead of nothing, so a one-year dashboard asked at raw
//!    resolution does not go blank (Thanos #1127, #5039, #4634).
//!
//! The choice is made per stream (blocks with the same external labels), as Thanos chooses
//! per block set: one cluster's or replica's 5m blocks never hide another's raw blocks that
//! were not downsampled yet.
//!
//! A block is taken whole when it overlaps an uncovered part; its whole extent then counts as
//! covered. Blocks of one level never hide each other (overlapping blocks of a level are all
//! taken, as before), and blocks outside the range are never taken.

use ulid::Ulid;

use crate::storage::block::BlockMeta;

/// One block's extent, as meta.json has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSpan {
    pub id: Ulid,
    /// Inclusive (ms).
    pub min_time: i64,
    /// Exclusive (ms), as in meta.json.
    pub max_time: i64,
    /// Downsampling resolution in ms, 0 for raw.
    pub resolution: i64,
    /// The block's stream (`stream_of`).
    pub stream: u64,
}

impl BlockSpan {
    pub fn of(meta: &BlockMeta) -> BlockSpan {
        BlockSpan {
            id: meta.ulid,
            min_time: meta.min_time,
            max_time: meta.max_time,
            resolution: meta.resolution(),
            stream: stream_of(meta),
        }
    }
}

/// A hash of a block's external labels (`thanos.labels`; none for a plain Prometheus block).
pub fn stream_of(meta: &BlockMeta) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Some(t) = &meta.thanos {
        t.labels.hash(&mut h);
    }
    h.finish()
}

/// The blocks that answer `[mint, maxt]` (inclusive ms) at a requested maximum resolution
/// `max_resolution` (ms, 0 = raw), following the module rules. Sorted by id.
pub fn select_blocks(blocks: &[BlockSpan], mint: i64, maxt: i64, max_resolution: i64) -> Vec<Ulid> {
    if mint > maxt {
        return Vec::new();
    }
    let mut streams: Vec<u64> = blocks.iter().map(|b| b.stream).collect();
    streams.sort_unstable();
    streams.dedup();
    let mut chosen = Vec::new();
    for stream in streams {
        let of_stream: Vec<BlockSpan> = blocks
            .iter()
            .filter(|b| b.stream == stream)
            .copied()
            .collect();
        chosen.extend(select_in_stream(&of_stream, mint, maxt, max_resolution));
    }
    chosen.sort();
    chosen.dedup();
    chosen
}

/// `select_blocks` over the blocks of one stream.
fn select_in_stream(blocks: &[BlockSpan], mint: i64, maxt: i64, max_resolution: i64) -> Vec<Ulid> {
    let mut levels: Vec<i64> = blocks.iter().map(|b| b.resolution).collect();
    levels.sort_unstable();
    levels.dedup();
    let (allowed, coarser): (Vec<i64>, Vec<i64>) =
        levels.into_iter().partition(|r| *r <= max_resolution);
    // Coarsest allowed first, then the finer ones, then the coarser ones finest first.
    let order = allowed.into_iter().rev().chain(coarser);
    // Uncovered parts, half-open [from, to).
    let mut uncovered: Vec<(i64, i64)> = vec![(mint, maxt.saturating_add(1))];
    let mut chosen = Vec::new();
    for level in order {
        if uncovered.is_empty() {
            break;
        }
        let taken: Vec<&BlockSpan> = blocks
            .iter()
            .filter(|b| b.resolution == level)
            .filter(|b| {
                uncovered
                    .iter()
                    .any(|&(from, to)| b.min_time < to && b.max_time > from)
            })
            .collect();
        for b in &taken {
            uncovered = subtract(&uncovered, b.min_time, b.max_time);
            chosen.push(b.id);
        }
    }
    chosen
}

/// `parts` minus `[from, to)`.
fn subtract(parts: &[(i64, i64)], from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::with_capacity(parts.len() + 1);
    for &(a, b) in parts {
        if to <= a || from >= b {
            out.push((a, b));
            continue;
        }
        if a < from {
            out.push((a, from));
        }
        if to < b {
            out.push((to, b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const M5: i64 = 300_000;

    fn span(n: u128, min_time: i64, max_time: i64, resolution: i64) -> BlockSpan {
        BlockSpan {
            id: Ulid(n),
            min_time,
            max_time,
            resolution,
            stream: 0,
        }
    }

    fn ids(v: &[u128]) -> Vec<Ulid> {
        v.iter().map(|n| Ulid(*n)).collect()
    }

    /// raw [0,8h) [8h,16h); 5m [0,16h); 1h [0,8h).
    fn bucket() -> Vec<BlockSpan> {
        vec![
            span(1, 0, 8 * H, 0),
            span(2, 8 * H, 16 * H, 0),
            span(3, 0, 16 * H, M5),
            span(4, 0, 8 * H, H),
        ]
    }

    #[test]
    fn raw_request_reads_raw_blocks_only_where_raw_exists() {
        assert_eq!(select_blocks(&bucket(), 0, 16 * H - 1, 0), ids(&[1, 2]));
        assert_eq!(select_blocks(&bucket(), 9 * H, 10 * H, 0), ids(&[2]));
    }

    #[test]
    fn each_stream_chooses_for_itself() {
        // Stream 1 is downsampled to 5m; stream 2 (another cluster, or a replica whose blocks
        // are not downsampled yet) has only raw blocks over the same time.
        let mut b = bucket();
        b.push(BlockSpan {
            stream: 2,
            ..span(5, 0, 16 * H, 0)
        });
        assert_eq!(select_blocks(&b, 0, 16 * H - 1, M5), ids(&[3, 5]));
        assert_eq!(select_blocks(&b, 0, 16 * H - 1, 0), ids(&[1, 2, 5]));
    }

    #[test]
    fn coarsest_allowed_level_first_then_finer_fills_the_gaps() {
        // 1h covers [0,8h); the rest comes from 5m, never from raw (5m covers it).
        assert_eq!(select_blocks(&bucket(), 0, 16 * H - 1, H), ids(&[3, 4]));
        assert_eq!(select_blocks(&bucket(), 0, 16 * H - 1, M5), ids(&[3]));
        // 1h only: 5m missing after 8h means raw fills there.
        let b = vec![
            span(1, 0, 8 * H, 0),
            span(2, 8 * H, 16 * H, 0),
            span(4, 0, 8 * H, H),
        ];
        assert_eq!(select_blocks(&b, 0, 16 * H - 1, H), ids(&[2, 4]));
    }

    #[test]
    fn coarser_data_fills_where_raw_is_past_retention() {
        // Raw exists only for the last 8h; a raw request over 16h gets the 5m block for the
        // first 8h (finest coarser level first), not the 1h one.
        let b = vec![
            span(2, 8 * H, 16 * H, 0),
            span(3, 0, 8 * H, M5),
            span(4, 0, 8 * H, H),
        ];
        assert_eq!(select_blocks(&b, 0, 16 * H - 1, 0), ids(&[2, 3]));
        // Only 1h left for the old part.
        let b = vec![span(2, 8 * H, 16 * H, 0), span(4, 0, 8 * H, H)];
        assert_eq!(select_blocks(&b, 0, 16 * H - 1, 0), ids(&[2, 4]));
        assert_eq!(select_blocks(&b, 0, 16 * H - 1, M5), ids(&[2, 4]));
        // Not needed when raw covers the range.
        assert_eq!(select_blocks(&b, 9 * H, 10 * H, 0), ids(&[2]));
    }

    #[test]
    fn gaps_between_blocks_are_filled_at_their_own_place() {
        // 5m blocks with a hole [8h,16h) where only raw exists.
        let b = vec![
            span(1, 0, 24 * H, 0),
            span(3, 0, 8 * H, M5),
            span(5, 16 * H, 24 * H, M5),
        ];
        assert_eq!(select_blocks(&b, 0, 24 * H - 1, M5), ids(&[1, 3, 5]));
        assert_eq!(select_blocks(&b, 0, 8 * H - 1, M5), ids(&[3]));
        assert_eq!(select_blocks(&b, 17 * H, 18 * H, M5), ids(&[5]));
    }

    #[test]
    fn nothing_outside_the_range_and_empty_ranges() {
        assert!(select_blocks(&bucket(), 20 * H, 21 * H, H).is_empty());
        assert!(select_blocks(&bucket(), 5, 4, H).is_empty());
        assert!(select_blocks(&[], 0, H, H).is_empty());
        // Exclusive block ends: a range starting at 8h does not touch [0,8h) blocks.
        assert_eq!(select_blocks(&bucket(), 8 * H, 9 * H, 0), ids(&[2]));
    }

    #[test]
    fn a_request_above_every_level_reads_the_coarsest() {
        assert_eq!(select_blocks(&bucket(), 0, 8 * H - 1, i64::MAX), ids(&[4]));
    }
}
