//! Remote read between Strata's model and Prometheus's wire messages, with no HTTP in it:
//! decoding a snappy `ReadRequest` and its matchers, turning selected series into the two
//! answers of Prometheus's `storage/remote/read_handler.go` — the sampled `ReadResponse`
//! (samples inside the query's range) and the streamed `ChunkedReadResponse` frames (XOR chunks
//! as stored, one series per frame, a series split over several frames once a frame passes
//! `MAX_BYTES_IN_FRAME`, like `--storage.remote.read-max-bytes-in-frame`) — and the reverse for
//! a client: an incremental frame decoder that turns a streamed answer into series without
//! holding the raw answer. External labels follow Prometheus: matchers that equal an external
//! label are dropped before selecting, and the external labels are added to every series that
//! lacks them.

use std::collections::BTreeMap;

use prost::Message;

use super::prompb::{
    read_frame, write_frame, Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, FrameError,
    Label as ProtoLabel, LabelMatcher, MatcherType, Query, QueryResult, ReadRequest, ReadResponse,
    ResponseType, Sample as ProtoSample, TimeSeries,
};
use crate::storage::chunkenc::{SeriesIterator, ENCODING_XOR};
use crate::storage::dedup::encode_chunks;
use crate::storage::model::{EncodedChunk, Label, Labels, MatchOp, Matcher, Series};

/// Prometheus's default `--storage.remote.read-max-bytes-in-frame` (1 MiB).
pub const MAX_BYTES_IN_FRAME: usize = 1 << 20;
/// Prometheus's default `--storage.remote.read-sample-limit` for sampled answers.
pub const SAMPLE_LIMIT: usize = 50_000_000;
/// Decoded request bodies above this are refused before decompression allocates them.
const MAX_REQUEST_BYTES: usize = 32 << 20;
/// A frame larger than this is refused by the client (a chunk is far smaller; Prometheus
/// overshoots its frame budget by at most one chunk).
pub const MAX_FRAME_READ: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("snappy decode error: {0}")]
    Snappy(String),
    #[error("decoded request is {0} bytes, more than the {MAX_REQUEST_BYTES} allowed")]
    TooLarge(usize),
    #[error("protobuf decode error: {0}")]
    Proto(String),
    #[error("invalid matcher in query {query}: {reason}")]
    Matcher { query: usize, reason: String },
    #[error("unknown matcher type {0}")]
    MatcherType(i32),
    #[error("exceeded sample limit ({0})")]
    SampleLimit(usize),
    #[error("cannot re-encode the chunks of series {labels}: {reason}")]
    Chunks { labels: String, reason: String },
    #[error("streamed answer: {0}")]
    Frame(#[from] FrameError),
}

pub type Result<T> = std::result::Result<T, ReadError>;

/// Decodes the body of a remote-read request (snappy block of a `ReadRequest`).
pub fn decode_request(body: &[u8]) -> Result<ReadRequest> {
    let len = snap::raw::decompress_len(body).map_err(|e| ReadError::Snappy(e.to_string()))?;
    if len > MAX_REQUEST_BYTES {
        return Err(ReadError::TooLarge(len));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| ReadError::Snappy(e.to_string()))?;
    ReadRequest::decode(raw.as_slice()).map_err(|e| ReadError::Proto(e.to_string()))
}

/// Encodes a request as a client sends it.
pub fn encode_request(req: &ReadRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

/// True when the client accepts streamed XOR chunks before (or instead of) samples: the
/// first accepted type Strata supports wins, and an empty list means samples.
pub fn wants_streamed(req: &ReadRequest) -> bool {
    for t in &req.accepted_response_types {
        match ResponseType::try_from(*t) {
            Ok(ResponseType::StreamedXorChunks) => return true,
            Ok(ResponseType::Samples) => return false,
            Err(_) => continue,
        }
    }
    false
}

/// The matchers of one query, minus those that only restate an external label (Prometheus's
/// `filterExtLabelsFromMatchers`).
pub fn query_matchers(
    index: usize,
    q: &Query,
    external: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>> {
    let mut out = Vec::with_capacity(q.matchers.len());
    for m in &q.matchers {
        let op = match MatcherType::try_from(m.r#type) {
            Ok(MatcherType::Eq) => MatchOp::Equal,
            Ok(MatcherType::Neq) => MatchOp::NotEqual,
            Ok(MatcherType::Re) => MatchOp::RegexMatch,
            Ok(MatcherType::Nre) => MatchOp::RegexNoMatch,
            Err(_) => return Err(ReadError::MatcherType(m.r#type)),
        };
        if op == MatchOp::Equal && external.get(&m.name) == Some(&m.value) {
            continue;
        }
        let matcher =
            Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| ReadError::Matcher {
                query: index,
                reason: e.to_string(),
            })?;
        out.push(matcher);
    }
    if out.is_empty() && !q.matchers.is_empty() {
        // Only external-label matchers: every series matches, as in Prometheus.
        return Ok(vec![Matcher::new(MatchOp::RegexMatch, "__name__", ".+")
            .map_err(|e| ReadError::Matcher {
                query: index,
                reason: e.to_string(),
            })?]);
    }
    if out.is_empty() {
        return Err(ReadError::Matcher {
            query: index,
            reason: "no matchers given".to_string(),
        });
    }
    Ok(out)
}

/// Matchers as a client sends them.
pub fn to_proto_matchers(matchers: &[Matcher]) -> Vec<LabelMatcher> {
    matchers
        .iter()
        .map(|m| LabelMatcher {
            r#type: match m.op {
                MatchOp::Equal => MatcherType::Eq,
                MatchOp::NotEqual => MatcherType::Neq,
                MatchOp::RegexMatch => MatcherType::Re,
                MatchOp::RegexNoMatch => MatcherType::Nre,
            } as i32,
            name: m.name.clone(),
            value: m.value.clone(),
        })
        .collect()
}

/// Adds the external labels a series lacks (its own labels win, Prometheus's `MergeLabels`).
pub fn with_external(labels: Labels, external: &BTreeMap<String, String>) -> Labels {
    let missing: Vec<Label> = external
        .iter()
        .filter(|(k, _)| labels.get(k).is_none())
        .map(|(k, v)| Label::new(k.as_str(), v.as_str()))
        .collect();
    if missing.is_empty() {
        return labels;
    }
    let mut pairs = labels.into_vec();
    pairs.extend(missing);
    Labels::new(pairs)
}

fn proto_labels(labels: &Labels) -> Vec<ProtoLabel> {
    labels
        .iter()
        .map(|l| ProtoLabel {
            name: l.name.to_string(),
            value: l.value.to_string(),
        })
        .collect()
}

fn from_proto_labels(labels: Vec<ProtoLabel>) -> Labels {
    Labels::new(
        labels
            .into_iter()
            .map(|l| Label::new(l.name, l.value))
            .collect(),
    )
}

/// A series' chunks in time order without overlap, as the streamed answer requires: stored
/// chunks pass through untouched; chunks that overlap (merged from several sources) are
/// merged sample by sample and re-encoded.
pub fn disjoint_chunks(series: &Series) -> Result<Vec<EncodedChunk>> {
    let ordered = series.chunks.iter().all(|c| c.encoding == ENCODING_XOR)
        && series
            .chunks
            .windows(2)
            .all(|w| w[0].max_time < w[1].min_time);
    if ordered {
        return Ok(series.chunks.clone());
    }
    let err = |reason: String| ReadError::Chunks {
        labels: series.labels.to_string(),
        reason,
    };
    let samples = series_samples(series, i64::MIN, i64::MAX).map_err(err)?;
    encode_chunks(&samples).map_err(|e| err(e.to_string()))
}

/// The samples of a series in `[mint, maxt]`, overlapping chunks merged.
fn series_samples(
    series: &Series,
    mint: i64,
    maxt: i64,
) -> std::result::Result<Vec<crate::storage::model::Sample>, String> {
    let mut it = SeriesIterator::new(series.chunks.clone());
    let mut out = Vec::new();
    let mut next = it.seek(mint).map_err(|e| e.to_string())?;
    while let Some(s) = next {
        if s.t > maxt {
            break;
        }
        out.push(s);
        next = it.next().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The sampled answer to one query: every sample in `[mint, maxt]`. `budget` is what is left
/// of the request's sample limit.
pub fn query_result(
    series: &[Series],
    mint: i64,
    maxt: i64,
    budget: &mut usize,
) -> Result<QueryResult> {
    let mut timeseries = Vec::with_capacity(series.len());
    for s in series {
        let samples = series_samples(s, mint, maxt).map_err(|reason| ReadError::Chunks {
            labels: s.labels.to_string(),
            reason,
        })?;
        if samples.len() > *budget {
            return Err(ReadError::SampleLimit(SAMPLE_LIMIT));
        }
        *budget -= samples.len();
        timeseries.push(TimeSeries {
            labels: proto_labels(&s.labels),
            samples: samples
                .into_iter()
                .map(|p| ProtoSample {
                    value: p.v,
                    timestamp: p.t,
                })
                .collect(),
        });
    }
    Ok(QueryResult { timeseries })
}

/// The sampled answer's body: a snappy block of the `ReadResponse`.
pub fn encode_sampled(resp: &ReadResponse) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&resp.encode_to_vec())
        .unwrap_or_default()
}

/// Decodes a sampled answer's body.
pub fn decode_sampled(body: &[u8]) -> Result<ReadResponse> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| ReadError::Snappy(e.to_string()))?;
    ReadResponse::decode(raw.as_slice()).map_err(|e| ReadError::Proto(e.to_string()))
}

/// The frames of one series in the streamed answer: whole chunks, a new frame whenever the
/// current one reaches `max_bytes` (it may pass it by at most one chunk, as Prometheus's).
pub fn series_frames(
    series: &Series,
    query_index: i64,
    max_bytes: usize,
) -> Result<Vec<bytes::Bytes>> {
    let labels = proto_labels(&series.labels);
    let label_bytes: usize = labels.iter().map(|l| l.name.len() + l.value.len()).sum();
    let chunks = disjoint_chunks(series)?;
    let mut frames = Vec::new();
    let mut batch: Vec<Chunk> = Vec::new();
    let mut left = max_bytes.saturating_sub(label_bytes) as i64;
    let total = chunks.len();
    for (i, c) in chunks.into_iter().enumerate() {
        left -= (c.data.len() + 24) as i64;
        batch.push(Chunk {
            min_time_ms: c.min_time,
            max_time_ms: c.max_time,
            r#type: ChunkEncoding::Xor as i32,
            data: c.data.to_vec(),
        });
        if left > 0 && i + 1 < total {
            continue;
        }
        let mut out = Vec::new();
        write_frame(
            &mut out,
            &ChunkedReadResponse {
                chunked_series: vec![ChunkedSeries {
                    labels: labels.clone(),
                    chunks: std::mem::take(&mut batch),
                }],
                query_index,
            },
        );
        frames.push(bytes::Bytes::from(out));
        left = max_bytes.saturating_sub(label_bytes) as i64;
    }
    Ok(frames)
}

/// Turns the bytes of a streamed answer, fed as they arrive, into series per query: frames
/// are decoded as soon as they are whole and their bytes dropped; consecutive frames of one
/// series (a series split over frames) are joined.
#[derive(Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Series of each query index, in the order they arrived.
    pub queries: BTreeMap<i64, Vec<Series>>,
}

impl FrameDecoder {
    /// Feeds the next bytes of the body.
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(bytes);
        let mut used = 0;
        while let Some((msg, n)) = read_frame(&self.buf[used..], MAX_FRAME_READ)? {
            used += n;
            self.add(msg);
        }
        if used > 0 {
            self.buf.drain(..used);
        }
        Ok(())
    }

    /// Ends the body: bytes left over are a truncated frame.
    pub fn finish(self) -> Result<BTreeMap<i64, Vec<Series>>> {
        if !self.buf.is_empty() {
            return Err(ReadError::Frame(FrameError::Truncated));
        }
        Ok(self.queries)
    }

    fn add(&mut self, msg: ChunkedReadResponse) {
        let list = self.queries.entry(msg.query_index).or_default();
        for cs in msg.chunked_series {
            let labels = from_proto_labels(cs.labels);
            let chunks = cs.chunks.into_iter().map(|c| EncodedChunk {
                min_time: c.min_time_ms,
                max_time: c.max_time_ms,
                encoding: u8::try_from(c.r#type).unwrap_or(0),
                data: c.data.into(),
            });
            match list.last_mut() {
                Some(last) if last.labels == labels => last.chunks.extend(chunks),
                _ => list.push(Series {
                    labels,
                    chunks: chunks.collect(),
                }),
            }
        }
    }
}

/// A request for one query that accepts streamed chunks first, as the sidecar sends it.
pub fn streamed_request(matchers: &[Matcher], mint: i64, maxt: i64) -> ReadRequest {
    ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: mint,
            end_timestamp_ms: maxt,
            matchers: to_proto_matchers(matchers),
            hints: None,
        }],
        accepted_response_types: vec![ResponseType::StreamedXorChunks as i32],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::storage::model::Sample;

    fn series(name: &str, samples: &[(i64, f64)]) -> Series {
        let s: Vec<Sample> = samples.iter().map(|&(t, v)| Sample { t, v }).collect();
        Series {
            labels: Labels::from_pairs([("__name__", name)]),
            chunks: encode_chunks(&s).unwrap(),
        }
    }

    #[test]
    fn external_label_matchers_are_dropped_and_labels_added() {
        let ext: BTreeMap<String, String> = [("cluster".to_string(), "eu1".to_string())].into();
        let q = Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 10,
            matchers: to_proto_matchers(&[
                Matcher::equal("__name__", "up"),
                Matcher::equal("cluster", "eu1"),
            ]),
            hints: None,
        };
        let m = query_matchers(0, &q, &ext).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "__name__");
        let l = with_external(Labels::from_pairs([("__name__", "up")]), &ext);
        assert_eq!(l.get("cluster"), Some("eu1"));
        let own = with_external(Labels::from_pairs([("cluster", "x")]), &ext);
        assert_eq!(own.get("cluster"), Some("x"));
    }

    #[test]
    fn bad_matchers_are_refused() {
        let q = Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 10,
            matchers: vec![LabelMatcher {
                r#type: MatcherType::Re as i32,
                name: "a".into(),
                value: "(".into(),
            }],
            hints: None,
        };
        assert!(matches!(
            query_matchers(0, &q, &BTreeMap::new()),
            Err(ReadError::Matcher { .. })
        ));
        assert!(matches!(
            decode_request(b"not snappy at all"),
            Err(ReadError::Snappy(_))
        ));
    }

    #[test]
    fn streamed_frames_round_trip_and_split_big_series() {
        let points: Vec<(i64, f64)> = (0..1000).map(|i| (i * 1000, i as f64)).collect();
        let s = series("a", &points);
        let frames = series_frames(&s, 0, 200).unwrap();
        assert!(frames.len() > 1, "a small frame budget splits the series");
        let mut dec = FrameDecoder::default();
        let all: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        // Feed byte slices of awkward sizes: frames straddle pushes.
        for part in all.chunks(7) {
            dec.push(part).unwrap();
        }
        let got = dec.finish().unwrap();
        assert_eq!(got[&0].len(), 1);
        assert_eq!(got[&0][0], s);
    }

    #[test]
    fn overlapping_chunks_are_merged_before_streaming() {
        let a = series("a", &[(1, 1.0), (3, 3.0)]);
        let b = series("a", &[(2, 2.0), (3, 9.0)]);
        let merged = Series {
            labels: a.labels.clone(),
            chunks: a.chunks.iter().chain(b.chunks.iter()).cloned().collect(),
        };
        let chunks = disjoint_chunks(&merged).unwrap();
        assert_eq!(chunks.len(), 1);
        let samples = crate::storage::chunkenc::decode_chunk(&chunks[0]).unwrap();
        assert_eq!(samples.len(), 3);
    }

    #[test]
    fn sampled_answers_keep_only_the_range_and_respect_the_limit() {
        let s = series("a", &[(1, 1.0), (5, 5.0), (9, 9.0)]);
        let mut budget = 10;
        let r = query_result(std::slice::from_ref(&s), 2, 9, &mut budget).unwrap();
        assert_eq!(r.timeseries[0].samples.len(), 2);
        assert_eq!(budget, 8);
        let mut tiny = 1;
        assert!(matches!(
            query_result(&[s], 0, 10, &mut tiny),
            Err(ReadError::SampleLimit(_))
        ));
        let resp = ReadResponse { results: vec![r] };
        assert_eq!(decode_sampled(&encode_sampled(&resp)).unwrap(), resp);
    }

    #[test]
    fn streamed_is_chosen_by_first_supported_preference() {
        let mut r = ReadRequest::default();
        assert!(!wants_streamed(&r));
        r.accepted_response_types = vec![ResponseType::StreamedXorChunks as i32];
        assert!(wants_streamed(&r));
        r.accepted_response_types = vec![ResponseType::Samples as i32, 1];
        assert!(!wants_streamed(&r));
        r.accepted_response_types = vec![7, 1];
        assert!(wants_streamed(&r));
    }
}
