//! Literals of the template language as Go reads them: quoted strings, raw strings and
//! characters (`strconv.Unquote`) and numbers (`parse.newNumber`: which of int, uint and float a
//! literal can be, with Go's `integer overflow` and `illegal number syntax` errors).

use super::lex::ItemType;
use super::node::Number;

/// Go's `strconv.Unquote` for the three literal forms the lexer produces.
pub(crate) fn unquote(s: &str) -> Option<String> {
    if let Some(raw) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Some(raw.replace('\r', ""));
    }
    let quote = s.chars().next()?;
    let body = s.strip_prefix(quote)?.strip_suffix(quote)?;
    if s.len() < 2 {
        return None;
    }
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    let mut bytes: Vec<u8> = Vec::new();
    let flush = |bytes: &mut Vec<u8>, out: &mut String| {
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(bytes));
            bytes.clear();
        }
    };
    while let Some(c) = chars.next() {
        if c == quote || (c == '\n') {
            return None;
        }
        if c != '\\' {
            flush(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '\'' if quote == '\'' => Some('\''),
            '"' if quote == '"' => Some('"'),
            _ => None,
        };
        if let Some(c) = simple {
            flush(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        match e {
            'x' => {
                let h: String = (0..2).filter_map(|_| chars.next()).collect();
                let b = u8::from_str_radix(&h, 16).ok().filter(|_| h.len() == 2)?;
                bytes.push(b);
            }
            '0'..='7' => {
                let mut o = String::from(e);
                for _ in 0..2 {
                    o.push(chars.next()?);
                }
                let v = u32::from_str_radix(&o, 8).ok()?;
                bytes.push(u8::try_from(v).ok()?);
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let h: String = (0..n).filter_map(|_| chars.next()).collect();
                if h.len() != n {
                    return None;
                }
                let c = char::from_u32(u32::from_str_radix(&h, 16).ok()?)?;
                flush(&mut bytes, &mut out);
                out.push(c);
            }
            _ => return None,
        }
    }
    flush(&mut bytes, &mut out);
    if quote == '\'' && out.chars().count() != 1 {
        return None;
    }
    Some(out)
}

fn strip_underscores(s: &str) -> Option<String> {
    if s.contains('_') {
        if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
            return None;
        }
        return Some(s.replace('_', ""));
    }
    Some(s.to_string())
}

/// Go's `strconv.ParseUint(s, 0, 64)` (no sign).
fn parse_uint0(s: &str) -> Option<u64> {
    let s = strip_underscores(s)?;
    let lower = s.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h.to_string(), 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o.to_string(), 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b.to_string(), 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (lower[1..].to_string(), 8)
    } else {
        (lower, 10)
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

fn parse_go_float(s: &str) -> Option<f64> {
    let s = strip_underscores(s)?;
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    let lower = body.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        let (mant, exp) = h.split_once('p')?;
        let exp: i32 = exp.parse().ok()?;
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        let mut v = 0f64;
        for c in ip.chars().chain(fp.chars()) {
            v = v * 16.0 + f64::from(c.to_digit(16)?);
        }
        v * 2f64.powi(exp - 4 * i32::try_from(fp.len()).ok()?)
    } else {
        if lower.is_empty()
            || !lower
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
        {
            return None;
        }
        lower.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Go's `parse.newNumber`: which of int, uint and float a literal can be.
pub(crate) fn new_number(text: &str, typ: ItemType) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        is_int: false,
        int: 0,
        is_uint: false,
        is_float: false,
        float: 0.0,
    };
    if typ == ItemType::CharConstant {
        let c = unquote(text)
            .and_then(|s| s.chars().next())
            .ok_or_else(|| format!("malformed character constant: {text}"))?;
        let v = u32::from(c);
        n.is_int = true;
        n.int = i64::from(v);
        n.is_uint = true;
        n.is_float = true;
        n.float = f64::from(v);
        return Ok(n);
    }
    if typ == ItemType::Complex || text.ends_with('i') {
        return Err(format!(
            "complex constants are not supported: {}",
            super::fmt::quote(text)
        ));
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let u = parse_uint0(body);
    if !neg {
        if let Some(u) = u {
            n.is_uint = true;
            let _ = u;
        }
    }
    if let Some(u) = u {
        let i = if neg {
            if u <= 1u64 << 63 {
                Some((u as i128).wrapping_neg() as i64)
            } else {
                None
            }
        } else {
            i64::try_from(u).ok()
        };
        if let Some(i) = i {
            n.is_int = true;
            n.int = i;
            if i == 0 {
                n.is_uint = true;
            }
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = u.unwrap_or(0) as f64;
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", super::fmt::quote(text)));
        }
        n.is_float = true;
        n.float = f;
        if f.fract() == 0.0 && (-9.223372036854776e18..9.223372036854776e18).contains(&f) {
            n.is_int = true;
            n.int = f as i64;
        }
        if f.fract() == 0.0 && (0.0..1.8446744073709552e19).contains(&f) {
            n.is_uint = true;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!(
            "illegal number syntax: {}",
            super::fmt::quote(text)
        ));
    }
    Ok(n)
}
