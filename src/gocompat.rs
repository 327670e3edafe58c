//! Go-compatible text for numbers and durations, so what Strata prints and accepts matches
//! Prometheus and promtool byte for byte:
//!
//! * floats: `strconv.FormatFloat(v, 'f', -1, 64)` ([`format_float`], the Prometheus API's
//!   sample values and float label values), `strconv.FormatFloat(v, 'g', -1, 64)` / `%g`
//!   ([`format_float_g`], promtool's dump) and `strconv.ParseFloat` as Prometheus's
//!   exposition parsers use it ([`parse_float`]), all with Prometheus's `+Inf`/`-Inf`/`NaN`;
//! * Prometheus durations (`model.ParseDuration`, `model.Duration.String`: `1h30m`, `90d`),
//!   [`parse_duration`] and [`format_duration`];
//! * Go's `time.Duration.String` ([`format_go_duration_ms`]: `1h46m25.006s`);
//! * Go's `strconv.Quote` ([`go_quote`], the `%q` of error messages, promtool's output and
//!   templates), with Go's idea of a printable character approximated by [`is_print`].
//!
//! A leaf module: it imports nothing from the crate, so every layer (storage included) may use
//! it.

use std::fmt;

/// The bits of Go's `math.NaN()`, which `strconv.ParseFloat("NaN")` returns and Prometheus
/// stores for every parsed NaN (so a parsed value is never the staleness marker).
pub const GO_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` (shortest digits that round-trip, never an
/// exponent) with Prometheus's `+Inf`, `-Inf` and `NaN`: `0.0000001`, `1700000000`, `-0`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's shortest round-trip positional form is exactly Go's 'f' with precision -1.
        format!("{v}")
    }
}

/// Go's text for NaN and the infinities, `None` for a finite number.
fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        None
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: the shortest round-trip digits with an
/// exponent of at least two digits and a sign (`1e+00`, `2.5e-01`), `NaN`, `+Inf`, `-Inf`.
pub fn format_float_e(v: f64) -> String {
    if let Some(s) = non_finite(v) {
        return s.into();
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, i.e. `%g` (shortest digits that round-trip,
/// an exponent of at least two digits below 1e-4 and from 1e+06 on) with `+Inf`, `-Inf` and
/// `NaN`: `1.7e+09`, `123456`, `1e-05`.
pub fn format_float_g(v: f64) -> String {
    if let Some(s) = non_finite(v) {
        return s.into();
    }
    // Rust's `{:e}` yields the shortest round-trip digits: "-1.2345e-7".
    let e = format!("{v:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((e.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        // %e form with at least two exponent digits.
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
        return out;
    }
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Go's `strconv.ParseFloat` as Prometheus's exposition parsers (`textparse`) use it: decimal
/// notation or Inf/Infinity/NaN in any case (a sign only on infinities), no hex, no `_`, and an
/// out-of-range number is an error rather than an infinity. NaN has [`GO_NAN_BITS`].
pub fn parse_float(s: &str) -> Option<f64> {
    // Most values are small integers: below 10^15 they convert exactly, so the digits can be
    // summed directly instead of going through the general decimal parser.
    if !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(s.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) as f64);
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::from_bits(GO_NAN_BITS));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_finite() {
        Some(v)
    } else {
        None
    }
}

/// Go's `time.Duration(ms * 1e6).String()`: `0s`, `500ms`, `1.5s`, `1m40.001s`, `2h0m0s`.
pub fn format_go_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let abs = ms.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if abs < 1000 {
        out.push_str(&format!("{abs}ms"));
        return out;
    }
    let h = abs / 3_600_000;
    let m = (abs / 60_000) % 60;
    let s = (abs / 1000) % 60;
    let frac = abs % 1000;
    if h > 0 {
        out.push_str(&format!("{h}h{m}m"));
    } else if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&s.to_string());
    if frac > 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('s');
    out
}

const MS_PER_SEC: u64 = 1000;
const MS_PER_MIN: u64 = 60 * MS_PER_SEC;
const MS_PER_HOUR: u64 = 60 * MS_PER_MIN;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: u64 = 365 * MS_PER_DAY;

/// The longest duration Go's `time.Duration` (int64 nanoseconds) holds, in milliseconds:
/// `model.ParseDuration` refuses anything longer.
pub const MAX_DURATION_MS: u64 = (i64::MAX as u64) / 1_000_000;

/// Why a Prometheus duration was refused; the texts are the ones Strata has always printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    /// Not `[0-9]+unit` groups with units y, w, d, h, m, s, ms, each at most once, in order.
    Invalid(String),
    /// Longer than the limit (a group's number or the running total).
    OutOfRange(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("empty duration string"),
            DurationError::Invalid(s) => write!(f, "not a valid duration string: {s:?}"),
            DurationError::OutOfRange(s) => write!(f, "duration out of range: {s:?}"),
        }
    }
}

impl std::error::Error for DurationError {}

/// One `<digits><unit>` group's unit: its rank (units must appear in rank order, each at most
/// once, as Prometheus's regex `^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$`
/// requires) and its length in milliseconds.
fn unit_rank(unit: &str) -> Option<(usize, u64)> {
    match unit {
        "y" => Some((0, MS_PER_YEAR)),
        "w" => Some((1, MS_PER_WEEK)),
        "d" => Some((2, MS_PER_DAY)),
        "h" => Some((3, MS_PER_HOUR)),
        "m" => Some((4, MS_PER_MIN)),
        "s" => Some((5, MS_PER_SEC)),
        "ms" => Some((6, 1)),
        _ => None,
    }
}

/// Prometheus's `model.ParseDuration`, in milliseconds: `1h30m`, `5m`, `100ms`, `1d`, `1w`,
/// `1y`, or a plain `0`. Longer than Go's `time.Duration` is out of range.
pub fn parse_duration(s: &str) -> Result<u64, DurationError> {
    parse_duration_up_to(s, MAX_DURATION_MS)
}

/// [`parse_duration`] with another upper bound in milliseconds (the PromQL side accepts
/// anything that fits an `i64` of milliseconds). The text is read left to right: a group
/// with a bad unit is [`DurationError::Invalid`], and the first group that takes the total
/// past `max_ms` is [`DurationError::OutOfRange`].
pub fn parse_duration_up_to(s: &str, max_ms: u64) -> Result<u64, DurationError> {
    match s {
        "0" => return Ok(0),
        "" => return Err(DurationError::Empty),
        _ => {}
    }
    let bad = || DurationError::Invalid(s.to_string());
    let range = || DurationError::OutOfRange(s.to_string());
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut next_rank = 0;
    let mut total: u64 = 0;
    while pos < bytes.len() {
        let digits_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == digits_start {
            return Err(bad());
        }
        let digits = &s[digits_start..pos];
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let (rank, mult) = unit_rank(&s[unit_start..pos]).ok_or_else(bad)?;
        if rank < next_rank {
            return Err(bad());
        }
        next_rank = rank + 1;
        let n: u64 = digits.parse().map_err(|_| range())?;
        let part = n.checked_mul(mult).ok_or_else(range)?;
        total = total.checked_add(part).ok_or_else(range)?;
        if total > max_ms {
            return Err(range());
        }
    }
    Ok(total)
}

/// Prometheus's `model.Duration.String` of `ms` milliseconds: `0s`, `15s`, `1h30m`, `1d1ms`;
/// years and weeks only when they divide the whole duration (`90d`, not `12w6d`).
pub fn format_duration(ms: u64) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_duration(&mut out, ms);
    out
}

/// [`format_duration`] into a formatter or other writer, without an intermediate string.
pub fn write_duration(w: &mut impl fmt::Write, mut ms: u64) -> fmt::Result {
    if ms == 0 {
        return w.write_str("0s");
    }
    let units: [(&str, u64, bool); 7] = [
        ("y", MS_PER_YEAR, true),
        ("w", MS_PER_WEEK, true),
        ("d", MS_PER_DAY, false),
        ("h", MS_PER_HOUR, false),
        ("m", MS_PER_MIN, false),
        ("s", MS_PER_SEC, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in units {
        if exact && !ms.is_multiple_of(mult) {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            write!(w, "{v}{unit}")?;
            ms -= v * mult;
        }
    }
    Ok(())
}

/// Go's `strconv.Quote`: `s` in double quotes, with Go's escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        go_escape_char(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`, approximated without Unicode category tables: the ASCII space,
/// and anything that is neither a control, nor white space, nor one of the format and
/// private-use characters Go treats as unprintable (soft hyphen, zero-width and
/// bidirectional marks, the byte-order mark, ...).
pub fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let n = c as u32;
    let format_char = matches!(n,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
            | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb
            | 0xe000..=0xf8ff | 0xf0000..=0x10ffff);
    !(c.is_control() || c.is_whitespace() || format_char)
}

/// Appends `c` as Go's `strconv` quoting writes it inside quotes `q` (`"` or `'`).
pub fn go_escape_char(out: &mut String, c: char, q: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == q => {
            out.push('\\');
            out.push(c);
        }
        c if is_print(c) => out.push(c),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f_floats_like_go() {
        for (v, want) in [
            (1.0, "1"),
            (0.0, "0"),
            (-0.0, "-0"),
            (14.0, "14"),
            (2.5, "2.5"),
            (1e-7, "0.0000001"),
            (1700000000.0, "1700000000"),
            (1e21, "1000000000000000000000"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_float(v), want, "{v:?}");
        }
    }

    #[test]
    fn g_floats_like_go() {
        let cases = [
            (1.0, "1"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e300, "1e+300"),
            (-2.5e-310, "-2.5e-310"),
            (0.1, "0.1"),
            (20.123456789, "20.123456789"),
            (1700000000.0, "1.7e+09"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (5e-324, "5e-324"),
            (100000.0, "100000"),
            (-1e300, "-1e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float_g(v), want, "{v:?}");
        }
    }

    #[test]
    fn parse_float_grammar() {
        for (s, want) in [
            ("1", Some(1.0)),
            ("-1.5e-3", Some(-1.5e-3)),
            ("Inf", Some(f64::INFINITY)),
            ("+inf", Some(f64::INFINITY)),
            ("-Infinity", Some(f64::NEG_INFINITY)),
            ("1e-400", Some(0.0)),
            ("123456789012345", Some(123_456_789_012_345.0)),
            ("1.", Some(1.0)),
            (".5", Some(0.5)),
            ("+1", Some(1.0)),
        ] {
            assert_eq!(parse_float(s), want, "{s}");
        }
        assert!(parse_float("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_float("NaN").map(f64::to_bits), Some(GO_NAN_BITS));
        for s in [
            "", ".", "e5", "1e", "0x1p-2", "1_0", "-nan", "+NaN", "1e309", "infx", "1.2.3", " 1",
            "0x10",
        ] {
            assert_eq!(parse_float(s), None, "{s:?}");
        }
    }

    #[test]
    fn go_durations() {
        for (ms, want) in [
            (6385006, "1h46m25.006s"),
            (45501, "45.501s"),
            (100001, "1m40.001s"),
            (7_200_000, "2h0m0s"),
            (500, "500ms"),
            (1500, "1.5s"),
            (0, "0s"),
            (-1500, "-1.5s"),
            (1_010, "1.01s"),
        ] {
            assert_eq!(format_go_duration_ms(ms), want, "{ms}");
        }
    }

    fn d(s: &str) -> Result<u64, DurationError> {
        parse_duration(s)
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(d("0"), Ok(0));
        assert_eq!(d("15s"), Ok(15_000));
        assert_eq!(d("100ms"), Ok(100));
        assert_eq!(d("1h30m"), Ok(5_400_000));
        assert_eq!(d("1d"), Ok(86_400_000));
        assert_eq!(d("1w"), Ok(604_800_000));
        assert_eq!(d("1y"), Ok(31_536_000_000));
        assert_eq!(
            d("1y2w3d4h5m6s7ms"),
            Ok(31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_400_000 + 300_000 + 6_000 + 7)
        );
        assert_eq!(d("0s"), Ok(0));
        assert_eq!(d("00m"), Ok(0));
    }

    #[test]
    fn durations_refused_like_prometheus() {
        assert_eq!(d(""), Err(DurationError::Empty));
        for bad in [
            "1", "1.5s", "30m1h", "1s1s", "1S", "-1s", "1 s", "s", "1h ", "1ns", "1us", "1hh",
            "1s0", "1é",
        ] {
            assert_eq!(d(bad), Err(DurationError::Invalid(bad.into())), "{bad:?}");
        }
        assert!(matches!(d("300y"), Err(DurationError::OutOfRange(_))));
        assert!(matches!(
            d("99999999999999999999999s"),
            Err(DurationError::OutOfRange(_))
        ));
        // Read left to right: the out-of-range group is reported before the bad one.
        assert!(matches!(d("300y1x"), Err(DurationError::OutOfRange(_))));
        assert_eq!(d("292y"), Ok(292 * MS_PER_YEAR));
        assert_eq!(d(&format!("{MAX_DURATION_MS}ms")), Ok(MAX_DURATION_MS));
        assert!(d(&format!("{}ms", MAX_DURATION_MS + 1)).is_err());
    }

    #[test]
    fn duration_errors_read_like_before() {
        assert_eq!(DurationError::Empty.to_string(), "empty duration string");
        assert_eq!(
            d("soon").unwrap_err().to_string(),
            "not a valid duration string: \"soon\""
        );
        assert_eq!(
            d("300y").unwrap_err().to_string(),
            "duration out of range: \"300y\""
        );
    }

    #[test]
    fn duration_bound_is_a_parameter() {
        let i64_max = i64::MAX as u64;
        assert_eq!(parse_duration_up_to("300y", i64_max), Ok(300 * MS_PER_YEAR));
        assert_eq!(
            parse_duration_up_to("9223372036854775807ms", i64_max),
            Ok(i64_max)
        );
        assert!(parse_duration_up_to("9223372036854775808ms", i64_max).is_err());
        assert!(parse_duration_up_to("106751991167301d", i64_max).is_err());
    }

    #[test]
    fn durations_print_like_prometheus() {
        for (ms, want) in [
            (0, "0s"),
            (15_000, "15s"),
            (5_400_000, "1h30m"),
            (90 * MS_PER_DAY, "90d"),
            (2 * MS_PER_WEEK, "2w"),
            (MS_PER_YEAR, "1y"),
            (MS_PER_DAY + 1, "1d1ms"),
            (MS_PER_YEAR + MS_PER_DAY, "366d"),
            (1_500, "1s500ms"),
        ] {
            assert_eq!(format_duration(ms), want, "{ms}");
            if ms != 0 {
                assert_eq!(parse_duration(want), Ok(ms), "{want}");
            }
        }
    }

    #[test]
    fn format_float_e_is_gos_e_verb() {
        assert_eq!(format_float_e(1.0), "1e+00");
        assert_eq!(format_float_e(0.25), "2.5e-01");
        assert_eq!(format_float_e(12345.0), "1.2345e+04");
        assert_eq!(format_float_e(1e-300), "1e-300");
        assert_eq!(format_float_e(0.0), "0e+00");
        assert_eq!(format_float_e(f64::NAN), "NaN");
        assert_eq!(format_float_e(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(go_quote("\u{1}\u{7f}é"), "\"\\x01\\x7fé\"");
        // Unprintable to Go: C1 controls, no-break space, soft hyphen, BOM, private use.
        assert_eq!(
            go_quote("\u{85}\u{a0}\u{ad}\u{feff}\u{e000}"),
            "\"\\u0085\\u00a0\\u00ad\\ufeff\\ue000\""
        );
        assert_eq!(go_quote("\u{10ffff}"), "\"\\U0010ffff\"");
        assert_eq!(go_quote("日本 ✓"), "\"日本 ✓\"");
    }
}
