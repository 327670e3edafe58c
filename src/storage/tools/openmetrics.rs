//! A line parser for the OpenMetrics text format as `promtool tsdb create-blocks-from
//! openmetrics` consumes it: `# TYPE/HELP/UNIT` metadata, `# EOF` terminator, and sample lines
//! `name{label="value",...} value timestamp_seconds [# exemplar]`. Errors carry the line number.

use super::{Result, ToolsError};
use crate::storage::model::{Label, Labels, METRIC_NAME};

/// Go's `math.NaN()` bit pattern, which promtool stores for a parsed `NaN`.
pub const GO_NAN_BITS: u64 = 0x7FF8_0000_0000_0001;

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// Metadata, comments and blank lines.
    Skip,
    Eof,
    Sample {
        labels: Labels,
        t: i64,
        v: f64,
    },
}

fn err(line: usize, reason: impl Into<String>) -> ToolsError {
    ToolsError::Parse {
        line,
        reason: reason.into(),
    }
}

fn is_name_start(c: u8, metric: bool) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || (metric && c == b':')
}

fn is_name_char(c: u8, metric: bool) -> bool {
    is_name_start(c, metric) || c.is_ascii_digit()
}

/// Parses a float the way Go's `strconv.ParseFloat` does for OpenMetrics values.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if body == "nan" {
        return Some(f64::from_bits(GO_NAN_BITS));
    }
    if body.is_empty()
        || !(body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            || body == "inf"
            || body == "infinity")
    {
        return None;
    }
    // Go accepts '_' only with a base prefix; Rust accepts none: both reject "1_0".
    s.parse::<f64>().ok()
}

/// Parses one line (without its newline). `n` is the 1-based line number for errors.
pub fn parse_line(raw: &str, n: usize) -> Result<Line> {
    let line = raw.strip_suffix('\r').unwrap_or(raw);
    if line.trim().is_empty() {
        return Ok(Line::Skip);
    }
    if let Some(rest) = line.strip_prefix('#') {
        let rest = rest.trim_start();
        if rest == "EOF" {
            return Ok(Line::Eof);
        }
        let kw = rest.split_whitespace().next().unwrap_or("");
        return match kw {
            "TYPE" | "HELP" | "UNIT" => {
                if rest.split_whitespace().nth(1).is_none() {
                    Err(err(n, format!("# {kw} line without a metric name")))
                } else {
                    Ok(Line::Skip)
                }
            }
            _ => Err(err(n, format!("unsupported comment line {line:?} (only # TYPE, # HELP, # UNIT and # EOF are valid)"))),
        };
    }
    let b = line.as_bytes();
    let mut i = 0;
    if !b.first().is_some_and(|&c| is_name_start(c, true)) {
        return Err(err(
            n,
            format!("expected a metric name at the start of {line:?}"),
        ));
    }
    while i < b.len() && is_name_char(b[i], true) {
        i += 1;
    }
    let mut labels = vec![Label::new(METRIC_NAME, &line[..i])];
    if b.get(i) == Some(&b'{') {
        i += 1;
        loop {
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            if b.get(i) == Some(&b'}') {
                i += 1;
                break;
            }
            let start = i;
            if !b.get(i).is_some_and(|&c| is_name_start(c, false)) {
                return Err(err(n, format!("invalid label name at column {}", i + 1)));
            }
            while i < b.len() && is_name_char(b[i], false) {
                i += 1;
            }
            let name = &line[start..i];
            if b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'"') {
                return Err(err(
                    n,
                    format!("expected =\" after label name {name:?} at column {}", i + 1),
                ));
            }
            i += 2;
            let mut value = String::new();
            loop {
                let Some(rest) = line.get(i..) else {
                    return Err(err(n, "unterminated label value"));
                };
                let Some(c) = rest.chars().next() else {
                    return Err(err(n, format!("unterminated value of label {name:?}")));
                };
                i += c.len_utf8();
                match c {
                    '"' => break,
                    '\\' => {
                        let esc = b.get(i).copied();
                        i += 1;
                        match esc {
                            Some(b'\\') => value.push('\\'),
                            Some(b'"') => value.push('"'),
                            Some(b'n') => value.push('\n'),
                            other => {
                                return Err(err(
                                    n,
                                    format!(
                                        "invalid escape \\{} in label {name:?}",
                                        other.map(|c| c as char).unwrap_or(' ')
                                    ),
                                ))
                            }
                        }
                    }
                    c => value.push(c),
                }
            }
            if labels.iter().any(|l| l.name == name) {
                return Err(err(n, format!("duplicate label name {name:?}")));
            }
            labels.push(Label::new(name, value));
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => {
                    return Err(err(
                        n,
                        format!("expected , or }} after label {name:?} at column {}", i + 1),
                    ))
                }
            }
        }
    }
    let rest = line.get(i..).unwrap_or("");
    let rest = match rest.split_once(" # ") {
        Some((sample, _exemplar)) => sample,
        None => rest,
    };
    let mut fields = rest.split(' ').filter(|f| !f.is_empty());
    let Some(vs) = fields.next() else {
        return Err(err(n, "missing sample value"));
    };
    let v = parse_go_float(vs).ok_or_else(|| err(n, format!("invalid sample value {vs:?}")))?;
    let Some(ts) = fields.next() else {
        return Err(err(
            n,
            format!(
                "expected timestamp for series {}, got none",
                super::format::go_labels(&Labels::new(labels))
            ),
        ));
    };
    let secs = parse_go_float(ts).ok_or_else(|| err(n, format!("invalid timestamp {ts:?}")))?;
    if !secs.is_finite() {
        return Err(err(n, format!("invalid timestamp {ts:?}")));
    }
    if let Some(extra) = fields.next() {
        return Err(err(
            n,
            format!("unexpected text {extra:?} after the timestamp"),
        ));
    }
    // Same conversion as Prometheus' parser: int64(ts * 1000), truncating.
    let t = (secs * 1000.0) as i64;
    Ok(Line::Sample {
        labels: Labels::new(labels),
        t,
        v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_metadata_and_errors() {
        assert_eq!(parse_line("# TYPE foo counter", 1).unwrap(), Line::Skip);
        assert_eq!(parse_line("# EOF", 1).unwrap(), Line::Eof);
        let Line::Sample { labels, t, v } =
            parse_line(r#"foo{b="x\"y\\z\n",a="1"} -Inf 1700000000.5"#, 3).unwrap()
        else {
            panic!("not a sample")
        };
        assert_eq!(labels.get("b"), Some("x\"y\\z\n"));
        assert_eq!(labels.get("a"), Some("1"));
        assert_eq!((t, v), (1_700_000_000_500, f64::NEG_INFINITY));
        let Line::Sample { v, .. } = parse_line("foo NaN 1 # {trace=\"1\"} 1 1", 1).unwrap() else {
            panic!("not a sample")
        };
        assert_eq!(v.to_bits(), GO_NAN_BITS);
        let e = parse_line("foo 1", 7).unwrap_err().to_string();
        assert!(
            e.contains("line 7") && e.contains("expected timestamp"),
            "{e}"
        );
        assert!(parse_line("foo{a=1} 1 2", 2).is_err());
        assert!(parse_line("foo{a=\"1\" 1 2", 2).is_err());
        assert!(parse_line("foo abc 2", 2).is_err());
        assert!(parse_line("# random comment", 2).is_err());
        assert!(parse_line("foo{a=\"1\",a=\"2\"} 1 2", 2).is_err());
        assert!(parse_line("{a=\"1\"} 1 2", 2).is_err());
    }
}
