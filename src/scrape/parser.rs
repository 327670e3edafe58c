//! Parsers for what a scrape returns: the Prometheus text format 0.0.4 and OpenMetrics 1.0,
//! with Prometheus 2.42's grammar and checks (see `text.rs` and `openmetrics.rs`), plus the
//! Content-Type negotiation Prometheus does. A [`Parser`] streams [`Entry`]s over the body
//! without copying names or unescaped label values; [`parse`] collects samples and metadata.
//! Any malformed input is an error naming the line, never a panic.

mod cursor;
mod openmetrics;
mod text;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crate::storage::model::{Label, Labels, METRIC_NAME};

use cursor::Cursor;

/// The Accept header Prometheus 2.42 sends with every scrape.
pub const SCRAPE_ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The NaN bit pattern Prometheus stores for every parsed NaN (Go's `math.NaN()`), so a
/// scraped value can never be mistaken for the staleness marker.
pub const NORMAL_NAN_BITS: u64 = crate::gocompat::GO_NAN_BITS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("line {line}: invalid UTF-8 in {what}")]
    InvalidUtf8 { line: usize, what: &'static str },
    #[error("line {line}: duplicate label name {name:?}")]
    DuplicateLabel { line: usize, name: String },
    #[error("unsupported content type {0:?}: Strata parses the Prometheus text format and OpenMetrics only")]
    UnsupportedContentType(String),
}

pub type Result<T> = std::result::Result<T, ParseError>;

impl ParseError {
    /// The 1-based line of the problem, when it is tied to one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ParseError::Syntax { line, .. }
            | ParseError::InvalidUtf8 { line, .. }
            | ParseError::DuplicateLabel { line, .. } => Some(*line),
            ParseError::UnsupportedContentType(_) => None,
        }
    }
}

/// Which exposition format a body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    PrometheusText,
    OpenMetrics,
}

/// A metric family's declared type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    #[default]
    Unknown,
}

impl MetricType {
    /// The name Prometheus's metadata API uses (`untyped` reads as `unknown`).
    pub fn as_str(&self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sample line. Names and label values borrow from the body unless they held escapes.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleEntry<'a> {
    pub name: &'a str,
    /// In the order written; `__name__` is not among them.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    pub timestamp: Option<i64>,
    /// 1-based line the sample starts on.
    pub line: usize,
}

impl SampleEntry<'_> {
    /// The full label set including `__name__`.
    pub fn to_labels(&self) -> Labels {
        let mut v = Vec::with_capacity(self.labels.len() + 1);
        v.push(Label::new(METRIC_NAME, self.name));
        for (n, val) in &self.labels {
            v.push(Label::new(*n, val.as_ref()));
        }
        Labels::new(v)
    }
}

/// One item of an exposition body.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'a> {
    Help {
        family: &'a str,
        help: Cow<'a, str>,
    },
    Type {
        family: &'a str,
        metric_type: MetricType,
    },
    Unit {
        family: &'a str,
        unit: &'a str,
    },
    Sample(SampleEntry<'a>),
}

/// A streaming parser over one body.
pub struct Parser<'a> {
    cur: Cursor<'a>,
    format: Format,
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(body: &'a [u8], format: Format) -> Self {
        Parser {
            cur: Cursor::new(body),
            format,
            done: false,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The next entry, `Ok(None)` at the end of the body (OpenMetrics: at `# EOF`).
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>> {
        if self.done {
            return Ok(None);
        }
        self.cur.series = None;
        let res = match self.format {
            Format::PrometheusText => text::next_entry(&mut self.cur),
            Format::OpenMetrics => openmetrics::next_entry(&mut self.cur),
        };
        if !matches!(res, Ok(Some(_))) {
            self.done = true;
        }
        if let Ok(Some(Entry::Sample(s))) = &res {
            if let Err(e) = check_duplicates(s) {
                self.done = true;
                return Err(e);
            }
        }
        res
    }

    /// The series text of the sample `next_entry` just returned: its bytes from the metric
    /// name up to the value (blanks, and OpenMetrics' single space, included). `None` when
    /// the last entry was not a sample or its series text spans lines.
    pub fn last_series(&self) -> Option<&'a [u8]> {
        let (start, end) = self.cur.series?;
        self.cur.buf.get(start..end)
    }

    /// When the next line starts with `series`, a series text `last_series` returned for an
    /// earlier body of the same format, parses only the value and timestamp after it:
    /// the label pairs were checked when `series` was first read, and the same bytes followed
    /// by a value parse the same way. `Ok(None)` (nothing consumed) when the line is anything
    /// else; then `next_entry` reads it.
    pub fn next_known(&mut self, series: &[u8]) -> Result<Option<(f64, Option<i64>)>> {
        if self.done || series.is_empty() {
            return Ok(None);
        }
        let rest = self.cur.rest();
        if !rest.starts_with(series) {
            return Ok(None);
        }
        let next = rest.get(series.len()).copied();
        let fits = match self.format {
            Format::PrometheusText => text::value_may_start(next),
            Format::OpenMetrics => openmetrics::value_may_start(next),
        };
        if !fits {
            return Ok(None);
        }
        self.cur.advance(series.len());
        let res = match self.format {
            Format::PrometheusText => text::sample_value(&mut self.cur, series),
            Format::OpenMetrics => openmetrics::sample_value(&mut self.cur, series),
        };
        match res {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The metric name a series text starts with (names are ASCII).
fn name_of(series: &[u8]) -> &str {
    let n = series
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
        .unwrap_or(series.len());
    std::str::from_utf8(&series[..n]).unwrap_or("")
}

fn check_duplicates(s: &SampleEntry<'_>) -> Result<()> {
    for (i, (name, _)) in s.labels.iter().enumerate() {
        let clash = *name == METRIC_NAME || s.labels[..i].iter().any(|(n, _)| n == name);
        if clash {
            return Err(ParseError::DuplicateLabel {
                line: s.line,
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

/// What a family declared about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// One sample with its full label set.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    pub labels: Labels,
    pub value: f64,
    pub timestamp: Option<i64>,
}

/// A whole body, parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<ParsedSample>,
    /// By family name.
    pub metadata: BTreeMap<String, Metadata>,
}

/// Parses a whole body into samples and per-family metadata.
pub fn parse(body: &[u8], format: Format) -> Result<Exposition> {
    let mut out = Exposition::default();
    let mut parser = Parser::new(body, format);
    while let Some(entry) = parser.next_entry()? {
        match entry {
            Entry::Help { family, help } => {
                out.metadata.entry(family.to_string()).or_default().help = help.into_owned()
            }
            Entry::Type {
                family,
                metric_type,
            } => {
                out.metadata
                    .entry(family.to_string())
                    .or_default()
                    .metric_type = metric_type
            }
            Entry::Unit { family, unit } => {
                out.metadata.entry(family.to_string()).or_default().unit = unit.to_string()
            }
            Entry::Sample(s) => out.samples.push(ParsedSample {
                labels: s.to_labels(),
                value: s.value,
                timestamp: s.timestamp,
            }),
        }
    }
    Ok(out)
}

/// The parser for a response, chosen like Prometheus 2.42's `textparse.New`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub format: Format,
    /// Set when the Content-Type could not be read and the text format was assumed
    /// (Prometheus logs this and carries on).
    pub fallback_reason: Option<String>,
}

/// Picks the format from a response's Content-Type: OpenMetrics for
/// `application/openmetrics-text`, the text format for anything else, missing or malformed.
/// Protobuf (which Strata never asks for) is refused.
pub fn negotiate(content_type: &str) -> Result<Negotiated> {
    if content_type.trim().is_empty() {
        return Ok(Negotiated {
            format: Format::PrometheusText,
            fallback_reason: None,
        });
    }
    match media_type(content_type) {
        Err(reason) => Ok(Negotiated {
            format: Format::PrometheusText,
            fallback_reason: Some(reason),
        }),
        Ok(m) if m == "application/openmetrics-text" => Ok(Negotiated {
            format: Format::OpenMetrics,
            fallback_reason: None,
        }),
        Ok(m) if m == "application/vnd.google.protobuf" => {
            Err(ParseError::UnsupportedContentType(m))
        }
        Ok(_) => Ok(Negotiated {
            format: Format::PrometheusText,
            fallback_reason: None,
        }),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

/// The lower-cased `type/subtype` of a Content-Type, checked like Go's `mime.ParseMediaType`.
fn media_type(ct: &str) -> std::result::Result<String, String> {
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let valid = match media.split_once('/') {
        Some((t, s)) => is_token(t) && is_token(s),
        None => is_token(&media),
    };
    if !valid {
        return Err(format!("invalid media type {media:?}"));
    }
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let Some((k, v)) = p.split_once('=') else {
            return Err(format!("invalid media parameter {p:?}"));
        };
        let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
        if !is_token(k.trim()) || !(quoted || is_token(v.trim())) {
            return Err(format!("invalid media parameter {p:?}"));
        }
    }
    Ok(media)
}

/// Label value escapes shared by both formats: `\\`, `\"` and `\n`; any other backslash
/// sequence is kept as written.
fn unescape_label_value(raw: &str) -> Cow<'_, str> {
    unescape(raw, true)
}

fn unescape(raw: &str, quotes: bool) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
