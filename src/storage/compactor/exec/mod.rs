//! One compactor pass over the bucket (`run_pass`), in this order:
//!
//! 1. **List** the bucket once through the block catalogue and read every block's `meta.json`
//!    and marks. A garbage `meta.json` or mark file is logged in one line naming the block and
//!    the file, counted (`PassReport::invalid_files`, `strata_compactor_invalid_block_files`),
//!    and its block is skipped for the whole pass: never planned, never deleted. A bucket
//!    error while listing or reading is the pass's error (nothing has been written yet).
//! 2. **Classify** each block: deletion-marked (deleted once the mark is `delete_delay` old),
//!    too young (`consistency_delay`, ignored this pass), hidden by sources (a newer block
//!    holds all its data: marked for deletion as a duplicate), no-compact-marked (kept out of
//!    plans, still subject to retention), or plannable. Blocks are grouped into streams.
//! 3. **Per stream**, up to `concurrency` streams at once, each only when the `StreamGuard`
//!    accepts it (asked again before an upload, before marking inputs and before the clean-up
//!    writes): plan, execute, re-plan with the new block in place of its inputs, until the
//!    planner has nothing left. Executing a plan: download each input's files to
//!    `scratch_dir/<pass>/<ULID>/` (streamed to disk), merge on a blocking thread
//!    (`merge::merge_blocks`), upload the new block with `blocks::upload` (meta.json last),
//!    then put a deletion mark on every input. Scratch files go when the plan ends, however it
//!    ends (a guard removes them on drop; the pass directory is removed the same way).
//!    A planner decision to mark blocks no-compact, or a merge error that is one input's
//!    fault (corrupt block, out-of-order chunks, over the memory budget), writes no-compact
//!    marks (one log line naming the blocks and the reason) and planning goes on without
//!    those blocks. A bucket or local I/O error is recorded in `PassReport::errors` and ends
//!    that stream for this pass with no further marks: the next pass retries.
//!    Then the stream's **downsampling** (`downsample`, when `settings.downsample` is on),
//!    after its compaction and before its retention as in Thanos: the blocks
//!    `downsample_plan::plan_downsample` picks (raw → 5m from a 40h span, 5m → 1h from 10d,
//!    not when every source is already downsampled, not no-downsample-marked) are downloaded,
//!    downsampled a series at a time on a blocking thread and uploaded as a new block of the
//!    next resolution (meta.json last); not when the copy would already be past the
//!    retention of its resolution (Thanos would make it, delete it, and make it again). Its
//!    inputs stay: each resolution has its own
//!    retention. The new block belongs to the next resolution's stream and is compacted there
//!    from the next pass on. An input at fault (corrupt, unsupported chunks) gets
//!    `no-downsample-mark.json` and the step goes on; a bucket or local error ends the stream
//!    for this pass like a compaction error.
//!    Then the stream's clean-up: retention (deletion marks, reason `retention`), hidden
//!    blocks (deletion marks, reason `duplicate`), and deletion of blocks whose deletion mark
//!    is at least `delete_delay` old (`blocks::delete_block`, meta.json first).
//! 4. **Partial uploads** (no meta.json): deleted when older than 48 h, or at once when they
//!    carry a due deletion mark (a deletion cut short). They belong to no stream, so every
//!    node may do this; deleting is idempotent.
//!
//! **Crash safety.** The output's meta.json is its last object, so a kill during an upload
//! leaves an invisible partial upload (removed after 48 h; a failed upload is also removed at
//! once, best effort). Inputs are marked only after the output's meta.json is in; a kill
//! between the two leaves the inputs unmarked, and the next pass finds them hidden by the
//! output's sources and marks them then, so no data is ever visible twice or lost.

mod cleanup;
mod downsample;
mod pass;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use ulid::Ulid;

use super::downsample_plan::next_level;
use super::metrics::CompactorMetrics;
use super::plan::{hidden_by_sources, too_young, PlanKind, PlannerConfig, Retention, StreamKey};
use crate::storage::block::BlockMeta;
use crate::storage::bucket::blocks::{
    self, BlockDir, BlocksError, DeletionMark, DELETION_MARK_FILE, NO_COMPACT_MARK_FILE,
    NO_DOWNSAMPLE_MARK_FILE,
};
use crate::storage::bucket::{BucketError, ObjectStore};

/// What a pass does and where it works.
#[derive(Clone, Debug)]
pub struct CompactorSettings {
    pub planner: PlannerConfig,
    /// Blocks uploaded more recently than this are left alone (Thanos: 30 m).
    pub consistency_delay: Duration,
    /// A deletion mark must be this old before its block is deleted (Thanos: 48 h).
    pub delete_delay: Duration,
    pub retention: Retention,
    /// Plans whose estimated memory need is above this are refused (0 = no limit); see
    /// `merge`'s module doc for the estimate.
    pub memory_budget_bytes: u64,
    /// Streams compacted at once (at least 1).
    pub concurrency: usize,
    /// Where inputs are downloaded and outputs built; emptied after each pass.
    pub scratch_dir: PathBuf,
    /// Downsample after compaction (raw → 5m, 5m → 1h); config `compactor.downsample`.
    pub downsample: bool,
}

impl CompactorSettings {
    /// Thanos's defaults: consistency delay 30 m, delete delay 48 h, retention forever, one
    /// stream at a time, no memory budget; downsampling off here (tests of compaction alone
    /// start from this), on by default in the config (`settings_from_config`).
    pub fn new(planner: PlannerConfig, scratch_dir: PathBuf) -> Self {
        CompactorSettings {
            planner,
            consistency_delay: Duration::from_secs(30 * 60),
            delete_delay: Duration::from_secs(48 * 3600),
            retention: Retention::default(),
            memory_budget_bytes: 0,
            concurrency: 1,
            scratch_dir,
            downsample: false,
        }
    }
}

/// Who may compact which stream.
#[async_trait::async_trait]
pub trait StreamGuard: Send + Sync {
    /// May this node compact `stream` now? (the role: rendezvous ownership + a per-stream
    /// lease in the bucket; the CLI tool: always true). Checked before any write for the
    /// stream, and again before the upload and before marking inputs.
    async fn acquire(&self, stream: &StreamKey) -> bool;
    async fn release(&self, stream: &StreamKey);
}

/// The guard of a lone compactor: every stream is its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysOwn;

#[async_trait::async_trait]
impl StreamGuard for AlwaysOwn {
    async fn acquire(&self, _stream: &StreamKey) -> bool {
        true
    }
    async fn release(&self, _stream: &StreamKey) {}
}

/// A block a pass wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WrittenBlock {
    pub ulid: Ulid,
    pub stream: String,
    pub kind: PlanKind,
    pub level: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub sources: usize,
}

/// A no-compact mark a pass wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MarkedBlock {
    pub ulid: Ulid,
    pub reason: String,
    pub details: String,
}

/// A downsampled block a pass wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DownsampledBlock {
    /// The new block.
    pub ulid: Ulid,
    /// The block it was made from.
    pub source: Ulid,
    pub resolution: i64,
    pub min_time: i64,
    pub max_time: i64,
    pub num_series: u64,
    pub num_samples: u64,
}

/// A meta.json or mark file that could not be parsed; its block was skipped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidFile {
    pub ulid: Ulid,
    pub file: String,
    pub reason: String,
}

/// What one pass did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PassReport {
    /// Streams seen in the bucket.
    pub streams: usize,
    /// Streams the guard did not give this node.
    pub streams_not_owned: usize,
    pub vertical_plans: u64,
    pub level_plans: u64,
    pub blocks_written: Vec<WrittenBlock>,
    /// Inputs of written blocks, marked for deletion.
    pub inputs_marked: Vec<Ulid>,
    pub no_compact_marked: Vec<MarkedBlock>,
    pub downsampled: Vec<DownsampledBlock>,
    /// Blocks that could not be downsampled, given a no-downsample mark.
    pub no_downsample_marked: Vec<MarkedBlock>,
    pub retention_marked: Vec<Ulid>,
    /// Blocks hidden by a newer block's sources, marked for deletion.
    pub duplicates_marked: Vec<Ulid>,
    /// Blocks deleted (their deletion mark was due).
    pub deleted: Vec<Ulid>,
    pub partial_uploads_deleted: Vec<Ulid>,
    pub invalid_files: Vec<InvalidFile>,
    pub bytes_downloaded: u64,
    pub bytes_uploaded: u64,
    /// Transient failures; their streams are retried by the next pass.
    pub errors: Vec<String>,
    pub duration_seconds: f64,
}

impl PassReport {
    fn absorb(&mut self, o: PassReport) {
        self.streams_not_owned += o.streams_not_owned;
        self.vertical_plans += o.vertical_plans;
        self.level_plans += o.level_plans;
        self.blocks_written.extend(o.blocks_written);
        self.inputs_marked.extend(o.inputs_marked);
        self.no_compact_marked.extend(o.no_compact_marked);
        self.downsampled.extend(o.downsampled);
        self.no_downsample_marked.extend(o.no_downsample_marked);
        self.retention_marked.extend(o.retention_marked);
        self.duplicates_marked.extend(o.duplicates_marked);
        self.deleted.extend(o.deleted);
        self.partial_uploads_deleted
            .extend(o.partial_uploads_deleted);
        self.invalid_files.extend(o.invalid_files);
        self.bytes_downloaded += o.bytes_downloaded;
        self.bytes_uploaded += o.bytes_uploaded;
        self.errors.extend(o.errors);
    }
}

/// What a pass is doing, for a CLI or a status page.
#[derive(Debug, Clone, serde::Serialize)]
pub enum Progress {
    Listing,
    Planned {
        streams: usize,
    },
    StreamStart {
        stream: String,
        plan: usize,
    },
    Downloading {
        block: Ulid,
        bytes: u64,
        total: u64,
    },
    Merging {
        series: u64,
    },
    /// Downsampling `block` to `resolution` ms begins (after its download).
    Downsampling {
        block: Ulid,
        resolution: i64,
    },
    /// `block` was downsampled into `into`, now uploaded.
    Downsampled {
        block: Ulid,
        into: Ulid,
        resolution: i64,
        series: u64,
    },
    Uploading {
        block: Ulid,
    },
    Marked {
        block: Ulid,
        what: String,
    },
    Deleted {
        block: Ulid,
    },
    Done,
}

/// Why a pass could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("listing the bucket: {0}")]
    List(#[source] BucketError),
    #[error("reading {ulid}/{file}: {source}")]
    Read {
        ulid: Ulid,
        file: &'static str,
        #[source]
        source: BucketError,
    },
    #[error("scratch directory {path}: {source}")]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ExecError>;

/// Removes a scratch path (directory or file) when dropped, whatever happened before.
pub(crate) struct ScratchGuard {
    paths: Vec<PathBuf>,
}

impl ScratchGuard {
    pub(crate) fn new() -> Self {
        ScratchGuard { paths: Vec::new() }
    }

    pub(crate) fn push(&mut self, p: PathBuf) {
        self.paths.push(p);
    }
}

impl Drop for ScratchGuard {
    fn drop(&mut self) {
        for p in &self.paths {
            // Best effort: a leftover is removed with its pass directory at the latest.
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
}

/// A block of the bucket with a readable meta.json.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub dir: BlockDir,
    pub meta: BlockMeta,
    pub deletion: Option<DeletionMark>,
    pub no_compact: bool,
    pub no_downsample: bool,
}

/// One stream's blocks, classified.
#[derive(Default)]
pub(crate) struct StreamBlocks {
    /// Plannable blocks (current state: outputs replace their inputs as the pass goes).
    pub plannable: Vec<BlockMeta>,
    /// No-compact-marked blocks (also the ones marked during the pass).
    pub no_compact: Vec<BlockMeta>,
    /// Hidden by another block's sources: to be marked for deletion.
    pub hidden: Vec<Ulid>,
    /// Already marked for deletion, with their marks.
    pub deleting: Vec<(Ulid, DeletionMark)>,
    /// Listing facts of the blocks (sizes, objects) for downloads.
    pub dirs: BTreeMap<Ulid, BlockDir>,
    /// Blocks with a no-downsample mark (also the ones marked during the pass).
    pub no_downsample: BTreeSet<Ulid>,
    /// The bucket's blocks at this stream's next resolution (every stream's, without
    /// deletion-marked ones): their sources count as already downsampled.
    pub covering: Vec<BlockMeta>,
}

/// Everything a stream's work needs from the pass.
pub(crate) struct Ctx<'a> {
    pub store: &'a dyn ObjectStore,
    pub settings: &'a CompactorSettings,
    pub guard: &'a dyn StreamGuard,
    pub metrics: Option<&'a CompactorMetrics>,
    pub progress: &'a (dyn Fn(Progress) + Send + Sync),
    pub now: SystemTime,
    pub pass_dir: PathBuf,
    pub steps: Steps,
}

/// Which parts of a pass run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Steps {
    /// Plan and compact each stream.
    pub compact: bool,
    /// Downsample each stream's eligible blocks.
    pub downsample: bool,
    /// Retention, duplicate and deletion marks, deletions, partial uploads.
    pub cleanup: bool,
}

impl Ctx<'_> {
    pub(crate) fn now_ms(&self) -> i64 {
        crate::time::unix_ms(self.now)
    }

    pub(crate) fn metrics(&self, f: impl FnOnce(&CompactorMetrics)) {
        if let Some(m) = self.metrics {
            f(m);
        }
    }
}

/// One pass over the bucket (the order is in the module doc). `now` is the pass's clock for
/// the consistency delay, retention, deletion delays, marks and the 48 h partial threshold.
pub async fn run_pass(
    store: Arc<dyn ObjectStore>,
    settings: &CompactorSettings,
    guard: &dyn StreamGuard,
    metrics: Option<&CompactorMetrics>,
    progress: &(dyn Fn(Progress) + Send + Sync),
    now: SystemTime,
) -> Result<PassReport> {
    let steps = Steps {
        compact: true,
        downsample: settings.downsample,
        cleanup: true,
    };
    run(store, settings, guard, metrics, progress, now, steps).await
}

/// A pass that only downsamples (`strata tools bucket downsample`, Thanos's `tools bucket
/// downsample`): every stream's eligible blocks, whatever `settings.downsample` says; no
/// compaction, no marks or deletions other than no-downsample marks on bad inputs.
pub async fn run_downsample(
    store: Arc<dyn ObjectStore>,
    settings: &CompactorSettings,
    guard: &dyn StreamGuard,
    metrics: Option<&CompactorMetrics>,
    progress: &(dyn Fn(Progress) + Send + Sync),
    now: SystemTime,
) -> Result<PassReport> {
    let steps = Steps {
        compact: false,
        downsample: true,
        cleanup: false,
    };
    run(store, settings, guard, metrics, progress, now, steps).await
}

/// A pass without compaction, for every stream: retention marks, duplicate marks, deletion
/// of blocks whose mark is due, and abandoned partial uploads (`strata tools bucket compact
/// --cleanup-only`). Nothing is downloaded or merged.
pub async fn run_cleanup(
    store: Arc<dyn ObjectStore>,
    settings: &CompactorSettings,
    metrics: Option<&CompactorMetrics>,
    progress: &(dyn Fn(Progress) + Send + Sync),
    now: SystemTime,
) -> Result<PassReport> {
    let steps = Steps {
        compact: false,
        downsample: false,
        cleanup: true,
    };
    run(store, settings, &AlwaysOwn, metrics, progress, now, steps).await
}

async fn run(
    store: Arc<dyn ObjectStore>,
    settings: &CompactorSettings,
    guard: &dyn StreamGuard,
    metrics: Option<&CompactorMetrics>,
    progress: &(dyn Fn(Progress) + Send + Sync),
    now: SystemTime,
    steps: Steps,
) -> Result<PassReport> {
    let started = Instant::now();
    let pass_dir = settings.scratch_dir.join(format!("pass-{}", Ulid::new()));
    let result = {
        let mut scratch = ScratchGuard::new();
        match open_pass_dir(&settings.scratch_dir, &pass_dir) {
            Ok(_lock) => {
                scratch.push(pass_dir.clone());
                let ctx = Ctx {
                    store: &*store,
                    settings,
                    guard,
                    metrics,
                    progress,
                    now,
                    pass_dir,
                    steps,
                };
                pass(&ctx).await
            }
            Err(source) => Err(ExecError::Scratch {
                path: pass_dir,
                source,
            }),
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(m) = metrics {
        m.pass_duration.observe(elapsed);
        m.group_progress.set(0.0);
        match &result {
            Ok(r) if r.errors.is_empty() => {
                m.last_successful_pass
                    .set(crate::time::since_epoch(now).as_secs_f64());
            }
            _ => {
                m.pass_failures.inc();
            }
        }
    }
    progress(Progress::Done);
    result.map(|mut r| {
        r.duration_seconds = elapsed;
        r
    })
}

/// Lock file inside a pass directory, held (`File::try_lock`) while the pass runs.
const PASS_LOCK: &str = ".lock";

/// Removes what killed passes left in `scratch` (pass directories whose lock nobody holds:
/// a lock dies with its process), then creates `pass_dir` and returns its held lock.
fn open_pass_dir(scratch: &Path, pass_dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(scratch)?;
    for entry in std::fs::read_dir(scratch)? {
        let path = entry?.path();
        let is_pass = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("pass-"));
        if !is_pass {
            continue;
        }
        let abandoned = match std::fs::File::open(path.join(PASS_LOCK)) {
            Ok(f) => f.try_lock().is_ok(),
            Err(_) => true,
        };
        if abandoned {
            tracing::info!(dir = %path.display(), "compactor: removing the scratch of an earlier pass");
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    std::fs::create_dir_all(pass_dir)?;
    let lock = std::fs::File::create(pass_dir.join(PASS_LOCK))?;
    lock.try_lock().map_err(std::io::Error::other)?;
    Ok(lock)
}

/// How many metas and marks are read at once while listing.
const READ_CONCURRENCY: usize = 16;

enum Loaded {
    Block(Box<Entry>),
    Partial(BlockDir),
    Invalid(InvalidFile),
    Gone,
}

fn invalid(
    e: BlocksError,
    ulid: Ulid,
    file: &'static str,
) -> std::result::Result<Loaded, ExecError> {
    match e {
        BlocksError::Invalid { ulid, file, reason } => Ok(Loaded::Invalid(InvalidFile {
            ulid,
            file: file.to_string(),
            reason,
        })),
        BlocksError::Bucket(source) => Err(ExecError::Read { ulid, file, source }),
    }
}

async fn load(store: &dyn ObjectStore, dir: BlockDir) -> std::result::Result<Loaded, ExecError> {
    if dir.is_partial() {
        return Ok(Loaded::Partial(dir));
    }
    let ulid = dir.ulid;
    let meta = match blocks::read_meta(store, ulid).await {
        Ok(m) => m,
        Err(BlocksError::Bucket(e)) if e.is_not_found() => return Ok(Loaded::Gone),
        Err(e) => return invalid(e, ulid, blocks::META_FILE),
    };
    let mut deletion = None;
    if dir.has_deletion_mark {
        match blocks::read_deletion_mark(store, ulid).await {
            Ok(m) => deletion = m,
            Err(e) => return invalid(e, ulid, DELETION_MARK_FILE),
        }
    }
    let mut no_compact = false;
    if dir.has_no_compact_mark {
        match blocks::read_no_compact_mark(store, ulid).await {
            Ok(m) => no_compact = m.is_some(),
            Err(e) => return invalid(e, ulid, NO_COMPACT_MARK_FILE),
        }
    }
    let mut no_downsample = false;
    if dir.has_no_downsample_mark {
        match blocks::read_no_downsample_mark(store, ulid).await {
            Ok(m) => no_downsample = m.is_some(),
            Err(e) => return invalid(e, ulid, NO_DOWNSAMPLE_MARK_FILE),
        }
    }
    Ok(Loaded::Block(Box::new(Entry {
        dir,
        meta,
        deletion,
        no_compact,
        no_downsample,
    })))
}

async fn pass(ctx: &Ctx<'_>) -> Result<PassReport> {
    let mut report = PassReport::default();
    (ctx.progress)(Progress::Listing);
    let listing = blocks::list_blocks(ctx.store)
        .await
        .map_err(ExecError::List)?;
    let loaded: Vec<std::result::Result<Loaded, ExecError>> = futures::stream::iter(listing)
        .map(|(_, dir)| load(ctx.store, dir))
        .buffer_unordered(READ_CONCURRENCY)
        .collect()
        .await;
    let mut entries: BTreeMap<Ulid, Entry> = BTreeMap::new();
    let mut partials = Vec::new();
    for l in loaded {
        match l? {
            Loaded::Block(e) => {
                entries.insert(e.meta.ulid, *e);
            }
            Loaded::Partial(d) => partials.push(d),
            Loaded::Invalid(f) => {
                tracing::warn!(block = %f.ulid, file = %f.file, reason = %f.reason, "compactor: skipping block with an unreadable file");
                ctx.metrics(|m| m.inc_invalid(&f.file));
                report.invalid_files.push(f);
            }
            Loaded::Gone => {}
        }
    }
    let streams = classify(ctx, entries);
    report.streams = streams.len();
    (ctx.progress)(Progress::Planned {
        streams: streams.len(),
    });
    let reports: Vec<PassReport> = futures::stream::iter(streams)
        .map(|(key, blocks)| pass::run_stream(ctx, key, blocks))
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await;
    for r in reports {
        report.absorb(r);
    }
    if ctx.steps.cleanup {
        cleanup::partial_uploads(ctx, &partials, &mut report).await;
    }
    Ok(report)
}

/// Splits the readable blocks into streams and classifies them (see the module doc).
fn classify(ctx: &Ctx<'_>, entries: BTreeMap<Ulid, Entry>) -> BTreeMap<StreamKey, StreamBlocks> {
    let delay_ms = i64::try_from(ctx.settings.consistency_delay.as_millis()).unwrap_or(i64::MAX);
    let now_ms = ctx.now_ms();
    let young: BTreeSet<Ulid> = entries
        .values()
        .filter(|e| too_young(&e.meta, now_ms, delay_ms))
        .map(|e| e.meta.ulid)
        .collect();
    let live: Vec<BlockMeta> = entries
        .values()
        .filter(|e| e.deletion.is_none() && !young.contains(&e.meta.ulid))
        .map(|e| e.meta.clone())
        .collect();
    let hidden = hidden_by_sources(&live);
    // Blocks by resolution, for each stream's `covering` list.
    let mut by_res: BTreeMap<i64, Vec<BlockMeta>> = BTreeMap::new();
    for e in entries.values().filter(|e| e.deletion.is_none()) {
        by_res
            .entry(e.meta.resolution())
            .or_default()
            .push(e.meta.clone());
    }
    let mut streams: BTreeMap<StreamKey, StreamBlocks> = BTreeMap::new();
    for (ulid, e) in entries {
        let s = streams
            .entry(StreamKey::of(&e.meta, &ctx.settings.planner))
            .or_insert_with_key(|k| StreamBlocks {
                covering: next_level(k.resolution_ms)
                    .and_then(|(to, _)| by_res.get(&to).cloned())
                    .unwrap_or_default(),
                ..StreamBlocks::default()
            });
        if e.no_downsample {
            s.no_downsample.insert(ulid);
        }
        if let Some(mark) = e.deletion {
            s.deleting.push((ulid, mark));
        } else if young.contains(&ulid) {
            // Left alone this pass.
        } else if hidden.contains(&ulid) {
            s.hidden.push(ulid);
        } else if e.no_compact {
            s.no_compact.push(e.meta);
        } else {
            s.plannable.push(e.meta);
        }
        s.dirs.insert(ulid, e.dir);
    }
    streams
}
