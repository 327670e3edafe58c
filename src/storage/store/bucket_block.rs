//! One block served straight from the bucket. Postings, series entries and chunks are fetched
//! with ranged GETs (nearby ranges merged), verified, and kept in the shared byte-bounded LRU;
//! label names and values come from the local index header, which is opened on first use and
//! released after an idle period. Nothing here ever reads a whole index or chunk file.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use ulid::Ulid;

use super::cache::{ByteLru, CacheKey, ItemKind};
use super::decode::{
    decode_chunk, decode_postings, decode_series, section_end, Decoded, RawSeries,
};
use super::index_header::{build_header, IndexHeader};
use super::ranges::{fetch_ranges, merge_ranges};
use super::sync::SyncedBlock;
use super::{QueryBudget, Result, StoreCounters, StoreError};
use crate::storage::block::chunks::SEGMENT_HEADER_LEN;
use crate::storage::block::encoding::Dec;
use crate::storage::block::index::{ChunkMeta, TOC_LEN};
use crate::storage::block::postings::{intersect, subtract, union};
use crate::storage::block::{BlockError, BlockMeta};
use crate::storage::bucket::blocks::SegmentObject;
use crate::storage::bucket::DynStore;
use crate::storage::model::{matches_all, EncodedChunk, Label, Labels, MatchOp, Matcher, Series};

/// How ranged reads are planned.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Ranges closer than this are read with one request.
    pub max_gap: u64,
    /// Upper bound for one merged request.
    pub max_request: u64,
    /// Requests in flight per object.
    pub concurrency: usize,
    /// Bytes read for a series entry before its real length is known.
    pub series_estimate: u64,
    /// Bytes read for a chunk before its real length is known.
    pub chunk_estimate: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_gap: 16 * 1024,
            max_request: 8 << 20,
            concurrency: 8,
            series_estimate: 1024,
            chunk_estimate: 16 * 1024,
        }
    }
}

/// A block of the bucket and the state needed to serve it.
pub struct BucketBlock {
    meta: BlockMeta,
    ext_labels: Labels,
    store: DynStore,
    cache: Arc<ByteLru>,
    counters: Arc<StoreCounters>,
    fetch: FetchOptions,
    header_path: PathBuf,
    index_key: String,
    index_size: Option<u64>,
    segments: Vec<SegmentObject>,
    header: Mutex<Option<Arc<IndexHeader>>>,
    load_lock: tokio::sync::Mutex<()>,
    last_used: Mutex<Instant>,
}

/// Which bytes to read for one record of an object and how to find its exact length.
type RecordLen<'a> =
    &'a (dyn Fn(&[u8], u64) -> std::result::Result<Decoded<usize>, BlockError> + Sync);

impl BucketBlock {
    pub fn new(
        synced: &SyncedBlock,
        store: DynStore,
        cache: Arc<ByteLru>,
        counters: Arc<StoreCounters>,
        fetch: FetchOptions,
        header_path: PathBuf,
    ) -> Self {
        let ext = synced
            .meta
            .thanos
            .as_ref()
            .map(|t| Labels::from_pairs(t.labels.iter().map(|(k, v)| (k.clone(), v.clone()))))
            .unwrap_or_default();
        BucketBlock {
            index_key: format!("{}/index", synced.meta.ulid),
            meta: synced.meta.clone(),
            ext_labels: ext,
            store,
            cache,
            counters,
            fetch,
            header_path,
            index_size: synced.index_size,
            segments: synced.segments.clone(),
            header: Mutex::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            last_used: Mutex::new(Instant::now()),
        }
    }

    pub fn ulid(&self) -> Ulid {
        self.meta.ulid
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's external labels (Thanos `thanos.labels`).
    pub fn external_labels(&self) -> &Labels {
        &self.ext_labels
    }

    pub fn resolution(&self) -> i64 {
        self.meta.resolution()
    }

    /// Does `[minTime, maxTime)` meet the inclusive query range?
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        mint < self.meta.max_time && maxt >= self.meta.min_time
    }

    pub fn header_loaded(&self) -> bool {
        self.header.lock().is_some()
    }

    /// Makes sure a valid header file exists locally (building or rebuilding it from the
    /// bucket) and that the chunk segments look like segments. The header is not kept open.
    pub async fn prepare(&self) -> Result<()> {
        self.load_header(false).await?;
        for seg in &self.segments {
            let head = self
                .store
                .get_range(&seg.key, 0, SEGMENT_HEADER_LEN)
                .await
                .map_err(|source| StoreError::Bucket {
                    key: seg.key.clone(),
                    source,
                })?;
            self.counters.add_get(head.len());
            let mut d = Dec::new(&head, 0, &seg.key);
            let magic = d.be_u32("segment magic")?;
            let version = d.byte("segment version")?;
            if magic != crate::storage::block::chunks::CHUNKS_MAGIC || version != 1 {
                return Err(StoreError::Block(BlockError::Corrupt {
                    file: seg.key.clone(),
                    offset: 0,
                    reason: format!("bad chunk segment header {magic:#010x} v{version}"),
                }));
            }
        }
        Ok(())
    }

    /// Opens the header file, rebuilding it from the bucket when it is missing or corrupt.
    async fn load_header(&self, keep: bool) -> Result<Arc<IndexHeader>> {
        if let Some(h) = self.header.lock().clone() {
            return Ok(h);
        }
        // One loader at a time: concurrent queries must not rebuild the same file together.
        let _loading = self.load_lock.lock().await;
        if let Some(h) = self.header.lock().clone() {
            return Ok(h);
        }
        let path = self.header_path.clone();
        let ulid = self.meta.ulid;
        let opened = tokio::task::spawn_blocking(move || IndexHeader::open(&path, ulid))
            .await
            .map_err(|e| StoreError::Internal(format!("header open task: {e}")))?;
        let header = match opened {
            Ok(h) => h,
            Err(e) => {
                if self.header_path.exists() {
                    tracing::warn!(block = %ulid, error = %e, "index header invalid, rebuilding");
                    self.counters.inc(&self.counters.headers_rebuilt);
                }
                build_header(&*self.store, ulid, self.index_size, &self.header_path).await?;
                self.counters.inc(&self.counters.headers_built);
                let path = self.header_path.clone();
                tokio::task::spawn_blocking(move || IndexHeader::open(&path, ulid))
                    .await
                    .map_err(|e| StoreError::Internal(format!("header open task: {e}")))??
            }
        };
        let header = Arc::new(header);
        if keep {
            self.counters.inc(&self.counters.header_opens);
            *self.header.lock() = Some(header.clone());
        }
        Ok(header)
    }

    pub(super) async fn header(&self) -> Result<Arc<IndexHeader>> {
        *self.last_used.lock() = Instant::now();
        self.load_header(true).await
    }

    /// Drops the opened header if it has not been used for `idle`. True when released.
    pub fn release_if_idle(&self, idle: std::time::Duration) -> bool {
        if self.last_used.lock().elapsed() < idle {
            return false;
        }
        self.header.lock().take().is_some()
    }

    /// Splits matchers into "does the block's external label set allow a match" and the
    /// matchers left for the series inside (those on external label names are decided here).
    pub(super) fn split_external(&self, matchers: &[Matcher]) -> (bool, Vec<Matcher>) {
        let mut inner = Vec::with_capacity(matchers.len());
        for m in matchers {
            match self.ext_labels.get(&m.name) {
                Some(v) => {
                    if !m.matches(v) {
                        return (false, Vec::new());
                    }
                }
                None => inner.push(m.clone()),
            }
        }
        (true, inner)
    }

    pub(super) fn with_external(&self, labels: Labels) -> Labels {
        if self.ext_labels.is_empty() {
            return labels;
        }
        let mut v = labels.into_vec();
        v.retain(|l| self.ext_labels.get(&l.name).is_none());
        v.extend(self.ext_labels.iter().cloned());
        Labels::new(v)
    }

    /// Series matching `matchers` with their chunks overlapping `[mint, maxt]`, sorted by labels
    /// (external labels attached). Series without such chunks are left out, as in a local block.
    pub async fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        labels_only: bool,
        budget: &QueryBudget,
    ) -> Result<Vec<Series>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let (possible, inner) = self.split_external(matchers);
        if !possible {
            return Ok(Vec::new());
        }
        let h = self.header().await?;
        let ids = self.postings_for(&h, &inner).await?;
        let entries = self.fetch_series(&h, &ids).await?;
        let mut symbols: HashMap<u32, String> = HashMap::new();
        let mut kept: Vec<(Labels, Vec<ChunkMeta>)> = Vec::new();
        for raw in &entries {
            let chunks: Vec<ChunkMeta> = raw
                .chunks
                .iter()
                .filter(|m| m.min_time <= maxt && m.max_time >= mint)
                .copied()
                .collect();
            if chunks.is_empty() {
                continue;
            }
            let labels = self.resolve_labels(&h, raw, &mut symbols)?;
            // Postings come from the index; re-check in case of an inconsistent index.
            if !matches_all(&inner, &labels) {
                continue;
            }
            kept.push((labels, chunks));
        }
        budget.check_series(kept.len())?;
        if labels_only {
            let mut out: Vec<Series> = kept
                .into_iter()
                .map(|(l, _)| Series {
                    labels: self.with_external(l),
                    chunks: Vec::new(),
                })
                .collect();
            sort_if_relabeled(&mut out, !self.ext_labels.is_empty());
            return Ok(out);
        }
        let all_refs: Vec<u64> = entries
            .iter()
            .flat_map(|e| e.chunks.iter().map(|c| c.reference))
            .collect();
        let wanted: Vec<u64> = kept
            .iter()
            .flat_map(|(_, cs)| cs.iter().map(|c| c.reference))
            .collect();
        let records = self.fetch_chunks(&wanted, &all_refs).await?;
        let mut out = Vec::with_capacity(kept.len());
        for (labels, metas) in kept {
            let mut chunks = Vec::with_capacity(metas.len());
            for m in metas {
                let Some(rec) = records.get(&m.reference) else {
                    return Err(StoreError::Internal(format!(
                        "chunk {:#x} of block {} was not fetched",
                        m.reference, self.meta.ulid
                    )));
                };
                let Some((encoding, data)) = chunk_payload(rec) else {
                    return Err(StoreError::Internal(format!(
                        "cached chunk {:#x} of {} truncated",
                        m.reference,
                        self.segment_key(m.reference)
                    )));
                };
                budget.add_chunk_bytes(data.len() as u64)?;
                chunks.push(EncodedChunk {
                    min_time: m.min_time,
                    max_time: m.max_time,
                    encoding,
                    data: Arc::from(data),
                });
            }
            out.push(Series {
                labels: self.with_external(labels),
                chunks,
            });
        }
        sort_if_relabeled(&mut out, !self.ext_labels.is_empty());
        Ok(out)
    }

    /// Sorted label names of the matching series (every name when there are no matchers).
    pub async fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let (possible, inner) = self.split_external(matchers);
        if !possible {
            return Ok(Vec::new());
        }
        let mut names: Vec<String> = if inner.is_empty() {
            self.header().await?.label_names()
        } else {
            let budget = QueryBudget::unlimited();
            let sets = self
                .select(&inner, i64::MIN, i64::MAX, true, &budget)
                .await?;
            sets.iter()
                .flat_map(|s| s.labels.iter().map(|l| l.name.to_string()))
                .collect()
        };
        names.extend(self.ext_labels.iter().map(|l| l.name.to_string()));
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Sorted values of `name` among the matching series.
    pub async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let (possible, inner) = self.split_external(matchers);
        if !possible {
            return Ok(Vec::new());
        }
        if let Some(v) = self.ext_labels.get(name) {
            return Ok(vec![v.to_string()]);
        }
        if inner.is_empty() {
            return self.header().await?.label_values(name);
        }
        let budget = QueryBudget::unlimited();
        let sets = self
            .select(&inner, i64::MIN, i64::MAX, true, &budget)
            .await?;
        let mut values: Vec<String> = sets
            .iter()
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }

    /// Series IDs selected by the matchers, with Prometheus semantics (matchers accepting the
    /// empty value subtract; no matchers = every series).
    pub(super) async fn postings_for(
        &self,
        h: &IndexHeader,
        matchers: &[Matcher],
    ) -> Result<Vec<u32>> {
        // Plan: for each matcher, the postings ranges to union, and whether it intersects or
        // subtracts. Everything is fetched in one batch.
        let mut plan: Vec<(bool, Vec<(u64, u64)>)> = Vec::new();
        let mut positive = false;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            positive = true;
            let ranges = if m.op == MatchOp::Equal {
                h.postings_range(&m.name, &m.value)?.into_iter().collect()
            } else {
                ranges_of(h.values_where(&m.name, |v| m.matches(v))?)
            };
            if ranges.is_empty() {
                return Ok(Vec::new());
            }
            plan.push((true, ranges));
        }
        if !positive {
            plan.insert(0, (true, h.postings_range("", "")?.into_iter().collect()));
        }
        for m in matchers.iter().filter(|m| m.matches_empty()) {
            let ranges = match m.op {
                MatchOp::NotEqual => h.postings_range(&m.name, &m.value)?.into_iter().collect(),
                _ => ranges_of(h.values_where(&m.name, |v| !m.matches(v))?),
            };
            plan.push((false, ranges));
        }
        let wanted: Vec<(u64, u64)> = plan.iter().flat_map(|(_, r)| r.iter().copied()).collect();
        let file = self.index_key.clone();
        let record_len = move |buf: &[u8], at: u64| match decode_postings(buf, at, &file)? {
            Decoded::Done(ids) => Ok(Decoded::Done(8 + 4 + ids.len() * 4)),
            Decoded::NeedBytes(n) => Ok(Decoded::NeedBytes(n)),
        };
        let records = self
            .fetch_records(&self.index_key, ItemKind::Postings, wanted, &record_len)
            .await?;
        let list = |start: u64| -> Result<Vec<u32>> {
            let rec = records.get(&start).ok_or_else(|| {
                StoreError::Internal(format!("postings at {start} were not fetched"))
            })?;
            match decode_postings(rec, start, &self.index_key)? {
                Decoded::Done(ids) => Ok(ids),
                Decoded::NeedBytes(_) => {
                    Err(StoreError::Internal("cached postings truncated".into()))
                }
            }
        };
        let mut result: Option<Vec<u32>> = None;
        for (include, ranges) in &plan {
            let mut lists = Vec::with_capacity(ranges.len());
            for r in ranges {
                lists.push(list(r.0)?);
            }
            let u = union(lists);
            result = Some(match (result, include) {
                (None, _) => u,
                (Some(r), true) => intersect(&r, &u),
                (Some(r), false) => subtract(&r, &u),
            });
        }
        Ok(result.unwrap_or_default())
    }

    pub(super) async fn fetch_series(
        &self,
        h: &IndexHeader,
        ids: &[u32],
    ) -> Result<Vec<RawSeries>> {
        let toc = h.toc();
        let toc_at = h.index_size().saturating_sub(TOC_LEN as u64);
        let end = section_end(&toc, toc_at, toc.series);
        let mut wanted = Vec::with_capacity(ids.len());
        for &id in ids {
            let off = id as u64 * 16;
            if off < toc.series || off >= end {
                return Err(StoreError::Block(BlockError::Corrupt {
                    file: self.index_key.clone(),
                    offset: off,
                    reason: format!("series reference {id} outside the series section"),
                }));
            }
            wanted.push((off, (off + self.fetch.series_estimate).min(end)));
        }
        let file = self.index_key.clone();
        let record_len = move |buf: &[u8], at: u64| match decode_series(buf, at, &file)? {
            Decoded::Done((_, n)) => Ok(Decoded::Done(n)),
            Decoded::NeedBytes(n) => Ok(Decoded::NeedBytes(n)),
        };
        let records = self
            .fetch_records(&self.index_key, ItemKind::Series, wanted, &record_len)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let off = id as u64 * 16;
            let rec = records
                .get(&off)
                .ok_or_else(|| StoreError::Internal(format!("series {id} was not fetched")))?;
            match decode_series(rec, off, &self.index_key)? {
                Decoded::Done((s, _)) => out.push(s),
                Decoded::NeedBytes(_) => {
                    return Err(StoreError::Internal("cached series truncated".into()))
                }
            }
        }
        Ok(out)
    }

    /// Label set of a raw series. Symbols are looked up in the per-query map, then the shared
    /// LRU, then decoded from the header (which costs up to 32 string decodes).
    pub(super) fn resolve_labels(
        &self,
        h: &IndexHeader,
        raw: &RawSeries,
        symbols: &mut HashMap<u32, String>,
    ) -> Result<Labels> {
        let mut get = |r: u32| -> Result<String> {
            if let Some(s) = symbols.get(&r) {
                return Ok(s.clone());
            }
            let key = CacheKey {
                block: self.meta.ulid,
                kind: ItemKind::Symbol,
                offset: r as u64,
            };
            let s = match self.cache.get(&key) {
                Some(b) => String::from_utf8(b.to_vec())
                    .map_err(|_| StoreError::Internal(format!("cached symbol {r} is not UTF-8")))?,
                None => {
                    let s = h.symbol(r)?;
                    self.cache.insert(key, Bytes::from(s.clone().into_bytes()));
                    s
                }
            };
            symbols.insert(r, s.clone());
            Ok(s)
        };
        let mut labels = Vec::with_capacity(raw.label_refs.len());
        for &(n, v) in &raw.label_refs {
            let name = get(n)?;
            let value = get(v)?;
            labels.push(Label::new(name, value));
        }
        Ok(Labels::new(labels))
    }

    /// Size in bytes of chunk segment `pos` (`None`: no such segment).
    pub(super) fn segment_size(&self, pos: usize) -> Option<u64> {
        self.segments.get(pos).map(|s| s.size)
    }

    fn segment_key(&self, reference: u64) -> String {
        let pos = (reference >> 32) as usize;
        self.segments
            .get(pos)
            .map(|s| s.key.clone())
            .unwrap_or_else(|| format!("{}/chunks", self.meta.ulid))
    }

    /// Chunk records (exact bytes, checksum verified) for `wanted` refs. `known` holds every
    /// chunk ref seen in the fetched series: the next known ref bounds a chunk's length.
    async fn fetch_chunks(&self, wanted: &[u64], known: &[u64]) -> Result<HashMap<u64, Bytes>> {
        let known: BTreeSet<u64> = known.iter().copied().collect();
        let mut by_segment: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
        for &r in wanted {
            let pos = (r >> 32) as usize;
            let off = r & 0xffff_ffff;
            let Some(seg) = self.segments.get(pos) else {
                return Err(StoreError::Block(BlockError::Corrupt {
                    file: format!("{}/chunks", self.meta.ulid),
                    offset: off,
                    reason: format!(
                        "chunk ref {r:#x} points to segment {pos}, but there are {} segments",
                        self.segments.len()
                    ),
                }));
            };
            if off < SEGMENT_HEADER_LEN || off >= seg.size {
                return Err(StoreError::Block(BlockError::Corrupt {
                    file: seg.key.clone(),
                    offset: off,
                    reason: format!("chunk offset outside the segment ({} bytes)", seg.size),
                }));
            }
            let next_known = known
                .range(r + 1..)
                .next()
                .filter(|n| (*n >> 32) as usize == pos)
                .map(|n| n & 0xffff_ffff);
            let end = next_known
                .unwrap_or(u64::MAX)
                .min(off + self.fetch.chunk_estimate)
                .min(seg.size);
            by_segment.entry(pos).or_default().push((off, end));
        }
        let mut out = HashMap::with_capacity(wanted.len());
        for (pos, ranges) in by_segment {
            let key = &self.segments[pos].key;
            let file = key.clone();
            let record_len = move |buf: &[u8], at: u64| match decode_chunk(buf, at, &file)? {
                Decoded::Done((_, _, n)) => Ok(Decoded::Done(n)),
                Decoded::NeedBytes(n) => Ok(Decoded::NeedBytes(n)),
            };
            // Cache keys are chunk refs so offsets of different segments never collide.
            let seg_bits = (pos as u64) << 32;
            let recs = self
                .fetch_records_keyed(key, ItemKind::Chunk, ranges, &record_len, seg_bits)
                .await?;
            let touched: usize = recs.values().map(Bytes::len).sum();
            self.counters
                .chunk_bytes_touched
                .fetch_add(touched as u64, std::sync::atomic::Ordering::Relaxed);
            for (off, b) in recs {
                out.insert(seg_bits | off, b);
            }
        }
        Ok(out)
    }

    async fn fetch_records(
        &self,
        key: &str,
        kind: ItemKind,
        wanted: Vec<(u64, u64)>,
        record_len: RecordLen<'_>,
    ) -> Result<HashMap<u64, Bytes>> {
        self.fetch_records_keyed(key, kind, wanted, record_len, 0)
            .await
    }

    /// Returns the exact record bytes starting at each wanted offset: from the LRU when cached,
    /// otherwise with merged ranged GETs (and one exact GET for a record longer than guessed).
    async fn fetch_records_keyed(
        &self,
        key: &str,
        kind: ItemKind,
        wanted: Vec<(u64, u64)>,
        record_len: RecordLen<'_>,
        cache_bits: u64,
    ) -> Result<HashMap<u64, Bytes>> {
        let bucket_err = |source| StoreError::Bucket {
            key: key.to_string(),
            source,
        };
        let ckey = |off: u64| CacheKey {
            block: self.meta.ulid,
            kind,
            offset: cache_bits | off,
        };
        let mut out = HashMap::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for (s, e) in wanted {
            if out.contains_key(&s) {
                continue;
            }
            match self.cache.get(&ckey(s)) {
                Some(b) => {
                    out.insert(s, b);
                }
                None => missing.push((s, e)),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let merged = merge_ranges(missing.clone(), self.fetch.max_gap, self.fetch.max_request);
        let requests = merged.len();
        let fetched = fetch_ranges(&*self.store, key, merged, self.fetch.concurrency)
            .await
            .map_err(bucket_err)?;
        self.counters.add_gets(requests, fetched.total_bytes());
        for (s, _) in missing {
            if out.contains_key(&s) {
                continue;
            }
            let buf = fetched.from(s).unwrap_or_default();
            let rec = match record_len(&buf, s)? {
                Decoded::Done(n) => buf.slice(..n),
                Decoded::NeedBytes(n) => {
                    let exact = self.store.get_range(key, s, n).await.map_err(bucket_err)?;
                    self.counters.add_get(exact.len());
                    match record_len(&exact, s)? {
                        Decoded::Done(n) => exact.slice(..n),
                        Decoded::NeedBytes(n) => {
                            return Err(StoreError::Block(BlockError::Corrupt {
                                file: key.to_string(),
                                offset: s,
                                reason: format!(
                                    "record of {n} bytes runs past the end of the object"
                                ),
                            }))
                        }
                    }
                }
            };
            self.cache.insert(ckey(s), rec.clone());
            out.insert(s, rec);
        }
        Ok(out)
    }
}

/// Index order is label order, but attaching external labels can change it.
fn sort_if_relabeled(series: &mut [Series], relabeled: bool) {
    if relabeled {
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
}

fn ranges_of(values: Vec<(String, (u64, u64))>) -> Vec<(u64, u64)> {
    values.into_iter().map(|(_, r)| r).collect()
}

/// Encoding byte and payload of an exact chunk record.
/// Encoding byte and payload of an exact chunk record. Every record handed out by
/// `fetch_chunks` had its checksum verified on its way into the cache or the answer
/// (`decode_chunk` in the record-length probe), so only the length is read again here:
/// recomputing the CRC of every cached chunk on every query cost about 5% of a query's CPU.
fn chunk_payload(rec: &[u8]) -> Option<(u8, &[u8])> {
    let mut d = crate::storage::block::encoding::Dec::new(rec, 0, "");
    let len = usize::try_from(d.uvarint("chunk length").ok()?).ok()?;
    let start = usize::try_from(d.offset()).ok()?;
    let end = start.checked_add(1)?.checked_add(len)?;
    let payload = rec.get(start..end)?;
    Some((payload[0], &payload[1..]))
}

impl BucketBlock {
    /// Heap bytes of the opened header's samples (0 when released).
    pub fn header_heap_bytes(&self) -> usize {
        self.header.lock().as_ref().map_or(0, |h| h.heap_bytes())
    }
}
