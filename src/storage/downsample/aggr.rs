//! The Thanos `AggrChunk`: one chunk holding up to five aggregates of the same windows, byte
//! for byte as Thanos writes it. Chunk encoding byte `0xff`; the body is five entries in the
//! order count, sum, min, max, counter, each `uvarint(len)` followed by the sub-chunk's
//! encoding byte and its `len` bytes, `len = 0` (and nothing after it) marking an absent
//! aggregate. Sub-chunks are Prometheus XOR chunks. Also the builder that appends window
//! aggregates to the five sub-chunks, and `DownsampledChunk`, an `AggrChunk` with the time
//! range the index records for it.

use std::fmt;
use std::sync::Arc;

use super::{DownsampleError, Result};
use crate::storage::chunkenc::bstream::{uvarint_bytes, BitReader};
use crate::storage::chunkenc::{self, XorAppender, ENCODING_XOR};
use crate::storage::model::{EncodedChunk, Sample};

/// The chunk encoding byte of an `AggrChunk`: the highest value, so that it never collides
/// with a Prometheus encoding.
pub const CHUNK_ENC_AGGR: u8 = 0xff;

/// One aggregate of an `AggrChunk`; the discriminant is its position in the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggrType {
    Count = 0,
    Sum = 1,
    Min = 2,
    Max = 3,
    Counter = 4,
}

impl AggrType {
    /// All aggregates in chunk order.
    pub const ALL: [AggrType; 5] = [
        AggrType::Count,
        AggrType::Sum,
        AggrType::Min,
        AggrType::Max,
        AggrType::Counter,
    ];

    /// Position of the aggregate inside the chunk.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The lower-case name Thanos uses in messages and in its store API.
    pub fn name(self) -> &'static str {
        match self {
            AggrType::Count => "count",
            AggrType::Sum => "sum",
            AggrType::Min => "min",
            AggrType::Max => "max",
            AggrType::Counter => "counter",
        }
    }
}

impl fmt::Display for AggrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One aggregate's sub-chunk, borrowed from its `AggrChunk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubChunk<'a> {
    pub aggr: AggrType,
    /// Prometheus chunk encoding byte (1 = XOR; Thanos writes histogram encodings for native
    /// histograms, which Strata does not read).
    pub encoding: u8,
    pub data: &'a [u8],
}

impl SubChunk<'_> {
    /// Decodes the sub-chunk's samples; only XOR sub-chunks are supported.
    pub fn samples(&self) -> Result<Vec<Sample>> {
        if self.encoding != ENCODING_XOR {
            return Err(DownsampleError::UnsupportedEncoding {
                aggr: self.aggr,
                encoding: self.encoding,
            });
        }
        Ok(chunkenc::decode_all(self.data)?)
    }

    /// The sample count the XOR header declares (0 for another encoding or a short payload).
    pub fn num_samples(&self) -> usize {
        match (self.encoding, self.data) {
            (ENCODING_XOR, [hi, lo, ..]) => u16::from_be_bytes([*hi, *lo]) as usize,
            _ => 0,
        }
    }
}

/// An encoded aggregate chunk. The bytes are shared, so turning it into an `EncodedChunk` and
/// back copies nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggrChunk(Arc<[u8]>);

impl AggrChunk {
    /// Wraps bytes read from a block; they are checked when an aggregate is read.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        AggrChunk(bytes.into())
    }

    /// Encodes the five aggregates, each `(encoding byte, payload)` or `None` when absent. An
    /// empty payload is written as absent: a zero length cannot carry an encoding byte.
    pub fn encode(parts: [Option<(u8, &[u8])>; 5]) -> Self {
        let len: usize = parts.iter().flatten().map(|(_, d)| d.len() + 11).sum();
        let mut out = Vec::with_capacity(len + 5);
        let mut buf = [0u8; 10];
        for part in parts {
            match part {
                Some((encoding, data)) if !data.is_empty() => {
                    let n = uvarint_bytes(data.len() as u64, &mut buf);
                    out.extend_from_slice(&buf[..n]);
                    out.push(encoding);
                    out.extend_from_slice(data);
                }
                _ => out.push(0),
            }
        }
        AggrChunk(out.into())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The sub-chunk of one aggregate: `AggrNotExist` when it is absent, `InvalidSize` when
    /// the bytes up to it do not parse.
    pub fn get(&self, aggr: AggrType) -> Result<SubChunk<'_>> {
        let data: &[u8] = &self.0;
        let mut pos = 0usize;
        for i in 0..=aggr.index() {
            let mut br = BitReader::at_byte(pos);
            let len = match br.read_uvarint(data) {
                Some(Ok(len)) => len,
                _ => return Err(DownsampleError::InvalidSize(aggr)),
            };
            let start = br.pos() / 8;
            if len == 0 {
                if i == aggr.index() {
                    return Err(DownsampleError::AggrNotExist(aggr));
                }
                pos = start;
                continue;
            }
            // The entry is the encoding byte plus `len` payload bytes.
            let end = usize::try_from(len)
                .ok()
                .and_then(|l| l.checked_add(start + 1))
                .filter(|&end| end <= data.len())
                .ok_or(DownsampleError::InvalidSize(aggr))?;
            if i == aggr.index() {
                return Ok(SubChunk {
                    aggr,
                    encoding: data[start],
                    data: &data[start + 1..end],
                });
            }
            pos = end;
        }
        Err(DownsampleError::InvalidSize(aggr))
    }

    /// Decodes one aggregate's samples.
    pub fn samples(&self, aggr: AggrType) -> Result<Vec<Sample>> {
        self.get(aggr)?.samples()
    }

    /// The number of windows: the count aggregate's declared sample count, 0 when it is
    /// absent or unreadable (as Thanos's `NumSamples`, which meta.json's numSamples sums).
    pub fn num_samples(&self) -> usize {
        self.get(AggrType::Count)
            .map(|c| c.num_samples())
            .unwrap_or(0)
    }
}

/// An `AggrChunk` with the time range its index entry records: the first and last window
/// stamps (the counter's extra first raw sample lies before `min_time`, as in Thanos).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownsampledChunk {
    pub min_time: i64,
    pub max_time: i64,
    pub chunk: AggrChunk,
}

impl DownsampledChunk {
    /// The chunk as the block writer and the query path carry it (encoding `0xff`).
    pub fn to_encoded(&self) -> EncodedChunk {
        EncodedChunk {
            min_time: self.min_time,
            max_time: self.max_time,
            encoding: CHUNK_ENC_AGGR,
            data: self.chunk.0.clone(),
        }
    }

    /// Reads an `AggrChunk` back from a block's chunk.
    pub fn from_encoded(c: &EncodedChunk) -> Result<Self> {
        if c.encoding != CHUNK_ENC_AGGR {
            return Err(DownsampleError::NotAggrChunk(c.encoding));
        }
        Ok(DownsampledChunk {
            min_time: c.min_time,
            max_time: c.max_time,
            chunk: AggrChunk(c.data.clone()),
        })
    }

    pub fn num_samples(&self) -> usize {
        self.chunk.num_samples()
    }
}

/// Appends window aggregates to the sub-chunks of one output chunk and tracks the time range
/// of the window stamps.
pub(crate) struct AggrChunkBuilder {
    apps: [Option<XorAppender>; 5],
    min_time: i64,
    max_time: i64,
}

impl AggrChunkBuilder {
    /// A builder with no aggregate yet: an aggregate is present in the chunk once a sample
    /// is appended to it, which for float data means all five in the raw pass and those with
    /// input in the 5m → 1h pass, as Thanos writes them.
    pub(crate) fn new() -> Self {
        AggrChunkBuilder {
            apps: std::array::from_fn(|_| None),
            min_time: i64::MAX,
            max_time: i64::MIN,
        }
    }

    /// Records a window stamp in the chunk's time range.
    pub(crate) fn stamp(&mut self, t: i64) {
        self.min_time = self.min_time.min(t);
        self.max_time = self.max_time.max(t);
    }

    /// Appends one sample to an aggregate (enabling it if needed).
    pub(crate) fn append(&mut self, aggr: AggrType, t: i64, v: f64) -> Result<()> {
        let app = self.apps[aggr.index()].get_or_insert_with(XorAppender::new);
        app.try_append(t, v)?;
        Ok(())
    }

    /// The encoded chunk, or `EmptyAggregate` when no window was stamped.
    pub(crate) fn finish(self) -> Result<DownsampledChunk> {
        if self.min_time > self.max_time {
            return Err(DownsampleError::EmptyAggregate);
        }
        let parts: [Option<(u8, &[u8])>; 5] =
            std::array::from_fn(|i| self.apps[i].as_ref().map(|a| (ENCODING_XOR, a.bytes())));
        Ok(DownsampledChunk {
            min_time: self.min_time,
            max_time: self.max_time,
            chunk: AggrChunk::encode(parts),
        })
    }
}
