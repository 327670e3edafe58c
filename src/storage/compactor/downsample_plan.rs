//! Which blocks to downsample: a pure function over the bucket's metas and marks, the
//! compactor's equivalent of the selection in Thanos's `downsampleBucket`
//! (`cmd/thanos/downsample.go`, `reference/thanos-behaviour.md` §1.5).
//!
//! The rules, as Thanos has them:
//! - **By span, not age.** A raw block is downsampled to 5m when `maxTime - minTime` is at
//!   least 40h; a 5m block to 1h when it is at least 10d. 1h blocks are never downsampled.
//! - **Once per source.** A block is skipped when every one of its `compaction.sources` is
//!   already a source of some block of the target resolution (the 5m block made from a 2d
//!   block carries the 2d block's sources, so a second pass finds them covered; so does a
//!   5m block compacted from several such blocks).
//! - **Marks.** A block with `no-downsample-mark.json` is never downsampled; a block with a
//!   deletion mark is neither downsampled nor counts as covering (its data is on the way out,
//!   and a deletion-marked downsampled block must not stop its source from being downsampled
//!   again).
//!
//! Output: one [`DownsampleJob`] per block, in (minTime, ULID) order. No I/O, no clock.

use std::collections::BTreeSet;

use ulid::Ulid;

use crate::storage::block::BlockMeta;
use crate::storage::downsample::{RES_1H, RES_5M, RES_RAW};

const HOUR_MS: i64 = 3_600_000;

/// A raw block spanning at least this is downsampled to 5m (Thanos's
/// `ResLevel1DownsampleRange`).
pub const RAW_TO_5M_MIN_SPAN_MS: i64 = 40 * HOUR_MS;
/// A 5m block spanning at least this is downsampled to 1h (Thanos's
/// `ResLevel2DownsampleRange`).
pub const FIVE_M_TO_1H_MIN_SPAN_MS: i64 = 10 * 24 * HOUR_MS;

/// One block as the downsampling planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct DownsampleCandidate {
    pub meta: BlockMeta,
    /// Has `deletion-mark.json`.
    pub deletion_marked: bool,
    /// Has `no-downsample-mark.json`.
    pub no_downsample: bool,
}

impl DownsampleCandidate {
    /// A block with no marks.
    pub fn unmarked(meta: BlockMeta) -> Self {
        DownsampleCandidate {
            meta,
            deletion_marked: false,
            no_downsample: false,
        }
    }
}

/// Downsample block `ulid` from resolution `from` to `to` (ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DownsampleJob {
    pub ulid: Ulid,
    pub from: i64,
    pub to: i64,
}

/// The resolution a block of `resolution` is downsampled to, and the span it needs first;
/// `None` for 1h and for resolutions Thanos does not know.
pub fn next_level(resolution: i64) -> Option<(i64, i64)> {
    match resolution {
        RES_RAW => Some((RES_5M, RAW_TO_5M_MIN_SPAN_MS)),
        RES_5M => Some((RES_1H, FIVE_M_TO_1H_MIN_SPAN_MS)),
        _ => None,
    }
}

/// A block's sources; a block listing none counts as its own only source (as in the
/// compaction planner).
fn sources_of(m: &BlockMeta) -> Vec<Ulid> {
    if m.compaction.sources.is_empty() {
        vec![m.ulid]
    } else {
        m.compaction.sources.clone()
    }
}

/// The downsampling jobs for `candidates` (see the module doc). `covering` lists further
/// blocks that are not candidates themselves (the bucket's blocks of other streams, already
/// without deletion-marked ones) but whose sources count as covered at their resolution.
pub fn plan_downsample(
    candidates: &[DownsampleCandidate],
    covering: &[BlockMeta],
) -> Vec<DownsampleJob> {
    let mut covered: BTreeSet<(i64, Ulid)> = BTreeSet::new();
    let live = candidates
        .iter()
        .filter(|c| !c.deletion_marked)
        .map(|c| &c.meta)
        .chain(covering);
    for m in live {
        let res = m.resolution();
        for s in sources_of(m) {
            covered.insert((res, s));
        }
    }
    let mut chosen: Vec<&DownsampleCandidate> = candidates
        .iter()
        .filter(|c| !c.deletion_marked && !c.no_downsample)
        .filter(|c| {
            let Some((to, min_span)) = next_level(c.meta.resolution()) else {
                return false;
            };
            let span = c.meta.max_time.saturating_sub(c.meta.min_time);
            span >= min_span
                && !sources_of(&c.meta)
                    .iter()
                    .all(|s| covered.contains(&(to, *s)))
        })
        .collect();
    chosen.sort_by_key(|c| (c.meta.min_time, c.meta.ulid));
    chosen.dedup_by_key(|c| c.meta.ulid);
    chosen
        .into_iter()
        .filter_map(|c| {
            let from = c.meta.resolution();
            next_level(from).map(|(to, _)| DownsampleJob {
                ulid: c.meta.ulid,
                from,
                to,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "downsample_plan_tests.rs"]
mod tests;
