//! The local index header of a bucket block: the TOC, the symbol table and the postings offset
//! table of the block's `index`, copied byte-exact with ranged GETs (never the whole index) into
//! one file under the cache dir, with a trailing CRC32C over the whole file. Opening maps the
//! file and keeps only samples in RAM: every 32nd symbol offset and every 32nd postings-table
//! entry per label name (plus the last), like Prometheus and Thanos; the rest is decoded from
//! the mapped file on demand. A header that fails its checks is rebuilt by the caller.
//!
//! File layout (all integers big-endian):
//! `magic u32 | format u8 | index format u8 | 0u16 | index size u64 | TOC 6×u64 |
//!  symbol table length u64 | postings table length u64 | symbol table | postings table | crc32c`

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, UncheckedAdvice};
use tokio::io::AsyncWriteExt;
use ulid::Ulid;

use super::decode::{parse_toc, section_end};
use super::{Result, StoreError};
use crate::storage::block::encoding::Dec;
use crate::storage::block::index::{Toc, INDEX_FORMAT_V2, INDEX_MAGIC, TOC_LEN};
use crate::storage::block::BlockError;
use crate::storage::bucket::ObjectStore;

pub const HEADER_MAGIC: u32 = 0x5354_4831;
pub const HEADER_FORMAT: u8 = 1;
const FIXED_LEN: usize = 80;
/// Sections are copied in pieces of this size so a huge symbol table never sits in memory.
const COPY_PIECE: u64 = 4 << 20;
/// One in-memory sample per this many postings-table entries of a label name.
pub const POSTINGS_SAMPLING: usize = 32;
const SYMBOL_SAMPLING: usize = 32;

fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Block(BlockError::Corrupt {
        file: file.to_string(),
        offset,
        reason: reason.into(),
    })
}

fn bucket_err(key: &str) -> impl FnOnce(crate::storage::bucket::BucketError) -> StoreError + '_ {
    move |source| StoreError::Bucket {
        key: key.to_string(),
        source,
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::HeaderIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Path of the header file of `ulid` under `dir`.
pub fn header_path(dir: &Path, ulid: Ulid) -> PathBuf {
    dir.join(format!("{ulid}.index-header"))
}

/// Builds the header file of block `ulid` at `path` from the bucket with ranged reads, verifying
/// every copied section's checksum. Written to a temp file and renamed, so a crash never leaves
/// a half header behind. Returns the header size in bytes.
pub async fn build_header(
    store: &dyn ObjectStore,
    ulid: Ulid,
    index_size: Option<u64>,
    path: &Path,
) -> Result<u64> {
    let key = format!("{ulid}/index");
    let size = match index_size {
        Some(s) => s,
        None => {
            store
                .head(&key)
                .await
                .map_err(bucket_err(&key))?
                .ok_or_else(|| StoreError::Bucket {
                    key: key.clone(),
                    source: crate::storage::bucket::BucketError::NotFound { key: key.clone() },
                })?
                .size
        }
    };
    if size < (5 + TOC_LEN) as u64 {
        return Err(corrupt(
            &key,
            0,
            format!("index of {size} bytes is too short"),
        ));
    }
    let head = store
        .get_range(&key, 0, 5)
        .await
        .map_err(bucket_err(&key))?;
    let mut d = Dec::new(&head, 0, &key);
    let magic = d.be_u32("index magic")?;
    if magic != INDEX_MAGIC {
        return Err(corrupt(&key, 0, format!("bad index magic {magic:#010x}")));
    }
    let version = d.byte("index version")?;
    if version != INDEX_FORMAT_V2 {
        return Err(corrupt(
            &key,
            4,
            format!("index format {version} is not supported by the store (want 2)"),
        ));
    }
    let toc_at = size - TOC_LEN as u64;
    let toc_bytes = store
        .get_range(&key, toc_at, TOC_LEN as u64)
        .await
        .map_err(bucket_err(&key))?;
    let toc = parse_toc(&toc_bytes, toc_at, &key)?;

    let tmp = path.with_extension("tmp");
    let mut file = tokio::fs::File::create(&tmp).await.map_err(io_err(&tmp))?;
    // The fixed part is written once the section lengths are known; reserve it now.
    file.write_all(&[0u8; FIXED_LEN])
        .await
        .map_err(io_err(&tmp))?;
    let sym_end = section_end(&toc, toc_at, toc.symbols);
    let sym_len = copy_section(
        store,
        &key,
        toc.symbols,
        sym_end,
        &mut file,
        &tmp,
        "symbol table",
    )
    .await?;
    let pt_len = copy_section(
        store,
        &key,
        toc.postings_table,
        toc_at,
        &mut file,
        &tmp,
        "postings offset table",
    )
    .await?;
    let mut fixed = Vec::with_capacity(FIXED_LEN);
    fixed.extend_from_slice(&HEADER_MAGIC.to_be_bytes());
    fixed.push(HEADER_FORMAT);
    fixed.push(version);
    fixed.extend_from_slice(&[0, 0]);
    fixed.extend_from_slice(&size.to_be_bytes());
    fixed.extend_from_slice(&toc_bytes[..48]);
    fixed.extend_from_slice(&sym_len.to_be_bytes());
    fixed.extend_from_slice(&pt_len.to_be_bytes());
    file.flush().await.map_err(io_err(&tmp))?;
    drop(file);
    let total = finish_header_file(&tmp, &fixed)?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(total)
}

/// Writes the fixed part over the reserved bytes and appends the whole-file checksum.
fn finish_header_file(tmp: &Path, fixed: &[u8]) -> Result<u64> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(tmp)
        .map_err(io_err(tmp))?;
    f.write_all(fixed).map_err(io_err(tmp))?;
    f.seek(SeekFrom::Start(0)).map_err(io_err(tmp))?;
    let (crc, len) = crc_of_reader(&mut f, u64::MAX).map_err(io_err(tmp))?;
    f.seek(SeekFrom::End(0)).map_err(io_err(tmp))?;
    f.write_all(&crc.to_be_bytes()).map_err(io_err(tmp))?;
    f.sync_all().map_err(io_err(tmp))?;
    Ok(len + 4)
}

fn crc_of_reader(r: &mut impl Read, limit: u64) -> std::io::Result<(u32, u64)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut crc = 0u32;
    let mut total = 0u64;
    let mut r = r.take(limit);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((crc, total));
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        total += n as u64;
    }
}

/// Copies the framed section (`len u32 | body | crc`) at `off` of the index into `out`, piece
/// by piece, verifying the body checksum. The section must end before `bound`.
async fn copy_section(
    store: &dyn ObjectStore,
    key: &str,
    off: u64,
    bound: u64,
    out: &mut tokio::fs::File,
    out_path: &Path,
    what: &str,
) -> Result<u64> {
    if bound < off + 8 {
        return Err(corrupt(
            key,
            off,
            format!("no room for the {what} before offset {bound}"),
        ));
    }
    let first = store
        .get_range(key, off, COPY_PIECE.min(bound - off))
        .await
        .map_err(bucket_err(key))?;
    let mut d = Dec::new(&first, off, key);
    let body_len = d.be_u32(&format!("{what} length"))? as u64;
    let total = 4 + body_len + 4;
    if off + total > bound {
        return Err(corrupt(
            key,
            off,
            format!("{what} of {body_len} bytes runs past offset {bound}"),
        ));
    }
    let mut crc = 0u32;
    let mut stored: Vec<u8> = Vec::with_capacity(4);
    let mut pos = 0u64;
    let mut piece = first;
    loop {
        let take = (piece.len() as u64).min(total - pos) as usize;
        let part = piece.slice(..take);
        // Body positions are [4, 4 + body_len); the stored CRC follows.
        let lo = 4u64.max(pos).min(4 + body_len);
        let hi = (4 + body_len).min(pos + take as u64).max(lo);
        crc = crc32c::crc32c_append(crc, &part[(lo - pos) as usize..(hi - pos) as usize]);
        let tail_from = (4 + body_len).max(pos).min(pos + take as u64);
        stored.extend_from_slice(&part[(tail_from - pos) as usize..]);
        out.write_all(&part).await.map_err(io_err(out_path))?;
        pos += take as u64;
        if pos >= total {
            break;
        }
        if take == 0 {
            return Err(corrupt(key, off + pos, format!("{what} truncated")));
        }
        piece = store
            .get_range(key, off + pos, COPY_PIECE.min(total - pos))
            .await
            .map_err(bucket_err(key))?;
    }
    let Ok(stored) = <[u8; 4]>::try_from(stored.as_slice()) else {
        return Err(corrupt(
            key,
            off + 4 + body_len,
            format!("{what} checksum missing"),
        ));
    };
    let want = u32::from_be_bytes(stored);
    if crc != want {
        return Err(corrupt(
            key,
            off + 4,
            format!("{what} checksum mismatch: stored {want:#010x}, computed {crc:#010x}"),
        ));
    }
    Ok(total)
}

/// In-memory samples of one label name's postings-table entries.
#[derive(Debug)]
struct NameIndex {
    /// (value, header-file position of the entry) for every 32nd entry and the last one.
    samples: Vec<(String, u32)>,
    count: u32,
}

/// Stores a finished name's samples, making sure its last entry is among them (lookups for
/// values past it then stop at once).
fn finish_name(
    names: &mut BTreeMap<String, NameIndex>,
    cur: Option<(&str, NameIndex)>,
    last_value: &str,
    last_pos: usize,
) {
    let Some((name, mut ni)) = cur else {
        return;
    };
    if !(ni.count as usize - 1).is_multiple_of(POSTINGS_SAMPLING) {
        ni.samples.push((last_value.to_string(), last_pos as u32));
    }
    names.insert(name.to_string(), ni);
}

/// One decoded postings-table entry.
struct Entry<'a> {
    name: &'a str,
    value: &'a str,
    /// Absolute offset of the postings list in the index.
    offset: u64,
    /// Header-file position of the next entry.
    next: usize,
}

/// An opened index header: a mapped file plus the sampled tables.
pub struct IndexHeader {
    name: String,
    map: Mmap,
    index_size: u64,
    toc: Toc,
    symbol_count: u32,
    symbol_samples: Vec<u32>,
    sym_end: usize,
    pt_start: usize,
    pt_end: usize,
    names: BTreeMap<String, NameIndex>,
}

impl IndexHeader {
    /// Opens and fully verifies a header file (size, magic, whole-file checksum, both tables).
    pub fn open(path: &Path, block: Ulid) -> Result<Self> {
        let name = format!("{block}/index (header {})", path.display());
        let mut f = std::fs::File::open(path).map_err(io_err(path))?;
        let len = f.metadata().map_err(io_err(path))?.len();
        if len < FIXED_LEN as u64 + 4 {
            return Err(corrupt(
                &name,
                0,
                format!("header file of {len} bytes is too short"),
            ));
        }
        let (crc, _) = crc_of_reader(&mut f, len - 4).map_err(io_err(path))?;
        // SAFETY: header files are written to a temp name and renamed; nothing modifies them
        // in place while mapped (a rebuild writes a new file and renames over it).
        let map = unsafe { Mmap::map(&f) }.map_err(io_err(path))?;
        let stored = &map[map.len() - 4..];
        let want = u32::from_be_bytes([stored[0], stored[1], stored[2], stored[3]]);
        if crc != want {
            return Err(corrupt(&name, len - 4, "header file checksum mismatch"));
        }
        let mut d = Dec::new(&map[..FIXED_LEN], 0, &name);
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
        if expect != Some(len) || len > u32::MAX as u64 || sym_len < 12 || pt_len < 12 {
            return Err(corrupt(&name, 0, "header section lengths do not add up"));
        }
        if index_size < (5 + TOC_LEN) as u64 {
            return Err(corrupt(
                &name,
                8,
                format!("index size {index_size} too small"),
            ));
        }
        let pt_at = FIXED_LEN + sym_len as usize;
        let mut h = IndexHeader {
            name,
            map,
            index_size,
            toc,
            symbol_count: 0,
            symbol_samples: Vec::new(),
            sym_end: pt_at - 4,
            pt_start: 0,
            pt_end: (len - 8) as usize,
            names: BTreeMap::new(),
        };
        h.scan_symbols()?;
        h.scan_postings_table(pt_at)?;
        // The scan touched every page of the tables; hand them back so an opened header costs
        // only its samples in RSS until a query needs the pages again.
        // SAFETY: the mapping is private and read-only; dropped pages are re-read from the file.
        if let Err(e) = unsafe { h.map.unchecked_advise(UncheckedAdvice::DontNeed) } {
            tracing::debug!(error = %e, "madvise(DONTNEED) on index header failed");
        }
        Ok(h)
    }

    fn scan_symbols(&mut self) -> Result<()> {
        let mut d = Dec::new(
            &self.map[FIXED_LEN + 4..self.sym_end],
            FIXED_LEN as u64 + 4,
            &self.name,
        );
        let count = d.be_u32("symbol count")?;
        let mut samples = Vec::with_capacity(count as usize / SYMBOL_SAMPLING + 1);
        for i in 0..count {
            if (i as usize).is_multiple_of(SYMBOL_SAMPLING) {
                samples.push(d.offset() as u32);
            }
            d.uvarint_str("symbol")?;
        }
        if d.remaining() != 0 {
            return Err(d.err("trailing bytes after the last symbol").into());
        }
        self.symbol_count = count;
        self.symbol_samples = samples;
        Ok(())
    }

    fn scan_postings_table(&mut self, pt_at: usize) -> Result<()> {
        let (pt_start, names) = self.sample_postings_table(pt_at)?;
        self.pt_start = pt_start;
        self.names = names;
        Ok(())
    }

    /// One pass over the postings offset table: checks that it is sorted and keeps every 32nd
    /// entry of each name plus the name's last entry.
    fn sample_postings_table(&self, pt_at: usize) -> Result<(usize, BTreeMap<String, NameIndex>)> {
        let body = self.map.get(pt_at + 4..self.pt_end).unwrap_or(&[]);
        let mut d = Dec::new(body, pt_at as u64 + 4, &self.name);
        let count = d.be_u32("postings table entry count")?;
        let pt_start = d.offset() as usize;
        let mut pos = pt_start;
        let mut names: BTreeMap<String, NameIndex> = BTreeMap::new();
        let mut cur: Option<(&str, NameIndex)> = None;
        // (name, value, position) of the previous entry.
        let mut prev: Option<(&str, &str, usize)> = None;
        for _ in 0..count {
            let e = self.entry_at(pos)?;
            if let Some((pn, pv, ppos)) = prev {
                if (pn, pv) >= (e.name, e.value) {
                    return Err(corrupt(
                        &self.name,
                        pos as u64,
                        "postings offset table is not sorted",
                    ));
                }
                if pn != e.name {
                    finish_name(&mut names, cur.take(), pv, ppos);
                }
            }
            let (_, ni) = cur.get_or_insert_with(|| {
                (
                    e.name,
                    NameIndex {
                        samples: Vec::new(),
                        count: 0,
                    },
                )
            });
            if (ni.count as usize).is_multiple_of(POSTINGS_SAMPLING) {
                ni.samples.push((e.value.to_string(), pos as u32));
            }
            ni.count += 1;
            prev = Some((e.name, e.value, pos));
            pos = e.next;
        }
        if let Some((_, pv, ppos)) = prev {
            finish_name(&mut names, cur.take(), pv, ppos);
        }
        if pos != self.pt_end {
            return Err(corrupt(
                &self.name,
                pos as u64,
                "trailing bytes in the postings offset table",
            ));
        }
        Ok((pt_start, names))
    }

    fn entry_at(&self, pos: usize) -> Result<Entry<'_>> {
        let buf = self.map.get(pos..self.pt_end).unwrap_or(&[]);
        let mut d = Dec::new(buf, pos as u64, &self.name);
        let keys = d.uvarint("postings table key count")?;
        if keys != 2 {
            return Err(d
                .err(format!("postings table entry has {keys} keys, want 2"))
                .into());
        }
        let name = d.uvarint_str("label name")?;
        let value = d.uvarint_str("label value")?;
        let offset = d.uvarint("postings offset")?;
        Ok(Entry {
            name,
            value,
            offset,
            next: d.offset() as usize,
        })
    }

    /// Index-file byte range holding the postings list of the entry at `pos`: from its offset to
    /// the next list's offset (lists are written in table order), or a section end for the last.
    fn range_of(&self, e: &Entry<'_>) -> Result<(u64, u64)> {
        let toc_at = self.index_size.saturating_sub(TOC_LEN as u64);
        let end = if e.next < self.pt_end {
            self.entry_at(e.next)?.offset
        } else {
            section_end(&self.toc, toc_at, e.offset)
        };
        // A foreign writer may order lists differently: fall back to a guess, the decoder asks
        // for more bytes when the list is longer.
        let end = if end > e.offset { end } else { e.offset + 4096 };
        Ok((e.offset, end.min(toc_at)))
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
        let i = ni.samples.partition_point(|(v, _)| v.as_str() <= value);
        let Some((_, start)) = i.checked_sub(1).and_then(|i| ni.samples.get(i)) else {
            return Ok(None);
        };
        let mut pos = *start as usize;
        for _ in 0..=POSTINGS_SAMPLING {
            if pos >= self.pt_end {
                break;
            }
            let e = self.entry_at(pos)?;
            if e.name != name || e.value > value {
                break;
            }
            if e.value == value {
                return Ok(Some(self.range_of(&e)?));
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
        let Some((_, first)) = ni.samples.first() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut pos = *first as usize;
        for _ in 0..ni.count {
            let e = self.entry_at(pos)?;
            if keep(e.value) {
                out.push((e.value.to_string(), self.range_of(&e)?));
            }
            pos = e.next;
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
        let Some(&at) = self.symbol_samples.get(r as usize / SYMBOL_SAMPLING) else {
            return Err(corrupt(&self.name, 0, format!("no sample for symbol {r}")));
        };
        let buf = self.map.get(at as usize..self.sym_end).unwrap_or(&[]);
        let mut d = Dec::new(buf, at as u64, &self.name);
        for _ in 0..r as usize % SYMBOL_SAMPLING {
            d.uvarint_str("symbol")?;
        }
        Ok(d.uvarint_str("symbol")?.to_string())
    }

    /// Approximate heap bytes held by the samples (the mapped file is not counted).
    pub fn heap_bytes(&self) -> usize {
        let names: usize = self
            .names
            .iter()
            .map(|(k, ni)| {
                k.len() + 48 + ni.samples.iter().map(|(v, _)| v.len() + 32).sum::<usize>()
            })
            .sum();
        names + self.symbol_samples.len() * 4
    }
}
