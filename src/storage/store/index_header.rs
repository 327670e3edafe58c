//! The local index header of a bucket block (built by `header_build`): the TOC, the symbol
//! table and the postings offset table of the block's `index`, in one checksummed file under the
//! cache dir. Opening verifies the file and keeps only samples in RAM: every 32nd symbol offset
//! and every 32nd postings-table entry per label name (plus the last), like Prometheus and
//! Thanos. Lookups read just the span between two samples with positioned reads (no mmap), so
//! an opened header costs its samples and nothing that grows with the series count. A header
//! that fails its checks is rebuilt by the caller.
//!
//! File layout (all integers big-endian):
//! `magic u32 | format u8 | index format u8 | 0u16 | index size u64 | TOC 6×u64 |
//!  symbol table length u64 | postings table length u64 | symbol table | postings table | crc32c`

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ulid::Ulid;

use super::decode::section_end;
pub use super::header_build::build_header;
use super::header_build::{corrupt, crc_of_reader, io_err};
use super::Result;
use crate::storage::block::encoding::Dec;
use crate::storage::block::index::{Toc, INDEX_FORMAT_V2, TOC_LEN};

pub const HEADER_MAGIC: u32 = 0x5354_4831;
pub const HEADER_FORMAT: u8 = 1;
pub(super) const FIXED_LEN: usize = 80;
/// One in-memory sample per this many postings-table entries of a label name.
pub const POSTINGS_SAMPLING: usize = 32;
const SYMBOL_SAMPLING: usize = 32;

/// Path of the header file of `ulid` under `dir`.
pub fn header_path(dir: &Path, ulid: Ulid) -> PathBuf {
    dir.join(format!("{ulid}.index-header"))
}

/// One sampled postings-table entry.
#[derive(Debug)]
struct Sample {
    value: String,
    /// Header-file position of the entry.
    pos: u32,
    /// Index offset of its postings list.
    offset: u64,
}

/// In-memory samples of one label name's postings-table entries.
#[derive(Debug)]
struct NameIndex {
    /// Entries 0, 32, 64, ... and the last one.
    samples: Vec<Sample>,
    count: u32,
    /// Header-file position just past the name's last entry.
    end_pos: u32,
    /// Postings offset of the entry after the name's last one (the end of its last list).
    next_offset: u64,
}

/// One decoded postings-table entry.
struct Entry<'a> {
    value: &'a str,
    /// Absolute offset of the postings list in the index.
    offset: u64,
    /// Header-file position of the next entry.
    next: usize,
}

/// Sequential reader over a verified region of the header file, for the one scan at open. It
/// keeps a window of up to 64 KiB (more only for a longer string), so memory stays flat.
struct Stream<'a> {
    file: &'a File,
    buf: Vec<u8>,
    /// Read position inside `buf`.
    off: usize,
    /// File position of `buf[0]`.
    buf_at: u64,
    end: u64,
    name: &'a str,
}

const STREAM_WINDOW: usize = 64 * 1024;

impl<'a> Stream<'a> {
    fn new(file: &'a File, from: u64, end: u64, name: &'a str) -> Result<Self> {
        Ok(Stream {
            file,
            buf: Vec::new(),
            off: 0,
            buf_at: from,
            end,
            name,
        })
    }

    fn pos(&self) -> u64 {
        self.buf_at + self.off as u64
    }

    /// Makes at least `n` bytes available at the read position (fewer only at the region end).
    fn ensure(&mut self, n: usize) -> Result<()> {
        if self.buf.len() - self.off >= n {
            return Ok(());
        }
        let keep = self.buf.len() - self.off;
        self.buf.copy_within(self.off.., 0);
        self.buf.truncate(keep);
        self.buf_at += self.off as u64;
        self.off = 0;
        let room = self.end.saturating_sub(self.buf_at) as usize;
        let want = n.max(STREAM_WINDOW).min(room);
        if want > keep {
            let at = self.buf_at + keep as u64;
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf[keep..], at)
                .map_err(|e| corrupt(self.name, at, format!("reading header: {e}")))?;
        }
        Ok(())
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        self.ensure(n)?;
        if self.buf.len() - self.off < n {
            return Err(corrupt(self.name, self.pos(), format!("truncated {what}")));
        }
        let s = &self.buf[self.off..self.off + n];
        self.off += n;
        Ok(s)
    }

    fn be_u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn uvarint(&mut self, what: &str) -> Result<u64> {
        self.ensure(10)?;
        let at = self.pos();
        let rest = &self.buf[self.off..];
        let mut d = Dec::new(rest, at, self.name);
        let v = d.uvarint(what)?;
        self.off += (d.offset() - at) as usize;
        Ok(v)
    }

    /// Reads a uvarint-string into `out` (reusing its buffer).
    fn string(&mut self, out: &mut String, what: &str) -> Result<()> {
        let n = self.uvarint(what)?;
        let at = self.pos();
        if n > self.end.saturating_sub(at) {
            return Err(corrupt(
                self.name,
                at,
                format!("{what} of {n} bytes is truncated"),
            ));
        }
        let name = self.name;
        let b = self.take(n as usize, what)?;
        let s = std::str::from_utf8(b)
            .map_err(|e| corrupt(name, at, format!("{what} is not UTF-8: {e}")))?;
        out.clear();
        out.push_str(s);
        Ok(())
    }
}

/// An opened index header: the file plus the sampled tables.
pub struct IndexHeader {
    name: String,
    file: File,
    index_size: u64,
    toc: Toc,
    symbol_count: u32,
    symbol_samples: Vec<u32>,
    sym_end: usize,
    names: BTreeMap<String, NameIndex>,
}

impl IndexHeader {
    /// Opens and fully verifies a header file (size, magic, whole-file checksum, both tables).
    pub fn open(path: &Path, block: Ulid) -> Result<Self> {
        let name = format!("{block}/index (header {})", path.display());
        let mut file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        if len < FIXED_LEN as u64 + 4 || len > u32::MAX as u64 {
            return Err(corrupt(&name, 0, format!("header file of {len} bytes")));
        }
        let (crc, _) = crc_of_reader(&mut file, len - 4).map_err(io_err(path))?;
        let mut tail = [0u8; 4];
        file.read_exact_at(&mut tail, len - 4)
            .map_err(io_err(path))?;
        if crc != u32::from_be_bytes(tail) {
            return Err(corrupt(&name, len - 4, "header file checksum mismatch"));
        }
        let mut fixed = [0u8; FIXED_LEN];
        file.read_exact_at(&mut fixed, 0).map_err(io_err(path))?;
        let mut d = Dec::new(&fixed, 0, &name);
        if d.be_u32("header magic")? != HEADER_MAGIC {
            return Err(corrupt(&name, 0, "bad header magic"));
        }
        let format = d.byte("header format")?;
        if format != HEADER_FORMAT {
            return Err(corrupt(&name, 4, format!("unknown header format {format}")));
        }
        let index_version = d.byte("index format")?;
        if index_version != INDEX_FORMAT_V2 {
            return Err(corrupt(&name, 5, format!("index format {index_version}")));
        }
        d.bytes(2, "padding")?;
        let index_size = d.be_u64("index size")?;
        let toc = Toc {
            symbols: d.be_u64("toc")?,
            series: d.be_u64("toc")?,
            label_indices: d.be_u64("toc")?,
            label_indices_table: d.be_u64("toc")?,
            postings: d.be_u64("toc")?,
            postings_table: d.be_u64("toc")?,
        };
        let sym_len = d.be_u64("symbol table length")?;
        let pt_len = d.be_u64("postings table length")?;
        let expect = (FIXED_LEN as u64)
            .checked_add(sym_len)
            .and_then(|x| x.checked_add(pt_len))
            .and_then(|x| x.checked_add(4));
        if expect != Some(len) || sym_len < 12 || pt_len < 12 {
            return Err(corrupt(&name, 0, "header section lengths do not add up"));
        }
        if index_size < (5 + TOC_LEN) as u64 {
            return Err(corrupt(
                &name,
                8,
                format!("index size {index_size} too small"),
            ));
        }
        let pt_at = FIXED_LEN as u64 + sym_len;
        let mut h = IndexHeader {
            name,
            file,
            index_size,
            toc,
            symbol_count: 0,
            symbol_samples: Vec::new(),
            sym_end: (pt_at - 4) as usize,
            names: BTreeMap::new(),
        };
        h.scan_symbols()?;
        h.names = h.sample_postings_table(pt_at + 4, len - 8)?;
        Ok(h)
    }

    fn scan_symbols(&mut self) -> Result<()> {
        let start = FIXED_LEN as u64 + 4;
        let mut s = Stream::new(&self.file, start, self.sym_end as u64, &self.name)?;
        let count = s.be_u32("symbol count")?;
        let mut samples = Vec::with_capacity(count as usize / SYMBOL_SAMPLING + 1);
        let mut sym = String::new();
        for i in 0..count {
            if (i as usize).is_multiple_of(SYMBOL_SAMPLING) {
                samples.push(s.pos() as u32);
            }
            s.string(&mut sym, "symbol")?;
        }
        if s.pos() != self.sym_end as u64 {
            return Err(corrupt(
                &self.name,
                s.pos(),
                "trailing bytes after the last symbol",
            ));
        }
        self.symbol_count = count;
        self.symbol_samples = samples;
        Ok(())
    }

    /// One pass over the postings offset table: checks that it is sorted and keeps every 32nd
    /// entry of each name plus the name's last entry.
    fn sample_postings_table(&self, from: u64, end: u64) -> Result<BTreeMap<String, NameIndex>> {
        let mut s = Stream::new(&self.file, from, end, &self.name)?;
        let count = s.be_u32("postings table entry count")?;
        let mut names: BTreeMap<String, NameIndex> = BTreeMap::new();
        let (mut name, mut value) = (String::new(), String::new());
        // The name being sampled and its last entry (value, position, offset).
        let mut cur: Option<(String, NameIndex)> = None;
        let mut last = (String::new(), 0u32, 0u64);
        for _ in 0..count {
            let pos = s.pos() as u32;
            let keys = s.uvarint("postings table key count")?;
            if keys != 2 {
                return Err(corrupt(
                    &self.name,
                    pos as u64,
                    format!("entry has {keys} keys"),
                ));
            }
            s.string(&mut name, "label name")?;
            s.string(&mut value, "label value")?;
            let offset = s.uvarint("postings offset")?;
            let same_name = cur.as_ref().is_some_and(|(n, _)| *n == name);
            if let Some((n, _)) = &cur {
                if (n.as_str(), last.0.as_str()) >= (name.as_str(), value.as_str()) {
                    return Err(corrupt(
                        &self.name,
                        pos as u64,
                        "postings offset table is not sorted",
                    ));
                }
            }
            if !same_name {
                if let Some((n, mut ni)) = cur.take() {
                    seal(&mut ni, &last, pos, offset);
                    names.insert(n, ni);
                }
                let ni = NameIndex {
                    samples: Vec::new(),
                    count: 0,
                    end_pos: 0,
                    next_offset: 0,
                };
                cur = Some((name.clone(), ni));
            }
            if let Some((_, ni)) = cur.as_mut() {
                if (ni.count as usize).is_multiple_of(POSTINGS_SAMPLING) {
                    ni.samples.push(Sample {
                        value: value.clone(),
                        pos,
                        offset,
                    });
                }
                ni.count += 1;
            }
            last.0.clear();
            last.0.push_str(&value);
            last.1 = pos;
            last.2 = offset;
        }
        if s.pos() != end {
            return Err(corrupt(
                &self.name,
                s.pos(),
                "trailing bytes in the postings offset table",
            ));
        }
        if let Some((n, mut ni)) = cur.take() {
            let toc_at = self.index_size - TOC_LEN as u64;
            seal(
                &mut ni,
                &last,
                end as u32,
                section_end(&self.toc, toc_at, last.2),
            );
            names.insert(n, ni);
        }
        Ok(names)
    }

    /// Reads header bytes `[from, to)`.
    fn read_span(&self, from: usize, to: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; to.saturating_sub(from)];
        self.file
            .read_exact_at(&mut buf, from as u64)
            .map_err(|e| corrupt(&self.name, from as u64, format!("reading header: {e}")))?;
        Ok(buf)
    }

    /// Decodes the entry at header position `pos` from `buf`, which starts at position `base`.
    fn entry_in<'b>(&'b self, buf: &'b [u8], base: usize, pos: usize) -> Result<Entry<'b>> {
        let rest = buf.get(pos.saturating_sub(base)..).unwrap_or(&[]);
        let mut d = Dec::new(rest, pos as u64, &self.name);
        let keys = d.uvarint("postings table key count")?;
        if keys != 2 {
            return Err(d
                .err(format!("postings table entry has {keys} keys, want 2"))
                .into());
        }
        d.uvarint_str("label name")?;
        let value = d.uvarint_str("label value")?;
        let offset = d.uvarint("postings offset")?;
        Ok(Entry {
            value,
            offset,
            next: d.offset() as usize,
        })
    }

    /// Byte range of a postings list, from its offset to where the next list starts. A foreign
    /// writer may order lists differently: then a guess, and the decoder asks for more.
    fn range(&self, offset: u64, next_offset: u64) -> (u64, u64) {
        let toc_at = self.index_size - TOC_LEN as u64;
        let end = if next_offset > offset {
            next_offset
        } else {
            offset + 4096
        };
        (offset, end.min(toc_at))
    }

    pub fn toc(&self) -> Toc {
        self.toc
    }

    pub fn index_size(&self) -> u64 {
        self.index_size
    }

    /// Byte range of the postings list of `name`=`value`, `None` when the pair is absent.
    pub fn postings_range(&self, name: &str, value: &str) -> Result<Option<(u64, u64)>> {
        let Some(ni) = self.names.get(name) else {
            return Ok(None);
        };
        let i = ni.samples.partition_point(|s| s.value.as_str() <= value);
        let Some(i) = i.checked_sub(1) else {
            return Ok(None);
        };
        let sample = &ni.samples[i];
        let Some(next) = ni.samples.get(i + 1) else {
            // The name's last entry: its list ends where the following name's first begins.
            return Ok((sample.value == value).then(|| self.range(sample.offset, ni.next_offset)));
        };
        let (from, to) = (sample.pos as usize, next.pos as usize);
        let buf = self.read_span(from, to)?;
        let mut pos = from;
        while pos < to {
            let e = self.entry_in(&buf, from, pos)?;
            if e.value > value {
                break;
            }
            if e.value == value {
                let following = if e.next < to {
                    self.entry_in(&buf, from, e.next)?.offset
                } else {
                    next.offset
                };
                return Ok(Some(self.range(e.offset, following)));
            }
            pos = e.next;
        }
        Ok(None)
    }

    /// Every value of `name` (sorted) with its postings byte range, for values where `keep`
    /// holds.
    pub fn values_where(
        &self,
        name: &str,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<Vec<(String, (u64, u64))>> {
        let Some(ni) = self.names.get(name) else {
            return Ok(Vec::new());
        };
        let Some(first) = ni.samples.first() else {
            return Ok(Vec::new());
        };
        let from = first.pos as usize;
        let buf = self.read_span(from, ni.end_pos as usize)?;
        let mut entries: Vec<(&str, u64)> = Vec::with_capacity(ni.count as usize);
        let mut pos = from;
        for _ in 0..ni.count {
            let e = self.entry_in(&buf, from, pos)?;
            entries.push((e.value, e.offset));
            pos = e.next;
        }
        let mut out = Vec::new();
        for (i, (value, offset)) in entries.iter().enumerate() {
            if keep(value) {
                let following = entries.get(i + 1).map_or(ni.next_offset, |e| e.1);
                out.push((value.to_string(), self.range(*offset, following)));
            }
        }
        Ok(out)
    }

    /// Sorted label names, without the all-postings key "".
    pub fn label_names(&self) -> Vec<String> {
        self.names
            .keys()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect()
    }

    /// Sorted values of `name`.
    pub fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .values_where(name, |_| true)?
            .into_iter()
            .map(|(v, _)| v)
            .collect())
    }

    /// The string of symbol reference `r` (its position in the symbol table).
    pub fn symbol(&self, r: u32) -> Result<String> {
        if r >= self.symbol_count {
            return Err(corrupt(
                &self.name,
                0,
                format!(
                    "unknown symbol reference {r} ({} symbols)",
                    self.symbol_count
                ),
            ));
        }
        let k = r as usize / SYMBOL_SAMPLING;
        let Some(&from) = self.symbol_samples.get(k) else {
            return Err(corrupt(&self.name, 0, format!("no sample for symbol {r}")));
        };
        let to = self
            .symbol_samples
            .get(k + 1)
            .map_or(self.sym_end, |&p| p as usize);
        let buf = self.read_span(from as usize, to)?;
        let mut d = Dec::new(&buf, from as u64, &self.name);
        for _ in 0..r as usize % SYMBOL_SAMPLING {
            d.uvarint_str("symbol")?;
        }
        Ok(d.uvarint_str("symbol")?.to_string())
    }

    /// Approximate heap bytes held by the samples.
    pub fn heap_bytes(&self) -> usize {
        let names: usize = self
            .names
            .iter()
            .map(|(k, ni)| {
                k.len() + 72 + ni.samples.iter().map(|s| s.value.len() + 40).sum::<usize>()
            })
            .sum();
        names + self.symbol_samples.len() * 4
    }
}

/// Finishes a name: its last entry becomes a sample (lookups past it stop at once) and the
/// position/offset of the entry after it bound its last entry and list.
fn seal(ni: &mut NameIndex, last: &(String, u32, u64), end_pos: u32, next_offset: u64) {
    if ni.samples.last().is_none_or(|s| s.pos != last.1) {
        ni.samples.push(Sample {
            value: last.0.clone(),
            pos: last.1,
            offset: last.2,
        });
    }
    ni.end_pos = end_pos;
    ni.next_offset = next_offset;
}
