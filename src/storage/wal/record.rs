//! WAL record bodies (Prometheus `tsdb/record`): encoding and decoding of Series (type 1) and
//! float Samples (type 2) records, byte-compatible with Prometheus 2.42. Other record types a
//! Prometheus WAL may hold (tombstones, exemplars, metadata, histograms) are recognised and
//! skipped by the caller, never misread as ours.

use crate::storage::model::{Label, Labels};

use super::{Result, WalError};

/// Record type byte of a Series record.
pub const RECORD_SERIES: u8 = 1;
/// Record type byte of a float Samples record.
pub const RECORD_SAMPLES: u8 = 2;

/// A series definition: the head's series ref and its label set.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSeries {
    pub series_ref: u64,
    pub labels: Labels,
}

/// One float sample addressed by series ref.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefSample {
    pub series_ref: u64,
    pub t: i64,
    pub v: f64,
}

/// A decoded WAL record that the head understands.
#[derive(Clone, Debug, PartialEq)]
pub enum WalRecord {
    Series(Vec<RefSeries>),
    Samples(Vec<RefSample>),
}

impl WalRecord {
    /// Appends the encoded record body (type byte first) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            WalRecord::Series(s) => encode_series(s, out),
            WalRecord::Samples(s) => encode_samples(s, out),
        }
    }
}

/// Series record: repeated {BE u64 ref, uvarint n, n × (uvarint-string, uvarint-string)}.
pub fn encode_series(series: &[RefSeries], out: &mut Vec<u8>) {
    out.push(RECORD_SERIES);
    for s in series {
        out.extend_from_slice(&s.series_ref.to_be_bytes());
        put_uvarint(out, s.labels.len() as u64);
        for l in s.labels.iter() {
            put_uvarint_str(out, &l.name);
            put_uvarint_str(out, &l.value);
        }
    }
}

/// Samples record: BE u64 base ref, BE i64 base t, then per sample varint(ref−base),
/// varint(t−base), BE f64 bits. Prometheus uses the first sample as the base, so its deltas
/// are 0/0; signed varints because later refs and times may be smaller than the base.
pub fn encode_samples(samples: &[RefSample], out: &mut Vec<u8>) {
    encode_samples_iter(samples.iter().copied(), out);
}

/// `encode_samples` over any sample source, so callers need not build a slice first.
pub fn encode_samples_iter(samples: impl Iterator<Item = RefSample>, out: &mut Vec<u8>) {
    out.push(RECORD_SAMPLES);
    let mut base: Option<(u64, i64)> = None;
    for s in samples {
        let (bref, bt) = *base.get_or_insert_with(|| {
            out.extend_from_slice(&s.series_ref.to_be_bytes());
            out.extend_from_slice(&s.t.to_be_bytes());
            (s.series_ref, s.t)
        });
        put_varint(out, s.series_ref.wrapping_sub(bref) as i64);
        put_varint(out, s.t.wrapping_sub(bt));
        out.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

/// Decodes a record body. `Ok(None)` means a record type we deliberately skip.
pub fn decode(rec: &[u8]) -> Result<Option<WalRecord>> {
    let Some((&typ, body)) = rec.split_first() else {
        return Err(WalError::BadRecord("empty record".into()));
    };
    match typ {
        RECORD_SERIES => decode_series(body).map(|s| Some(WalRecord::Series(s))),
        RECORD_SAMPLES => decode_samples(body).map(|s| Some(WalRecord::Samples(s))),
        // Tombstones, exemplars, metadata, histogram and later record kinds.
        3..=13 => Ok(None),
        other => Err(WalError::BadRecord(format!("unknown record type {other}"))),
    }
}

fn decode_series(body: &[u8]) -> Result<Vec<RefSeries>> {
    let mut d = Decoder { buf: body, pos: 0 };
    let mut out = Vec::new();
    while !d.done() {
        let series_ref = d.be_u64()?;
        let n = d.uvarint()?;
        // Each label needs at least two length bytes; guards against absurd preallocation.
        if n > (d.remaining() as u64) / 2 {
            return Err(d.err("label count larger than the record"));
        }
        let mut pairs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let name = d.uvarint_str()?;
            let value = d.uvarint_str()?;
            pairs.push(Label::new(name, value));
        }
        out.push(RefSeries {
            series_ref,
            labels: Labels::new(pairs),
        });
    }
    Ok(out)
}

fn decode_samples(body: &[u8]) -> Result<Vec<RefSample>> {
    let mut d = Decoder { buf: body, pos: 0 };
    let mut out = Vec::new();
    if d.done() {
        return Ok(out);
    }
    let base_ref = d.be_u64()?;
    let base_t = d.be_u64()? as i64;
    while !d.done() {
        let dref = d.varint()?;
        let dt = d.varint()?;
        let v = f64::from_bits(d.be_u64()?);
        out.push(RefSample {
            series_ref: base_ref.wrapping_add(dref as u64),
            t: base_t.wrapping_add(dt),
            v,
        });
    }
    Ok(out)
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

pub(crate) fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

fn put_uvarint_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Cursor over a record body; every read is bounds-checked.
struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn err(&self, what: &str) -> WalError {
        WalError::BadRecord(format!("{what} at record byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err("record truncated")),
        }
    }

    fn be_u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn uvarint(&mut self) -> Result<u64> {
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("varint truncated"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn varint(&mut self) -> Result<i64> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn uvarint_str(&mut self) -> Result<String> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| self.err("string length overflows"))?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("label string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_roundtrip() {
        let s = vec![
            RefSeries {
                series_ref: 1,
                labels: Labels::from_pairs([("__name__", "up"), ("job", "a\nb")]),
            },
            RefSeries {
                series_ref: u64::MAX,
                labels: Labels::empty(),
            },
        ];
        let mut buf = Vec::new();
        encode_series(&s, &mut buf);
        assert_eq!(buf[0], RECORD_SERIES);
        assert_eq!(decode(&buf).unwrap(), Some(WalRecord::Series(s)));
    }

    #[test]
    fn samples_roundtrip_with_negative_deltas() {
        let s = vec![
            RefSample {
                series_ref: 10,
                t: 1000,
                v: 1.5,
            },
            RefSample {
                series_ref: 3,
                t: 999,
                v: f64::from_bits(crate::storage::model::STALE_NAN_BITS),
            },
            RefSample {
                series_ref: 11,
                t: i64::MIN / 2,
                v: -0.0,
            },
        ];
        let mut buf = Vec::new();
        encode_samples(&s, &mut buf);
        let Some(WalRecord::Samples(got)) = decode(&buf).unwrap() else {
            panic!("wrong kind")
        };
        assert_eq!(got.len(), 3);
        for (a, b) in got.iter().zip(s.iter()) {
            assert_eq!(a.series_ref, b.series_ref);
            assert_eq!(a.t, b.t);
            assert_eq!(a.v.to_bits(), b.v.to_bits());
        }
    }

    #[test]
    fn samples_layout_matches_prometheus() {
        // base ref 5, base t 100, first sample has 0/0 deltas: 2 bytes of varint + 8 value bytes.
        let s = [
            RefSample {
                series_ref: 5,
                t: 100,
                v: 1.0,
            },
            RefSample {
                series_ref: 4,
                t: 101,
                v: 2.0,
            },
        ];
        let mut buf = Vec::new();
        encode_samples(&s, &mut buf);
        assert_eq!(buf.len(), 1 + 16 + 10 + 10);
        assert_eq!(&buf[17..19], &[0, 0]);
        // ref delta −1 zigzags to 1, t delta +1 zigzags to 2.
        assert_eq!(&buf[27..29], &[1, 2]);
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let mut buf = Vec::new();
        encode_series(
            &[RefSeries {
                series_ref: 1,
                labels: Labels::from_pairs([("a", "b")]),
            }],
            &mut buf,
        );
        for cut in 2..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[]).is_err());
        assert!(decode(&[99]).is_err());
        assert_eq!(decode(&[3, 1, 2]).unwrap(), None);
    }
}
