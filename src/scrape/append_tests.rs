use super::*;
use crate::config::Config;
use crate::storage::chunkenc::decode_chunk;
use crate::storage::db::{Db, DbOptions};
use crate::storage::model::{is_stale_nan, Matcher, Queryable, SelectHints};

fn cfg(extra: &str) -> ScrapeConfig {
    let yaml = format!(
        "scrape_configs:\n  - job_name: j\n{extra}    static_configs: [{{targets: ['h:1']}}]\n"
    );
    Config::from_yaml_str(&yaml, "t.yml")
        .expect("config")
        .scrape_configs[0]
        .clone()
}

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DbOptions {
        wal_fsync: false,
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts).expect("open db");
    (dir, db)
}

fn target_labels() -> Labels {
    Labels::from_pairs([("job", "j"), ("instance", "h:1")])
}

fn scrape(
    db: &Db,
    cache: &mut ScrapeCache,
    c: &ScrapeConfig,
    body: &str,
    t: i64,
) -> Result<AppendStats> {
    let tl = target_labels();
    let ctx = AppendCtx {
        cfg: c,
        target_labels: &tl,
        lint_dropped: None,
    };
    let mut app = db.appender();
    let stats = cache
        .append(&mut app, &ctx, body.as_bytes(), Format::PrometheusText, t)
        .map_err(|f| *f.error)?;
    app.commit().expect("commit");
    Ok(stats)
}

/// Every (labels, samples) with this metric name.
fn read(db: &Db, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let m = [Matcher::equal(METRIC_NAME, name)];
    let series = db
        .select(&m, i64::MIN, i64::MAX, &SelectHints::default())
        .expect("select");
    series
        .into_iter()
        .map(|s| {
            let samples = s
                .chunks
                .iter()
                .flat_map(|c| decode_chunk(c).expect("chunk"))
                .map(|x| (x.t, x.v))
                .collect();
            (s.labels, samples)
        })
        .collect()
}

#[test]
fn target_labels_win_and_conflicts_become_exported() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let c = cfg("");
    scrape(
        &db,
        &mut cache,
        &c,
        "m{job=\"inner\",exported_job=\"x\"} 1\n",
        1000,
    )
    .expect("scrape");
    let got = read(&db, "m");
    assert_eq!(got.len(), 1);
    let l = &got[0].0;
    assert_eq!(l.get("job"), Some("j"));
    assert_eq!(l.get("exported_exported_job"), Some("inner"), "{l}");
    assert_eq!(l.get("exported_job"), Some("x"));
}

#[test]
fn honor_labels_keeps_exposed_values() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let c = cfg("    honor_labels: true\n");
    scrape(&db, &mut cache, &c, "m{job=\"inner\"} 1\n", 1000).expect("scrape");
    let l = &read(&db, "m")[0].0;
    assert_eq!(l.get("job"), Some("inner"));
    assert_eq!(l.get("instance"), Some("h:1"));
}

#[test]
fn vanished_series_get_a_stale_marker_once() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let c = cfg("");
    scrape(&db, &mut cache, &c, "a 1\nb 2\n", 1000).expect("scrape 1");
    scrape(&db, &mut cache, &c, "a 1\n", 2000).expect("scrape 2");
    scrape(&db, &mut cache, &c, "a 1\n", 3000).expect("scrape 3");
    let b = &read(&db, "b")[0].1;
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(b[1].0, 2000);
    assert!(is_stale_nan(b[1].1));
    assert_eq!(read(&db, "a")[0].1.len(), 3);
}

#[test]
fn failed_scrape_makes_everything_stale_and_explicit_timestamps_are_not_tracked() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let c = cfg("");
    scrape(&db, &mut cache, &c, "a 1\nts_metric 5 500\n", 1000).expect("scrape");
    let mut app = db.appender();
    cache.append_failed(&mut app, 2000).expect("failed append");
    app.commit().expect("commit");
    let a = &read(&db, "a")[0].1;
    assert!(is_stale_nan(a[1].1));
    let ts = &read(&db, "ts_metric")[0].1;
    assert_eq!(
        ts,
        &vec![(500, 5.0)],
        "explicit timestamps are honored and never marked stale"
    );
}

#[test]
fn metric_relabeling_drops_and_counts() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let c = cfg("    metric_relabel_configs: [{source_labels: [__name__], regex: 'drop_.*', action: drop}]\n");
    let s = scrape(&db, &mut cache, &c, "drop_me 1\nkeep 2\n", 1000).expect("scrape");
    assert_eq!((s.total, s.added, s.series_added), (2, 1, 1));
    let s = scrape(&db, &mut cache, &c, "drop_me 1\nkeep 2\n", 2000).expect("scrape");
    assert_eq!(
        (s.total, s.added, s.series_added),
        (2, 1, 0),
        "cached on the second scrape"
    );
    assert!(read(&db, "drop_me").is_empty());
}

#[test]
fn limits_fail_the_scrape_with_clear_errors() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let c = cfg("    sample_limit: 2\n");
    let e =
        scrape(&db, &mut cache, &c, "a 1\nb 1\nc 1\n", 1000).expect_err("over the sample limit");
    assert!(e.to_string().contains("sample limit exceeded"), "{e}");
    let c = cfg("    label_limit: 3\n");
    let e = scrape(&db, &mut cache, &c, "x{a=\"1\",b=\"2\"} 1\n", 1000)
        .expect_err("over the label limit");
    assert!(e.to_string().contains("label_limit exceeded"), "{e}");
    let e = scrape(&db, &mut cache, &c, "x{a=\"1\" 1\n", 1000).expect_err("malformed");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn duplicate_series_in_one_scrape_keep_the_first_value_like_prometheus() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let s = scrape(&db, &mut cache, &cfg(""), "m 1\nm 2\n", 1000)
        .expect("duplicates are not a failure");
    // Prometheus counts the refused duplicate as kept after relabeling, too.
    assert_eq!((s.total, s.added, s.duplicates), (2, 2, 1));
    assert_eq!(read(&db, "m")[0].1, vec![(1000, 1.0)]);
}

#[test]
fn report_series_carry_the_target_labels() {
    let c = cfg("");
    let sg = crate::scrape::target::static_groups(&c);
    let (t, _) = crate::scrape::target::targets_from_group(&sg[0], &c);
    let stats = AppendStats {
        total: 3,
        added: 2,
        series_added: 1,
        ..AppendStats::default()
    };
    let r = report_samples(&t[0], &stats, true, 0.5);
    let names: Vec<&str> = r.iter().filter_map(|(l, _)| l.metric_name()).collect();
    assert_eq!(
        names,
        [
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added"
        ]
    );
    assert!(r
        .iter()
        .all(|(l, _)| l.get("job") == Some("j") && l.get("instance") == Some("h:1")));
    assert_eq!(r[0].1, 1.0);
    assert_eq!(r[3].1, 2.0);
}

/// Every series of the Db with its samples (values as bits, so NaNs compare).
fn dump(db: &Db) -> Vec<(String, Vec<(i64, u64)>)> {
    let m = [Matcher::new(
        crate::storage::model::MatchOp::RegexMatch,
        METRIC_NAME,
        ".+",
    )
    .expect("matcher")];
    let series = db
        .select(&m, i64::MIN, i64::MAX, &SelectHints::default())
        .expect("select");
    series
        .into_iter()
        .map(|s| {
            let samples = s
                .chunks
                .iter()
                .flat_map(|c| decode_chunk(c).expect("chunk"))
                .map(|x| (x.t, x.v.to_bits()))
                .collect();
            (s.labels.to_string(), samples)
        })
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    /// The in-order fast path stores exactly what the plain lookup path stores, across
    /// reorderings, insertions, removals, duplicates, relabel drops, limits and failures.
    #[test]
    fn fast_path_stores_what_the_lookup_path_stores(
        scrapes in proptest::collection::vec(
            proptest::collection::vec(0usize..14, 0..16), 1..14),
        sample_limit in proptest::prelude::prop_oneof![proptest::strategy::Just(0u64), 5u64..12],
    ) {
        const LINES: [&str; 14] = [
            "a 1\n", "a 2\n", "b{x=\"1\"} 3\n", "b{x=\"1\",} 4\n", "b{x=\"2\"}\t5\n",
            "c{x=\"y\\\"z\"} 6\n", "drop_me{x=\"1\"} 7\n", "d{x=\"multi\nline\"} 8\n",
            "e 9 1000\n", "f{x=\"1\"} NaN\n", "g{x=\"1\"}  10\n", "# HELP a help\n",
            "h{x=\"1\"} bad\n", "i{x=\"1\"} 11\n",
        ];
        let c = cfg(&format!(
            "    sample_limit: {sample_limit}\n    metric_relabel_configs: [{{source_labels: [__name__], regex: 'drop_.*', action: drop}}]\n"
        ));
        let ((_d1, fast_db), (_d2, slow_db)) = (db(), db());
        let (mut fast, mut slow) = (ScrapeCache::default(), ScrapeCache::default());
        for (i, lines) in scrapes.iter().enumerate() {
            let body: String = lines.iter().map(|&l| LINES[l]).collect();
            let t = 10_000 + i as i64 * 1000;
            // Forgetting the order before every scrape leaves only the lookup path.
            slow.order.clear();
            let mut stats = Vec::new();
            for (db, cache) in [(&fast_db, &mut fast), (&slow_db, &mut slow)] {
                let r = scrape(db, cache, &c, &body, t);
                if r.is_err() {
                    let mut app = db.appender();
                    cache.append_failed(&mut app, t).expect("stale markers");
                    app.commit().expect("commit");
                }
                stats.push(r.map_err(|e| e.to_string()));
            }
            proptest::prop_assert_eq!(&stats[0], &stats[1], "scrape {} {:?}", i, body);
        }
        proptest::prop_assert_eq!(dump(&fast_db), dump(&slow_db));
    }
}

#[test]
fn reordered_and_shrinking_bodies_keep_every_value() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let c = cfg("");
    scrape(&db, &mut cache, &c, "a 1\nb 2\nc 3\n", 1000).expect("scrape 1");
    scrape(&db, &mut cache, &c, "c 4\nb 5\na 6\n", 2000).expect("scrape 2");
    scrape(&db, &mut cache, &c, "c 7\nz 8\na 9\n", 3000).expect("scrape 3");
    scrape(&db, &mut cache, &c, "c 10\nz 11\na 12\n", 4000).expect("scrape 4");
    let vals = |n: &str| -> Vec<f64> { read(&db, n)[0].1.iter().map(|x| x.1).collect() };
    assert_eq!(vals("a"), [1.0, 6.0, 9.0, 12.0]);
    assert_eq!(vals("c"), [3.0, 4.0, 7.0, 10.0]);
    assert_eq!(vals("z"), [8.0, 11.0]);
    let b = vals("b");
    assert_eq!(b[..2], [2.0, 5.0]);
    assert!(is_stale_nan(b[2]));
}

#[test]
fn churning_series_do_not_switch_off_the_in_order_path() {
    let (_d, db) = db();
    let mut cache = ScrapeCache::default();
    let c = cfg("");
    for i in 0..(CACHE_KEEP_ITERS as i64 + 5) {
        let body = format!("a 1\nb 2\nonce{{i=\"{i}\"}} 3\n");
        scrape(&db, &mut cache, &c, &body, 1000 * (i + 1)).expect("scrape");
        // Entries of long-gone series expire every scrape from here on; the order written
        // by this scrape still stands.
        assert_eq!(cache.order.lines.len(), 3, "scrape {i}");
    }
    assert_eq!(read(&db, "a")[0].1.len(), CACHE_KEEP_ITERS as usize + 5);
}
