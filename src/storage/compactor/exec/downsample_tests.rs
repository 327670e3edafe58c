//! The downsampling step of a pass over the in-memory bucket: a 2d block gets its 5m copy
//! once, a corrupt one gets a no-downsample mark while the pass goes on, marked blocks are
//! left alone, retention applies to the 5m copy, and the downsample-only pass.

use super::*;
use crate::storage::bucket::blocks::{NoCompactReason, NO_DOWNSAMPLE_MARK_FILE};
use crate::storage::downsample::RES_5M;

const DAY_MS: i64 = 24 * HOUR_MS;
/// Ten days after the epoch, so every sample is well after 0.
const BASE: i64 = 10 * DAY_MS;

fn ds_settings(env: &Env) -> CompactorSettings {
    let mut s = env.settings();
    s.downsample = true;
    s
}

/// A 2d block `[BASE + k·2d, BASE + (k+1)·2d)` of three series, one sample every 5 minutes.
async fn two_days(env: &Env, k: i64) -> Ulid {
    let (mint, maxt) = (BASE + k * 2 * DAY_MS, BASE + (k + 1) * 2 * DAY_MS);
    let data: Vec<(Labels, Vec<Sample>)> = (0..3)
        .map(|i| (series(i), samples(i, mint, maxt, 5 * MIN_MS, |_| false)))
        .collect();
    env.block(mint, maxt, EU_A, &data).await
}

fn resolution(m: &BlockMeta) -> i64 {
    m.thanos.as_ref().map_or(0, |t| t.downsample.resolution)
}

#[tokio::test]
async fn a_two_day_block_is_downsampled_once_and_a_corrupt_one_is_marked() {
    let env = Env::new();
    let good = two_days(&env, 0).await;
    let bad = two_days(&env, 1).await;
    env.store
        .put_bytes(
            &blocks::object_key(bad, "index"),
            Bytes::from_static(b"not an index"),
        )
        .await
        .unwrap();
    let s = ds_settings(&env);
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.downsampled.len(), 1);
    assert_eq!(r.downsampled[0].source, good);
    assert_eq!(r.downsampled[0].resolution, RES_5M);
    assert_eq!(r.downsampled[0].num_series, 3);
    // 2d of 5m windows, one sample each, three series.
    assert_eq!(r.downsampled[0].num_samples, 3 * 576);
    assert_eq!(r.no_downsample_marked.len(), 1);
    assert_eq!(r.no_downsample_marked[0].ulid, bad);
    assert_eq!(r.no_downsample_marked[0].reason, "corrupt-block");
    let mark = blocks::read_no_downsample_mark(&*env.store, bad)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mark.version, 1);
    assert_eq!(mark.reason.as_str(), "corrupt-block");
    assert_eq!(env.metrics.downsamples.get(), 1);
    assert_eq!(env.metrics.downsample_failures.get(), 1);

    let live = env.live().await;
    let five: Vec<&BlockMeta> = live.iter().filter(|m| resolution(m) == RES_5M).collect();
    assert_eq!(five.len(), 1);
    let g = live.iter().find(|m| m.ulid == good).unwrap();
    assert_eq!(
        (five[0].min_time, five[0].max_time),
        (g.min_time, g.max_time)
    );
    assert_eq!(five[0].compaction.sources, g.compaction.sources);
    assert_eq!(five[0].thanos.as_ref().unwrap().source, "compactor");
    // The inputs stay: raw data has its own retention.
    assert!(live.iter().any(|m| m.ulid == good));
    assert_eq!(env.marked(good).await, (false, None));

    // The next pass finds the sources covered and the bad block marked: nothing to do.
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.downsampled.is_empty() && r.no_downsample_marked.is_empty());
    assert_eq!(env.metrics.downsample_failures.get(), 1);
}

#[tokio::test]
async fn marks_by_hand_and_the_switch_are_honoured() {
    let env = Env::new();
    let a = two_days(&env, 0).await;
    let b = two_days(&env, 1).await;
    assert!(blocks::write_no_downsample_mark(
        &*env.store,
        a,
        NoCompactReason::Manual,
        "keep raw only",
        SystemTime::now()
    )
    .await
    .unwrap());
    // Off: nothing is downsampled.
    let r = env.pass_at(&env.settings(), SystemTime::now()).await;
    assert!(r.downsampled.is_empty());
    // The listing sees the mark.
    let dirs = blocks::list_blocks(&*env.store).await.unwrap();
    assert!(dirs[&a].has_no_downsample_mark);
    assert!(env
        .store
        .exists(&blocks::object_key(a, NO_DOWNSAMPLE_MARK_FILE))
        .await
        .unwrap());
    // The downsample-only pass, whatever the switch says: only the unmarked block.
    let store: Arc<dyn ObjectStore> = env.store.clone();
    let r = run_downsample(
        store,
        &env.settings(),
        &AlwaysOwn,
        None,
        &|_| {},
        SystemTime::now(),
    )
    .await
    .unwrap();
    assert_eq!(r.downsampled.len(), 1);
    assert_eq!(r.downsampled[0].source, b);
    assert!(r.retention_marked.is_empty() && r.inputs_marked.is_empty());
}

#[tokio::test]
async fn retention_applies_to_the_5m_copy_and_no_copy_is_made_past_it() {
    let env = Env::new();
    two_days(&env, 0).await;
    let mut s = ds_settings(&env);
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert_eq!(r.downsampled.len(), 1);
    let copy = r.downsampled[0].ulid;
    // 5m retention of one day: the 5m copy (data from 1970) is marked, the raw block kept
    // (raw retention forever), and no new copy is made in this pass or the next.
    s.retention.five_m_ms = DAY_MS;
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert_eq!(r.retention_marked, vec![copy]);
    assert!(r.downsampled.is_empty());
    let r = env.pass_at(&s, SystemTime::now()).await;
    assert!(r.downsampled.is_empty(), "{:?}", r.downsampled);
    assert!(env.live().await.iter().all(|m| resolution(m) == 0));
}
