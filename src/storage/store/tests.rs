//! Tests of the bucket store against real blocks written by `BlockWriter`: equality with the
//! local `BlockReader`, ownership, corruption handling, caching, header rebuilds and limits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use ulid::Ulid;

use super::bucket_store::SelectOptions;
use super::synth::{write_block, SynthSpec};
use super::*;
use crate::storage::block::BlockReader;
use crate::storage::bucket::memory::MemoryStore;
use crate::storage::bucket::{DynStore, ObjectStore};
use crate::storage::model::{MatchOp, Matcher, Queryable, SelectHints};

const H2: i64 = 2 * 3600 * 1000;

struct Fixture {
    _dir: tempfile::TempDir,
    blocks_dir: PathBuf,
    cache_dir: PathBuf,
    bucket: Arc<MemoryStore>,
    ulids: Vec<Ulid>,
}

fn files_under(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, base, out);
        } else {
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, p));
        }
    }
}

async fn upload(bucket: &dyn ObjectStore, blocks_dir: &Path, ulid: Ulid) {
    let dir = blocks_dir.join(ulid.to_string());
    let mut files = Vec::new();
    files_under(&dir, &dir, &mut files);
    // meta.json last, as the shipper does.
    files.sort_by_key(|(rel, _)| rel == "meta.json");
    for (rel, path) in files {
        bucket
            .put_file(&format!("{ulid}/{rel}"), &path)
            .await
            .unwrap();
    }
}

async fn fixture(specs: Vec<SynthSpec>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let blocks_dir = dir.path().join("blocks");
    let cache_dir = dir.path().join("cache");
    std::fs::create_dir_all(&blocks_dir).unwrap();
    let bucket = Arc::new(MemoryStore::new());
    let mut ulids = Vec::new();
    for spec in specs {
        let meta = write_block(&blocks_dir, &spec).unwrap();
        upload(&*bucket, &blocks_dir, meta.ulid).await;
        ulids.push(meta.ulid);
    }
    Fixture {
        _dir: dir,
        blocks_dir,
        cache_dir,
        bucket,
        ulids,
    }
}

fn config(f: &Fixture, node: &str) -> StoreConfig {
    let mut c = StoreConfig::new(f.cache_dir.join(node), node);
    c.cache_bytes = 8 << 20;
    c
}

/// Ownership when this store is the only StoreShard: every block.
fn all_blocks(_: &Ulid) -> bool {
    true
}

/// A stand-in for the cluster's rendezvous hashing (storage does not import the cluster):
/// `node` serves the blocks for which it weighs most among `nodes`.
fn owned_by(node: &str, nodes: &[String], block: &Ulid) -> bool {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let weight = |n: &str| {
        let mut h = DefaultHasher::new();
        (n, block.0).hash(&mut h);
        h.finish()
    };
    nodes
        .iter()
        .max_by_key(|n| (weight(n), n.as_str()))
        .is_some_and(|best| best == node)
}

async fn ready_store(f: &Fixture) -> BucketStore {
    let s = BucketStore::new(f.bucket.clone() as DynStore, config(f, "n1")).unwrap();
    let r = s.sync(&all_blocks).await.unwrap();
    assert_eq!(r.serving, f.ulids.len(), "{r:?}");
    s
}

fn small_spec(series: usize, min_time: i64, seed: u64) -> SynthSpec {
    let mut s = SynthSpec::new(series, min_time);
    s.metrics = 7;
    s.seed = seed;
    s
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

fn local_select(
    f: &Fixture,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Vec<crate::storage::model::Series> {
    // Merge the local blocks the same way the store merges bucket blocks.
    let mut merged: BTreeMap<
        crate::storage::model::Labels,
        Vec<crate::storage::model::EncodedChunk>,
    > = BTreeMap::new();
    for u in &f.ulids {
        let r = BlockReader::open(&f.blocks_dir.join(u.to_string())).unwrap();
        for s in r
            .select(matchers, mint, maxt, &SelectHints::default())
            .unwrap()
        {
            merged.entry(s.labels).or_default().extend(s.chunks);
        }
    }
    merged
        .into_iter()
        .map(|(labels, mut chunks)| {
            chunks.sort_by_key(|c| (c.min_time, c.max_time));
            crate::storage::model::Series { labels, chunks }
        })
        .collect()
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    let names = prop::sample::select(vec![
        "__name__",
        "instance",
        "job",
        "zone",
        "series_id",
        "missing",
    ]);
    let values = prop::sample::select(vec![
        "metric_001",
        "metric_003",
        "host-00002:9100",
        "node",
        "api",
        "z1",
        "z3",
        "",
        "nope",
    ]);
    let regexes = prop::sample::select(vec![
        "metric_00[1-4]",
        "host-0000[0-5].*",
        "n.*",
        "[0-7].*",
        "z[0-2]",
        ".*",
        ".+",
        "",
        "api|db",
    ]);
    prop_oneof![
        (names.clone(), values.clone()).prop_map(|(n, v)| m(MatchOp::Equal, n, v)),
        (names.clone(), values).prop_map(|(n, v)| m(MatchOp::NotEqual, n, v)),
        (names.clone(), regexes.clone()).prop_map(|(n, v)| m(MatchOp::RegexMatch, n, v)),
        (names, regexes).prop_map(|(n, v)| m(MatchOp::RegexNoMatch, n, v)),
    ]
}

#[test]
fn select_equals_block_reader_for_random_queries() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut second = small_spec(200, H2, 2);
    second.id_label = true;
    let f = rt.block_on(fixture(vec![small_spec(300, 0, 1), second]));
    let store = rt.block_on(ready_store(&f));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let strategy = (
        proptest::collection::vec(matcher_strategy(), 0..4),
        -H2 / 2..(2 * H2 + H2 / 2),
        0i64..(2 * H2),
    );
    runner
        .run(&strategy, |(matchers, mint, span)| {
            let maxt = mint + span;
            let want = local_select(&f, &matchers, mint, maxt);
            let got = rt
                .block_on(store.select(&matchers, mint, maxt, &SelectOptions::default()))
                .unwrap();
            prop_assert!(got.warnings.is_empty(), "{:?}", got.warnings);
            prop_assert_eq!(got.series.len(), want.len());
            prop_assert_eq!(&got.series, &want);
            // Label APIs agree with the union over local blocks.
            let mut names = Vec::new();
            let mut values = Vec::new();
            for u in &f.ulids {
                let r = BlockReader::open(&f.blocks_dir.join(u.to_string())).unwrap();
                names.extend(r.label_names(&matchers, mint, maxt).unwrap());
                values.extend(r.label_values("instance", &matchers, mint, maxt).unwrap());
            }
            names.sort();
            names.dedup();
            values.sort();
            values.dedup();
            let got_names = rt
                .block_on(store.label_names(&matchers, mint, maxt))
                .unwrap();
            prop_assert_eq!(got_names.values, names);
            let got_values = rt
                .block_on(store.label_values("instance", &matchers, mint, maxt))
                .unwrap();
            prop_assert_eq!(got_values.values, values);
            Ok(())
        })
        .unwrap();
    let st = store.stats();
    assert!(
        st.cache.postings_hits > 0 && st.cache.chunk_hits > 0,
        "{st:?}"
    );
}

#[tokio::test]
async fn external_labels_are_attached_and_matched() {
    let mut spec = small_spec(50, 0, 3);
    spec.external_labels = BTreeMap::from([("cluster".to_string(), "eu1".to_string())]);
    let f = fixture(vec![spec, small_spec(50, 0, 4)]).await;
    let store = ready_store(&f).await;
    let all = store
        .select(
            &[m(MatchOp::Equal, "__name__", "metric_001")],
            0,
            H2,
            &SelectOptions::default(),
        )
        .await
        .unwrap();
    let with: Vec<_> = all
        .series
        .iter()
        .filter(|s| s.labels.get("cluster") == Some("eu1"))
        .collect();
    assert!(!with.is_empty());
    assert_eq!(with.len() * 2, all.series.len());
    let eu = store
        .select(
            &[m(MatchOp::Equal, "cluster", "eu1")],
            0,
            H2,
            &SelectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(eu.series.len(), 50);
    let none = store
        .select(
            &[m(MatchOp::Equal, "cluster", "us1")],
            0,
            H2,
            &SelectOptions::default(),
        )
        .await
        .unwrap();
    assert!(none.series.is_empty());
    let names = store.label_names(&[], 0, H2).await.unwrap();
    assert!(names.values.contains(&"cluster".to_string()));
    assert_eq!(store.label_sets().len(), 2);
    assert_eq!(store.time_range(), Some((0, H2 - 1)));
}

#[tokio::test]
async fn ownership_changes_move_blocks_without_double_serving() {
    let specs = (0..9).map(|i| small_spec(20, i * H2, i as u64)).collect();
    let f = fixture(specs).await;
    let nodes: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    let mut stores = Vec::new();
    for n in &nodes {
        stores.push(BucketStore::new(f.bucket.clone() as DynStore, config(&f, n)).unwrap());
    }
    let mut served = BTreeMap::new();
    for (s, n) in stores.iter().zip(&nodes) {
        s.sync(&|u: &Ulid| owned_by(n, &nodes, u)).await.unwrap();
        for b in s.blocks() {
            *served.entry(b.ulid).or_insert(0) += 1;
        }
    }
    assert_eq!(served.len(), 9);
    assert!(served.values().all(|&c| c == 1));
    // Node c leaves: a and b take over all blocks; c (if it still syncs) serves nothing.
    let left = &nodes[..2];
    let mut total = 0;
    for (s, n) in stores[..2].iter().zip(&nodes) {
        let r = s.sync(&|u: &Ulid| owned_by(n, left, u)).await.unwrap();
        total += r.serving;
    }
    assert_eq!(total, 9);
    let c_had = stores[2].blocks().len();
    let r = stores[2]
        .sync(&|u: &Ulid| owned_by("c", left, u))
        .await
        .unwrap();
    assert_eq!(r.serving, 0);
    assert_eq!(r.removed.len(), c_had);
    let header_files = std::fs::read_dir(f.cache_dir.join("c")).unwrap().count();
    assert_eq!(header_files, 0, "released blocks' headers are deleted");
    // Queries over a and b together see every chunk exactly once (no double counting).
    let mut chunks = 0;
    for s in &stores[..2] {
        for x in s
            .select(&[], i64::MIN, i64::MAX, &SelectOptions::default())
            .await
            .unwrap()
            .series
        {
            chunks += x.chunks.len();
        }
    }
    let want: usize = local_select(&f, &[], i64::MIN, i64::MAX)
        .iter()
        .map(|x| x.chunks.len())
        .sum();
    assert!(want > 0);
    assert_eq!(chunks, want);
}

async fn corrupt_object(bucket: &MemoryStore, key: &str, at_from_end: Option<usize>, at: usize) {
    let mut data = bucket.get(key).await.unwrap().to_vec();
    let i = match at_from_end {
        Some(back) => data.len() - back,
        None => at,
    };
    data[i] ^= 0x5a;
    bucket.put_bytes(key, data.into()).await.unwrap();
}

#[tokio::test]
async fn corrupt_index_fails_only_that_block() {
    let f = fixture(vec![small_spec(30, 0, 1), small_spec(30, 0, 2)]).await;
    // Break the postings offset table (just before the TOC).
    corrupt_object(&f.bucket, &format!("{}/index", f.ulids[0]), Some(60), 0).await;
    let s = BucketStore::new(f.bucket.clone() as DynStore, config(&f, "n1")).unwrap();
    let r = s.sync(&all_blocks).await.unwrap();
    assert_eq!(r.serving, 1);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].0, f.ulids[0]);
    assert!(r.failed[0].1.contains("checksum"), "{}", r.failed[0].1);
    let st = s.stats();
    assert_eq!(st.block_load_failures, 1);
    assert_eq!(st.corrupt_block_errors, 1);
    assert_eq!(s.failed_blocks().len(), 1);
    let got = s
        .select(&[], 0, H2, &SelectOptions::default())
        .await
        .unwrap();
    assert_eq!(got.series.len(), 30);
}

/// A compacted block that covers another (its `compaction.sources`) hides it only once it is
/// served itself: while it cannot be loaded, its input is served on, and when it loads the two
/// are swapped in one step.
#[tokio::test]
async fn an_unloadable_covering_block_does_not_hide_its_inputs() {
    let f = fixture(vec![small_spec(10, 0, 1), small_spec(10, 0, 3)]).await;
    let (input, covering) = (f.ulids[0], f.ulids[1]);
    let meta_key = format!("{covering}/meta.json");
    let mut meta: crate::storage::block::BlockMeta =
        serde_json::from_slice(&f.bucket.get(&meta_key).await.unwrap()).unwrap();
    meta.compaction.sources = vec![input, covering];
    f.bucket
        .put_bytes(&meta_key, meta.to_json().unwrap().into())
        .await
        .unwrap();
    let index_key = format!("{covering}/index");
    let good_index = f.bucket.get(&index_key).await.unwrap();
    corrupt_object(&f.bucket, &index_key, Some(60), 0).await;

    let s = BucketStore::new(f.bucket.clone() as DynStore, config(&f, "n1")).unwrap();
    let r = s.sync(&all_blocks).await.unwrap();
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert_eq!(r.failed[0].0, covering);
    let serving: Vec<Ulid> = s.blocks().iter().map(|b| b.ulid).collect();
    assert_eq!(
        serving,
        vec![input],
        "the input is served while its cover fails"
    );

    f.bucket.put_bytes(&index_key, good_index).await.unwrap();
    let r = s.sync(&all_blocks).await.unwrap();
    assert_eq!(r.added, vec![covering], "{r:?}");
    assert_eq!(r.removed, vec![input], "{r:?}");
    let serving: Vec<Ulid> = s.blocks().iter().map(|b| b.ulid).collect();
    assert_eq!(serving, vec![covering]);
}

/// A downsampled block this store cannot load does not claim its range in the resolution
/// choice: the raw block beside it answers instead of nothing.
#[tokio::test]
async fn an_unloadable_downsampled_block_leaves_its_range_to_finer_blocks() {
    let f = fixture(vec![small_spec(30, 0, 1), small_spec(30, 0, 2)]).await;
    let (raw, five_m) = (f.ulids[0], f.ulids[1]);
    let meta_key = format!("{five_m}/meta.json");
    let mut meta: crate::storage::block::BlockMeta =
        serde_json::from_slice(&f.bucket.get(&meta_key).await.unwrap()).unwrap();
    let thanos = meta.thanos.get_or_insert_with(Default::default);
    thanos.downsample.resolution = 300_000;
    f.bucket
        .put_bytes(&meta_key, meta.to_json().unwrap().into())
        .await
        .unwrap();
    corrupt_object(&f.bucket, &format!("{five_m}/index"), Some(60), 0).await;
    let s = BucketStore::new(f.bucket.clone() as DynStore, config(&f, "n1")).unwrap();
    let r = s.sync(&all_blocks).await.unwrap();
    assert_eq!(r.failed.len(), 1, "{r:?}");
    let opts = SelectOptions {
        max_resolution_ms: 300_000,
        ..SelectOptions::default()
    };
    let got = s.select(&[], 0, H2, &opts).await.unwrap();
    assert_eq!(got.series.len(), 30, "the raw block {raw} answers");
}

#[tokio::test]
async fn corrupt_chunks_and_series_become_warnings() {
    let f = fixture(vec![
        small_spec(30, 0, 1),
        small_spec(30, 0, 2),
        small_spec(30, 0, 3),
    ])
    .await;
    let s = ready_store(&f).await;
    // Chunk data of block 0 (past the 8-byte segment header), series section of block 1.
    corrupt_object(
        &f.bucket,
        &format!("{}/chunks/000001", f.ulids[0]),
        None,
        200,
    )
    .await;
    let ix = format!("{}/index", f.ulids[1]);
    let toc_series = {
        let data = f.bucket.get(&ix).await.unwrap();
        let t = &data[data.len() - 52 + 8..data.len() - 52 + 16];
        u64::from_be_bytes(t.try_into().unwrap()) as usize
    };
    // The first entry starts at the next 16-byte boundary; byte 2 is inside its body.
    corrupt_object(&f.bucket, &ix, None, toc_series.div_ceil(16) * 16 + 2).await;
    let got = s
        .select(&[], 0, H2, &SelectOptions::default())
        .await
        .unwrap();
    assert_eq!(got.warnings.len(), 2, "{:?}", got.warnings);
    assert!(
        got.warnings.iter().all(|w| w.contains("checksum")),
        "{:?}",
        got.warnings
    );
    // The healthy block still answers with all its series (labels merge across blocks).
    assert_eq!(got.series.len(), 30);
    let st = s.stats();
    assert_eq!(st.block_query_failures, 2);
    assert_eq!(st.corrupt_block_errors, 2);
}

#[tokio::test]
async fn warm_queries_are_served_from_the_cache() {
    let f = fixture(vec![small_spec(100, 0, 1)]).await;
    let s = ready_store(&f).await;
    let q = [m(MatchOp::RegexMatch, "__name__", "metric_00[12]")];
    let cold = s
        .select(&q, 0, H2, &SelectOptions::default())
        .await
        .unwrap();
    let after_cold = s.stats();
    let warm = s
        .select(&q, 0, H2, &SelectOptions::default())
        .await
        .unwrap();
    let after_warm = s.stats();
    assert_eq!(cold.series, warm.series);
    assert!(!cold.series.is_empty());
    assert_eq!(
        after_warm.bucket_requests, after_cold.bucket_requests,
        "no GET when warm"
    );
    assert!(after_warm.cache.chunk_hits > after_cold.cache.chunk_hits);
    assert!(after_warm.cache.series_hits > after_cold.cache.series_hits);
    assert!(after_warm.cache.postings_hits > after_cold.cache.postings_hits);
    assert!(after_warm.cache.used_bytes <= after_warm.cache.budget_bytes);
}

#[tokio::test]
async fn corrupt_header_file_is_rebuilt_and_idle_headers_released() {
    let f = fixture(vec![small_spec(60, 0, 1)]).await;
    let mut cfg = config(&f, "n1");
    cfg.idle_timeout = Duration::ZERO;
    let s = BucketStore::new(f.bucket.clone() as DynStore, cfg).unwrap();
    s.sync(&all_blocks).await.unwrap();
    assert!(!s.blocks()[0].header_loaded, "headers are opened lazily");
    let q = [m(MatchOp::Equal, "job", "api")];
    let first = s
        .select(&q, 0, H2, &SelectOptions::default())
        .await
        .unwrap();
    assert!(s.blocks()[0].header_loaded);
    assert_eq!(s.release_idle(), 1);
    assert!(!s.blocks()[0].header_loaded);
    let path = index_header::header_path(&f.cache_dir.join("n1"), f.ulids[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let second = s
        .select(&q, 0, H2, &SelectOptions::default())
        .await
        .unwrap();
    assert_eq!(first.series, second.series);
    assert!(second.warnings.is_empty());
    let st = s.stats();
    assert_eq!(st.headers_rebuilt, 1);
    assert_eq!(st.headers_built, 2);
    assert!(index_header::IndexHeader::open(&path, f.ulids[0]).is_ok());
}

#[tokio::test]
async fn limits_fail_the_query_with_a_clear_error() {
    let f = fixture(vec![small_spec(100, 0, 1)]).await;
    let s = ready_store(&f).await;
    let mut opts = SelectOptions::default();
    opts.limits.max_series = 10;
    let e = s.select(&[], 0, H2, &opts).await.unwrap_err();
    assert!(matches!(e, StoreError::Limit(_)));
    assert!(e.to_string().contains("max_series=10"), "{e}");
    let mut opts = SelectOptions::default();
    opts.limits.max_chunk_bytes = 1000;
    let e = s.select(&[], 0, H2, &opts).await.unwrap_err();
    assert!(e.to_string().contains("max_chunk_bytes=1000"), "{e}");
    // Labels-only selects fetch no chunks and pass the byte limit.
    opts.labels_only = true;
    let r = s.select(&[], 0, H2, &opts).await.unwrap();
    assert_eq!(r.series.len(), 100);
    assert!(r.series.iter().all(|x| x.chunks.is_empty()));
    assert_eq!(s.stats().limit_hits, 2);
}

#[tokio::test]
async fn sync_loop_follows_membership() {
    let specs = (0..6).map(|i| small_spec(10, i * H2, i as u64)).collect();
    let f = fixture(specs).await;
    let s = Arc::new(BucketStore::new(f.bucket.clone() as DynStore, config(&f, "a")).unwrap());
    let (tx, rx) = tokio::sync::watch::channel(vec!["a".to_string(), "b".to_string()]);
    let stop = tokio_util::sync::CancellationToken::new();
    let handle = s.clone().spawn_sync_loop(
        Duration::from_secs(3600),
        rx,
        |live: &Vec<String>, u: &Ulid| owned_by("a", live, u),
        stop.clone(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !s.is_ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "store never became ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let both = vec!["a".to_string(), "b".to_string()];
    let expected = f.ulids.iter().filter(|u| owned_by("a", &both, u)).count();
    assert_eq!(s.blocks().len(), expected);
    tx.send(vec!["a".to_string()]).unwrap();
    while s.blocks().len() != 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "blocks did not move to a"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn every_value_is_found_through_the_sampled_header() {
    let mut spec = small_spec(500, 0, 9);
    spec.id_label = true;
    let f = fixture(vec![spec]).await;
    let s = ready_store(&f).await;
    let local = BlockReader::open(&f.blocks_dir.join(f.ulids[0].to_string())).unwrap();
    let values = local.label_values("series_id", &[], 0, H2).unwrap();
    assert_eq!(values.len(), 500);
    let got = s.label_values("series_id", &[], 0, H2).await.unwrap();
    assert_eq!(got.values, values);
    for v in &values {
        let r = s
            .select(
                &[m(MatchOp::Equal, "series_id", v)],
                0,
                H2,
                &SelectOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(r.series.len(), 1, "series_id={v}");
        assert_eq!(r.series[0].labels.get("series_id"), Some(v.as_str()));
    }
    for absent in ["", "0", "zzzzzzzz", "~"] {
        let r = s
            .select(
                &[m(MatchOp::Equal, "series_id", absent)],
                0,
                H2,
                &SelectOptions::default(),
            )
            .await
            .unwrap();
        // An empty value selects series without the label: there are none.
        assert!(r.series.is_empty(), "series_id={absent:?}");
    }
    let names = s.label_names(&[], 0, H2).await.unwrap();
    assert_eq!(names.values, local.label_names(&[], 0, H2).unwrap());
    // RAM for the opened header stays a fraction of the table it samples.
    let st = s.stats();
    assert_eq!(st.headers_open, 1);
    assert!(st.header_heap_bytes < 500 * 16, "{}", st.header_heap_bytes);
}

#[tokio::test]
async fn filesystem_bucket_serves_blocks_written_in_place() {
    use crate::storage::bucket::filesystem::FilesystemStore;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    std::fs::create_dir_all(&root).unwrap();
    let mut ulids = Vec::new();
    for i in 0..3 {
        let mut spec = small_spec(80, i * H2, i as u64);
        spec.id_label = i == 1;
        ulids.push(write_block(&root, &spec).unwrap().ulid);
    }
    // A stray header of a block that is not in the bucket is cleaned up by the sync.
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let stray = index_header::header_path(&cache, Ulid::new());
    std::fs::write(&stray, b"old").unwrap();
    let bucket: DynStore = Arc::new(FilesystemStore::new(&root).unwrap());
    let s = BucketStore::new(bucket, StoreConfig::new(&cache, "n1")).unwrap();
    let r = s.sync(&all_blocks).await.unwrap();
    assert_eq!(r.serving, 3);
    assert!(!stray.exists());
    let q = [
        m(MatchOp::RegexMatch, "__name__", "metric_00[0-3]"),
        m(MatchOp::NotEqual, "zone", "z2"),
    ];
    let got = s
        .select(&q, H2 / 2, 2 * H2 + 600_000, &SelectOptions::default())
        .await
        .unwrap();
    let f = Fixture {
        _dir: dir,
        blocks_dir: root,
        cache_dir: cache,
        bucket: Arc::new(MemoryStore::new()),
        ulids,
    };
    let want = local_select(&f, &q, H2 / 2, 2 * H2 + 600_000);
    assert!(!want.is_empty());
    assert_eq!(got.series, want);
}

#[tokio::test]
async fn deleted_and_marked_blocks_stop_being_served() {
    let f = fixture(vec![
        small_spec(10, 0, 1),
        small_spec(10, H2, 2),
        small_spec(10, 2 * H2, 3),
    ])
    .await;
    let mut cfg = config(&f, "n1");
    cfg.deletion_delay = Duration::from_secs(60);
    let s = BucketStore::new(f.bucket.clone() as DynStore, cfg).unwrap();
    assert_eq!(s.sync(&all_blocks).await.unwrap().serving, 3);
    // Block 0 is being deleted (meta.json goes first); block 1 was marked long ago.
    f.bucket
        .delete(&format!("{}/meta.json", f.ulids[0]))
        .await
        .unwrap();
    let mark = format!(
        r#"{{"id":"{}","version":1,"deletion_time":1000}}"#,
        f.ulids[1]
    );
    f.bucket
        .put_bytes(
            &format!("{}/deletion-mark.json", f.ulids[1]),
            mark.into_bytes().into(),
        )
        .await
        .unwrap();
    let r = s.sync(&all_blocks).await.unwrap();
    assert_eq!(r.serving, 1);
    assert_eq!(r.deleted, 1);
    assert_eq!(r.partial, 1);
    let mut removed = r.removed.clone();
    removed.sort();
    let mut want = vec![f.ulids[0], f.ulids[1]];
    want.sort();
    assert_eq!(removed, want);
    assert_eq!(s.blocks()[0].ulid, f.ulids[2]);
    assert_eq!(s.time_range(), Some((2 * H2, 3 * H2 - 1)));
}

#[tokio::test]
async fn time_partitioning_limits_the_served_blocks() {
    let f = fixture(vec![
        small_spec(10, 0, 1),
        small_spec(10, H2, 2),
        small_spec(10, 2 * H2, 3),
    ])
    .await;
    let mut cfg = config(&f, "n1");
    cfg.min_time = H2;
    cfg.max_time = 2 * H2 - 1;
    let s = BucketStore::new(f.bucket.clone() as DynStore, cfg).unwrap();
    let r = s.sync(&all_blocks).await.unwrap();
    assert_eq!(r.serving, 1);
    assert_eq!(s.blocks()[0].ulid, f.ulids[1]);
    let mut bad = config(&f, "n2");
    bad.min_time = 10;
    bad.max_time = 5;
    assert!(matches!(
        BucketStore::new(f.bucket.clone() as DynStore, bad),
        Err(StoreError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_with_a_tiny_cache_stay_correct_and_bounded() {
    let specs = (0..4).map(|i| small_spec(150, i * H2, i as u64)).collect();
    let f = fixture(specs).await;
    let mut cfg = config(&f, "n1");
    cfg.cache_bytes = 64 * 1024;
    cfg.max_concurrent_queries = 3;
    let s = Arc::new(BucketStore::new(f.bucket.clone() as DynStore, cfg).unwrap());
    s.sync(&all_blocks).await.unwrap();
    let queries: Vec<Vec<Matcher>> = vec![
        vec![m(MatchOp::Equal, "job", "api")],
        vec![m(MatchOp::RegexMatch, "__name__", "metric_00[0-2]")],
        vec![
            m(MatchOp::NotEqual, "zone", "z1"),
            m(MatchOp::Equal, "job", "db"),
        ],
        vec![],
    ];
    let expected: Vec<_> = queries
        .iter()
        .map(|q| local_select(&f, q, 0, 4 * H2))
        .collect();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        let queries = queries.clone();
        let expected = expected.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..12 {
                let k = (t + i) % queries.len();
                let got = s
                    .select(&queries[k], 0, 4 * H2, &SelectOptions::default())
                    .await
                    .unwrap();
                assert!(got.warnings.is_empty(), "{:?}", got.warnings);
                assert_eq!(got.series, expected[k], "query {k}");
                let c = s.stats().cache;
                assert!(c.used_bytes <= c.budget_bytes, "{c:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let st = s.stats();
    assert_eq!(st.queries, 8 * 12);
    assert!(
        st.cache.evictions > 0,
        "the small cache had to evict: {:?}",
        st.cache
    );
}
