//! Prometheus's value types for durations and byte sizes as they appear in a config file.
//! `PromDuration` follows `model.ParseDuration` of prometheus/common (units y, w, d, h, m, s,
//! ms, each at most once and in that order, plain `0` allowed) and prints like Prometheus
//! (`1h30m`, `0s`); `ByteSize` follows `units.ParseBase2Bytes` (KB = KiB = 1024 bytes).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a duration or size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty duration string")]
    EmptyDuration,
    #[error("not a valid duration string: {0:?}")]
    BadDuration(String),
    #[error("duration out of range: {0:?}")]
    DurationRange(String),
    #[error("invalid size {0:?}: expected a number with a unit like 10MB, 512KiB or 1GB")]
    BadSize(String),
}

pub type Result<T> = std::result::Result<T, UnitError>;

const MS_PER_SEC: u64 = 1000;
const MS_PER_MIN: u64 = 60 * MS_PER_SEC;
const MS_PER_HOUR: u64 = 60 * MS_PER_MIN;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: u64 = 365 * MS_PER_DAY;

/// The largest duration Go's `time.Duration` (int64 nanoseconds) can hold, in milliseconds:
/// Prometheus refuses anything longer, so do we.
const MAX_MS: u64 = (i64::MAX as u64) / 1_000_000;

/// A Prometheus duration with millisecond resolution. Zero means "unset" where Prometheus
/// inherits a value (a scrape config's interval and timeout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration {
    ms: u64,
}

impl PromDuration {
    pub const ZERO: PromDuration = PromDuration { ms: 0 };

    pub const fn from_millis(ms: u64) -> Self {
        PromDuration { ms }
    }

    pub const fn from_secs(s: u64) -> Self {
        PromDuration { ms: s * MS_PER_SEC }
    }

    pub const fn from_mins(m: u64) -> Self {
        PromDuration { ms: m * MS_PER_MIN }
    }

    pub const fn from_hours(h: u64) -> Self {
        PromDuration {
            ms: h * MS_PER_HOUR,
        }
    }

    pub const fn from_days(d: u64) -> Self {
        PromDuration { ms: d * MS_PER_DAY }
    }

    pub const fn as_millis(&self) -> u64 {
        self.ms
    }

    pub const fn is_zero(&self) -> bool {
        self.ms == 0
    }

    pub const fn as_std(&self) -> Duration {
        Duration::from_millis(self.ms)
    }
}

impl From<PromDuration> for Duration {
    fn from(d: PromDuration) -> Duration {
        d.as_std()
    }
}

/// One `<digits><unit>` group, checked for order and repetition as Prometheus's regex
/// `^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$` does.
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

impl FromStr for PromDuration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "0" => return Ok(PromDuration::ZERO),
            "" => return Err(UnitError::EmptyDuration),
            _ => {}
        }
        let bad = || UnitError::BadDuration(s.to_string());
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
            let range = || UnitError::DurationRange(s.to_string());
            let n: u64 = digits.parse().map_err(|_| range())?;
            let part = n.checked_mul(mult).ok_or_else(range)?;
            total = total.checked_add(part).ok_or_else(range)?;
            if total > MAX_MS {
                return Err(range());
            }
        }
        Ok(PromDuration { ms: total })
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.ms;
        if ms == 0 {
            return f.write_str("0s");
        }
        // Years and weeks only when exact: "90d" reads better than "12w6d".
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
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A byte size in Prometheus's base-2 units; zero means "no limit".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const SIZE_PREFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];

/// Multiplier for a unit, either all in the `KiB` style or all in the legacy `KB` style
/// (`units.ParseBase2Bytes` tries one map, then the other, never a mix).
fn size_unit(unit: &str, legacy: bool) -> Option<u64> {
    if unit == "B" {
        return Some(1);
    }
    let suffix = if legacy { "B" } else { "iB" };
    let prefix = unit.strip_suffix(suffix)?;
    let exp = SIZE_PREFIXES
        .iter()
        .position(|p| !p.is_empty() && *p == prefix)?;
    1024u64.checked_pow(exp as u32)
}

fn parse_size_with(s: &str, legacy: bool) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.is_empty() {
        return None;
    }
    let bytes = body.as_bytes();
    let mut pos = 0;
    let mut total: f64 = 0.0;
    while pos < bytes.len() {
        let num_start = pos;
        while pos < bytes.len() && (bytes[pos].is_ascii_digit() || bytes[pos] == b'.') {
            pos += 1;
        }
        let num = &body[num_start..pos];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let unit_start = pos;
        while pos < bytes.len() && !(bytes[pos].is_ascii_digit() || bytes[pos] == b'.') {
            pos += 1;
        }
        let mult = size_unit(&body[unit_start..pos], legacy)?;
        let value: f64 = num.parse().ok()?;
        total += value * mult as f64;
    }
    if !total.is_finite() || total > i64::MAX as f64 {
        return None;
    }
    Some(total as u64)
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self> {
        parse_size_with(s, false)
            .or_else(|| parse_size_with(s, true))
            .map(ByteSize)
            .ok_or_else(|| UnitError::BadSize(s.to_string()))
    }
}

impl fmt::Display for ByteSize {
    /// Largest exact unit, in the `KiB` style `units.Base2Bytes` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        let mut exp = 0;
        let mut v = self.0;
        while exp + 1 < SIZE_PREFIXES.len() && v.is_multiple_of(1024) {
            v /= 1024;
            exp += 1;
        }
        if exp == 0 {
            write!(f, "{v}B")
        } else {
            write!(f, "{v}{}iB", SIZE_PREFIXES[exp])
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<u64> {
        s.parse::<PromDuration>().map(|d| d.as_millis())
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
    }

    #[test]
    fn durations_refused_like_prometheus() {
        assert_eq!(d(""), Err(UnitError::EmptyDuration));
        for bad in [
            "1", "1.5s", "30m1h", "1s1s", "1S", "-1s", "1 s", "s", "1h ", "1ns", "1us", "1hh",
        ] {
            assert!(
                matches!(d(bad), Err(UnitError::BadDuration(_))),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(d("300y"), Err(UnitError::DurationRange(_))));
        assert!(matches!(
            d("99999999999999999999999s"),
            Err(UnitError::DurationRange(_))
        ));
        assert_eq!(d("292y"), Ok(292 * MS_PER_YEAR));
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
        ] {
            assert_eq!(PromDuration::from_millis(ms).to_string(), want);
        }
    }

    #[test]
    fn sizes_parse_in_base2_units() {
        let p = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("10MB"), Ok(10 * 1024 * 1024));
        assert_eq!(p("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(p("1KB"), Ok(1024));
        assert_eq!(p("1.5KB"), Ok(1536));
        assert_eq!(p("100B"), Ok(100));
        assert_eq!(p("1GB512MB"), Ok(1024 * 1024 * 1024 + 512 * 1024 * 1024));
        for bad in ["", "10", "10mb", "10 MB", "MB", "1KiB1KB", "1.2.3MB", "1kB"] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(ByteSize(10 * 1024 * 1024).to_string(), "10MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }
}
