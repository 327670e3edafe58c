//! The output of a recording rule, as Prometheus 2.42's `rules/recording.go` `Eval` builds
//! it: every sample of the query result gets `__name__` set to the rule's name, then each
//! rule label is set over the sample's labels (an empty value deletes the label); a scalar
//! result is one sample with only these labels. Two output samples with the same label set,
//! or more samples than the group's `limit`, fail the rule and nothing is written. Pure: the
//! query runs elsewhere, the caller appends what this returns.

use std::collections::{BTreeMap, HashSet};

use crate::promql::VectorSample;
use crate::storage::model::{Label, Labels, METRIC_NAME};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    #[error("vector contains metrics with the same labelset after applying rule labels")]
    DuplicateLabelset,
    #[error("exceeded limit of {limit} with {series} series")]
    LimitExceeded { limit: i64, series: usize },
    /// A matrix or string result.
    #[error("rule result is not a vector or scalar")]
    NotVectorOrScalar,
}

pub type Result<T> = std::result::Result<T, RecordingError>;

/// What the rule's query returned, as far as a rule cares.
#[derive(Debug, Clone, Copy)]
pub enum RuleQueryResult<'a> {
    Vector(&'a [VectorSample]),
    Scalar(f64),
    /// A range vector or a string.
    Other,
}

/// The samples recording rule `name` writes at `ts_ms` for `result`, in result order.
/// `limit` ≤ 0 means no limit.
pub fn record(
    name: &str,
    rule_labels: &BTreeMap<String, String>,
    result: RuleQueryResult<'_>,
    ts_ms: i64,
    limit: i64,
) -> Result<Vec<VectorSample>> {
    let scalar;
    let samples: &[VectorSample] = match result {
        RuleQueryResult::Vector(v) => v,
        RuleQueryResult::Scalar(v) => {
            scalar = [VectorSample {
                labels: Labels::empty(),
                t: ts_ms,
                v,
            }];
            &scalar
        }
        RuleQueryResult::Other => return Err(RecordingError::NotVectorOrScalar),
    };
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        let mut pairs: Vec<Label> = s.labels.iter().cloned().collect();
        set_label(&mut pairs, METRIC_NAME, name);
        for (k, v) in rule_labels {
            set_label(&mut pairs, k, v);
        }
        out.push(VectorSample {
            labels: Labels::new(pairs),
            t: s.t,
            v: s.v,
        });
    }
    let mut seen = HashSet::with_capacity(out.len());
    for s in &out {
        if !seen.insert(&s.labels) {
            return Err(RecordingError::DuplicateLabelset);
        }
    }
    if limit > 0 && out.len() as u64 > limit as u64 {
        return Err(RecordingError::LimitExceeded {
            limit,
            series: out.len(),
        });
    }
    Ok(out)
}

/// `labels.Builder.Set`: replaces `name`, or deletes it when `value` is empty.
pub(crate) fn set_label(pairs: &mut Vec<Label>, name: &str, value: &str) {
    pairs.retain(|l| l.name != name);
    if !value.is_empty() {
        pairs.push(Label::new(name, value));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sample(pairs: &[(&str, &str)], v: f64) -> VectorSample {
        VectorSample {
            labels: Labels::from_pairs(pairs.iter().copied()),
            t: 1000,
            v,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renames_and_overrides_labels() {
        let input = [sample(
            &[("__name__", "up"), ("job", "a"), ("drop", "x")],
            1.0,
        )];
        let out = record(
            "job:up",
            &labels(&[("job", "b"), ("drop", ""), ("new", "n")]),
            RuleQueryResult::Vector(&input),
            1000,
            0,
        )
        .unwrap();
        assert_eq!(
            out[0].labels,
            Labels::from_pairs([("__name__", "job:up"), ("job", "b"), ("new", "n")])
        );
        assert_eq!((out[0].t, out[0].v), (1000, 1.0));
    }

    #[test]
    fn scalar_is_one_sample() {
        let out = record(
            "s",
            &labels(&[("a", "b")]),
            RuleQueryResult::Scalar(2.5),
            7,
            0,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].labels,
            Labels::from_pairs([("__name__", "s"), ("a", "b")])
        );
        assert_eq!((out[0].t, out[0].v), (7, 2.5));
    }

    #[test]
    fn duplicate_after_labels_is_an_error() {
        let input = [sample(&[("job", "a")], 1.0), sample(&[("job", "b")], 2.0)];
        let err = record(
            "r",
            &labels(&[("job", "x")]),
            RuleQueryResult::Vector(&input),
            0,
            0,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "vector contains metrics with the same labelset after applying rule labels"
        );
    }

    #[test]
    fn limit_and_other_results() {
        let input = [sample(&[("i", "1")], 1.0), sample(&[("i", "2")], 1.0)];
        let no = BTreeMap::new();
        let err = record("r", &no, RuleQueryResult::Vector(&input), 0, 1).unwrap_err();
        assert_eq!(err.to_string(), "exceeded limit of 1 with 2 series");
        assert!(record("r", &no, RuleQueryResult::Vector(&input), 0, 2).is_ok());
        assert!(record("r", &no, RuleQueryResult::Vector(&input), 0, -1).is_ok());
        assert_eq!(
            record("r", &no, RuleQueryResult::Other, 0, 0)
                .unwrap_err()
                .to_string(),
            "rule result is not a vector or scalar"
        );
    }
}
