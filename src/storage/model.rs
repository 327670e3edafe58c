//! The data model every storage layer and the query engine share: label sets, label matchers
//! with Prometheus semantics, samples, encoded chunks, and the `Queryable` trait that the head,
//! a block, a set of blocks and (later) the cluster fan-out implement. Nothing here does I/O.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The label name that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// The StaleNaN bit pattern Prometheus writes to mark the end of a series.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True when `v` is exactly the staleness marker (not any other NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The staleness marker as an f64.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid regular expression {pattern:?} in matcher: {reason}")]
    BadRegex { pattern: String, reason: String },
}

/// One name/value pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    pub name: LabelStr,
    pub value: LabelStr,
}

/// A label name or value. Nearly all of them are short, and a string of up to 24 bytes is
/// kept inline: reading a series from an index then costs no allocation per label, which was
/// the largest share of selecting series for a query.
pub type LabelStr = compact_str::CompactString;

impl Label {
    pub fn new(name: impl Into<LabelStr>, value: impl Into<LabelStr>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set, always sorted by name (bytewise) with unique names and no empty values,
/// so equality, hashing and ordering agree with Prometheus's `labels.Compare`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from any pairs: sorts, drops empty values, and keeps the last
    /// value when a name repeats.
    pub fn new(mut pairs: Vec<Label>) -> Self {
        // Label sets read from an index or a peer are already canonical; keeping their
        // vector saves a sort and a second allocation per series on the query path.
        let canonical = pairs.windows(2).all(|w| w[0].name < w[1].name)
            && pairs.iter().all(|l| !l.value.is_empty());
        if canonical {
            return Labels(pairs);
        }
        pairs.retain(|l| !l.value.is_empty());
        pairs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(pairs.len());
        for l in pairs {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Labels(out)
    }

    pub fn from_pairs<N: Into<LabelStr>, V: Into<LabelStr>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Labels::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect())
    }

    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// A copy with `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut v: Vec<Label> = self.0.iter().filter(|l| l.name != name).cloned().collect();
        v.push(Label::new(name, value));
        Labels::new(v)
    }

    /// A copy without the given names.
    pub fn without(&self, names: &[&str]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| !names.contains(&l.name.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// A copy keeping only the given names.
    pub fn keep_only(&self, names: &[&str]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| names.contains(&l.name.as_str()))
                .cloned()
                .collect(),
        )
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    /// Prometheus order: pairwise by name then value; a prefix sorts first.
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            let o = a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value));
            if o != Ordering::Equal {
                return o;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl fmt::Display for Labels {
    /// `{a="1", b="2"}` exactly as Prometheus prints a label set (Go %q escaping).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=\"{}\"", l.name, escape_label_value(&l.value))?;
        }
        f.write_str("}")
    }
}

/// Escapes a label value the way Go's `strconv.Quote` does for printable text.
pub fn escape_label_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

/// A label matcher with Prometheus semantics: a missing label has the value "", and regexes
/// are fully anchored with `.` matching newlines (`^(?s:re)$`, Prometheus 3).
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Arc<regex::Regex>>,
}

impl Matcher {
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let value = value.into();
        let re = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                let anchored = format!("^(?s:{value})$");
                let re = regex::Regex::new(&anchored).map_err(|e| ModelError::BadRegex {
                    pattern: value.clone(),
                    reason: e.to_string(),
                })?;
                Some(Arc::new(re))
            }
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    /// Does `value` (the series' value for this label, "" when absent) match?
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::RegexMatch => self.re.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::RegexNoMatch => !self.re.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Does the series with these labels match?
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// True when the matcher also selects series that lack the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        };
        write!(
            f,
            "{}{}\"{}\"",
            self.name,
            op,
            escape_label_value(&self.value)
        )
    }
}

/// True when every matcher accepts the label set.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

/// One float sample: milliseconds since the epoch and a value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// One encoded chunk of a series: the Prometheus chunk encoding byte (1 = XOR) and its
/// payload, with the time range it covers (both ends inclusive, as in the index).
/// Bytes are shared so that handing a chunk to a query never copies it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodedChunk {
    pub min_time: i64,
    pub max_time: i64,
    pub encoding: u8,
    pub data: Arc<[u8]>,
}

/// A selected series: its labels and its chunks in time order. Chunks from different
/// sources may overlap; readers merge them (see `chunkenc::SeriesIterator`).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub chunks: Vec<EncodedChunk>,
}

/// The start timestamps of one series' samples (see `Queryable::select_start_timestamps`):
/// `(sample time, start time)` pairs in time order. A start time is when the count a cumulative
/// sample reports began, or the start of the interval a delta sample covers.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesStartTimestamps {
    pub labels: Labels,
    pub points: Vec<(i64, i64)>,
}

/// Hints a query passes down to storage.
#[derive(Clone, Debug, Default)]
pub struct SelectHints {
    /// Only label sets are needed (series/labels API): storage may return no chunks.
    pub labels_only: bool,
    /// Upper bound on the series a caller will accept; 0 = no limit.
    pub limit: usize,
    /// The PromQL function the selected samples feed, when every use of the selector is one
    /// function (e.g. `rate`): a deduplicating source adjusts counters across replica
    /// switches only for the counter functions; over downsampled data it also picks the
    /// aggregate read (`storage::downsample::read_for`).
    pub func: Option<String>,
    /// The range of the matrix selector `func` reads (ms), 0 for an instant selector: a
    /// source may cap the resolution of rate-like functions at half of it.
    pub range_ms: i64,
    /// The query's maximum source resolution (ms, 0 = raw); `None` leaves it to the source
    /// (a fan-out applies the request's own). Sources without downsampled data ignore it.
    pub max_resolution_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryableError {
    #[error("{0}")]
    Storage(String),
    #[error("corrupt data in {file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error("query limit exceeded: {0}")]
    Limit(String),
    #[error("query canceled: {0}")]
    Canceled(String),
}

pub type QueryResult<T> = std::result::Result<T, QueryableError>;

/// Anything series can be selected from. `mint`/`maxt` are inclusive milliseconds.
/// Results of `select` are sorted by labels, one entry per distinct label set.
pub trait Queryable: Send + Sync {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> QueryResult<Vec<Series>>;

    /// Sorted, unique label names of the series that match (all series when `matchers` is empty).
    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>>;

    /// Sorted, unique values of `name` among the series that match.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<String>>;

    /// Start timestamps of the samples `select` would return in `[mint, maxt]`, sorted by
    /// labels, listing only series (and samples) that have one. They live beside the chunks
    /// rather than in `Sample` so that sources which do not record them (the default) cost
    /// nothing, and the engine asks only for selectors whose functions use them.
    fn select_start_timestamps(
        &self,
        _matchers: &[Matcher],
        _mint: i64,
        _maxt: i64,
    ) -> QueryResult<Vec<SeriesStartTimestamps>> {
        Ok(Vec::new())
    }

    /// Problems that did not fail a call but left its answer incomplete (a corrupt block that
    /// was skipped, say), collected since the last call. Sources without such cases have none.
    fn take_warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Resolutions (ms, 0 = raw) of the data that answered selects since the last call,
    /// ascending; sources that only hold raw data report nothing.
    fn take_resolutions(&self) -> Vec<i64> {
        Vec::new()
    }
}
