//! Token-based pre-pass over the query text for syntax promql-parser 0.11.1 lacks, and the
//! post-parse checks that go with it:
//! - duration expressions in `[...]` (ranges and subquery range/step) and after `offset`
//!   (`[26m+4m]`, `[step()+1ms]`, `offset min_of(step(), 1s)`) are folded to `<n>ms`
//!   literals, with `step()`/`range()` taken from the query;
//! - the `anchored` / `smoothed` modifiers are moved into the selector as a reserved matcher
//!   (`__strata_mod__="anchored"`) that the engine reads back and strips;
//! - `\xNN` escapes of bytes >= 0x80 in string literals (invalid UTF-8 in Go) become private-
//!   use characters so that label-name validation can reject them and errors can print them.
//!
//! Strings, label values and comments are never rewritten (the tokenizer skips them).

use promql_parser::parser::Expr;

use crate::promql::json::parse_prom_duration;

/// The reserved matcher label that carries an extended-range modifier.
pub const MODIFIER_LABEL: &str = "__strata_mod__";

/// First code point used to carry a raw byte >= 0x80 (byte b maps to `RAW_BYTE_BASE + b`).
pub const RAW_BYTE_BASE: u32 = 0x10_FF00;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Str,
    Ident,
    Num,
    Punct,
    Space,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let b = q.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated quoted string".into());
            }
            i += 1;
            Kind::Str
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            Kind::Space
        } else if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            Kind::Space
        } else if c.is_ascii_digit()
            || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                if (b[i] == b'e' || b[i] == b'E')
                    && matches!(b.get(i + 1), Some(b'+') | Some(b'-'))
                    && !q[start..i].contains(['x', 'X'])
                {
                    i += 1;
                }
                i += 1;
            }
            Kind::Num
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            Kind::Ident
        } else {
            i += q[i..].chars().next().map_or(1, char::len_utf8);
            Kind::Punct
        };
        toks.push(Tok {
            kind,
            start,
            end: i,
        });
    }
    Ok(toks)
}

/// A recursive-descent evaluator of duration expressions (values in seconds).
struct DurParser<'a> {
    q: &'a str,
    toks: Vec<Tok>,
    pos: usize,
    step_s: f64,
    range_s: f64,
}

impl DurParser<'_> {
    fn text(&self, i: usize) -> Option<&str> {
        self.toks.get(i).map(|t| &self.q[t.start..t.end])
    }

    fn peek(&self) -> Option<&str> {
        self.text(self.pos)
    }

    fn expect(&mut self, s: &str) -> Result<(), String> {
        if self.peek() == Some(s) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {s:?} in duration expression"))
        }
    }

    fn expr(&mut self) -> Result<f64, String> {
        let mut v = self.mul()?;
        while let Some(op) = self.peek() {
            match op {
                "+" => {
                    self.pos += 1;
                    v += self.mul()?;
                }
                "-" => {
                    self.pos += 1;
                    v -= self.mul()?;
                }
                _ => break,
            }
        }
        Ok(v)
    }

    fn mul(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        while let Some(op) = self.peek() {
            match op {
                "*" => {
                    self.pos += 1;
                    v *= self.unary()?;
                }
                "/" => {
                    self.pos += 1;
                    v /= self.unary()?;
                }
                "%" => {
                    self.pos += 1;
                    v %= self.unary()?;
                }
                _ => break,
            }
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some("-") => {
                self.pos += 1;
                Ok(-self.unary()?)
            }
            Some("+") => {
                self.pos += 1;
                self.unary()
            }
            _ => self.pow(),
        }
    }

    fn pow(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.peek() == Some("^") {
            self.pos += 1;
            let exp = self.unary()?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, String> {
        let Some(tok) = self.toks.get(self.pos).copied() else {
            return Err("unexpected end of duration expression".into());
        };
        let text = &self.q[tok.start..tok.end];
        self.pos += 1;
        match tok.kind {
            Kind::Num => literal_seconds(text).ok_or_else(|| format!("bad duration {text:?}")),
            Kind::Punct if text == "(" => {
                let v = self.expr()?;
                self.expect(")")?;
                Ok(v)
            }
            Kind::Ident => {
                let name = text.to_ascii_lowercase();
                self.expect("(")?;
                let v = match name.as_str() {
                    "step" => self.step_s,
                    "range" => self.range_s,
                    "min_of" | "max_of" => {
                        let a = self.expr()?;
                        self.expect(",")?;
                        let b = self.expr()?;
                        if a.is_nan() || b.is_nan() {
                            f64::NAN
                        } else if name == "min_of" {
                            a.min(b)
                        } else {
                            a.max(b)
                        }
                    }
                    _ => return Err(format!("unknown function {text:?} in duration expression")),
                };
                self.expect(")")?;
                Ok(v)
            }
            _ => Err(format!("unexpected {text:?} in duration expression")),
        }
    }
}

/// True when a literal holds a number the parser cannot take (above u32::MAX).
fn has_huge_number(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| !run.is_empty() && run.parse::<u64>().map_or(true, |n| n > u64::from(u32::MAX)))
}

fn literal_seconds(text: &str) -> Option<f64> {
    let clean = text.replace('_', "");
    if let Ok(v) = clean.parse::<f64>() {
        return Some(v);
    }
    parse_prom_duration(text).map(|ms| ms as f64 / 1000.0)
}

/// A duration literal for `seconds`, in Prometheus units from years down to milliseconds
/// (`1y2d30s`), so that no single number gets large (promql-parser rejects millisecond
/// counts above u32::MAX).
fn format_ms(seconds: f64) -> Result<String, String> {
    if !seconds.is_finite() {
        return Err("duration expression is not finite".into());
    }
    let ms = (seconds * 1000.0).round();
    if ms.abs() > (1u64 << 52) as f64 {
        return Err("duration expression is out of range".into());
    }
    let ms = ms as i64;
    let mut rest = ms.unsigned_abs();
    let mut out = String::from(if ms < 0 { "-" } else { "" });
    if rest == 0 {
        out.push_str("0ms");
        return Ok(out);
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    for (unit, size) in UNITS {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    Ok(out)
}

fn significant(toks: &[Tok]) -> Vec<Tok> {
    toks.iter()
        .copied()
        .filter(|t| t.kind != Kind::Space)
        .collect()
}

/// Rewrites the query text before parsing (see the module docs).
pub fn rewrite(query: &str, step_ms: i64, range_ms: i64) -> Result<String, String> {
    let escaped = escape_raw_bytes(query)?;
    let folded = fold_durations(&escaped, step_ms, range_ms)?;
    move_modifiers(&folded)
}

fn escape_raw_bytes(q: &str) -> Result<String, String> {
    let toks = tokenize(q)?;
    let mut out = String::with_capacity(q.len());
    for t in toks {
        let text = &q[t.start..t.end];
        if t.kind != Kind::Str || text.starts_with('`') || !text.contains("\\x") {
            out.push_str(text);
            continue;
        }
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' && chars.get(i + 1) == Some(&'x') {
                let hex: String = chars.iter().skip(i + 2).take(2).collect();
                if let Ok(v) = u8::from_str_radix(&hex, 16) {
                    if v >= 0x80 && hex.len() == 2 {
                        out.push(
                            char::from_u32(RAW_BYTE_BASE + u32::from(v)).unwrap_or('\u{fffd}'),
                        );
                        i += 4;
                        continue;
                    }
                }
            }
            out.push(c);
            if c == '\\' {
                // Keep the escaped character with its backslash.
                if let Some(n) = chars.get(i + 1) {
                    out.push(*n);
                }
                i += 2;
                continue;
            }
            i += 1;
        }
    }
    Ok(out)
}

fn fold_durations(q: &str, step_ms: i64, range_ms: i64) -> Result<String, String> {
    let toks = tokenize(q)?;
    let sig = significant(&toks);
    let mut p = DurParser {
        q,
        toks: sig.clone(),
        pos: 0,
        step_s: step_ms as f64 / 1000.0,
        range_s: range_ms as f64 / 1000.0,
    };
    // Replacements as (start byte, end byte, text).
    let mut repl: Vec<(usize, usize, String)> = Vec::new();
    let mut depth_brace = 0;
    let mut i = 0;
    while i < sig.len() {
        let t = sig[i];
        let text = &q[t.start..t.end];
        match (t.kind, text) {
            (Kind::Punct, "{") => depth_brace += 1,
            (Kind::Punct, "}") => depth_brace -= 1,
            (Kind::Punct, "[") if depth_brace == 0 => {
                let Some(close) = (i + 1..sig.len()).find(|&j| &q[sig[j].start..sig[j].end] == "]")
                else {
                    return Ok(q.to_string());
                };
                let colon = (i + 1..close).find(|&j| &q[sig[j].start..sig[j].end] == ":");
                let parts = match colon {
                    Some(c) => vec![(i + 1, c), (c + 1, close)],
                    None => vec![(i + 1, close)],
                };
                for (a, b) in parts {
                    let single = b - a == 1 && sig[a].kind == Kind::Num;
                    if a >= b || (single && !has_huge_number(&q[sig[a].start..sig[a].end])) {
                        continue;
                    }
                    p.toks = sig[a..b].to_vec();
                    p.pos = 0;
                    let v = p.expr()?;
                    if p.pos != p.toks.len() {
                        return Err("unexpected token in duration expression".into());
                    }
                    repl.push((sig[a].start, sig[b - 1].end, format_ms(v)?));
                }
                i = close;
            }
            (Kind::Ident, kw)
                if depth_brace == 0 && kw.eq_ignore_ascii_case("offset") && i + 1 < sig.len() =>
            {
                // The offset takes one atom with an optional sign; what follows belongs to the
                // enclosing expression (`x offset 2 ^ 2` is `(x offset 2s) ^ 2`).
                let first = sig[i + 1];
                let first_text = &q[first.start..first.end];
                let simple = first.kind == Kind::Num;
                if !simple {
                    p.toks = sig[i + 1..].to_vec();
                    p.pos = 0;
                    let mut sign = 1.0;
                    while let Some(s) = p.peek() {
                        match s {
                            "-" => sign = -sign,
                            "+" => {}
                            _ => break,
                        }
                        p.pos += 1;
                    }
                    let v = sign * p.atom()?;
                    let last = sig[i + p.pos];
                    if format_ms(v)?.trim_start_matches('-') == "0ms" {
                        // A zero offset is no offset; the parser rejects `offset 0ms`.
                        repl.push((t.start, last.end, String::new()));
                    } else {
                        repl.push((first.start, last.end, format_ms(v)?));
                    }
                    i += p.pos;
                } else if first_text.parse::<f64>().is_ok() || has_huge_number(first_text) {
                    repl.push((
                        first.start,
                        first.end,
                        format_ms(literal_seconds(first_text).unwrap_or(0.0))?,
                    ));
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(apply(q, repl))
}

fn apply(q: &str, mut repl: Vec<(usize, usize, String)>) -> String {
    repl.sort_by_key(|r| r.0);
    let mut out = String::with_capacity(q.len());
    let mut last = 0;
    for (s, e, text) in repl {
        if s < last {
            continue;
        }
        out.push_str(&q[last..s]);
        out.push_str(&text);
        last = e;
    }
    out.push_str(&q[last..]);
    out
}

fn move_modifiers(q: &str) -> Result<String, String> {
    let toks = tokenize(q)?;
    let sig = significant(&toks);
    let txt = |t: &Tok| &q[t.start..t.end];
    let mut repl: Vec<(usize, usize, String)> = Vec::new();
    let mut depth_brace = 0;
    for (i, t) in sig.iter().enumerate() {
        if depth_brace == 0
            && t.kind == Kind::Ident
            && txt(t) == "info"
            && sig.get(i + 1).is_some_and(|n| txt(n) == "(")
        {
            if let Some(r) = mark_info_selector(q, &sig, i + 1) {
                repl.push(r);
            }
        }
        match txt(t) {
            "{" => depth_brace += 1,
            "}" => depth_brace -= 1,
            _ => {}
        }
        let word = txt(t);
        if depth_brace != 0
            || t.kind != Kind::Ident
            || !(word == "anchored" || word == "smoothed")
            || i == 0
        {
            continue;
        }
        let prev = txt(&sig[i - 1]);
        let after_expr = prev == "]"
            || prev == "}"
            || prev == ")"
            || sig[i - 1].kind == Kind::Ident
            || sig[i - 1].kind == Kind::Num;
        let keyword = [
            "by",
            "without",
            "on",
            "ignoring",
            "and",
            "or",
            "unless",
            "atan2",
            "bool",
            "group_left",
            "group_right",
            "offset",
        ];
        if !after_expr || keyword.iter().any(|k| prev.eq_ignore_ascii_case(k)) {
            continue;
        }
        // Walk back over `offset <d>`, `@ <t>` and `[range]` to the selector itself.
        let mut j = i - 1;
        let found = loop {
            let tj = txt(&sig[j]);
            if tj == "]" {
                let Some(open) = (0..j).rev().find(|&k| txt(&sig[k]) == "[") else {
                    break None;
                };
                if open == 0 {
                    break None;
                }
                j = open - 1;
                continue;
            }
            if tj == ")" && j >= 3 && txt(&sig[j - 1]) == "(" && txt(&sig[j - 3]) == "@" {
                j -= 4;
                continue;
            }
            if sig[j].kind == Kind::Num && j >= 1 {
                let mut k = j - 1;
                if matches!(txt(&sig[k]), "-" | "+") && k >= 1 {
                    k -= 1;
                }
                let kw = txt(&sig[k]);
                if (kw == "@" || kw.eq_ignore_ascii_case("offset")) && k >= 1 {
                    j = k - 1;
                    continue;
                }
                break None;
            }
            if tj == "}" {
                let Some(open) = (0..j).rev().find(|&k| txt(&sig[k]) == "{") else {
                    break None;
                };
                let empty = open + 1 == j;
                let ins = if empty {
                    format!("{MODIFIER_LABEL}=\"{word}\"")
                } else {
                    format!(", {MODIFIER_LABEL}=\"{word}\"")
                };
                break Some((sig[j].start, sig[j].start, ins));
            }
            if sig[j].kind == Kind::Ident {
                break Some((
                    sig[j].end,
                    sig[j].end,
                    format!("{{{MODIFIER_LABEL}=\"{word}\"}}"),
                ));
            }
            break None;
        };
        if let Some(r) = found {
            repl.push(r);
            repl.push((t.start, t.end, String::new()));
        }
    }
    Ok(apply(q, repl))
}

/// `info(v, {sel})`: Prometheus accepts a selector whose matchers all match the empty
/// string there; the parser does not, so a reserved matcher is added to it.
fn mark_info_selector(q: &str, sig: &[Tok], open: usize) -> Option<(usize, usize, String)> {
    let txt = |t: &Tok| &q[t.start..t.end];
    let mut depth = 0;
    let mut comma = None;
    for (k, t) in sig.iter().enumerate().skip(open) {
        match txt(t) {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "," if depth == 1 => {
                comma = Some(k);
                break;
            }
            _ => {}
        }
    }
    let c = comma?;
    if txt(sig.get(c + 1)?) != "{" {
        return None;
    }
    let close = (c + 2..sig.len()).find(|&k| txt(&sig[k]) == "}")?;
    let text = if close == c + 2 {
        format!("{MODIFIER_LABEL}=\"info\"")
    } else {
        format!(", {MODIFIER_LABEL}=\"info\"")
    };
    Some((sig[close].start, sig[close].start, text))
}

/// True when `s` is a usable label name: not empty and free of bytes that were not valid
/// UTF-8 in the query text.
pub fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c == '\u{fffd}' || (c as u32) >= RAW_BYTE_BASE + 0x80)
}

/// The text of a string whose raw bytes were carried as private-use characters, with those
/// bytes shown as U+FFFD (what a JSON encoder makes of invalid UTF-8).
pub fn display_raw(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xff).contains(&(c as u32)) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Go's `%q` of a string whose raw bytes were carried as private-use characters.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        let u = c as u32;
        if (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xff).contains(&u) {
            out.push_str(&format!("\\x{:02x}", u - RAW_BYTE_BASE));
        } else {
            out.push_str(&crate::storage::model::escape_label_value(&c.to_string()));
        }
    }
    out.push('"');
    out
}

/// The extended-range modifier of a selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeMode {
    Plain,
    Anchored,
    Smoothed,
}

pub fn selector_mode(vs: &promql_parser::parser::VectorSelector) -> RangeMode {
    for m in &vs.matchers.matchers {
        if m.name == MODIFIER_LABEL {
            return match m.value.as_str() {
                "anchored" => RangeMode::Anchored,
                "smoothed" => RangeMode::Smoothed,
                _ => RangeMode::Plain,
            };
        }
    }
    RangeMode::Plain
}

const ANCHORED_SAFE: [&str; 5] = ["changes", "delta", "increase", "rate", "resets"];
const SMOOTHED_SAFE: [&str; 3] = ["delta", "increase", "rate"];

/// Checks rules the parser does not know: which functions accept `anchored`/`smoothed`.
pub fn validate(expr: &Expr) -> Result<(), String> {
    match expr {
        Expr::Call(c) => {
            for a in &c.args.args {
                if let Expr::MatrixSelector(ms) = a.as_ref() {
                    let name = c.func.name;
                    match selector_mode(&ms.vs) {
                        RangeMode::Anchored if !ANCHORED_SAFE.contains(&name) => {
                            return Err(format!(
                                "anchored modifier can only be used with: {} - not with {name}",
                                ANCHORED_SAFE.join(", ")
                            ));
                        }
                        RangeMode::Smoothed if !SMOOTHED_SAFE.contains(&name) => {
                            return Err(format!(
                                "smoothed modifier can only be used with: {} - not with {name}",
                                SMOOTHED_SAFE.join(", ")
                            ));
                        }
                        _ => {}
                    }
                }
                validate(a)?;
            }
            Ok(())
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                validate(p)?;
            }
            validate(&a.expr)
        }
        Expr::Unary(u) => validate(&u.expr),
        Expr::Binary(b) => {
            validate(&b.lhs)?;
            validate(&b.rhs)
        }
        Expr::Paren(p) => validate(&p.expr),
        Expr::Subquery(s) => validate(&s.expr),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_duration_expressions() {
        assert_eq!(
            rewrite("changes(x[26m+4m])", 0, 0).unwrap(),
            "changes(x[30m])"
        );
        assert_eq!(rewrite("x[5m]", 0, 0).unwrap(), "x[5m]");
        assert_eq!(
            rewrite("x[5000000000ms]", 0, 0).unwrap(),
            "x[8w1d20h53m20s]"
        );
        assert_eq!(rewrite("x offset -1y", 0, 0).unwrap(), "x offset -1y");
        assert_eq!(
            rewrite("x[step()+1ms:1m]", 10_000, 0).unwrap(),
            "x[10s1ms:1m]"
        );
        assert_eq!(
            rewrite("x offset -step()*2", 5_000, 0).unwrap(),
            "x offset -5s*2"
        );
        assert_eq!(rewrite("x offset 2 ^ 2", 0, 0).unwrap(), "x offset 2s ^ 2");
        assert_eq!(rewrite(r#"x{a="[1+1]"}"#, 0, 0).unwrap(), r#"x{a="[1+1]"}"#);
        assert_eq!(
            rewrite(r#"x{a="\é\xc5"}"#, 0, 0).unwrap(),
            "x{a=\"\\é\u{10ffc5}\"}"
        );
    }

    #[test]
    fn moves_modifiers_into_selectors() {
        assert_eq!(
            rewrite("rate(x[1m] anchored)", 0, 0).unwrap(),
            r#"rate(x{__strata_mod__="anchored"}[1m] )"#
        );
        assert_eq!(
            rewrite(r#"x{a="b"} offset 5m smoothed"#, 0, 0).unwrap(),
            r#"x{a="b", __strata_mod__="smoothed"} offset 5m "#
        );
        assert_eq!(
            rewrite("x @ 100 smoothed", 0, 0).unwrap(),
            r#"x{__strata_mod__="smoothed"} @ 100 "#
        );
        assert_eq!(
            rewrite("anchored + smoothed", 0, 0).unwrap(),
            "anchored + smoothed"
        );
        assert_eq!(rewrite("x and smoothed", 0, 0).unwrap(), "x and smoothed");
        assert_eq!(
            rewrite("sum(x) by (anchored)", 0, 0).unwrap(),
            "sum(x) by (anchored)"
        );
    }
}
