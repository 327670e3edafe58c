//! Prometheus's remote-storage protocol messages (`prompb/remote.proto` and `types.proto`,
//! protocol 1.0), written out with prost's derive rather than generated, since the set is
//! small and stable: the write request (with metadata), and the read request with its two
//! answers — sampled (`ReadResponse`, one snappy block) and streamed XOR chunks
//! (`ChunkedReadResponse`, length-delimited frames with a CRC32 each). Field numbers and
//! enum values are the proto files'; a message decoded here is what Prometheus sent.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Eq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `MetricMetadata.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    Gaugehistogram = 4,
    Summary = 5,
    Info = 6,
    Stateset = 7,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `ReadRequest.ResponseType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    Samples = 0,
    StreamedXorChunks = 1,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReadRequest {
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// Response types the client accepts, in its order of preference.
    #[prost(enumeration = "ResponseType", repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Query {
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
    #[prost(message, optional, tag = "4")]
    pub hints: Option<ReadHints>,
}

/// `LabelMatcher.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MatcherType {
    Eq = 0,
    Neq = 1,
    Re = 2,
    Nre = 3,
}

#[derive(Clone, PartialEq, Eq, Message)]
pub struct LabelMatcher {
    #[prost(enumeration = "MatcherType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReadHints {
    #[prost(int64, tag = "1")]
    pub step_ms: i64,
    #[prost(string, tag = "2")]
    pub func: String,
    #[prost(int64, tag = "3")]
    pub start_ms: i64,
    #[prost(int64, tag = "4")]
    pub end_ms: i64,
    #[prost(string, repeated, tag = "5")]
    pub grouping: Vec<String>,
    #[prost(bool, tag = "6")]
    pub by: bool,
    #[prost(int64, tag = "7")]
    pub range_ms: i64,
}

/// The sampled answer: one `QueryResult` per query, in order.
#[derive(Clone, PartialEq, Message)]
pub struct ReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

#[derive(Clone, PartialEq, Message)]
pub struct QueryResult {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One frame of the streamed answer: series of one query, each with whole chunks.
#[derive(Clone, PartialEq, Message)]
pub struct ChunkedReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// Index of the query in the request this frame answers.
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ChunkedSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Sorted by min time, not overlapping.
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// `Chunk.Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ChunkEncoding {
    Unknown = 0,
    Xor = 1,
    Histogram = 2,
    FloatHistogram = 3,
}

#[derive(Clone, PartialEq, Message)]
pub struct Chunk {
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    #[prost(enumeration = "ChunkEncoding", tag = "3")]
    pub r#type: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// The content type of a streamed answer (`ChunkedReadResponse` frames).
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// Appends one frame of a streamed read answer: the message's length as a uvarint, its
/// CRC32 (Castagnoli, big-endian), then the message — Prometheus's `ChunkedWriter`.
pub fn write_frame(out: &mut Vec<u8>, msg: &ChunkedReadResponse) {
    let body = msg.encode_to_vec();
    prost::encoding::encode_varint(body.len() as u64, out);
    out.extend_from_slice(&crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("truncated frame")]
    Truncated,
    #[error("frame of {0} bytes is larger than the {1} allowed")]
    TooLarge(u64, u64),
    #[error("frame checksum mismatch")]
    Checksum,
    #[error("frame does not decode: {0}")]
    Decode(String),
}

/// Reads one frame from the front of `buf`: `Ok(None)` when more bytes are needed, else the
/// message and the bytes it took. Frames above `max` bytes are refused before they are read.
pub fn read_frame(
    buf: &[u8],
    max: u64,
) -> Result<Option<(ChunkedReadResponse, usize)>, FrameError> {
    let mut cursor = buf;
    let len = match prost::encoding::decode_varint(&mut cursor) {
        Ok(l) => l,
        // Not even the length yet; a uvarint is at most 10 bytes.
        Err(_) if buf.len() < 10 => return Ok(None),
        Err(_) => return Err(FrameError::Truncated),
    };
    if len > max {
        return Err(FrameError::TooLarge(len, max));
    }
    let head = buf.len() - cursor.len();
    let total = head + 4 + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let crc = u32::from_be_bytes([buf[head], buf[head + 1], buf[head + 2], buf[head + 3]]);
    let body = &buf[head + 4..total];
    if crc32c(body) != crc {
        return Err(FrameError::Checksum);
    }
    let msg = ChunkedReadResponse::decode(body).map_err(|e| FrameError::Decode(e.to_string()))?;
    Ok(Some((msg, total)))
}

fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let msg = ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                chunks: vec![Chunk {
                    min_time_ms: 1,
                    max_time_ms: 2,
                    r#type: ChunkEncoding::Xor as i32,
                    data: vec![0, 1, 2],
                }],
            }],
            query_index: 3,
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &msg);
        write_frame(&mut buf, &msg);
        let (got, used) = read_frame(&buf, 1 << 20).unwrap().unwrap();
        assert_eq!(got, msg);
        let (again, _) = read_frame(&buf[used..], 1 << 20).unwrap().unwrap();
        assert_eq!(again, msg);
        assert_eq!(read_frame(&buf[..used - 1], 1 << 20).unwrap(), None);
        assert_eq!(read_frame(&buf[..1], 1 << 20).unwrap(), None);
        let mut bad = buf.clone();
        bad[used - 1] ^= 0xff;
        assert_eq!(read_frame(&bad, 1 << 20), Err(FrameError::Checksum));
        assert!(matches!(
            read_frame(&buf, 4),
            Err(FrameError::TooLarge(_, 4))
        ));
    }

    #[test]
    fn write_requests_keep_metadata() {
        let req = WriteRequest {
            timeseries: vec![],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Counter as i32,
                metric_family_name: "x_total".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        let back = WriteRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, req);
    }
}
