//! Known answers for the downsampling planner: spans, the sources-covered rule, marks; and
//! that the compaction planner compacts downsampled streams within their own resolution.

use std::collections::BTreeMap;

use super::*;
use crate::storage::block::ThanosMeta;
use crate::storage::compactor::plan::{
    expired, plan_stream, PlanKind, PlannerConfig, Retention, StreamDecision, StreamKey,
};

const H: i64 = HOUR_MS;
const D: i64 = 24 * H;
const BASE_MS: u64 = 1_700_000_000_000;

fn ulid(n: u64) -> Ulid {
    Ulid::from_parts(BASE_MS + n, u128::from(n))
}

/// Block `n` over `[min, max)` ms at `res`, its own only source.
fn block(n: u64, min: i64, max: i64, res: i64) -> BlockMeta {
    let mut m = BlockMeta::new(ulid(n), min, max);
    let labels = BTreeMap::from([("cluster".to_string(), "eu".to_string())]);
    m.thanos = Some(ThanosMeta::new(labels, res, "sidecar"));
    m
}

/// Block `n` at `res` whose sources are `sources`.
fn with_sources(mut m: BlockMeta, sources: &[u64]) -> BlockMeta {
    m.compaction.sources = sources.iter().map(|s| ulid(*s)).collect();
    m
}

fn job(n: u64, from: i64, to: i64) -> DownsampleJob {
    DownsampleJob {
        ulid: ulid(n),
        from,
        to,
    }
}

fn unmarked(metas: &[BlockMeta]) -> Vec<DownsampleCandidate> {
    metas
        .iter()
        .cloned()
        .map(DownsampleCandidate::unmarked)
        .collect()
}

#[test]
fn raw_needs_40h_and_5m_needs_10d() {
    let blocks = [
        block(1, 0, 40 * H - 1, RES_RAW),
        block(2, 0, 40 * H, RES_RAW),
        block(3, 48 * H, 96 * H, RES_RAW),
        block(4, 0, 10 * D - 1, RES_5M),
        block(5, 0, 10 * D, RES_5M),
        block(6, 0, 14 * D, RES_1H),
        // A resolution Thanos does not know is left alone.
        block(7, 0, 14 * D, 60_000),
    ];
    let jobs = plan_downsample(&unmarked(&blocks), &[]);
    assert_eq!(
        jobs,
        vec![
            job(2, RES_RAW, RES_5M),
            job(5, RES_5M, RES_1H),
            job(3, RES_RAW, RES_5M)
        ]
    );
}

#[test]
fn blocks_whose_sources_are_all_covered_are_skipped() {
    // A 2d raw block compacted from 1, 2, 3 and its 5m copy (same sources).
    let raw = with_sources(block(10, 0, 48 * H, RES_RAW), &[1, 2, 3]);
    let five = with_sources(block(11, 0, 48 * H, RES_5M), &[1, 2, 3]);
    assert!(plan_downsample(&unmarked(&[raw.clone(), five.clone()]), &[]).is_empty());
    // The 5m block given as a covering block of another stream counts the same.
    assert!(plan_downsample(
        &unmarked(std::slice::from_ref(&raw)),
        std::slice::from_ref(&five)
    )
    .is_empty());
    // Covered by a 5m block compacted from several downsampled blocks (more sources).
    let wide = with_sources(block(12, 0, 14 * D, RES_5M), &[1, 2, 3, 4, 5]);
    assert!(plan_downsample(&unmarked(std::slice::from_ref(&raw)), &[wide]).is_empty());
    // Only partly covered: downsampled again (Thanos: every source must be covered).
    let part = with_sources(block(13, 0, 24 * H, RES_5M), &[1, 2]);
    assert_eq!(
        plan_downsample(&unmarked(std::slice::from_ref(&raw)), &[part]),
        vec![job(10, RES_RAW, RES_5M)]
    );
    // A 1h block does not cover a raw block: coverage is at the target resolution only.
    let hour = with_sources(block(14, 0, 48 * H, RES_1H), &[1, 2, 3]);
    assert_eq!(
        plan_downsample(
            &unmarked(std::slice::from_ref(&raw)),
            std::slice::from_ref(&hour)
        ),
        vec![job(10, RES_RAW, RES_5M)]
    );
    // ... but covers a 5m block with those sources.
    let five_long = with_sources(block(15, 0, 10 * D, RES_5M), &[1, 2, 3]);
    assert!(plan_downsample(&unmarked(&[five_long]), &[hour]).is_empty());
    // A block listing no sources is its own source.
    let bare = {
        let mut m = block(16, 0, 48 * H, RES_RAW);
        m.compaction.sources.clear();
        m
    };
    let copy = with_sources(block(17, 0, 48 * H, RES_5M), &[16]);
    assert!(plan_downsample(&unmarked(&[bare, copy]), &[]).is_empty());
}

#[test]
fn marks_keep_blocks_out() {
    let raw = block(1, 0, 48 * H, RES_RAW);
    let mut c = DownsampleCandidate::unmarked(raw.clone());
    c.no_downsample = true;
    assert!(plan_downsample(&[c], &[]).is_empty());
    let mut c = DownsampleCandidate::unmarked(raw.clone());
    c.deletion_marked = true;
    assert!(plan_downsample(&[c], &[]).is_empty());
    // A deletion-marked 5m copy does not count as covering: the raw block is downsampled
    // again.
    let mut gone = DownsampleCandidate::unmarked(with_sources(block(2, 0, 48 * H, RES_5M), &[1]));
    gone.deletion_marked = true;
    let jobs = plan_downsample(&[DownsampleCandidate::unmarked(raw), gone], &[]);
    assert_eq!(jobs, vec![job(1, RES_RAW, RES_5M)]);
    // A no-downsample-marked 5m copy still covers (the mark only stops its own downsampling).
    let mut marked = DownsampleCandidate::unmarked(with_sources(block(3, 0, 48 * H, RES_5M), &[1]));
    marked.no_downsample = true;
    let raw = block(1, 0, 48 * H, RES_RAW);
    assert!(plan_downsample(&[DownsampleCandidate::unmarked(raw), marked], &[]).is_empty());
}

#[test]
fn one_job_per_block_in_time_order() {
    let a = block(1, 96 * H, 144 * H, RES_RAW);
    let b = block(2, 0, 48 * H, RES_RAW);
    let jobs = plan_downsample(&unmarked(&[a.clone(), b, a]), &[]);
    assert_eq!(jobs, vec![job(2, RES_RAW, RES_5M), job(1, RES_RAW, RES_5M)]);
}

/// Seven 2d 5m blocks (made from seven 2d raw blocks) compact into one 14d 5m block in their
/// own stream, which then is due for 1h; the raw stream is separate.
#[test]
fn downsampled_streams_compact_within_their_resolution() {
    let cfg = PlannerConfig::default();
    let mut five: Vec<BlockMeta> = (0..8)
        .map(|i| {
            with_sources(
                block(20 + i, i as i64 * 2 * D, (i as i64 + 1) * 2 * D, RES_5M),
                &[i],
            )
        })
        .collect();
    let raw = block(40, 0, 2 * D, RES_RAW);
    let key = StreamKey::of(&five[0], &cfg);
    assert_eq!(key.resolution_ms, RES_5M);
    assert_ne!(key, StreamKey::of(&raw, &cfg));
    let StreamDecision::Compact(plan) = plan_stream(&key, &five, &cfg) else {
        panic!("expected a compaction of the 5m blocks");
    };
    assert_eq!(plan.kind, PlanKind::Level);
    assert_eq!(
        plan.blocks.len(),
        7,
        "the first 14d window, the newest block left out"
    );
    let merged = plan.merged_meta(ulid(99)).unwrap();
    assert_eq!(
        merged.thanos.as_ref().map(|t| t.downsample.resolution),
        Some(RES_5M)
    );
    assert_eq!((merged.min_time, merged.max_time), (0, 14 * D));
    assert_eq!(merged.compaction.sources.len(), 7);
    five.drain(..7);
    let jobs = plan_downsample(&unmarked(&[merged]), &five);
    assert_eq!(jobs, vec![job(99, RES_5M, RES_1H)]);
}

/// Retention is per resolution: 5m and 1h blocks expire by their own settings.
#[test]
fn retention_applies_to_downsampled_blocks() {
    let r = Retention {
        raw_ms: 2 * D,
        five_m_ms: 10 * D,
        one_h_ms: 30 * D,
    };
    let blocks = [
        block(1, 0, 2 * D, RES_RAW),
        block(2, 0, 2 * D, RES_5M),
        block(3, 0, 2 * D, RES_1H),
    ];
    assert_eq!(expired(&blocks, &r, 4 * D + 1), vec![ulid(1)]);
    assert_eq!(expired(&blocks, &r, 12 * D + 1), vec![ulid(1), ulid(2)]);
    assert_eq!(
        expired(&blocks, &r, 32 * D + 1),
        vec![ulid(1), ulid(2), ulid(3)]
    );
}
