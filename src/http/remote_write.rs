//! Prometheus remote-write 1.0 payloads (snappy-compressed protobuf `WriteRequest`): decoding
//! with validation (a bad payload is refused whole, before anything is stored), encoding (for
//! tests and tools), and an all-or-nothing append of a decoded batch. The HTTP endpoints that
//! take remote write (`/api/v1/write`, `/api/v1/receive`) are in `http::receive`.

use prost::Message;

use crate::storage::db::Db;
use crate::storage::head::HeadError;
use crate::storage::model::{Label, Labels};

/// Decoded bodies above this are refused before decompression allocates them.
const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

pub use crate::remote::prompb::{
    Label as ProtoLabel, Sample as ProtoSample, TimeSeries, WriteRequest,
};

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("snappy decode error: {0}")]
    Snappy(String),
    #[error("decoded body is {0} bytes, more than the {MAX_DECODED_BYTES} allowed")]
    TooLarge(usize),
    #[error("protobuf decode error: {0}")]
    Proto(String),
    #[error("invalid labels in series {index}: {reason}")]
    Labels { index: usize, reason: String },
}

/// Decodes a snappy-compressed `WriteRequest` into label sets with their samples.
/// Decoded series: labels and `(timestamp ms, value)` samples.
pub type WriteBatch = Vec<(Labels, Vec<(i64, f64)>)>;

pub fn decode(body: &[u8]) -> Result<WriteBatch, RemoteWriteError> {
    let len =
        snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    if len > MAX_DECODED_BYTES {
        return Err(RemoteWriteError::TooLarge(len));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    let req =
        WriteRequest::decode(raw.as_slice()).map_err(|e| RemoteWriteError::Proto(e.to_string()))?;
    let mut out = Vec::with_capacity(req.timeseries.len());
    for (index, ts) in req.timeseries.into_iter().enumerate() {
        let mut names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(RemoteWriteError::Labels {
                index,
                reason: format!("duplicate label name {:?}", w[0]),
            });
        }
        let labels = Labels::new(
            ts.labels
                .into_iter()
                .map(|l| Label::new(l.name, l.value))
                .collect(),
        );
        if labels.is_empty() {
            return Err(RemoteWriteError::Labels {
                index,
                reason: "empty label set".to_string(),
            });
        }
        out.push((
            labels,
            ts.samples
                .into_iter()
                .map(|s| (s.timestamp, s.value))
                .collect(),
        ));
    }
    Ok(out)
}

/// Encodes a request (used by tests and `strata tools` to feed a node).
pub fn encode(series: &[(Labels, Vec<(i64, f64)>)]) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(l, s)| TimeSeries {
                labels: l
                    .iter()
                    .map(|l| ProtoLabel {
                        name: l.name.to_string(),
                        value: l.value.to_string(),
                    })
                    .collect(),
                samples: s
                    .iter()
                    .map(|&(timestamp, value)| ProtoSample { value, timestamp })
                    .collect(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    let raw = req.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// Appends every sample as one batch: the first rejected sample rolls the batch back.
pub fn append_all(db: &Db, series: &[(Labels, Vec<(i64, f64)>)]) -> Result<(), HeadError> {
    let mut app = db.appender();
    for (labels, samples) in series {
        let mut series_ref = 0;
        for &(t, v) in samples {
            series_ref = app.append(series_ref, labels, t, v)?;
        }
    }
    app.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_snappy_and_protobuf() {
        let series = vec![
            (
                Labels::from_pairs([("__name__", "up"), ("job", "a")]),
                vec![(1000, 1.0), (2000, 0.0)],
            ),
            (
                Labels::from_pairs([("__name__", "x")]),
                vec![(5, f64::INFINITY)],
            ),
        ];
        let decoded = decode(&encode(&series)).unwrap();
        assert_eq!(decoded, series);
    }

    #[test]
    fn garbage_and_bad_labels_are_clear_errors() {
        assert!(matches!(
            decode(b"\xff\xff\xff\xff\xff garbage"),
            Err(RemoteWriteError::Snappy(_))
        ));
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff; 16]).unwrap();
        assert!(matches!(
            decode(&not_proto),
            Err(RemoteWriteError::Proto(_))
        ));
        let dup = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    ProtoLabel {
                        name: "a".into(),
                        value: "1".into(),
                    },
                    ProtoLabel {
                        name: "a".into(),
                        value: "2".into(),
                    },
                ],
                samples: vec![],
            }],
            metadata: vec![],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&dup.encode_to_vec())
            .unwrap();
        let err = decode(&body).unwrap_err().to_string();
        assert!(err.contains("duplicate label name \"a\""), "{err}");
    }
}
