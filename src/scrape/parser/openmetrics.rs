//! OpenMetrics 1.0 text as Prometheus 2.42's `OpenMetricsParser` reads it: single spaces
//! between tokens, `# HELP`/`# TYPE`/`# UNIT` (the unit must end the family name), float
//! timestamps in seconds, exemplars after ` # ` on `_total`/`_bucket` samples only (checked,
//! then dropped), no blank lines or
//! other comments, and a mandatory final `# EOF` with nothing after it. `_created` samples
//! are ordinary samples, as 2.42 ingests them.

use std::borrow::Cow;

use crate::gocompat::parse_float;

use super::cursor::{utf8, Cursor};
use super::{unescape, unescape_label_value, Entry, MetricType, ParseError, Result, SampleEntry};

const NO_EOF: &str = "data does not end with # EOF";

pub(super) fn next_entry<'a>(cur: &mut Cursor<'a>) -> Result<Option<Entry<'a>>> {
    match cur.peek() {
        None => Err(cur.error(NO_EOF)),
        Some(b'#') => meta(cur),
        Some(_) => match cur.metric_name() {
            Some(name) => sample(cur, name).map(|s| Some(Entry::Sample(s))),
            None => Err(cur.expected("expected a valid start token")),
        },
    }
}

fn meta<'a>(cur: &mut Cursor<'a>) -> Result<Option<Entry<'a>>> {
    let keyword = ["HELP ", "TYPE ", "UNIT "].into_iter().find(|k| {
        cur.rest()
            .get(2..)
            .is_some_and(|r| r.starts_with(k.as_bytes()))
    });
    if !cur.starts_with(b"# ") {
        return Err(cur.expected("expected a valid start token"));
    }
    let Some(keyword) = keyword else {
        if cur.starts_with(b"# EOF") {
            cur.advance(5);
            cur.eat(b'\n');
            if !cur.at_end() {
                return Err(cur.error("unexpected data after # EOF"));
            }
            return Ok(None);
        }
        return Err(cur.expected("expected a valid start token"));
    };
    let keyword = keyword.trim_end();
    cur.advance(7);
    let line = cur.line;
    let Some(family) = cur.metric_name() else {
        return Err(cur.expected(&format!("expected metric name after {keyword}")));
    };
    if !cur.eat(b' ') {
        return Err(cur.expected(&format!("expected text in {keyword}")));
    }
    let text = cur.take_line();
    if !cur.eat(b'\n') {
        return Err(cur.error(NO_EOF));
    }
    match keyword {
        "HELP" => {
            let help = utf8(text, line, "help text")?;
            Ok(Some(Entry::Help {
                family,
                help: unescape(help, true),
            }))
        }
        "TYPE" => {
            let metric_type = match text {
                b"counter" => MetricType::Counter,
                b"gauge" => MetricType::Gauge,
                b"histogram" => MetricType::Histogram,
                b"gaugehistogram" => MetricType::GaugeHistogram,
                b"summary" => MetricType::Summary,
                b"info" => MetricType::Info,
                b"stateset" => MetricType::StateSet,
                b"unknown" => MetricType::Unknown,
                other => {
                    let message =
                        format!("invalid metric type {:?}", String::from_utf8_lossy(other));
                    return Err(ParseError::Syntax { line, message });
                }
            };
            Ok(Some(Entry::Type {
                family,
                metric_type,
            }))
        }
        _ => {
            let unit = utf8(text, line, "unit")?;
            let is_suffix = family.len() > unit.len()
                && family.ends_with(unit)
                && family.as_bytes().get(family.len() - unit.len() - 1) == Some(&b'_');
            if !unit.is_empty() && !is_suffix {
                let message = format!("unit not a suffix of metric {family:?}");
                return Err(ParseError::Syntax { line, message });
            }
            Ok(Some(Entry::Unit { family, unit }))
        }
    }
}

fn sample<'a>(cur: &mut Cursor<'a>, name: &'a str) -> Result<SampleEntry<'a>> {
    let line = cur.line;
    let start = cur.pos - name.len();
    let mut labels = Vec::new();
    if cur.eat(b'{') {
        label_pairs(cur, &mut labels)?;
    }
    // The series text includes the space before the value; OpenMetrics label values never
    // hold raw newlines, so it is always on one line.
    if cur.peek() == Some(b' ') {
        cur.series = Some((start, cur.pos + 1));
    }
    let value = float_token(cur, "expected value after metric", "value")?;
    let timestamp = sample_rest(cur, name.as_bytes())?;
    Ok(SampleEntry {
        name,
        labels,
        value,
        timestamp,
        line,
    })
}

/// Can a sample's value start with `b`, right after a series text that ended with its
/// space? Anything else means the line's series text is not the remembered one.
pub(super) fn value_may_start(b: Option<u8>) -> bool {
    matches!(b, Some(b) if b != b' ' && b != b'\n' && b.is_ascii())
}

/// The value, optional timestamp, exemplar and end of line of a sample, from its value on
/// (the space before the value already consumed).
pub(super) fn sample_value(cur: &mut Cursor<'_>, series: &[u8]) -> Result<(f64, Option<i64>)> {
    let raw = cur.take_while(|b| b != b' ' && b != b'\n' && b.is_ascii());
    if raw.is_empty() || matches!(cur.peek(), Some(b) if !b.is_ascii()) {
        return Err(cur.expected("expected value after metric"));
    }
    let value = parse_float(raw).ok_or_else(|| cur.error(format!("invalid value {raw:?}")))?;
    Ok((value, sample_rest(cur, series)?))
}

/// What follows a sample's value: optional timestamp and exemplar, then the newline.
/// `series` starts with the metric name.
fn sample_rest(cur: &mut Cursor<'_>, series: &[u8]) -> Result<Option<i64>> {
    let mut timestamp = None;
    if !cur.starts_with(b" # {") && cur.eat(b' ') {
        timestamp = Some(seconds_to_ms(cur, "timestamp")?);
    }
    if cur.starts_with(b" # {") {
        // Only counters and histogram buckets may carry exemplars (Prometheus 2.42).
        let name = super::name_of(series);
        if !(name.ends_with("_total") || name.ends_with("_bucket")) {
            return Err(cur.error(format!("metric name {name} does not support exemplars")));
        }
        cur.advance(4);
        exemplar(cur)?;
    }
    if !cur.eat(b'\n') {
        if cur.at_end() {
            return Err(cur.error(NO_EOF));
        }
        let what = if timestamp.is_some() {
            "expected next entry after timestamp"
        } else {
            "expected timestamp or new record"
        };
        return Err(cur.expected(what));
    }
    Ok(timestamp)
}

/// ` <value>`: a single space, then a number up to the next space or newline.
fn float_token(cur: &mut Cursor<'_>, expected: &str, what: &str) -> Result<f64> {
    if !cur.eat(b' ') {
        return Err(cur.expected(expected));
    }
    let raw = cur.take_while(|b| b != b' ' && b != b'\n' && b.is_ascii());
    if raw.is_empty() || matches!(cur.peek(), Some(b) if !b.is_ascii()) {
        return Err(cur.expected(expected));
    }
    parse_float(raw).ok_or_else(|| cur.error(format!("invalid {what} {raw:?}")))
}

/// A timestamp token (the leading space already eaten): float seconds to milliseconds.
fn seconds_to_ms(cur: &mut Cursor<'_>, what: &str) -> Result<i64> {
    let raw = cur.take_while(|b| b != b' ' && b != b'\n' && b.is_ascii());
    if raw.is_empty() || matches!(cur.peek(), Some(b) if !b.is_ascii()) {
        return Err(cur.expected(&format!("expected {what}")));
    }
    let secs = parse_float(raw).ok_or_else(|| cur.error(format!("invalid {what} {raw:?}")))?;
    if !secs.is_finite() {
        return Err(cur.error(format!("invalid {what} {raw:?}")));
    }
    // Go's int64(ts * 1000): truncation toward zero.
    Ok((secs * 1000.0) as i64)
}

/// `{labels} value [timestamp]` after ` # `: checked for syntax, then dropped.
fn exemplar(cur: &mut Cursor<'_>) -> Result<()> {
    let mut labels = Vec::new();
    label_pairs(cur, &mut labels)?;
    float_token(
        cur,
        "expected value after exemplar labels",
        "exemplar value",
    )?;
    if cur.eat(b' ') {
        seconds_to_ms(cur, "exemplar timestamp")?;
        if !cur.at_end() && cur.peek() != Some(b'\n') {
            return Err(cur.expected("expected next entry after exemplar timestamp"));
        }
    }
    Ok(())
}

/// `name="value"` pairs separated by single commas, up to `}`; `{}` is allowed, a trailing
/// comma is not.
fn label_pairs<'a>(cur: &mut Cursor<'a>, out: &mut Vec<(&'a str, Cow<'a, str>)>) -> Result<()> {
    if cur.eat(b'}') {
        return Ok(());
    }
    loop {
        let Some(lname) = cur.label_name() else {
            return Err(cur.expected("expected label name"));
        };
        if !cur.eat(b'=') {
            return Err(cur.expected("expected equal"));
        }
        let line = cur.line;
        let Some(raw) = cur.quoted(false) else {
            return Err(cur.expected("expected label value"));
        };
        let value = utf8(raw, line, "label value")?;
        out.push((lname, unescape_label_value(value)));
        if cur.eat(b'}') {
            return Ok(());
        }
        if !cur.eat(b',') {
            return Err(cur.expected("expected comma or brace close"));
        }
    }
}
