//! Byte-level encoding helpers shared by the block index, chunk and tombstone files: Go-style
//! (u)varints, big-endian integers, and a bounds-checked decoder that reports corruption with
//! the file name and absolute byte offset.

use super::{BlockError, Result};

/// Appends `v` as a Go `binary.PutUvarint`.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` as a Go `binary.PutVarint` (ZigZag then uvarint).
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_uvarint_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// A cursor over a byte slice that lives at absolute offset `base` of `file`. Every read is
/// bounds-checked and failures name the file and the offset where decoding stopped.
#[derive(Clone, Debug)]
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    file: &'a str,
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8], base: u64, file: &'a str) -> Self {
        Dec {
            buf,
            pos: 0,
            base,
            file,
        }
    }

    /// Absolute file offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn err(&self, reason: impl Into<String>) -> BlockError {
        BlockError::Corrupt {
            file: self.file.to_string(),
            offset: self.offset(),
            reason: reason.into(),
        }
    }

    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!(
                "truncated: need {n} bytes for {what}, {} left",
                self.remaining()
            ))),
        }
    }

    pub fn byte(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn be_u32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn be_u64(&mut self, what: &str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn uvarint(&mut self, what: &str) -> Result<u64> {
        let start = self.pos;
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                self.pos = start;
                return Err(self.err(format!("truncated varint for {what}")));
            };
            self.pos += 1;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    break;
                }
                return Ok(x | (b as u64) << shift);
            }
            x |= ((b & 0x7f) as u64) << shift;
            shift += 7;
        }
        self.pos = start;
        Err(self.err(format!("varint for {what} overflows 64 bits")))
    }

    pub fn varint(&mut self, what: &str) -> Result<i64> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub fn uvarint_u32(&mut self, what: &str) -> Result<u32> {
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| self.err(format!("{what} {v} does not fit 32 bits")))
    }

    /// A uvarint length followed by that many bytes of UTF-8.
    pub fn uvarint_str(&mut self, what: &str) -> Result<&'a str> {
        let n = self.uvarint(what)?;
        let n =
            usize::try_from(n).map_err(|_| self.err(format!("length {n} of {what} too large")))?;
        let at = self.offset();
        let b = self.bytes(n, what)?;
        std::str::from_utf8(b).map_err(|e| BlockError::Corrupt {
            file: self.file.to_string(),
            offset: at,
            reason: format!("{what} is not valid UTF-8: {e}"),
        })
    }
}

/// Reads a "table framed" section at `off`: `len u32 | body | crc32c(body)`, returning a decoder
/// over the body after verifying the checksum.
pub fn framed<'a>(file_bytes: &'a [u8], off: u64, file: &'a str, what: &str) -> Result<Dec<'a>> {
    let start = usize::try_from(off).ok().filter(|&s| s <= file_bytes.len());
    let Some(start) = start else {
        return Err(BlockError::Corrupt {
            file: file.to_string(),
            offset: off,
            reason: format!(
                "{what} offset beyond end of file ({} bytes)",
                file_bytes.len()
            ),
        });
    };
    let mut d = Dec::new(&file_bytes[start..], off, file);
    let len = d.be_u32(&format!("{what} length"))? as usize;
    let body_off = d.offset();
    let body = d.bytes(len, what)?;
    let want = d.be_u32(&format!("{what} checksum"))?;
    let got = crc32c(body);
    if got != want {
        return Err(BlockError::Corrupt {
            file: file.to_string(),
            offset: body_off,
            reason: format!("{what} checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
        });
    }
    Ok(Dec::new(body, body_off, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_go() {
        let mut b = Vec::new();
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        b.clear();
        put_varint(&mut b, -1);
        assert_eq!(b, [0x01]);
        let mut d = Dec::new(&[0xac, 0x02, 0x01], 0, "f");
        assert_eq!(d.uvarint("x").unwrap(), 300);
        assert_eq!(d.varint("x").unwrap(), -1);
        let e = d.uvarint("x").unwrap_err().to_string();
        assert!(e.contains("offset 3"), "{e}");
        let mut over = Dec::new(&[0xff; 11], 10, "f");
        assert!(over.uvarint("x").is_err());
    }

    #[test]
    fn framed_checks_crc() {
        let mut b = vec![0, 0, 0, 2, 7, 8];
        b.extend_from_slice(&crc32c(&[7, 8]).to_be_bytes());
        assert_eq!(framed(&b, 0, "f", "t").unwrap().remaining(), 2);
        b[4] = 9;
        assert!(framed(&b, 0, "f", "t")
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        assert!(framed(&b, 100, "f", "t").is_err());
    }
}
