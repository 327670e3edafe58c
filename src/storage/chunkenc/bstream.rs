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

/// Reads an MSB-first bit stream; every read is bounds-checked.
#[derive(Clone, Debug, Default)]
pub(super) struct BitReader {
    /// Absolute bit position within the payload.
    pub(super) pos: usize,
}

impl BitReader {
    pub(super) fn read_bit(&mut self, data: &[u8]) -> Option<bool> {
        let byte = *data.get(self.pos >> 3)?;
        let bit = (byte >> (7 - (self.pos & 7))) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    pub(super) fn read_bits(&mut self, data: &[u8], n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if n > 64 || self.pos + n as usize > data.len() * 8 {
            return None;
        }
        let idx = self.pos >> 3;
        let off = (self.pos & 7) as u32;
        // Fast path: a 9-byte window always covers off + n <= 7 + 64 bits.
        if let Some(window) = data.get(idx..idx + 9) {
            let mut word = [0u8; 8];
            word.copy_from_slice(&window[..8]);
            let mut v = u64::from_be_bytes(word) << off;
            if off > 0 {
                v |= (window[8] as u64) >> (8 - off);
            }
            self.pos += n as usize;
            return Some(v >> (64 - n));
        }
        let mut out: u64 = 0;
        let mut remaining = n;
        while remaining > 0 {
            let byte = *data.get(self.pos >> 3)? as u32;
            let avail = 8 - (self.pos & 7) as u32;
            let take = avail.min(remaining);
            let bits = (byte >> (avail - take)) & ((1u32 << take) - 1);
            out = (out << take) | bits as u64;
            remaining -= take;
            self.pos += take as usize;
        }
        Some(out)
    }

    /// Go `binary.ReadUvarint` over 8-bit reads; `None` on truncation, `Err` on overflow.
    pub(super) fn read_uvarint(&mut self, data: &[u8]) -> Option<std::result::Result<u64, ()>> {
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

pub(super) fn uvarint_bytes(mut v: u64, out: &mut [u8; 10]) -> usize {
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
