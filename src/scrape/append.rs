//! Turning one scraped body into head samples, the way Prometheus 2.42's `scrapeLoop.append`
//! does: parse, attach the target's labels (honor_labels, `exported_` on conflicts), apply
//! `metric_relabel_configs`, enforce label and sample limits, append with the cached series
//! ref, and write staleness markers for series the previous scrape had and this one lacks.
//! The cache is keyed by the series text as exposed, so a steady target costs no label
//! building or relabeling after its first scrape.

use std::collections::BTreeMap;

use std::collections::HashMap;

use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::parser::{Entry, Format, Metadata, ParseError, Parser, SampleEntry};
use super::relabel::{process_builder, LabelsBuilder};
use super::target::Target;
use crate::config::ScrapeConfig;
use crate::storage::head::{HeadAppender, HeadError};
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
    /// Metric relabeling dropped it.
    Dropped {
        seen: u64,
    },
    Kept(Kept),
}

struct Kept {
    series_ref: u64,
    labels: Labels,
    seen: u64,
    /// Only series without an explicit timestamp get staleness markers (as in Prometheus).
    track_staleness: bool,
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

/// Per-target state that lives across scrapes.
#[derive(Default)]
pub struct ScrapeCache {
    /// XXH3 rather than Fx: the keys are long and alike (same name, similar labels), which
    /// made Fx's weak mixing probe and compare many keys per lookup.
    slots: HashMap<Box<[u8]>, Slot, Xxh3DefaultBuilder>,
    /// Bumped for every append, failed scrapes included.
    iter: u64,
    key: Vec<u8>,
    /// The metadata of the target's metric families, updated in place.
    pub metadata: BTreeMap<String, Metadata>,
}

/// Cache entries unseen for this many scrapes are forgotten.
const CACHE_KEEP_ITERS: u64 = 10;

/// The target-specific inputs of an append.
pub struct AppendCtx<'a> {
    pub cfg: &'a ScrapeConfig,
    /// The target's labels without `__` ones.
    pub target_labels: &'a Labels,
}

impl ScrapeCache {
    /// Appends a scrape body at `t` (ms). On error nothing of this body should be committed:
    /// the caller rolls back and calls [`ScrapeCache::append_failed`].
    pub fn append(
        &mut self,
        app: &mut HeadAppender<'_>,
        ctx: &AppendCtx<'_>,
        body: &[u8],
        format: Format,
        t: i64,
    ) -> Result<AppendStats> {
        self.iter += 1;
        let iter = self.iter;
        let mut stats = AppendStats::default();
        let mut parser = Parser::new(body, format);
        while let Some(entry) = parser.next_entry()? {
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
            let st = match (ctx.cfg.honor_timestamps, s.timestamp) {
                (true, Some(ts)) => Some(ts),
                _ => None,
            };
            let ts = st.unwrap_or(t);
            series_key(&mut self.key, &s);
            let res = match self.slots.get_mut(self.key.as_slice()) {
                Some(Slot::Dropped { seen }) => {
                    *seen = iter;
                    continue;
                }
                Some(Slot::Kept(k)) => {
                    k.seen = iter;
                    let r = app.append(k.series_ref, &k.labels, ts, s.value);
                    if let Ok(new_ref) = r {
                        k.series_ref = new_ref;
                    }
                    r.map(|_| ())
                }
                None => {
                    let Some(labels) = mutate_sample_labels(&s, ctx) else {
                        self.slots
                            .insert(self.key.as_slice().into(), Slot::Dropped { seen: iter });
                        continue;
                    };
                    if labels.get(METRIC_NAME).is_none() {
                        return Err(AppendError::NoMetricName(s.line));
                    }
                    check_label_limits(&labels, ctx.cfg)?;
                    let r = app.append(0, &labels, ts, s.value);
                    if let Ok(series_ref) = r {
                        stats.series_added += 1;
                        let kept = Kept {
                            series_ref,
                            labels,
                            seen: iter,
                            track_staleness: st.is_none(),
                        };
                        self.slots
                            .insert(self.key.as_slice().into(), Slot::Kept(kept));
                    }
                    r.map(|_| ())
                }
            };
            match res {
                Ok(()) => stats.added += 1,
                Err(HeadError::OutOfOrder) => stats.out_of_order += 1,
                Err(HeadError::DuplicateTimestamp) => stats.duplicates += 1,
                Err(HeadError::OutOfBounds) => stats.out_of_bounds += 1,
                Err(e) => return Err(AppendError::Storage(e)),
            }
            let limit = ctx.cfg.sample_limit;
            if limit > 0 && stats.added > limit {
                return Err(AppendError::SampleLimit(limit));
            }
        }
        self.mark_stale(app, t)?;
        Ok(stats)
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
        for slot in self.slots.values_mut() {
            let Slot::Kept(k) = slot else { continue };
            if !k.track_staleness || k.seen + 1 != iter {
                continue;
            }
            match app.append(k.series_ref, &k.labels, t, stale_nan()) {
                Ok(r) => k.series_ref = r,
                Err(HeadError::Wal(e)) => return Err(AppendError::Storage(HeadError::Wal(e))),
                // An out-of-order marker (a newer sample exists) is simply not needed.
                Err(_) => {}
            }
        }
        self.slots.retain(|_, s| {
            let seen = match s {
                Slot::Dropped { seen } => *seen,
                Slot::Kept(k) => k.seen,
            };
            seen + CACHE_KEEP_ITERS > iter
        });
        Ok(())
    }
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
            let mut name = conflicts[i].name.clone();
            loop {
                name = format!("exported_{name}");
                let taken = exposed.get(&name).is_some()
                    || target.get(&name).is_some()
                    || conflicts[..i].iter().any(|c| c.name == name);
                if !taken {
                    break;
                }
            }
            conflicts[i].name = name;
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
                name: l.name.clone(),
                limit: nl,
            });
        }
        if vl > 0 && l.value.len() as u64 > vl {
            return Err(AppendError::LabelValueLength {
                metric: metric(),
                name: l.name.clone(),
                value: l.value.clone(),
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
