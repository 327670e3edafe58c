//! Merging the series of several blocks into one label-ordered stream: series with the same
//! label set are combined into one `Series` whose chunks keep the blocks' order (so a later
//! block wins duplicate timestamps in `SeriesIterator`). Used by dump and compaction.

use super::reader::{BlockReader, SeriesCursor};
use super::Result;
use crate::storage::model::{Matcher, Series};

pub struct MergeCursor<'a> {
    cursors: Vec<SeriesCursor<'a>>,
    heads: Vec<Option<Series>>,
}

impl<'a> MergeCursor<'a> {
    /// `blocks` in priority order (usually by min time): later blocks win on duplicates.
    pub fn new(
        blocks: &'a [BlockReader],
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Self> {
        let mut cursors = Vec::with_capacity(blocks.len());
        let mut heads = Vec::with_capacity(blocks.len());
        for b in blocks {
            let mut c = b.cursor(matchers, mint, maxt, false)?;
            heads.push(c.next()?);
            cursors.push(c);
        }
        Ok(MergeCursor { cursors, heads })
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Series>> {
        let Some(min) = self
            .heads
            .iter()
            .flatten()
            .map(|s| &s.labels)
            .min()
            .cloned()
        else {
            return Ok(None);
        };
        let mut chunks = Vec::new();
        for (head, cur) in self.heads.iter_mut().zip(self.cursors.iter_mut()) {
            if head.as_ref().is_some_and(|s| s.labels == min) {
                if let Some(s) = head.take() {
                    chunks.extend(s.chunks);
                }
                *head = cur.next()?;
            }
        }
        Ok(Some(Series {
            labels: min,
            chunks,
        }))
    }
}
