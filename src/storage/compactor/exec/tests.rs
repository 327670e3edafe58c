//! Passes over the in-memory bucket with small blocks written by `BlockWriter`: level
//! compaction end to end, replica dedup, no-compact marks for overlaps and corrupt inputs,
//! unreadable metas and marks, retention and delayed deletion, partial uploads, a failed
//! upload, and a stream lost between upload and marking. Every pass must leave the scratch
//! directory empty.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use tempfile::TempDir;

use super::*;
use crate::storage::block::ThanosMeta;
use crate::storage::bucket::blocks::BlockFile;
use crate::storage::bucket::memory::MemoryStore;
use crate::storage::bucket::{ListResult, ObjectMeta};
use crate::storage::compactor::merge::tests::{
    read_samples, samples, series, write_block, HOUR_MS, MIN_MS,
};
use crate::storage::model::{Labels, Sample};

type Samples = BTreeMap<String, Vec<(i64, u64)>>;

struct Env {
    store: Arc<MemoryStore>,
    src: TempDir,
    scratch: TempDir,
    dl: TempDir,
    metrics: CompactorMetrics,
}

impl Env {
    fn new() -> Self {
        Env {
            store: Arc::new(MemoryStore::new()),
            src: tempfile::tempdir().unwrap(),
            scratch: tempfile::tempdir().unwrap(),
            dl: tempfile::tempdir().unwrap(),
            metrics: CompactorMetrics::unregistered(),
        }
    }

    fn settings(&self) -> CompactorSettings {
        CompactorSettings::new(PlannerConfig::default(), self.scratch.path().to_path_buf())
    }

    /// Writes a block of `data` and uploads it (uploaded 2 h ago: past the consistency delay).
    async fn block(
        &self,
        mint: i64,
        maxt: i64,
        labels: &[(&str, &str)],
        data: &[(Labels, Vec<Sample>)],
    ) -> Ulid {
        let meta = write_block(self.src.path(), mint, maxt, labels, data);
        upload_local(&*self.store, self.src.path(), meta).await
    }

    /// A 2 h block of three series, one sample a minute.
    async fn two_hours(&self, b: i64, labels: &[(&str, &str)], want: &mut Samples) -> Ulid {
        let (mint, maxt) = (b * 2 * HOUR_MS, (b + 1) * 2 * HOUR_MS);
        let data: Vec<(Labels, Vec<Sample>)> = (0..3)
            .map(|i| (series(i), samples(i, mint, maxt, MIN_MS, |_| false)))
            .collect();
        for (l, s) in &data {
            let e = want.entry(l.to_string()).or_default();
            e.extend(s.iter().map(|x| (x.t, x.v.to_bits())));
        }
        self.block(mint, maxt, labels, &data).await
    }

    async fn pass_at(&self, settings: &CompactorSettings, now: SystemTime) -> PassReport {
        let store: Arc<dyn ObjectStore> = self.store.clone();
        self.pass_with(store, settings, &AlwaysOwn, now).await
    }

    async fn pass_with(
        &self,
        store: Arc<dyn ObjectStore>,
        settings: &CompactorSettings,
        guard: &dyn StreamGuard,
        now: SystemTime,
    ) -> PassReport {
        let r = run_pass(store, settings, guard, Some(&self.metrics), &|_| {}, now)
            .await
            .unwrap();
        let left: Vec<_> = std::fs::read_dir(self.scratch.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "not-ours")
            .collect();
        assert!(left.is_empty(), "scratch not empty: {left:?}");
        r
    }

    /// Blocks with meta.json and no deletion mark, by (minTime, ULID).
    async fn live(&self) -> Vec<BlockMeta> {
        let mut out = Vec::new();
        for (ulid, d) in blocks::list_blocks(&*self.store).await.unwrap() {
            if d.has_meta && !d.has_deletion_mark {
                out.push(blocks::read_meta(&*self.store, ulid).await.unwrap());
            }
        }
        out.sort_by_key(|m| (m.min_time, m.ulid));
        out
    }

    /// The samples of `metas` read back from the bucket; a timestamp in two blocks fails.
    async fn samples_of(&self, metas: &[BlockMeta]) -> Samples {
        let mut all: Samples = BTreeMap::new();
        for m in metas {
            let dir = self.dl.path().join(m.ulid.to_string());
            std::fs::create_dir_all(dir.join("chunks")).unwrap();
            let listing = self.store.list(&blocks::block_prefix(m.ulid), None).await;
            for o in listing.unwrap().objects {
                let rel = o.key.split_once('/').unwrap().1;
                if rel == "index" || rel.starts_with("chunks/") || rel == "meta.json" {
                    self.store
                        .get_to_file(&o.key, &dir.join(rel))
                        .await
                        .unwrap();
                }
            }
            for (k, v) in read_samples(&dir) {
                all.entry(k).or_default().extend(v);
            }
        }
        for (k, v) in all.iter_mut() {
            v.sort_by_key(|x| x.0);
            assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "{k}: a sample twice");
        }
        all
    }

    async fn marked(&self, ulid: Ulid) -> (bool, Option<String>) {
        let del = blocks::read_deletion_mark(&*self.store, ulid)
            .await
            .unwrap();
        let nc = blocks::read_no_compact_mark(&*self.store, ulid)
            .await
            .unwrap();
        (del.is_some(), nc.map(|m| m.reason.as_str().to_string()))
    }
}

/// Uploads the local block `parent/<ULID>` with its Thanos section stamped 2 h ago.
async fn upload_local(store: &dyn ObjectStore, parent: &Path, mut meta: BlockMeta) -> Ulid {
    let dir = parent.join(meta.ulid.to_string());
    let uploaded = SystemTime::now() - Duration::from_secs(2 * 3600);
    if let Some(t) = meta.thanos.as_mut() {
        t.upload_time = Some(crate::time::rfc3339_nanos(uploaded));
    }
    let files: Vec<BlockFile> = ThanosMeta::gather_files(&dir)
        .unwrap()
        .into_iter()
        .filter(|f| f.rel_path != "meta.json")
        .map(|f| BlockFile {
            rel_path: f.rel_path,
            size: f.size_bytes as u64,
        })
        .collect();
    let body = Bytes::from(meta.to_json().unwrap());
    blocks::upload(
        store,
        meta.ulid,
        &dir,
        &files,
        || Ok::<_, BucketError>(body),
        &mut |_, _| {},
    )
    .await
    .unwrap();
    meta.ulid
}

const EU_A: &[(&str, &str)] = &[("cluster", "eu"), ("replica", "a")];

fn ranges(metas: &[BlockMeta]) -> Vec<(i64, i64)> {
    metas
        .iter()
        .map(|m| (m.min_time / HOUR_MS, m.max_time / HOUR_MS))
        .collect()
}

#[tokio::test]
async fn twelve_2h_blocks_become_two_8h_blocks_and_the_open_window() {
    let env = Env::new();
    let mut want = Samples::new();
    for b in 0..12 {
        env.two_hours(b, EU_A, &mut want).await;
    }
    let s = env.settings();
    let now = SystemTime::now();
    let r = env.pass_at(&s, now).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.level_plans, r.vertical_plans), (2, 0));
    assert_eq!(r.blocks_written.len(), 2);
    assert_eq!(r.inputs_marked.len(), 8);
    let live = env.live().await;
    assert_eq!(
        ranges(&live),
        vec![(0, 8), (8, 16), (16, 18), (18, 20), (20, 22), (22, 24)]
    );
    for m in &live[..2] {
        assert_eq!(m.compaction.level, 2);
        assert_eq!(m.compaction.sources.len(), 4);
        let t = m.thanos.as_ref().unwrap();
        assert_eq!((t.source.as_str(), t.labels.len()), ("compactor", 2));
        assert!(t.upload_time.is_some() && !t.files.is_empty());
    }
    assert_eq!(env.samples_of(&live).await, want);
    let m = &env.metrics;
    assert_eq!((m.groups_planned.get(), m.groups_compacted.get()), (2, 2));
    assert_eq!(m.marked("compacted"), 8);
    assert!(m.bytes_read.get() > 0 && m.bytes_written.get() > 0);
    assert!(r.bytes_downloaded > 0 && r.bytes_uploaded > 0);
    assert!(m.last_successful_pass.get() > 0.0);

    let keys = env.store.keys();
    let again = env.pass_at(&s, now).await;
    assert!(again.blocks_written.is_empty() && again.inputs_marked.is_empty());
    assert!(again.no_compact_marked.is_empty() && again.duplicates_marked.is_empty());
    assert!(again.retention_marked.is_empty() && again.deleted.is_empty());
    assert_eq!(env.store.keys(), keys);
}

#[tokio::test]
async fn replicas_become_one_stream_without_the_replica_label() {
    let env = Env::new();
    let step = 15_000;
    let (mint, maxt) = (0, 2 * HOUR_MS);
    let hole_a = |t: i64| (20 * MIN_MS..30 * MIN_MS).contains(&t);
    let hole_b = |t: i64| (70 * MIN_MS..85 * MIN_MS).contains(&t);
    let mut per_replica = Vec::new();
    for (replica, hole) in [("a", &hole_a as &dyn Fn(i64) -> bool), ("b", &hole_b)] {
        let data: Vec<(Labels, Vec<Sample>)> = (0..2)
            .map(|i| (series(i), samples(i, mint, maxt, step, hole)))
            .collect();
        env.block(
            mint,
            maxt,
            &[("cluster", "eu"), ("replica", replica)],
            &data,
        )
        .await;
        per_replica.push(data);
    }
    let mut s = env.settings();
    s.planner.dedup = true;
    s.planner.replica_labels = vec!["replica".into()];
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.vertical_plans, r.blocks_written.len()), (1, 1));
    let live = env.live().await;
    assert_eq!(live.len(), 1);
    let labels = &live[0].thanos.as_ref().unwrap().labels;
    assert_eq!(labels, &BTreeMap::from([("cluster".into(), "eu".into())]));
    let got = env.samples_of(&live).await;
    for i in 0..2 {
        let out = &got[&series(i).to_string()];
        let (a, b) = (&per_replica[0][i].1, &per_replica[1][i].1);
        // The replicas share timestamps, so the merged series is the complete one: each
        // replica's hole filled from the other, every sample exactly once.
        let union: BTreeMap<i64, u64> = a.iter().chain(b).map(|x| (x.t, x.v.to_bits())).collect();
        let complete = samples(i, mint, maxt, step, |_| false);
        assert_eq!(union.len(), complete.len(), "the holes do not overlap");
        let got_map: BTreeMap<i64, u64> = out.iter().copied().collect();
        assert_eq!(
            got_map.len(),
            out.len(),
            "a timestamp twice in {}",
            series(i)
        );
        assert_eq!(got_map, union, "series {}", series(i));
    }
    assert!(env
        .pass_at(&s, SystemTime::now())
        .await
        .blocks_written
        .is_empty());
}

#[tokio::test]
async fn an_overlap_marks_its_stream_and_another_stream_still_compacts() {
    let env = Env::new();
    let data = |mint, maxt| vec![(series(0), samples(0, mint, maxt, MIN_MS, |_| false))];
    let x: &[(&str, &str)] = &[("cluster", "x")];
    let x1 = env.block(0, 2 * HOUR_MS, x, &data(0, 2 * HOUR_MS)).await;
    let x2 = env
        .block(HOUR_MS, 3 * HOUR_MS, x, &data(HOUR_MS, 3 * HOUR_MS))
        .await;
    let mut want = Samples::new();
    let mut y = Vec::new();
    for b in 0..5 {
        y.push(env.two_hours(b, &[("cluster", "y")], &mut want).await);
    }
    let mut s = env.settings();
    s.concurrency = 2;
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let marked: Vec<Ulid> = r.no_compact_marked.iter().map(|m| m.ulid).collect();
    assert_eq!(marked.len(), 2);
    assert!(marked.contains(&x1) && marked.contains(&x2));
    for u in [x1, x2] {
        assert_eq!(env.marked(u).await, (false, Some("block-overlap".into())));
    }
    assert_eq!(env.metrics.marked("block-overlap"), 2);
    assert_eq!(r.blocks_written.len(), 1);
    assert_eq!(r.inputs_marked.len(), 4);
    for u in &y[..4] {
        assert!(env.marked(*u).await.0);
    }
    let again = env.pass_at(&s, SystemTime::now()).await;
    assert!(again.no_compact_marked.is_empty() && again.blocks_written.is_empty());
}

#[tokio::test]
async fn a_corrupt_input_is_marked_and_the_rest_compacts() {
    let env = Env::new();
    let mut want = Samples::new();
    let mut ids = Vec::new();
    for b in 0..5 {
        let mut w = Samples::new();
        ids.push(env.two_hours(b, EU_A, &mut w).await);
        if b != 1 {
            for (k, v) in w {
                want.entry(k).or_default().extend(v);
            }
        }
    }
    let bad = ids[1];
    env.store
        .put_bytes(
            &blocks::object_key(bad, "index"),
            Bytes::from_static(b"not an index"),
        )
        .await
        .unwrap();
    let s = env.settings();
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.no_compact_marked.len(), 1);
    assert_eq!(r.no_compact_marked[0].ulid, bad);
    assert!(r.no_compact_marked[0].details.contains(&bad.to_string()));
    assert_eq!(env.marked(bad).await, (false, Some("corrupt-block".into())));
    assert_eq!(env.metrics.marked("corrupt-block"), 1);
    // The window is cut at the marked block: blocks 2 and 3 merge, 0 and 4 stay as they are.
    assert_eq!(r.blocks_written.len(), 1);
    assert_eq!(r.inputs_marked, vec![ids[2], ids[3]]);
    for u in [ids[0], ids[4]] {
        assert_eq!(env.marked(u).await, (false, None));
    }
    let live: Vec<BlockMeta> = env
        .live()
        .await
        .into_iter()
        .filter(|m| m.ulid != bad)
        .collect();
    assert_eq!(ranges(&live), vec![(0, 2), (4, 8), (8, 10)]);
    assert_eq!(env.samples_of(&live).await, want);
}

#[tokio::test]
async fn unreadable_meta_and_marks_skip_their_blocks_and_delete_nothing() {
    let env = Env::new();
    let mut w = Samples::new();
    let a = env.two_hours(0, EU_A, &mut w).await;
    let b = env.two_hours(1, EU_A, &mut w).await;
    let c = env.two_hours(2, EU_A, &mut w).await;
    let garbage = Bytes::from_static(b"{ not json");
    for (u, f) in [
        (a, "meta.json"),
        (b, "deletion-mark.json"),
        (c, "no-compact-mark.json"),
    ] {
        let key = blocks::object_key(u, f);
        env.store.put_bytes(&key, garbage.clone()).await.unwrap();
    }
    let keys = env.store.keys();
    let mut s = env.settings();
    s.retention.raw_ms = HOUR_MS;
    s.delete_delay = Duration::ZERO;
    let later = SystemTime::now() + Duration::from_secs(100 * 86_400);
    for _ in 0..2 {
        let r = env.pass_at(&s, later).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let mut files: Vec<(Ulid, String)> = r
            .invalid_files
            .iter()
            .map(|f| (f.ulid, f.file.clone()))
            .collect();
        files.sort();
        let mut expected = vec![
            (a, "meta.json".to_string()),
            (b, "deletion-mark.json".to_string()),
            (c, "no-compact-mark.json".to_string()),
        ];
        expected.sort();
        assert_eq!(files, expected);
        assert!(r.deleted.is_empty() && r.retention_marked.is_empty());
    }
    assert_eq!(env.store.keys(), keys);
    let invalid: u64 = ["meta.json", "deletion-mark.json", "no-compact-mark.json"]
        .iter()
        .map(|f| {
            env.metrics
                .invalid_files
                .get_or_create(&super::super::metrics::FileLabels {
                    file: f.to_string(),
                })
                .get()
        })
        .sum();
    assert_eq!(invalid, 6);
}

#[tokio::test]
async fn retention_marks_then_deletes_after_the_delay() {
    let env = Env::new();
    let mut w = Samples::new();
    let a = env.two_hours(0, EU_A, &mut w).await;
    let b = env.two_hours(5, EU_A, &mut w).await;
    let mut s = env.settings();
    s.retention.raw_ms = 86_400_000;
    s.delete_delay = Duration::from_secs(3600);
    let now = SystemTime::now();
    let r = env.pass_at(&s, now).await;
    assert_eq!(r.retention_marked, vec![a, b]);
    assert!(r.deleted.is_empty());
    assert_eq!(env.metrics.marked("retention"), 2);
    let r = env.pass_at(&s, now + Duration::from_secs(1800)).await;
    assert!(r.deleted.is_empty() && r.retention_marked.is_empty());
    let r = env.pass_at(&s, now + Duration::from_secs(7200)).await;
    assert_eq!(r.deleted, vec![a, b]);
    assert_eq!(env.metrics.blocks_deleted.get(), 2);
    assert!(env.store.keys().is_empty(), "{:?}", env.store.keys());
}

#[tokio::test]
async fn partial_uploads_go_after_48_hours() {
    let env = Env::new();
    let partial = Ulid::new();
    for f in ["chunks/000001", "index"] {
        let key = blocks::object_key(partial, f);
        env.store
            .put_bytes(&key, Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    let s = env.settings();
    let now = SystemTime::now();
    let r = env.pass_at(&s, now + Duration::from_secs(3600)).await;
    assert!(r.partial_uploads_deleted.is_empty());
    assert_eq!(env.store.keys().len(), 2);
    let r = env.pass_at(&s, now + Duration::from_secs(49 * 3600)).await;
    assert_eq!(r.partial_uploads_deleted, vec![partial]);
    assert!(env.store.keys().is_empty());
}

/// A bucket whose puts fail from the `fail_at`-th on (1-based; 0 = never).
#[derive(Debug)]
struct FailingPuts {
    inner: Arc<MemoryStore>,
    puts: AtomicUsize,
    fail_at: AtomicUsize,
}

impl FailingPuts {
    fn check(&self, op: &'static str, key: &str) -> crate::storage::bucket::Result<()> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        let at = self.fail_at.load(Ordering::SeqCst);
        if at != 0 && n >= at {
            return Err(BucketError::Transient {
                op,
                key: key.to_string(),
                message: "injected".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FailingPuts {
    fn backend(&self) -> &'static str {
        "failing"
    }
    async fn get(&self, key: &str) -> crate::storage::bucket::Result<Bytes> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, o: u64, l: u64) -> crate::storage::bucket::Result<Bytes> {
        self.inner.get_range(key, o, l).await
    }
    async fn put_bytes(&self, key: &str, data: Bytes) -> crate::storage::bucket::Result<()> {
        self.check("put_bytes", key)?;
        self.inner.put_bytes(key, data).await
    }
    async fn put_file(&self, key: &str, path: &Path) -> crate::storage::bucket::Result<u64> {
        self.check("put_file", key)?;
        self.inner.put_file(key, path).await
    }
    async fn list(&self, p: &str, d: Option<&str>) -> crate::storage::bucket::Result<ListResult> {
        self.inner.list(p, d).await
    }
    async fn head(&self, key: &str) -> crate::storage::bucket::Result<Option<ObjectMeta>> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> crate::storage::bucket::Result<()> {
        self.inner.delete(key).await
    }
    async fn get_to_file(&self, key: &str, path: &Path) -> crate::storage::bucket::Result<u64> {
        self.inner.get_to_file(key, path).await
    }
}

#[tokio::test]
async fn a_failed_upload_leaves_nothing_visible_and_the_next_pass_finishes() {
    let env = Env::new();
    let mut want = Samples::new();
    for b in 0..5 {
        env.two_hours(b, EU_A, &mut want).await;
    }
    let before = env.live().await;
    let failing = Arc::new(FailingPuts {
        inner: env.store.clone(),
        puts: AtomicUsize::new(0),
        fail_at: AtomicUsize::new(2), // the output's chunks go in, its index fails
    });
    let s = env.settings();
    let r = env
        .pass_with(failing.clone(), &s, &AlwaysOwn, SystemTime::now())
        .await;
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.blocks_written.is_empty() && r.inputs_marked.is_empty());
    assert_eq!(env.metrics.pass_failures.get(), 1);
    let listing = blocks::list_blocks(&*env.store).await.unwrap();
    assert_eq!(listing.len(), 5, "the failed output is removed again");
    assert!(listing.values().all(|d| d.has_meta && !d.has_deletion_mark));
    assert_eq!(ranges(&env.live().await), ranges(&before));

    failing.fail_at.store(0, Ordering::SeqCst);
    let r = env
        .pass_with(failing, &s, &AlwaysOwn, SystemTime::now())
        .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.blocks_written.len(), r.inputs_marked.len()), (1, 4));
    let live = env.live().await;
    assert_eq!(ranges(&live), vec![(0, 8), (8, 10)]);
    assert_eq!(env.samples_of(&live).await, want);
}

/// Grants the first `grants` acquisitions, refuses every later one.
struct Grants {
    left: AtomicUsize,
}

#[async_trait]
impl StreamGuard for Grants {
    async fn acquire(&self, _: &StreamKey) -> bool {
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
    async fn release(&self, _: &StreamKey) {}
}

#[tokio::test]
async fn inputs_left_unmarked_by_a_lost_stream_are_marked_by_the_next_pass() {
    let env = Env::new();
    let mut want = Samples::new();
    let mut ids = Vec::new();
    for b in 0..5 {
        ids.push(env.two_hours(b, EU_A, &mut want).await);
    }
    let s = env.settings();
    // Granted at the stream's start and before the upload; lost before marking the inputs,
    // which is where a kill between the two would leave the bucket too.
    let guard = Grants {
        left: AtomicUsize::new(2),
    };
    let store: Arc<dyn ObjectStore> = env.store.clone();
    let r = env.pass_with(store, &s, &guard, SystemTime::now()).await;
    assert_eq!(r.blocks_written.len(), 1);
    assert!(r.inputs_marked.is_empty());
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert!(
        r.blocks_written.is_empty(),
        "the inputs are hidden, not compacted again"
    );
    let mut dups = r.duplicates_marked.clone();
    dups.sort();
    assert_eq!(dups, ids[..4].to_vec());
    assert_eq!(env.metrics.marked("duplicate"), 4);
    let live = env.live().await;
    assert_eq!(ranges(&live), vec![(0, 8), (8, 10)]);
    assert_eq!(env.samples_of(&live).await, want);
}

#[tokio::test]
async fn cleanup_only_pass_does_not_compact() {
    let env = Env::new();
    let mut w = Samples::new();
    for b in 0..5 {
        env.two_hours(b, EU_A, &mut w).await;
    }
    let mut s = env.settings();
    s.retention.raw_ms = 86_400_000;
    let store: Arc<dyn ObjectStore> = env.store.clone();
    let r = run_cleanup(store, &s, None, &|_| {}, SystemTime::now())
        .await
        .unwrap();
    assert!(r.blocks_written.is_empty());
    assert_eq!(r.retention_marked.len(), 5);
}

#[test]
fn the_pass_future_is_send() {
    fn send<T: Send>(_: T) {}
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    let s = CompactorSettings::new(PlannerConfig::default(), "/nonexistent".into());
    send(run_pass(
        store,
        &s,
        &AlwaysOwn,
        None,
        &|_| {},
        SystemTime::now(),
    ));
}

#[tokio::test]
async fn plans_over_the_memory_budget_mark_their_largest_input() {
    let env = Env::new();
    let mut w = Samples::new();
    for b in 0..5 {
        env.two_hours(b, EU_A, &mut w).await;
    }
    let mut s = env.settings();
    s.memory_budget_bytes = 1;
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.blocks_written.is_empty() && r.inputs_marked.is_empty());
    assert!(!r.no_compact_marked.is_empty());
    for m in &r.no_compact_marked {
        assert_eq!(m.reason, "memory-budget");
        assert!(m.details.contains("budget"), "{}", m.details);
    }
    assert_eq!(
        env.metrics.marked("memory-budget"),
        r.no_compact_marked.len() as u64
    );
    assert_eq!(
        env.metrics.bytes_read.get(),
        0,
        "refused before downloading"
    );
}

#[tokio::test]
async fn a_killed_pass_leaves_scratch_that_the_next_pass_removes() {
    let env = Env::new();
    let left = env.scratch.path().join(format!("pass-{}", Ulid::new()));
    std::fs::create_dir_all(left.join("01ABC/chunks")).unwrap();
    std::fs::write(left.join(".lock"), b"").unwrap();
    std::fs::write(left.join("01ABC/index"), b"x").unwrap();
    let other = env.scratch.path().join("not-ours");
    std::fs::create_dir_all(&other).unwrap();
    let _ = env.pass_at(&env.settings(), SystemTime::now()).await;
    let names: Vec<String> = std::fs::read_dir(env.scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["not-ours".to_string()]);
}

#[path = "downsample_tests.rs"]
mod downsample_tests;
