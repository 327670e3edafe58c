//! The bucket compactor's planner: pure functions (no I/O, no async, no clock — `now` is a
//! parameter) that decide what the compactor does with the bucket's blocks. It mirrors
//! Prometheus's `LeveledCompactor.plan` and Thanos's `tsdbBasedPlanner` with its filters
//! (`reference/thanos-behaviour.md` §1.0, §1.5).
//!
//! The rules:
//! - **Streams.** Blocks are grouped by resolution and external labels ([`StreamKey`]). When
//!   dedup is on, the replica labels are removed first (Thanos's `ReplicaLabelRemover`); a
//!   block left with no label at all gets `<first replica label>="deduped"`, as in Thanos, so
//!   the compacted block still has external labels. A block without a `thanos` section is
//!   resolution 0 with no labels. Blocks only ever compact within their stream, and the
//!   compacted block carries the stream's labels ([`Plan::merged_meta`]).
//! - **Overlaps first.** Blocks are sorted by (minTime, ULID). The first chain of overlapping
//!   blocks (Prometheus's `selectOverlappingDirs`: each block starts before the largest
//!   maxTime seen so far) is the candidate. It becomes a [`PlanKind::Vertical`] plan when dedup
//!   is on and no two of its blocks that overlap each other are the same replica: identical
//!   full external labels, or a shared `compaction.sources` entry. Otherwise the blocks of the
//!   offending pairs (the whole chain when dedup is off) get a no-compact mark with reason
//!   [`REASON_BLOCK_OVERLAP`]; the rest of the chain is planned in the next call.
//!   Overlapping downsampled blocks are all marked with [`REASON_DOWNSAMPLE_VERTICAL`].
//! - **Then levels.** Without overlaps the newest block (greatest minTime) is left out and,
//!   for every range after the first, blocks are split into aligned windows `[t0, t0+range)`
//!   (a block crossing a window boundary belongs to no window of that range); the first
//!   window holding more than one block that either spans the whole range (`maxTime` of the
//!   last − `minTime` of the first) or ends at or before the minTime of the newest remaining
//!   block is a [`PlanKind::Level`] plan. Windows containing a block whose compaction failed
//!   (`compaction.failed`) are skipped.
//! - **No-compact marks.** [`plan_stream_with_no_compact`] takes the stream's marked blocks
//!   too and treats them as Thanos does: they are never planned and never count as overlaps,
//!   but they stay in the window split and in the choice of the newest block, and a window is
//!   cut at them (the first run of more than one unmarked block is planned), so a compacted
//!   block never spans a marked one. [`plan_stream`] is the same with no marked blocks (what
//!   Prometheus does).
//! - **Hidden blocks** ([`hidden_by_sources`], Thanos's `DefaultDeduplicateFilter`): within one
//!   resolution, a block whose sources are all sources of another block is hidden when the
//!   other has more sources, or the same sources and a smaller ULID (Thanos's order: by number
//!   of sources descending, then ULID ascending, so the oldest of equal copies survives and a
//!   Thanos reader of the same bucket hides the same blocks). A block listing no sources
//!   counts as its own only source.
//! - **Consistency delay** ([`too_young`]) and **retention** ([`expired`]) as in Thanos.
//!
//! What differs from Thanos:
//! - Thanos merges every overlap once vertical compaction is on; here an overlap between
//!   blocks of the same replica is marked no-compact, because penalty deduplication would
//!   drop samples of one of them. Thanos halts the whole compactor on an overlap without
//!   vertical compaction and on a plan with overlapping sources; here only those blocks are
//!   marked and the other streams go on.
//! - The single-block rewrite of a block with more than 5% tombstones is not done: Strata
//!   writes no tombstones into the bucket.
//! - The default ranges are 2h, 8h, 2d, 14d. Thanos's are 1h, 2h, 8h, 2d, 14d: the extra 2h
//!   level only merges blocks shorter than 2h into 2h blocks before they reach 8h.
//! - The index-size cap (`index-size-exceeding`) needs object sizes and is left to the caller.
//! - A block from the future (uploader clock ahead) is too young until `now` passes its time
//!   plus the delay; Thanos's unsigned subtraction makes such a block visible at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use ulid::Ulid;

use crate::storage::block::{BlockMeta, ThanosMeta};
use crate::storage::compact::{plan_meta, CompactError};
use crate::storage::model::escape_label_value;
use crate::time::{format_rfc3339_millis, parse_rfc3339_millis};

const HOUR_MS: i64 = 3_600_000;

/// The default compaction ranges: 2h (the source level), 8h, 2d, 14d.
pub const DEFAULT_RANGES_MS: [i64; 4] = [2 * HOUR_MS, 8 * HOUR_MS, 48 * HOUR_MS, 336 * HOUR_MS];

/// Resolutions of downsampled blocks, in ms.
pub const RESOLUTION_5M_MS: i64 = 300_000;
pub const RESOLUTION_1H_MS: i64 = 3_600_000;

/// No-compact reason for blocks that overlap without being replicas of each other (Strata's
/// own reason; Thanos halts instead).
pub const REASON_BLOCK_OVERLAP: &str = "block-overlap";
/// No-compact reason for overlapping downsampled blocks (Thanos's
/// `DownsampleVerticalCompactionNoCompactReason`).
pub const REASON_DOWNSAMPLE_VERTICAL: &str = "downsample-vertical-compaction";

/// The value Thanos gives the first replica label of a block left without labels.
pub const DEDUPED_LABEL_VALUE: &str = "deduped";

/// `thanos.source` values exempt from the consistency delay.
pub const DELAY_EXEMPT_SOURCES: [&str; 3] = ["compactor", "compactor.repair", "bucket.repair"];

/// `thanos.source` of a block the compactor writes.
pub const COMPACTOR_SOURCE: &str = "compactor";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannerConfig {
    /// Compaction ranges in ms; `ranges_ms[0]` is the source level, the others are the levels
    /// blocks are compacted into. Ranges that are not positive are ignored.
    pub ranges_ms: Vec<i64>,
    /// Removed from the stream key when dedup is on.
    pub replica_labels: Vec<String>,
    pub dedup: bool,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            ranges_ms: DEFAULT_RANGES_MS.to_vec(),
            replica_labels: Vec::new(),
            dedup: false,
        }
    }
}

/// A stream: resolution + external labels (replica labels removed when dedup is on).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct StreamKey {
    pub resolution_ms: i64,
    pub labels: BTreeMap<String, String>,
}

/// The block's full external labels (empty without a `thanos` section).
fn full_labels(meta: &BlockMeta) -> Option<&BTreeMap<String, String>> {
    meta.thanos.as_ref().map(|t| &t.labels)
}

impl StreamKey {
    /// The stream of `meta`: its resolution and external labels, without the replica labels
    /// when dedup is on (a label set left empty becomes `<first replica label>="deduped"`).
    pub fn of(meta: &BlockMeta, cfg: &PlannerConfig) -> StreamKey {
        let mut labels = full_labels(meta).cloned().unwrap_or_default();
        if cfg.dedup {
            if let Some(first) = cfg.replica_labels.first() {
                for r in &cfg.replica_labels {
                    labels.remove(r);
                }
                if labels.is_empty() {
                    labels.insert(first.clone(), DEDUPED_LABEL_VALUE.to_string());
                }
            }
        }
        StreamKey {
            resolution_ms: meta.resolution(),
            labels,
        }
    }

    /// A stable 16-hex-digit id: XXH64 (seed 0) of the resolution in decimal, `@`, then every
    /// label as `name 0xff value 0xff` in name order (0xff never occurs in UTF-8, so distinct
    /// keys never share their bytes). Pinned by a known-answer test: lease names and stream
    /// ownership depend on it.
    pub fn id(&self) -> String {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        h.update(self.resolution_ms.to_string().as_bytes());
        h.update(b"@");
        for (n, v) in &self.labels {
            h.update(n.as_bytes());
            h.update(&[0xff]);
            h.update(v.as_bytes());
            h.update(&[0xff]);
        }
        format!("{:016x}", h.digest())
    }

    /// Thanos's compaction group key, `"<resolution>@<labels hash>"` with Prometheus's
    /// `labels.Hash()` in decimal, for metrics and logs that match a Thanos compactor's.
    pub fn thanos_group_key(&self) -> String {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        for (n, v) in &self.labels {
            h.update(n.as_bytes());
            h.update(&[0xff]);
            h.update(v.as_bytes());
            h.update(&[0xff]);
        }
        format!("{}@{}", self.resolution_ms, h.digest())
    }
}

fn write_labels(f: &mut impl fmt::Write, labels: &BTreeMap<String, String>) -> fmt::Result {
    f.write_str("{")?;
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{n}=\"{}\"", escape_label_value(v))?;
    }
    f.write_str("}")
}

impl fmt::Display for StreamKey {
    /// `0@{cluster="eu", tenant="a"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@", self.resolution_ms)?;
        write_labels(f, &self.labels)
    }
}

/// (minTime, ULID): the order every list of blocks here is kept in.
fn by_time(a: &BlockMeta, b: &BlockMeta) -> std::cmp::Ordering {
    (a.min_time, a.ulid).cmp(&(b.min_time, b.ulid))
}

/// The blocks of each stream, each list sorted by (minTime, ULID).
pub fn group_streams(
    metas: &[BlockMeta],
    cfg: &PlannerConfig,
) -> BTreeMap<StreamKey, Vec<BlockMeta>> {
    let mut out: BTreeMap<StreamKey, Vec<BlockMeta>> = BTreeMap::new();
    for m in metas {
        out.entry(StreamKey::of(m, cfg))
            .or_default()
            .push(m.clone());
    }
    for blocks in out.values_mut() {
        blocks.sort_by(by_time);
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PlanKind {
    /// Overlapping replica blocks, merged with deduplication.
    Vertical,
    /// Adjacent blocks inside one aligned window of a compaction range.
    Level,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Plan {
    pub stream: StreamKey,
    pub kind: PlanKind,
    /// Sorted by (minTime, ULID); at least two blocks.
    pub blocks: Vec<BlockMeta>,
}

impl Plan {
    /// The meta of the block this plan produces, with `ulid` as its ULID: time range union,
    /// level max + 1, sources union, parents listed (`storage::compact::plan_meta`), and a
    /// Thanos section with the stream's labels and resolution and source `compactor` (so a
    /// vertical merge of replicas carries the labels without the replica labels, as Thanos's
    /// does). When no input has a Thanos section, neither has the output.
    pub fn merged_meta(&self, ulid: Ulid) -> Result<BlockMeta, CompactError> {
        let mut meta = plan_meta(&self.blocks)?;
        meta.ulid = ulid;
        if self.blocks.iter().any(|b| b.thanos.is_some()) {
            let mut t = meta.thanos.take().unwrap_or_else(|| {
                ThanosMeta::new(BTreeMap::new(), self.stream.resolution_ms, COMPACTOR_SOURCE)
            });
            t.version = 1;
            t.labels = self.stream.labels.clone();
            t.downsample.resolution = self.stream.resolution_ms;
            t.source = COMPACTOR_SOURCE.to_string();
            t.files.clear();
            t.segment_files.clear();
            t.upload_time = None;
            meta.thanos = Some(t);
        }
        Ok(meta)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StreamDecision {
    Compact(Plan),
    Nothing,
    /// Blocks that must be marked no-compact, with the Thanos-style reason and a details
    /// text: blocks of one replica that overlap ([`REASON_BLOCK_OVERLAP`]; with dedup off,
    /// every overlap), or overlapping downsampled blocks ([`REASON_DOWNSAMPLE_VERTICAL`]).
    /// `blocks` is sorted by ULID.
    MarkNoCompact {
        blocks: Vec<Ulid>,
        reason: String,
        details: String,
    },
}

/// The next step for one stream's blocks. `blocks` are the stream's visible blocks (already
/// without no-compact-marked, deletion-marked, hidden or too-young ones). Same as
/// [`plan_stream_with_no_compact`] with no marked blocks.
pub fn plan_stream(
    stream: &StreamKey,
    blocks: &[BlockMeta],
    cfg: &PlannerConfig,
) -> StreamDecision {
    plan_stream_with_no_compact(stream, blocks, &[], cfg)
}

/// [`plan_stream`] that also takes the stream's no-compact-marked blocks, which it never
/// plans but keeps in the range split the way Thanos does, so no compacted block spans one.
/// A ULID in both lists counts as marked; a ULID listed twice counts once.
pub fn plan_stream_with_no_compact(
    stream: &StreamKey,
    blocks: &[BlockMeta],
    no_compact: &[BlockMeta],
    cfg: &PlannerConfig,
) -> StreamDecision {
    let marked: BTreeSet<Ulid> = no_compact.iter().map(|m| m.ulid).collect();
    let mut seen: BTreeSet<Ulid> = BTreeSet::new();
    let mut visible: Vec<&BlockMeta> = Vec::with_capacity(blocks.len());
    for b in blocks {
        if !marked.contains(&b.ulid) && seen.insert(b.ulid) {
            visible.push(b);
        }
    }
    visible.sort_by(|a, b| by_time(a, b));

    let overlapping = select_overlapping(&visible);
    if !overlapping.is_empty() {
        return decide_overlap(stream, &overlapping, cfg);
    }

    let mut all: Vec<&BlockMeta> = visible.clone();
    for m in no_compact {
        if seen.insert(m.ulid) {
            all.push(m);
        }
    }
    all.sort_by(|a, b| by_time(a, b));
    // Never the newest block: it may still be joined by one of the same window.
    all.pop();
    match select_level(&cfg.ranges_ms, &all, &marked) {
        Some(chosen) => StreamDecision::Compact(Plan {
            stream: stream.clone(),
            kind: PlanKind::Level,
            blocks: chosen.into_iter().cloned().collect(),
        }),
        None => StreamDecision::Nothing,
    }
}

/// The first chain of overlapping blocks of `sorted` (by minTime): a block joins when it
/// starts before the greatest maxTime seen so far (Prometheus's `selectOverlappingDirs`).
fn select_overlapping<'a>(sorted: &[&'a BlockMeta]) -> Vec<&'a BlockMeta> {
    let mut out: Vec<&BlockMeta> = Vec::new();
    let Some(first) = sorted.first() else {
        return out;
    };
    let mut global_max = first.max_time;
    for (i, b) in sorted.iter().enumerate().skip(1) {
        if b.min_time < global_max {
            if out.is_empty() {
                out.push(sorted[i - 1]);
            }
            out.push(b);
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(b.max_time);
    }
    out
}

/// Whether two blocks overlap in the planner's sense: the later one (by minTime, ULID)
/// starts before the earlier one ends. Every block of an overlap chain overlaps at least one
/// other block of it in this sense.
fn pair_overlaps(a: &BlockMeta, b: &BlockMeta) -> bool {
    let (early, late) = if by_time(a, b).is_le() {
        (a, b)
    } else {
        (b, a)
    };
    late.min_time < early.max_time
}

fn sources_of(m: &BlockMeta) -> BTreeSet<Ulid> {
    if m.compaction.sources.is_empty() {
        BTreeSet::from([m.ulid])
    } else {
        m.compaction.sources.iter().copied().collect()
    }
}

fn describe(m: &BlockMeta) -> String {
    let mut s = format!(
        "{} [{}, {})",
        m.ulid,
        format_rfc3339_millis(m.min_time),
        format_rfc3339_millis(m.max_time)
    );
    if let Some(l) = full_labels(m) {
        s.push(' ');
        // Writing into a String cannot fail.
        let _ = write_labels(&mut s, l);
    }
    s
}

/// At most this many blocks or pairs are named in a no-compact mark's details.
const DETAILS_MAX_ITEMS: usize = 8;

/// `items` joined by `sep`, the first [`DETAILS_MAX_ITEMS`] of them and a count of the rest.
fn join_capped(items: &[String], sep: &str) -> String {
    let mut s = items
        .iter()
        .take(DETAILS_MAX_ITEMS)
        .cloned()
        .collect::<Vec<_>>()
        .join(sep);
    if items.len() > DETAILS_MAX_ITEMS {
        s.push_str(&format!(
            "{sep}and {} more",
            items.len() - DETAILS_MAX_ITEMS
        ));
    }
    s
}

fn decide_overlap(stream: &StreamKey, set: &[&BlockMeta], cfg: &PlannerConfig) -> StreamDecision {
    if stream.resolution_ms > 0 || set.iter().any(|m| m.resolution() > 0) {
        let blocks: BTreeSet<Ulid> = set.iter().map(|m| m.ulid).collect();
        let listed: Vec<String> = set.iter().map(|m| describe(m)).collect();
        return StreamDecision::MarkNoCompact {
            blocks: blocks.into_iter().collect(),
            reason: REASON_DOWNSAMPLE_VERTICAL.to_string(),
            details: format!(
                "overlapping downsampled blocks of stream {stream} cannot be compacted \
                 vertically: {}",
                join_capped(&listed, ", ")
            ),
        };
    }
    let sources: Vec<BTreeSet<Ulid>> = set.iter().map(|m| sources_of(m)).collect();
    let mut offending: BTreeSet<Ulid> = BTreeSet::new();
    let mut pairs: Vec<String> = Vec::new();
    for i in 0..set.len() {
        for j in i + 1..set.len() {
            let (a, b) = (set[i], set[j]);
            if !pair_overlaps(a, b) {
                continue;
            }
            let why = if !cfg.dedup {
                "overlap (vertical compaction is off)"
            } else if full_labels(a) == full_labels(b) {
                "overlap with the same external labels"
            } else if !sources[i].is_disjoint(&sources[j]) {
                "share compaction sources"
            } else {
                continue;
            };
            offending.insert(a.ulid);
            offending.insert(b.ulid);
            pairs.push(format!("{} and {} {why}", describe(a), describe(b)));
        }
    }
    if offending.is_empty() {
        return StreamDecision::Compact(Plan {
            stream: stream.clone(),
            kind: PlanKind::Vertical,
            blocks: set.iter().map(|m| (*m).clone()).collect(),
        });
    }
    StreamDecision::MarkNoCompact {
        blocks: offending.into_iter().collect(),
        reason: REASON_BLOCK_OVERLAP.to_string(),
        details: format!(
            "blocks of stream {stream} overlap without being replicas of each other: {}",
            join_capped(&pairs, "; ")
        ),
    }
}

/// Prometheus's `splitByRange`: consecutive blocks (sorted by minTime) that fall inside one
/// aligned window `[t0, t0+range)`; a block that crosses its window's end is skipped.
fn split_by_range<'a>(sorted: &[&'a BlockMeta], range: i64) -> Vec<Vec<&'a BlockMeta>> {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let t0 = sorted[i].min_time.div_euclid(range) * range;
        let end = t0.saturating_add(range);
        if sorted[i].max_time > end {
            i += 1;
            continue;
        }
        let mut part = Vec::new();
        while i < sorted.len() && sorted[i].max_time <= end {
            part.push(sorted[i]);
            i += 1;
        }
        parts.push(part);
    }
    parts
}

/// Thanos's `selectMetas`: the first window of a range after the first that holds more than
/// one block and is complete (spans the range, or ends by the minTime of the newest block of
/// `sorted`), cut at marked blocks. `sorted` is without the stream's newest block.
fn select_level<'a>(
    ranges: &[i64],
    sorted: &[&'a BlockMeta],
    marked: &BTreeSet<Ulid>,
) -> Option<Vec<&'a BlockMeta>> {
    let high_time = sorted.last()?.min_time;
    for &range in ranges.iter().skip(1).filter(|r| **r > 0) {
        for part in split_by_range(sorted, range) {
            if part.len() < 2 || part.iter().any(|m| m.compaction.failed) {
                continue;
            }
            let (Some(first), Some(last)) = (part.first(), part.last()) else {
                continue;
            };
            let (mint, maxt) = (first.min_time, last.max_time);
            if maxt.saturating_sub(mint) != range && maxt > high_time {
                continue;
            }
            if let Some(run) = part
                .split(|m| marked.contains(&m.ulid))
                .find(|run| run.len() > 1)
            {
                return Some(run.to_vec());
            }
        }
    }
    None
}

/// Thanos's deduplicate filter: within each resolution, the blocks whose sources are all
/// sources of another block that has more sources, or the same sources and a smaller ULID.
/// A block listing no sources counts as its own only source.
pub fn hidden_by_sources(metas: &[BlockMeta]) -> BTreeSet<Ulid> {
    struct Entry {
        ulid: Ulid,
        res: i64,
        sources: BTreeSet<Ulid>,
    }
    let entries: Vec<Entry> = metas
        .iter()
        .map(|m| Entry {
            ulid: m.ulid,
            res: m.resolution(),
            sources: sources_of(m),
        })
        .collect();
    // (resolution, source) -> the blocks holding it.
    let mut holders: HashMap<(i64, Ulid), Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        for s in &e.sources {
            holders.entry((e.res, *s)).or_default().push(i);
        }
    }
    let mut hidden = BTreeSet::new();
    for x in &entries {
        let Some(probe) = x.sources.first() else {
            continue;
        };
        let covered = holders
            .get(&(x.res, *probe))
            .into_iter()
            .flatten()
            .map(|&j| &entries[j])
            .any(|y| {
                y.ulid != x.ulid
                    && (y.sources.len(), std::cmp::Reverse(y.ulid))
                        > (x.sources.len(), std::cmp::Reverse(x.ulid))
                    && x.sources.is_subset(&y.sources)
            });
        if covered {
            hidden.insert(x.ulid);
        }
    }
    hidden
}

/// Consistency delay: whether `meta` is younger than `delay_ms` at `now_ms`, its age taken
/// from `thanos.upload_time` (RFC 3339), else from its ULID's time. Blocks written by the
/// compactor or a repair (`thanos.source` `compactor`, `compactor.repair`, `bucket.repair`)
/// are never too young, nor is anything when the delay is not positive.
pub fn too_young(meta: &BlockMeta, now_ms: i64, delay_ms: i64) -> bool {
    if delay_ms <= 0 {
        return false;
    }
    if let Some(t) = &meta.thanos {
        if DELAY_EXEMPT_SOURCES.contains(&t.source.as_str()) {
            return false;
        }
    }
    let born = meta
        .thanos
        .as_ref()
        .and_then(|t| t.upload_time.as_deref())
        .and_then(parse_rfc3339_millis)
        .unwrap_or_else(|| i64::try_from(meta.ulid.timestamp_ms()).unwrap_or(i64::MAX));
    now_ms.saturating_sub(born) < delay_ms
}

/// Retention per resolution in ms; 0 (or less) keeps blocks of that resolution forever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub raw_ms: i64,
    pub five_m_ms: i64,
    pub one_h_ms: i64,
}

impl Retention {
    /// The retention of blocks of `resolution_ms`; 0 for a resolution Thanos does not know.
    pub fn for_resolution(&self, resolution_ms: i64) -> i64 {
        match resolution_ms {
            0 => self.raw_ms,
            RESOLUTION_5M_MS => self.five_m_ms,
            RESOLUTION_1H_MS => self.one_h_ms,
            _ => 0,
        }
    }
}

/// Blocks whose maxTime is older than the retention of their resolution:
/// `now_ms > maxTime + retention`. Sorted by ULID, each once.
pub fn expired(metas: &[BlockMeta], retention: &Retention, now_ms: i64) -> Vec<Ulid> {
    let out: BTreeSet<Ulid> = metas
        .iter()
        .filter(|m| {
            let keep = retention.for_resolution(m.resolution());
            keep > 0 && now_ms > m.max_time.saturating_add(keep)
        })
        .map(|m| m.ulid)
        .collect();
    out.into_iter().collect()
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
