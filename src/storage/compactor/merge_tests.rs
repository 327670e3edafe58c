//! Merge tests over blocks written with `BlockWriter` in temp dirs, plus the block-making and
//! block-reading helpers the executor's tests share.

use std::collections::BTreeMap;
use std::fs;

use super::*;
use crate::storage::block::encoding::{crc32c, put_uvarint, put_varint};
use crate::storage::block::index_reader::decode_series_body;
use crate::storage::block::IndexReader;
use crate::storage::chunkenc::SeriesIterator;
use crate::storage::compact::cut_chunks;
use crate::storage::model::{Queryable, SelectHints};

pub(crate) const MIN_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;

pub(crate) fn series(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "up".to_string()),
        ("instance", format!("host-{i}")),
        ("job", "node".to_string()),
    ])
}

/// One sample every `step` ms in `[mint, maxt)`, except where `hole(t)`; the value depends on
/// the series and the time only, so replicas agree.
pub(crate) fn samples(
    series: usize,
    mint: i64,
    maxt: i64,
    step: i64,
    hole: impl Fn(i64) -> bool,
) -> Vec<Sample> {
    (mint..maxt)
        .step_by(step as usize)
        .filter(|t| !hole(*t))
        .map(|t| Sample {
            t,
            v: (t / step) as f64 * 0.5 + series as f64,
        })
        .collect()
}

/// A block of `data` covering `[mint, maxt)` under `parent`, with `labels` as its Thanos
/// labels (raw resolution, source `sidecar`).
pub(crate) fn write_block(
    parent: &Path,
    mint: i64,
    maxt: i64,
    labels: &[(&str, &str)],
    data: &[(Labels, Vec<Sample>)],
) -> BlockMeta {
    let symbols: Vec<String> = data
        .iter()
        .flat_map(|(l, _)| {
            l.iter()
                .flat_map(|x| [x.name.to_string(), x.value.to_string()])
                .collect::<Vec<_>>()
        })
        .collect();
    let mut w = BlockWriter::create(parent, symbols).unwrap();
    let mut sorted: Vec<&(Labels, Vec<Sample>)> = data.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (l, s) in sorted {
        w.add_series(l, &cut_chunks(s, 120)).unwrap();
    }
    let mut meta = BlockMeta::new(w.ulid(), mint, maxt);
    if !labels.is_empty() {
        let l: BTreeMap<String, String> = labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        meta.thanos = Some(ThanosMeta::new(l, 0, "sidecar"));
    }
    w.finish(meta).unwrap()
}

/// Every series of the block in `dir` as label text -> (t, value bits).
pub(crate) fn read_samples(dir: &Path) -> BTreeMap<String, Vec<(i64, u64)>> {
    let r = BlockReader::open(dir).unwrap();
    let mut out = BTreeMap::new();
    for s in r
        .select(&[], i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap()
    {
        let mut it = SeriesIterator::new(s.chunks);
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v.to_bits()));
        }
        out.insert(s.labels.to_string(), v);
    }
    out
}

fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
    s.iter().map(|x| (x.t, x.v.to_bits())).collect()
}

fn opts(mode: MergeMode) -> MergeOptions {
    MergeOptions {
        mode,
        stream: Some((BTreeMap::from([("cluster".into(), "eu".into())]), 0)),
        memory_budget_bytes: 0,
    }
}

fn dir_of(parent: &Path, m: &BlockMeta) -> PathBuf {
    parent.join(m.ulid.to_string())
}

#[test]
fn level_merge_copies_chunks_and_keeps_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut want: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for b in 0..3i64 {
        let (mint, maxt) = (b * 2 * HOUR_MS, (b + 1) * 2 * HOUR_MS);
        let data: Vec<(Labels, Vec<Sample>)> = (0..4)
            .filter(|i| *i != b as usize) // each block misses one series
            .map(|i| (series(i), samples(i, mint, maxt, MIN_MS, |_| false)))
            .collect();
        for (l, s) in &data {
            want.entry(l.to_string()).or_default().extend(bits(s));
        }
        let m = write_block(tmp.path(), mint, maxt, &[("cluster", "eu")], &data);
        dirs.push(dir_of(tmp.path(), &m));
    }
    dirs.reverse(); // input order does not matter
    let out = tempfile::tempdir().unwrap();
    let mut calls = 0;
    let meta = merge_blocks(&dirs, out.path(), &opts(MergeMode::Concat), &mut |_, _| {
        calls += 1
    })
    .unwrap()
    .unwrap();
    assert!(calls >= 1);
    assert_eq!(meta.compaction.level, 2);
    assert_eq!(meta.compaction.sources.len(), 3);
    assert_eq!((meta.min_time, meta.max_time), (0, 6 * HOUR_MS));
    let t = meta.thanos.as_ref().unwrap();
    assert_eq!(t.source, "compactor");
    assert_eq!(t.labels.get("cluster").map(String::as_str), Some("eu"));
    let dir = dir_of(out.path(), &meta);
    assert_eq!(read_samples(&dir), want);
    // Verbatim copy: 120 samples per 2 h chunk, as written.
    assert_eq!(meta.stats.num_chunks, 9);
}

#[test]
fn dedup_merge_fills_each_replica_hole_from_the_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (mint, maxt) = (0, 2 * HOUR_MS);
    let step = 15_000;
    let hole_a = |t: i64| (20 * MIN_MS..30 * MIN_MS).contains(&t);
    let hole_b = |t: i64| (60 * MIN_MS..75 * MIN_MS).contains(&t);
    let a: Vec<Sample> = samples(0, mint, maxt, step, hole_a);
    let b: Vec<Sample> = samples(0, mint, maxt, step, hole_b);
    let only_b = (series(1), samples(1, mint, maxt, step, |_| false));
    let ma = write_block(
        tmp.path(),
        mint,
        maxt,
        &[("cluster", "eu"), ("replica", "a")],
        &[(series(0), a.clone())],
    );
    let mb = write_block(
        tmp.path(),
        mint,
        maxt,
        &[("cluster", "eu"), ("replica", "b")],
        &[(series(0), b.clone()), only_b.clone()],
    );
    let out = tempfile::tempdir().unwrap();
    let dirs = vec![dir_of(tmp.path(), &ma), dir_of(tmp.path(), &mb)];
    let meta = merge_blocks(&dirs, out.path(), &opts(MergeMode::Dedup), &mut |_, _| {})
        .unwrap()
        .unwrap();
    assert!(!meta.thanos.as_ref().unwrap().labels.contains_key("replica"));
    let got = read_samples(&dir_of(out.path(), &meta));
    assert_eq!(got[&series(1).to_string()], bits(&only_b.1));
    let merged = &got[&series(0).to_string()];
    assert!(merged.windows(2).all(|w| w[0].0 < w[1].0));
    let union: BTreeMap<i64, u64> = bits(&a).into_iter().chain(bits(&b)).collect();
    assert!(merged.iter().all(|(t, v)| union.get(t) == Some(v)));
    // No sample is lost where both replicas had it. The strict version — the merged series
    // equals the complete one, every hole filled — holds once `storage::dedup` keeps the
    // samples where replica timestamps coincide (being fixed separately).
    let got_t: std::collections::BTreeSet<i64> = merged.iter().map(|x| x.0).collect();
    let b_t: std::collections::BTreeSet<i64> = b.iter().map(|x| x.t).collect();
    for s in a.iter().filter(|s| b_t.contains(&s.t)) {
        assert!(got_t.contains(&s.t), "sample at {} lost", s.t);
    }
    assert!(got_t.len() >= a.len().max(b.len()));
    // Prometheus reads the re-encoded block: one dump line per sample.
    fs::create_dir_all(out.path().join("wal")).unwrap();
    let dump = std::process::Command::new("promtool")
        .args(["tsdb", "dump", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let lines = String::from_utf8_lossy(&dump.stdout).lines().count();
    assert_eq!(lines, got.values().map(Vec::len).sum::<usize>());
    // Re-encoded chunks hold at most 120 samples.
    let r = BlockReader::open(&dir_of(out.path(), &meta)).unwrap();
    let all = r
        .select(&[], i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap();
    for s in &all {
        for c in &s.chunks {
            assert!(crate::storage::chunkenc::declared_samples(c) <= 120);
        }
    }
}

/// Rewrites the first series entry of the block's index so that its second chunk starts
/// where the first ends (an overlap of one millisecond), checksum fixed.
fn make_chunks_out_of_order(dir: &Path) {
    let path = dir.join("index");
    let toc = IndexReader::open(&path).unwrap().toc();
    let mut bytes = fs::read(&path).unwrap();
    let off = (toc.series as usize).div_ceil(16) * 16;
    let len = bytes[off] as usize;
    assert!(len < 128);
    let body = bytes[off + 1..off + 1 + len].to_vec();
    let (refs, chunks) = decode_series_body(&body, 0, "index").unwrap();
    assert!(chunks.len() >= 2);
    let mut nb = Vec::new();
    put_uvarint(&mut nb, refs.len() as u64);
    for (n, v) in &refs {
        put_uvarint(&mut nb, *n as u64);
        put_uvarint(&mut nb, *v as u64);
    }
    put_uvarint(&mut nb, chunks.len() as u64);
    for (i, c) in chunks.iter().enumerate() {
        if i == 0 {
            put_varint(&mut nb, c.min_time);
            put_uvarint(&mut nb, (c.max_time - c.min_time) as u64);
            put_uvarint(&mut nb, c.reference);
        } else {
            let p = chunks[i - 1];
            let gap = (c.min_time - p.max_time) as u64;
            if i == 1 {
                // Gap 0, padded to the original varint's length (non-minimal, still valid).
                let mut orig = Vec::new();
                put_uvarint(&mut orig, gap);
                nb.extend(std::iter::repeat_n(0x80u8, orig.len() - 1));
                nb.push(0);
            } else {
                put_uvarint(&mut nb, gap);
            }
            put_uvarint(&mut nb, (c.max_time - c.min_time) as u64);
            put_varint(&mut nb, c.reference as i64 - p.reference as i64);
        }
    }
    assert_eq!(nb.len(), len, "the rewrite must keep the entry's size");
    bytes[off + 1..off + 1 + len].copy_from_slice(&nb);
    bytes[off + 1 + len..off + 5 + len].copy_from_slice(&crc32c(&nb).to_be_bytes());
    fs::write(&path, bytes).unwrap();
}

#[test]
fn input_problems_name_the_block() {
    let tmp = tempfile::tempdir().unwrap();
    let data = |i| vec![(series(i), samples(i, 0, 2 * HOUR_MS, 30_000, |_| false))];
    let good = write_block(tmp.path(), 0, 2 * HOUR_MS, &[], &data(0));
    let ooo = write_block(tmp.path(), 2 * HOUR_MS, 4 * HOUR_MS, &[], &data(0));
    make_chunks_out_of_order(&dir_of(tmp.path(), &ooo));
    let out = tempfile::tempdir().unwrap();
    let run = |dirs: Vec<PathBuf>| {
        merge_blocks(&dirs, out.path(), &opts(MergeMode::Concat), &mut |_, _| {}).unwrap_err()
    };
    let e = run(vec![dir_of(tmp.path(), &good), dir_of(tmp.path(), &ooo)]);
    assert_eq!(
        e.culprit(),
        Some((ooo.ulid, "block-index-out-of-order-chunk")),
        "{e}"
    );
    assert!(e.to_string().contains(&ooo.ulid.to_string()), "{e}");

    // A chunk whose bytes changed fails its checksum.
    let bad_chunk = write_block(tmp.path(), 4 * HOUR_MS, 6 * HOUR_MS, &[], &data(1));
    let seg = dir_of(tmp.path(), &bad_chunk).join("chunks/000001");
    let mut b = fs::read(&seg).unwrap();
    b[20] ^= 0xff;
    fs::write(&seg, b).unwrap();
    let e = run(vec![
        dir_of(tmp.path(), &good),
        dir_of(tmp.path(), &bad_chunk),
    ]);
    assert_eq!(e.culprit(), Some((bad_chunk.ulid, "corrupt-block")), "{e}");

    // A garbage index.
    let bad_index = write_block(tmp.path(), 6 * HOUR_MS, 8 * HOUR_MS, &[], &data(2));
    fs::write(dir_of(tmp.path(), &bad_index).join("index"), b"garbage").unwrap();
    let e = run(vec![
        dir_of(tmp.path(), &good),
        dir_of(tmp.path(), &bad_index),
    ]);
    assert_eq!(e.culprit(), Some((bad_index.ulid, "corrupt-block")), "{e}");
    // Nothing is left behind in the output directory.
    assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn memory_budget_refuses_and_names_the_largest_input() {
    let tmp = tempfile::tempdir().unwrap();
    let small = write_block(
        tmp.path(),
        0,
        HOUR_MS,
        &[],
        &[(series(0), samples(0, 0, HOUR_MS, MIN_MS, |_| false))],
    );
    let big_data: Vec<(Labels, Vec<Sample>)> = (0..200)
        .map(|i| {
            (
                series(i),
                samples(i, HOUR_MS, 2 * HOUR_MS, MIN_MS, |_| false),
            )
        })
        .collect();
    let big = write_block(tmp.path(), HOUR_MS, 2 * HOUR_MS, &[], &big_data);
    let dirs = vec![dir_of(tmp.path(), &small), dir_of(tmp.path(), &big)];
    let out = tempfile::tempdir().unwrap();
    let mut o = opts(MergeMode::Concat);
    o.memory_budget_bytes = MEMORY_BASE_BYTES + 1000;
    let e = merge_blocks(&dirs, out.path(), &o, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.culprit(), Some((big.ulid, "memory-budget")), "{e}");
    assert!(matches!(e, MergeError::OverBudget { .. }));
    o.memory_budget_bytes = 64 << 20;
    assert!(merge_blocks(&dirs, out.path(), &o, &mut |_, _| {})
        .unwrap()
        .is_some());
    let sizes = [InputSize {
        ulid: small.ulid,
        index_bytes: 1000,
        num_series: 10,
    }];
    assert_eq!(estimate_memory(&sizes), MEMORY_BASE_BYTES + 2000 + 160);
    assert_eq!(check_budget(&sizes, 0).unwrap(), estimate_memory(&sizes));
}

#[test]
fn symbols_are_merged_from_the_sorted_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_block(
        tmp.path(),
        0,
        HOUR_MS,
        &[],
        &[(series(0), samples(0, 0, HOUR_MS, MIN_MS, |_| false))],
    );
    let b = write_block(
        tmp.path(),
        HOUR_MS,
        2 * HOUR_MS,
        &[],
        &[(
            series(7),
            samples(7, HOUR_MS, 2 * HOUR_MS, MIN_MS, |_| false),
        )],
    );
    let mut inputs = Vec::new();
    for m in [&a, &b] {
        inputs.push(Input {
            ulid: m.ulid,
            replica: 0,
            block: BlockReader::open(&dir_of(tmp.path(), m)).unwrap(),
            refs: Vec::new(),
            pos: 0,
            head: None,
            last: None,
        });
    }
    let got = merge_symbols(&inputs).unwrap();
    let mut want: Vec<String> = inputs
        .iter()
        .flat_map(|i| i.block.index().symbols().unwrap())
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(got, want);
    assert!(got.contains(&"host-7".to_string()) && got.contains(&"host-0".to_string()));
}

#[test]
fn chain_prefers_the_later_input() {
    let s = |t: i64, v: f64| Sample { t, v };
    let out = chain(
        vec![s(1, 1.0), s(2, 1.0), s(4, 1.0)],
        vec![s(2, 2.0), s(3, 2.0)],
    );
    assert_eq!(out, vec![s(1, 1.0), s(2, 2.0), s(3, 2.0), s(4, 1.0)]);
}

/// Test-only: runs `f` while a thread samples the process's anonymous resident memory
/// (`RssAnon` in /proc/self/status: heap, not the page cache behind mmapped block files) every
/// millisecond; returns `f`'s result and the peak growth in bytes over the level before.
/// Linux only; meaningful only when nothing else runs in the process (run the test alone).
pub(crate) fn peak_heap_growth<T>(f: impl FnOnce() -> T) -> (T, u64) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    fn rss_anon() -> u64 {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
    let base = rss_anon();
    let peak = Arc::new(AtomicU64::new(base));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_anon(), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    peak.fetch_max(rss_anon(), Ordering::Relaxed);
    (out, peak.load(Ordering::Relaxed).saturating_sub(base))
}

/// Two replica blocks of ~27 MB of chunks each (random values do not compress) are deduped
/// with a heap peak under the estimate, which is far below the blocks' size: nothing is
/// buffered per block. Run alone:
/// `cargo test --lib merge_heap_stays_under_the_estimate -- --ignored --exact --test-threads 1`
#[test]
#[ignore = "measures process memory; run alone"]
fn merge_heap_stays_under_the_estimate() {
    let tmp = tempfile::tempdir().unwrap();
    let (mint, maxt, step) = (0, 10 * HOUR_MS, 1000);
    let mut dirs = Vec::new();
    let mut chunk_bytes = 0u64;
    for replica in ["a", "b"] {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let data: Vec<(Labels, Vec<Sample>)> = (0..100)
            .map(|i| {
                let s = (mint..maxt)
                    .step_by(step as usize)
                    .map(|t| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        Sample {
                            t,
                            v: (x >> 11) as f64,
                        }
                    })
                    .collect();
                (series(i), s)
            })
            .collect();
        let m = write_block(
            tmp.path(),
            mint,
            maxt,
            &[("cluster", "eu"), ("replica", replica)],
            &data,
        );
        drop(data);
        let d = dir_of(tmp.path(), &m);
        chunk_bytes += BlockReader::open(&d).unwrap().chunk_reader().size();
        dirs.push(d);
    }
    let sizes: Vec<InputSize> = dirs
        .iter()
        .map(|d| {
            let r = BlockReader::open(d).unwrap();
            InputSize {
                ulid: r.meta().ulid,
                index_bytes: r.index().size(),
                num_series: 100,
            }
        })
        .collect();
    let estimate = estimate_memory(&sizes);
    let out = tempfile::tempdir().unwrap();
    let (res, peak) = peak_heap_growth(|| {
        merge_blocks(&dirs, out.path(), &opts(MergeMode::Dedup), &mut |_, _| {})
    });
    assert!(res.unwrap().is_some());
    eprintln!("inputs: {chunk_bytes} chunk bytes; heap peak growth {peak}; estimate {estimate}");
    assert!(
        chunk_bytes > MEMORY_BASE_BYTES,
        "blocks too small to show anything"
    );
    assert!(
        peak < estimate,
        "heap peak {peak} over the estimate {estimate}"
    );
    assert!(
        peak < chunk_bytes / 4,
        "heap peak {peak} grows with the blocks"
    );
}
