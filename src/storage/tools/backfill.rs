//! [`BlockBackfill`]: the block-writing half of a backfill such as `promtool tsdb
//! create-blocks-from openmetrics` (the parsing half, which storage may not import, is
//! `cli::import`). Samples go into blocks aligned to the block duration, level 1, with
//! maxTime one past the last sample. Chunks are cut with the head's rules (120-sample target,
//! prediction at 30 samples, hard cap 240, chunk range = 2 × block duration as promtool's
//! block writer uses), so block sizes match promtool's. Samples are kept XOR-compressed until
//! the blocks are written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use super::{Result, TsdbToolError};
use crate::storage::block::{BlockMeta, BlockWriter};
use crate::storage::chunkenc::XorAppender;
use crate::storage::model::{EncodedChunk, Labels};

const SAMPLES_PER_CHUNK: usize = 120;

/// End of the chunk range containing `t` (Go's truncating arithmetic, as in Prometheus).
fn range_for_timestamp(t: i64, width: i64) -> i64 {
    (t / width) * width + width
}

/// Prometheus' `computeChunkEndTime`: spread the remaining range evenly over chunks.
fn compute_chunk_end_time(start: i64, cur: i64, max: i64) -> i64 {
    let denom = (cur - start + 1).saturating_mul(4);
    if denom <= 0 {
        return max;
    }
    let n = (max - start) / denom;
    if n <= 1 {
        return max;
    }
    start + (max - start) / n
}

/// Cuts a series' samples into chunks the way the Prometheus head does.
#[derive(Debug)]
pub struct HeadChunkCutter {
    chunk_range: i64,
    done: Vec<EncodedChunk>,
    cur: XorAppender,
    next_at: i64,
    last: Option<(i64, u64)>,
}

impl HeadChunkCutter {
    pub fn new(chunk_range: i64) -> Self {
        HeadChunkCutter {
            chunk_range: chunk_range.max(1),
            done: Vec::new(),
            cur: XorAppender::new(),
            next_at: i64::MAX,
            last: None,
        }
    }

    /// Appends a sample; `Err` describes an out-of-order or conflicting duplicate sample.
    pub fn append(&mut self, t: i64, v: f64) -> std::result::Result<(), String> {
        if let Some((lt, lv)) = self.last {
            if t == lt {
                return if lv == v.to_bits() {
                    Ok(())
                } else {
                    Err(format!(
                        "duplicate sample for timestamp {t} with a different value"
                    ))
                };
            }
            if t < lt {
                return Err(format!("out of order sample: timestamp {t} after {lt}"));
            }
        }
        let n = self.cur.num_samples();
        if n == 0 {
            self.next_at = range_for_timestamp(t, self.chunk_range);
        } else {
            if n == SAMPLES_PER_CHUNK / 4 {
                let (start, max) = (
                    self.cur.min_time().unwrap_or(t),
                    self.cur.max_time().unwrap_or(t),
                );
                self.next_at = compute_chunk_end_time(start, max, self.next_at);
            }
            if t >= self.next_at || n >= SAMPLES_PER_CHUNK * 2 {
                self.done.extend(self.cur.to_encoded());
                self.cur = XorAppender::new();
                self.next_at = range_for_timestamp(t, self.chunk_range);
            }
        }
        self.cur.append(t, v);
        self.last = Some((t, v.to_bits()));
        Ok(())
    }

    pub fn finish(mut self) -> Vec<EncodedChunk> {
        self.done.extend(self.cur.to_encoded());
        self.done
    }
}

#[derive(Default)]
struct BlockAcc {
    series: HashMap<Labels, HeadChunkCutter>,
    symbols: BTreeSet<String>,
    min_t: i64,
    max_t: i64,
}

/// Samples on their way into blocks, one block per `block_duration_ms` window that holds
/// samples. Append in input order, then [`write`](BlockBackfill::write) the blocks.
pub struct BlockBackfill {
    block_duration_ms: i64,
    chunk_range: i64,
    blocks: BTreeMap<i64, BlockAcc>,
}

impl BlockBackfill {
    pub fn new(block_duration_ms: i64) -> Result<Self> {
        if block_duration_ms <= 0 {
            return Err(TsdbToolError::Invalid(format!(
                "block duration must be positive, got {block_duration_ms} ms"
            )));
        }
        Ok(BlockBackfill {
            block_duration_ms,
            chunk_range: block_duration_ms.saturating_mul(2),
            blocks: BTreeMap::new(),
        })
    }

    /// Adds one sample read from input line `line`. A sample older than its series' last one,
    /// or at the same time with a different value, is an error naming the line.
    pub fn append(&mut self, line: usize, labels: Labels, t: i64, v: f64) -> Result<()> {
        let start = t.div_euclid(self.block_duration_ms) * self.block_duration_ms;
        let acc = self.blocks.entry(start).or_insert_with(|| BlockAcc {
            min_t: t,
            max_t: t,
            ..Default::default()
        });
        acc.min_t = acc.min_t.min(t);
        acc.max_t = acc.max_t.max(t);
        if !acc.series.contains_key(&labels) {
            for l in labels.iter() {
                acc.symbols.insert(l.name.to_string());
                acc.symbols.insert(l.value.to_string());
            }
            acc.series
                .insert(labels.clone(), HeadChunkCutter::new(self.chunk_range));
        }
        if let Some(cutter) = acc.series.get_mut(&labels) {
            cutter.append(t, v).map_err(|reason| TsdbToolError::Parse {
                line,
                reason: format!("series {labels}: {reason}"),
            })?;
        }
        Ok(())
    }

    /// Writes the blocks into `out_dir` (created if missing) and returns their metas in time
    /// order.
    pub fn write(self, out_dir: &Path) -> Result<Vec<BlockMeta>> {
        fs::create_dir_all(out_dir)
            .map_err(|e| TsdbToolError::Invalid(format!("creating {}: {e}", out_dir.display())))?;
        let mut metas = Vec::with_capacity(self.blocks.len());
        for (_, acc) in self.blocks {
            let mut w = BlockWriter::create(out_dir, acc.symbols)?;
            let mut series: Vec<(Labels, HeadChunkCutter)> = acc.series.into_iter().collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            for (labels, cutter) in series {
                w.add_series(&labels, &cutter.finish())?;
            }
            let meta = BlockMeta::new(w.ulid(), acc.min_t, acc.max_t.saturating_add(1));
            metas.push(w.finish(meta)?);
        }
        Ok(metas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutter_follows_head_rules() {
        let mut c = HeadChunkCutter::new(4 * 3_600_000);
        // 15s scrape from a 4h boundary: 4h / 30 min predicted chunks of 120 samples.
        for i in 0..960 {
            c.append(i * 15_000, i as f64).unwrap();
        }
        let chunks = c.finish();
        assert_eq!(chunks.len(), 8);
        assert!(chunks
            .iter()
            .all(|ch| u16::from_be_bytes([ch.data[0], ch.data[1]]) == 120));
        let mut d = HeadChunkCutter::new(1000);
        d.append(5, 1.0).unwrap();
        assert!(d.append(5, 1.0).is_ok());
        assert!(d.append(5, 2.0).is_err());
        assert!(d.append(4, 2.0).is_err());
    }

    #[test]
    fn backfill_writes_one_block_per_window_and_names_bad_lines() {
        assert!(BlockBackfill::new(0).is_err());
        let a = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        let mut b = BlockBackfill::new(7_200_000).unwrap();
        b.append(2, a(&[("__name__", "a")]), 1000, 1.0).unwrap();
        b.append(3, a(&[("__name__", "a")]), 7_300_000, 2.0)
            .unwrap();
        let mut bad = BlockBackfill::new(7_200_000).unwrap();
        bad.append(2, a(&[("__name__", "a")]), 1000, 1.0).unwrap();
        let e = bad
            .append(4, a(&[("__name__", "a")]), 500, 3.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("line 4: series {__name__=\"a\"}: out of order"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let metas = b.write(dir.path()).unwrap();
        assert_eq!(metas.len(), 2);
        assert_eq!((metas[0].min_time, metas[0].max_time), (1000, 1001));
        assert_eq!(
            (metas[1].min_time, metas[1].max_time),
            (7_300_000, 7_300_001)
        );
        assert_eq!(metas[1].compaction.sources, vec![metas[1].ulid]);
    }
}
