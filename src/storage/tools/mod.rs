//! Library side of the promtool-like TSDB commands: `dump` (exactly `promtool tsdb dump`'s
//! output), `ls` (the `promtool tsdb list` table) and the block-writing half of a backfill
//! ([`BlockBackfill`]; `cli::import` parses OpenMetrics into it, like `promtool tsdb
//! create-blocks-from openmetrics`). The CLI wires these in.

use std::io::{BufWriter, Write};
use std::path::Path;

pub mod backfill;
pub mod bench;
pub mod format;

pub use backfill::BlockBackfill;
pub use bench::BytesPerSample;

use crate::gocompat::{format_float_g, format_go_duration_ms};
use crate::storage::block::{list_blocks, open_blocks, BlockError, BlockReader, MergeCursor};
use crate::storage::chunkenc::{ChunkError, SeriesIterator, ENCODING_XOR};
use crate::storage::model::Matcher;
use format::go_labels;

/// Why a TSDB tool failed (the bucket tools have `storage::bucket::tools::BucketToolError`).
#[derive(Debug, thiserror::Error)]
pub enum TsdbToolError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("series {series}: {source}")]
    Chunk { series: String, source: ChunkError },
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {reason}")]
    Parse { line: usize, reason: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, TsdbToolError>;

/// Prints every sample of the blocks in `dir` with `mint <= t <= maxt` whose series match all
/// `matchers` (all series when empty), one `<labels> <value> <ts>` line per sample, series
/// sorted by labels and merged across blocks: `promtool tsdb dump` output.
pub fn dump(
    dir: &Path,
    mint: i64,
    maxt: i64,
    matchers: &[Matcher],
    out: &mut impl Write,
) -> Result<()> {
    let blocks = open_blocks(dir)?;
    let mut w = BufWriter::new(out);
    let mut cur = MergeCursor::new(&blocks, matchers, mint, maxt)?;
    while let Some(series) = cur.next()? {
        let labels = go_labels(&series.labels);
        // Like 2.42's dump, which iterates float samples only: histogram chunks are skipped.
        let floats: Vec<_> = series
            .chunks
            .into_iter()
            .filter(|c| c.encoding == ENCODING_XOR)
            .collect();
        let mut it = SeriesIterator::new(floats);
        let first = it.seek(mint).map_err(|source| TsdbToolError::Chunk {
            series: labels.clone(),
            source,
        })?;
        let mut next = first;
        while let Some(s) = next {
            if s.t > maxt {
                break;
            }
            writeln!(w, "{labels} {} {}", format_float_g(s.v), s.t)?;
            next = it.next().map_err(|source| TsdbToolError::Chunk {
                series: labels.clone(),
                source,
            })?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Prints the `promtool tsdb list` table of the blocks in `dir`, sorted by min time.
/// SIZE is the sum of index, chunks, tombstones and meta.json, as 2.42 computes it.
pub fn ls(dir: &Path, out: &mut impl Write) -> Result<()> {
    let mut blocks: Vec<BlockReader> = Vec::new();
    for d in list_blocks(dir)? {
        blocks.push(BlockReader::open(&d)?);
    }
    blocks.sort_by_key(|b| (b.meta().min_time, b.meta().ulid));
    let mut rows: Vec<Vec<String>> = vec![[
        "BLOCK ULID",
        "MIN TIME",
        "MAX TIME",
        "DURATION",
        "NUM SAMPLES",
        "NUM CHUNKS",
        "NUM SERIES",
        "SIZE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    for b in &blocks {
        let m = b.meta();
        let extra: u64 = ["tombstones", "meta.json"]
            .iter()
            .filter_map(|f| std::fs::metadata(b.dir().join(f)).ok())
            .map(|md| md.len())
            .sum();
        rows.push(vec![
            m.ulid.to_string(),
            m.min_time.to_string(),
            m.max_time.to_string(),
            format_go_duration_ms(m.max_time.saturating_sub(m.min_time)),
            m.stats.num_samples.to_string(),
            m.stats.num_chunks.to_string(),
            m.stats.num_series.to_string(),
            (b.size() + extra).to_string(),
        ]);
    }
    write_table(&rows, out)
}

/// Go `tabwriter.NewWriter(w, 13, 0, 2, ' ', 0)`: every cell but the last of a row is padded to
/// max(13, widest cell in its column + 2).
fn write_table(rows: &[Vec<String>], out: &mut impl Write) -> Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count() + 2).max(13);
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_tabwriter_layout() {
        let rows = vec![
            vec!["BLOCK ULID".to_string(), "MIN TIME".into(), "SIZE".into()],
            vec![
                "01M872C38XX9DY43D9Q8NVA8R9".to_string(),
                "1700000000000".into(),
                "987".into(),
            ],
        ];
        let mut out = Vec::new();
        write_table(&rows, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "BLOCK ULID                  MIN TIME       SIZE\n01M872C38XX9DY43D9Q8NVA8R9  1700000000000  987\n"
        );
    }
}
