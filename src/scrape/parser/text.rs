//! The Prometheus text format 0.0.4 as Prometheus 2.42's `PromParser` reads it: blanks and
//! tabs between tokens, `# HELP` / `# TYPE` lines (other `#` lines are comments), optional
//! `{labels}` with free trailing commas, a value, an optional integer millisecond timestamp,
//! and a newline ending each line. Prometheus appends a newline to every body before parsing,
//! so the last line may lack one. A NUL byte where an entry would start ends the body, as in
//! Prometheus's lexer.

use std::borrow::Cow;

use crate::gocompat::parse_float;

use super::cursor::{utf8, Cursor};
use super::{unescape, unescape_label_value, Entry, MetricType, Result, SampleEntry};

pub(super) fn next_entry<'a>(cur: &mut Cursor<'a>) -> Result<Option<Entry<'a>>> {
    loop {
        let indented = cur.skip_blanks();
        match cur.peek() {
            None | Some(0) => return Ok(None),
            Some(b'\n') => {
                cur.eat(b'\n');
            }
            Some(b'#') => {
                if let Some(entry) = comment(cur)? {
                    return Ok(Some(entry));
                }
            }
            Some(_) => {
                if let Some(name) = cur.metric_name() {
                    // Prometheus keeps the indentation in the metric name, which then fails
                    // name validation and fails the scrape.
                    if indented {
                        return Err(cur.error(format!(
                            "invalid metric name {name:?}: sample lines must not be indented"
                        )));
                    }
                    return sample(cur, name).map(|s| Some(Entry::Sample(s)));
                }
                return Err(cur.expected("expected a valid start token"));
            }
        }
    }
}

/// A `#` line: HELP or TYPE metadata, or a comment (skipped, `None`).
fn comment<'a>(cur: &mut Cursor<'a>) -> Result<Option<Entry<'a>>> {
    cur.advance(1);
    if !cur.skip_blanks() {
        cur.skip_line();
        return Ok(None);
    }
    let keyword = if cur.starts_with(b"HELP") {
        "HELP"
    } else if cur.starts_with(b"TYPE") {
        "TYPE"
    } else {
        cur.skip_line();
        return Ok(None);
    };
    let after = cur.rest().get(4).copied();
    if !matches!(after, Some(b' ' | b'\t')) {
        cur.skip_line();
        return Ok(None);
    }
    cur.advance(4);
    cur.skip_blanks();
    let line = cur.line;
    let Some(family) = cur.metric_name() else {
        return Err(cur.expected(&format!("expected metric name after {keyword}")));
    };
    // Prometheus drops exactly one separator byte before the text.
    let raw = cur.take_line();
    let text = raw.get(1..).unwrap_or(&[]);
    if !eat_eol(cur) {
        return Err(cur.expected("linebreak expected after metadata"));
    }
    if keyword == "HELP" {
        let help = utf8(text, line, "help text")?;
        return Ok(Some(Entry::Help {
            family,
            help: unescape(help, false),
        }));
    }
    let metric_type = match text {
        b"counter" => MetricType::Counter,
        b"gauge" => MetricType::Gauge,
        b"histogram" => MetricType::Histogram,
        b"summary" => MetricType::Summary,
        b"untyped" => MetricType::Unknown,
        other => {
            return Err(super::ParseError::Syntax {
                line,
                message: format!("invalid metric type {:?}", String::from_utf8_lossy(other)),
            })
        }
    };
    Ok(Some(Entry::Type {
        family,
        metric_type,
    }))
}

fn sample<'a>(cur: &mut Cursor<'a>, name: &'a str) -> Result<SampleEntry<'a>> {
    let line = cur.line;
    let start = cur.pos - name.len();
    cur.skip_blanks();
    let mut labels = Vec::new();
    if cur.eat(b'{') {
        label_pairs(cur, &mut labels)?;
        cur.skip_blanks();
    }
    // A series text spanning lines (newlines in label values) is not offered for reuse, so
    // the fast path never has to count lines.
    cur.series = (cur.line == line).then_some((start, cur.pos));
    let (value, timestamp) = sample_value(cur, name.as_bytes())?;
    Ok(SampleEntry {
        name,
        labels,
        value,
        timestamp,
        line,
    })
}

/// Can a sample's value start with `b`, right after a series text that ended with blanks
/// or `}`? Anything else means the line's series text is not the remembered one.
pub(super) fn value_may_start(b: Option<u8>) -> bool {
    !matches!(b, None | Some(b' ' | b'\t' | b'{' | b'\n' | 0))
}

/// The value, optional timestamp and end of line of a sample, from its value on. `series`
/// starts with the metric name, which only error messages need.
pub(super) fn sample_value(cur: &mut Cursor<'_>, series: &[u8]) -> Result<(f64, Option<i64>)> {
    let name = || super::name_of(series);
    // Prometheus's generated lexer never lets a NUL byte into a value token.
    let raw_value = cur.take_while(|b| !matches!(b, b'{' | b' ' | b'\t' | b'\n' | 0));
    if raw_value.is_empty() {
        return Err(cur.expected("expected value after metric"));
    }
    let value = parse_float(raw_value).ok_or_else(|| {
        cur.error(format!(
            "invalid value {raw_value:?} for metric {:?}",
            name()
        ))
    })?;
    cur.skip_blanks();
    let mut timestamp = None;
    if matches!(cur.peek(), Some(b) if b.is_ascii_digit()) {
        let digits = cur.take_while(|b| b.is_ascii_digit());
        let ts: i64 = digits.parse().map_err(|_| {
            cur.error(format!(
                "timestamp {digits:?} out of range for metric {:?}",
                name()
            ))
        })?;
        timestamp = Some(ts);
        cur.skip_blanks();
        if !eat_eol(cur) {
            return Err(cur.expected("expected next entry after timestamp"));
        }
    } else if !eat_eol(cur) {
        return Err(cur.expected("expected timestamp or new record"));
    }
    Ok((value, timestamp))
}

/// A newline, or the end of the body (which stands for the newline Prometheus appends).
fn eat_eol(cur: &mut Cursor<'_>) -> bool {
    cur.eat(b'\n') || cur.at_end()
}

/// `name="value"` pairs up to `}`; commas between pairs are optional, as Prometheus's
/// text parser allows.
fn label_pairs<'a>(cur: &mut Cursor<'a>, out: &mut Vec<(&'a str, Cow<'a, str>)>) -> Result<()> {
    loop {
        cur.skip_blanks();
        if cur.eat(b'}') {
            return Ok(());
        }
        let Some(lname) = cur.label_name() else {
            return Err(cur.expected("expected label name"));
        };
        cur.skip_blanks();
        if !cur.eat(b'=') {
            return Err(cur.expected("expected equal"));
        }
        cur.skip_blanks();
        let line = cur.line;
        let Some(raw) = cur.quoted(true) else {
            return Err(cur.expected("expected label value"));
        };
        let value = utf8(raw, line, "label value")?;
        out.push((lname, unescape_label_value(value)));
        cur.skip_blanks();
        cur.eat(b',');
    }
}
