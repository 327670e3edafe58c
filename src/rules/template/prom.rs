//! The value work behind Prometheus 2.42's template functions: `convertToFloat`, the
//! `humanize*` family, timestamps (`toTime`, `humanizeTimestamp`, Go's `Time.String`),
//! `title`/`toUpper`/`toLower`, `stripPort`/`stripDomain` (Go's `net.SplitHostPort`), the
//! external URL's path, and Go's wording of regexp errors.

use super::fmt::{format_float_v, format_g, quote};
use super::value::Value;

/// Prometheus's `convertToFloat`.
pub(crate) fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s),
        v => Err(format!("can't convert {} to float", v.type_name())),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text and the special values.
pub(crate) fn parse_go_float(s: &str) -> Result<f64, String> {
    let bad = |what: &str| format!("strconv.ParseFloat: parsing {}: {what}", quote(s));
    // Go accepts underscores between digits (`1_000`).
    let b = s.as_bytes();
    let underscores_ok = b.iter().enumerate().all(|(i, c)| {
        *c != b'_'
            || (i > 0 && i + 1 < b.len() && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit())
    });
    if !underscores_ok {
        return Err(bad("invalid syntax"));
    }
    let cleaned = s.replace('_', "");
    let s_orig = s;
    let s = cleaned.as_str();
    let bad = |what: &str| format!("strconv.ParseFloat: parsing {}: {what}", quote(s_orig));
    let body = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    let special = matches!(body.as_str(), "inf" | "infinity" | "nan");
    if !special
        && !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
    {
        return Err(bad("invalid syntax"));
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_infinite() && !special => Err(bad("value out of range")),
        Ok(v) => Ok(v),
        Err(_) => Err(bad("invalid syntax")),
    }
}

pub(crate) fn scale(
    mut v: f64,
    up: bool,
    base: f64,
    prefixes: &[&'static str],
) -> (f64, &'static str) {
    let mut prefix = "";
    for p in prefixes {
        if (up && v.abs() < base) || (!up && v.abs() >= 1.0) {
            break;
        }
        prefix = p;
        if up {
            v /= base;
        } else {
            v *= base;
        }
    }
    (v, prefix)
}

pub(crate) const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

pub(crate) fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    let (v, p) = if v.abs() >= 1.0 {
        scale(v, true, 1000.0, &["k", "M", "G", "T", "P", "E", "Z", "Y"])
    } else {
        scale(v, false, 1000.0, &SMALL)
    };
    format!("{}{p}", format_g(v, 4))
}

pub(crate) fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    let (v, p) = scale(
        v,
        true,
        1024.0,
        &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"],
    );
    format!("{}{p}", format_g(v, 4))
}

pub(crate) fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        // Go on amd64 turns an out-of-range float into the minimum int64; copy that.
        let d = if v >= 9.223372036854776e18 {
            i64::MIN
        } else {
            v as i64
        };
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", format_g(v, 4));
    }
    let (v, p) = scale(v, false, 1000.0, &SMALL);
    format!("{}{p}s", format_g(v, 4))
}

/// Prometheus's `floatToTime`: seconds to a time at millisecond precision.
pub(crate) fn float_to_time(v: f64) -> Result<(i64, u32), String> {
    let ns = v * 1e9;
    if !(-9.223372036854776e18..9.223372036854776e18).contains(&ns) {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float_v(v)
        ));
    }
    let ms = (ns as i64) / 1_000_000;
    let mut secs = ms / 1000;
    let mut nanos = (ms % 1000) * 1_000_000;
    if nanos < 0 {
        secs -= 1;
        nanos += 1_000_000_000;
    }
    Ok((secs, nanos as u32))
}

/// Go's `time.Time.String()` of a UTC time: `2015-06-23 13:19:44.128 +0000 UTC`.
pub(crate) fn go_time_string(secs: i64, nanos: u32) -> String {
    let (y, mo, d) = crate::time::civil_from_days(secs.div_euclid(86400));
    let sod = secs.rem_euclid(86400);
    let mut s = if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    };
    s.push_str(&format!(
        "-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    ));
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Methods of `*time.Time` a template may call without arguments.
pub(crate) fn time_method(name: &str, secs: i64, nanos: u32) -> Option<Value> {
    let n = i64::from(nanos);
    Some(match name {
        "Unix" => Value::Int(secs),
        "UnixMilli" => Value::Int(secs * 1000 + n / 1_000_000),
        "UnixMicro" => Value::Int(secs * 1_000_000 + n / 1000),
        "UnixNano" => Value::Int(secs.saturating_mul(1_000_000_000).saturating_add(n)),
        "String" => Value::Str(go_time_string(secs, nanos)),
        "Nanosecond" => Value::Int(n),
        "Second" => Value::Int(secs.rem_euclid(60)),
        "Minute" => Value::Int(secs.rem_euclid(3600) / 60),
        "Hour" => Value::Int(secs.rem_euclid(86400) / 3600),
        "Day" => Value::Int(i64::from(
            crate::time::civil_from_days(secs.div_euclid(86400)).2,
        )),
        "Year" => Value::Int(crate::time::civil_from_days(secs.div_euclid(86400)).0),
        _ => return None,
    })
}

pub(crate) fn title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_sep(prev) { one_upper(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

pub(crate) fn one_upper(c: char) -> char {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// Go's `strings.ToUpper`/`ToLower`: one rune for one rune.
pub(crate) fn map_chars(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            if upper {
                one_upper(c)
            } else {
                let mut l = c.to_lowercase();
                match (l.next(), l.next()) {
                    (Some(x), None) => x,
                    _ => c,
                }
            }
        })
        .collect()
}

/// Go's `net.SplitHostPort`.
pub(crate) fn split_host_port(hp: &str) -> Option<(String, String)> {
    let i = hp.rfind(':')?;
    let (host, j, k) = if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        (hp[1..end].to_string(), 1, end + 1)
    } else {
        let host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        (host.to_string(), 0, 0)
    };
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, hp[i + 1..].to_string()))
}

pub(crate) fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or_else(|| (hp.to_string(), String::new()));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or_default().to_string();
    if port.is_empty() {
        return host;
    }
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(crate) fn url_path(u: &str) -> String {
    let rest = match u.find("://") {
        Some(i) => &u[i + 3..],
        None => return u.split(['?', '#']).next().unwrap_or_default().to_string(),
    };
    match rest.find('/') {
        Some(i) => rest[i..]
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    }
}

pub(crate) fn backquote(s: &str) -> String {
    if s.contains('`') || s.chars().any(|c| c.is_control() && c != '\t') {
        quote(s)
    } else {
        format!("`{s}`")
    }
}
