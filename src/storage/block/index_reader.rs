//! Reader of the block `index` file (formats v1 and v2) over an mmap: verifies the header and
//! TOC, loads the symbol offsets and the postings offset table, and decodes postings lists and
//! series entries on demand with CRC checks. Legacy label-index sections are ignored.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use super::encoding::{crc32c, framed, Dec};
use super::index::{ChunkMeta, Toc, INDEX_FORMAT_V1, INDEX_FORMAT_V2, INDEX_MAGIC, TOC_LEN};
use super::{io_err, BlockError, Result};
use crate::storage::model::{Label, Labels};

/// A decoded series entry.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesEntry {
    pub labels: Labels,
    pub chunks: Vec<ChunkMeta>,
}

pub struct IndexReader {
    map: Mmap,
    name: String,
    version: u8,
    toc: Toc,
    /// Absolute offsets of each symbol's uvarint-string, in symbol order: v1 series refer to
    /// symbols by these offsets. Empty for v2, which refers to them by position.
    symbol_entries: Vec<u32>,
    /// Each symbol's string bytes as (absolute offset, length), checked to be UTF-8 at open,
    /// so that decoding a series' labels is a table lookup rather than a varint decode and a
    /// UTF-8 validation per label.
    symbols: Vec<(u32, u32)>,
    /// label name -> (value, postings list offset), values sorted.
    postings: BTreeMap<String, Vec<(String, u64)>>,
}

impl IndexReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        // SAFETY: a block's index is immutable once the block is in place.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io_err(path, e))?;
        let name = path.display().to_string();
        let mut r = IndexReader {
            map,
            name,
            version: 0,
            toc: Toc::default(),
            symbol_entries: Vec::new(),
            symbols: Vec::new(),
            postings: BTreeMap::new(),
        };
        r.read_header()?;
        r.read_symbols()?;
        r.read_postings_table()?;
        Ok(r)
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> BlockError {
        BlockError::Corrupt {
            file: self.name.clone(),
            offset,
            reason: reason.into(),
        }
    }

    fn read_header(&mut self) -> Result<()> {
        let len = self.map.len();
        if len < 5 + TOC_LEN {
            return Err(self.corrupt(
                0,
                format!("index of {len} bytes is too short for header and TOC"),
            ));
        }
        let mut d = Dec::new(&self.map, 0, &self.name);
        let magic = d.be_u32("index magic")?;
        if magic != INDEX_MAGIC {
            return Err(self.corrupt(0, format!("bad index magic {magic:#010x}")));
        }
        let version = d.byte("index version")?;
        if version != INDEX_FORMAT_V1 && version != INDEX_FORMAT_V2 {
            return Err(self.corrupt(4, format!("unsupported index format version {version}")));
        }
        let toc_at = len - TOC_LEN;
        let toc_bytes = &self.map[toc_at..];
        let want = u32::from_be_bytes([toc_bytes[48], toc_bytes[49], toc_bytes[50], toc_bytes[51]]);
        if crc32c(&toc_bytes[..48]) != want {
            return Err(self.corrupt(toc_at as u64, "TOC checksum mismatch"));
        }
        let mut t = Dec::new(&toc_bytes[..48], toc_at as u64, &self.name);
        let toc = Toc {
            symbols: t.be_u64("toc")?,
            series: t.be_u64("toc")?,
            label_indices: t.be_u64("toc")?,
            label_indices_table: t.be_u64("toc")?,
            postings: t.be_u64("toc")?,
            postings_table: t.be_u64("toc")?,
        };
        for off in [toc.symbols, toc.series, toc.postings, toc.postings_table] {
            if off >= toc_at as u64 {
                return Err(self.corrupt(
                    toc_at as u64,
                    format!("TOC offset {off} beyond the TOC itself"),
                ));
            }
        }
        self.version = version;
        self.toc = toc;
        Ok(())
    }

    fn read_symbols(&mut self) -> Result<()> {
        let mut d = framed(&self.map, self.toc.symbols, &self.name, "symbol table")?;
        let count = d.be_u32("symbol count")? as usize;
        let mut entries = Vec::new();
        let mut spans = Vec::with_capacity(count.min(d.remaining()));
        for _ in 0..count {
            let at = u32::try_from(d.offset()).map_err(|_| d.err("symbol table beyond 4 GiB"))?;
            let sym = d.uvarint_str("symbol")?;
            let end = u32::try_from(d.offset()).map_err(|_| d.err("symbol table beyond 4 GiB"))?;
            let len = sym.len() as u32;
            spans.push((end - len, len));
            if self.version != INDEX_FORMAT_V2 {
                entries.push(at);
            }
        }
        self.symbol_entries = entries;
        self.symbols = spans;
        Ok(())
    }

    fn read_postings_table(&mut self) -> Result<()> {
        let mut d = framed(
            &self.map,
            self.toc.postings_table,
            &self.name,
            "postings offset table",
        )?;
        let count = d.be_u32("postings table entry count")?;
        let mut table: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        for _ in 0..count {
            let at = d.offset();
            let keys = d.uvarint("postings table key count")?;
            if keys != 2 {
                return Err(
                    self.corrupt(at, format!("postings table entry has {keys} keys, want 2"))
                );
            }
            let name = d.uvarint_str("label name")?.to_string();
            let value = d.uvarint_str("label value")?.to_string();
            let off = d.uvarint("postings offset")?;
            table.entry(name).or_default().push((value, off));
        }
        // v1 tables are unsorted; sorting is a no-op for v2.
        for v in table.values_mut() {
            v.sort();
        }
        self.postings = table;
        Ok(())
    }

    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn toc(&self) -> Toc {
        self.toc
    }

    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn file_name(&self) -> &str {
        &self.name
    }

    /// The string of a symbol reference (a position in v2, a byte offset in v1).
    pub fn symbol(&self, reference: u32) -> Result<&str> {
        let pos = if self.version == INDEX_FORMAT_V2 {
            Some(reference as usize)
        } else {
            self.symbol_entries.binary_search(&reference).ok()
        };
        let Some(&(off, len)) = pos.and_then(|p| self.symbols.get(p)) else {
            return Err(self.corrupt(0, format!("unknown symbol reference {reference}")));
        };
        self.symbol_str(off, len)
    }

    fn symbol_str(&self, off: u32, len: u32) -> Result<&str> {
        let bytes = self
            .map
            .get(off as usize..off as usize + len as usize)
            .ok_or_else(|| self.corrupt(off as u64, "symbol beyond the index"))?;
        // SAFETY: `read_symbols` checked these exact bytes to be UTF-8, and the mapped index
        // is immutable while the block is open (the same premise the mmap itself rests on).
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Every symbol of the symbol table, in order.
    pub fn symbols(&self) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(self.symbols.len());
        for &(off, len) in &self.symbols {
            out.push(self.symbol_str(off, len)?.to_string());
        }
        Ok(out)
    }

    /// Sorted label names (without the all-postings key).
    pub fn label_names(&self) -> Vec<String> {
        self.postings
            .keys()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect()
    }

    /// Sorted values of `name` with their postings offsets.
    pub fn label_values(&self, name: &str) -> &[(String, u64)] {
        self.postings.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Decodes the postings list at `offset` (sorted series references).
    pub fn postings_at(&self, offset: u64) -> Result<Vec<u32>> {
        let mut d = framed(&self.map, offset, &self.name, "postings list")?;
        let count = d.be_u32("postings count")? as usize;
        if d.remaining() != count.saturating_mul(4) {
            return Err(d.err(format!(
                "postings list announces {count} entries but holds {} bytes",
                d.remaining()
            )));
        }
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            ids.push(d.be_u32("series id")?);
        }
        Ok(ids)
    }

    /// Postings of one (name, value) pair; empty when absent.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u32>> {
        let vals = self.label_values(name);
        match vals.binary_search_by(|(v, _)| v.as_str().cmp(value)) {
            Ok(i) => self.postings_at(vals[i].1),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Every series in the block.
    pub fn all_postings(&self) -> Result<Vec<u32>> {
        self.postings("", "")
    }

    /// Decodes the series with reference `id` (ID×16 in v2, a byte offset in v1).
    pub fn series(&self, id: u32) -> Result<SeriesEntry> {
        let off = if self.version == INDEX_FORMAT_V2 {
            id as u64 * 16
        } else {
            id as u64
        };
        if off < self.toc.series || off >= self.map.len() as u64 {
            return Err(self.corrupt(
                off,
                format!("series reference {id} outside the series section"),
            ));
        }
        let mut d = Dec::new(&self.map[off as usize..], off, &self.name);
        let len = d.uvarint("series entry length")? as usize;
        let body_off = d.offset();
        let body = d.bytes(len, "series entry")?;
        let want = d.be_u32("series checksum")?;
        if crc32c(body) != want {
            return Err(self.corrupt(body_off, format!("series {id} checksum mismatch")));
        }
        let (refs, chunks) = decode_series_body(body, body_off, &self.name)?;
        let mut labels = Vec::with_capacity(refs.len());
        for (n, v) in refs {
            labels.push(Label::new(self.symbol(n)?, self.symbol(v)?));
        }
        Ok(SeriesEntry {
            labels: Labels::new(labels),
            chunks,
        })
    }
}

/// A decoded series body: (label name ref, label value ref) pairs and chunk metas.
pub type SeriesBody = (Vec<(u32, u32)>, Vec<ChunkMeta>);

/// Decodes the body of a series entry (after its length, before its checksum): the label
/// symbol references and the chunk metas, whose times and references are delta-encoded.
/// `body_off` is the body's absolute offset in `file`, for error messages.
pub fn decode_series_body(body: &[u8], body_off: u64, file: &str) -> Result<SeriesBody> {
    let mut b = Dec::new(body, body_off, file);
    let nlabels = b.uvarint("label count")? as usize;
    let mut refs = Vec::with_capacity(nlabels.min(body.len()));
    for _ in 0..nlabels {
        let n = b.uvarint_u32("label name ref")?;
        let v = b.uvarint_u32("label value ref")?;
        refs.push((n, v));
    }
    let nchunks = b.uvarint("chunk count")? as usize;
    let mut chunks = Vec::with_capacity(nchunks.min(body.len()));
    let mut prev: Option<ChunkMeta> = None;
    for _ in 0..nchunks {
        let meta = match prev {
            None => {
                let mint = b.varint("chunk mint")?;
                let span = b.uvarint("chunk maxt delta")?;
                let reference = b.uvarint("chunk ref")?;
                ChunkMeta {
                    min_time: mint,
                    max_time: mint.wrapping_add(span as i64),
                    reference,
                }
            }
            Some(p) => {
                let gap = b.uvarint("chunk mint delta")?;
                let mint = p.max_time.wrapping_add(gap as i64);
                let span = b.uvarint("chunk maxt delta")?;
                let dref = b.varint("chunk ref delta")?;
                ChunkMeta {
                    min_time: mint,
                    max_time: mint.wrapping_add(span as i64),
                    reference: p.reference.wrapping_add(dref as u64),
                }
            }
        };
        chunks.push(meta);
        prev = Some(meta);
    }
    Ok((refs, chunks))
}
