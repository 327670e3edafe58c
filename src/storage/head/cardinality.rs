//! The head's cardinality figures behind `/api/v1/status/tsdb`: series and chunk counts, and
//! Prometheus's four top-N lists (series per metric name, values per label name, bytes of
//! label values per label name, series per label pair); and per-series footprints (chunk
//! bytes and samples) behind the cluster-wide cardinality report. Computed on demand by one
//! pass over the series, so nothing is maintained on the append path.

use std::cmp::Reverse;

use rustc_hash::{FxHashMap, FxHashSet};

use super::series::MemSeries;
use super::Head;
use crate::storage::chunkenc::declared_samples;
use crate::storage::model::{Labels, Matcher};

/// What one head series costs within a time range: the bytes of its XOR chunks overlapping
/// the range (the open chunk as encoded so far) and the samples they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesFootprint {
    pub labels: Labels,
    pub bytes: u64,
    pub samples: u64,
    /// First and last sample time (ms) of those chunks.
    pub first: i64,
    pub last: i64,
}

/// One entry of a top-N list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub name: String,
    pub value: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadCardinality {
    pub num_series: u64,
    /// Distinct `name=value` pairs.
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    /// `i64::MAX` / `i64::MIN` when the head is empty, as Prometheus shows them.
    pub min_time: i64,
    pub max_time: i64,
    pub series_count_by_metric_name: Vec<Stat>,
    pub label_value_count_by_label_name: Vec<Stat>,
    pub memory_in_bytes_by_label_name: Vec<Stat>,
    pub series_count_by_label_value_pair: Vec<Stat>,
}

impl Head {
    /// The cardinality figures with the `top` largest entries of each list.
    pub fn cardinality(&self, top: usize) -> HeadCardinality {
        let mut pairs: FxHashMap<(String, String), u64> = FxHashMap::default();
        let mut num_series = 0u64;
        let mut chunk_count = 0u64;
        for s in self.all_series() {
            num_series += 1;
            {
                let data = s.data.lock();
                chunk_count += data.closed.len() as u64 + u64::from(data.open.is_some());
            }
            for (name, value) in s.labels.iter() {
                *pairs
                    .entry((name.to_string(), value.to_string()))
                    .or_default() += 1;
            }
        }
        let mut values_per_name: FxHashMap<&str, u64> = FxHashMap::default();
        let mut bytes_per_name: FxHashMap<&str, u64> = FxHashMap::default();
        let mut by_metric = Vec::new();
        let mut by_pair = Vec::with_capacity(pairs.len());
        for ((name, value), series) in &pairs {
            *values_per_name.entry(name).or_default() += 1;
            *bytes_per_name.entry(name).or_default() += value.len() as u64 * series;
            if name == "__name__" {
                by_metric.push(stat(value, *series));
            }
            by_pair.push(stat(&format!("{name}={value}"), *series));
        }
        let collect = |m: FxHashMap<&str, u64>| m.into_iter().map(|(n, v)| stat(n, v)).collect();
        HeadCardinality {
            num_series,
            num_label_pairs: pairs.len() as u64,
            chunk_count,
            min_time: self.min_time(),
            max_time: self.max_time(),
            series_count_by_metric_name: top_n(by_metric, top),
            label_value_count_by_label_name: top_n(collect(values_per_name), top),
            memory_in_bytes_by_label_name: top_n(collect(bytes_per_name), top),
            series_count_by_label_value_pair: top_n(by_pair, top),
        }
    }
}

impl Head {
    /// Footprints of the series matching any of `selectors` (every series when there are
    /// none) with chunks overlapping `[mint, maxt]` (inclusive ms).
    pub fn footprints(
        &self,
        selectors: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Vec<SeriesFootprint> {
        let series: Vec<std::sync::Arc<MemSeries>> = if selectors.is_empty() {
            self.all_series()
        } else {
            let mut seen = FxHashSet::default();
            selectors
                .iter()
                .flat_map(|sel| self.matching_series(sel))
                .filter(|s| seen.insert(s.series_ref))
                .collect()
        };
        series
            .iter()
            .filter_map(|s| footprint(s, mint, maxt))
            .collect()
    }
}

fn footprint(s: &MemSeries, mint: i64, maxt: i64) -> Option<SeriesFootprint> {
    let d = s.data.lock();
    let (mut bytes, mut samples, mut first, mut last) = (0u64, 0u64, i64::MAX, i64::MIN);
    for c in d
        .closed
        .iter()
        .filter(|c| c.max_time >= mint && c.min_time <= maxt)
    {
        bytes += c.data.len() as u64;
        samples += declared_samples(c) as u64;
        first = first.min(c.min_time);
        last = last.max(c.max_time);
    }
    if let Some(app) = d.open.as_ref() {
        if let (Some(min), Some(max)) = (app.min_time(), app.max_time()) {
            if max >= mint && min <= maxt {
                bytes += app.bytes().len() as u64;
                samples += app.num_samples() as u64;
                first = first.min(min);
                last = last.max(max);
            }
        }
    }
    (samples > 0 || bytes > 0).then(|| SeriesFootprint {
        labels: s.labels.to_labels(),
        bytes,
        samples,
        first,
        last,
    })
}

fn stat(name: &str, value: u64) -> Stat {
    Stat {
        name: name.to_string(),
        value,
    }
}

/// Largest first; equal values by name so the answer is stable.
fn top_n(mut stats: Vec<Stat>, n: usize) -> Vec<Stat> {
    stats.sort_by(|a, b| (Reverse(a.value), &a.name).cmp(&(Reverse(b.value), &b.name)));
    stats.truncate(n);
    stats
}

#[cfg(test)]
mod tests {
    use super::super::HeadOptions;
    use super::*;
    use crate::storage::model::Labels;

    #[test]
    fn counts_series_pairs_and_bytes_like_prometheus() {
        let head = Head::new(HeadOptions::default(), None);
        let mut app = head.appender();
        for (name, job, t) in [("up", "a", 1), ("up", "bb", 1), ("x_total", "a", 2)] {
            let l = Labels::from_pairs([("__name__", name), ("job", job)]);
            app.append(0, &l, t, 1.0).unwrap();
        }
        app.commit().unwrap();
        let c = head.cardinality(10);
        assert_eq!(c.num_series, 3);
        assert_eq!(c.num_label_pairs, 4);
        assert_eq!(c.chunk_count, 3);
        assert_eq!((c.min_time, c.max_time), (1, 2));
        assert_eq!(
            c.series_count_by_metric_name,
            vec![stat("up", 2), stat("x_total", 1)]
        );
        assert_eq!(
            c.label_value_count_by_label_name,
            vec![stat("__name__", 2), stat("job", 2)]
        );
        // __name__: 2*"up" + 1*"x_total" = 4 + 7; job: 2*"a" + 1*"bb" = 2 + 2.
        assert_eq!(
            c.memory_in_bytes_by_label_name,
            vec![stat("__name__", 11), stat("job", 4)]
        );
        assert_eq!(
            c.series_count_by_label_value_pair[0],
            stat("__name__=up", 2)
        );
        assert_eq!(
            head.cardinality(1).series_count_by_label_value_pair.len(),
            1
        );
    }

    #[test]
    fn footprints_follow_selectors_and_the_time_range() {
        let head = Head::new(HeadOptions::default(), None);
        let mut app = head.appender();
        for t in 0..10 {
            for job in ["a", "b"] {
                let l = Labels::from_pairs([("__name__", "up"), ("job", job)]);
                app.append(0, &l, t * 1000, 1.0).unwrap();
            }
        }
        app.commit().unwrap();
        let all = head.footprints(&[], 0, 100_000);
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|f| f.samples == 10 && f.bytes > 0));
        assert!(all.iter().all(|f| (f.first, f.last) == (0, 9000)));
        let a = vec![Matcher::equal("job", "a")];
        let one = head.footprints(&[a.clone(), a], 0, 100_000);
        assert_eq!(
            one.len(),
            1,
            "two selectors naming one series count it once"
        );
        assert_eq!(one[0].labels.get("job"), Some("a"));
        assert!(head.footprints(&[], 20_000, 30_000).is_empty());
    }

    #[test]
    fn an_empty_head_shows_prometheus_sentinels() {
        let c = Head::new(HeadOptions::default(), None).cardinality(10);
        assert_eq!((c.num_series, c.chunk_count), (0, 0));
        assert_eq!((c.min_time, c.max_time), (i64::MAX, i64::MIN));
        assert!(c.series_count_by_label_value_pair.is_empty());
    }
}
