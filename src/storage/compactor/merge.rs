//! Merging local block directories into one new block: the compactor's data path.
//!
//! `merge_blocks` opens the inputs (mmap: index and chunks stay in the page cache, not on the
//! heap), merges their symbol tables as sorted streams, and walks every input's series in label
//! order at once (a k-way merge), writing each merged series straight into a `BlockWriter`.
//! Nothing is buffered beyond one series: a series present in one input is copied verbatim;
//! one present in several inputs is
//! - `MergeMode::Concat` (level compaction, inputs that do not overlap): chunks copied
//!   verbatim when they are time-disjoint, otherwise decoded per input, merged sample by sample
//!   (a later input wins an equal timestamp) and re-cut into chunks of at most 120 samples;
//! - `MergeMode::Dedup` (vertical compaction of HA replicas): the inputs are grouped by their
//!   full external labels (one group per replica), each replica's samples are decoded (a
//!   replica's own blocks chained in time), `storage::dedup::dedup_samples(&replicas, false)`
//!   picks the output samples (no counter adjustment: stored data stays raw), and they are
//!   re-encoded in chunks of at most 120 samples.
//!
//! **Input problems are reported per block.** A corrupt index (bad checksum, series not in
//! label order, a symbol table out of order), an unreadable or undecodable chunk, or chunks
//! that are out of order or overlap inside one series are a `MergeError::Input` naming the
//! input's ULID and what is wrong; its `reason()` is the Thanos no-compact reason the executor
//! marks that block with (`block-index-out-of-order-chunk`, `corrupt-block`,
//! `unsupported-chunk-encoding`).
//!
//! **Memory.** What a merge keeps on the heap grows with the inputs' indexes, never with their
//! samples: each open input holds its symbol offsets and decoded postings offset table, and
//! the list of its series references (4 bytes per series); the output `IndexWriter` holds the
//! merged symbol table and the postings lists (4 bytes per series and label) until it writes
//! them at the end, the same information the inputs' indexes hold on disk. Per series only
//! that series' chunks (and, when re-encoding, its decoded samples) are held. The estimate is
//!
//! `need = 32 MiB + Σ inputs (2 × index bytes + 16 × series)`
//!
//! (32 MiB: the writers' 1 MiB buffers, one series' working set and allocator slack; 2 × index
//! bytes: the inputs' in-memory tables plus the output's symbols and postings, both bounded by
//! the inputs' index sizes; 16 bytes per input series: the reference lists and the output's
//! all-series postings). `check_budget` refuses a plan whose estimate exceeds the budget with
//! `MergeError::OverBudget` naming the largest input; the executor marks that block
//! no-compact with reason `memory-budget` and plans again without it. Splitting cannot bound
//! it: the output index must hold every series of the plan, and cutting the output into
//! several blocks of the same time range would create the very overlap compaction removes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use ulid::Ulid;

use crate::storage::block::index::INDEX_FORMAT_V2;
use crate::storage::block::{BlockError, BlockMeta, BlockReader, BlockWriter, ThanosMeta};
use crate::storage::chunkenc::{decode_chunk, ChunkError};
use crate::storage::compact::{chunks_disjoint, plan_meta};
use crate::storage::dedup::{dedup_samples, encode_chunks};
use crate::storage::model::{EncodedChunk, Labels, Sample, Series};

/// Fixed part of the memory estimate (writer buffers, one series' working set, slack).
pub const MEMORY_BASE_BYTES: u64 = 32 << 20;
/// Estimated heap bytes per byte of input index.
pub const MEMORY_PER_INDEX_BYTE: u64 = 2;
/// Estimated heap bytes per input series.
pub const MEMORY_PER_SERIES: u64 = 16;
/// How often (in input series) `merge_blocks` reports progress.
const PROGRESS_EVERY: u64 = 4096;

/// How series present in several inputs are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MergeMode {
    /// Level compaction: inputs do not overlap; chunks are copied verbatim where they can be.
    Concat,
    /// Vertical compaction of HA replicas: replicas' samples go through `dedup_samples`.
    Dedup,
}

/// What `merge_blocks` needs to know beyond the inputs.
#[derive(Clone, Debug)]
pub struct MergeOptions {
    pub mode: MergeMode,
    /// The output's Thanos labels and resolution (the stream's; replica labels removed for a
    /// dedup). `None` keeps `compact::plan_meta`'s rule (the inputs' section if they agree).
    pub stream: Option<(BTreeMap<String, String>, i64)>,
    /// Refuse plans whose estimated memory need exceeds this (bytes); 0 = no limit.
    pub memory_budget_bytes: u64,
}

/// What is wrong with an input block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InputProblem {
    /// Chunks of a series out of time order or overlapping in the index.
    OutOfOrderChunks,
    /// Unreadable or inconsistent index, meta or chunk data.
    Corrupt,
    /// A chunk encoding that cannot be re-encoded (only XOR can).
    UnsupportedEncoding,
}

impl InputProblem {
    /// The no-compact mark reason for a block with this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            InputProblem::OutOfOrderChunks => "block-index-out-of-order-chunk",
            InputProblem::Corrupt => "corrupt-block",
            InputProblem::UnsupportedEncoding => "unsupported-chunk-encoding",
        }
    }
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// One input block cannot be compacted; the executor marks it no-compact.
    #[error("input block {block} ({problem}): {detail}")]
    Input {
        block: Ulid,
        problem: InputProblem,
        detail: String,
    },
    /// The plan's estimated memory need is over the budget (see the module doc).
    #[error("the plan needs an estimated {need} bytes of memory, over the budget of {budget} bytes; its largest input is {largest}")]
    OverBudget {
        need: u64,
        budget: u64,
        largest: Ulid,
    },
    #[error("no input blocks to merge")]
    NoInputs,
    /// Writing the output failed (local disk): nothing is wrong with the inputs.
    #[error("writing the merged block: {0}")]
    Output(#[source] BlockError),
}

impl MergeError {
    /// The input block to mark no-compact and the reason, when the error is one block's fault.
    pub fn culprit(&self) -> Option<(Ulid, &'static str)> {
        match self {
            MergeError::Input { block, problem, .. } => Some((*block, problem.reason())),
            MergeError::OverBudget { largest, .. } => Some((*largest, "memory-budget")),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, MergeError>;

fn input_err(block: Ulid, problem: InputProblem, detail: impl fmt::Display) -> MergeError {
    MergeError::Input {
        block,
        problem,
        detail: detail.to_string(),
    }
}

fn problem_of(e: &BlockError) -> InputProblem {
    match e {
        BlockError::Chunk {
            source: ChunkError::UnknownEncoding(_),
            ..
        } => InputProblem::UnsupportedEncoding,
        _ => InputProblem::Corrupt,
    }
}

/// The size facts of one input that the memory estimate uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputSize {
    pub ulid: Ulid,
    pub index_bytes: u64,
    pub num_series: u64,
}

/// Estimated peak heap bytes of merging `inputs` (the formula is in the module doc).
pub fn estimate_memory(inputs: &[InputSize]) -> u64 {
    inputs.iter().fold(MEMORY_BASE_BYTES, |acc, i| {
        acc.saturating_add(i.index_bytes.saturating_mul(MEMORY_PER_INDEX_BYTE))
            .saturating_add(i.num_series.saturating_mul(MEMORY_PER_SERIES))
    })
}

/// The estimate of `inputs` when it is within `budget_bytes` (0 = no limit), otherwise
/// `OverBudget` naming the input with the largest share.
pub fn check_budget(inputs: &[InputSize], budget_bytes: u64) -> Result<u64> {
    let need = estimate_memory(inputs);
    if budget_bytes == 0 || need <= budget_bytes {
        return Ok(need);
    }
    let largest = inputs
        .iter()
        .max_by_key(|i| estimate_memory(std::slice::from_ref(i)))
        .map(|i| i.ulid)
        .unwrap_or_else(Ulid::nil);
    Err(MergeError::OverBudget {
        need,
        budget: budget_bytes,
        largest,
    })
}

/// The meta of the block that merges `parents`: `compact::plan_meta` (level max + 1, sources
/// union, parents), with the Thanos section set to the stream's labels and resolution and
/// source `compactor` when `opts.stream` is given.
pub fn output_meta(parents: &[BlockMeta], opts: &MergeOptions) -> Result<BlockMeta> {
    let mut meta = plan_meta(parents).map_err(|_| MergeError::NoInputs)?;
    if let Some((labels, resolution)) = &opts.stream {
        meta.thanos = Some(ThanosMeta::new(labels.clone(), *resolution, "compactor"));
    }
    Ok(meta)
}

/// One open input and its series cursor.
struct Input {
    ulid: Ulid,
    /// Replica group (inputs with the same full external labels share one).
    replica: usize,
    block: BlockReader,
    refs: Vec<u32>,
    pos: usize,
    head: Option<Series>,
    last: Option<Labels>,
}

impl Input {
    fn err(&self, problem: InputProblem, detail: impl fmt::Display) -> MergeError {
        input_err(self.ulid, problem, detail)
    }

    /// Loads the next series with chunks into `head`, checking label and chunk order.
    fn advance(&mut self) -> Result<()> {
        self.head = None;
        while let Some(&id) = self.refs.get(self.pos) {
            self.pos += 1;
            let loaded = self.block.load_series(id, i64::MIN, i64::MAX, false);
            let series = match loaded {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => return Err(self.err(problem_of(&e), e)),
            };
            if let Some(prev) = &self.last {
                if series.labels <= *prev {
                    return Err(self.err(
                        InputProblem::Corrupt,
                        format!(
                            "index lists series {} after {prev}: series are not in label order",
                            series.labels
                        ),
                    ));
                }
            }
            self.check_chunks(&series)?;
            self.last = Some(series.labels.clone());
            self.head = Some(series);
            return Ok(());
        }
        Ok(())
    }

    fn check_chunks(&self, s: &Series) -> Result<()> {
        let mut prev: Option<&EncodedChunk> = None;
        for (i, c) in s.chunks.iter().enumerate() {
            if c.min_time > c.max_time {
                return Err(self.err(
                    InputProblem::Corrupt,
                    format!(
                        "series {}: chunk {i} has min time {} after max time {}",
                        s.labels, c.min_time, c.max_time
                    ),
                ));
            }
            if let Some(p) = prev {
                if c.min_time <= p.max_time {
                    return Err(self.err(
                        InputProblem::OutOfOrderChunks,
                        format!(
                            "series {}: chunk {i} [{}, {}] starts before the previous chunk [{}, {}] ends",
                            s.labels, c.min_time, c.max_time, p.min_time, p.max_time
                        ),
                    ));
                }
            }
            prev = Some(c);
        }
        Ok(())
    }

    /// Decodes chunks of this input (time-ordered, checked by `advance`) into samples.
    fn decode(&self, labels: &Labels, chunks: &[EncodedChunk]) -> Result<Vec<Sample>> {
        let mut out: Vec<Sample> = Vec::new();
        for c in chunks {
            let samples = decode_chunk(c).map_err(|e| {
                let problem = match e {
                    ChunkError::UnknownEncoding(_) => InputProblem::UnsupportedEncoding,
                    _ => InputProblem::Corrupt,
                };
                self.err(problem, format!("series {labels}: undecodable chunk: {e}"))
            })?;
            for s in samples {
                let in_range = s.t >= c.min_time && s.t <= c.max_time;
                let ordered = out.last().is_none_or(|p| p.t < s.t);
                if !in_range || !ordered {
                    return Err(self.err(
                        InputProblem::Corrupt,
                        format!(
                            "series {labels}: sample at {} is outside its chunk [{}, {}] or out of order",
                            s.t, c.min_time, c.max_time
                        ),
                    ));
                }
                out.push(s);
            }
        }
        Ok(out)
    }
}

/// Merges two sample streams (each strictly increasing); `b` wins an equal timestamp.
fn chain(a: Vec<Sample>, b: Vec<Sample>) -> Vec<Sample> {
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.t < y.t => {
                out.push(*x);
                i += 1;
            }
            (Some(x), Some(y)) => {
                if x.t == y.t {
                    i += 1;
                }
                out.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (None, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

fn reencode(labels: &Labels, samples: &[Sample]) -> Result<Vec<EncodedChunk>> {
    encode_chunks(samples).map_err(|e| {
        MergeError::Output(BlockError::Invalid(format!(
            "re-encoding series {labels}: {e}"
        )))
    })
}

/// The output chunks of one series; `parts` are (input index, that input's chunks), in input
/// order.
fn merge_series(
    labels: &Labels,
    parts: Vec<(usize, Vec<EncodedChunk>)>,
    inputs: &[Input],
    mode: MergeMode,
) -> Result<Vec<EncodedChunk>> {
    if parts.len() == 1 {
        return Ok(parts.into_iter().flat_map(|(_, c)| c).collect());
    }
    let first_replica = parts.first().map(|(k, _)| inputs[*k].replica);
    let replicas_differ = parts
        .iter()
        .any(|(k, _)| Some(inputs[*k].replica) != first_replica);
    if mode == MergeMode::Dedup && replicas_differ {
        // One sample stream per replica, in order of first appearance.
        let mut replicas: Vec<(usize, Vec<Sample>)> = Vec::new();
        for (k, chunks) in &parts {
            let input = &inputs[*k];
            let samples = input.decode(labels, chunks)?;
            match replicas.iter_mut().find(|(r, _)| *r == input.replica) {
                Some((_, acc)) => *acc = chain(std::mem::take(acc), samples),
                None => replicas.push((input.replica, samples)),
            }
        }
        let streams: Vec<Vec<Sample>> = replicas.into_iter().map(|(_, s)| s).collect();
        return reencode(labels, &dedup_samples(&streams, false));
    }
    let mut all: Vec<EncodedChunk> = parts.iter().flat_map(|(_, c)| c.clone()).collect();
    all.sort_by_key(|c| c.min_time);
    if chunks_disjoint(&all) {
        return Ok(all);
    }
    let mut acc: Vec<Sample> = Vec::new();
    for (k, chunks) in &parts {
        acc = chain(acc, inputs[*k].decode(labels, chunks)?);
    }
    reencode(labels, &acc)
}

/// Sorted symbol table of one input, borrowed from its mmap for index v2.
struct SymbolCursor<'a> {
    input: &'a Input,
    pos: u32,
    owned: Option<std::vec::IntoIter<String>>,
}

impl<'a> SymbolCursor<'a> {
    fn new(input: &'a Input) -> Result<Self> {
        let index = input.block.index();
        let owned = if index.version() == INDEX_FORMAT_V2 {
            None
        } else {
            // v1 refers to symbols by offset: take the table whole (only very old blocks).
            let all = index
                .symbols()
                .map_err(|e| input.err(InputProblem::Corrupt, e))?;
            Some(all.into_iter())
        };
        Ok(SymbolCursor {
            input,
            pos: 0,
            owned,
        })
    }

    fn next(&mut self) -> Option<Cow<'a, str>> {
        if let Some(it) = self.owned.as_mut() {
            return it.next().map(Cow::Owned);
        }
        // Positions past the end are the only failure once the index is open (its symbols
        // were bounds- and UTF-8-checked then).
        let s = self.input.block.index().symbol(self.pos).ok()?;
        self.pos += 1;
        Some(Cow::Borrowed(s))
    }
}

/// The union of the inputs' symbol tables, sorted and de-duplicated, built by merging the
/// sorted tables as streams (no per-input copies).
fn merge_symbols(inputs: &[Input]) -> Result<Vec<String>> {
    let mut cursors = Vec::with_capacity(inputs.len());
    let mut heads = Vec::with_capacity(inputs.len());
    for i in inputs {
        let mut c = SymbolCursor::new(i)?;
        heads.push(c.next());
        cursors.push(c);
    }
    let mut out: Vec<String> = Vec::new();
    while let Some(min) = heads.iter().flatten().min().cloned() {
        for (head, cur) in heads.iter_mut().zip(cursors.iter_mut()) {
            if head.as_ref().is_some_and(|h| *h == min) {
                let next = cur.next();
                if let Some(n) = &next {
                    if *n <= min {
                        return Err(cur.input.err(
                            InputProblem::Corrupt,
                            format!("symbol table not sorted: {n:?} follows {min:?}"),
                        ));
                    }
                }
                *head = next;
            }
        }
        out.push(min.into_owned());
    }
    Ok(out)
}

/// The ULID a block directory is named after (what the executor downloads to), else nil.
fn dir_ulid(dir: &Path) -> Ulid {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| Ulid::from_string(n).ok())
        .unwrap_or_else(Ulid::nil)
}

/// Merges the blocks in `dirs` into one new block under `out_parent` (see the module doc).
/// `progress(done, total)` hears how many input series have been merged. Returns `None`, and
/// writes nothing, when the inputs hold no series at all.
pub fn merge_blocks(
    dirs: &[PathBuf],
    out_parent: &Path,
    opts: &MergeOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<BlockMeta>> {
    if dirs.is_empty() {
        return Err(MergeError::NoInputs);
    }
    let mut inputs = Vec::with_capacity(dirs.len());
    for d in dirs {
        let named = dir_ulid(d);
        let block = BlockReader::open(d).map_err(|e| input_err(named, problem_of(&e), &e))?;
        let ulid = if named.is_nil() {
            block.meta().ulid
        } else {
            named
        };
        let refs = block
            .series_refs(&[])
            .map_err(|e| input_err(ulid, problem_of(&e), &e))?;
        inputs.push(Input {
            ulid,
            replica: 0,
            block,
            refs,
            pos: 0,
            head: None,
            last: None,
        });
    }
    inputs.sort_by_key(|i| (i.block.meta().min_time, i.ulid));
    let sizes: Vec<InputSize> = inputs
        .iter()
        .map(|i| InputSize {
            ulid: i.ulid,
            index_bytes: i.block.index().size(),
            num_series: (i.refs.len() as u64).max(i.block.meta().stats.num_series),
        })
        .collect();
    check_budget(&sizes, opts.memory_budget_bytes)?;
    // Replica groups: inputs with equal full external labels are one replica.
    let mut groups: Vec<Option<BTreeMap<String, String>>> = Vec::new();
    for i in inputs.iter_mut() {
        let labels = i.block.meta().thanos.as_ref().map(|t| t.labels.clone());
        i.replica = match groups.iter().position(|g| *g == labels) {
            Some(p) => p,
            None => {
                groups.push(labels);
                groups.len() - 1
            }
        };
    }
    let metas: Vec<BlockMeta> = inputs.iter().map(|i| i.block.meta().clone()).collect();
    let meta = output_meta(&metas, opts)?;
    let symbols = merge_symbols(&inputs)?;
    let mut w = BlockWriter::create(out_parent, symbols).map_err(MergeError::Output)?;
    for i in inputs.iter_mut() {
        i.advance()?;
    }
    let total: u64 = inputs.iter().map(|i| i.refs.len() as u64).sum();
    let mut done = 0u64;
    let mut reported = 0u64;
    loop {
        let Some(min) = inputs
            .iter()
            .filter_map(|i| i.head.as_ref().map(|s| &s.labels))
            .min()
            .cloned()
        else {
            break;
        };
        let mut parts = Vec::new();
        for (k, input) in inputs.iter_mut().enumerate() {
            if input.head.as_ref().is_some_and(|s| s.labels == min) {
                if let Some(s) = input.head.take() {
                    parts.push((k, s.chunks));
                }
                input.advance()?;
            }
        }
        done += parts.len() as u64;
        let chunks = merge_series(&min, parts, &inputs, opts.mode)?;
        w.add_series(&min, &chunks).map_err(MergeError::Output)?;
        if done - reported >= PROGRESS_EVERY {
            reported = done;
            progress(done, total);
        }
    }
    progress(total, total);
    if w.stats().num_series == 0 {
        w.abort().map_err(MergeError::Output)?;
        return Ok(None);
    }
    w.finish(meta).map(Some).map_err(MergeError::Output)
}

#[cfg(test)]
#[path = "merge_tests.rs"]
pub(crate) mod tests;
