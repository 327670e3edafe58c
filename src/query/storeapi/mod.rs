//! The StoreAPI between nodes: what a QueryPlanner asks a ScraperShipper (recent, not yet
//! shipped data) or a StoreShard (bucket blocks) for, carried over the RPC transport as bincode.
//! Series come back as a stream of batches of chunks (raw XOR, or Thanos `AggrChunk`s from
//! downsampled blocks), so a large answer never sits in one frame; every source labels its series with its external labels, like Thanos stores do,
//! so the querier can tell replicas apart and deduplicate them. This module holds the wire
//! types; `server` answers them from this node's sources and `rpc` dispatches every request the
//! node's transport receives.

pub mod rpc;
pub mod server;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::storage::model::{EncodedChunk, Labels, MatchOp, Matcher, ModelError, Series};

/// Role names a request is addressed to on the transport.
pub const STORE_TARGET: &str = "store";
pub const METHOD_SERIES: &str = "series";
pub const METHOD_LABEL_NAMES: &str = "label_names";
pub const METHOD_LABEL_VALUES: &str = "label_values";
pub const METHOD_INFO: &str = "info";

/// Series per streamed batch (Thanos uses 64 too).
pub const BATCH_SERIES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StoreApiError {
    #[error("cannot encode a StoreAPI message: {0}")]
    Encode(String),
    #[error("cannot decode a StoreAPI message: {0}")]
    Decode(String),
    #[error(transparent)]
    Matcher(#[from] ModelError),
}

pub type Result<T> = std::result::Result<T, StoreApiError>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

impl From<&Matcher> for WireMatcher {
    fn from(m: &Matcher) -> Self {
        WireMatcher {
            name: m.name.clone(),
            op: m.op,
            value: m.value.clone(),
        }
    }
}

/// Rebuilds matchers (regexes are compiled again here, so a bad one is refused by name).
pub fn to_matchers(wire: &[WireMatcher]) -> Result<Vec<Matcher>> {
    wire.iter()
        .map(|w| Matcher::new(w.op, w.name.clone(), w.value.clone()).map_err(StoreApiError::from))
        .collect()
}

pub fn to_wire(matchers: &[Matcher]) -> Vec<WireMatcher> {
    matchers.iter().map(WireMatcher::from).collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesRequest {
    pub min_time: i64,
    pub max_time: i64,
    pub matchers: Vec<WireMatcher>,
    pub labels_only: bool,
    /// Most series the caller accepts; 0 = no limit.
    pub limit: usize,
    /// The query's maximum source resolution (ms, 0 = raw), Thanos's `max_resolution_window`:
    /// bucket stores pick their blocks by it; sources of raw data ignore it. Chunks of
    /// downsampled blocks travel as Thanos `AggrChunk`s (encoding 0xff) with every aggregate,
    /// and the querier's engine decodes the one its function needs.
    pub max_resolution_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelsRequest {
    /// `None` for label names, the label for its values.
    pub name: Option<String>,
    pub matchers: Vec<WireMatcher>,
    pub min_time: i64,
    pub max_time: i64,
}

/// One streamed batch of a series answer, with the source's warnings (blocks it had to skip)
/// in the first frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesFrame {
    pub series: Vec<(Labels, Vec<EncodedChunk>)>,
    pub warnings: Vec<String>,
    /// Resolutions (ms, 0 = raw) of the data in the whole answer, in the first frame.
    pub resolutions: Vec<i64>,
}

/// What one source of a node says about itself (the `info` method): which external label
/// sets its series carry and the time it covers, for `/api/v1/stores`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub node: String,
    /// `local tsdb` or `bucket store`.
    pub source: String,
    pub label_sets: Vec<Labels>,
    /// Inclusive ms; `None` while the source holds no data.
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .map_err(|e| StoreApiError::Encode(e.to_string()))
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    let limits = bincode::config::standard().with_limit::<{ 256 * 1024 * 1024 }>();
    bincode::serde::decode_from_slice(bytes, limits)
        .map(|(v, _)| v)
        .map_err(|e| StoreApiError::Decode(e.to_string()))
}

/// Adds the labels of `external` that a series lacks (Thanos's rule: the series' own label wins).
pub fn with_external_labels(labels: &Labels, external: &Labels) -> Labels {
    add_external_labels(labels.clone(), external)
}

/// `with_external_labels` on an owned label set: the common case (nothing missing) moves the
/// set through untouched, and otherwise the strings it has are reused rather than copied.
fn add_external_labels(labels: Labels, external: &Labels) -> Labels {
    let missing: Vec<_> = external
        .iter()
        .filter(|l| labels.get(&l.name).is_none())
        .cloned()
        .collect();
    if missing.is_empty() {
        return labels;
    }
    let mut pairs = labels.into_vec();
    pairs.extend(missing);
    Labels::new(pairs)
}

/// Labels every series with the source's external labels; keeps the result sorted.
pub fn label_series(mut series: Vec<Series>, external: &Labels) -> Vec<Series> {
    if external.is_empty() {
        return series;
    }
    for s in series.iter_mut() {
        s.labels = add_external_labels(std::mem::take(&mut s.labels), external);
    }
    // Adding the same labels rarely changes the order; checking is linear, sorting is not.
    if !series.windows(2).all(|w| w[0].labels <= w[1].labels) {
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
    series
}

/// Thanos store matching: can any series of a source with these external labels match? A
/// matcher on a label the source has must accept its value; labels it lacks say nothing.
pub fn store_matches(external: &Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| match external.get(&m.name) {
        Some(v) => m.matches(v),
        None => true,
    })
}

/// node id → its info, as the planner caches it.
pub type InfoCache = BTreeMap<String, StoreInfo>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_series_round_trip_through_bincode() {
        let req = SeriesRequest {
            min_time: -5,
            max_time: 10,
            matchers: to_wire(&[Matcher::new(MatchOp::RegexMatch, "job", "a|b").unwrap()]),
            labels_only: false,
            limit: 3,
            max_resolution_ms: 300_000,
        };
        assert_eq!(
            decode::<SeriesRequest>(&encode(&req).unwrap()).unwrap(),
            req
        );
        let batch: Vec<(Labels, Vec<EncodedChunk>)> = vec![(
            Labels::from_pairs([("__name__", "up")]),
            vec![EncodedChunk {
                min_time: 1,
                max_time: 2,
                encoding: 1,
                data: vec![0u8, 1, 2].into(),
            }],
        )];
        assert_eq!(
            decode::<Vec<(Labels, Vec<EncodedChunk>)>>(&encode(&batch).unwrap()).unwrap(),
            batch
        );
        assert!(decode::<SeriesRequest>(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn external_labels_never_override_a_series_label() {
        let ext = Labels::from_pairs([("cluster", "eu1"), ("replica", "a")]);
        let got = with_external_labels(
            &Labels::from_pairs([("__name__", "up"), ("cluster", "own")]),
            &ext,
        );
        assert_eq!(
            got,
            Labels::from_pairs([("__name__", "up"), ("cluster", "own"), ("replica", "a")])
        );
    }

    #[test]
    fn store_matching_follows_thanos() {
        let ext = Labels::from_pairs([("cluster", "eu1")]);
        assert!(store_matches(
            &ext,
            &[Matcher::equal("cluster", "eu1"), Matcher::equal("job", "x")]
        ));
        assert!(!store_matches(&ext, &[Matcher::equal("cluster", "us1")]));
        assert!(store_matches(
            &Labels::empty(),
            &[Matcher::equal("cluster", "us1")]
        ));
    }

    #[test]
    fn bad_regexes_from_the_wire_are_refused() {
        let wire = vec![WireMatcher {
            name: "a".into(),
            op: MatchOp::RegexMatch,
            value: "(".into(),
        }];
        assert!(to_matchers(&wire).is_err());
    }
}
