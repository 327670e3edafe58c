//! The write-ahead log of the head, in the Prometheus `wal/` layout: numbered segments
//! (`%08d`) of 32 KiB pages holding CRC32C-checked record fragments, plus `checkpoint.NNNNNNNN`
//! directories that condense old segments. It owns durability of acknowledged samples:
//! opening replays checkpoint + segments, repairing a torn or corrupt tail by truncating at the
//! broken record (with a warning, never a failed start), and `log` returns only once the
//! records are handed to the OS (and fsynced when configured).
//!
//! Cost of `fsync` per commit: one `fdatasync` (typically 0.1–10 ms depending on the disk).
//! Commits that wait at the same time share one fsync (group commit: `write_encoded` +
//! `sync_upto`), so throughput degrades gracefully with many concurrent writers; measured here
//! (`bench_write` with fsync on, 10k series in batches of 1000) about 1.5M samples/s against
//! about 5–10M/s without. Prometheus itself never fsyncs on commit (only when a segment is
//! closed), which survives a process crash but not a power loss; `WalOptions::fsync = false`
//! gives that behaviour, and the Db uses it unless `DbOptions::wal_fsync` is set (an fsync per
//! scrape commit was the largest single cost of scraping).

mod checkpoint;
pub mod record;
pub mod segment;
pub mod watcher;

use std::fs;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

pub use checkpoint::CheckpointStats;
pub use record::{RefSample, RefSeries, WalRecord};
use segment::{read_segment, segment_path, SegmentEnd, SegmentWriter, PAGE_SIZE};

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL {op} {path}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("bad WAL record: {0}")]
    BadRecord(String),
    #[error("WAL record of {len} bytes does not fit in a segment of {segment_size} bytes")]
    RecordTooLarge { len: usize, segment_size: usize },
    #[error("corrupt WAL checkpoint {path} at offset {offset}: {reason}")]
    CorruptCheckpoint {
        path: String,
        offset: u64,
        reason: String,
    },
    #[error("invalid WAL options: {0}")]
    Options(String),
    #[error("WAL is unusable after an earlier write error: {0}")]
    Broken(String),
    #[error("unsupported WAL content (not repaired, nothing deleted): {0}")]
    Unsupported(String),
}

impl WalError {
    pub(crate) fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        WalError::Io {
            path: path.display().to_string(),
            op,
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, WalError>;

/// Default segment size, as in Prometheus.
pub const DEFAULT_SEGMENT_SIZE: usize = 128 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Bytes per segment file; a multiple of 32 KiB.
    pub segment_size: usize,
    /// fsync on every `log` call (see the module docs for the cost).
    pub fsync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            fsync: true,
        }
    }
}

/// What replay found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayStats {
    pub checkpoint: Option<u64>,
    pub segments: usize,
    pub records: usize,
    /// Records of kinds the head does not use (tombstones, exemplars, histograms, ...).
    pub skipped_records: usize,
    /// Set when a corrupt or torn tail was cut off: (segment, offset).
    pub truncated_at: Option<(u64, u64)>,
    pub dropped_segments: usize,
}

/// The write side of an opened WAL.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    inner: Mutex<Inner>,
    /// Highest write sequence number known to be fsynced; held while an fsync runs, so
    /// concurrent committers share one fsync (group commit).
    synced: Mutex<u64>,
    checkpoint_lock: Mutex<()>,
}

struct Inner {
    writer: SegmentWriter,
    /// Sequence number of the last successful write.
    seq: u64,
    /// Set after a failed write: a partial record may sit in the segment, and anything
    /// acknowledged after it would be cut off by the repair on the next open, so the WAL
    /// refuses further writes (fail-stop) instead.
    broken: Option<String>,
}

impl Inner {
    /// Writes and flushes to the OS; returns the write's sequence number.
    fn write_all(&mut self, bodies: &mut dyn Iterator<Item = &[u8]>) -> Result<u64> {
        if let Some(why) = &self.broken {
            return Err(WalError::Broken(why.clone()));
        }
        let mut res = Ok(());
        for b in bodies {
            res = self.writer.write_record(b);
            if res.is_err() {
                break;
            }
        }
        if res.is_ok() {
            res = self.writer.flush();
        }
        match res {
            Err(WalError::RecordTooLarge { .. }) => res.map(|_| 0),
            Err(e) => {
                self.broken = Some(e.to_string());
                Err(e)
            }
            Ok(()) => {
                self.seq += 1;
                Ok(self.seq)
            }
        }
    }
}

/// Names found in a WAL directory.
struct Listing {
    segments: Vec<u64>,
    checkpoints: Vec<(u64, PathBuf)>,
}

fn list_dir(dir: &Path) -> Result<Listing> {
    let mut segments = Vec::new();
    let mut checkpoints = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| WalError::io(dir, "list", e))?;
    for entry in rd {
        let entry = entry.map_err(|e| WalError::io(dir, "list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix("checkpoint.") {
            if rest.ends_with(".tmp") {
                // A checkpoint that was never completed: its inputs are all still there.
                let p = entry.path();
                fs::remove_dir_all(&p).map_err(|e| WalError::io(&p, "remove", e))?;
            } else if let Ok(n) = rest.parse::<u64>() {
                checkpoints.push((n, entry.path()));
            }
        } else if name.len() >= 8 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = name.parse::<u64>() {
                segments.push(n);
            }
        }
    }
    segments.sort_unstable();
    checkpoints.sort_unstable();
    Ok(Listing {
        segments,
        checkpoints,
    })
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, replays it through `on_record`, repairs
    /// a corrupt tail, and starts writing into a fresh segment after the last one.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        mut on_record: impl FnMut(WalRecord),
    ) -> Result<(Wal, ReplayStats)> {
        if opts.segment_size < PAGE_SIZE || !opts.segment_size.is_multiple_of(PAGE_SIZE) {
            return Err(WalError::Options(format!(
                "segment size {} is not a positive multiple of {PAGE_SIZE}",
                opts.segment_size
            )));
        }
        fs::create_dir_all(dir).map_err(|e| WalError::io(dir, "create", e))?;
        let listing = list_dir(dir)?;
        let mut stats = ReplayStats::default();
        let mut deliver = |body: &[u8], stats: &mut ReplayStats| -> Result<()> {
            match record::decode(body)? {
                Some(r) => {
                    stats.records += 1;
                    on_record(r);
                }
                None => stats.skipped_records += 1,
            }
            Ok(())
        };

        let mut first_seg = 0u64;
        if let Some((n, path)) = listing.checkpoints.last() {
            checkpoint::read_checkpoint(path, |body| deliver(body, &mut stats))?;
            stats.checkpoint = Some(*n);
            first_seg = n + 1;
            for (_, old) in &listing.checkpoints[..listing.checkpoints.len() - 1] {
                fs::remove_dir_all(old).map_err(|e| WalError::io(old, "remove", e))?;
            }
        }

        let mut last_seg: Option<u64> = None;
        let mut expected: Option<u64> = None;
        let mut broken_at: Option<usize> = None;
        for (i, &seg) in listing.segments.iter().enumerate() {
            let path = segment_path(dir, seg);
            if seg < first_seg {
                // Already condensed into the checkpoint; a crash interrupted its cleanup.
                fs::remove_file(&path).map_err(|e| WalError::io(&path, "remove", e))?;
                continue;
            }
            if let Some(exp) = expected {
                if seg != exp {
                    tracing::warn!(
                        segment = seg,
                        expected = exp,
                        "WAL segments are not sequential; records in the gap are lost"
                    );
                }
            }
            expected = Some(seg + 1);
            last_seg = Some(seg);
            stats.segments += 1;
            let end = read_segment(&path, |body, _| deliver(body, &mut stats))?;
            if let SegmentEnd::Corrupt { offset, reason } = end {
                tracing::warn!(segment = %path.display(), offset, %reason, "WAL corruption: truncating the segment here and dropping later segments");
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| WalError::io(&path, "open", e))?;
                f.set_len(offset)
                    .map_err(|e| WalError::io(&path, "truncate", e))?;
                f.sync_all().map_err(|e| WalError::io(&path, "fsync", e))?;
                stats.truncated_at = Some((seg, offset));
                broken_at = Some(i);
                break;
            }
        }
        if let Some(i) = broken_at {
            for &seg in &listing.segments[i + 1..] {
                let path = segment_path(dir, seg);
                tracing::warn!(segment = %path.display(), "dropping WAL segment after a corruption");
                fs::remove_file(&path).map_err(|e| WalError::io(&path, "remove", e))?;
                stats.dropped_segments += 1;
            }
        }

        let next = last_seg.map_or(first_seg, |s| s + 1).max(first_seg);
        let writer = SegmentWriter::create(dir, next, opts.segment_size, opts.fsync)?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            inner: Mutex::new(Inner {
                writer,
                seq: 0,
                broken: None,
            }),
            synced: Mutex::new(0),
            checkpoint_lock: Mutex::new(()),
        };
        Ok((wal, stats))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the records, then flushes (and fsyncs when configured) before returning.
    pub fn log(&self, records: &[WalRecord]) -> Result<()> {
        let bodies: Vec<Vec<u8>> = records
            .iter()
            .map(|r| {
                let mut b = Vec::new();
                r.encode_into(&mut b);
                b
            })
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
        self.log_encoded(&refs)
    }

    /// Like `log` for record bodies the caller already encoded (see `record`); lets callers
    /// encode outside their own locks.
    pub fn log_encoded(&self, bodies: &[&[u8]]) -> Result<()> {
        let seq = self.write_encoded(bodies)?;
        if self.opts.fsync {
            self.sync_upto(seq)?;
        }
        Ok(())
    }

    /// Writes and flushes (survives a process kill) without fsync; returns a sequence
    /// number for `sync_upto`. For callers that must keep their own lock short.
    pub fn write_encoded(&self, bodies: &[&[u8]]) -> Result<u64> {
        self.inner.lock().write_all(&mut bodies.iter().copied())
    }

    /// Does `log` fsync (so callers of `write_encoded` must call `sync_upto`)?
    pub fn fsync_enabled(&self) -> bool {
        self.opts.fsync
    }

    /// Returns once write `seq` is on stable storage. Writers waiting together share one
    /// fsync: whoever gets here first syncs everything written so far.
    pub fn sync_upto(&self, seq: u64) -> Result<()> {
        let mut synced = self.synced.lock();
        if *synced >= seq {
            return Ok(());
        }
        let (file, upto, index) = {
            let inner = self.inner.lock();
            (inner.writer.file(), inner.seq, inner.writer.index())
        };
        if let Err(e) = file.sync_data() {
            let err = WalError::io(&segment::segment_path(&self.dir, index), "fsync", e);
            // Whether the data reached the disk is unknown: stop acknowledging writes.
            self.inner.lock().broken = Some(err.to_string());
            return Err(err);
        }
        *synced = upto;
        Ok(())
    }

    /// Flushes and fsyncs whatever is buffered (used on close).
    pub fn sync(&self) -> Result<()> {
        let seq = {
            let mut inner = self.inner.lock();
            inner.writer.sync()?;
            inner.seq
        };
        let mut synced = self.synced.lock();
        *synced = (*synced).max(seq);
        Ok(())
    }

    /// Index of the segment being written.
    pub fn current_segment(&self) -> u64 {
        self.inner.lock().writer.index()
    }

    /// Closes the current segment and starts a new one; returns the new index.
    pub fn cut_segment(&self) -> Result<u64> {
        self.inner.lock().writer.next_segment()
    }

    /// Segment indexes present on disk, ascending.
    pub fn segments(&self) -> Result<Vec<u64>> {
        Ok(list_dir(&self.dir)?.segments)
    }

    /// Condenses the last checkpoint and every segment before the one being written into
    /// `checkpoint.<last condensed segment>`, keeping Series records for which `keep(ref)`
    /// holds and samples of kept series with `t >= mint`; then deletes what it replaced.
    /// Returns `None` when there was nothing to condense.
    pub fn checkpoint(
        &self,
        keep: impl Fn(u64) -> bool,
        mint: i64,
    ) -> Result<Option<CheckpointStats>> {
        let _guard = self.checkpoint_lock.lock();
        let current = self.current_segment();
        if current == 0 {
            return Ok(None);
        }
        let listing = list_dir(&self.dir)?;
        let upto = current - 1;
        let has_input = listing.segments.iter().any(|&s| s <= upto);
        if !has_input {
            return Ok(None);
        }
        let prev = listing.checkpoints.last().map(|(n, p)| (*n, p.clone()));
        let segs: Vec<u64> = listing
            .segments
            .iter()
            .copied()
            .filter(|&s| s <= upto && prev.as_ref().is_none_or(|(n, _)| s > *n))
            .collect();
        let stats = checkpoint::write_checkpoint(
            &self.dir,
            prev.as_ref().map(|(_, p)| p.as_path()),
            &segs,
            upto,
            &keep,
            mint,
        )?;
        for &s in listing.segments.iter().filter(|&&s| s <= upto) {
            let p = segment_path(&self.dir, s);
            fs::remove_file(&p).map_err(|e| WalError::io(&p, "remove", e))?;
        }
        for (n, p) in &listing.checkpoints {
            if *n < upto {
                fs::remove_dir_all(p).map_err(|e| WalError::io(p, "remove", e))?;
            }
        }
        Ok(Some(stats))
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.inner.lock().writer.sync() {
            tracing::warn!(error = %e, "WAL flush on close failed");
        }
    }
}

#[cfg(test)]
mod tests;
