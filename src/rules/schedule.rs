//! When a rule group evaluates: Prometheus 2.42's slotting (`rules/manager.go`
//! `Group.hash`, `Group.EvalTimestamp`, `Group.run`). Every group gets a fixed offset inside
//! its interval from a hash of its file and name, so groups spread over the interval and a
//! group evaluates at the same phase on every Prometheus (and every RuleEvaluator) that loads
//! it. The loop evaluates once per tick at the slotted timestamp; ticks that come late skip
//! the slots they missed (counted, never caught up). Pure arithmetic on nanoseconds since the
//! Unix epoch.

use std::time::Duration;

use xxhash_rust::xxh64::xxh64;

/// Why a schedule cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("rule group interval must be positive")]
    ZeroInterval,
    #[error("rule group interval {0:?} is too long")]
    IntervalTooLong(Duration),
}

pub type Result<T> = std::result::Result<T, ScheduleError>;

/// `labels.Labels{file=<file>, name=<name>}.Hash()`: xxhash64 of each label (sorted by name)
/// as `name \xff value \xff`.
pub fn group_hash(file: &str, name: &str) -> u64 {
    let mut b = Vec::with_capacity(file.len() + name.len() + 12);
    for (n, v) in [("file", file), ("name", name)] {
        b.extend_from_slice(n.as_bytes());
        b.push(0xff);
        b.extend_from_slice(v.as_bytes());
        b.push(0xff);
    }
    xxh64(&b, 0)
}

/// One group's slotting: its interval and its offset inside it, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    interval_ns: i64,
    offset_ns: i64,
}

impl Schedule {
    /// The schedule of group `name` of rule file `file` (the path as written in `rule_files`
    /// after glob expansion, which is what Prometheus hashes).
    pub fn new(file: &str, name: &str, interval: Duration) -> Result<Schedule> {
        let interval_ns = i64::try_from(interval.as_nanos())
            .map_err(|_| ScheduleError::IntervalTooLong(interval))?;
        if interval_ns <= 0 {
            return Err(ScheduleError::ZeroInterval);
        }
        // Go converts the u64 remainder back to int64; it is below the interval, so exact.
        let offset_ns = (group_hash(file, name) % interval_ns as u64) as i64;
        Ok(Schedule {
            interval_ns,
            offset_ns,
        })
    }

    pub fn interval_ns(&self) -> i64 {
        self.interval_ns
    }

    /// The group's phase inside its interval.
    pub fn offset(&self) -> Duration {
        Duration::from_nanos(self.offset_ns as u64)
    }

    /// `EvalTimestamp`: the latest slot at or before `now_ns`. Go's `%` truncates toward
    /// zero, and so does Rust's, so times before the epoch slot the same way too.
    pub fn slot(&self, now_ns: i64) -> i64 {
        let adj = now_ns.wrapping_sub(self.offset_ns);
        let base = adj - adj % self.interval_ns;
        base.wrapping_add(self.offset_ns)
    }

    /// The first evaluation of a group started at `start_ns`: the slot after the current one.
    pub fn first_eval(&self, start_ns: i64) -> i64 {
        self.slot(start_ns).saturating_add(self.interval_ns)
    }

    /// What a tick at `now_ns` does after the evaluation at `last_eval_ns`: how many slots
    /// were missed (`(now-last)/interval - 1`, at least 0) and the timestamp to evaluate at
    /// (`last + (missed+1)*interval`). Prometheus evaluates once at that timestamp.
    pub fn next_tick(&self, last_eval_ns: i64, now_ns: i64) -> Tick {
        let elapsed = now_ns.saturating_sub(last_eval_ns);
        let missed = elapsed / self.interval_ns - 1;
        // A negative `missed` (an early tick) is not counted, but still moves by (missed+1)
        // intervals as Go's code does: 0 when the tick comes less than an interval late.
        let eval_ns = last_eval_ns.saturating_add((missed + 1).saturating_mul(self.interval_ns));
        Tick {
            missed: missed.max(0) as u64,
            eval_ns,
        }
    }
}

/// The outcome of one loop tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Added to `prometheus_rule_group_iterations_missed_total` (and `_total`).
    pub missed: u64,
    /// The slotted timestamp of this tick's evaluation.
    pub eval_ns: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    /// Observed on Prometheus 2.42: `rules.yml`/`g1` at 5s evaluates at `…:59.151810036Z`.
    #[test]
    fn verified_offset_of_rules_yml_g1() {
        let s = Schedule::new("rules.yml", "g1", Duration::from_secs(5)).unwrap();
        assert_eq!(s.offset(), Duration::from_nanos(4_151_810_036));
    }

    #[test]
    fn hash_bytes_are_file_then_name() {
        assert_eq!(
            group_hash("f", "n"),
            xxh64(b"file\xfff\xffname\xffn\xff", 0)
        );
    }

    #[test]
    fn slot_and_first_eval() {
        let s = Schedule::new("rules.yml", "g1", Duration::from_secs(5)).unwrap();
        let off = 4_151_810_036;
        let now = 1_796_609_457_000_000_000;
        assert_eq!(s.slot(now) % 5_000_000_000, off);
        assert!(s.slot(now) <= now && now - s.slot(now) < 5_000_000_000);
        assert_eq!(s.first_eval(now), s.slot(now) + 5_000_000_000);
        assert!(s.first_eval(now) > now);
    }

    #[test]
    fn ticks_skip_missed_slots() {
        let s = Schedule::new("f", "g", Duration::from_secs(10)).unwrap();
        let i = 10_000_000_000;
        assert_eq!(
            s.next_tick(0, i + 5),
            Tick {
                missed: 0,
                eval_ns: i
            }
        );
        assert_eq!(
            s.next_tick(0, 3 * i + 5),
            Tick {
                missed: 2,
                eval_ns: 3 * i
            }
        );
    }

    #[test]
    fn zero_interval_is_an_error() {
        assert_eq!(
            Schedule::new("f", "g", Duration::ZERO),
            Err(ScheduleError::ZeroInterval)
        );
    }

    proptest! {
        #[test]
        fn slot_is_at_or_before_now_and_on_phase(
            file in ".{0,20}", name in ".{0,20}",
            interval_ms in 1u64..3_600_000,
            now in 0i64..4_000_000_000_000_000_000,
        ) {
            let s = Schedule::new(&file, &name, Duration::from_millis(interval_ms)).unwrap();
            let slot = s.slot(now);
            prop_assert!(slot <= now);
            prop_assert!(now - slot < s.interval_ns());
            prop_assert_eq!((slot - s.offset().as_nanos() as i64) % s.interval_ns(), 0);
        }
    }
}
