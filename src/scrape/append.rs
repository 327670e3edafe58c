//! Turning one scraped body into head samples, the way Prometheus 2.42's `scrapeLoop.append`
//! does: parse, attach the target's labels (honor_labels, `exported_` on conflicts), apply
//! `metric_relabel_configs`, enforce label and sample limits, append with the cached series
//! ref, and write staleness markers for series the previous scrape had and this one lacks.
//! The cache is keyed by the series text as exposed, so a steady target costs no label
//! building or relabeling after its first scrape.

use std::collections::BTreeMap;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::parser::{Entry, Format, Metadata, ParseError, Parser, SampleEntry};
use super::relabel::{process_builder, LabelsBuilder};
use super::target::Target;
use crate::config::ScrapeConfig;
use crate::storage::head::series::{prefetch, MemSeries};
use crate::storage::head::{HeadAppender, HeadError, Result as HeadResult};
use crate::storage::model::{stale_nan, Label, Labels, METRIC_NAME};

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("sample limit exceeded: the scrape has more than {0} samples after metric relabeling")]
    SampleLimit(u64),
    #[error("label_limit exceeded (metric: {metric}, number of labels: {count}, limit: {limit})")]
    LabelLimit {
        metric: String,
        count: usize,
        limit: u64,
    },
    #[error(
        "label_name_length_limit exceeded (metric: {metric}, label name: {name}, limit: {limit})"
    )]
    LabelNameLength {
        metric: String,
        name: String,
        limit: u64,
    },
    #[error("label_value_length_limit exceeded (metric: {metric}, label name: {name}, value: {value:?}, limit: {limit})")]
    LabelValueLength {
        metric: String,
        name: String,
        value: String,
        limit: u64,
    },
    #[error("line {0}: a series without a metric name after relabeling")]
    NoMetricName(usize),
    #[error("appending to the local TSDB: {0}")]
    Storage(HeadError),
}

pub type Result<T> = std::result::Result<T, AppendError>;

/// What the cache knows about one exposed series.
enum Slot {
    /// Metric relabeling dropped it (or, with `seen == 0`, a free entry).
    Dropped {
        seen: u64,
    },
    Kept(Kept),
}

struct Kept {
    series_ref: u64,
    /// The head's series of `series_ref`: appends skip the ref lookup, and the next ones
    /// can be prefetched.
    series: Option<Arc<MemSeries>>,
    labels: Labels,
    seen: u64,
    /// Only series without an explicit timestamp get staleness markers (as in Prometheus).
    track_staleness: bool,
}

impl Kept {
    fn append(&mut self, app: &mut HeadAppender<'_>, t: i64, v: f64) -> HeadResult<()> {
        let r = match &self.series {
            Some(s) => app.append_to(s, &self.labels, t, v),
            None => app.append(self.series_ref, &self.labels, t, v),
        };
        let new_ref = r?;
        if new_ref != self.series_ref || self.series.is_none() {
            self.series_ref = new_ref;
            self.series = app.series(new_ref);
        }
        Ok(())
    }
}

impl Slot {
    fn seen(&self) -> u64 {
        match self {
            Slot::Dropped { seen } => *seen,
            Slot::Kept(k) => k.seen,
        }
    }
}

/// One cache entry: its slot and where it was in the last body.
struct CacheEntry {
    slot: Slot,
    /// Index in `ScrapeCache::order` (valid only when that order entry points back here).
    pos: u32,
}

/// A failed append: why, and what it had counted by then (for the report series).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct AppendFailure {
    pub error: Box<AppendError>,
    pub stats: AppendStats,
}

/// Counts of one append, for the report series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// `scrape_samples_scraped`.
    pub total: u64,
    /// `scrape_samples_post_metric_relabeling`.
    pub added: u64,
    /// `scrape_series_added`.
    pub series_added: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
    pub out_of_bounds: u64,
}

/// The series texts of the last good body in body order, each with its cache entry: a
/// target exposes its series in the same order scrape after scrape, so the next body's
/// lines are first compared byte for byte against the text expected at that position.
/// A match skips label parsing, key building, hashing and the map lookup, and reads both
/// texts sequentially instead of chasing one key allocation per sample.
#[derive(Default)]
struct Order {
    /// Concatenated series texts.
    text: Vec<u8>,
    /// (end of the series text in `text`, entry index), in body order.
    lines: Vec<(u32, u32)>,
    /// The format the texts were read in (the fast path is only valid within one format).
    format: Option<Format>,
    /// The append that wrote it (every entry it names was seen then).
    iter: u64,
}

impl Order {
    fn series(&self, i: usize) -> Option<(&[u8], u32)> {
        let &(end, entry) = self.lines.get(i)?;
        let start = match i {
            0 => 0,
            _ => self.lines[i - 1].0,
        };
        Some((self.text.get(start as usize..end as usize)?, entry))
    }

    fn push(&mut self, series: &[u8], entry: u32) {
        if self.text.len() + series.len() > u32::MAX as usize {
            // Past 4 GiB of series text the offsets would wrap; such lines take the slow path.
            return;
        }
        self.text.extend_from_slice(series);
        self.lines.push((self.text.len() as u32, entry));
    }

    fn clear(&mut self) {
        self.text.clear();
        self.lines.clear();
    }

    /// Keeps the first `n` lines.
    fn truncate(&mut self, n: usize) {
        if n < self.lines.len() {
            let end = match n {
                0 => 0,
                _ => self.lines[n - 1].0,
            };
            self.text.truncate(end as usize);
            self.lines.truncate(n);
        }
    }
}

/// Per-target state that lives across scrapes.
#[derive(Default)]
pub struct ScrapeCache {
    /// Canonical series key → index in `entries`. XXH3 rather than Fx: the keys are long and
    /// alike (same name, similar labels), which made Fx's weak mixing probe and compare many
    /// keys per lookup.
    index: HashMap<Box<[u8]>, u32, Xxh3DefaultBuilder>,
    entries: Vec<CacheEntry>,
    /// Indexes of free `entries`.
    free: Vec<u32>,
    order: Order,
    /// The order being built when a body departs from `order` (kept for its capacity).
    next_order: Order,
    /// Bumped for every append, failed scrapes included.
    iter: u64,
    key: Vec<u8>,
    /// The metadata of the target's metric families, updated in place.
    pub metadata: BTreeMap<String, Metadata>,
}

/// How many lines ahead the fast path prefetches head series.
const PREFETCH_AHEAD: usize = 8;

/// Cache entries unseen for this many scrapes are forgotten.
const CACHE_KEEP_ITERS: u64 = 10;

/// The target-specific inputs of an append.
pub struct AppendCtx<'a> {
    pub cfg: &'a ScrapeConfig,
    /// The target's labels without `__` ones.
    pub target_labels: &'a Labels,
    /// Families the job's `lint: drop` policy keeps out (names as the linter reports them).
    pub lint_dropped: Option<&'a HashSet<String>>,
}

/// Whether a sample belongs to one of `families`: its own name, or its name without the
/// suffix a histogram, summary, counter or info child adds to the family's.
pub fn in_families(sample_name: &str, families: &HashSet<String>) -> bool {
    if families.contains(sample_name) {
        return true;
    }
    ["_bucket", "_count", "_sum", "_total", "_created", "_info"]
        .iter()
        .filter_map(|suffix| sample_name.strip_suffix(suffix))
        .any(|family| families.contains(family))
}

/// How this body's sequence of series texts relates to the last one's.
enum Build {
    /// So far exactly the first `cursor` lines of `order`: nothing to write.
    Same,
    /// Departed: the sequence is being written to `next_order`.
    Diverged,
}

impl ScrapeCache {
    /// Appends a scrape body at `t` (ms). On error nothing of this body should be committed:
    /// the caller rolls back and calls [`ScrapeCache::append_failed`].
    ///
    /// The counts of a failed append are what Prometheus 2.42 reports for it: the samples read
    /// and kept until the error (a sample whose labels the head refuses counts as read, not
    /// kept; past `sample_limit` the rest of the body is still counted, not stored).
    pub fn append(
        &mut self,
        app: &mut HeadAppender<'_>,
        ctx: &AppendCtx<'_>,
        body: &[u8],
        format: Format,
        t: i64,
    ) -> std::result::Result<AppendStats, AppendFailure> {
        let mut stats = AppendStats::default();
        match self.append_counting(app, ctx, body, format, t, &mut stats) {
            Ok(()) => Ok(stats),
            Err(error) => Err(AppendFailure {
                error: Box::new(error),
                stats,
            }),
        }
    }

    fn append_counting(
        &mut self,
        app: &mut HeadAppender<'_>,
        ctx: &AppendCtx<'_>,
        body: &[u8],
        format: Format,
        t: i64,
        stats: &mut AppendStats,
    ) -> Result<()> {
        self.iter += 1;
        let iter = self.iter;
        if self.order.format != Some(format) {
            self.order.clear();
            self.order.format = Some(format);
        }
        self.next_order.clear();
        let mut build = Build::Same;
        // Next expected line of `order`.
        let mut cursor = 0usize;
        let mut parser = Parser::new(body, format);
        loop {
            if let Some((series, entry)) = self.order.series(cursor) {
                if let Some((value, timestamp)) = parser.next_known(series)? {
                    cursor += 1;
                    self.prefetch(cursor + PREFETCH_AHEAD);
                    if let Build::Diverged = build {
                        self.next_order.push(series, entry);
                    }
                    stats.total += 1;
                    let ts = sample_time(ctx.cfg, timestamp, t);
                    let slot = &mut self.entries[entry as usize].slot;
                    if let Some(res) = append_cached(app, slot, iter, ts, value) {
                        if let Err(e) = count(stats, res, ctx.cfg) {
                            return self.count_rest(parser, ctx, stats, e);
                        }
                    }
                    continue;
                }
            }
            let entry = match parser.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                // Prometheus's parser takes the line; its head refuses the label set.
                Err(e @ ParseError::DuplicateLabel { .. }) => {
                    stats.total += 1;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            let s = match entry {
                Entry::Sample(s) => s,
                Entry::Help { family, help } => {
                    self.update_meta(family, |m| {
                        if m.help != help {
                            m.help = help.into_owned();
                        }
                    });
                    continue;
                }
                Entry::Type {
                    family,
                    metric_type,
                } => {
                    self.update_meta(family, |m| m.metric_type = metric_type);
                    continue;
                }
                Entry::Unit { family, unit } => {
                    self.update_meta(family, |m| {
                        if m.unit != unit {
                            m.unit = unit.to_string();
                        }
                    });
                    continue;
                }
            };
            stats.total += 1;
            let ts = sample_time(ctx.cfg, s.timestamp, t);
            series_key(&mut self.key, &s);
            let (entry, res) = match self.index.get(self.key.as_slice()) {
                Some(&e) => {
                    let slot = &mut self.entries[e as usize].slot;
                    (Some(e), append_cached(app, slot, iter, ts, s.value))
                }
                None => match mutate_sample_labels(&s, ctx) {
                    None => (Some(self.insert(Slot::Dropped { seen: iter })), None),
                    Some(labels) => {
                        if labels.get(METRIC_NAME).is_none() {
                            return Err(AppendError::NoMetricName(s.line));
                        }
                        check_label_limits(&labels, ctx.cfg)?;
                        let r = app.append(0, &labels, ts, s.value);
                        let mut e = None;
                        if let Ok(series_ref) = r {
                            stats.series_added += 1;
                            e = Some(self.insert(Slot::Kept(Kept {
                                series_ref,
                                series: app.series(series_ref),
                                labels,
                                seen: iter,
                                track_staleness: s.timestamp.is_none() || !ctx.cfg.honor_timestamps,
                            })));
                        }
                        (e, Some(r.map(|_| ())))
                    }
                },
            };
            if let (Some(e), Some(series)) = (entry, parser.last_series()) {
                if let Build::Same = build {
                    // Copy the common prefix, then write every line from here on.
                    let end = match cursor {
                        0 => 0,
                        _ => self.order.lines[cursor - 1].0 as usize,
                    };
                    self.next_order
                        .text
                        .extend_from_slice(&self.order.text[..end]);
                    self.next_order
                        .lines
                        .extend_from_slice(&self.order.lines[..cursor]);
                    build = Build::Diverged;
                }
                self.next_order.push(series, e);
                // Resynchronise: the line after this one in the last body comes next.
                let pos = self.entries[e as usize].pos as usize;
                if self.order.lines.get(pos).is_some_and(|l| l.1 == e) {
                    cursor = pos + 1;
                }
            }
            if let Some(res) = res {
                if let Err(e) = count(stats, res, ctx.cfg) {
                    return self.count_rest(parser, ctx, stats, e);
                }
            }
        }
        self.order.iter = iter;
        match build {
            Build::Same => self.order.truncate(cursor),
            Build::Diverged => {
                std::mem::swap(&mut self.order.text, &mut self.next_order.text);
                std::mem::swap(&mut self.order.lines, &mut self.next_order.lines);
                for (pos, &(_, e)) in self.order.lines.iter().enumerate() {
                    self.entries[e as usize].pos = pos as u32;
                }
                self.next_order.clear();
            }
        }
        self.mark_stale(app, t)?;
        Ok(())
    }

    /// After `error` (the sample limit): counts the rest of the body as Prometheus does —
    /// every sample read, and those relabeling keeps — without storing any, then fails.
    fn count_rest(
        &mut self,
        mut parser: Parser<'_>,
        ctx: &AppendCtx<'_>,
        stats: &mut AppendStats,
        error: AppendError,
    ) -> Result<()> {
        if !matches!(error, AppendError::SampleLimit(_)) {
            return Err(error);
        }
        while let Ok(Some(entry)) = parser.next_entry() {
            let Entry::Sample(s) = entry else { continue };
            stats.total += 1;
            series_key(&mut self.key, &s);
            let kept = match self.index.get(self.key.as_slice()) {
                Some(&e) => !matches!(self.entries[e as usize].slot, Slot::Dropped { .. }),
                None => mutate_sample_labels(&s, ctx).is_some(),
            };
            if kept {
                stats.added += 1;
            }
        }
        Err(error)
    }

    /// Starts loading the head series of line `i` of the last body, which will likely be
    /// appended to shortly.
    fn prefetch(&self, i: usize) {
        // The cache entries, too, are cold by the next scrape: load them further ahead.
        if let Some(&(_, e)) = self.order.lines.get(i + 2 * PREFETCH_AHEAD) {
            if let Some(entry) = self.entries.get(e as usize) {
                prefetch(entry);
            }
        }
        let Some(&(_, e)) = self.order.lines.get(i) else {
            return;
        };
        if let Some(CacheEntry {
            slot: Slot::Kept(Kept {
                series: Some(s), ..
            }),
            ..
        }) = self.entries.get(e as usize)
        {
            MemSeries::prefetch_header(s);
        }
    }

    fn insert(&mut self, slot: Slot) -> u32 {
        let e = match self.free.pop() {
            Some(e) => {
                self.entries[e as usize] = CacheEntry {
                    slot,
                    pos: u32::MAX,
                };
                e
            }
            None => {
                self.entries.push(CacheEntry {
                    slot,
                    pos: u32::MAX,
                });
                (self.entries.len() - 1) as u32
            }
        };
        self.index.insert(self.key.as_slice().into(), e);
        e
    }

    /// A failed scrape: every series of the previous scrape goes stale at `t`.
    pub fn append_failed(&mut self, app: &mut HeadAppender<'_>, t: i64) -> Result<()> {
        self.iter += 1;
        self.mark_stale(app, t)
    }

    /// The target went away: everything the last scrape had goes stale at `t`.
    pub fn append_end_of_run(&mut self, app: &mut HeadAppender<'_>, t: i64) -> Result<()> {
        self.iter += 1;
        self.mark_stale(app, t)
    }

    /// Updates one family's metadata in place; allocates only for a family not seen before.
    fn update_meta(&mut self, family: &str, f: impl FnOnce(&mut Metadata)) {
        match self.metadata.get_mut(family) {
            Some(m) => f(m),
            None => {
                let mut m = Metadata::default();
                f(&mut m);
                self.metadata.insert(family.to_string(), m);
            }
        }
    }

    /// Stale markers for series seen in the previous iteration but not in this one, then
    /// forgets entries unseen for long.
    fn mark_stale(&mut self, app: &mut HeadAppender<'_>, t: i64) -> Result<()> {
        let iter = self.iter;
        let mut expired = false;
        for e in self.entries.iter_mut() {
            let seen = e.slot.seen();
            // `seen == 0`: a free entry.
            expired |= seen != 0 && seen + CACHE_KEEP_ITERS <= iter;
            let Slot::Kept(k) = &mut e.slot else { continue };
            if !k.track_staleness || k.seen + 1 != iter {
                continue;
            }
            match k.append(app, t, stale_nan()) {
                Ok(()) => {}
                Err(HeadError::Wal(e)) => return Err(AppendError::Storage(HeadError::Wal(e))),
                // An out-of-order marker (a newer sample exists) is simply not needed.
                Err(_) => {}
            }
        }
        if expired {
            let (entries, free) = (&mut self.entries, &mut self.free);
            self.index.retain(|_, &mut e| {
                let keep = entries[e as usize].slot.seen() + CACHE_KEEP_ITERS > iter;
                if !keep {
                    entries[e as usize].slot = Slot::Dropped { seen: 0 };
                    free.push(e);
                }
                keep
            });
            // Freed entries get reused for other series, so an order that may name them is
            // forgotten; one written by this append names only entries seen now.
            if self.order.iter != iter {
                self.order.clear();
            }
        }
        Ok(())
    }
}

/// The time a sample is stored at: its own with `honor_timestamps`, else the scrape's.
fn sample_time(cfg: &ScrapeConfig, timestamp: Option<i64>, t: i64) -> i64 {
    match (cfg.honor_timestamps, timestamp) {
        (true, Some(ts)) => ts,
        _ => t,
    }
}

/// Appends a sample of a cached series; `None` when relabeling dropped the series.
fn append_cached(
    app: &mut HeadAppender<'_>,
    slot: &mut Slot,
    iter: u64,
    ts: i64,
    v: f64,
) -> Option<std::result::Result<(), HeadError>> {
    match slot {
        Slot::Dropped { seen } => {
            *seen = iter;
            None
        }
        Slot::Kept(k) => {
            k.seen = iter;
            Some(k.append(app, ts, v))
        }
    }
}

/// Counts one append's outcome and enforces `sample_limit`.
fn count(
    stats: &mut AppendStats,
    res: std::result::Result<(), HeadError>,
    cfg: &ScrapeConfig,
) -> Result<()> {
    // Like Prometheus, a sample the head refuses as out of order, duplicate or out of bounds
    // still counts as kept after relabeling; only other storage errors fail the scrape.
    match res {
        Ok(()) => {}
        Err(HeadError::OutOfOrder) => stats.out_of_order += 1,
        Err(HeadError::DuplicateTimestamp) => stats.duplicates += 1,
        Err(HeadError::OutOfBounds) => stats.out_of_bounds += 1,
        Err(e) => return Err(AppendError::Storage(e)),
    }
    stats.added += 1;
    let limit = cfg.sample_limit;
    if limit > 0 && stats.added > limit {
        return Err(AppendError::SampleLimit(limit));
    }
    Ok(())
}

/// The exposed series as bytes: the cache key.
fn series_key(buf: &mut Vec<u8>, s: &SampleEntry<'_>) {
    buf.clear();
    buf.extend_from_slice(s.name.as_bytes());
    for (n, v) in &s.labels {
        buf.push(0xff);
        buf.extend_from_slice(n.as_bytes());
        buf.push(0xfe);
        buf.extend_from_slice(v.as_bytes());
    }
}

/// Prometheus's `mutateSampleLabels`: target labels win (exposed ones are kept as
/// `exported_<name>`) unless `honor_labels`, then metric relabeling. `None`: dropped.
pub fn mutate_sample_labels(s: &SampleEntry<'_>, ctx: &AppendCtx<'_>) -> Option<Labels> {
    if ctx.lint_dropped.is_some_and(|f| in_families(s.name, f)) {
        return None;
    }
    let exposed = s.to_labels();
    let labels = mutate_labels(&exposed, ctx.target_labels, ctx.cfg.honor_labels);
    if ctx.cfg.metric_relabel_configs.is_empty() {
        return Some(labels);
    }
    let mut b = LabelsBuilder::new(&labels);
    process_builder(&mut b, &ctx.cfg.metric_relabel_configs).then(|| b.labels())
}

/// The label half of `mutateSampleLabels`, shared with the report series.
pub fn mutate_labels(exposed: &Labels, target: &Labels, honor: bool) -> Labels {
    let mut out: Vec<Label> = exposed.as_slice().to_vec();
    if honor {
        for l in target.iter() {
            if exposed.get(&l.name).is_none() {
                out.push(l.clone());
            }
        }
        return Labels::new(out);
    }
    let mut conflicts: Vec<Label> = Vec::new();
    for l in target.iter() {
        if let Some(v) = exposed.get(&l.name) {
            conflicts.push(Label::new(l.name.as_str(), v));
        }
    }
    out.retain(|l| target.get(&l.name).is_none());
    out.extend(target.iter().cloned());
    if !conflicts.is_empty() {
        // Shorter names first, then each gets `exported_` prefixes until it is unused.
        conflicts.sort_by_key(|l| l.name.len());
        for i in 0..conflicts.len() {
            let mut name = conflicts[i].name.to_string();
            loop {
                name = format!("exported_{name}");
                let taken = exposed.get(&name).is_some()
                    || target.get(&name).is_some()
                    || conflicts[..i].iter().any(|c| c.name == name);
                if !taken {
                    break;
                }
            }
            conflicts[i].name = name.into();
        }
        out.extend(conflicts);
    }
    Labels::new(out)
}

fn check_label_limits(labels: &Labels, cfg: &ScrapeConfig) -> Result<()> {
    let metric = || labels.get(METRIC_NAME).unwrap_or("").to_string();
    if cfg.label_limit > 0 && labels.len() as u64 > cfg.label_limit {
        return Err(AppendError::LabelLimit {
            metric: metric(),
            count: labels.len(),
            limit: cfg.label_limit,
        });
    }
    for l in labels.iter() {
        let (nl, vl) = (cfg.label_name_length_limit, cfg.label_value_length_limit);
        if nl > 0 && l.name.len() as u64 > nl {
            return Err(AppendError::LabelNameLength {
                metric: metric(),
                name: l.name.to_string(),
                limit: nl,
            });
        }
        if vl > 0 && l.value.len() as u64 > vl {
            return Err(AppendError::LabelValueLength {
                metric: metric(),
                name: l.name.to_string(),
                value: l.value.to_string(),
                limit: vl,
            });
        }
    }
    Ok(())
}

/// The five report series of one scrape, labelled like Prometheus's
/// `mutateReportSampleLabels` (target labels always win; names never clash with them).
pub fn report_samples(
    target: &Target,
    stats: &AppendStats,
    up: bool,
    duration_s: f64,
) -> Vec<(Labels, f64)> {
    let base = target.series_labels();
    let values = [
        ("up", if up { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", duration_s),
        ("scrape_samples_scraped", stats.total as f64),
        ("scrape_samples_post_metric_relabeling", stats.added as f64),
        ("scrape_series_added", stats.series_added as f64),
    ];
    values
        .into_iter()
        .map(|(name, v)| (base.with(METRIC_NAME, name), v))
        .collect()
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod tests;
