//! The WAL's physical layer: segment files of 32 KiB pages holding CRC-checked fragments
//! (`type | BE u16 len | BE u32 CRC32C | payload`), as in Prometheus `tsdb/wlog`. The writer
//! splits records into fragments and never lets a record cross a segment; the reader
//! reassembles records and reports the first corruption with the byte offset of the record
//! it broke, so the caller can truncate there.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Result, WalError};

pub const PAGE_SIZE: usize = 32 * 1024;
/// type byte + u16 length + u32 CRC.
pub const HEADER_SIZE: usize = 7;

const FRAG_FULL: u8 = 1;
const FRAG_FIRST: u8 = 2;
const FRAG_MIDDLE: u8 = 3;
const FRAG_LAST: u8 = 4;
const FLAG_SNAPPY: u8 = 0x08;
const FLAG_ZSTD: u8 = 0x10;
/// Zstandard frame magic number, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// `<dir>/%08d`.
pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:08}"))
}

/// Writes records into one segment file after another.
pub struct SegmentWriter {
    dir: PathBuf,
    /// Shared so that a group-commit fsync can run without holding the writer.
    file: Arc<File>,
    index: u64,
    page: Vec<u8>,
    /// Bytes of the current page that hold fragments (or padding).
    alloc: usize,
    /// Bytes of the current page already handed to the OS.
    flushed: usize,
    /// Whole pages written to the current segment.
    pages_written: usize,
    pages_per_segment: usize,
    fsync: bool,
}

impl SegmentWriter {
    /// Creates segment `index` in `dir` (which must exist) and writes into it.
    pub fn create(dir: &Path, index: u64, segment_size: usize, fsync: bool) -> Result<Self> {
        let file = Arc::new(create_segment(dir, index, fsync)?);
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            file,
            index,
            page: vec![0u8; PAGE_SIZE],
            alloc: 0,
            flushed: 0,
            pages_written: 0,
            pages_per_segment: (segment_size / PAGE_SIZE).max(1),
            fsync,
        })
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    /// The segment file being written (closed segments are already fsynced).
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    fn is_empty_segment(&self) -> bool {
        self.pages_written == 0 && self.alloc == 0
    }

    /// Would a record of `len` bytes fit in what is left of the current segment?
    fn fits(&self, len: usize) -> bool {
        let mut alloc = self.alloc;
        let mut pages_left = self.pages_per_segment - self.pages_written;
        let mut left = len;
        loop {
            if PAGE_SIZE - alloc <= HEADER_SIZE {
                pages_left -= 1;
                if pages_left == 0 {
                    return false;
                }
                alloc = 0;
            }
            let l = left.min(PAGE_SIZE - alloc - HEADER_SIZE);
            alloc += HEADER_SIZE + l;
            left -= l;
            if left == 0 {
                return true;
            }
        }
    }

    /// Buffers one record as fragments; whole pages go to the OS as they fill.
    /// Call `flush` to hand over the partial last page.
    pub fn write_record(&mut self, rec: &[u8]) -> Result<()> {
        if !self.fits(rec.len()) {
            if self.is_empty_segment() {
                return Err(WalError::RecordTooLarge {
                    len: rec.len(),
                    segment_size: self.pages_per_segment * PAGE_SIZE,
                });
            }
            self.next_segment()?;
        }
        let mut rest = rec;
        let mut first = true;
        loop {
            if PAGE_SIZE - self.alloc <= HEADER_SIZE {
                self.flush_page(true)?;
            }
            let l = rest.len().min(PAGE_SIZE - self.alloc - HEADER_SIZE);
            let (part, tail) = rest.split_at(l);
            let kind = match (first, tail.is_empty()) {
                (true, true) => FRAG_FULL,
                (true, false) => FRAG_FIRST,
                (false, false) => FRAG_MIDDLE,
                (false, true) => FRAG_LAST,
            };
            let a = self.alloc;
            self.page[a] = kind;
            self.page[a + 1..a + 3].copy_from_slice(&(l as u16).to_be_bytes());
            self.page[a + 3..a + 7].copy_from_slice(&crc32c::crc32c(part).to_be_bytes());
            self.page[a + 7..a + 7 + l].copy_from_slice(part);
            self.alloc += HEADER_SIZE + l;
            rest = tail;
            first = false;
            if rest.is_empty() {
                break;
            }
        }
        if PAGE_SIZE - self.alloc <= HEADER_SIZE {
            self.flush_page(true)?;
        }
        Ok(())
    }

    /// Writes the unflushed part of the current page; with `pad`, zero-fills the page and
    /// starts a new one.
    fn flush_page(&mut self, pad: bool) -> Result<()> {
        if pad {
            self.page[self.alloc..].fill(0);
            self.alloc = PAGE_SIZE;
        }
        if self.alloc > self.flushed {
            let path = segment_path(&self.dir, self.index);
            (&*self.file)
                .write_all(&self.page[self.flushed..self.alloc])
                .map_err(|e| WalError::io(&path, "write", e))?;
            self.flushed = self.alloc;
        }
        if self.alloc == PAGE_SIZE {
            self.pages_written += 1;
            self.alloc = 0;
            self.flushed = 0;
        }
        Ok(())
    }

    /// Hands everything buffered to the OS (survives a process kill, not a power loss).
    pub fn flush(&mut self) -> Result<()> {
        self.flush_page(false)
    }

    /// Flushes and fsyncs the current segment (survives a power loss).
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        let path = segment_path(&self.dir, self.index);
        self.file
            .sync_data()
            .map_err(|e| WalError::io(&path, "fsync", e))
    }

    /// Pads and closes the current segment and opens the next one. Closed segments are
    /// always fsynced, as in Prometheus, so only the newest segment can be torn.
    pub fn next_segment(&mut self) -> Result<u64> {
        if self.alloc > 0 {
            self.flush_page(true)?;
        }
        let path = segment_path(&self.dir, self.index);
        self.file
            .sync_data()
            .map_err(|e| WalError::io(&path, "fsync", e))?;
        let next = self.index + 1;
        self.file = Arc::new(create_segment(&self.dir, next, self.fsync)?);
        self.index = next;
        self.pages_written = 0;
        self.alloc = 0;
        self.flushed = 0;
        Ok(next)
    }
}

fn create_segment(dir: &Path, index: u64, fsync_dir: bool) -> Result<File> {
    let path = segment_path(dir, index);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, "create", e))?;
    if fsync_dir {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// fsyncs a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| WalError::io(dir, "open dir", e))?;
    d.sync_all().map_err(|e| WalError::io(dir, "fsync dir", e))
}

/// How reading a segment ended.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentEnd {
    Clean,
    /// The segment is unreadable from `offset` (the start of the broken record) on.
    Corrupt {
        offset: u64,
        reason: String,
    },
}

/// Reads every record of one segment in order, handing each decompressed record body and
/// its start offset to `on_record`. A `WalError::BadRecord` from the callback counts as
/// corruption at that record; any other callback error is returned as is.
pub fn read_segment(
    path: &Path,
    mut on_record: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<SegmentEnd> {
    read_segment_from(path, 0, |body, start, _| on_record(body, start))
}

/// Like [`read_segment`], starting at byte `from` (the start of a record, or the end of the
/// previous one: a fragment boundary), and giving each record's end offset too, so a reader
/// that follows a segment being written can resume after the last whole record it saw. A
/// record still being written reads as a torn tail (`Corrupt` at its start).
pub fn read_segment_from(
    path: &Path,
    from: u64,
    mut on_record: impl FnMut(&[u8], u64, u64) -> Result<()>,
) -> Result<SegmentEnd> {
    let mut file = File::open(path).map_err(|e| WalError::io(path, "open", e))?;
    let mut page = vec![0u8; PAGE_SIZE];
    let mut rec: Vec<u8> = Vec::new();
    let mut rec_start: Option<u64> = None;
    let mut rec_flags = 0u8;
    let mut page_off: u64 = from / PAGE_SIZE as u64 * PAGE_SIZE as u64;
    let mut first_p = (from - page_off) as usize;
    if page_off > 0 {
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(page_off))
            .map_err(|e| WalError::io(path, "seek", e))?;
    }
    loop {
        let n = read_full(&mut file, &mut page).map_err(|e| WalError::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        let mut p = std::mem::take(&mut first_p);
        while p < n {
            let frag_off = page_off + p as u64;
            let corrupt = |reason: String| SegmentEnd::Corrupt {
                offset: rec_start.unwrap_or(frag_off),
                reason,
            };
            let typ = page[p];
            if n - p < HEADER_SIZE || typ == 0 {
                if page[p..n].iter().any(|&b| b != 0) {
                    return Ok(corrupt(format!(
                        "non-zero bytes in page padding at offset {frag_off}"
                    )));
                }
                break;
            }
            let kind = typ & 0x07;
            if typ & 0xE0 != 0 || kind > FRAG_LAST || kind == 0 {
                return Ok(corrupt(format!(
                    "invalid fragment type {typ:#04x} at offset {frag_off}"
                )));
            }
            let len = usize::from(u16::from_be_bytes([page[p + 1], page[p + 2]]));
            let crc = u32::from_be_bytes([page[p + 3], page[p + 4], page[p + 5], page[p + 6]]);
            let end = p + HEADER_SIZE + len;
            if end > n {
                let why = if n < PAGE_SIZE {
                    "extends past the end of the segment (torn write)"
                } else {
                    "crosses a page boundary"
                };
                return Ok(corrupt(format!(
                    "fragment at offset {frag_off} of length {len} {why}"
                )));
            }
            let payload = &page[p + HEADER_SIZE..end];
            if crc32c::crc32c(payload) != crc {
                return Ok(corrupt(format!(
                    "CRC mismatch in fragment at offset {frag_off}"
                )));
            }
            match kind {
                FRAG_FULL | FRAG_FIRST => {
                    if rec_start.is_some() {
                        return Ok(corrupt(format!(
                            "new record starts at offset {frag_off} before the previous ended"
                        )));
                    }
                    rec.clear();
                    rec.extend_from_slice(payload);
                    rec_flags = typ;
                    rec_start = Some(frag_off);
                }
                _ => {
                    if rec_start.is_none() {
                        return Ok(corrupt(format!(
                            "continuation fragment at offset {frag_off} without a first fragment"
                        )));
                    }
                    rec.extend_from_slice(payload);
                }
            }
            p = end;
            if kind == FRAG_FULL || kind == FRAG_LAST {
                let start = rec_start.take().unwrap_or(frag_off);
                let decompressed: Vec<u8>;
                let body: &[u8] = if rec_flags & FLAG_ZSTD != 0 {
                    // The type byte is outside the CRC: without a zstd frame magic this is a
                    // damaged fragment header, not zstd data.
                    if !rec.starts_with(&ZSTD_MAGIC) {
                        return Ok(SegmentEnd::Corrupt {
                            offset: start,
                            reason: format!(
                                "record at offset {start} flagged zstd without a zstd frame"
                            ),
                        });
                    }
                    // Valid data we cannot read (Prometheus 2.48+ with zstd WAL compression):
                    // refuse to open rather than let the repair truncate it away.
                    return Err(WalError::Unsupported(format!(
                        "{}: zstd-compressed record at offset {start}",
                        path.display()
                    )));
                } else if rec_flags & FLAG_SNAPPY != 0 {
                    match snap::raw::Decoder::new().decompress_vec(&rec) {
                        Ok(v) => {
                            decompressed = v;
                            &decompressed
                        }
                        Err(e) => {
                            return Ok(SegmentEnd::Corrupt {
                                offset: start,
                                reason: format!("bad snappy data in record at offset {start}: {e}"),
                            })
                        }
                    }
                } else {
                    &rec
                };
                match on_record(body, start, page_off + p as u64) {
                    Ok(()) => {}
                    Err(WalError::BadRecord(reason)) => {
                        return Ok(SegmentEnd::Corrupt {
                            offset: start,
                            reason: format!("record at offset {start}: {reason}"),
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        page_off += n as u64;
        if n < PAGE_SIZE {
            break;
        }
    }
    if let Some(start) = rec_start {
        return Ok(SegmentEnd::Corrupt {
            offset: start,
            reason: format!("segment ends inside the record at offset {start} (torn write)"),
        });
    }
    Ok(SegmentEnd::Clean)
}

/// Reads until `buf` is full or EOF; returns the byte count.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path) -> (Vec<Vec<u8>>, SegmentEnd) {
        let mut out = Vec::new();
        let end = read_segment(path, |r, _| {
            out.push(r.to_vec());
            Ok(())
        })
        .unwrap();
        (out, end)
    }

    #[test]
    fn records_of_all_sizes_roundtrip_across_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 0, 1 << 20, false).unwrap();
        let recs: Vec<Vec<u8>> = (0..200usize)
            .map(|i| (0..(i * 997) % 70_000 + 1).map(|j| (i + j) as u8).collect())
            .collect();
        for r in &recs {
            w.write_record(r).unwrap();
        }
        w.flush().unwrap();
        // Records never cross segments, so several files were written.
        assert!(w.index() > 0);
        let mut got = Vec::new();
        for i in 0..=w.index() {
            let (r, end) = read_all(&segment_path(dir.path(), i));
            assert_eq!(end, SegmentEnd::Clean, "segment {i}");
            got.extend(r);
        }
        assert_eq!(got, recs);
    }

    #[test]
    fn torn_tail_is_reported_at_record_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 0, 1 << 20, false).unwrap();
        w.write_record(&[1u8; 100]).unwrap();
        w.write_record(&[2u8; 50_000]).unwrap();
        w.flush().unwrap();
        let path = segment_path(dir.path(), 0);
        let full = std::fs::metadata(&path).unwrap().len();
        for cut in [108u64, 200, 40_000, full - 1] {
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(cut).unwrap();
            let (r, end) = read_all(&path);
            assert_eq!(r.len(), 1, "cut {cut}");
            assert!(
                matches!(end, SegmentEnd::Corrupt { offset: 107, .. }),
                "cut {cut}: {end:?}"
            );
        }
    }

    #[test]
    fn flipped_byte_is_a_crc_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 0, 1 << 20, false).unwrap();
        for i in 0..10u8 {
            w.write_record(&[i; 30]).unwrap();
        }
        w.flush().unwrap();
        let path = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[5 * 37 + 10] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (r, end) = read_all(&path);
        assert_eq!(r.len(), 5);
        let SegmentEnd::Corrupt { offset, reason } = end else {
            panic!("not corrupt")
        };
        assert_eq!(offset, 5 * 37);
        assert!(reason.contains("CRC"), "{reason}");
    }

    #[test]
    fn snappy_records_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        let body = vec![7u8; 5000];
        let comp = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        let mut page = vec![FRAG_FULL | FLAG_SNAPPY];
        page.extend_from_slice(&(comp.len() as u16).to_be_bytes());
        page.extend_from_slice(&crc32c::crc32c(&comp).to_be_bytes());
        page.extend_from_slice(&comp);
        std::fs::write(&path, &page).unwrap();
        let (r, end) = read_all(&path);
        assert_eq!(end, SegmentEnd::Clean);
        assert_eq!(r, vec![body]);
    }

    #[test]
    fn zstd_records_are_refused_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        let payload = [0x28u8, 0xB5, 0x2F, 0xFD, 0, 1, 2, 3];
        let mut page = vec![FRAG_FULL | FLAG_ZSTD];
        page.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        page.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        page.extend_from_slice(&payload);
        std::fs::write(&path, &page).unwrap();
        assert!(matches!(
            read_segment(&path, |_, _| Ok(())),
            Err(WalError::Unsupported(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), page);
    }

    #[test]
    fn oversized_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 0, PAGE_SIZE, false).unwrap();
        assert!(matches!(
            w.write_record(&vec![0u8; PAGE_SIZE]),
            Err(WalError::RecordTooLarge { .. })
        ));
        w.write_record(&[1u8; 100]).unwrap();
    }
}
