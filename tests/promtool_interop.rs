//! Interoperability with Prometheus 2.42's promtool (Debian `prometheus` package): blocks we
//! write are dumped by promtool with exactly our dump's text, promtool-made blocks are read by
//! us with exactly promtool's dump text, our OpenMetrics import produces byte-identical chunk
//! and index files, and bytes/sample of both are reported. Missing promtool is a failure, not a skip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata::cli::import::import_openmetrics;
use strata::storage::block::{BlockMeta, BlockReader, BlockWriter};
use strata::storage::chunkenc::XorAppender;
use strata::storage::compact::compact_blocks;
use strata::storage::model::{stale_nan, EncodedChunk, Labels, Matcher};
use strata::storage::tools::bench::{block_bytes_per_sample, synth_openmetrics, Workload};
use strata::storage::tools::{dump, ls};

fn promtool() -> PathBuf {
    for p in ["/usr/bin/promtool", "/usr/local/bin/promtool"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v promtool"])
        .output()
    {
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !s.is_empty() {
            return PathBuf::from(s);
        }
    }
    panic!("promtool not found: install the Debian `prometheus` package (apt-get install prometheus) to run the interop tests");
}

fn run(args: &[&str]) -> String {
    let out = Command::new(promtool())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running promtool {args:?}: {e}"));
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("promtool output not UTF-8: {e}"))
}

fn promtool_dump(dir: &Path) -> String {
    fs::create_dir_all(dir.join("wal")).unwrap();
    run(&["tsdb", "dump", dir.to_str().unwrap()])
}

fn strata_dump(dir: &Path, matchers: &[Matcher]) -> String {
    let mut out = Vec::new();
    dump(dir, i64::MIN, i64::MAX, matchers, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Tricky samples: special floats, jitter, a gap > 1h forcing the 64-bit dod bucket.
fn tricky_samples(seed: i64) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    let mut t = 1_700_000_000_000i64 + seed;
    let specials = [
        f64::NAN,
        stale_nan(),
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        -0.0,
        5e-324,
        1e6,
        0.00001,
    ];
    for i in 0..400i64 {
        t += 15_000 + ((i * 7919 + seed) % 15) - 7;
        if i == 200 {
            t += 3_700_000;
        }
        let v = if i % 37 == 0 {
            specials[(i / 37) as usize % specials.len()]
        } else {
            (i as f64) * 1.25 + seed as f64
        };
        out.push((t, v));
    }
    out
}

fn chunks_of(samples: &[(i64, f64)]) -> Vec<EncodedChunk> {
    samples
        .chunks(120)
        .filter_map(|part| {
            let mut a = XorAppender::new();
            for &(t, v) in part {
                a.append(t, v);
            }
            a.to_encoded()
        })
        .collect()
}

fn write_block(parent: &Path, series: &mut [(Labels, Vec<(i64, f64)>)]) -> BlockMeta {
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let symbols: Vec<String> = series
        .iter()
        .flat_map(|(l, _)| {
            l.iter()
                .flat_map(|x| [x.name.to_string(), x.value.to_string()])
                .collect::<Vec<_>>()
        })
        .collect();
    let mut w = BlockWriter::create(parent, symbols).unwrap();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    for (l, s) in series.iter() {
        mint = mint.min(s[0].0);
        maxt = maxt.max(s[s.len() - 1].0);
        w.add_series(l, &chunks_of(s)).unwrap();
    }
    let ulid = w.ulid();
    w.finish(BlockMeta::new(ulid, mint, maxt + 1)).unwrap()
}

#[test]
fn promtool_reads_strata_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut series = vec![
        (
            Labels::from_pairs([
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("job", "api"),
            ]),
            tricky_samples(0),
        ),
        (
            Labels::from_pairs([
                ("__name__", "http_requests_total"),
                ("code", "500"),
                ("job", "api"),
            ]),
            tricky_samples(3),
        ),
        (
            Labels::from_pairs([
                ("__name__", "weird"),
                ("msg", "line1\nline2 \"quoted\" back\\slash"),
            ]),
            tricky_samples(11),
        ),
        (
            Labels::from_pairs([("__name__", "up"), ("instance", "é:9090")]),
            tricky_samples(5),
        ),
    ];
    let meta = write_block(dir.path(), &mut series);
    let ours = strata_dump(dir.path(), &[]);
    let theirs = promtool_dump(dir.path());
    assert_eq!(ours.lines().count(), 1600);
    assert!(
        ours.contains(" NaN ")
            && ours.contains(" +Inf ")
            && ours.contains(" -Inf ")
            && ours.contains(" 1e+300 ")
    );
    assert!(ours.contains("msg=\"line1\\nline2 \\\"quoted\\\" back\\\\slash\""));
    assert_eq!(ours, theirs);
    // The list table agrees as well.
    let mut table = Vec::new();
    ls(dir.path(), &mut table).unwrap();
    assert_eq!(
        String::from_utf8(table).unwrap(),
        run(&["tsdb", "list", dir.path().to_str().unwrap()])
    );
    let analyze = run(&[
        "tsdb",
        "analyze",
        dir.path().to_str().unwrap(),
        &meta.ulid.to_string(),
    ]);
    assert!(analyze.contains("Series: 4"), "{analyze}");
}

fn openmetrics_input() -> String {
    let mut s =
        String::from("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    for (i, (t, v)) in tricky_samples(0).into_iter().enumerate() {
        let v = if v.is_nan() {
            "NaN".to_string()
        } else if v == f64::INFINITY {
            "+Inf".into()
        } else if v == f64::NEG_INFINITY {
            "-Inf".into()
        } else {
            format!("{v:?}")
        };
        let code = if i % 2 == 0 { "200" } else { "500" };
        s.push_str(&format!(
            "http_requests_total{{code=\"{code}\",job=\"api\"}} {v} {}.{:03}\n",
            t / 1000,
            t % 1000
        ));
    }
    s.push_str("# TYPE weird gauge\n");
    for (t, v) in tricky_samples(9).into_iter().step_by(3) {
        let v = if v.is_finite() {
            format!("{v:e}")
        } else {
            "1".into()
        };
        s.push_str(&format!(
            "weird{{msg=\"a\\nb \\\"c\\\" d\\\\e\"}} {v} {}.{:03}\n",
            t / 1000,
            t % 1000
        ));
    }
    s.push_str("# EOF\n");
    s
}

#[test]
fn strata_reads_promtool_blocks_and_import_matches_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    fs::write(&input, openmetrics_input()).unwrap();
    let theirs_dir = dir.path().join("theirs");
    run(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        input.to_str().unwrap(),
        theirs_dir.to_str().unwrap(),
    ]);
    let theirs = promtool_dump(&theirs_dir);
    assert!(theirs.lines().count() > 500);
    assert_eq!(strata_dump(&theirs_dir, &[]), theirs);
    // A matcher subset agrees with promtool's --match.
    let m = Matcher::equal("code", "500");
    let sub = run(&[
        "tsdb",
        "dump",
        "--match",
        "{code=\"500\"}",
        theirs_dir.to_str().unwrap(),
    ]);
    assert_eq!(strata_dump(&theirs_dir, &[m]), sub);

    let ours_dir = dir.path().join("ours");
    let metas =
        import_openmetrics(&mut openmetrics_input().as_bytes(), &ours_dir, 7_200_000).unwrap();
    assert_eq!(promtool_dump(&ours_dir), theirs);
    let mut theirs_metas: Vec<BlockMeta> = fs::read_dir(&theirs_dir)
        .unwrap()
        .filter_map(|e| BlockMeta::read(&e.unwrap().path()).ok())
        .collect();
    theirs_metas.sort_by_key(|m| m.min_time);
    assert_eq!(metas.len(), theirs_metas.len());
    for (o, t) in metas.iter().zip(theirs_metas.iter()) {
        assert_eq!(
            (o.min_time, o.max_time, &o.stats),
            (t.min_time, t.max_time, &t.stats)
        );
        let oc = fs::read(ours_dir.join(o.ulid.to_string()).join("chunks/000001")).unwrap();
        let tc = fs::read(theirs_dir.join(t.ulid.to_string()).join("chunks/000001")).unwrap();
        assert!(
            oc == tc,
            "chunk segment of block {} differs from promtool's",
            t.ulid
        );
        let oi = fs::read(ours_dir.join(o.ulid.to_string()).join("index")).unwrap();
        let ti = fs::read(theirs_dir.join(t.ulid.to_string()).join("index")).unwrap();
        assert!(
            oi == ti,
            "index of block {} differs from promtool's",
            t.ulid
        );
        let r = BlockReader::open(&theirs_dir.join(t.ulid.to_string())).unwrap();
        assert_eq!(r.index().version(), 2);
    }
}

#[test]
fn promtool_reads_compacted_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    fs::write(&input, openmetrics_input()).unwrap();
    let src = dir.path().join("src");
    run(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        input.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    let before = promtool_dump(&src);
    let dirs: Vec<PathBuf> = strata::storage::block::list_blocks(&src).unwrap();
    assert!(dirs.len() >= 2);
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let meta = compact_blocks(&dirs, &out).unwrap().unwrap();
    assert_eq!(meta.compaction.level, 2);
    assert_eq!(meta.compaction.parents.len(), dirs.len());
    assert_eq!(promtool_dump(&out), before);
}

#[test]
fn bytes_per_sample_versus_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = String::new();
    for kind in [
        Workload::Counter,
        Workload::Gauge,
        Workload::JitteredCounter,
    ] {
        let text = synth_openmetrics(kind, 50, 960, 1_700_006_400_000);
        let input = dir.path().join(format!("{kind:?}.om"));
        fs::write(&input, &text).unwrap();
        let theirs_dir = dir.path().join(format!("{kind:?}-promtool"));
        run(&[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            theirs_dir.to_str().unwrap(),
        ]);
        let ours_dir = dir.path().join(format!("{kind:?}-strata"));
        import_openmetrics(&mut text.as_bytes(), &ours_dir, 7_200_000).unwrap();
        let t = block_bytes_per_sample(&theirs_dir).unwrap();
        let o = block_bytes_per_sample(&ours_dir).unwrap();
        assert_eq!(o.samples, 50 * 960);
        assert_eq!(o.samples, t.samples);
        // Identical chunk encoding and cutting: identical chunk bytes.
        assert_eq!(o.chunk_bytes, t.chunk_bytes, "{kind:?}");
        assert!(
            o.index_bytes == t.index_bytes,
            "{kind:?}: our index {} != promtool's {}",
            o.index_bytes,
            t.index_bytes
        );
        report.push_str(&format!(
            "{kind:?}: strata chunks {:.3} B/sample, total {:.3}; promtool chunks {:.3}, total {:.3}\n",
            o.chunk_bps, o.total_bps, t.chunk_bps, t.total_bps
        ));
    }
    println!("{report}");
}

#[test]
fn promtool_reads_multi_segment_blocks() {
    use strata::storage::block::BlockWriterOptions;
    let dir = tempfile::tempdir().unwrap();
    let mut series: Vec<(Labels, Vec<(i64, f64)>)> = (0..30)
        .map(|i| {
            (
                Labels::from_pairs([("__name__", "seg"), ("i", &format!("{i:02}"))]),
                tricky_samples(i),
            )
        })
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let symbols: Vec<String> = series
        .iter()
        .flat_map(|(l, _)| {
            l.iter()
                .flat_map(|x| [x.name.to_string(), x.value.to_string()])
                .collect::<Vec<_>>()
        })
        .collect();
    let opts = BlockWriterOptions {
        ulid: None,
        max_segment_size: 4096,
    };
    let mut w = BlockWriter::create_with(dir.path(), symbols, opts).unwrap();
    for (l, s) in &series {
        w.add_series(l, &chunks_of(s)).unwrap();
    }
    let ulid = w.ulid();
    let meta = w
        .finish(BlockMeta::new(ulid, 1_700_000_000_000, 1_700_020_000_000))
        .unwrap();
    let segments = fs::read_dir(dir.path().join(meta.ulid.to_string()).join("chunks"))
        .unwrap()
        .count();
    assert!(segments > 5, "only {segments} segments");
    assert_eq!(strata_dump(dir.path(), &[]), promtool_dump(dir.path()));
}
