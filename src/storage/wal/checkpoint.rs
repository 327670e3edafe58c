//! WAL checkpoints: `checkpoint.NNNNNNNN/` directories in WAL segment format holding what
//! is still needed from the previous checkpoint and the segments up to NNNNNNNN (series still
//! in the head, samples at or after the head's new minimum time). Written under a `.tmp` name,
//! fsynced and renamed, so a crash leaves either the old or the new checkpoint, never half of one.

use std::fs;
use std::path::Path;

use super::record::{self, WalRecord};
use super::segment::{read_segment, segment_path, sync_dir, SegmentEnd, SegmentWriter};
use super::{list_dir, Result, WalError, DEFAULT_SEGMENT_SIZE};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointStats {
    pub index: u64,
    pub series_kept: usize,
    pub series_dropped: usize,
    pub samples_kept: usize,
    pub samples_dropped: usize,
}

/// Streams every record body of a checkpoint directory; any corruption is an error because
/// a checkpoint is only ever published complete.
pub(super) fn read_checkpoint(
    dir: &Path,
    mut on_record: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let listing = list_dir(dir)?;
    for seg in listing.segments {
        let path = segment_path(dir, seg);
        if let SegmentEnd::Corrupt { offset, reason } =
            read_segment(&path, |body, _| on_record(body))?
        {
            return Err(WalError::CorruptCheckpoint {
                path: path.display().to_string(),
                offset,
                reason,
            });
        }
    }
    Ok(())
}

pub(super) fn write_checkpoint(
    wal_dir: &Path,
    prev: Option<&Path>,
    segments: &[u64],
    upto: u64,
    keep: &dyn Fn(u64) -> bool,
    mint: i64,
) -> Result<CheckpointStats> {
    let final_dir = wal_dir.join(format!("checkpoint.{upto:08}"));
    let tmp_dir = wal_dir.join(format!("checkpoint.{upto:08}.tmp"));
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| WalError::io(&tmp_dir, "remove", e))?;
    }
    fs::create_dir_all(&tmp_dir).map_err(|e| WalError::io(&tmp_dir, "create", e))?;
    let mut writer = SegmentWriter::create(&tmp_dir, 0, DEFAULT_SEGMENT_SIZE, false)?;
    let mut stats = CheckpointStats {
        index: upto,
        ..Default::default()
    };
    let mut buf = Vec::new();
    let mut filter = |body: &[u8]| -> Result<()> {
        let out = match record::decode(body)? {
            Some(WalRecord::Series(mut s)) => {
                let before = s.len();
                s.retain(|x| keep(x.series_ref));
                stats.series_kept += s.len();
                stats.series_dropped += before - s.len();
                (!s.is_empty()).then_some(WalRecord::Series(s))
            }
            Some(WalRecord::Samples(mut s)) => {
                let before = s.len();
                s.retain(|x| x.t >= mint && keep(x.series_ref));
                stats.samples_kept += s.len();
                stats.samples_dropped += before - s.len();
                (!s.is_empty()).then_some(WalRecord::Samples(s))
            }
            // Record kinds the head does not use are not carried forward.
            None => None,
        };
        if let Some(r) = out {
            buf.clear();
            r.encode_into(&mut buf);
            writer.write_record(&buf)?;
        }
        Ok(())
    };
    if let Some(p) = prev {
        read_checkpoint(p, &mut filter)?;
    }
    for &seg in segments {
        let path = segment_path(wal_dir, seg);
        if let SegmentEnd::Corrupt { offset, reason } = read_segment(&path, |body, _| filter(body))?
        {
            // Replay repairs segments on open, so this is fresh damage: refuse to condense
            // (and then delete) data we could not read.
            return Err(WalError::BadRecord(format!(
                "segment {} corrupt at offset {offset}: {reason}",
                path.display()
            )));
        }
    }
    writer.sync()?;
    drop(writer);
    sync_dir(&tmp_dir)?;
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| WalError::io(&final_dir, "remove", e))?;
    }
    fs::rename(&tmp_dir, &final_dir).map_err(|e| WalError::io(&tmp_dir, "rename", e))?;
    sync_dir(wal_dir)?;
    Ok(stats)
}
