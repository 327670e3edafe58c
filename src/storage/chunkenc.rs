//! Chunk encodings: the Prometheus XOR (Gorilla-style) float chunk, bit-exact with Prometheus
//! 2.42 (including its occasional trailing zero byte), its appender and iterators, and the
//! series-level iterator that merges a series' possibly overlapping chunks by timestamp.
//! Every decoder treats its input as untrusted: bad bytes give a `ChunkError`, never a panic.

use std::sync::Arc;

use bstream::{bit_range, uvarint_bytes, zigzag_decode, zigzag_encode, BitReader, BitWriter};
pub use series::SeriesIterator;

use crate::storage::model::{EncodedChunk, Sample};

pub(crate) mod bstream;
mod series;
#[cfg(test)]
mod tests;

/// Prometheus chunk encoding byte for float XOR chunks.
pub const ENCODING_XOR: u8 = 1;

/// Size of the big-endian sample-count header that starts every XOR payload.
const HEADER_LEN: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("unknown chunk encoding {0} (only 1 = XOR is supported)")]
    UnknownEncoding(u8),
    #[error("chunk payload of {len} bytes is too short for the 2-byte sample count")]
    TooShort { len: usize },
    #[error("chunk truncated while reading {what} of sample {sample} at bit {bit}")]
    Truncated {
        what: &'static str,
        sample: usize,
        bit: usize,
    },
    #[error("corrupt chunk at sample {sample}: {reason}")]
    Corrupt { sample: usize, reason: String },
    #[error("chunk is full: a XOR chunk holds at most {max} samples")]
    Full { max: usize },
}

pub type Result<T> = std::result::Result<T, ChunkError>;

/// Sentinel for "no leading/trailing window yet", as in Prometheus.
const NO_WINDOW: u8 = 0xff;

/// Appends float samples to a XOR chunk.
#[derive(Clone, Debug)]
pub struct XorAppender {
    b: BitWriter,
    num: u16,
    min_t: i64,
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    pub fn new() -> Self {
        XorAppender {
            b: BitWriter {
                stream: vec![0, 0],
                count: 0,
            },
            num: 0,
            min_t: 0,
            t: 0,
            v: 0.0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Reopens an existing XOR payload to keep appending: decodes it to the end to recover the
    /// encoder state and trims anything after the last sample's final bit.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let mut st = XorState::new(data)?;
        let mut first: Option<i64> = None;
        while let Some(s) = st.next(data)? {
            first.get_or_insert(s.t);
        }
        let num = st.total;
        let end_bit = st.br.pos();
        let mut stream: Vec<u8>;
        let count: u8;
        if end_bit % 8 == 0 {
            let whole = end_bit / 8;
            // 2.42 leaves a zero byte with 8 free bits after a byte-aligned multi-bit write;
            // keep it when present so re-encoding stays byte-identical.
            if num > 0 && data.len() > whole && whole > HEADER_LEN {
                stream = data[..whole + 1].to_vec();
                if let Some(last) = stream.last_mut() {
                    *last = 0;
                }
                count = 8;
            } else {
                stream = data[..whole].to_vec();
                count = 0;
            }
        } else {
            let used = (end_bit % 8) as u8;
            stream = data[..end_bit / 8 + 1].to_vec();
            if let Some(last) = stream.last_mut() {
                *last &= 0xffu8 << (8 - used);
            }
            count = 8 - used;
        }
        Ok(XorAppender {
            b: BitWriter { stream, count },
            num: num as u16,
            min_t: first.unwrap_or(0),
            t: st.t,
            v: f64::from_bits(st.v),
            t_delta: st.t_delta,
            // A reopened chunk with no value window yet must start a new one, exactly like a
            // fresh appender, so the bytes match an uninterrupted encoding.
            leading: if st.has_window { st.leading } else { NO_WINDOW },
            trailing: st.trailing,
        })
    }

    /// Appends one sample. The caller guarantees strictly increasing timestamps and cuts a new
    /// chunk long before the u16 sample count is exhausted; a sample beyond 65535 is dropped
    /// and logged because the format cannot represent it (use `try_append` to see the error).
    pub fn append(&mut self, t: i64, v: f64) {
        if let Err(e) = self.try_append(t, v) {
            tracing::error!(error = %e, t, "dropping sample that does not fit the chunk");
        }
    }

    /// Like `append`, but reports a full chunk instead of dropping the sample.
    pub fn try_append(&mut self, t: i64, v: f64) -> Result<()> {
        if self.num == u16::MAX {
            return Err(ChunkError::Full {
                max: u16::MAX as usize,
            });
        }
        let mut buf = [0u8; 10];
        let mut t_delta: u64 = 0;
        match self.num {
            0 => {
                let n = uvarint_bytes(zigzag_encode(t), &mut buf);
                for &b in &buf[..n] {
                    self.b.write_byte(b);
                }
                self.b.write_bits(v.to_bits(), 64);
                self.min_t = t;
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let n = uvarint_bytes(t_delta, &mut buf);
                for &b in &buf[..n] {
                    self.b.write_byte(b);
                }
                self.write_value(v);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.b.write_bit(false);
                } else if bit_range(dod, 14) {
                    self.b.write_bits(0b10, 2);
                    self.b.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.b.write_bits(0b110, 3);
                    self.b.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.b.write_bits(0b1110, 4);
                    self.b.write_bits(dod as u64, 20);
                } else {
                    self.b.write_bits(0b1111, 4);
                    self.b.write_bits(dod as u64, 64);
                }
                self.write_value(v);
            }
        }
        self.t = t;
        self.v = v;
        self.t_delta = t_delta;
        self.num += 1;
        let header = self.num.to_be_bytes();
        self.b.stream[..HEADER_LEN].copy_from_slice(&header);
        Ok(())
    }

    fn write_value(&mut self, v: f64) {
        let delta = v.to_bits() ^ self.v.to_bits();
        if delta == 0 {
            self.b.write_bit(false);
            return;
        }
        self.b.write_bit(true);
        // Leading is stored in 5 bits, hence the cap at 31.
        let new_leading = (delta.leading_zeros() as u8).min(31);
        let new_trailing = delta.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && new_leading >= self.leading && new_trailing >= self.trailing
        {
            self.b.write_bit(false);
            let sig = 64 - self.leading as u32 - self.trailing as u32;
            self.b.write_bits(delta >> self.trailing, sig);
            return;
        }
        self.leading = new_leading;
        self.trailing = new_trailing;
        self.b.write_bit(true);
        self.b.write_bits(new_leading as u64, 5);
        let sig = 64 - new_leading as u32 - new_trailing as u32;
        // 64 significant bits are stored as 0 in the 6-bit field (write_bits keeps the low bits).
        self.b.write_bits(sig as u64, 6);
        self.b.write_bits(delta >> new_trailing, sig);
    }

    pub fn num_samples(&self) -> usize {
        self.num as usize
    }

    /// The full chunk payload including the u16 sample-count header.
    pub fn bytes(&self) -> &[u8] {
        &self.b.stream
    }

    pub fn min_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.min_t)
    }

    pub fn max_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// The chunk as a shareable encoded chunk, or `None` when it holds no samples.
    pub fn to_encoded(&self) -> Option<EncodedChunk> {
        if self.num == 0 {
            return None;
        }
        Some(EncodedChunk {
            min_time: self.min_t,
            max_time: self.t,
            encoding: ENCODING_XOR,
            data: Arc::from(self.bytes()),
        })
    }
}

/// Decoder state of one XOR payload, kept apart from the bytes so that iterators can either
/// borrow a slice or own an `Arc<[u8]>`.
#[derive(Clone, Debug)]
pub(crate) struct XorState {
    br: BitReader,
    total: usize,
    read: usize,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    has_window: bool,
}

impl XorState {
    pub(crate) fn new(data: &[u8]) -> Result<Self> {
        let total = header_count(data).ok_or(ChunkError::TooShort { len: data.len() })?;
        Ok(XorState {
            br: BitReader::at_byte(HEADER_LEN),
            total,
            read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            has_window: false,
        })
    }

    // Errors are rare: their construction stays out of the decoding loop.
    #[cold]
    #[inline(never)]
    fn truncated(&self, what: &'static str) -> ChunkError {
        ChunkError::Truncated {
            what,
            sample: self.read,
            bit: self.br.pos(),
        }
    }

    #[inline]
    pub(crate) fn next(&mut self, data: &[u8]) -> Result<Option<Sample>> {
        if self.read >= self.total {
            return Ok(None);
        }
        if self.read == 0 {
            let raw = self
                .br
                .read_uvarint(data)
                .ok_or_else(|| self.truncated("first timestamp"))?;
            let raw = raw.map_err(|()| self.corrupt("first timestamp varint overflows 64 bits"))?;
            self.t = zigzag_decode(raw);
            self.v = self
                .br
                .read_bits(data, 64)
                .ok_or_else(|| self.truncated("first value"))?;
            self.read = 1;
            return Ok(Some(self.sample()));
        }
        if self.read == 1 {
            let raw = self
                .br
                .read_uvarint(data)
                .ok_or_else(|| self.truncated("timestamp delta"))?;
            self.t_delta =
                raw.map_err(|()| self.corrupt("timestamp delta varint overflows 64 bits"))?;
            self.t = self.t.wrapping_add(self.t_delta as i64);
        } else {
            // One peek holds the prefix (1-4 bits) and any delta-of-delta of up to 20 bits.
            let w = self.br.peek(data);
            // The bucket is the number of leading ones (at most 4).
            const PREFIX_LEN: [u32; 5] = [1, 2, 3, 4, 4];
            const DOD_BITS: [u32; 5] = [0, 14, 17, 20, 64];
            let ones = w.leading_ones().min(4) as usize;
            let (prefix_len, size) = (PREFIX_LEN[ones], DOD_BITS[ones]);
            let dod = if size == 0 {
                if !self.br.skip(data, 1) {
                    return Err(self.truncated("timestamp prefix"));
                }
                0
            } else if size < 64 {
                let mut bits = (w << prefix_len) >> (64 - size);
                if !self.br.skip(data, prefix_len + size) {
                    return Err(self.truncated("timestamp dod"));
                }
                if bits > (1u64 << (size - 1)) {
                    bits = bits.wrapping_sub(1u64 << size);
                }
                bits as i64
            } else {
                if !self.br.skip(data, prefix_len) {
                    return Err(self.truncated("timestamp prefix"));
                }
                self.br
                    .read_bits(data, 64)
                    .ok_or_else(|| self.truncated("timestamp dod"))? as i64
            };
            self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
            self.t = self.t.wrapping_add(self.t_delta as i64);
        }
        self.read_value(data)?;
        self.read += 1;
        Ok(Some(self.sample()))
    }

    fn read_value(&mut self, data: &[u8]) -> Result<()> {
        // Control bits and a new window's 5 + 6 header bits come from one peek.
        let w = self.br.peek(data);
        if w >> 63 == 0 {
            if !self.br.skip(data, 1) {
                return Err(self.truncated("value control bit"));
            }
            return Ok(());
        }
        let sig: u32;
        if (w >> 62) & 1 == 1 {
            let leading = ((w >> 57) & 0x1f) as u32;
            let mut mbits = ((w >> 51) & 0x3f) as u32;
            if !self.br.skip(data, 13) {
                return Err(self.truncated("value window"));
            }
            if mbits == 0 {
                mbits = 64;
            }
            if leading + mbits > 64 {
                return Err(self.corrupt(&format!(
                    "{leading} leading zeros + {mbits} significant bits exceed 64"
                )));
            }
            self.leading = leading as u8;
            self.trailing = (64 - leading - mbits) as u8;
            self.has_window = true;
            sig = mbits;
        } else {
            if !self.br.skip(data, 2) {
                return Err(self.truncated("value control bits"));
            }
            sig = 64 - self.leading as u32 - self.trailing as u32;
        }
        let bits = self
            .br
            .read_bits(data, sig)
            .ok_or_else(|| self.truncated("value bits"))?;
        // trailing < 64 always holds because sig >= 1.
        self.v ^= bits << self.trailing;
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn corrupt(&self, reason: &str) -> ChunkError {
        ChunkError::Corrupt {
            sample: self.read,
            reason: reason.to_string(),
        }
    }

    fn sample(&self) -> Sample {
        Sample {
            t: self.t,
            v: f64::from_bits(self.v),
        }
    }
}

/// Iterates the samples of one XOR payload (borrowed). Relies on the u16 sample count, never
/// on the payload length, since 2.42 may leave a trailing zero byte.
#[derive(Clone, Debug)]
pub struct XorIterator<'a> {
    data: &'a [u8],
    st: XorState,
    cur: Option<Sample>,
    failed: bool,
}

impl<'a> XorIterator<'a> {
    pub fn new(data: &'a [u8]) -> Result<Self> {
        Ok(XorIterator {
            data,
            st: XorState::new(data)?,
            cur: None,
            failed: false,
        })
    }

    /// Number of samples the header announces.
    pub fn num_samples(&self) -> usize {
        self.st.total
    }

    // A fallible `next` is the mandated API; `Iterator` cannot express it.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Sample>> {
        if self.failed {
            return Ok(None);
        }
        match self.st.next(self.data) {
            Ok(s) => {
                self.cur = s;
                Ok(s)
            }
            Err(e) => {
                self.failed = true;
                self.cur = None;
                Err(e)
            }
        }
    }

    /// Moves to the first sample with timestamp >= `t`. As in Prometheus, if the sample last
    /// returned already qualifies it is returned again and the position does not change.
    pub fn seek(&mut self, t: i64) -> Result<Option<Sample>> {
        if let Some(c) = self.cur {
            if c.t >= t {
                return Ok(Some(c));
            }
        }
        while let Some(s) = self.next()? {
            if s.t >= t {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }
}

/// The sample count in the 2-byte big-endian header of a XOR payload, `None` when the payload
/// is shorter than the header.
fn header_count(data: &[u8]) -> Option<usize> {
    let header = data.get(..HEADER_LEN)?;
    Some(u16::from_be_bytes([header[0], header[1]]) as usize)
}

/// The number of samples a chunk declares in its header, without decoding it: the XOR sample
/// count, or 0 for other encodings and for payloads too short to hold a header. The header is
/// untrusted input, so use this only to size buffers (it bounds what decoding can yield,
/// since a XOR chunk never holds more samples than it declares).
pub fn declared_samples(chunk: &EncodedChunk) -> usize {
    if chunk.encoding != ENCODING_XOR {
        return 0;
    }
    header_count(&chunk.data).unwrap_or(0)
}

/// Decodes every sample of a XOR payload.
pub fn decode_all(data: &[u8]) -> Result<Vec<Sample>> {
    let mut it = XorIterator::new(data)?;
    let mut out = Vec::with_capacity(it.num_samples().min(data.len() * 8));
    while let Some(s) = it.next()? {
        out.push(s);
    }
    Ok(out)
}

/// Decodes an encoded chunk of any supported encoding.
pub fn decode_chunk(chunk: &EncodedChunk) -> Result<Vec<Sample>> {
    if chunk.encoding != ENCODING_XOR {
        return Err(ChunkError::UnknownEncoding(chunk.encoding));
    }
    decode_all(&chunk.data)
}
