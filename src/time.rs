//! Wall-clock time for the whole crate: the current unix time in milliseconds, conversions
//! between `SystemTime` and unix milliseconds, civil (proleptic Gregorian, UTC) dates, RFC 3339
//! text in the precisions Strata prints and reads, and a [`Clock`] that code can take instead
//! of reading the system clock, so tests can drive time with a [`ManualClock`].
//!
//! A leaf module: it imports nothing from the crate, so every layer may use it. Times before
//! 1970 are supported everywhere (negative milliseconds); no time zone database is needed
//! because everything is UTC.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_MS: i128 = 1_000_000;
const NANOS_PER_SEC: i128 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Milliseconds since the unix epoch, now (negative if the system clock reads before 1970).
pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// The time elapsed since the unix epoch, or zero for a time before it.
pub fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

/// Signed nanoseconds since the unix epoch.
fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Unix milliseconds of `t`, rounded towards negative infinity (so 1 ns before the epoch is
/// -1), saturating at the ends of `i64`.
pub fn unix_ms(t: SystemTime) -> i64 {
    let ms = unix_nanos(t).div_euclid(NANOS_PER_MS);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The `SystemTime` of a unix-milliseconds timestamp.
pub fn from_unix_ms(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// Civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01 (negative before).
/// Howard Hinnant's `civil_from_days`, exact over the whole `i64` day range used here.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (month 1-12, day 1-31); the inverse of
/// [`civil_from_days`]. Out-of-range days or months are not checked.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether `y` is a leap year of the proleptic Gregorian calendar.
pub fn is_leap_year(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// How many digits of the second's fraction RFC 3339 text carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fraction {
    None,
    Millis,
    Nanos,
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.fffffffff]Z` for `secs` seconds and `nanos` (< 1e9) since the
/// epoch. Years below 1000 are zero-padded to four digits, years above 9999 printed in full.
fn write_rfc3339(secs: i64, nanos: u32, fraction: Fraction) -> String {
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    );
    match fraction {
        Fraction::None => {}
        Fraction::Millis => out.push_str(&format!(".{:03}", nanos / 1_000_000)),
        Fraction::Nanos => out.push_str(&format!(".{nanos:09}")),
    }
    out.push('Z');
    out
}

/// Seconds (floored) and the nanoseconds past them of `t`.
fn split(t: SystemTime) -> (i64, u32) {
    let n = unix_nanos(t);
    let secs = n.div_euclid(NANOS_PER_SEC);
    let secs = i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX });
    (secs, n.rem_euclid(NANOS_PER_SEC) as u32)
}

/// RFC 3339 with millisecond precision of a unix-milliseconds timestamp, UTC:
/// `2023-11-14T22:14:05.501Z` (Strata's role status `started_at`).
pub fn format_rfc3339_millis(ms: i64) -> String {
    let nanos = ms.rem_euclid(1000) as u32 * 1_000_000;
    write_rfc3339(ms.div_euclid(1000), nanos, Fraction::Millis)
}

/// RFC 3339 with millisecond precision (truncated): `2023-11-14T22:14:05.501Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let (secs, nanos) = split(t);
    write_rfc3339(secs, nanos, Fraction::Millis)
}

/// RFC 3339 in whole seconds (truncated): `2023-11-14T22:14:05Z`. The same text as
/// `humantime::format_rfc3339_seconds` for the years 1970-9999.
pub fn rfc3339_seconds(t: SystemTime) -> String {
    let (secs, _) = split(t);
    write_rfc3339(secs, 0, Fraction::None)
}

/// RFC 3339 with all nine fraction digits: `2023-11-14T22:14:05.501000000Z`. The same text
/// as `humantime::format_rfc3339_nanos` for the years 1970-9999.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let (secs, nanos) = split(t);
    write_rfc3339(secs, nanos, Fraction::Nanos)
}

/// RFC 3339 with nine fraction digits, or none for a whole second: what
/// `humantime::format_rfc3339` prints for the years 1970-9999.
pub fn rfc3339_nanos_or_seconds(t: SystemTime) -> String {
    let (secs, nanos) = split(t);
    let fraction = if nanos == 0 {
        Fraction::None
    } else {
        Fraction::Nanos
    };
    write_rfc3339(secs, nanos, fraction)
}

/// Go's `time.RFC3339Nano` of unix nanoseconds `ns` in UTC: the fraction with trailing zeros
/// trimmed, none for a whole second (`2026-12-07T02:10:59.15181Z`), as Prometheus's rules
/// API prints `lastEvaluation` and `activeAt`.
pub fn go_rfc3339_nano(ns: i64) -> String {
    let secs = ns.div_euclid(NANOS_PER_SEC as i64);
    let nanos = ns.rem_euclid(NANOS_PER_SEC as i64) as u32;
    if nanos == 0 {
        return write_rfc3339(secs, 0, Fraction::None);
    }
    let full = write_rfc3339(secs, nanos, Fraction::Nanos);
    // `…SS.fffffffffZ`: trim the fraction's trailing zeros.
    let body = full.trim_end_matches('Z').trim_end_matches('0');
    format!("{body}Z")
}

/// Parses RFC 3339 as the Prometheus API accepts it, to unix milliseconds:
/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` with `T`/`t` and `Z`/`z`, the fraction truncated to
/// milliseconds. `None` for anything else.
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let padded: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = padded.parse().ok()?;
    }
    let tz = s.get(i..)?;
    let offset_min = match tz {
        "Z" | "z" => 0,
        _ => {
            let tb = tz.as_bytes();
            if tb.len() != 6 || tb[3] != b':' || (tb[0] != b'+' && tb[0] != b'-') {
                return None;
            }
            let oh: i64 = tz.get(1..3)?.parse().ok()?;
            let om: i64 = tz.get(4..6)?.parse().ok()?;
            let sign = if tb[0] == b'-' { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * SECS_PER_DAY + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

/// A source of wall-clock time. Code that reads the time through a `Clock` (usually an
/// `Arc<dyn Clock>`) can be driven by a [`ManualClock`] in tests; production passes
/// [`SystemClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in unix milliseconds (see [`unix_ms`]).
    fn now_ms(&self) -> i64 {
        unix_ms(self.now())
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl SystemClock {
    /// A shareable handle to the system clock, for code that holds an `Arc<dyn Clock>`.
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to: `set` and `advance` it from a test while the code
/// under test reads it through an `Arc` (it is `Send + Sync`).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// A clock reading the unix-milliseconds time `ms`.
    pub fn at_ms(ms: i64) -> Self {
        ManualClock::new(from_unix_ms(ms))
    }

    /// The same, wrapped for sharing with the code under test.
    pub fn shared_at_ms(ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock::at_ms(ms))
    }

    fn lock(&self) -> MutexGuard<'_, SystemTime> {
        // A panic while holding the lock cannot leave a `SystemTime` half-written.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the clock read `t` (which may be earlier than now).
    pub fn set(&self, t: SystemTime) {
        *self.lock() = t;
    }

    /// Makes the clock read the unix-milliseconds time `ms`.
    pub fn set_ms(&self, ms: i64) {
        self.set(from_unix_ms(ms));
    }

    /// Moves the clock forward by `d` and returns the new time.
    pub fn advance(&self, d: Duration) -> SystemTime {
        let mut now = self.lock();
        *now += d;
        *now
    }

    /// Moves the clock forward by `ms` milliseconds and returns the new unix-ms time.
    pub fn advance_ms(&self, ms: u64) -> i64 {
        unix_ms(self.advance(Duration::from_millis(ms)))
    }
}

impl Default for ManualClock {
    /// A clock reading the unix epoch.
    fn default() -> Self {
        ManualClock::new(UNIX_EPOCH)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(1_700_000_045_501),
            "2023-11-14T22:14:05.501Z"
        );
        assert_eq!(
            format_rfc3339_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339_millis(253_402_300_799_999),
            "9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn leap_years_and_month_ends() {
        // 1900 is not a leap year, 2000 is, 2024 is, 2100 is not.
        let day =
            |y: i64, m: i64, d: i64| format_rfc3339_millis(days_from_civil(y, m, d) * 86_400_000);
        assert_eq!(day(1900, 3, 1), "1900-03-01T00:00:00.000Z");
        assert_eq!(
            days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28),
            1
        );
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28),
            1
        );
        assert_eq!(day(2024, 2, 29), "2024-02-29T00:00:00.000Z");
        assert_eq!(day(2023, 12, 31), "2023-12-31T00:00:00.000Z");
        assert!(is_leap_year(2000) && is_leap_year(2024));
        assert!(!is_leap_year(1900) && !is_leap_year(2100) && !is_leap_year(2023));
        // The day after 2024-02-28 23:59:59.999 is the 29th.
        assert_eq!(
            format_rfc3339_millis(days_from_civil(2024, 2, 29) * 86_400_000 - 1),
            "2024-02-28T23:59:59.999Z"
        );
    }

    #[test]
    fn civil_days_round_trip_including_before_1970() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(
            format_rfc3339_millis(-86_400_000 * 365),
            "1969-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(days_from_civil(1600, 2, 29) * 86_400_000 + 1),
            "1600-02-29T00:00:00.001Z"
        );
    }

    #[test]
    fn system_time_precisions() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_045, 501_002_003);
        assert_eq!(rfc3339_seconds(t), "2023-11-14T22:14:05Z");
        assert_eq!(rfc3339_millis(t), "2023-11-14T22:14:05.501Z");
        assert_eq!(rfc3339_nanos(t), "2023-11-14T22:14:05.501002003Z");
        assert_eq!(
            rfc3339_nanos_or_seconds(t),
            "2023-11-14T22:14:05.501002003Z"
        );
        let whole = UNIX_EPOCH + Duration::from_secs(1_700_000_045);
        assert_eq!(rfc3339_nanos(whole), "2023-11-14T22:14:05.000000000Z");
        assert_eq!(rfc3339_nanos_or_seconds(whole), "2023-11-14T22:14:05Z");
        assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        // Before the epoch: floored, not mirrored.
        let before = UNIX_EPOCH - Duration::new(0, 1);
        assert_eq!(rfc3339_nanos(before), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339_millis(before), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_seconds(before), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn same_text_as_humantime_where_humantime_formats() {
        let mut t = UNIX_EPOCH;
        for step in 0..2_000u64 {
            // Spread over 1970..2200 with assorted sub-second parts.
            t += Duration::new(
                3_600 * 24 * 41 + step * 7_919,
                (step * 104_729 % 1_000_000_000) as u32,
            );
            assert_eq!(
                rfc3339_nanos(t),
                humantime::format_rfc3339_nanos(t).to_string()
            );
            assert_eq!(
                rfc3339_seconds(t),
                humantime::format_rfc3339_seconds(t).to_string()
            );
            assert_eq!(
                rfc3339_millis(t),
                humantime::format_rfc3339_millis(t).to_string()
            );
            assert_eq!(
                rfc3339_nanos_or_seconds(t),
                humantime::format_rfc3339(t).to_string()
            );
        }
        let whole = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(
            rfc3339_nanos_or_seconds(whole),
            humantime::format_rfc3339(whole).to_string()
        );
    }

    #[test]
    fn unix_ms_conversions() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_045, 501_999_999);
        assert_eq!(unix_ms(t), 1_700_000_045_501);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::new(0, 1)), -1);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_millis(1500)), -1500);
        assert_eq!(unix_ms(from_unix_ms(-1500)), -1500);
        assert_eq!(unix_ms(from_unix_ms(1_700_000_000_123)), 1_700_000_000_123);
        assert_eq!(
            since_epoch(UNIX_EPOCH - Duration::from_secs(1)),
            Duration::ZERO
        );
        assert_eq!(since_epoch(from_unix_ms(1500)), Duration::from_millis(1500));
        let before = unix_ms(SystemTime::now());
        let now = now_ms();
        assert!(now >= before && now - before < 60_000, "{before} {now}");
    }

    #[test]
    fn parses_rfc3339_like_the_prometheus_api() {
        assert_eq!(
            parse_rfc3339_millis("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2023-11-14T23:13:20.250+01:00"),
            Some(1_700_000_000_250)
        );
        assert_eq!(
            parse_rfc3339_millis("2023-11-14t22:13:20.1234z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_rfc3339_millis("1969-12-31T23:59:59.999Z"), Some(-1));
        for bad in [
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-14T22:13:20Z",
            "2023-11-14T24:13:20Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
        for ms in [0, 1_700_000_045_501, -1, 951_782_400_000] {
            assert_eq!(parse_rfc3339_millis(&format_rfc3339_millis(ms)), Some(ms));
        }
    }

    #[test]
    fn manual_clock_is_driven_by_the_test_and_shared() {
        let clock = ManualClock::shared_at_ms(1_700_000_000_000);
        let as_dyn: Arc<dyn Clock> = clock.clone();
        assert_eq!(as_dyn.now_ms(), 1_700_000_000_000);
        assert_eq!(clock.advance_ms(1500), 1_700_000_001_500);
        assert_eq!(as_dyn.now_ms(), 1_700_000_001_500);
        clock.set_ms(-5);
        assert_eq!(as_dyn.now_ms(), -5);
        clock.set(UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(
            clock.advance(Duration::from_millis(1)),
            from_unix_ms(10_001)
        );
        let reader = {
            let c = as_dyn.clone();
            std::thread::spawn(move || c.now_ms())
        };
        assert_eq!(reader.join().unwrap(), 10_001);
        assert_eq!(ManualClock::default().now_ms(), 0);
    }

    #[test]
    fn system_clock_reads_the_system_time() {
        let c = SystemClock::shared();
        let a = unix_ms(SystemTime::now());
        let b = c.now_ms();
        assert!(b >= a && b - a < 60_000, "{a} {b}");
    }

    #[test]
    fn go_rfc3339_nano_trims_the_fraction() {
        assert_eq!(go_rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            go_rfc3339_nano(1_796_609_459_151_810_036),
            "2026-12-07T02:10:59.151810036Z"
        );
        assert_eq!(
            go_rfc3339_nano(1_796_609_459_150_000_000),
            "2026-12-07T02:10:59.15Z"
        );
    }
}
