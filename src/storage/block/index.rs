//! Streaming writer of the block `index` file, format v2: header, symbol table, 16-byte
//! aligned series entries written as series arrive, then the postings lists, the postings
//! offset table and the TOC. Memory grows with symbols and postings, never with samples.
//! The legacy label-index sections are written too, as 2.42 does, so output is byte-identical.

use hashbrown::HashTable;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::encoding::{crc32c, put_uvarint, put_uvarint_str, put_varint};
use super::{io_err, BlockError, Result};
use crate::storage::model::Labels;

pub const INDEX_FILENAME: &str = "index";
pub const INDEX_MAGIC: u32 = 0xBAAA_D700;
pub const INDEX_FORMAT_V1: u8 = 1;
pub const INDEX_FORMAT_V2: u8 = 2;
/// Size of the TOC at the end of the file: six u64 offsets and a CRC.
pub const TOC_LEN: usize = 6 * 8 + 4;

/// Where a chunk lives and which time range it covers (both ends inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    pub min_time: i64,
    pub max_time: i64,
    pub reference: u64,
}

/// Byte offsets of the index sections (0 = absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

impl Toc {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(TOC_LEN);
        for v in [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_table,
        ] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }
}

fn symbol_hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// Writes an index file; call `add_series` in strictly increasing label order, then `finish`.
pub struct IndexWriter {
    path: PathBuf,
    w: BufWriter<File>,
    pos: u64,
    symbols: Vec<String>,
    /// Index into `symbols` by the string's hash: a series' labels are resolved to symbol refs
    /// without a binary search of string compares (the most expensive part of writing a large
    /// index, e.g. when the compactor merges blocks of 100k+ series).
    symbol_index: HashTable<u32>,
    toc: Toc,
    last_labels: Option<Labels>,
    last_chunk_ref: Option<u64>,
    /// (name symbol, value symbol) -> series IDs; symbol order equals string order.
    postings: BTreeMap<(u32, u32), Vec<u32>>,
    all: Vec<u32>,
    buf: Vec<u8>,
}

impl IndexWriter {
    /// Creates the file and writes the header and symbol table. `symbols` must contain every
    /// label name and value that will be added; it is sorted and de-duplicated here and `""`
    /// is added (the all-postings key uses it, as in Prometheus).
    pub fn create(path: &Path, symbols: impl IntoIterator<Item = String>) -> Result<Self> {
        let mut symbols: Vec<String> = symbols.into_iter().collect();
        symbols.push(String::new());
        symbols.sort_unstable();
        symbols.dedup();
        let mut symbol_index = HashTable::with_capacity(symbols.len());
        for (i, sym) in symbols.iter().enumerate() {
            let i = u32::try_from(i).map_err(|_| BlockError::Invalid("too many symbols".into()))?;
            symbol_index.insert_unique(symbol_hash(sym), i, |&j| {
                symbols.get(j as usize).map_or(0, |x| symbol_hash(x))
            });
        }
        let f = File::create(path).map_err(|e| io_err(path, e))?;
        let mut iw = IndexWriter {
            path: path.to_path_buf(),
            w: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
            symbols,
            symbol_index,
            toc: Toc::default(),
            last_labels: None,
            last_chunk_ref: None,
            postings: BTreeMap::new(),
            all: Vec::new(),
            buf: Vec::with_capacity(4096),
        };
        let mut header = INDEX_MAGIC.to_be_bytes().to_vec();
        header.push(INDEX_FORMAT_V2);
        iw.write(&header)?;
        iw.write_symbols()?;
        iw.toc.series = iw.pos;
        Ok(iw)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b).map_err(|e| io_err(&self.path, e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, align: u64) -> Result<()> {
        let rem = self.pos % align;
        if rem != 0 {
            let zeros = vec![0u8; (align - rem) as usize];
            self.write(&zeros)?;
        }
        Ok(())
    }

    /// Writes `len u32 | body | crc32c(body)`.
    fn write_framed(&mut self, body: &[u8], what: &str) -> Result<()> {
        let len = u32::try_from(body.len())
            .map_err(|_| BlockError::Invalid(format!("{what} exceeds 4 GiB")))?;
        self.write(&len.to_be_bytes())?;
        self.write(body)?;
        self.write(&crc32c(body).to_be_bytes())
    }

    fn write_symbols(&mut self) -> Result<()> {
        self.toc.symbols = self.pos;
        let count = u32::try_from(self.symbols.len())
            .map_err(|_| BlockError::Invalid("too many symbols".into()))?;
        let mut body = count.to_be_bytes().to_vec();
        for s in &self.symbols {
            put_uvarint_str(&mut body, s);
        }
        self.write_framed(&body, "symbol table")
    }

    fn symbol_ref(&self, s: &str) -> Result<u32> {
        let found = self.symbol_index.find(symbol_hash(s), |&i| {
            self.symbols.get(i as usize).is_some_and(|x| x == s)
        });
        match found {
            Some(&i) => Ok(i),
            None => Err(BlockError::Invalid(format!(
                "symbol {s:?} was not declared when the block writer was created"
            ))),
        }
    }

    /// Would `labels` be accepted as the next series (non-empty, sorted after the previous one,
    /// every string a declared symbol)?
    pub fn check_next(&self, labels: &Labels) -> Result<()> {
        self.label_refs(labels).map(|_| ())
    }

    /// The (name, value) symbol refs of `labels` if they may be the next series.
    fn label_refs(&self, labels: &Labels) -> Result<Vec<(u32, u32)>> {
        if labels.is_empty() {
            return Err(BlockError::Invalid("series with an empty label set".into()));
        }
        if let Some(prev) = &self.last_labels {
            if labels <= prev {
                return Err(BlockError::Invalid(format!(
                    "series {labels} added out of order (after {prev})"
                )));
            }
        }
        let mut refs = Vec::with_capacity(labels.len());
        for l in labels.iter() {
            refs.push((self.symbol_ref(&l.name)?, self.symbol_ref(&l.value)?));
        }
        Ok(refs)
    }

    /// Appends one series entry. Labels must sort strictly after the previous series; chunk
    /// metas must be time-ordered, non-overlapping, with increasing references.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<()> {
        let refs = self.label_refs(labels)?;
        let mut prev: Option<&ChunkMeta> = None;
        for c in chunks {
            if c.min_time > c.max_time {
                return Err(BlockError::Invalid(format!(
                    "series {labels}: chunk min time {} > max time {}",
                    c.min_time, c.max_time
                )));
            }
            if let Some(p) = prev {
                if c.min_time <= p.max_time {
                    return Err(BlockError::Invalid(format!(
                        "series {labels}: chunk [{}, {}] overlaps or precedes the previous chunk ending at {}",
                        c.min_time, c.max_time, p.max_time
                    )));
                }
            }
            if self.last_chunk_ref.is_some_and(|r| c.reference <= r) {
                return Err(BlockError::Invalid(format!(
                    "series {labels}: chunk references must increase"
                )));
            }
            self.last_chunk_ref = Some(c.reference);
            prev = Some(c);
        }
        self.pad_to(16)?;
        let id = u32::try_from(self.pos / 16)
            .map_err(|_| BlockError::Invalid("index exceeds 64 GiB of series".into()))?;
        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        put_uvarint(&mut body, labels.len() as u64);
        for &(n, v) in &refs {
            put_uvarint(&mut body, n as u64);
            put_uvarint(&mut body, v as u64);
        }
        put_uvarint(&mut body, chunks.len() as u64);
        let mut last: Option<&ChunkMeta> = None;
        for c in chunks {
            match last {
                None => {
                    put_varint(&mut body, c.min_time);
                    put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                    put_uvarint(&mut body, c.reference);
                }
                Some(p) => {
                    put_uvarint(&mut body, c.min_time.wrapping_sub(p.max_time) as u64);
                    put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                    put_varint(&mut body, c.reference.wrapping_sub(p.reference) as i64);
                }
            }
            last = Some(c);
        }
        let mut entry = Vec::with_capacity(body.len() + 10);
        put_uvarint(&mut entry, body.len() as u64);
        entry.extend_from_slice(&body);
        entry.extend_from_slice(&crc32c(&body).to_be_bytes());
        self.write(&entry)?;
        self.buf = body;
        for key in refs {
            self.postings.entry(key).or_default().push(id);
        }
        self.all.push(id);
        self.last_labels = Some(labels.clone());
        Ok(())
    }

    /// Thanos's `series_max_size`: the largest distance in bytes between the starts of two
    /// consecutive series entries (so the last entry is not measured).
    pub fn series_max_size(&self) -> i64 {
        let mut max = 0;
        for w in self.all.windows(2) {
            max = max.max((w[1] as i64 - w[0] as i64) * 16);
        }
        max
    }

    fn write_postings_list(&mut self, ids: &[u32]) -> Result<u64> {
        self.pad_to(4)?;
        let at = self.pos;
        let mut body = Vec::with_capacity(4 + ids.len() * 4);
        body.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            body.extend_from_slice(&id.to_be_bytes());
        }
        self.write_framed(&body, "postings list")?;
        Ok(at)
    }

    /// Legacy label indices (one per label name: its sorted value symbols), which 2.42 still
    /// writes; no v2 reader needs them, but writing them keeps our index byte-identical to
    /// promtool's. Returns (name symbol, offset) per index.
    fn write_label_indices(
        &mut self,
        postings: &BTreeMap<(u32, u32), Vec<u32>>,
    ) -> Result<Vec<(u32, u64)>> {
        let mut offsets = Vec::new();
        let mut keys = postings.keys().peekable();
        while let Some(&(name, first)) = keys.next() {
            let mut values = vec![first];
            while let Some(&&(n, v)) = keys.peek() {
                if n != name {
                    break;
                }
                values.push(v);
                keys.next();
            }
            self.pad_to(4)?;
            offsets.push((name, self.pos));
            let mut body = Vec::with_capacity(8 + 4 * values.len());
            body.extend_from_slice(&1u32.to_be_bytes());
            body.extend_from_slice(&(values.len() as u32).to_be_bytes());
            for v in values {
                body.extend_from_slice(&v.to_be_bytes());
            }
            self.write_framed(&body, "label index")?;
        }
        Ok(offsets)
    }

    /// Legacy label-index offset table: `#entries | (1, name, offset)… | crc`.
    fn write_label_offset_table(&mut self, offsets: &[(u32, u64)]) -> Result<()> {
        self.toc.label_indices_table = self.pos;
        let mut body = (offsets.len() as u32).to_be_bytes().to_vec();
        for &(name, off) in offsets {
            let name = self
                .symbols
                .get(name as usize)
                .map(String::as_str)
                .unwrap_or("");
            put_uvarint(&mut body, 1);
            put_uvarint_str(&mut body, name);
            put_uvarint(&mut body, off);
        }
        self.write_framed(&body, "label offset table")
    }

    /// Writes label indices, postings, the offset tables and the TOC, then fsyncs. Returns the size.
    pub fn finish(mut self) -> Result<u64> {
        let postings = std::mem::take(&mut self.postings);
        self.toc.label_indices = self.pos;
        let label_index_offsets = self.write_label_indices(&postings)?;
        self.pad_to(4)?;
        self.toc.postings = self.pos;
        let mut table = Vec::new();
        let mut entries: u32 = 0;
        let all = std::mem::take(&mut self.all);
        let mut keyed: Vec<(u32, u32, u64)> = Vec::with_capacity(postings.len() + 1);
        keyed.push((0, 0, self.write_postings_list(&all)?));
        for ((n, v), ids) in &postings {
            keyed.push((*n, *v, self.write_postings_list(ids)?));
        }
        for (n, v, off) in keyed {
            let name = self
                .symbols
                .get(n as usize)
                .map(String::as_str)
                .unwrap_or("");
            let value = self
                .symbols
                .get(v as usize)
                .map(String::as_str)
                .unwrap_or("");
            put_uvarint(&mut table, 2);
            put_uvarint_str(&mut table, name);
            put_uvarint_str(&mut table, value);
            put_uvarint(&mut table, off);
            entries += 1;
        }
        self.write_label_offset_table(&label_index_offsets)?;
        self.toc.postings_table = self.pos;
        let mut body = entries.to_be_bytes().to_vec();
        body.extend_from_slice(&table);
        self.write_framed(&body, "postings offset table")?;
        let toc = self.toc.encode();
        self.write(&toc)?;
        let f = self
            .w
            .into_inner()
            .map_err(|e| io_err(&self.path, e.into_error()))?;
        f.sync_all().map_err(|e| io_err(&self.path, e))?;
        Ok(self.pos)
    }
}
