//! Synthetic Prometheus blocks for the store's tests and benchmarks: label sets shaped like node
//! exporter data (metric × instance × job), XOR chunks of regular scrapes, written with the real
//! `BlockWriter` so they are byte-for-byte what a Strata node ships. Encoded chunk sets can be
//! shared between series (`chunk_variants`) to keep generating hundreds of blocks fast.

use std::collections::BTreeMap;
use std::path::Path;

use crate::storage::block::{BlockMeta, BlockWriter, Result, ThanosMeta};
use crate::storage::chunkenc::XorAppender;
use crate::storage::model::{EncodedChunk, Labels};

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    pub series: usize,
    /// Distinct metric names; series are spread over them.
    pub metrics: usize,
    pub min_time: i64,
    /// Block length in ms; the block covers `[min_time, min_time + duration_ms)`.
    pub duration_ms: i64,
    pub scrape_ms: i64,
    pub samples_per_chunk: usize,
    /// How many distinct encoded chunk sets are made; series `i` uses set `i % chunk_variants`.
    pub chunk_variants: usize,
    /// Written as the meta's `thanos.labels` when not empty.
    pub external_labels: BTreeMap<String, String>,
    /// Adds a `series_id` label unique to every series (a high-cardinality label, as pod or
    /// container ids are in real data).
    pub id_label: bool,
    pub seed: u64,
}

impl SynthSpec {
    pub fn new(series: usize, min_time: i64) -> Self {
        SynthSpec {
            series,
            metrics: 50,
            min_time,
            duration_ms: 2 * 3600 * 1000,
            scrape_ms: 15_000,
            samples_per_chunk: 120,
            chunk_variants: series.max(1),
            external_labels: BTreeMap::new(),
            id_label: false,
            seed: 1,
        }
    }
}

const JOBS: [&str; 3] = ["node", "api", "db"];

/// The label set of series `i`.
pub fn series_labels(spec: &SynthSpec, i: usize) -> Labels {
    let metrics = spec.metrics.max(1);
    let inst = i / metrics;
    let ls = Labels::from_pairs([
        ("__name__", format!("metric_{:03}", i % metrics)),
        ("instance", format!("host-{inst:05}:9100")),
        ("job", JOBS[inst % JOBS.len()].to_string()),
        ("zone", format!("z{}", inst % 7)),
    ]);
    if spec.id_label {
        ls.with(
            "series_id",
            &format!("{:08x}", (i as u64).wrapping_mul(0x9E37_79B9) ^ spec.seed),
        )
    } else {
        ls
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Chunks of one variant: counters for even variants, gauges for odd ones, with a few samples
/// missing so chunk boundaries differ between variants.
fn variant_chunks(spec: &SynthSpec, variant: usize) -> Vec<EncodedChunk> {
    let mut rng = xorshift(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (variant as u64 + 1));
    let mut out = Vec::new();
    let mut app = XorAppender::new();
    let mut n_in_chunk = 0usize;
    let mut value = (variant % 97) as f64;
    let mut t = spec.min_time;
    let end = spec.min_time + spec.duration_ms;
    while t < end {
        rng = xorshift(rng);
        if !rng.is_multiple_of(53) {
            // Shaped like real scrapes so XOR compresses as in production (~1-3 B/sample):
            // counters grow by a few distinct steps, gauges mostly repeat their last value.
            if variant.is_multiple_of(2) {
                value += ((rng >> 8) % 4) as f64 * 16.0;
            } else if (rng >> 8).is_multiple_of(8) {
                value = ((rng >> 16) % 100) as f64 / 4.0;
            }
            app.append(t, value);
            n_in_chunk += 1;
            if n_in_chunk == spec.samples_per_chunk.max(1) {
                out.extend(app.to_encoded());
                app = XorAppender::new();
                n_in_chunk = 0;
            }
        }
        t += spec.scrape_ms.max(1);
    }
    if n_in_chunk > 0 {
        out.extend(app.to_encoded());
    }
    out
}

/// Writes one block under `parent` and returns its meta.
pub fn write_block(parent: &Path, spec: &SynthSpec) -> Result<BlockMeta> {
    let mut all: Vec<(Labels, usize)> = (0..spec.series)
        .map(|i| (series_labels(spec, i), i))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut symbols = Vec::new();
    for (ls, _) in &all {
        for l in ls.iter() {
            symbols.push(l.name.to_string());
            symbols.push(l.value.to_string());
        }
    }
    symbols.sort();
    symbols.dedup();
    let variants: Vec<Vec<EncodedChunk>> = (0..spec.chunk_variants.max(1))
        .map(|v| variant_chunks(spec, v))
        .collect();
    let mut w = BlockWriter::create(parent, symbols)?;
    for (ls, i) in &all {
        w.add_series(ls, &variants[i % variants.len()])?;
    }
    let mut meta = BlockMeta::new(w.ulid(), spec.min_time, spec.min_time + spec.duration_ms);
    if !spec.external_labels.is_empty() {
        meta.thanos = Some(ThanosMeta::new(spec.external_labels.clone(), 0, "test"));
    }
    w.finish(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::block::BlockReader;
    use crate::storage::model::{Queryable, SelectHints};

    #[test]
    fn writes_a_readable_block() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SynthSpec::new(120, 0);
        let meta = write_block(dir.path(), &spec).unwrap();
        assert_eq!(meta.stats.num_series, 120);
        let r = BlockReader::open(&dir.path().join(meta.ulid.to_string())).unwrap();
        let all = r
            .select(&[], i64::MIN, i64::MAX, &SelectHints::default())
            .unwrap();
        assert_eq!(all.len(), 120);
        assert!(all.iter().all(|s| s.chunks.len() >= 4));
    }
}
