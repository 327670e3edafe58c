//! Data loading for one query: finds every selector of the expression, computes the union
//! time range each one needs (offsets, `@`, ranges, subqueries, lookback), selects its series
//! once from the `Queryable` and decodes the chunks of that window with `SeriesIterator`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use crate::promql::engine::EngineOptions;
use crate::promql::error::{PromqlError, Result};
use crate::promql::preprocess::{selector_mode, RangeMode, MODIFIER_LABEL};
use crate::storage::chunkenc::SeriesIterator;
use crate::storage::model::{
    Labels, MatchOp, Matcher, Queryable, Sample, SelectHints, METRIC_NAME,
};

/// The decoded samples of one selected series within the query window.
#[derive(Clone, Debug)]
pub(crate) struct SeriesData {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Series per selector key (see `selector_key`).
pub(crate) type Fetched = HashMap<String, Vec<SeriesData>>;

/// The identity of a selector's series set: its matchers without offset, `@` or range.
pub(crate) fn selector_key(vs: &VectorSelector) -> String {
    let mut bare = vs.clone();
    bare.offset = None;
    bare.at = None;
    bare.to_string()
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

/// The fixed evaluation time an `@` modifier sets, if any.
pub(crate) fn at_ms(at: &Option<AtModifier>, start: i64, end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(start),
        Some(AtModifier::End) => Some(end),
        Some(AtModifier::At(st)) => Some(match st.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }),
    }
}

struct Need {
    vs: VectorSelector,
    mint: i64,
    maxt: i64,
}

struct Walk<'a> {
    pin: Option<i64>,
    depth: usize,
    start: i64,
    end: i64,
    lookback: i64,
    needs: &'a mut HashMap<String, Need>,
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
        let need = self.needs.entry(key).or_insert_with(|| Need {
            vs: vs.clone(),
            mint,
            maxt,
        });
        need.mint = need.mint.min(mint);
        need.maxt = need.maxt.max(maxt);
    }

    fn walk(&mut self, expr: &Expr, s: i64, e: i64) {
        match expr {
            Expr::VectorSelector(vs) => self.note(vs, s, e, 0),
            Expr::MatrixSelector(ms) => self.note(&ms.vs, s, e, ms.range.as_millis() as i64),
            Expr::Subquery(sq) => {
                let (s, e) = match self.at_of(&sq.at) {
                    Some(a) => (a, a),
                    None => (s, e),
                };
                let off = offset_ms(&sq.offset);
                self.depth += 1;
                self.walk(&sq.expr, s - off - sq.range.as_millis() as i64, e - off);
                self.depth -= 1;
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.walk(p, s, e);
                }
                self.walk(&a.expr, s, e);
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
                    self.walk(a, s, e);
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
                Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| PromqlError::Parse(e.to_string()))?,
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
        lookback: opts.lookback_delta.as_millis() as i64,
        needs: &mut needs,
    };
    w.walk(expr, start, end);
    let mut out = Fetched::new();
    for (key, need) in needs {
        check_deadline(deadline, cancel, "query preparation")?;
        let mut by_labels: std::collections::BTreeMap<Labels, Vec<Sample>> = Default::default();
        for set in matcher_sets(&need.vs)? {
            for series in q.select(&set, need.mint, need.maxt, &SelectHints::default())? {
                if by_labels.contains_key(&series.labels) {
                    continue;
                }
                let mut it = SeriesIterator::new(series.chunks);
                let mut samples = Vec::new();
                let corrupt = |e: crate::storage::chunkenc::ChunkError| {
                    PromqlError::Storage(format!("reading series {}: {e}", series.labels))
                };
                let mut cur = it.seek(need.mint).map_err(corrupt)?;
                while let Some(s) = cur {
                    if s.t > need.maxt {
                        break;
                    }
                    samples.push(s);
                    cur = it.next().map_err(corrupt)?;
                }
                by_labels.insert(series.labels, samples);
            }
        }
        let list = by_labels
            .into_iter()
            .map(|(labels, samples)| SeriesData { labels, samples })
            .collect();
        out.insert(key, list);
    }
    Ok(out)
}
