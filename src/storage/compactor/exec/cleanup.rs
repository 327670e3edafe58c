//! After a stream's compaction: retention and duplicate deletion marks, deletion of blocks
//! whose mark is due; and, for the whole bucket, abandoned partial uploads.

use ulid::Ulid;

use super::pass::StepError;
use super::{Ctx, InvalidFile, PassReport, Progress, StreamBlocks};
use crate::storage::block::BlockMeta;
use crate::storage::bucket::blocks::{
    self, BlockDir, BlocksError, DELETION_MARK_FILE, PARTIAL_UPLOAD_THRESHOLD,
};
use crate::storage::compactor::plan::{expired, StreamKey};

async fn mark_for_deletion(
    ctx: &Ctx<'_>,
    ulid: Ulid,
    reason: &str,
    details: &str,
) -> Result<(), StepError> {
    if blocks::write_deletion_mark(ctx.store, ulid, details, ctx.now).await? {
        ctx.metrics(|m| m.inc_marked(reason));
    }
    (ctx.progress)(Progress::Marked {
        block: ulid,
        what: format!("deletion ({reason})"),
    });
    Ok(())
}

async fn delete(ctx: &Ctx<'_>, ulid: Ulid) -> Result<(), StepError> {
    blocks::delete_block(ctx.store, ulid).await?;
    ctx.metrics(|m| {
        m.blocks_deleted.inc();
    });
    (ctx.progress)(Progress::Deleted { block: ulid });
    Ok(())
}

/// Retention marks, duplicate marks and due deletions of one stream, in that order.
pub(super) async fn stream(
    ctx: &Ctx<'_>,
    key: &StreamKey,
    s: &StreamBlocks,
    rep: &mut PassReport,
) -> Result<(), StepError> {
    let candidates: Vec<BlockMeta> = s.plannable.iter().chain(&s.no_compact).cloned().collect();
    let retention = &ctx.settings.retention;
    for ulid in expired(&candidates, retention, ctx.now_ms()) {
        let keep_ms = retention.for_resolution(key.resolution_ms);
        let details = format!("retention: data older than {keep_ms} ms");
        mark_for_deletion(ctx, ulid, "retention", &details).await?;
        rep.retention_marked.push(ulid);
    }
    for &ulid in &s.hidden {
        let details = "duplicate: a newer block holds all of its sources";
        mark_for_deletion(ctx, ulid, "duplicate", details).await?;
        rep.duplicates_marked.push(ulid);
    }
    for (ulid, mark) in &s.deleting {
        if mark.is_due(ctx.settings.delete_delay, ctx.now) {
            delete(ctx, *ulid).await?;
            rep.deleted.push(*ulid);
        }
    }
    Ok(())
}

/// Directories without meta.json: deleted when older than 48 h, or when their deletion mark
/// is due (a deletion cut short). Errors are recorded; the next pass retries.
pub(super) async fn partial_uploads(ctx: &Ctx<'_>, partials: &[BlockDir], rep: &mut PassReport) {
    for dir in partials {
        let due = if dir.has_deletion_mark {
            match blocks::read_deletion_mark(ctx.store, dir.ulid).await {
                Ok(Some(m)) => m.is_due(ctx.settings.delete_delay, ctx.now),
                Ok(None) => false,
                Err(BlocksError::Invalid { ulid, file, reason }) => {
                    tracing::warn!(block = %ulid, file, %reason, "compactor: skipping partial block with an unreadable file");
                    ctx.metrics(|m| m.inc_invalid(DELETION_MARK_FILE));
                    rep.invalid_files.push(InvalidFile {
                        ulid,
                        file: file.to_string(),
                        reason,
                    });
                    continue;
                }
                Err(BlocksError::Bucket(e)) => {
                    rep.errors.push(format!("partial upload {}: {e}", dir.ulid));
                    continue;
                }
            }
        } else {
            false
        };
        if !(due || dir.is_abandoned_partial(PARTIAL_UPLOAD_THRESHOLD, ctx.now)) {
            continue;
        }
        match delete(ctx, dir.ulid).await {
            Ok(()) => rep.partial_uploads_deleted.push(dir.ulid),
            Err(e) => rep
                .errors
                .push(format!("deleting partial upload {}: {e}", dir.ulid)),
        }
    }
}
