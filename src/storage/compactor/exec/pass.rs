//! One stream's compaction: plan, execute, re-plan until the planner has nothing left; then
//! the stream's downsampling (`downsample::stream`) and its clean-up (`cleanup::stream`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ulid::Ulid;

use super::{
    cleanup, downsample, Ctx, MarkedBlock, PassReport, Progress, ScratchGuard, StreamBlocks,
    WrittenBlock,
};
use crate::storage::block::{BlockMeta, ThanosMeta};
use crate::storage::bucket::blocks::{
    self, BlockDir, BlockFile, BlocksError, NoCompactReason, SegmentObject, CHUNKS_DIR, INDEX_FILE,
    TOMBSTONES_FILE,
};
use crate::storage::bucket::BucketError;
use crate::storage::compactor::merge::{
    check_budget, merge_blocks, InputSize, MergeError, MergeMode, MergeOptions,
};
use crate::storage::compactor::plan::{
    expired, plan_stream_with_no_compact, Plan, PlanKind, StreamDecision, StreamKey,
};

/// A failure that ends the stream for this pass (retried by the next one).
#[derive(Debug, thiserror::Error)]
pub(super) enum StepError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error("local scratch I/O: {0}")]
    Local(String),
    #[error(transparent)]
    Merge(MergeError),
}

impl From<BlocksError> for StepError {
    fn from(e: BlocksError) -> Self {
        match e {
            BlocksError::Bucket(b) => StepError::Bucket(b),
            other => StepError::Local(other.to_string()),
        }
    }
}

/// How a step ended when it did not fail.
pub(super) enum Step {
    /// Go on planning the stream.
    Continue,
    /// The guard took the stream away: stop without further writes.
    Stop,
}

/// Compacts one stream, then cleans it up; returns what it did.
pub(super) async fn run_stream(ctx: &Ctx<'_>, key: StreamKey, mut s: StreamBlocks) -> PassReport {
    let mut rep = PassReport::default();
    if !ctx.guard.acquire(&key).await {
        rep.streams_not_owned = 1;
        return rep;
    }
    let mut done = if ctx.steps.compact {
        compact(ctx, &key, &mut s, &mut rep).await
    } else {
        Ok(Step::Continue)
    };
    if ctx.steps.downsample && matches!(done, Ok(Step::Continue)) {
        done = downsample::stream(ctx, &key, &mut s, &mut rep).await;
    }
    let result = match done {
        Ok(Step::Continue) if ctx.steps.cleanup && ctx.guard.acquire(&key).await => {
            cleanup::stream(ctx, &key, &s, &mut rep).await
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(stream = %key, error = %e, "compactor: stream left for the next pass");
        rep.errors.push(format!("stream {key}: {e}"));
    }
    ctx.metrics(|m| {
        m.group_progress.set(0.0);
    });
    ctx.guard.release(&key).await;
    rep
}

async fn compact(
    ctx: &Ctx<'_>,
    key: &StreamKey,
    s: &mut StreamBlocks,
    rep: &mut PassReport,
) -> Result<Step, StepError> {
    // Every step removes at least one block from planning or merges several into one; the
    // bound only guards against a planner that would repeat itself.
    let max_steps = 2 * (s.plannable.len() + s.no_compact.len()) + 8;
    let mut plan_no = 0usize;
    // Blocks past retention are marked by the clean-up after compaction; compacting them first
    // would only download, merge and upload data about to be deleted (Thanos does that).
    let retained: BTreeSet<Ulid> = expired(&s.plannable, &ctx.settings.retention, ctx.now_ms())
        .into_iter()
        .collect();
    for _ in 0..max_steps {
        let live: Vec<BlockMeta> = s
            .plannable
            .iter()
            .filter(|m| !retained.contains(&m.ulid))
            .cloned()
            .collect();
        let decision =
            plan_stream_with_no_compact(key, &live, &s.no_compact, &ctx.settings.planner);
        let step = match decision {
            StreamDecision::Nothing => return Ok(Step::Continue),
            StreamDecision::MarkNoCompact {
                blocks,
                reason,
                details,
            } => {
                if !ctx.guard.acquire(key).await {
                    return Ok(Step::Stop);
                }
                mark_no_compact(ctx, key, s, rep, &blocks, &reason, &details).await?;
                Step::Continue
            }
            StreamDecision::Compact(plan) => {
                plan_no += 1;
                ctx.metrics(|m| {
                    m.groups_planned.inc();
                });
                execute(ctx, key, s, rep, &plan, plan_no).await?
            }
        };
        if let Step::Stop = step {
            return Ok(Step::Stop);
        }
    }
    Err(StepError::Local(format!(
        "the planner did not settle after {max_steps} steps"
    )))
}

/// Writes no-compact marks on `blocks` and takes them out of planning.
async fn mark_no_compact(
    ctx: &Ctx<'_>,
    key: &StreamKey,
    s: &mut StreamBlocks,
    rep: &mut PassReport,
    ulids: &[Ulid],
    reason: &str,
    details: &str,
) -> Result<(), StepError> {
    let list: Vec<String> = ulids.iter().map(Ulid::to_string).collect();
    tracing::warn!(stream = %key, blocks = %list.join(","), reason, details, "compactor: marking blocks no-compact");
    for &ulid in ulids {
        let written = blocks::write_no_compact_mark(
            ctx.store,
            ulid,
            NoCompactReason::from(reason.to_string()),
            details,
            ctx.now,
        )
        .await?;
        if written {
            ctx.metrics(|m| m.inc_marked(reason));
            (ctx.progress)(Progress::Marked {
                block: ulid,
                what: format!("no-compact ({reason})"),
            });
            rep.no_compact_marked.push(MarkedBlock {
                ulid,
                reason: reason.to_string(),
                details: details.to_string(),
            });
        }
        if let Some(pos) = s.plannable.iter().position(|m| m.ulid == ulid) {
            let meta = s.plannable.remove(pos);
            s.no_compact.push(meta);
        }
    }
    Ok(())
}

pub(super) fn set_ratio(ctx: &Ctx<'_>, r: f64) {
    ctx.metrics(|m| {
        m.group_progress.set(r.clamp(0.0, 1.0));
    });
}

pub(super) fn ratio(done: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    }
}

/// Carries out one plan: download, merge, upload, mark the inputs.
async fn execute(
    ctx: &Ctx<'_>,
    key: &StreamKey,
    s: &mut StreamBlocks,
    rep: &mut PassReport,
    plan: &Plan,
    plan_no: usize,
) -> Result<Step, StepError> {
    (ctx.progress)(Progress::StreamStart {
        stream: key.to_string(),
        plan: plan_no,
    });
    set_ratio(ctx, 0.0);
    let mut dirs = Vec::with_capacity(plan.blocks.len());
    for b in &plan.blocks {
        match s.dirs.get(&b.ulid) {
            Some(d) if d.index_size.is_some() => dirs.push(d.clone()),
            _ => {
                let details = "the bucket holds no index for this block";
                mark_no_compact(ctx, key, s, rep, &[b.ulid], "corrupt-block", details).await?;
                return Ok(Step::Continue);
            }
        }
    }
    // Refuse before downloading anything when the listing already shows the plan is too big.
    let sizes: Vec<InputSize> = plan
        .blocks
        .iter()
        .zip(&dirs)
        .map(|(m, d)| InputSize {
            ulid: m.ulid,
            index_bytes: d.index_size.unwrap_or(0),
            num_series: m.stats.num_series,
        })
        .collect();
    if let Err(e) = check_budget(&sizes, ctx.settings.memory_budget_bytes) {
        return on_merge_error(ctx, key, s, rep, e).await;
    }
    let mut scratch = ScratchGuard::new();
    let total: u64 = dirs.iter().map(download_size).sum();
    let mut done = 0u64;
    let mut local = Vec::with_capacity(dirs.len());
    for (meta, dir) in plan.blocks.iter().zip(&dirs) {
        let dest = ctx.pass_dir.join(meta.ulid.to_string());
        scratch.push(dest.clone());
        download(ctx, rep, meta, dir, &dest, &mut done, total).await?;
        local.push(dest);
    }
    let mode = match plan.kind {
        PlanKind::Vertical if ctx.settings.planner.dedup => MergeMode::Dedup,
        _ => MergeMode::Concat,
    };
    let opts = MergeOptions {
        mode,
        stream: plan
            .blocks
            .iter()
            .any(|b| b.thanos.is_some())
            .then(|| (key.labels.clone(), key.resolution_ms)),
        memory_budget_bytes: ctx.settings.memory_budget_bytes,
    };
    let merged = merge(ctx, local, opts).await?;
    let new_meta = match merged {
        Ok(Some(m)) => Some(m),
        Ok(None) => None,
        Err(e) => return on_merge_error(ctx, key, s, rep, e).await,
    };
    let mut written = None;
    if let Some(meta) = new_meta {
        let out_dir = ctx.pass_dir.join(meta.ulid.to_string());
        scratch.push(out_dir.clone());
        if !ctx.guard.acquire(key).await {
            return Ok(Step::Stop);
        }
        let meta = upload(ctx, rep, &out_dir, meta).await?;
        rep.blocks_written.push(WrittenBlock {
            ulid: meta.ulid,
            stream: key.to_string(),
            kind: plan.kind,
            level: meta.compaction.level,
            min_time: meta.min_time,
            max_time: meta.max_time,
            sources: meta.compaction.sources.len(),
        });
        s.dirs.insert(meta.ulid, uploaded_dir(&out_dir, &meta)?);
        written = Some(meta);
    }
    drop(scratch);
    if !ctx.guard.acquire(key).await {
        // The output is in; the next pass finds the inputs hidden by its sources.
        return Ok(Step::Stop);
    }
    let details = match &written {
        Some(m) => format!("compacted into {}", m.ulid),
        None => "compacted into nothing: the inputs hold no series".to_string(),
    };
    for b in &plan.blocks {
        if blocks::write_deletion_mark(ctx.store, b.ulid, &details, ctx.now).await? {
            ctx.metrics(|m| m.inc_marked("compacted"));
        }
        (ctx.progress)(Progress::Marked {
            block: b.ulid,
            what: "deletion (compacted)".into(),
        });
        rep.inputs_marked.push(b.ulid);
    }
    match plan.kind {
        PlanKind::Vertical => rep.vertical_plans += 1,
        PlanKind::Level => rep.level_plans += 1,
    }
    ctx.metrics(|m| {
        m.groups_compacted.inc();
        m.group_progress.set(1.0);
    });
    s.plannable
        .retain(|m| !plan.blocks.iter().any(|b| b.ulid == m.ulid));
    if let Some(m) = written {
        s.plannable.push(m);
    }
    Ok(Step::Continue)
}

/// A merge error that is one input's fault marks that input no-compact; any other ends the
/// stream for this pass.
async fn on_merge_error(
    ctx: &Ctx<'_>,
    key: &StreamKey,
    s: &mut StreamBlocks,
    rep: &mut PassReport,
    e: MergeError,
) -> Result<Step, StepError> {
    let Some((ulid, reason)) = e.culprit() else {
        return Err(StepError::Merge(e));
    };
    if !ctx.guard.acquire(key).await {
        return Ok(Step::Stop);
    }
    mark_no_compact(ctx, key, s, rep, &[ulid], reason, &e.to_string()).await?;
    Ok(Step::Continue)
}

/// The objects of a block that a merge needs: index, segments, tombstones (rel path, key, size).
fn download_objects(dir: &BlockDir) -> Vec<(String, String, u64)> {
    let prefix = blocks::block_prefix(dir.ulid);
    let mut out = Vec::new();
    for o in &dir.objects {
        let Some(rel) = o.key.strip_prefix(&prefix) else {
            continue;
        };
        let wanted = rel == INDEX_FILE
            || rel == TOMBSTONES_FILE
            || dir.segments.iter().any(|s| s.key == o.key);
        if wanted {
            out.push((rel.to_string(), o.key.clone(), o.size));
        }
    }
    out
}

pub(super) fn download_size(dir: &BlockDir) -> u64 {
    download_objects(dir).iter().map(|(_, _, n)| n).sum()
}

pub(super) fn local_err(path: &Path, e: impl std::fmt::Display) -> StepError {
    StepError::Local(format!("{}: {e}", path.display()))
}

/// Downloads one input to `dest`, every object streamed to disk; meta.json is written from
/// the meta the pass already read and checked.
pub(super) async fn download(
    ctx: &Ctx<'_>,
    rep: &mut PassReport,
    meta: &BlockMeta,
    dir: &BlockDir,
    dest: &Path,
    done: &mut u64,
    total: u64,
) -> Result<(), StepError> {
    let chunks = dest.join(CHUNKS_DIR);
    tokio::fs::create_dir_all(&chunks)
        .await
        .map_err(|e| local_err(&chunks, e))?;
    for (rel, key, _) in download_objects(dir) {
        let n = ctx.store.get_to_file(&key, &dest.join(&rel)).await?;
        *done += n;
        rep.bytes_downloaded += n;
        ctx.metrics(|m| {
            m.bytes_read.inc_by(n);
        });
        (ctx.progress)(Progress::Downloading {
            block: meta.ulid,
            bytes: *done,
            total,
        });
        set_ratio(ctx, 0.5 * ratio(*done, total));
    }
    let m = meta.clone();
    let d = dest.to_path_buf();
    tokio::task::spawn_blocking(move || m.write(&d))
        .await
        .map_err(|e| local_err(dest, e))?
        .map_err(|e| local_err(dest, e))
}

/// Runs `merge_blocks` on a blocking thread, reporting progress while it runs. The outer
/// error is the task's (a panic), the inner one the merge's.
async fn merge(
    ctx: &Ctx<'_>,
    dirs: Vec<PathBuf>,
    opts: MergeOptions,
) -> Result<Result<Option<BlockMeta>, MergeError>, StepError> {
    let done = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let (d, t) = (done.clone(), total.clone());
    let out = ctx.pass_dir.clone();
    let task = tokio::task::spawn_blocking(move || {
        merge_blocks(&dirs, &out, &opts, &mut |x, y| {
            d.store(x, Ordering::Relaxed);
            t.store(y, Ordering::Relaxed);
        })
    });
    tokio::pin!(task);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            r = &mut task => {
                let series = done.load(Ordering::Relaxed);
                (ctx.progress)(Progress::Merging { series });
                return r.map_err(|e| StepError::Local(format!("merge task failed: {e}")));
            }
            _ = tick.tick() => {
                let (x, y) = (done.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
                (ctx.progress)(Progress::Merging { series: x });
                set_ratio(ctx, 0.5 + 0.4 * ratio(x, y));
            }
        }
    }
}

/// Uploads the merged block in `dir` (meta.json last) and returns its meta as uploaded. A
/// failed upload is removed again, best effort; what is left is an invisible partial upload.
pub(super) async fn upload(
    ctx: &Ctx<'_>,
    rep: &mut PassReport,
    dir: &Path,
    mut meta: BlockMeta,
) -> Result<BlockMeta, StepError> {
    let ulid = meta.ulid;
    let gathered = {
        let d = dir.to_path_buf();
        tokio::task::spawn_blocking(move || ThanosMeta::gather_files(&d))
            .await
            .map_err(|e| local_err(dir, e))?
            .map_err(|e| local_err(dir, e))?
    };
    // Thanos order: chunks/ first, then index; meta.json is `upload`'s last put.
    let mut files: Vec<BlockFile> = gathered
        .iter()
        .filter(|f| f.rel_path != blocks::META_FILE)
        .map(|f| BlockFile {
            rel_path: f.rel_path.clone(),
            size: u64::try_from(f.size_bytes).unwrap_or(0),
        })
        .collect();
    files.sort_by_key(|f| (f.rel_path == INDEX_FILE, f.rel_path.clone()));
    if let Some(t) = meta.thanos.as_mut() {
        t.files = gathered;
        t.upload_time = Some(crate::time::rfc3339_nanos(ctx.now));
    }
    let body = meta
        .to_json()
        .map_err(|e| StepError::Local(format!("meta.json of {ulid}: {e}")))?;
    (ctx.progress)(Progress::Uploading { block: ulid });
    let total: u64 = files.iter().map(|f| f.size).sum::<u64>() + body.len() as u64;
    let mut sent_bytes = 0u64;
    let metrics = ctx.metrics;
    let mut sent = |_: &str, n: u64| {
        sent_bytes += n;
        if let Some(m) = metrics {
            m.bytes_written.inc_by(n);
            m.group_progress
                .set(0.9 + 0.1 * ratio(sent_bytes, total).min(1.0));
        }
    };
    let result = blocks::upload(
        ctx.store,
        ulid,
        dir,
        &files,
        || Ok::<Bytes, BucketError>(Bytes::from(body)),
        &mut sent,
    )
    .await;
    match result {
        Ok(n) => {
            rep.bytes_uploaded += n;
            Ok(meta)
        }
        Err(e) => {
            rep.bytes_uploaded += sent_bytes;
            if let Err(cleanup) = blocks::delete_block(ctx.store, ulid).await {
                tracing::warn!(block = %ulid, error = %cleanup, "compactor: could not remove a failed upload; it is removed as a partial upload after 48h");
            }
            Err(e.into())
        }
    }
}

/// The listing facts of a block this pass uploaded from `dir`, for a later plan's download.
fn uploaded_dir(dir: &Path, meta: &BlockMeta) -> Result<BlockDir, StepError> {
    let files = ThanosMeta::gather_files(dir).map_err(|e| local_err(dir, e))?;
    let mut d = BlockDir {
        ulid: meta.ulid,
        has_meta: true,
        has_deletion_mark: false,
        has_no_compact_mark: false,
        has_no_downsample_mark: false,
        index_size: None,
        segments: Vec::new(),
        objects: Vec::new(),
    };
    for f in files.iter().filter(|f| f.rel_path != blocks::META_FILE) {
        let key = blocks::object_key(meta.ulid, &f.rel_path);
        let size = u64::try_from(f.size_bytes).unwrap_or(0);
        if f.rel_path == INDEX_FILE {
            d.index_size = Some(size);
        } else {
            d.segments.push(SegmentObject {
                key: key.clone(),
                size,
            });
        }
        d.objects.push(crate::storage::bucket::ListEntry {
            key,
            size,
            last_modified: None,
        });
    }
    Ok(d)
}
