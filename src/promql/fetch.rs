//! Data loading for one query: finds every selector of the expression, computes the union
//! time range each one needs (offsets, `@`, ranges, subqueries, lookback), selects its series
//! once from the `Queryable` and decodes the chunks of that window with `SeriesIterator`
//! (plus the samples' start timestamps where a function reads them, see `start_timestamps`);
//! series with downsampled chunks are decoded by `downsampled` instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use crate::promql::downsampled::{self, DownsampledRead};
use crate::promql::engine::EngineOptions;
use crate::promql::error::{PromqlError, Result};
use crate::promql::preprocess::{selector_mode, RangeMode, MODIFIER_LABEL};
use crate::promql::start_timestamps::{uses_start_timestamps, StartTimes};
use crate::storage::chunkenc::{declared_samples, SeriesIterator};
use crate::storage::downsample;
use crate::storage::model::{
    Labels, MatchOp, Matcher, Queryable, Sample, SelectHints, Series, METRIC_NAME,
};

/// Prometheus chunk encodings of native histogram chunks.
const ENC_HISTOGRAM: u8 = 2;
const ENC_FLOAT_HISTOGRAM: u8 = 3;

/// The decoded samples of one selected series within the query window.
#[derive(Clone, Debug)]
pub(crate) struct SeriesData {
    pub labels: Arc<Labels>,
    pub samples: Vec<Sample>,
    /// The samples' start timestamps (0 = none), only when a function reads them and the
    /// source has some: a column beside the samples, so that they cost nothing otherwise.
    pub start_ts: Option<Vec<i64>>,
    /// Where the samples come from downsampled chunks, and their resolution (empty: raw),
    /// kept for instant selectors only: they look back one window of the data they find.
    pub coarse: Vec<downsampled::CoarseSpan>,
}

/// Series per selector key (see `selector_key`).
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    by_key: HashMap<String, Vec<SeriesData>>,
    /// Some series carries start timestamps: only then do functions look for them.
    start_ts: bool,
    /// Selectors whose samples are per-window sample counts (downsampled data under
    /// `count_over_time`): the function sums them instead of counting them.
    sample_counts: std::collections::HashSet<String>,
    /// Warnings about approximations over downsampled data.
    notes: Vec<String>,
    /// Selector occurrences (by address in the query's tree) that read their own copy: a
    /// selector shared by functions needing different aggregates of downsampled data
    /// (`max_over_time(x[1h]) - min_over_time(x[1h])`) is read once per function, as
    /// Prometheus's per-selector `hints.Func` has Thanos do.
    by_site: HashMap<usize, String>,
}

impl Fetched {
    /// The key `vs`'s series are stored under: its own copy's, else the selector's.
    fn key_of(&self, vs: &VectorSelector) -> std::borrow::Cow<'_, str> {
        if !self.by_site.is_empty() {
            if let Some(k) = self.by_site.get(&site(vs)) {
                return std::borrow::Cow::Borrowed(k);
            }
        }
        std::borrow::Cow::Owned(selector_key(vs))
    }

    /// True when `count_over_time` over this selector must sum its samples.
    pub fn counts_samples(&self, vs: &VectorSelector) -> bool {
        !self.sample_counts.is_empty() && self.sample_counts.contains(self.key_of(vs).as_ref())
    }

    /// The series `vs` selected.
    pub fn series(&self, vs: &VectorSelector) -> Option<&Vec<SeriesData>> {
        self.by_key.get(self.key_of(vs).as_ref())
    }

    /// Warnings the query's answer carries because downsampled data answered it.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn has_start_timestamps(&self) -> bool {
        self.start_ts
    }
}

/// The identity of a selector's series set: its matchers without offset, `@` or range.
/// A selector occurrence's identity: its address in the query's tree, which the fetch and
/// the evaluation walk alike.
fn site(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

pub(crate) fn selector_key(vs: &VectorSelector) -> String {
    let mut bare = vs.clone();
    bare.offset = None;
    bare.at = None;
    bare.to_string()
}

/// Times and durations are kept within ±2^52 ms (about 142,000 years) so that sums of a
/// few of them can never overflow.
pub(crate) const TIME_BOUND: i64 = 1 << 52;

/// A duration in milliseconds, capped at `TIME_BOUND`.
pub(crate) fn dur_ms(d: std::time::Duration) -> i64 {
    d.as_millis().min(TIME_BOUND as u128) as i64
}

/// A timestamp clamped to ±`TIME_BOUND`.
pub(crate) fn clamp_time(t: i64) -> i64 {
    t.clamp(-TIME_BOUND, TIME_BOUND)
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => dur_ms(*d),
        Some(Offset::Neg(d)) => -dur_ms(*d),
        None => 0,
    }
}

/// The fixed evaluation time an `@` modifier sets, if any.
pub(crate) fn at_ms(at: &Option<AtModifier>, start: i64, end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(clamp_time(start)),
        Some(AtModifier::End) => Some(clamp_time(end)),
        Some(AtModifier::At(st)) => Some(match st.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => dur_ms(d),
            Err(e) => -dur_ms(e.duration()),
        }),
    }
}

struct Need {
    vs: VectorSelector,
    mint: i64,
    maxt: i64,
    /// The function every use of this selector feeds, if it is always the same one.
    func: Option<String>,
    /// The shortest range it is read with (ms), 0 when only instant selectors.
    range_ms: i64,
    /// Some use reads the samples' start timestamps.
    start_ts: bool,
    /// Every occurrence (`site`) and the function it feeds.
    uses: Vec<(usize, Option<String>)>,
}

impl Need {
    /// The functions of a selector read by several, each once (`None` when all agree).
    fn mixed_funcs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if self.func.is_none() {
            for f in self.uses.iter().filter_map(|(_, f)| f.as_ref()) {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
        out
    }
}

struct Walk<'a> {
    pin: Option<i64>,
    depth: usize,
    start: i64,
    end: i64,
    lookback: i64,
    needs: &'a mut HashMap<String, Need>,
    /// The function whose argument is being walked, if the argument is a bare range selector,
    /// or the aggregation directly over a bare instant selector (Prometheus's `hints.Func`).
    func: Option<String>,
    /// The argument being walked is a selector whose start timestamps its function reads.
    start_ts: bool,
}

impl Walk<'_> {
    fn at_of(&self, at: &Option<AtModifier>) -> Option<i64> {
        at_ms(at, self.start, self.end).or(if self.depth == 0 { self.pin } else { None })
    }

    fn note(&mut self, vs: &VectorSelector, s: i64, e: i64, range: i64) {
        let (s, e) = match self.at_of(&vs.at) {
            Some(a) => (a, a),
            None => (s, e),
        };
        let off = offset_ms(&vs.offset);
        let mode = selector_mode(vs);
        let mut back = if range > 0 { range } else { self.lookback };
        let mut ahead = 0;
        if range > 0 && mode != RangeMode::Plain {
            back += self.lookback;
        }
        if mode == RangeMode::Smoothed {
            ahead = self.lookback;
        }
        let mint = s - off - back;
        let maxt = e - off + ahead;
        let key = selector_key(vs);
        let func = self.func.clone();
        let need = self.needs.entry(key).or_insert_with(|| Need {
            vs: vs.clone(),
            mint,
            maxt,
            func: func.clone(),
            range_ms: range,
            start_ts: false,
            uses: Vec::new(),
        });
        need.uses.push((site(vs), func.clone()));
        need.start_ts |= self.start_ts;
        if range > 0 && (need.range_ms == 0 || range < need.range_ms) {
            need.range_ms = range;
        }
        need.mint = need.mint.min(mint);
        need.maxt = need.maxt.max(maxt);
        if need.func != func {
            need.func = None;
        }
    }

    fn walk(&mut self, expr: &Expr, s: i64, e: i64) {
        match expr {
            Expr::VectorSelector(vs) => self.note(vs, s, e, 0),
            Expr::MatrixSelector(ms) => self.note(&ms.vs, s, e, dur_ms(ms.range)),
            Expr::Subquery(sq) => {
                let (s, e) = match self.at_of(&sq.at) {
                    Some(a) => (a, a),
                    None => (s, e),
                };
                let off = offset_ms(&sq.offset);
                self.depth += 1;
                self.walk(&sq.expr, s - off - dur_ms(sq.range), e - off);
                self.depth -= 1;
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.walk(p, s, e);
                }
                // Like Prometheus's hints.Func, an aggregation directly over a selector is
                // its function: `max(x)` reads the max aggregate of downsampled data.
                let direct = matches!(a.expr.as_ref(), Expr::VectorSelector(_));
                self.func = direct.then(|| a.op.to_string().to_lowercase());
                self.walk(&a.expr, s, e);
                self.func = None;
            }
            Expr::Unary(u) => self.walk(&u.expr, s, e),
            Expr::Binary(b) => {
                self.walk(&b.lhs, s, e);
                self.walk(&b.rhs, s, e);
            }
            Expr::Paren(p) => self.walk(&p.expr, s, e),
            Expr::Call(c) if c.func.name == "info" => {
                if let Some(a) = c.args.args.first() {
                    self.walk(a, s, e);
                }
                let sel = crate::promql::info::info_selector(c);
                self.note(&sel, s, e, 0);
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    let direct = matches!(a.as_ref(), Expr::MatrixSelector(_));
                    self.func = direct.then(|| c.func.name.to_string());
                    self.start_ts = uses_start_timestamps(c.func.name, a);
                    self.walk(a, s, e);
                    self.func = None;
                    self.start_ts = false;
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
}

/// Converts the parser's matchers of a selector into matcher sets (one per `or` branch).
pub(crate) fn matcher_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>> {
    let mut groups: Vec<Vec<&promql_parser::label::Matcher>> = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        groups.push(vs.matchers.matchers.iter().collect());
    } else {
        for g in &vs.matchers.or_matchers {
            let mut v: Vec<&promql_parser::label::Matcher> = vs.matchers.matchers.iter().collect();
            v.extend(g.iter());
            groups.push(v);
        }
    }
    let mut out = Vec::new();
    for g in groups {
        let mut set = Vec::new();
        for m in g {
            if m.name == MODIFIER_LABEL {
                continue;
            }
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::RegexMatch,
                PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
            };
            set.push(
                Matcher::new(op, m.name.clone(), m.value.clone()).map_err(PromqlError::parse)?,
            );
        }
        if let Some(name) = &vs.name {
            if !set.iter().any(|m| m.name == METRIC_NAME) {
                set.push(Matcher::equal(METRIC_NAME, name.clone()));
            }
        }
        out.push(set);
    }
    Ok(out)
}

pub(crate) fn check_deadline(
    deadline: Instant,
    cancel: Option<&AtomicBool>,
    stage: &str,
) -> Result<()> {
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(PromqlError::Canceled(stage.to_string()));
    }
    if Instant::now() > deadline {
        return Err(PromqlError::Timeout(stage.to_string()));
    }
    Ok(())
}

/// The sample count the chunks declare in their headers (an upper bound of what the window
/// takes), so a long window is decoded into one allocation instead of many doublings.
fn expected_samples(chunks: &[crate::storage::model::EncodedChunk]) -> usize {
    chunks.iter().map(declared_samples).sum()
}

/// Below this many samples (as the chunk headers declare) a batch decodes on the calling
/// thread: handing work to the pool costs more than it saves.
const PARALLEL_MIN_SAMPLES: usize = 32_768;

/// The samples of one series within `[mint, maxt]`; series with downsampled chunks are read
/// as `how` says.
fn decode_window(
    labels: &Labels,
    chunks: Vec<crate::storage::model::EncodedChunk>,
    mint: i64,
    maxt: i64,
    how: &DownsampledRead,
) -> Result<Vec<Sample>> {
    if downsampled::is_downsampled(&chunks) {
        return downsampled::decode(labels, &chunks, how, mint, maxt);
    }
    let mut samples = Vec::with_capacity(expected_samples(&chunks));
    let mut it = SeriesIterator::new(chunks);
    let corrupt = |e: crate::storage::chunkenc::ChunkError| {
        PromqlError::Storage(format!("reading series {labels}: {e}"))
    };
    let mut cur = it.seek(mint).map_err(corrupt)?;
    while let Some(s) = cur {
        if s.t > maxt {
            break;
        }
        samples.push(s);
        cur = it.next().map_err(corrupt)?;
    }
    Ok(samples)
}

/// Decodes a selection, in label order. Chunk decoding is the largest single cost of a query
/// over many series, so a big batch is spread over the rayon pool — but only when the chunk
/// headers prove it stays within the loaded-samples limit; otherwise series are decoded one
/// by one and the limit stops the query as soon as it is crossed.
fn decode_batch(
    batch: Vec<Series>,
    mint: i64,
    maxt: i64,
    how: &DownsampledRead,
    loaded: &AtomicUsize,
    opts: &EngineOptions,
) -> Result<Vec<(Labels, Vec<Sample>)>> {
    let bound: usize = batch.iter().map(|s| expected_samples(&s.chunks)).sum();
    if bound >= PARALLEL_MIN_SAMPLES
        && loaded.load(Ordering::Relaxed) + bound <= opts.max_loaded_samples
    {
        use rayon::prelude::*;
        let out: Vec<(Labels, Vec<Sample>)> = batch
            .into_par_iter()
            .map(|s| decode_window(&s.labels, s.chunks, mint, maxt, how).map(|v| (s.labels, v)))
            .collect::<Result<_>>()?;
        let n: usize = out.iter().map(|(_, v)| v.len()).sum();
        if loaded.fetch_add(n, Ordering::Relaxed) + n > opts.max_loaded_samples {
            return Err(PromqlError::exec(crate::promql::error::TOO_MANY_SAMPLES));
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(batch.len());
    for s in batch {
        let samples = decode_window(&s.labels, s.chunks, mint, maxt, how)?;
        let n = samples.len();
        if loaded.fetch_add(n, Ordering::Relaxed) + n > opts.max_loaded_samples {
            return Err(PromqlError::exec(crate::promql::error::TOO_MANY_SAMPLES));
        }
        out.push((s.labels, samples));
    }
    Ok(out)
}

/// Selects and decodes the series of every selector in `expr`, once per distinct selector.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fetch_all(
    q: &dyn Queryable,
    expr: &Expr,
    start: i64,
    end: i64,
    opts: &EngineOptions,
    deadline: Instant,
    cancel: Option<&AtomicBool>,
    pin: Option<i64>,
) -> Result<Fetched> {
    let mut needs = HashMap::new();
    let mut w = Walk {
        pin,
        depth: 0,
        start,
        end,
        lookback: dur_ms(opts.lookback_delta),
        needs: &mut needs,
        func: None,
        start_ts: false,
    };
    w.walk(expr, start, end);
    // Everything a query reads is decoded up front, so this bounds its memory.
    let loaded = AtomicUsize::new(0);
    let fetch = |(key, need): (String, Need)| {
        check_deadline(deadline, cancel, "query preparation")?;
        let got = fetch_need(q, &need, need.func.clone(), opts, &loaded)?;
        // Downsampled data read by functions needing different aggregates: each function's
        // occurrences get their own read (raw data serves them all from one).
        let mut own = Vec::new();
        if got.downsampled {
            for f in need.mixed_funcs() {
                let sites = need
                    .uses
                    .iter()
                    .filter(|(_, uf)| uf.as_deref() == Some(f.as_str()))
                    .map(|(s, _)| *s)
                    .collect::<Vec<_>>();
                own.push((sites, fetch_need(q, &need, Some(f), opts, &loaded)?));
            }
        }
        Ok((key, got, own))
    };
    // Distinct selectors (the two sides of a join, say) are independent reads.
    let needs: Vec<(String, Need)> = needs.into_iter().collect();
    let results: Vec<Fetch> = if needs.len() > 1 {
        use rayon::prelude::*;
        needs.into_par_iter().map(fetch).collect::<Result<_>>()?
    } else {
        needs.into_iter().map(fetch).collect::<Result<_>>()?
    };
    let mut out = Fetched::default();
    for (key, got, own) in results {
        for (sites, got) in own {
            let own_key = format!("{}\u{1}{key}", got.how.func.as_deref().unwrap_or(""));
            for s in sites {
                out.by_site.insert(s, own_key.clone());
            }
            out.add(own_key, got);
        }
        out.add(key, got);
    }
    Ok(out)
}

impl Fetched {
    fn add(&mut self, key: String, got: NeedResult) {
        self.start_ts |= got.start_ts;
        if got.downsampled {
            if downsampled::counts_samples(&got.how) {
                self.sample_counts.insert(key.clone());
            }
            if let Some(n) = downsampled::note(&got.how) {
                if !self.notes.iter().any(|x| x == n) {
                    self.notes.push(n.to_string());
                }
            }
        }
        self.by_key.insert(key, got.list);
    }
}

/// One selector's fetch: its key, its series, and the own reads of the occurrences whose
/// function needs another aggregate of downsampled data (by `site`).
type Fetch = (String, NeedResult, Vec<(Vec<usize>, NeedResult)>);

/// One selector's decoded series and what the fetch learnt about them.
struct NeedResult {
    list: Vec<SeriesData>,
    /// Some series carries start timestamps.
    start_ts: bool,
    /// Some series had downsampled chunks, read as `how` says.
    downsampled: bool,
    how: DownsampledRead,
}

/// A selected series: labels, samples, start timestamps, downsampled stretches.
type Found = (
    Labels,
    Vec<Sample>,
    Option<Vec<i64>>,
    Vec<downsampled::CoarseSpan>,
);

/// Selects and decodes one selector's series.
fn fetch_need(
    q: &dyn Queryable,
    need: &Need,
    func: Option<String>,
    opts: &EngineOptions,
    loaded: &AtomicUsize,
) -> Result<NeedResult> {
    // Only instant selectors look back further over coarse data; the stores answered with
    // whole chunks overlapping the window, so a window stamp before it is usually there.
    let extra_back_ms = if need.range_ms == 0 {
        let base = opts.lookback_delta;
        dur_ms(downsampled::lookback_for(base, downsample::RES_1H)) - dur_ms(base)
    } else {
        0
    };
    let how = DownsampledRead {
        func,
        range_ms: need.range_ms,
        extra_back_ms,
    };
    let mut any_downsampled = false;
    let sets = matcher_sets(&need.vs)?;
    // Sources answer sorted and unique, so one matcher set needs no map; several (`or`
    // inside braces) may select a series twice, and the first selection wins.
    let several = sets.len() > 1;
    let mut seen: std::collections::HashSet<Labels> = Default::default();
    let mut found: Vec<Found> = Vec::new();
    let instant = need.range_ms == 0;
    let mut any_start_ts = false;
    for set in &sets {
        let hints = SelectHints {
            func: how.func.clone(),
            range_ms: need.range_ms,
            ..SelectHints::default()
        };
        // Sources without start timestamps answer with an empty list: nothing per series.
        let starts = if need.start_ts {
            let list = q.select_start_timestamps(set, need.mint, need.maxt)?;
            (!list.is_empty()).then(|| StartTimes::new(list))
        } else {
            None
        };
        let mut batch: Vec<Series> = Vec::new();
        let mut spans = Vec::new();
        for series in q.select(set, need.mint, need.maxt, &hints)? {
            if several && !seen.insert(series.labels.clone()) {
                continue;
            }
            if series
                .chunks
                .iter()
                .any(|c| c.encoding == ENC_HISTOGRAM || c.encoding == ENC_FLOAT_HISTOGRAM)
            {
                return Err(PromqlError::exec(format!(
                    "{} (series {})",
                    crate::promql::histogram::NATIVE_HISTOGRAMS_UNSUPPORTED,
                    series.labels
                )));
            }
            let coarse = downsampled::is_downsampled(&series.chunks);
            any_downsampled |= coarse;
            spans.push(if coarse && instant {
                downsampled::coarse_spans(&series.chunks)
            } else {
                Vec::new()
            });
            batch.push(series);
        }
        let decoded = decode_batch(batch, need.mint, need.maxt, &how, loaded, opts)?;
        for ((labels, samples), coarse) in decoded.into_iter().zip(spans) {
            let start_ts = starts.as_ref().and_then(|st| st.aligned(&labels, &samples));
            any_start_ts |= start_ts.is_some();
            found.push((labels, samples, start_ts, coarse));
        }
    }
    if several && !found.windows(2).all(|w| w[0].0 < w[1].0) {
        // Stable, so among equal label sets the first selected stays first and is kept.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|later, earlier| later.0 == earlier.0);
    }
    let list = found
        .into_iter()
        .map(|(labels, samples, start_ts, coarse)| SeriesData {
            labels: Arc::new(labels),
            samples,
            start_ts,
            coarse,
        })
        .collect();
    Ok(NeedResult {
        list,
        start_ts: any_start_ts,
        downsampled: any_downsampled,
        how,
    })
}
