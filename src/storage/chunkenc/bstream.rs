//! Bit-level primitives of the XOR chunk: a writer that mirrors Prometheus' `bstream` state
//! exactly (so output is byte-identical to 2.42) and a bounds-checked MSB-first reader.

/// A bit stream writer with the exact state model of Prometheus' `bstream`: `count` is the
/// number of still-free low bits in the last byte. Reproducing that model (rather than a
/// plain bit cursor) is what makes our output byte-identical to 2.42, trailing zero included.
#[derive(Clone, Debug)]
pub(super) struct BitWriter {
    pub(super) stream: Vec<u8>,
    pub(super) count: u8,
}

impl BitWriter {
    pub(super) fn write_bit(&mut self, bit: bool) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        if bit {
            if let Some(last) = self.stream.last_mut() {
                *last |= 1 << (self.count - 1);
            }
        }
        self.count -= 1;
    }

    pub(super) fn write_byte(&mut self, byte: u8) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        if let Some(last) = self.stream.last_mut() {
            // `count` is 1..=8 here; a u16 shift keeps count == 8 well-defined.
            *last |= ((byte as u16) >> (8 - self.count)) as u8;
        }
        self.stream.push(((byte as u16) << self.count) as u8);
    }

    /// Writes the low `nbits` bits of `u`, most significant first. Equivalent to Go's
    /// `writeBits` (whole bytes via `writeByte`, the rest via `writeBit`) but fills up to a
    /// byte per step; the resulting `count` follows the same rules.
    pub(super) fn write_bits(&mut self, u: u64, nbits: u32) {
        if nbits == 0 {
            return;
        }
        let nbits = nbits.min(64);
        let u = if nbits == 64 {
            u
        } else {
            u & ((1u64 << nbits) - 1)
        };
        let mut pos = self.stream.len() * 8 - self.count as usize;
        let mut remaining = nbits;
        while remaining > 0 {
            let idx = pos >> 3;
            if idx >= self.stream.len() {
                self.stream.push(0);
            }
            let free = 8 - (pos & 7) as u32;
            let take = free.min(remaining);
            let bits = ((u >> (remaining - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(b) = self.stream.get_mut(idx) {
                *b |= bits << (free - take);
            }
            pos += take as usize;
            remaining -= take;
        }
        if nbits.is_multiple_of(8) && pos.is_multiple_of(8) {
            // Go's writeByte leaves a fresh, empty byte behind (the 2.42 trailing zero).
            if self.stream.len() == pos / 8 {
                self.stream.push(0);
            }
            self.count = 8;
        } else {
            self.count = ((8 - pos % 8) % 8) as u8;
        }
    }

    /// Go's `writeBits` literally, to check the fast path against.
    #[cfg(test)]
    pub(super) fn write_bits_reference(&mut self, u: u64, nbits: u32) {
        if nbits == 0 {
            return;
        }
        let mut u = u << (64 - nbits);
        let mut n = nbits;
        while n >= 8 {
            self.write_byte((u >> 56) as u8);
            u <<= 8;
            n -= 8;
        }
        while n > 0 {
            self.write_bit((u >> 63) == 1);
            u <<= 1;
            n -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_write_bits_matches_go_model() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..200 {
            let mut fast = BitWriter {
                stream: vec![0, 0],
                count: 0,
            };
            let mut slow = fast.clone();
            for _ in 0..40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let n = (x % 65) as u32;
                match x % 5 {
                    0 => {
                        fast.write_bit(x & 1 == 1);
                        slow.write_bit(x & 1 == 1);
                    }
                    1 => {
                        fast.write_byte(x as u8);
                        slow.write_byte(x as u8);
                    }
                    _ => {
                        fast.write_bits(x.rotate_left(7), n);
                        slow.write_bits_reference(x.rotate_left(7), n);
                    }
                }
                assert_eq!((&fast.stream, fast.count), (&slow.stream, slow.count));
            }
        }
    }
}

/// Reads an MSB-first bit stream through a 64-bit buffer that is refilled a word at a time,
/// so a sample costs a few shifts rather than a bounds-checked load per field. Every read is
/// checked against the end of the payload.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitReader {
    /// Index of the first byte of the payload not yet in `buf`.
    next: usize,
    /// The upcoming bits, most significant first. `valid` of them are counted as read in;
    /// the bits below are either the payload's true following bits or zero past its end,
    /// which is what lets `peek` hand out the whole word.
    buf: u64,
    valid: u32,
}

impl BitReader {
    /// A reader positioned at byte `at` of the payload.
    pub(crate) fn at_byte(at: usize) -> Self {
        BitReader {
            next: at,
            buf: 0,
            valid: 0,
        }
    }

    /// The absolute bit position of the next unread bit.
    pub(crate) fn pos(&self) -> usize {
        self.next * 8 - self.valid as usize
    }

    /// Tops `buf` up to at least 57 counted bits, or to the end of the payload.
    #[inline]
    fn refill(&mut self, data: &[u8]) {
        if self.valid > 56 {
            return;
        }
        if let Some(bytes) = data.get(self.next..self.next + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            // ORing in bits that are already there is harmless: they are the same bits.
            self.buf |= u64::from_be_bytes(word) >> self.valid;
            let whole = (64 - self.valid) / 8;
            self.next += whole as usize;
            self.valid += whole * 8;
            return;
        }
        while self.valid <= 56 {
            let Some(&b) = data.get(self.next) else {
                return;
            };
            self.buf |= (b as u64) << (56 - self.valid);
            self.next += 1;
            self.valid += 8;
        }
    }

    /// The next 64 bits without consuming them; bits past the end of `data` read as zero.
    /// At least 57 of them are real whenever the payload has that many left, which covers a
    /// timestamp prefix with its delta-of-delta (24 bits) or a value header (13).
    #[inline]
    pub(super) fn peek(&mut self, data: &[u8]) -> u64 {
        self.refill(data);
        self.buf
    }

    /// Consumes `n` bits that `peek` showed; false when that runs past the end of `data`
    /// (the cursor stays put, so an error can name where the short read began).
    #[inline]
    pub(super) fn skip(&mut self, data: &[u8], n: u32) -> bool {
        if n > self.valid {
            self.refill(data);
            if n > self.valid {
                return false;
            }
        }
        self.buf = if n >= 64 { 0 } else { self.buf << n };
        self.valid -= n;
        true
    }

    pub(super) fn read_bits(&mut self, data: &[u8], n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if n > 56 {
            if n > 64 {
                return None;
            }
            let start = self.clone();
            let hi = self.read_bits(data, n - 32);
            let lo = hi.and_then(|_| self.read_bits(data, 32));
            return match (hi, lo) {
                (Some(hi), Some(lo)) => Some((hi << 32) | lo),
                _ => {
                    *self = start;
                    None
                }
            };
        }
        self.refill(data);
        if n > self.valid {
            return None;
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.valid -= n;
        Some(v)
    }

    /// Go `binary.ReadUvarint` over 8-bit reads; `None` on truncation, `Err` on overflow.
    pub(crate) fn read_uvarint(&mut self, data: &[u8]) -> Option<std::result::Result<u64, ()>> {
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.read_bits(data, 8)? as u8;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Some(Err(()));
                }
                return Some(Ok(x | (b as u64) << shift));
            }
            x |= ((b & 0x7f) as u64) << shift;
            shift += 7;
        }
        Some(Err(()))
    }
}

pub(super) fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(super) fn zigzag_decode(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

pub(crate) fn uvarint_bytes(mut v: u64, out: &mut [u8; 10]) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Does `x` fit the asymmetric range -(2^(n-1)-1) ..= 2^(n-1) used by the dod buckets?
pub(super) fn bit_range(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}
