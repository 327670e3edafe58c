//! Prometheus's value types for durations and byte sizes as they appear in a config file.
//! `PromDuration` follows `model.ParseDuration` of prometheus/common (units y, w, d, h, m, s,
//! ms, each at most once and in that order, plain `0` allowed) and prints like Prometheus
//! (`1h30m`, `0s`), both through `crate::gocompat`; `ByteSize` follows
//! `units.ParseBase2Bytes` (KB = KiB = 1024 bytes).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::gocompat::{self, DurationError};

/// Why a duration or size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Empty, malformed or longer than Go's `time.Duration`.
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error("invalid size {0:?}: expected a number with a unit like 10MB, 512KiB or 1GB")]
    BadSize(String),
}

pub type Result<T> = std::result::Result<T, UnitError>;

const MS_PER_SEC: u64 = 1000;
const MS_PER_MIN: u64 = 60 * MS_PER_SEC;
const MS_PER_HOUR: u64 = 60 * MS_PER_MIN;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;

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

impl FromStr for PromDuration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(PromDuration {
            ms: gocompat::parse_duration(s)?,
        })
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        gocompat::write_duration(f, self.ms)
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
    fn durations_parse_and_print_through_gocompat() {
        // The grammar's own known-answer tests live in `crate::gocompat`.
        assert_eq!(d("0"), Ok(0));
        assert_eq!(d("1h30m"), Ok(5_400_000));
        assert_eq!(d("1y2w3d4h5m6s7ms"), Ok(33_019_506_007));
        assert_eq!(d(""), Err(UnitError::Duration(DurationError::Empty)));
        assert_eq!(
            d("30m1h"),
            Err(UnitError::Duration(DurationError::Invalid("30m1h".into())))
        );
        assert!(matches!(
            d("300y"),
            Err(UnitError::Duration(DurationError::OutOfRange(_)))
        ));
        // The texts themselves are gocompat's (tested there); the config keeps them as they are.
        assert_eq!(d("").unwrap_err().to_string(), "empty duration string");
        for (ms, want) in [(0, "0s"), (5_400_000, "1h30m"), (90 * 86_400_000, "90d")] {
            assert_eq!(PromDuration::from_millis(ms).to_string(), want);
        }
    }

    #[test]
    fn durations_round_trip_through_serde() {
        let d: PromDuration = serde_json::from_str("\"1d1ms\"").unwrap();
        assert_eq!(d.as_millis(), 86_400_001);
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1d1ms\"");
        let e = serde_json::from_str::<PromDuration>("\"1x\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("not a valid duration string: \"1x\""),
            "{e}"
        );
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
