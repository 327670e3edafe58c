use super::*;
use crate::storage::store::footprint::BlockSeriesBytes;

fn replica() -> Vec<String> {
    vec!["replica".to_string()]
}

fn head(name: &str, job: &str, inst: &str, bytes: u64, samples: u64) -> SeriesFootprint {
    SeriesFootprint {
        labels: Labels::from_pairs([("__name__", name), ("job", job), ("instance", inst)]),
        bytes,
        samples,
        first: 0,
        last: (samples as i64 - 1) * 1000,
    }
}

fn block(ulid: u128, series: &[(&str, &str, Option<&str>, u64)]) -> BlockFootprint {
    BlockFootprint {
        ulid: ulid::Ulid(ulid),
        resolution: 0,
        series: series
            .iter()
            .map(|(name, inst, rep, bytes)| {
                let mut pairs = vec![
                    ("__name__", *name),
                    ("job", "app"),
                    ("instance", *inst),
                    ("cluster", "eu1"),
                ];
                if let Some(r) = rep {
                    pairs.push(("replica", r));
                }
                BlockSeriesBytes {
                    labels: Labels::from_pairs(pairs),
                    bytes: *bytes,
                    chunks: 1,
                }
            })
            .collect(),
    }
}

fn ext(node: &str) -> Labels {
    Labels::from_pairs([("cluster", "eu1"), ("replica", node)])
}

fn digest(
    node: &str,
    series: &[SeriesFootprint],
    blocks: &[BlockFootprint],
    focus: Option<&str>,
) -> Digest {
    let r = replica();
    let mut b = DigestBuilder::new(node, &r, focus);
    b.add_head(series, &ext(node));
    b.add_blocks(blocks);
    b.finish()
}

fn stat<'a>(list: &'a [CostStat], name: &str) -> &'a CostStat {
    list.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn replicas_in_two_heads_count_once_with_the_larger_bytes() {
    let a = digest(
        "a",
        &[
            head("up", "app", "x", 100, 11),
            head("up", "app", "y", 50, 11),
        ],
        &[],
        None,
    );
    let b = digest("b", &[head("up", "app", "x", 120, 21)], &[], None);
    let r = merge(&[a.clone(), b.clone()], None, 10);
    assert_eq!(r.totals.series, 2);
    assert_eq!(r.totals.head_bytes, 170);
    let up = stat(&r.series_count_by_metric_name, "up");
    assert_eq!(up.series, 2);
    // Replica b's copy of x has more bytes, so its rate (1/s) is the one counted.
    assert!((up.samples_per_second - 2.0).abs() < 1e-9, "{up:?}");
    // The same answer whichever node merges, and a node answering twice counts once.
    assert_eq!(merge(&[b.clone(), a.clone(), b], None, 10), r);
}

#[test]
fn ha_blocks_count_one_replica_and_deduplicated_blocks_add_up() {
    let store = digest(
        "s",
        &[],
        &[
            block(
                1,
                &[("up", "x", Some("a"), 300), ("up", "y", Some("a"), 10)],
            ),
            block(2, &[("up", "x", Some("b"), 280)]),
            block(3, &[("up", "x", Some("a"), 5)]),
            block(4, &[("up", "x", None, 1000)]),
        ],
        None,
    );
    let r = merge(&[store], None, 10);
    assert_eq!(r.totals.series, 2);
    assert_eq!(r.totals.bucket_series, 2);
    assert_eq!(r.totals.blocks, 4);
    // x: 1000 without replica + max(a: 305, b: 280); y: 10.
    assert_eq!(r.totals.bucket_bytes, 1000 + 305 + 10);
    assert_eq!(r.series_count_by_job[0].bucket_bytes, 1315);
}

#[test]
fn a_replicas_blocks_on_two_store_shards_add_up() {
    let s1 = digest("s1", &[], &[block(1, &[("up", "x", Some("a"), 300)])], None);
    let s2 = digest("s2", &[], &[block(2, &[("up", "x", Some("a"), 200)])], None);
    let s3 = digest("s3", &[], &[block(3, &[("up", "x", Some("b"), 400)])], None);
    let r = merge(&[s1, s2, s3], None, 10);
    assert_eq!(r.totals.series, 1);
    assert_eq!(r.totals.bucket_bytes, 500);
}

#[test]
fn head_and_bucket_copies_of_a_series_are_one_series() {
    let scraper = digest("a", &[head("up", "app", "x", 100, 2)], &[], None);
    let store = digest("s", &[], &[block(1, &[("up", "x", Some("a"), 300)])], None);
    let r = merge(&[scraper, store], None, 10);
    assert_eq!(r.totals.series, 1);
    assert_eq!((r.totals.head_series, r.totals.bucket_series), (1, 1));
    let up = stat(&r.series_count_by_metric_name, "up");
    assert_eq!((up.head_bytes, up.bucket_bytes), (100, 300));
    // The replica label is no label of the series; the external cluster label is.
    let names: Vec<&str> = r
        .series_count_by_label_name
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert!(!names.contains(&"replica"), "{names:?}");
    assert!(names.contains(&"cluster"), "{names:?}");
}

#[test]
fn labels_focus_values_and_limit() {
    let a = digest(
        "a",
        &[
            head("up", "app", "x", 1, 1),
            head("up", "app", "y", 1, 1),
            head("up", "db", "x", 1, 1),
            head("mem", "db", "x", 1, 1),
        ],
        &[],
        Some("instance"),
    );
    let b = digest("b", &[head("up", "app", "z", 1, 1)], &[], Some("instance"));
    let r = merge(&[a.clone(), b.clone()], Some("instance"), 10);
    assert_eq!(r.totals.series, 5);
    assert_eq!(r.totals.metrics, 2);
    let inst = r
        .series_count_by_label_name
        .iter()
        .find(|l| l.name == "instance")
        .unwrap();
    assert_eq!((inst.series, inst.values), (5, 3));
    let focus = r.series_count_by_focus_label_value.as_ref().unwrap();
    assert_eq!(focus[0].name, "x");
    assert_eq!(focus[0].series, 3);
    assert_eq!(r.series_count_by_job[0].name, "app");
    assert_eq!(r.series_count_by_job[0].series, 3);

    let one = merge(&[a, b], None, 1);
    assert_eq!(one.series_count_by_metric_name.len(), 1);
    assert_eq!(one.series_count_by_metric_name[0].name, "up");
    assert_eq!(one.series_count_by_label_name.len(), 1);
    assert_eq!(one.totals.series, 5, "totals are over everything");
    assert!(one.series_count_by_focus_label_value.is_none());
}

#[test]
fn digests_survive_the_wire() {
    let d = digest(
        "a",
        &[head("up", "app", "x", 100, 11)],
        &[block(1, &[("up", "x", Some("a"), 300)])],
        Some("instance"),
    );
    let json = serde_json::to_string(&d).unwrap();
    let back: Digest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn rates_need_two_samples_over_time() {
    let mut f = head("up", "app", "x", 1, 1);
    assert_eq!(samples_per_second(&f), 0.0);
    f.samples = 31;
    f.last = 60_000;
    assert!((samples_per_second(&f) - 0.5).abs() < 1e-9);
}

#[test]
fn a_block_served_by_two_nodes_is_named() {
    let s1 = digest("s1", &[], &[block(1, &[("up", "x", None, 3)])], None);
    let s2 = digest("s2", &[], &[block(1, &[("up", "x", None, 3)])], None);
    let s3 = digest("s3", &[], &[block(2, &[("up", "x", None, 3)])], None);
    let w = doubly_served_blocks(&[s1, s2, s3]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("s1 and s2"), "{w:?}");
}
