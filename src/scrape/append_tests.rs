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
    };
    let mut app = db.appender();
    let stats = cache.append(&mut app, &ctx, body.as_bytes(), Format::PrometheusText, t)?;
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
    assert_eq!((s.added, s.duplicates), (1, 1));
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
