//! Parser of Prometheus's PromQL test-file language (`load`, `clear`, `eval`, `expect ...`):
//! turns a file into commands with line numbers, expands value sequences (`1+2x3`, `_x2`,
//! `stale`) and parses series descriptions, including the per-sample start-time offsets of
//! `metric@st` lines. Native histogram literals (`{{...}}`) are recognised but kept opaque.

use crate::promql::json::parse_prom_duration;
use crate::storage::model::{stale_nan, Label, Labels};

#[derive(Debug, thiserror::Error)]
pub enum TestParseError {
    #[error("line {line}: {msg}")]
    Syntax { line: usize, msg: String },
}

pub type Result<T> = std::result::Result<T, TestParseError>;

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T> {
    Err(TestParseError::Syntax {
        line,
        msg: msg.into(),
    })
}

/// One value of a sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum SeqValue {
    /// `_`: no sample at this step.
    Missing,
    Float(f64),
    /// A native histogram literal, kept as text.
    Histogram(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SeriesLine {
    pub labels: Labels,
    pub values: Vec<SeqValue>,
    /// From a `metric@st` line just before a load line: one entry per value, the start time
    /// of that sample as an offset in milliseconds from its timestamp (`None`: no start time).
    pub start_offsets: Option<Vec<Option<i64>>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MsgMatch {
    Any,
    Exact(String),
    Regex(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    Series(Vec<SeriesLine>),
    Scalar(f64),
    String(String),
}

#[derive(Clone, Debug)]
pub struct EvalCmd {
    pub line: usize,
    pub expr: String,
    /// Instant: start == end, step 0.
    pub range: Option<(i64, i64, i64)>,
    pub at: i64,
    pub fail: Option<MsgMatch>,
    pub warn: Vec<MsgMatch>,
    pub info: Vec<MsgMatch>,
    pub no_warn: bool,
    pub no_info: bool,
    pub ordered: bool,
    pub range_vector: Option<(i64, i64, i64)>,
    pub expected: Expected,
    /// The eval block mentions a native histogram literal.
    pub has_histogram_literal: bool,
}

#[derive(Clone, Debug)]
pub enum Command {
    Load {
        line: usize,
        step: i64,
        nhcb: bool,
        series: Vec<SeriesLine>,
        has_histograms: bool,
    },
    Clear,
    Eval(Box<EvalCmd>),
}

fn dur(line: usize, s: &str) -> Result<i64> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('-') {
        return dur(line, rest).map(|v| -v);
    }
    match parse_prom_duration(s) {
        Some(v) => Ok(v),
        None => match s.parse::<i64>() {
            Ok(v) => Ok(v * 1000),
            Err(_) => err(line, format!("bad duration {s:?}")),
        },
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        "stale" => Some(stale_nan()),
        _ => s.replace('_', "").parse::<f64>().ok(),
    }
}

/// Splits `a+bxn` / `a-bxn` / `axn` into (start, increment, times).
fn expand_token(tok: &str, out: &mut Vec<SeqValue>) -> Option<()> {
    if tok == "_" {
        out.push(SeqValue::Missing);
        return Some(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n.parse().ok()?;
        out.extend(std::iter::repeat_n(SeqValue::Missing, n));
        return Some(());
    }
    if let Some(v) = parse_float(tok) {
        out.push(SeqValue::Float(v));
        return Some(());
    }
    let xpos = tok.rfind('x')?;
    let times: usize = tok[xpos + 1..].parse().ok()?;
    let head = &tok[..xpos];
    let bytes = head.as_bytes();
    let mut split = None;
    for i in 1..bytes.len() {
        if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            split = Some(i);
        }
    }
    let (start, inc) = match split {
        Some(i) => {
            let a = parse_float(&head[..i])?;
            let b = parse_float(&head[i + 1..])?;
            (a, if bytes[i] == b'-' { -b } else { b })
        }
        None => (parse_float(head)?, 0.0),
    };
    let mut k = start;
    for _ in 0..=times {
        out.push(SeqValue::Float(k));
        k += inc;
    }
    Some(())
}

/// Parses a value sequence; `{{...}}` histograms may carry `xN` expansions.
pub fn parse_values(line: usize, s: &str) -> Result<Vec<SeqValue>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            let Some(end) = rest.find("}}") else {
                return err(line, "unterminated histogram literal");
            };
            let lit = rest[..end + 2].to_string();
            rest = &rest[end + 2..];
            let mut times = 0usize;
            if let Some(r) = rest.strip_prefix('x') {
                let n_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                times = r[..n_end].parse().unwrap_or(0);
                rest = &r[n_end..];
            } else if rest.starts_with('+') || rest.starts_with('-') {
                // `{{a}}+{{b}}xN`: an incrementing histogram sequence.
                let r = &rest[1..];
                if let Some(e2) = r.find("}}") {
                    let after = &r[e2 + 2..];
                    let r2 = after.strip_prefix('x').unwrap_or("");
                    let n_end = r2.find(|c: char| !c.is_ascii_digit()).unwrap_or(r2.len());
                    times = r2[..n_end].parse().unwrap_or(0);
                    rest = &r2[n_end..];
                }
            }
            for _ in 0..=times {
                out.push(SeqValue::Histogram(lit.clone()));
            }
            rest = rest.trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let tok = &rest[..end];
        if expand_token(tok, &mut out).is_none() {
            return err(line, format!("bad value {tok:?}"));
        }
        rest = rest[end..].trim_start();
    }
    Ok(out)
}

/// A signed duration with a single unit (`-30s`, `+1m`, `59999ms`, `0`) at the start of `s`;
/// returns milliseconds and the rest. The unit stops before `x`, the repeat separator.
fn duration_prefix(s: &str) -> Option<(i64, &str)> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    if digits == 0 {
        return None;
    }
    let unit_end = body[digits..]
        .find(|c: char| !c.is_ascii_alphabetic() || c == 'x')
        .map_or(body.len(), |i| digits + i);
    let ms = parse_prom_duration(&body[..unit_end])?;
    Some((if neg { -ms } else { ms }, &body[unit_end..]))
}

/// One item of a start-offset sequence: `_`, `_xN` (N missing), `<d>`, `<d>xN` (N+1 times
/// `d`) or `<d>+<e>xN` / `<d>-<e>xN` (N+1 offsets stepping by `e`).
fn start_offset_item(item: &str, out: &mut Vec<Option<i64>>) -> Option<()> {
    if item == "_" {
        out.push(None);
        return Some(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().ok().filter(|&n| n > 0)?;
        out.extend(std::iter::repeat_n(None, n));
        return Some(());
    }
    let (base, rest) = duration_prefix(item)?;
    if rest.is_empty() {
        out.push(Some(base));
        return Some(());
    }
    let (step, rest) = match rest.as_bytes().first()? {
        b'x' => (0, rest),
        b'+' => duration_prefix(&rest[1..])?,
        b'-' => duration_prefix(&rest[1..]).map(|(d, r)| (-d, r))?,
        _ => return None,
    };
    let times: usize = rest.strip_prefix('x')?.parse().ok()?;
    let mut offset = base;
    for _ in 0..=times {
        out.push(Some(offset));
        offset += step;
    }
    Some(())
}

/// Parses the offsets of a `metric@st` line (everything after `@st`).
fn parse_start_offsets(line: usize, s: &str) -> Result<Vec<Option<i64>>> {
    let mut out = Vec::new();
    for item in s.split_whitespace() {
        if start_offset_item(item, &mut out).is_none() {
            return err(line, format!("bad start-time offset {item:?}"));
        }
    }
    Ok(out)
}

/// Decodes a Go-style double-quoted string starting at `s[0] == '"'`; returns text and length.
fn quoted(s: &str) -> Option<(String, usize)> {
    let quote = s.chars().next()?;
    if quote != '"' && quote != '\'' && quote != '`' {
        return None;
    }
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, i + 1));
        }
        if c == '\\' && quote != '`' {
            let (_, e) = chars.next()?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'x' => {
                    let h: String = [chars.next()?.1, chars.next()?.1].iter().collect();
                    let b = u8::from_str_radix(&h, 16).ok()?;
                    out.push(if b < 0x80 { b as char } else { '\u{fffd}' });
                }
                'u' => {
                    let h: String = (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.'
}

/// Parses `name{l="v", ...}` / `{...}` at the start of `s`; returns labels and the rest.
pub fn parse_series_desc(line: usize, s: &str) -> Result<(Labels, String)> {
    let s = s.trim_start();
    let name_end = s.find(|c: char| !is_ident_char(c)).unwrap_or(s.len());
    let mut pairs = Vec::new();
    if name_end > 0 {
        pairs.push(Label::new("__name__", &s[..name_end]));
    }
    let mut rest = &s[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (name, after) = if rest.starts_with('"') {
                let Some((n, len)) = quoted(rest) else {
                    return err(line, "bad quoted label name");
                };
                (n, &rest[len..])
            } else {
                let e = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
                if e == 0 {
                    return err(line, format!("bad series description near {rest:?}"));
                }
                (rest[..e].to_string(), &rest[e..])
            };
            let after = after.trim_start();
            match after.strip_prefix('=') {
                Some(a) => {
                    let a = a.trim_start();
                    let Some((v, len)) = quoted(a) else {
                        return err(line, "bad label value");
                    };
                    pairs.push(Label::new(name, v));
                    rest = &a[len..];
                }
                None => {
                    // A bare quoted name inside braces is the metric name (`{"my.metric"}`).
                    pairs.push(Label::new("__name__", name));
                    rest = after;
                }
            }
        }
    }
    Ok((Labels::new(pairs), rest.to_string()))
}

fn parse_msg(rest: &str) -> MsgMatch {
    let r = rest.trim();
    if let Some(m) = r.strip_prefix("msg:") {
        MsgMatch::Exact(m.trim().to_string())
    } else if let Some(m) = r.strip_prefix("regex:") {
        MsgMatch::Regex(m.trim().to_string())
    } else {
        MsgMatch::Any
    }
}

fn parse_eval_header(line: usize, l: &str) -> Result<EvalCmd> {
    let (fail, body) = if let Some(b) = l.strip_prefix("eval_fail ") {
        (true, b)
    } else if let Some(b) = l.strip_prefix("eval ") {
        (false, b)
    } else {
        let word = l.split_whitespace().next().unwrap_or("");
        return err(line, format!("unsupported eval form {word:?}"));
    };
    let body = body.trim();
    let words: Vec<&str> = body.split_whitespace().collect();
    let mut cmd = EvalCmd {
        line,
        expr: String::new(),
        range: None,
        at: 0,
        fail: fail.then_some(MsgMatch::Any),
        warn: vec![],
        info: vec![],
        no_warn: false,
        no_info: false,
        ordered: false,
        range_vector: None,
        expected: Expected::Series(vec![]),
        has_histogram_literal: false,
    };
    if words.first() == Some(&"instant") {
        let Some((w, expr)) = take_words(body, 3) else {
            return err(line, "bad eval instant line");
        };
        if w[1] != "at" {
            return err(line, "bad eval instant line");
        }
        cmd.at = dur(line, w[2])?;
        cmd.expr = expr.to_string();
    } else if words.first() == Some(&"range") {
        let Some((w, expr)) = take_words(body, 7) else {
            return err(line, "bad eval range line");
        };
        if w[1] != "from" || w[3] != "to" || w[5] != "step" {
            return err(line, "bad eval range line");
        }
        cmd.range = Some((dur(line, w[2])?, dur(line, w[4])?, dur(line, w[6])?));
        cmd.expr = expr.to_string();
    } else {
        return err(line, "eval needs instant or range");
    }
    Ok(cmd)
}

/// The first `n` whitespace-separated words of `s` and the trimmed rest.
fn take_words(s: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut words = Vec::new();
    let mut rest = s.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        words.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Some((words, rest.trim()))
}

fn finish_eval(cmd: &mut EvalCmd, body: &[(usize, &str)]) -> Result<()> {
    let mut series = Vec::new();
    let mut scalar = None;
    let mut string = None;
    for &(ln, l) in body {
        if l.contains("{{") {
            cmd.has_histogram_literal = true;
        }
        if let Some(rest) = l.strip_prefix("expect ") {
            let rest = rest.trim();
            let (kw, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            match kw {
                "fail" => cmd.fail = Some(parse_msg(tail)),
                "warn" => cmd.warn.push(parse_msg(tail)),
                "info" => cmd.info.push(parse_msg(tail)),
                "no_warn" => cmd.no_warn = true,
                "no_info" => cmd.no_info = true,
                "ordered" => cmd.ordered = true,
                "string" => {
                    let t = tail.trim();
                    string = Some(quoted(t).map(|(s, _)| s).unwrap_or_else(|| t.to_string()));
                }
                "range" => {
                    let w: Vec<&str> = tail.split_whitespace().collect();
                    if w.len() != 7
                        || w[0] != "vector"
                        || w[1] != "from"
                        || w[3] != "to"
                        || w[5] != "step"
                    {
                        return err(ln, "bad expect range vector line");
                    }
                    cmd.range_vector = Some((dur(ln, w[2])?, dur(ln, w[4])?, dur(ln, w[6])?));
                }
                other => return err(ln, format!("unknown expectation {other:?}")),
            }
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message ") {
            cmd.fail = Some(MsgMatch::Exact(m.trim().to_string()));
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_regexp ") {
            cmd.fail = Some(MsgMatch::Regex(m.trim().to_string()));
            continue;
        }
        if let Some(v) = parse_float(l.trim()) {
            if !l.trim().starts_with('{') {
                scalar = Some(v);
                continue;
            }
        }
        let (labels, rest) = parse_series_desc(ln, l)?;
        let values = parse_values(ln, &rest)?;
        series.push(SeriesLine {
            labels,
            values,
            start_offsets: None,
        });
    }
    cmd.expected = match (scalar, string) {
        (_, Some(s)) => Expected::String(s),
        (Some(v), None) if series.is_empty() => Expected::Scalar(v),
        _ => Expected::Series(series),
    };
    Ok(())
}

/// Splits a test file into commands.
pub fn parse_test_file(text: &str) -> Result<Vec<Command>> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (ln, l) = lines[i];
        i += 1;
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l == "clear" {
            cmds.push(Command::Clear);
            continue;
        }
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].1.is_empty() && !lines[i].1.starts_with('#') {
            body.push(lines[i]);
            i += 1;
        }
        if let Some(rest) = l
            .strip_prefix("load_with_nhcb ")
            .map(|r| (r, true))
            .or_else(|| l.strip_prefix("load ").map(|r| (r, false)))
        {
            let (step_s, nhcb) = rest;
            let step = dur(ln, step_s)?;
            let mut series = Vec::new();
            let mut has_histograms = false;
            // A `metric@st` line waiting for the series line it annotates.
            let mut pending: Option<(usize, Labels, Vec<Option<i64>>)> = None;
            for &(bl, b) in &body {
                if b.contains("{{") {
                    has_histograms = true;
                }
                let (labels, rest) = parse_series_desc(bl, b)?;
                if let Some(seq) = rest.strip_prefix("@st") {
                    if let Some((pl, ..)) = pending {
                        return err(pl, "@st line has no following sample line");
                    }
                    pending = Some((bl, labels, parse_start_offsets(bl, seq)?));
                    continue;
                }
                let values = parse_values(bl, &rest)?;
                let start_offsets = match pending.take() {
                    None => None,
                    Some((pl, st_labels, _)) if st_labels != labels => {
                        return err(pl, "@st metric does not match the following sample line");
                    }
                    Some((pl, _, offs)) if offs.len() != values.len() => {
                        return err(
                            pl,
                            format!(
                                "@st line has {} values but the sample line has {}",
                                offs.len(),
                                values.len()
                            ),
                        );
                    }
                    Some((_, _, offs)) => Some(offs),
                };
                series.push(SeriesLine {
                    labels,
                    values,
                    start_offsets,
                });
            }
            if let Some((pl, ..)) = pending {
                return err(pl, "@st line has no following sample line");
            }
            cmds.push(Command::Load {
                line: ln,
                step,
                nhcb,
                series,
                has_histograms,
            });
        } else if l.starts_with("eval") {
            let mut cmd = parse_eval_header(ln, l)?;
            finish_eval(&mut cmd, &body)?;
            cmds.push(Command::Eval(Box::new(cmd)));
        } else {
            return err(ln, format!("unknown command {l:?}"));
        }
    }
    Ok(cmds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_sequences() {
        let v = parse_values(1, "1+2x2 _x2 stale 5x1 -1-1x1").unwrap();
        assert_eq!(v.len(), 3 + 2 + 1 + 2 + 2);
        assert_eq!(v[2], SeqValue::Float(5.0));
        assert_eq!(v[3], SeqValue::Missing);
        assert_eq!(v[9], SeqValue::Float(-2.0));
    }

    #[test]
    fn parses_start_offset_lines() {
        let text = "load 1m\n  m@st _ -30s-1mx2 +1m 0 _x2\n  m _ 1 2 3 4 5 6 7\n";
        let cmds = parse_test_file(text).unwrap();
        let Command::Load { series, .. } = &cmds[0] else {
            panic!("not a load");
        };
        assert_eq!(series.len(), 1);
        let offs = series[0].start_offsets.clone().unwrap();
        let want = [
            None,
            Some(-30_000),
            Some(-90_000),
            Some(-150_000),
            Some(60_000),
            Some(0),
            None,
            None,
        ];
        assert_eq!(offs, want);
        assert!(parse_test_file("load 1m\n  m@st _ 1m\n  m 1\n").is_err());
        assert!(parse_test_file("load 1m\n  m@st 1m\n  n 1\n").is_err());
        assert!(parse_test_file("load 1m\n  m@st 1m\n").is_err());
    }

    #[test]
    fn parses_series_descriptions() {
        let (l, rest) = parse_series_desc(1, r#"http{a="x\"y", b="2"} 1 2"#).unwrap();
        assert_eq!(l.get("a"), Some("x\"y"));
        assert_eq!(l.metric_name(), Some("http"));
        assert_eq!(rest.trim(), "1 2");
    }
}
