//! Pure decoders for the pieces of a block that the store gateway fetches with ranged reads:
//! the TOC, a postings list, a series entry and a chunk record. Each takes the bytes that start
//! at a known absolute file offset, so corruption is reported with the file and the real offset.
//! They also say how many bytes a record needs when the fetched range turned out too short.

use crate::storage::block::encoding::{crc32c, Dec};
use crate::storage::block::index::{ChunkMeta, Toc, TOC_LEN};
use crate::storage::block::index_reader::decode_series_body;
use crate::storage::block::BlockError;

/// Outcome of decoding a record whose length is only known once its header is read.
pub enum Decoded<T> {
    /// The record, fully decoded and checksum-verified.
    Done(T),
    /// The buffer is too short: the record needs this many bytes from its start.
    NeedBytes(u64),
}

type Result<T> = std::result::Result<T, BlockError>;

fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> BlockError {
    BlockError::Corrupt {
        file: file.to_string(),
        offset,
        reason: reason.into(),
    }
}

/// Parses the 52-byte TOC found at absolute offset `at`, verifying its CRC and that every
/// section offset lies before the TOC.
pub fn parse_toc(bytes: &[u8], at: u64, file: &str) -> Result<Toc> {
    if bytes.len() != TOC_LEN {
        return Err(corrupt(
            file,
            at,
            format!("TOC is {} bytes, want {TOC_LEN}", bytes.len()),
        ));
    }
    let (body, crc) = bytes.split_at(48);
    let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32c(body) != want {
        return Err(corrupt(file, at, "TOC checksum mismatch"));
    }
    let mut d = Dec::new(body, at, file);
    let toc = Toc {
        symbols: d.be_u64("toc symbols")?,
        series: d.be_u64("toc series")?,
        label_indices: d.be_u64("toc label indices")?,
        label_indices_table: d.be_u64("toc label offset table")?,
        postings: d.be_u64("toc postings")?,
        postings_table: d.be_u64("toc postings offset table")?,
    };
    for off in [toc.symbols, toc.series, toc.postings, toc.postings_table] {
        if off < 5 || off >= at {
            return Err(corrupt(
                file,
                at,
                format!("TOC section offset {off} outside the index body"),
            ));
        }
    }
    Ok(toc)
}

/// The smallest section start in the TOC that lies after `off` (or `toc_at` when none does):
/// an upper bound for whatever starts at `off`.
pub fn section_end(toc: &Toc, toc_at: u64, off: u64) -> u64 {
    [
        toc.symbols,
        toc.series,
        toc.label_indices,
        toc.label_indices_table,
        toc.postings,
        toc.postings_table,
    ]
    .into_iter()
    .filter(|&s| s > off)
    .min()
    .unwrap_or(toc_at)
    .min(toc_at)
}

/// Decodes the postings list (`len u32 | count u32 | ids... | crc`) that starts at absolute
/// offset `at`, with `buf` holding the bytes from there on.
pub fn decode_postings(buf: &[u8], at: u64, file: &str) -> Result<Decoded<Vec<u32>>> {
    if buf.len() < 4 {
        return Ok(Decoded::NeedBytes(8));
    }
    let mut d = Dec::new(buf, at, file);
    let len = d.be_u32("postings length")? as u64;
    let need = 4 + len + 4;
    if (buf.len() as u64) < need {
        return Ok(Decoded::NeedBytes(need));
    }
    let body_at = d.offset();
    let body = d.bytes(len as usize, "postings list")?;
    let want = d.be_u32("postings checksum")?;
    if crc32c(body) != want {
        return Err(corrupt(file, body_at, "postings list checksum mismatch"));
    }
    let mut b = Dec::new(body, body_at, file);
    let count = b.be_u32("postings count")? as usize;
    if b.remaining() != count.saturating_mul(4) {
        return Err(b.err(format!(
            "postings list announces {count} entries but holds {} bytes",
            b.remaining()
        )));
    }
    let mut ids = Vec::with_capacity(count);
    let mut prev: Option<u32> = None;
    for _ in 0..count {
        let id = b.be_u32("series id")?;
        if prev.is_some_and(|p| p >= id) {
            return Err(b.err("postings list is not strictly ascending"));
        }
        prev = Some(id);
        ids.push(id);
    }
    Ok(Decoded::Done(ids))
}

/// A series entry with its label references still unresolved (symbols live in the header).
#[derive(Clone, Debug, PartialEq)]
pub struct RawSeries {
    /// (name ref, value ref) pairs.
    pub label_refs: Vec<(u32, u32)>,
    pub chunks: Vec<ChunkMeta>,
}

/// Length in bytes of the series entry at the start of `buf` (`uvarint len | body | crc`), or
/// `None` when even the length prefix is cut off.
fn series_entry_len(buf: &[u8], at: u64, file: &str) -> Result<Option<u64>> {
    let mut d = Dec::new(buf, at, file);
    match d.uvarint("series entry length") {
        Ok(len) => {
            let prefix = d.offset() - at;
            // A corrupt length must not overflow; the caller then fails to fetch that much.
            Ok(Some(prefix.saturating_add(len).saturating_add(4)))
        }
        Err(_) if buf.len() < 10 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Decodes the series entry starting at absolute offset `at`. Returns the entry and the exact
/// number of bytes it occupies (so the caller can cache just those).
pub fn decode_series(buf: &[u8], at: u64, file: &str) -> Result<Decoded<(RawSeries, usize)>> {
    let Some(total) = series_entry_len(buf, at, file)? else {
        return Ok(Decoded::NeedBytes(16));
    };
    if (buf.len() as u64) < total {
        return Ok(Decoded::NeedBytes(total));
    }
    let mut d = Dec::new(buf, at, file);
    let len = d.uvarint("series entry length")? as usize;
    let body_at = d.offset();
    let body = d.bytes(len, "series entry")?;
    let want = d.be_u32("series checksum")?;
    if crc32c(body) != want {
        return Err(corrupt(file, body_at, "series entry checksum mismatch"));
    }
    let (label_refs, chunks) = decode_series_body(body, body_at, file)?;
    Ok(Decoded::Done((
        RawSeries { label_refs, chunks },
        total as usize,
    )))
}

/// Decodes the chunk record (`uvarint len | encoding | data | crc(encoding+data)`) starting at
/// absolute offset `at` of a segment. Returns the encoding byte, the payload and the record size.
pub fn decode_chunk<'a>(
    buf: &'a [u8],
    at: u64,
    file: &str,
) -> Result<Decoded<(u8, &'a [u8], usize)>> {
    let mut d = Dec::new(buf, at, file);
    let len = match d.uvarint("chunk length") {
        Ok(l) => l,
        Err(_) if buf.len() < 10 => return Ok(Decoded::NeedBytes(16)),
        Err(e) => return Err(e),
    };
    let prefix = d.offset() - at;
    let total = prefix
        .checked_add(len)
        .and_then(|t| t.checked_add(1 + 4))
        .ok_or_else(|| corrupt(file, at, format!("chunk length {len} overflows")))?;
    if (buf.len() as u64) < total {
        return Ok(Decoded::NeedBytes(total));
    }
    // Slice `buf` directly (not through the decoder) so the payload borrows only `buf`.
    let start = prefix as usize;
    let crc_at = start + 1 + len as usize;
    let enc_and_data = &buf[start..crc_at];
    let c = &buf[crc_at..crc_at + 4];
    let want = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    if crc32c(enc_and_data) != want {
        return Err(corrupt(file, at, "chunk checksum mismatch"));
    }
    Ok(Decoded::Done((
        enc_and_data[0],
        &enc_and_data[1..],
        total as usize,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::block::encoding::{put_uvarint, put_varint};

    #[test]
    fn postings_roundtrip_and_short_buffers() {
        let mut body = Vec::new();
        body.extend_from_slice(&3u32.to_be_bytes());
        for id in [2u32, 5, 9] {
            body.extend_from_slice(&id.to_be_bytes());
        }
        let mut rec = (body.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(&body);
        rec.extend_from_slice(&crc32c(&body).to_be_bytes());
        match decode_postings(&rec, 100, "f").unwrap() {
            Decoded::Done(ids) => assert_eq!(ids, vec![2, 5, 9]),
            Decoded::NeedBytes(_) => panic!("complete record"),
        }
        match decode_postings(&rec[..10], 100, "f").unwrap() {
            Decoded::NeedBytes(n) => assert_eq!(n, rec.len() as u64),
            Decoded::Done(_) => panic!("short record"),
        }
        let mut bad = rec.clone();
        bad[6] ^= 1;
        let e = decode_postings(&bad, 100, "f").err().unwrap().to_string();
        assert!(e.contains("checksum") && e.contains("104"), "{e}");
    }

    #[test]
    fn series_roundtrip() {
        let mut body = Vec::new();
        put_uvarint(&mut body, 1);
        put_uvarint(&mut body, 3);
        put_uvarint(&mut body, 4);
        put_uvarint(&mut body, 2);
        put_varint(&mut body, 1000);
        put_uvarint(&mut body, 10);
        put_uvarint(&mut body, 8);
        put_uvarint(&mut body, 5);
        put_uvarint(&mut body, 20);
        put_varint(&mut body, 30);
        let mut rec = Vec::new();
        put_uvarint(&mut rec, body.len() as u64);
        rec.extend_from_slice(&body);
        rec.extend_from_slice(&crc32c(&body).to_be_bytes());
        rec.extend_from_slice(&[0, 0, 0]);
        let Decoded::Done((s, n)) = decode_series(&rec, 16, "f").unwrap() else {
            panic!("complete record");
        };
        assert_eq!(n, rec.len() - 3);
        assert_eq!(s.label_refs, vec![(3, 4)]);
        assert_eq!(s.chunks[0].min_time, 1000);
        assert_eq!(s.chunks[0].max_time, 1010);
        assert_eq!(s.chunks[1].min_time, 1015);
        assert_eq!(s.chunks[1].max_time, 1035);
        assert_eq!(s.chunks[1].reference, 38);
        assert!(matches!(
            decode_series(&rec[..5], 16, "f").unwrap(),
            Decoded::NeedBytes(_)
        ));
    }

    #[test]
    fn chunk_checksum_and_toc_are_checked() {
        let mut rec = Vec::new();
        put_uvarint(&mut rec, 3);
        rec.extend_from_slice(&[1, 7, 8, 9]);
        let crc = crc32c(&[1, 7, 8, 9]);
        rec.extend_from_slice(&crc.to_be_bytes());
        let Decoded::Done((enc, data, n)) = decode_chunk(&rec, 8, "c").unwrap() else {
            panic!("complete");
        };
        assert_eq!((enc, data, n), (1, &[7u8, 8, 9][..], rec.len()));
        rec[2] ^= 0xff;
        assert!(decode_chunk(&rec, 8, "c").is_err());

        let toc = Toc {
            symbols: 5,
            series: 100,
            label_indices: 0,
            label_indices_table: 0,
            postings: 200,
            postings_table: 300,
        };
        let enc = toc.encode();
        assert_eq!(parse_toc(&enc, 400, "i").unwrap(), toc);
        assert_eq!(section_end(&toc, 400, 100), 200);
        assert_eq!(section_end(&toc, 400, 300), 400);
        assert!(parse_toc(&enc, 250, "i").is_err());
        let mut bad = enc.clone();
        bad[3] ^= 1;
        assert!(parse_toc(&bad, 400, "i").is_err());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode_postings(&buf, 8, "f");
            let _ = decode_series(&buf, 16, "f");
            let _ = decode_chunk(&buf, 8, "f");
            if buf.len() >= TOC_LEN {
                let _ = parse_toc(&buf[..TOC_LEN], 1000, "f");
            }
        }
    }
}
