//! Tests of the planner: known answers for each rule, then laws checked over random buckets
//! by planning and applying until nothing is left to do.

use super::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const H: i64 = HOUR_MS;
const BASE_MS: u64 = 1_700_000_000_000;

fn ulid(n: u64) -> Ulid {
    Ulid::from_parts(BASE_MS + n, u128::from(n))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A level-1 sidecar block `[min_h, max_h)` hours with the given external labels.
fn block(n: u64, min_h: i64, max_h: i64, lbls: &[(&str, &str)]) -> BlockMeta {
    block_ms(n, min_h * H, max_h * H, lbls, 0)
}

fn block_ms(n: u64, min: i64, max: i64, lbls: &[(&str, &str)], res: i64) -> BlockMeta {
    let mut m = BlockMeta::new(ulid(n), min, max);
    m.thanos = Some(ThanosMeta::new(labels(lbls), res, "sidecar"));
    m
}

fn dedup_cfg() -> PlannerConfig {
    PlannerConfig {
        replica_labels: vec!["replica".into()],
        dedup: true,
        ..PlannerConfig::default()
    }
}

/// A ULID derived from the merged sources, so every run names merged blocks alike.
fn merged_ulid(meta: &BlockMeta) -> Ulid {
    let mut bytes = Vec::new();
    for s in &meta.compaction.sources {
        bytes.extend_from_slice(&s.to_bytes());
    }
    let hi = xxhash_rust::xxh64::xxh64(&bytes, 1);
    let lo = xxhash_rust::xxh64::xxh64(&bytes, 2);
    Ulid::from_parts(
        BASE_MS + 10_000_000,
        (u128::from(hi) << 64) | u128::from(lo),
    )
}

/// Replaces the plan's blocks by the block the plan produces.
fn apply(blocks: &[BlockMeta], plan: &Plan) -> Vec<BlockMeta> {
    let used: BTreeSet<Ulid> = plan.blocks.iter().map(|b| b.ulid).collect();
    let mut merged = plan.merged_meta(Ulid::nil()).unwrap();
    merged.ulid = merged_ulid(&merged);
    let mut out: Vec<BlockMeta> = blocks
        .iter()
        .filter(|b| !used.contains(&b.ulid))
        .cloned()
        .collect();
    out.push(merged);
    out
}

fn ranges_h(blocks: &[BlockMeta]) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = blocks
        .iter()
        .map(|b| (b.min_time / H, b.max_time / H))
        .collect();
    v.sort();
    v
}

/// Plans and applies `Compact` decisions over every stream until all say `Nothing`;
/// returns the plans in order (kind and hour range) and the final blocks.
fn run_to_end(
    mut blocks: Vec<BlockMeta>,
    cfg: &PlannerConfig,
) -> (Vec<(PlanKind, i64, i64)>, Vec<BlockMeta>) {
    let mut plans = Vec::new();
    for _ in 0..1000 {
        let mut progressed = false;
        for (key, stream) in group_streams(&blocks, cfg) {
            match plan_stream(&key, &stream, cfg) {
                StreamDecision::Compact(plan) => {
                    let first = plan.blocks.first().unwrap().min_time / H;
                    let last = plan.blocks.iter().map(|b| b.max_time).max().unwrap() / H;
                    plans.push((plan.kind, first, last));
                    blocks = apply(&blocks, &plan);
                    progressed = true;
                }
                StreamDecision::Nothing => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        if !progressed {
            return (plans, blocks);
        }
    }
    panic!("planning did not terminate");
}

fn twelve(first_ulid: u64, lbls: &[(&str, &str)]) -> Vec<BlockMeta> {
    (0..12)
        .map(|i| block(first_ulid + i as u64, 2 * i, 2 * i + 2, lbls))
        .collect()
}

const FINAL_OF_TWELVE: [(i64, i64); 6] = [(0, 8), (8, 16), (16, 18), (18, 20), (20, 22), (22, 24)];

#[test]
fn twelve_aligned_2h_blocks_end_as_two_8h_blocks_and_the_open_window() {
    let cfg = PlannerConfig::default();
    let (plans, out) = run_to_end(twelve(1, &[("cluster", "a")]), &cfg);
    assert_eq!(
        plans,
        vec![(PlanKind::Level, 0, 8), (PlanKind::Level, 8, 16)]
    );
    assert_eq!(ranges_h(&out), FINAL_OF_TWELVE);
    let levels: Vec<u32> = out.iter().map(|b| b.compaction.level).collect();
    assert_eq!(levels.iter().filter(|l| **l == 2).count(), 2);
    // The first plan is exactly the first four blocks, in time order.
    let blocks = twelve(1, &[("cluster", "a")]);
    let key = StreamKey::of(&blocks[0], &cfg);
    let StreamDecision::Compact(plan) = plan_stream(&key, &blocks, &cfg) else {
        panic!("expected a plan");
    };
    let ids: Vec<Ulid> = plan.blocks.iter().map(|b| b.ulid).collect();
    assert_eq!(ids, vec![ulid(1), ulid(2), ulid(3), ulid(4)]);
}

#[test]
fn two_replicas_are_merged_vertically_first_then_by_level() {
    let cfg = dedup_cfg();
    let mut blocks = twelve(1, &[("cluster", "a"), ("replica", "r1")]);
    blocks.extend(twelve(101, &[("cluster", "a"), ("replica", "r2")]));
    let (plans, out) = run_to_end(blocks, &cfg);
    let expected: Vec<(PlanKind, i64, i64)> = (0..12)
        .map(|i| (PlanKind::Vertical, 2 * i, 2 * i + 2))
        .chain([(PlanKind::Level, 0, 8), (PlanKind::Level, 8, 16)])
        .collect();
    assert_eq!(plans, expected);
    assert_eq!(ranges_h(&out), FINAL_OF_TWELVE);
    for b in &out {
        let t = b.thanos.as_ref().unwrap();
        assert_eq!(
            t.labels,
            labels(&[("cluster", "a")]),
            "replica label dropped"
        );
        assert_eq!(t.source, "compactor");
        assert_eq!(b.compaction.sources.len() % 2, 0);
    }
    let all_sources: usize = out.iter().map(|b| b.compaction.sources.len()).sum();
    assert_eq!(all_sources, 24);
}

#[test]
fn with_dedup_off_replicas_are_separate_streams() {
    let cfg = PlannerConfig {
        replica_labels: vec!["replica".into()],
        dedup: false,
        ..PlannerConfig::default()
    };
    let mut blocks = twelve(1, &[("cluster", "a"), ("replica", "r1")]);
    blocks.extend(twelve(101, &[("cluster", "a"), ("replica", "r2")]));
    let streams = group_streams(&blocks, &cfg);
    assert_eq!(streams.len(), 2);
    let (plans, out) = run_to_end(blocks, &cfg);
    assert_eq!(plans.len(), 4);
    assert!(plans.iter().all(|p| p.0 == PlanKind::Level));
    for (_, stream) in group_streams(&out, &cfg) {
        assert_eq!(ranges_h(&stream), FINAL_OF_TWELVE);
    }
}

#[test]
fn an_overlap_within_one_replica_is_marked_no_compact() {
    let cfg = dedup_cfg();
    let r1 = [("cluster", "a"), ("replica", "r1")];
    let r2 = [("cluster", "a"), ("replica", "r2")];
    let blocks = vec![
        block(1, 0, 2, &r1),
        block(2, 1, 3, &r1),
        block(3, 0, 2, &r2),
        block(4, 4, 6, &r2),
    ];
    let key = StreamKey::of(&blocks[0], &cfg);
    match plan_stream(&key, &blocks, &cfg) {
        StreamDecision::MarkNoCompact {
            blocks: marked,
            reason,
            details,
        } => {
            assert_eq!(marked, vec![ulid(1), ulid(2)]);
            assert_eq!(reason, REASON_BLOCK_OVERLAP);
            assert!(details.contains(&ulid(1).to_string()), "{details}");
            assert!(details.contains("1970-01-01T01:00:00.000Z"), "{details}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Once they are marked, the other replica's block is alone again: nothing overlaps.
    let rest = &blocks[2..];
    assert_eq!(
        plan_stream_with_no_compact(&key, rest, &blocks[..2], &cfg),
        StreamDecision::Nothing
    );
    // With dedup off, any overlap is marked, replicas or not.
    let off = PlannerConfig::default();
    let same = vec![
        block(1, 0, 2, &r1),
        block(2, 1, 3, &r1),
        block(3, 3, 5, &r1),
    ];
    let key = StreamKey::of(&same[0], &off);
    let StreamDecision::MarkNoCompact { blocks, reason, .. } = plan_stream(&key, &same, &off)
    else {
        panic!("expected a mark");
    };
    assert_eq!(
        (blocks, reason.as_str()),
        (vec![ulid(1), ulid(2)], "block-overlap")
    );
    // A long chain: every block is marked, the details name the first pairs only.
    let pile: Vec<BlockMeta> = (0..12).map(|i| block(i + 1, 0, 2, &r1)).collect();
    let StreamDecision::MarkNoCompact {
        blocks, details, ..
    } = plan_stream(&key, &pile, &off)
    else {
        panic!("expected a mark");
    };
    assert_eq!(blocks.len(), 12);
    assert!(details.ends_with("; and 58 more"), "{details}");
}

#[test]
fn replicas_sharing_sources_are_not_merged() {
    let cfg = dedup_cfg();
    let mut a = block(1, 0, 4, &[("cluster", "a"), ("replica", "r1")]);
    let mut b = block(2, 2, 6, &[("cluster", "a"), ("replica", "r2")]);
    a.compaction.sources = vec![ulid(50), ulid(51)];
    b.compaction.sources = vec![ulid(51), ulid(52)];
    let key = StreamKey::of(&a, &cfg);
    let StreamDecision::MarkNoCompact {
        blocks, details, ..
    } = plan_stream(&key, &[a, b], &cfg)
    else {
        panic!("expected a mark");
    };
    assert_eq!(blocks, vec![ulid(1), ulid(2)]);
    assert!(details.contains("share compaction sources"), "{details}");
}

#[test]
fn overlapping_downsampled_blocks_are_marked() {
    let cfg = dedup_cfg();
    let blocks = vec![
        block_ms(
            1,
            0,
            48 * H,
            &[("cluster", "a"), ("replica", "r1")],
            RESOLUTION_5M_MS,
        ),
        block_ms(
            2,
            0,
            48 * H,
            &[("cluster", "a"), ("replica", "r2")],
            RESOLUTION_5M_MS,
        ),
        block_ms(
            3,
            48 * H,
            96 * H,
            &[("cluster", "a"), ("replica", "r2")],
            RESOLUTION_5M_MS,
        ),
    ];
    let key = StreamKey::of(&blocks[0], &cfg);
    assert_eq!(key.resolution_ms, RESOLUTION_5M_MS);
    let StreamDecision::MarkNoCompact { blocks, reason, .. } = plan_stream(&key, &blocks, &cfg)
    else {
        panic!("expected a mark");
    };
    assert_eq!(blocks, vec![ulid(1), ulid(2)]);
    assert_eq!(reason, "downsample-vertical-compaction");
}

#[test]
fn an_earlier_window_is_complete_once_a_later_block_exists() {
    let cfg = PlannerConfig::default();
    let l = [("cluster", "a")];
    // 0-2, 2-4 end before the newest remaining block starts (10h): compact them.
    let blocks = vec![
        block(1, 0, 2, &l),
        block(2, 2, 4, &l),
        block(3, 8, 10, &l),
        block(4, 10, 12, &l),
        block(5, 20, 22, &l),
    ];
    let key = StreamKey::of(&blocks[0], &cfg);
    let StreamDecision::Compact(plan) = plan_stream(&key, &blocks, &cfg) else {
        panic!("expected a plan");
    };
    assert_eq!(ranges_h(&plan.blocks), vec![(0, 2), (2, 4)]);
    // Without a later block the window may still grow: nothing.
    let open = vec![block(1, 0, 2, &l), block(2, 2, 4, &l), block(3, 4, 6, &l)];
    assert_eq!(plan_stream(&key, &open, &cfg), StreamDecision::Nothing);
    // A window holding a block whose compaction failed is skipped.
    let mut failed: Vec<BlockMeta> = (0..5)
        .map(|i| block(i + 1, 2 * i as i64, 2 * i as i64 + 2, &l))
        .collect();
    failed[0].compaction.failed = true;
    assert_eq!(plan_stream(&key, &failed, &cfg), StreamDecision::Nothing);
    // Six 8h blocks fill a 2d window.
    let days: Vec<BlockMeta> = (0..7)
        .map(|i| block(i + 1, 8 * i as i64, 8 * i as i64 + 8, &l))
        .collect();
    let StreamDecision::Compact(plan) = plan_stream(&key, &days, &cfg) else {
        panic!("expected a plan");
    };
    assert_eq!((plan.blocks.len(), plan.kind), (6, PlanKind::Level));
    // A single block, or none, plans nothing.
    assert_eq!(plan_stream(&key, &days[..1], &cfg), StreamDecision::Nothing);
    assert_eq!(plan_stream(&key, &[], &cfg), StreamDecision::Nothing);
}

#[test]
fn no_compact_blocks_cut_windows_like_thanos() {
    let cfg = PlannerConfig::default();
    let l = [("cluster", "a")];
    let all: Vec<BlockMeta> = (0..5)
        .map(|i| block(i + 1, 2 * i as i64, 2 * i as i64 + 2, &l))
        .collect();
    let key = StreamKey::of(&all[0], &cfg);
    let marked = vec![all[1].clone()];
    let visible: Vec<BlockMeta> = all.iter().filter(|b| b.ulid != ulid(2)).cloned().collect();
    // Thanos: the window [0, 8h) is cut at the marked 2-4 block; 4-6, 6-8 are merged.
    let StreamDecision::Compact(plan) = plan_stream_with_no_compact(&key, &visible, &marked, &cfg)
    else {
        panic!("expected a plan");
    };
    assert_eq!(ranges_h(&plan.blocks), vec![(4, 6), (6, 8)]);
    // Without knowing the mark, the merged block would span it.
    let StreamDecision::Compact(plan) = plan_stream(&key, &visible, &cfg) else {
        panic!("expected a plan");
    };
    assert_eq!(ranges_h(&plan.blocks), vec![(0, 2), (4, 6), (6, 8)]);
    // A marked newest block is the one left out, so the newest visible one may be planned.
    let marked = vec![all[4].clone()];
    let StreamDecision::Compact(plan) = plan_stream_with_no_compact(&key, &all[..4], &marked, &cfg)
    else {
        panic!("expected a plan");
    };
    assert_eq!(plan.blocks.len(), 4);
    assert_eq!(plan_stream(&key, &all[..4], &cfg), StreamDecision::Nothing);
    // A block listed as visible and marked counts as marked.
    assert_eq!(
        plan_stream_with_no_compact(&key, &all, &all, &cfg),
        StreamDecision::Nothing
    );
}

#[test]
fn split_by_range_matches_prometheus() {
    let m = |n: u64, a: i64, b: i64| block_ms(n, a, b, &[], 0);
    let bs = [m(1, 0, 10), m(2, 10, 20), m(3, 50, 60), m(4, 90, 100)];
    let refs: Vec<&BlockMeta> = bs.iter().collect();
    let parts: Vec<Vec<(i64, i64)>> = split_by_range(&refs, 30)
        .iter()
        .map(|p| p.iter().map(|b| (b.min_time, b.max_time)).collect())
        .collect();
    assert_eq!(
        parts,
        vec![vec![(0, 10), (10, 20)], vec![(50, 60)], vec![(90, 100)]]
    );
    // Negative times align downwards; a block crossing a window's end is in no window.
    let bs = [m(1, -20, -10), m(2, -10, 0), m(3, 25, 35), m(4, 40, 50)];
    let refs: Vec<&BlockMeta> = bs.iter().collect();
    let parts: Vec<Vec<(i64, i64)>> = split_by_range(&refs, 30)
        .iter()
        .map(|p| p.iter().map(|b| (b.min_time, b.max_time)).collect())
        .collect();
    assert_eq!(parts, vec![vec![(-20, -10), (-10, 0)], vec![(40, 50)]]);
}

#[test]
fn stream_keys() {
    let on = PlannerConfig {
        replica_labels: vec!["replica".into(), "rule_replica".into()],
        dedup: true,
        ..PlannerConfig::default()
    };
    let off = PlannerConfig {
        dedup: false,
        ..on.clone()
    };
    let m = block(
        1,
        0,
        2,
        &[("cluster", "eu"), ("replica", "a"), ("rule_replica", "x")],
    );
    assert_eq!(StreamKey::of(&m, &on).labels, labels(&[("cluster", "eu")]));
    assert_eq!(StreamKey::of(&m, &off).labels.len(), 3);
    // No thanos section: raw, no labels (with dedup on, Thanos's "deduped" placeholder).
    let bare = BlockMeta::new(ulid(2), 0, 1);
    assert_eq!(
        StreamKey::of(&bare, &off),
        StreamKey {
            resolution_ms: 0,
            labels: BTreeMap::new()
        }
    );
    let only_replica = block(3, 0, 2, &[("replica", "a")]);
    let deduped = StreamKey::of(&only_replica, &on);
    assert_eq!(deduped.labels, labels(&[("replica", "deduped")]));
    assert_eq!(StreamKey::of(&bare, &on), deduped);
    // Display, id, Thanos's group key.
    let key = StreamKey {
        resolution_ms: 300_000,
        labels: labels(&[("cluster", "eu"), ("tenant", "a\"b")]),
    };
    assert_eq!(key.to_string(), r#"300000@{cluster="eu", tenant="a\"b"}"#);
    let empty = StreamKey {
        resolution_ms: 0,
        labels: BTreeMap::new(),
    };
    assert_eq!(empty.to_string(), "0@{}");
    // xxh64("") = 0xef46db3751d8e999: Thanos's key of a group with no labels.
    assert_eq!(empty.thanos_group_key(), "0@17241709254077376921");
    // Frozen: lease names and stream ownership hash these.
    assert_eq!(empty.id(), GOLDEN_EMPTY_ID);
    assert_eq!(key.id(), GOLDEN_KEY_ID);
    let other = StreamKey {
        resolution_ms: 0,
        ..key.clone()
    };
    assert_ne!(other.id(), key.id());
    assert_eq!(key.id().len(), 16);
}

const GOLDEN_EMPTY_ID: &str = "fe78acf990f530fa";
const GOLDEN_KEY_ID: &str = "15f47546d894aa25";

#[test]
fn merged_meta_carries_the_stream() {
    let cfg = dedup_cfg();
    let a = block(1, 0, 2, &[("cluster", "a"), ("replica", "r1")]);
    let b = block(2, 0, 2, &[("cluster", "a"), ("replica", "r2")]);
    let key = StreamKey::of(&a, &cfg);
    let StreamDecision::Compact(plan) = plan_stream(&key, &[b, a], &cfg) else {
        panic!("expected a plan");
    };
    assert_eq!(plan.kind, PlanKind::Vertical);
    assert_eq!(plan.blocks[0].ulid, ulid(1));
    let m = plan.merged_meta(ulid(9)).unwrap();
    assert_eq!(m.ulid, ulid(9));
    assert_eq!((m.min_time, m.max_time, m.compaction.level), (0, 2 * H, 2));
    assert_eq!(m.compaction.sources, vec![ulid(1), ulid(2)]);
    let t = m.thanos.unwrap();
    assert_eq!(
        (t.labels, t.source.as_str()),
        (labels(&[("cluster", "a")]), "compactor")
    );
    assert_eq!(
        StreamKey::of(&plan.merged_meta(ulid(9)).unwrap(), &cfg),
        key
    );
    // Blocks without a thanos section give a block without one.
    let bare = PlannerConfig::default();
    let bare_blocks = [
        BlockMeta::new(ulid(1), 0, 10),
        BlockMeta::new(ulid(2), 10, 20),
        BlockMeta::new(ulid(3), 8 * H, 8 * H + 10),
        BlockMeta::new(ulid(4), 9 * H, 10 * H),
    ];
    let key = StreamKey::of(&bare_blocks[0], &bare);
    let StreamDecision::Compact(plan) = plan_stream(&key, &bare_blocks, &bare) else {
        panic!("expected a plan");
    };
    assert!(plan.merged_meta(ulid(9)).unwrap().thanos.is_none());
}

#[test]
fn hidden_by_sources_follows_thanos() {
    let with = |n: u64, srcs: &[u64], res: i64| {
        let mut m = block_ms(n, 0, H, &[("c", "a")], res);
        m.compaction.sources = srcs.iter().map(|s| ulid(*s)).collect();
        m
    };
    // Covered by a block with more sources.
    let metas = vec![with(1, &[1], 0), with(2, &[2], 0), with(3, &[1, 2], 0)];
    assert_eq!(
        hidden_by_sources(&metas),
        BTreeSet::from([ulid(1), ulid(2)])
    );
    // Equal sources: the smaller ULID stays.
    let metas = vec![with(11, &[1, 2], 0), with(10, &[1, 2], 0)];
    assert_eq!(hidden_by_sources(&metas), BTreeSet::from([ulid(11)]));
    // Per resolution: a downsampled copy keeps the raw sources and hides nothing.
    let metas = vec![with(3, &[1, 2], 0), with(4, &[1, 2], RESOLUTION_5M_MS)];
    assert!(hidden_by_sources(&metas).is_empty());
    // Partly shared sources hide nothing.
    let metas = vec![with(5, &[1, 2], 0), with(6, &[2, 3], 0)];
    assert!(hidden_by_sources(&metas).is_empty());
    // No sources: the block is its own source.
    let metas = vec![with(1, &[], 0), with(7, &[1, 9], 0)];
    assert_eq!(hidden_by_sources(&metas), BTreeSet::from([ulid(1)]));
    // The same block listed twice does not hide itself.
    let metas = vec![with(8, &[1], 0), with(8, &[1], 0)];
    assert!(hidden_by_sources(&metas).is_empty());
}

#[test]
fn consistency_delay() {
    let delay = 30 * 60_000;
    let born = (BASE_MS + 1) as i64;
    let mut m = block(1, 0, 2, &[("c", "a")]);
    // ULID time when there is no upload time.
    assert!(too_young(&m, born + delay - 1, delay));
    assert!(!too_young(&m, born + delay, delay));
    // The upload time wins over the ULID's time.
    let t = m.thanos.as_mut().unwrap();
    t.upload_time = Some(format_rfc3339_millis(born + 3_600_000));
    assert!(too_young(&m, born + 3_600_000 + delay - 1, delay));
    assert!(!too_young(&m, born + 3_600_000 + delay, delay));
    m.thanos.as_mut().unwrap().upload_time = Some(format_rfc3339_millis(born - 3_600_000));
    assert!(!too_young(&m, born, delay));
    // An unreadable upload time falls back to the ULID.
    m.thanos.as_mut().unwrap().upload_time = Some("yesterday".into());
    assert!(too_young(&m, born, delay));
    // Compactor and repair blocks are exempt; no delay, nothing is too young.
    for source in ["compactor", "compactor.repair", "bucket.repair"] {
        m.thanos.as_mut().unwrap().source = source.into();
        assert!(!too_young(&m, born, delay), "{source}");
    }
    m.thanos.as_mut().unwrap().source = "receive".into();
    assert!(too_young(&m, born, delay));
    assert!(!too_young(&m, born, 0));
    // Without a thanos section: the ULID's time.
    let bare = BlockMeta::new(ulid(1), 0, 1);
    assert!(too_young(&bare, born, delay));
}

#[test]
fn retention_per_resolution() {
    let r = Retention {
        raw_ms: 10 * H,
        five_m_ms: 20 * H,
        one_h_ms: 0,
    };
    let raw = block_ms(1, 0, H, &[], 0);
    let five = block_ms(2, 0, H, &[], RESOLUTION_5M_MS);
    let hour = block_ms(3, 0, H, &[], RESOLUTION_1H_MS);
    let odd = block_ms(4, 0, H, &[], 60_000);
    let all = [raw, five, hour, odd];
    assert!(expired(&all, &r, 11 * H).is_empty());
    assert_eq!(expired(&all, &r, 11 * H + 1), vec![ulid(1)]);
    assert_eq!(expired(&all, &r, 21 * H + 1), vec![ulid(1), ulid(2)]);
    assert_eq!(expired(&all, &r, i64::MAX), vec![ulid(1), ulid(2)]);
    assert!(expired(&all, &Retention::default(), i64::MAX).is_empty());
    let r = Retention {
        one_h_ms: H,
        ..Retention::default()
    };
    assert_eq!(expired(&all, &r, 3 * H), vec![ulid(3)]);
}

// ---- Laws over random buckets ----

/// One producer's blocks: a run of mostly 2h blocks with gaps, some 8h, 1h or unaligned 3h,
/// plus a few arbitrary blocks that may overlap the run.
#[derive(Clone, Debug)]
struct Lane {
    cluster: u8,
    replica: Option<u8>,
    downsampled: bool,
    base: i64,
    steps: Vec<(u8, u8)>,
    extra: Vec<(i64, i64)>,
}

fn arb_lane() -> impl Strategy<Value = Lane> {
    (
        0u8..2,
        prop::option::weighted(0.8, 0u8..3),
        prop::bool::weighted(0.15),
        prop_oneof![Just(0i64), Just(-48 * H), Just(17 * 60_000)],
        prop::collection::vec((prop_oneof![4 => Just(0u8), 1 => 1u8..3], 0u8..10), 0..14),
        prop::collection::vec((0i64..160, 1i64..20), 0..3),
    )
        .prop_map(|(cluster, replica, downsampled, base, steps, extra)| Lane {
            cluster,
            replica,
            downsampled,
            base,
            steps,
            extra,
        })
}

fn build(lanes: &[Lane]) -> Vec<BlockMeta> {
    let mut out = Vec::new();
    let mut n = 0u64;
    for lane in lanes {
        let cluster = format!("c{}", lane.cluster);
        let replica = lane.replica.map(|r| format!("r{r}"));
        let mut lbls = vec![("cluster", cluster.as_str())];
        if let Some(r) = &replica {
            lbls.push(("replica", r.as_str()));
        }
        let res = if lane.downsampled {
            RESOLUTION_5M_MS
        } else {
            0
        };
        let mut ranges = Vec::new();
        let mut t = lane.base;
        for &(gap, kind) in &lane.steps {
            t += i64::from(gap) * 2 * H;
            let len = match kind {
                0..=6 => 2 * H,
                7 if t.rem_euclid(8 * H) == 0 => 8 * H,
                7 => 2 * H,
                8 => H,
                _ => 3 * H,
            };
            ranges.push((t, t + len));
            t += len;
        }
        for &(start, len) in &lane.extra {
            let s = lane.base + start * 15 * 60_000;
            ranges.push((s, s + len * 15 * 60_000));
        }
        for (min, max) in ranges {
            n += 1;
            let mut m = block_ms(n, min, max, &lbls, res);
            if n.is_multiple_of(5) {
                m.compaction.sources = vec![
                    Ulid::from_parts(BASE_MS - n, (1 << 70) | u128::from(n)),
                    Ulid::from_parts(BASE_MS - n, (1 << 71) | u128::from(n)),
                ];
                m.compaction.level = 2;
            }
            out.push(m);
        }
    }
    out
}

fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut s = seed;
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (s >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

fn overlap(a: &BlockMeta, b: &BlockMeta) -> bool {
    a.min_time < b.max_time && b.min_time < a.max_time
}

struct Outcome {
    visible: Vec<BlockMeta>,
    marked: Vec<BlockMeta>,
    /// Decisions taken: vertical plans, level plans, no-compact marks.
    counts: [usize; 3],
}

/// The laws every single plan obeys.
fn check_plan(
    key: &StreamKey,
    stream: &[BlockMeta],
    marked: &[BlockMeta],
    plan: &Plan,
    cfg: &PlannerConfig,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&plan.stream, key);
    prop_assert!(plan.blocks.len() >= 2, "single-block plan {:?}", plan);
    for w in plan.blocks.windows(2) {
        prop_assert!(by_time(&w[0], &w[1]).is_lt(), "plan not sorted/unique");
    }
    let ids: BTreeSet<Ulid> = plan.blocks.iter().map(|b| b.ulid).collect();
    let stream_ids: BTreeSet<Ulid> = stream.iter().map(|b| b.ulid).collect();
    prop_assert!(
        ids.is_subset(&stream_ids),
        "plan uses a block not in the stream"
    );
    prop_assert!(
        marked.iter().all(|m| !ids.contains(&m.ulid)),
        "plan uses a marked block"
    );
    let out_min = plan.blocks.iter().map(|b| b.min_time).min().unwrap_or(0);
    let out_max = plan.blocks.iter().map(|b| b.max_time).max().unwrap_or(0);
    for b in stream.iter().filter(|b| !ids.contains(&b.ulid)) {
        prop_assert!(
            !(b.min_time < out_max && out_min < b.max_time),
            "output [{}, {}) overlaps the untouched block {}",
            out_min,
            out_max,
            describe(b)
        );
    }
    match plan.kind {
        PlanKind::Level => {
            let newest = stream
                .iter()
                .chain(marked)
                .max_by(|a, b| by_time(a, b))
                .map(|b| b.ulid);
            prop_assert!(
                newest.is_some_and(|n| !ids.contains(&n)),
                "newest block planned"
            );
            for (i, a) in plan.blocks.iter().enumerate() {
                for b in &plan.blocks[i + 1..] {
                    prop_assert!(!overlap(a, b), "level plan with overlapping blocks");
                }
            }
            let fits = cfg.ranges_ms.iter().skip(1).any(|&r| {
                let t0 = out_min.div_euclid(r) * r;
                out_max <= t0 + r
            });
            prop_assert!(fits, "level plan outside any aligned window");
        }
        PlanKind::Vertical => {
            prop_assert!(cfg.dedup && key.resolution_ms == 0);
            let refs: Vec<&BlockMeta> = plan.blocks.iter().collect();
            prop_assert_eq!(select_overlapping(&refs).len(), refs.len());
            for (i, a) in plan.blocks.iter().enumerate() {
                for b in &plan.blocks[i + 1..] {
                    if pair_overlaps(a, b) {
                        prop_assert!(full_labels(a) != full_labels(b), "same replica merged");
                    }
                }
            }
        }
    }
    Ok(())
}

/// Plans every stream and applies each decision until all streams say `Nothing`.
fn simulate(
    input: Vec<BlockMeta>,
    cfg: &PlannerConfig,
    pass_marks: bool,
) -> Result<Outcome, TestCaseError> {
    let bound = input.len() + 1;
    let mut visible = input;
    let mut marked: Vec<BlockMeta> = Vec::new();
    let mut rounds = 0;
    let mut counts = [0; 3];
    loop {
        rounds += 1;
        prop_assert!(rounds <= bound, "no end after {} rounds", bound);
        let marked_by_stream = group_streams(&marked, cfg);
        let mut progressed = false;
        for (key, stream) in group_streams(&visible, cfg) {
            for b in &stream {
                prop_assert_eq!(&StreamKey::of(b, cfg), &key);
            }
            let no_compact = match (pass_marks, marked_by_stream.get(&key)) {
                (true, Some(m)) => m.clone(),
                _ => Vec::new(),
            };
            match plan_stream_with_no_compact(&key, &stream, &no_compact, cfg) {
                StreamDecision::Nothing => {}
                StreamDecision::Compact(plan) => {
                    check_plan(&key, &stream, &no_compact, &plan, cfg)?;
                    counts[usize::from(plan.kind == PlanKind::Level)] += 1;
                    visible = apply(&visible, &plan);
                    progressed = true;
                }
                StreamDecision::MarkNoCompact { blocks, reason, .. } => {
                    prop_assert!(!blocks.is_empty());
                    counts[2] += 1;
                    prop_assert!(
                        reason == REASON_BLOCK_OVERLAP || reason == REASON_DOWNSAMPLE_VERTICAL
                    );
                    let ids: BTreeSet<Ulid> = blocks.into_iter().collect();
                    prop_assert!(ids.iter().all(|id| stream.iter().any(|b| b.ulid == *id)));
                    marked.extend(visible.iter().filter(|b| ids.contains(&b.ulid)).cloned());
                    visible.retain(|b| !ids.contains(&b.ulid));
                    progressed = true;
                }
            }
        }
        if !progressed {
            return Ok(Outcome {
                visible,
                marked,
                counts,
            });
        }
    }
}

type Canon = BTreeSet<(bool, StreamKey, i64, i64, Vec<Ulid>)>;

fn canon(o: &Outcome, cfg: &PlannerConfig) -> Canon {
    let mut out = Canon::new();
    for (marked, list) in [(false, &o.visible), (true, &o.marked)] {
        for b in list.iter() {
            out.insert((
                marked,
                StreamKey::of(b, cfg),
                b.min_time,
                b.max_time,
                b.compaction.sources.clone(),
            ));
        }
    }
    out
}

fn arb_cfg() -> impl Strategy<Value = PlannerConfig> {
    (any::<bool>(), prop::bool::weighted(0.8)).prop_map(|(dedup, default_ranges)| PlannerConfig {
        ranges_ms: if default_ranges {
            DEFAULT_RANGES_MS.to_vec()
        } else {
            vec![H, 2 * H, 8 * H, 48 * H]
        },
        replica_labels: vec!["replica".into()],
        dedup,
    })
}

/// The random buckets below are not vacuous: over a fixed sample they produce vertical plans,
/// level plans and no-compact marks, and most cases take several decisions.
#[test]
fn random_buckets_exercise_every_decision() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (prop::collection::vec(arb_lane(), 1..5), arb_cfg());
    let mut totals = [0usize; 3];
    let mut busy = 0;
    for _ in 0..200 {
        let (lanes, cfg) = strategy.new_tree(&mut runner).unwrap().current();
        let o = simulate(build(&lanes), &cfg, true).unwrap();
        for (t, c) in totals.iter_mut().zip(o.counts) {
            *t += c;
        }
        busy += usize::from(o.counts.iter().sum::<usize>() >= 3);
    }
    assert!(
        totals.iter().all(|t| *t >= 20),
        "decisions taken: {totals:?}"
    );
    assert!(
        busy >= 60,
        "only {busy} of 200 buckets took 3 or more decisions"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Planning and applying ends; no source is lost or duplicated; what is left unmarked in
    /// a stream never overlaps; the listing order does not matter.
    #[test]
    fn planning_to_the_end_keeps_every_source_once(
        lanes in prop::collection::vec(arb_lane(), 1..5),
        cfg in arb_cfg(),
        pass_marks in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let input = build(&lanes);
        let mut sources: Vec<Ulid> = input.iter().flat_map(|b| b.compaction.sources.clone()).collect();
        sources.sort();
        let outcome = simulate(input.clone(), &cfg, pass_marks)?;

        let mut after: Vec<Ulid> = outcome
            .visible
            .iter()
            .chain(&outcome.marked)
            .flat_map(|b| b.compaction.sources.clone())
            .collect();
        after.sort();
        prop_assert_eq!(&after, &sources);

        for (_, stream) in group_streams(&outcome.visible, &cfg) {
            for (i, a) in stream.iter().enumerate() {
                for b in &stream[i + 1..] {
                    prop_assert!(!overlap(a, b), "{} overlaps {}", describe(a), describe(b));
                }
            }
        }

        let mut shuffled = input;
        shuffle(&mut shuffled, seed);
        let again = simulate(shuffled, &cfg, pass_marks)?;
        prop_assert_eq!(canon(&outcome, &cfg), canon(&again, &cfg));
    }

    /// With dedup on, the stream of a block never depends on its replica labels.
    #[test]
    fn stream_key_ignores_replica_labels(
        base in prop::collection::btree_map("[a-c]{1,2}", "[xy]{0,2}", 0..3),
        r1 in prop::option::of("[a-z0-9]{1,3}"),
        r2 in prop::option::of("[a-z0-9]{1,3}"),
        res in prop_oneof![Just(0i64), Just(RESOLUTION_5M_MS)],
    ) {
        let cfg = PlannerConfig {
            replica_labels: vec!["replica".into(), "rule_replica".into()],
            dedup: true,
            ..PlannerConfig::default()
        };
        let mut plain = BlockMeta::new(ulid(1), 0, 1);
        plain.thanos = Some(ThanosMeta::new(base.clone(), res, "sidecar"));
        let mut with = plain.clone();
        if let Some(t) = with.thanos.as_mut() {
            if let Some(v) = r1 { t.labels.insert("replica".into(), v); }
            if let Some(v) = r2 { t.labels.insert("rule_replica".into(), v); }
        }
        let key = StreamKey::of(&with, &cfg);
        prop_assert_eq!(&key, &StreamKey::of(&plain, &cfg));
        prop_assert!(!key.labels.is_empty());
        prop_assert_eq!(key.id(), StreamKey::of(&plain, &cfg).id());
    }

    /// `hidden_by_sources` hides exactly what Thanos's tree of sources hides.
    #[test]
    fn hidden_by_sources_matches_thanos_tree(
        blocks in prop::collection::vec((prop::collection::btree_set(0u64..8, 0..4), any::<bool>()), 0..12),
    ) {
        let metas: Vec<BlockMeta> = blocks
            .iter()
            .enumerate()
            .map(|(i, (srcs, down))| {
                let res = if *down { RESOLUTION_5M_MS } else { 0 };
                let mut m = block_ms(100 + i as u64, 0, H, &[("c", "a")], res);
                m.compaction.sources = srcs.iter().map(|s| ulid(*s)).collect();
                m
            })
            .collect();
        prop_assert_eq!(hidden_by_sources(&metas), thanos_tree(&metas));
    }
}

/// Thanos's `DefaultDeduplicateFilter` as written: per resolution, sort by number of sources
/// descending then ULID, insert each block under the first root whose sources contain its
/// own (recursively), and hide every block that is not a root.
fn thanos_tree(metas: &[BlockMeta]) -> BTreeSet<Ulid> {
    struct Node {
        ulid: Ulid,
        sources: BTreeSet<Ulid>,
        children: Vec<Node>,
    }
    fn add(nodes: &mut Vec<Node>, n: Node) -> bool {
        match nodes.iter_mut().find(|p| n.sources.is_subset(&p.sources)) {
            Some(p) => {
                add(&mut p.children, n);
                false
            }
            None => {
                nodes.push(n);
                true
            }
        }
    }
    let mut by_res: BTreeMap<i64, Vec<&BlockMeta>> = BTreeMap::new();
    for m in metas {
        by_res.entry(m.resolution()).or_default().push(m);
    }
    let mut hidden = BTreeSet::new();
    for (_, mut list) in by_res {
        list.sort_by(|a, b| {
            sources_of(b)
                .len()
                .cmp(&sources_of(a).len())
                .then(a.ulid.cmp(&b.ulid))
        });
        let mut roots = Vec::new();
        for m in list {
            let node = Node {
                ulid: m.ulid,
                sources: sources_of(m),
                children: Vec::new(),
            };
            let id = node.ulid;
            if !add(&mut roots, node) {
                hidden.insert(id);
            }
        }
    }
    hidden
}
