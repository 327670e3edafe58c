//! Which aggregate a selector reads over downsampled data, chosen from the PromQL function or
//! aggregation operator that encloses it (Prometheus's `hints.Func`: `None` for a bare
//! selector or one under a binary operator). Thanos's `aggrsFromFunc`, with the fixes listed
//! in the module doc of `storage::downsample` (`count_over_time`, `resets`, `changes`,
//! `count_values`). Names are matched exactly, not by prefix.

use super::aggr::AggrType;

/// How a series' chunks become samples for one selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Read {
    /// One aggregate's per-window samples as stored; raw chunks as they are.
    Aggregate(AggrType),
    /// The window mean, sum ÷ count; raw chunks as they are.
    Average,
    /// The reset-corrected running total of the counter aggregate; raw chunks corrected too.
    Counter,
    /// Raw samples per window: the count aggregate, and 1 for each raw sample. The enclosing
    /// `count_over_time` must be evaluated as `sum_over_time` over these samples.
    SampleCount,
}

impl Read {
    /// The aggregates this read needs from an `AggrChunk` (what a store sends).
    pub fn aggregates(self) -> Vec<AggrType> {
        match self {
            Read::Aggregate(a) => vec![a],
            Read::Average => vec![AggrType::Count, AggrType::Sum],
            Read::Counter => vec![AggrType::Counter],
            Read::SampleCount => vec![AggrType::Count],
        }
    }
}

/// The read for a selector under `func` (module doc table).
pub fn read_for(func: Option<&str>) -> Read {
    match func.unwrap_or("") {
        "min" | "min_over_time" | "resets" => Read::Aggregate(AggrType::Min),
        "max" | "max_over_time" => Read::Aggregate(AggrType::Max),
        "sum_over_time" => Read::Aggregate(AggrType::Sum),
        "count" => Read::Aggregate(AggrType::Count),
        "count_over_time" => Read::SampleCount,
        "rate" | "increase" | "irate" | "xrate" | "xincrease" => Read::Counter,
        // `changes`, `count_values`, plain `sum`, `avg`, the other `*_over_time`, bare
        // selectors: values matter and only the mean describes a window as a whole.
        _ => Read::Average,
    }
}

/// The aggregates a selector under `func` needs: `read_for(func).aggregates()`.
pub fn aggregates_for(func: Option<&str>) -> Vec<AggrType> {
    read_for(func).aggregates()
}

/// A warning for functions whose answer over downsampled data only approximates the raw one
/// in a way a user would not guess (module doc); `None` for the others.
pub fn approximation_note(func: Option<&str>) -> Option<&'static str> {
    match func? {
        "resets" => Some(
            "resets() over downsampled data counts drops of the per-window minimum: resets \
             less than a window apart count once",
        ),
        "changes" => Some(
            "changes() over downsampled data counts changes between window averages, not \
             between raw samples",
        ),
        _ => None,
    }
}
