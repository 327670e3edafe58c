//! One stream's downsampling step (after its compaction, before its retention): plan with
//! `downsample_plan::plan_downsample`, then per job download the input, run
//! `downsample_block::downsample_block` on a blocking thread, upload the new block (meta.json
//! last). An input at fault gets a no-downsample mark and the step goes on with the next job;
//! a bucket or local error ends the stream for this pass (see the module doc of `exec`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ulid::Ulid;

use super::pass::{download, download_size, local_err, ratio, set_ratio, upload, Step, StepError};
use super::{Ctx, DownsampledBlock, MarkedBlock, PassReport, Progress, ScratchGuard, StreamBlocks};
use crate::storage::block::BlockMeta;
use crate::storage::bucket::blocks::{self, NoCompactReason};
use crate::storage::compactor::downsample_block::{
    downsample_block, DownsampleBlockError, REASON_CORRUPT,
};
use crate::storage::compactor::downsample_plan::{
    next_level, plan_downsample, DownsampleCandidate, DownsampleJob,
};
use crate::storage::compactor::plan::StreamKey;

/// Downsamples the stream's eligible blocks.
pub(super) async fn stream(
    ctx: &Ctx<'_>,
    key: &StreamKey,
    s: &mut StreamBlocks,
    rep: &mut PassReport,
) -> Result<Step, StepError> {
    if next_level(key.resolution_ms).is_none() {
        return Ok(Step::Continue);
    }
    let candidates: Vec<DownsampleCandidate> = s
        .plannable
        .iter()
        .chain(&s.no_compact)
        .map(|m| DownsampleCandidate {
            meta: m.clone(),
            deletion_marked: false,
            no_downsample: s.no_downsample.contains(&m.ulid),
        })
        .collect();
    // Not in Thanos: a copy that retention of its resolution would delete at once is not
    // made (Thanos makes it, deletes it, and then makes it again every pass).
    let retention = &ctx.settings.retention;
    let now_ms = ctx.now_ms();
    let jobs = plan_downsample(&candidates, &s.covering)
        .into_iter()
        .filter(|j| {
            let keep = retention.for_resolution(j.to);
            let max_time = candidates
                .iter()
                .find(|c| c.meta.ulid == j.ulid)
                .map_or(i64::MAX, |c| c.meta.max_time);
            keep <= 0 || now_ms <= max_time.saturating_add(keep)
        });
    for job in jobs {
        let Some(meta) = candidates
            .iter()
            .find(|c| c.meta.ulid == job.ulid)
            .map(|c| c.meta.clone())
        else {
            continue;
        };
        if !ctx.guard.acquire(key).await {
            return Ok(Step::Stop);
        }
        one(ctx, key, s, rep, &meta, job).await?;
    }
    Ok(Step::Continue)
}

/// Puts a no-downsample mark on `ulid` and keeps it out of this pass's planning.
async fn mark_no_downsample(
    ctx: &Ctx<'_>,
    key: &StreamKey,
    s: &mut StreamBlocks,
    rep: &mut PassReport,
    ulid: Ulid,
    reason: &str,
    details: &str,
) -> Result<(), StepError> {
    tracing::warn!(stream = %key, block = %ulid, reason, details, "compactor: block cannot be downsampled; marking it no-downsample");
    ctx.metrics(|m| {
        m.downsample_failures.inc();
    });
    let written = blocks::write_no_downsample_mark(
        ctx.store,
        ulid,
        NoCompactReason::from(reason.to_string()),
        details,
        ctx.now,
    )
    .await?;
    if written {
        (ctx.progress)(Progress::Marked {
            block: ulid,
            what: format!("no-downsample ({reason})"),
        });
        rep.no_downsample_marked.push(MarkedBlock {
            ulid,
            reason: reason.to_string(),
            details: details.to_string(),
        });
    }
    s.no_downsample.insert(ulid);
    Ok(())
}

/// Downloads, downsamples and uploads one block.
async fn one(
    ctx: &Ctx<'_>,
    key: &StreamKey,
    s: &mut StreamBlocks,
    rep: &mut PassReport,
    meta: &BlockMeta,
    job: DownsampleJob,
) -> Result<(), StepError> {
    let dir = match s.dirs.get(&job.ulid) {
        Some(d) if d.index_size.is_some() => d.clone(),
        _ => {
            let details = "the bucket holds no index for this block";
            return mark_no_downsample(ctx, key, s, rep, job.ulid, REASON_CORRUPT, details).await;
        }
    };
    set_ratio(ctx, 0.0);
    let mut scratch = ScratchGuard::new();
    let input = ctx.pass_dir.join(job.ulid.to_string());
    scratch.push(input.clone());
    let total = download_size(&dir);
    let mut done = 0u64;
    download(ctx, rep, meta, &dir, &input, &mut done, total).await?;
    (ctx.progress)(Progress::Downsampling {
        block: job.ulid,
        resolution: job.to,
    });
    // Outputs go to their own directory so a failure cannot leave a stray block next to
    // the downloaded inputs.
    let out_parent = ctx.pass_dir.join(format!("downsample-{}", job.ulid));
    scratch.push(out_parent.clone());
    tokio::fs::create_dir_all(&out_parent)
        .await
        .map_err(|e| local_err(&out_parent, e))?;
    let written = match run_blocking(ctx, input, job, out_parent.clone()).await? {
        Ok(m) => m,
        Err(DownsampleBlockError::Input { reason, detail, .. }) => {
            return mark_no_downsample(ctx, key, s, rep, job.ulid, reason, &detail).await;
        }
        Err(e @ DownsampleBlockError::Output(_)) => {
            ctx.metrics(|m| {
                m.downsample_failures.inc();
            });
            return Err(StepError::Local(e.to_string()));
        }
    };
    if !ctx.guard.acquire(key).await {
        return Ok(());
    }
    let out_dir = out_parent.join(written.ulid.to_string());
    let uploaded = upload(ctx, rep, &out_dir, written).await?;
    drop(scratch);
    tracing::info!(stream = %key, block = %job.ulid, into = %uploaded.ulid, resolution = job.to, series = uploaded.stats.num_series, "compactor: downsampled block");
    ctx.metrics(|m| {
        m.downsamples.inc();
        m.group_progress.set(1.0);
    });
    (ctx.progress)(Progress::Downsampled {
        block: job.ulid,
        into: uploaded.ulid,
        resolution: job.to,
        series: uploaded.stats.num_series,
    });
    rep.downsampled.push(DownsampledBlock {
        ulid: uploaded.ulid,
        source: job.ulid,
        resolution: job.to,
        min_time: uploaded.min_time,
        max_time: uploaded.max_time,
        num_series: uploaded.stats.num_series,
        num_samples: uploaded.stats.num_samples,
    });
    s.covering.push(uploaded);
    Ok(())
}

/// Runs `downsample_block` on a blocking thread with progress while it runs. The outer
/// error is the task's (a panic), the inner one the downsampling's.
async fn run_blocking(
    ctx: &Ctx<'_>,
    input: PathBuf,
    job: DownsampleJob,
    out_parent: PathBuf,
) -> Result<Result<BlockMeta, DownsampleBlockError>, StepError> {
    let done = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let (d, t) = (done.clone(), total.clone());
    let task = tokio::task::spawn_blocking(move || {
        downsample_block(&input, job.ulid, &out_parent, job.to, &mut |x, y| {
            d.store(x, Ordering::Relaxed);
            t.store(y, Ordering::Relaxed);
        })
    });
    tokio::pin!(task);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            r = &mut task => {
                return r.map_err(|e| StepError::Local(format!("downsample task failed: {e}")));
            }
            _ = tick.tick() => {
                let (x, y) = (done.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
                set_ratio(ctx, 0.5 + 0.4 * ratio(x, y));
            }
        }
    }
}
