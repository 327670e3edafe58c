//! Following a WAL directory as it is written, for remote write (Prometheus's WAL watcher):
//! at start every Series record of the last checkpoint and of the existing segments is handed
//! over (so each sample's series is known), then samples are read from the segment that was
//! being written at start onwards, skipping samples older than the start time (what is
//! already in the WAL when remote write starts is not re-sent, as in Prometheus). Reading
//! never writes or deletes anything in the directory.
//!
//! Each [`WalWatcher::poll`] reads from the last position to the end of what is complete: a
//! record still being written reads as a torn tail and is read again on the next poll. The
//! consumer may refuse a record (its queues are full): reading stops before it and the next
//! poll starts with it again, so the WAL itself is the buffer and nothing is skipped while
//! the segments exist. When the segment is finished (a later one exists and this one is read
//! to its end) the watcher moves on; if the segment it needs has been removed by a checkpoint
//! meanwhile, it skips to the oldest segment left and counts the skip.

use std::fs;
use std::path::{Path, PathBuf};

use super::record::{decode, WalRecord};
use super::segment::{read_segment_from, segment_path, SegmentEnd};
use super::{Result, WalError};

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollStats {
    pub records: u64,
    /// The consumer refused a record: reading stopped before it.
    pub blocked: bool,
    /// Segments that vanished before they were read.
    pub segments_skipped: u64,
}

pub struct WalWatcher {
    dir: PathBuf,
    start_ms: i64,
    /// Segment being read, and the offset of the first record not yet handed over.
    segment: u64,
    offset: u64,
    started: bool,
}

/// Segments and the newest checkpoint of a WAL directory, without touching anything.
fn listing(dir: &Path) -> Result<(Vec<u64>, Option<PathBuf>)> {
    let mut segments = Vec::new();
    let mut checkpoint: Option<(u64, PathBuf)> = None;
    for entry in fs::read_dir(dir).map_err(|e| WalError::io(dir, "list", e))? {
        let entry = entry.map_err(|e| WalError::io(dir, "list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("checkpoint.")
            .and_then(|r| r.parse::<u64>().ok())
        {
            if checkpoint.as_ref().is_none_or(|(c, _)| n > *c) {
                checkpoint = Some((n, entry.path()));
            }
        } else if name.len() >= 8 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = name.parse::<u64>() {
                segments.push(n);
            }
        }
    }
    segments.sort_unstable();
    Ok((segments, checkpoint.map(|(_, p)| p)))
}

impl WalWatcher {
    /// A watcher of the WAL in `dir` that sends samples from `start_ms` on.
    pub fn new(dir: impl Into<PathBuf>, start_ms: i64) -> Self {
        WalWatcher {
            dir: dir.into(),
            start_ms,
            segment: 0,
            offset: 0,
            started: false,
        }
    }

    /// The segment and offset the next poll reads from.
    pub fn position(&self) -> (u64, u64) {
        (self.segment, self.offset)
    }

    /// Hands complete records to `consume` until the end of the WAL or a refusal (`false`).
    /// Samples before the start time are left out of each Samples record (an emptied record
    /// is not handed over).
    pub fn poll(&mut self, mut consume: impl FnMut(WalRecord) -> bool) -> Result<PollStats> {
        let mut stats = PollStats::default();
        let (segments, checkpoint) = listing(&self.dir)?;
        if !self.started {
            self.started = true;
            // Series of everything before the current segment; the current one is read in
            // full below (its samples filtered by time).
            if let Some(cp) = checkpoint {
                super::checkpoint::read_checkpoint(&cp, |body| {
                    if let Ok(Some(WalRecord::Series(s))) = decode(body) {
                        consume(WalRecord::Series(s));
                    }
                    Ok(())
                })?;
            }
            let Some(&last) = segments.last() else {
                return Ok(stats);
            };
            for &seg in segments.iter().filter(|s| **s < last) {
                read_segment_from(&segment_path(&self.dir, seg), 0, |body, _, _| {
                    if let Ok(Some(WalRecord::Series(s))) = decode(body) {
                        consume(WalRecord::Series(s));
                    }
                    Ok(())
                })?;
            }
            self.segment = last;
            self.offset = 0;
        }
        loop {
            if !segments.contains(&self.segment) {
                // Removed under us (or not there yet): go on with the oldest one after it.
                match segments.iter().find(|s| **s > self.segment) {
                    Some(&next) => {
                        stats.segments_skipped += 1;
                        self.segment = next;
                        self.offset = 0;
                    }
                    None => return Ok(stats),
                }
            }
            let path = segment_path(&self.dir, self.segment);
            let start_ms = self.start_ms;
            let mut offset = self.offset;
            let mut blocked = false;
            let read = read_segment_from(&path, self.offset, |body, _start, end| {
                if blocked {
                    return Ok(());
                }
                let record = match decode(body) {
                    Ok(Some(WalRecord::Samples(mut s))) => {
                        s.retain(|x| x.t >= start_ms);
                        (!s.is_empty()).then_some(WalRecord::Samples(s))
                    }
                    Ok(Some(r)) => Some(r),
                    Ok(None) => None,
                    Err(e) => return Err(e),
                };
                if let Some(r) = record {
                    if !consume(r) {
                        blocked = true;
                        return Ok(());
                    }
                    stats.records += 1;
                }
                offset = end;
                Ok(())
            });
            self.offset = offset;
            let end = match read {
                Ok(end) => end,
                // Removed between the listing and the read.
                Err(WalError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if blocked {
                stats.blocked = true;
                return Ok(stats);
            }
            let finished = segments.iter().any(|s| *s > self.segment);
            match end {
                SegmentEnd::Clean if finished => {
                    self.segment += 1;
                    self.offset = 0;
                }
                // The writer's tail: come back for the rest.
                SegmentEnd::Clean | SegmentEnd::Corrupt { .. } if !finished => return Ok(stats),
                SegmentEnd::Corrupt { offset, reason } => {
                    // A finished segment broken in the middle: what follows it is unreadable.
                    tracing::warn!(segment = self.segment, offset, %reason, "skipping the rest of a corrupt WAL segment");
                    self.segment += 1;
                    self.offset = 0;
                }
                SegmentEnd::Clean => return Ok(stats),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::storage::model::Labels;
    use crate::storage::wal::{RefSample, RefSeries, Wal, WalOptions};

    fn series(r: u64) -> WalRecord {
        WalRecord::Series(vec![RefSeries {
            series_ref: r,
            labels: Labels::from_pairs([("__name__", "x"), ("i", &r.to_string())]),
        }])
    }

    fn samples(r: u64, t: i64) -> WalRecord {
        WalRecord::Samples(vec![RefSample {
            series_ref: r,
            t,
            v: t as f64,
        }])
    }

    #[test]
    fn follows_the_wal_across_segments_and_resumes_after_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default(), |_| {})
            .unwrap()
            .0;
        wal.log(&[series(1), samples(1, 5)]).unwrap();
        let mut w = WalWatcher::new(dir.path(), 10);
        let mut got = Vec::new();
        w.poll(|r| {
            got.push(r);
            true
        })
        .unwrap();
        // The series is known; the sample before the start time is not sent.
        assert_eq!(got, vec![series(1)]);
        got.clear();
        wal.log(&[samples(1, 10), samples(1, 11)]).unwrap();
        wal.cut_segment().unwrap();
        wal.log(&[series(2), samples(2, 12)]).unwrap();
        // Refuse the second record once.
        let mut n = 0;
        let stats = w
            .poll(|r| {
                n += 1;
                if n == 2 {
                    return false;
                }
                got.push(r);
                true
            })
            .unwrap();
        assert!(stats.blocked);
        assert_eq!(got, vec![samples(1, 10)]);
        w.poll(|r| {
            got.push(r);
            true
        })
        .unwrap();
        assert_eq!(
            got,
            vec![samples(1, 10), samples(1, 11), series(2), samples(2, 12)]
        );
        // Nothing new: nothing handed over.
        let stats = w.poll(|_| true).unwrap();
        assert_eq!(stats.records, 0);
    }
}
