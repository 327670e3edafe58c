//! The series-level iterator: merges a series' chunks (possibly overlapping, from different
//! sources) into one strictly increasing sample stream.

use std::sync::Arc;

use super::{ChunkError, Result, XorState, ENCODING_XOR};
use crate::storage::model::{EncodedChunk, Sample};

/// One chunk's cursor inside a `SeriesIterator`.
struct Cursor {
    data: Arc<[u8]>,
    st: XorState,
    head: Option<Sample>,
    /// Position in the caller's list: a higher index wins on duplicate timestamps.
    priority: usize,
}

/// Iterates a whole series' chunks in time order. Chunks may overlap (from different
/// sources): samples are merged by timestamp and a duplicate timestamp yields one sample,
/// taken from the chunk that comes later in the list.
pub struct SeriesIterator {
    /// Chunks not yet opened, sorted by descending min time so the next one is at the end.
    pending: Vec<(usize, EncodedChunk)>,
    active: Vec<Cursor>,
    cur: Option<Sample>,
    /// Chunks ending before this time are skipped without decoding (set by `seek`).
    floor: i64,
    done: bool,
}

impl SeriesIterator {
    pub fn new(chunks: Vec<EncodedChunk>) -> Self {
        let mut pending: Vec<(usize, EncodedChunk)> = chunks.into_iter().enumerate().collect();
        pending.sort_by(|a, b| b.1.min_time.cmp(&a.1.min_time).then(b.0.cmp(&a.0)));
        SeriesIterator {
            pending,
            active: Vec::new(),
            cur: None,
            floor: i64::MIN,
            done: false,
        }
    }

    /// Opens every pending chunk that may hold a sample at or before the smallest active head.
    fn open_due(&mut self) -> Result<()> {
        loop {
            let min_head = self.active.iter().filter_map(|c| c.head.map(|s| s.t)).min();
            let due = match (self.pending.last(), min_head) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some((_, c)), Some(h)) => c.min_time <= h,
            };
            if !due {
                return Ok(());
            }
            let Some((priority, chunk)) = self.pending.pop() else {
                return Ok(());
            };
            if chunk.max_time < self.floor {
                continue;
            }
            if chunk.encoding != ENCODING_XOR {
                return Err(ChunkError::UnknownEncoding(chunk.encoding));
            }
            let mut st = XorState::new(&chunk.data)?;
            let mut head = st.next(&chunk.data)?;
            while let Some(s) = head {
                if s.t >= self.floor {
                    break;
                }
                head = st.next(&chunk.data)?;
            }
            if head.is_some() {
                self.active.push(Cursor {
                    data: chunk.data,
                    st,
                    head,
                    priority,
                });
            }
        }
    }

    fn step(&mut self) -> Result<Option<Sample>> {
        loop {
            // Hot path: one open chunk and no pending chunk due before its next sample.
            if let [only] = self.active.as_mut_slice() {
                if let Some(sample) = only.head {
                    let due = self
                        .pending
                        .last()
                        .is_some_and(|(_, c)| c.min_time <= sample.t);
                    let ordered = self.cur.is_none_or(|prev| sample.t > prev.t);
                    if !due && ordered {
                        only.head = only.st.next(&only.data)?;
                        if only.head.is_none() {
                            self.active.clear();
                        }
                        return Ok(Some(sample));
                    }
                }
            }
            self.open_due()?;
            // Common case: one chunk at a time, no overlap to resolve.
            if let [only] = self.active.as_mut_slice() {
                let Some(sample) = only.head else {
                    self.active.clear();
                    continue;
                };
                only.head = only.st.next(&only.data)?;
                if only.head.is_none() {
                    self.active.clear();
                }
                if self.cur.is_some_and(|prev| sample.t <= prev.t) {
                    continue;
                }
                return Ok(Some(sample));
            }
            let mut best: Option<(usize, Sample, usize)> = None;
            for (i, c) in self.active.iter().enumerate() {
                let Some(s) = c.head else { continue };
                let better = match best {
                    None => true,
                    Some((_, b, p)) => s.t < b.t || (s.t == b.t && c.priority > p),
                };
                if better {
                    best = Some((i, s, c.priority));
                }
            }
            let Some((_, sample, _)) = best else {
                return Ok(None);
            };
            // Advance every cursor sitting on this timestamp: duplicates collapse into one.
            for c in self.active.iter_mut() {
                while let Some(s) = c.head {
                    if s.t > sample.t {
                        break;
                    }
                    c.head = c.st.next(&c.data)?;
                }
            }
            self.active.retain(|c| c.head.is_some());
            // Misdeclared chunk time ranges must not make the output go backwards.
            if let Some(prev) = self.cur {
                if sample.t <= prev.t {
                    continue;
                }
            }
            return Ok(Some(sample));
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Sample>> {
        if self.done {
            return Ok(None);
        }
        match self.step() {
            Ok(Some(s)) => {
                self.cur = Some(s);
                Ok(Some(s))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// Moves to the first sample with timestamp >= `t`; the sample last returned is returned
    /// again if it already qualifies (Prometheus `Seek` semantics).
    pub fn seek(&mut self, t: i64) -> Result<Option<Sample>> {
        if let Some(c) = self.cur {
            if c.t >= t {
                return Ok(Some(c));
            }
        }
        if self.done {
            return Ok(None);
        }
        self.floor = self.floor.max(t);
        while let Some(s) = self.next()? {
            if s.t >= t {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }
}
