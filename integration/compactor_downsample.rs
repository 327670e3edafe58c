//! Downsampling as a user runs it: 56 hours of promtool-made 2h blocks uploaded to a real S3
//! server (s3s-fs), compacted with downsampling off, downsampled once by `strata tools bucket
//! downsample`, then compacted with downsampling on until nothing changes. The 5m block must
//! cover the 2d block (same range and sources), `tools bucket ls`/`inspect` must show the
//! resolution, and the 5m aggregates of some series must equal a reference computed here from
//! the raw samples the test generated (count, sum, min, max per 5m window; the counter
//! aggregate at each stamp equals the last raw value, the counter having no reset).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use strata::storage::block::BlockReader;
use strata::storage::downsample::{AggrChunk, AggrType};
use strata_testing::S3Server;

use crate::compactor::{bucket_blocks, visible_copy, write_config};
use crate::shipping_cli::{promtool_create_blocks, strata};

const HOUR_S: i64 = 3600;
const RES_MS: i64 = 300_000;
const STEP_S: i64 = 60;
const HOURS: i64 = 56;

/// First sample time (s): on a 2d boundary, so the first 48 hours make one 2d block.
pub(crate) fn start_s() -> i64 {
    1_700_000_000i64 / (48 * HOUR_S) * (48 * HOUR_S)
}

/// Whether sample `i` is left out (gaps, so windows hold different counts).
fn hole(i: i64) -> bool {
    i % 7 == 3 || (600..640).contains(&i)
}

fn gauge(job: usize, i: i64) -> f64 {
    ((i * (job as i64 + 3)) % 17) as f64 * 0.25 - 1.0
}

fn counter(job: usize, i: i64) -> f64 {
    (i * (job as i64 + 2)) as f64
}

/// The raw samples of the test, by (metric, job): (t ms, v).
pub(crate) fn raw() -> BTreeMap<(String, String), Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for (j, job) in ["a", "b", "c"].iter().enumerate() {
        for (name, f) in [
            ("ds_gauge", gauge as fn(usize, i64) -> f64),
            ("ds_requests_total", counter),
        ] {
            let v: Vec<(i64, f64)> = (0..HOURS * 3600 / STEP_S)
                .filter(|i| !hole(*i))
                .map(|i| ((start_s() + i * STEP_S) * 1000, f(j, i)))
                .collect();
            out.insert((name.to_string(), job.to_string()), v);
        }
    }
    out
}

pub(crate) fn openmetrics(raw: &BTreeMap<(String, String), Vec<(i64, f64)>>) -> String {
    let mut om = String::new();
    for name in ["ds_gauge", "ds_requests"] {
        let kind = if name == "ds_gauge" {
            "gauge"
        } else {
            "counter"
        };
        let _ = writeln!(om, "# TYPE {name} {kind}");
        for ((metric, job), samples) in raw {
            if !metric.starts_with(name) {
                continue;
            }
            for (t, v) in samples {
                let _ = writeln!(om, "{metric}{{job=\"{job}\"}} {v} {}", t / 1000);
            }
        }
    }
    om.push_str("# EOF\n");
    om
}

/// The value of a summary row of `tools bucket compact|downsample`.
fn summary(out: &str, row: &str) -> u64 {
    out.lines()
        .find(|l| l.starts_with(row) && l[row.len()..].starts_with("  "))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no row {row:?} in:\n{out}"))
}

fn resolution(m: &Value) -> i64 {
    m["thanos"]["downsample"]["resolution"]
        .as_i64()
        .unwrap_or(0)
}

/// Per 5m window start: (count, sum, min, max) of the raw samples in `[mint, maxt)`.
fn reference(samples: &[(i64, f64)], mint: i64, maxt: i64) -> BTreeMap<i64, (f64, f64, f64, f64)> {
    let mut out: BTreeMap<i64, (f64, f64, f64, f64)> = BTreeMap::new();
    for &(t, v) in samples.iter().filter(|(t, _)| *t >= mint && *t < maxt) {
        let w = out.entry(t - t.rem_euclid(RES_MS)).or_insert((
            0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ));
        w.0 += 1.0;
        w.1 += v;
        w.2 = w.2.min(v);
        w.3 = w.3.max(v);
    }
    out
}

#[test]
fn two_days_of_promtool_blocks_downsample_to_5m_matching_the_raw_samples() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let raw = raw();
    let prom = promtool_create_blocks(tmp.path(), &openmetrics(&raw));
    let off = write_config(
        tmp.path(),
        &format!("  downsample: false\n{}", s3.bucket_yaml()),
    );
    let (ok, out, err) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &off);
    assert!(ok, "upload failed: {out}{err}");

    // Compaction alone: a 2d block appears, no 5m block.
    let (ok, out, err) = strata(&["tools", "bucket", "compact"], &off);
    assert!(ok, "compact failed: {out}\n{err}");
    assert_eq!(summary(&out, "blocks downsampled"), 0, "{out}");
    let blocks = bucket_blocks(&s3.bucket_dir());
    let two_day: Vec<&(String, Value, bool)> = blocks
        .iter()
        .filter(|(_, m, marked)| {
            !marked
                && m["maxTime"].as_i64().unwrap() - m["minTime"].as_i64().unwrap()
                    >= 40 * HOUR_S * 1000
        })
        .collect();
    assert_eq!(two_day.len(), 1, "one 2d block: {blocks:?}");
    let (raw_ulid, raw_meta, _) = two_day[0].clone();
    assert_eq!(resolution(&raw_meta), 0);
    assert!(blocks.iter().all(|(_, m, _)| resolution(m) == 0));

    // The downsample tool: one block, one progress line for it.
    let (ok, out, err) = strata(&["tools", "bucket", "downsample"], &off);
    assert!(ok, "downsample failed: {out}\n{err}");
    assert!(
        err.contains(&format!("downsampling {raw_ulid} to 5m")),
        "progress per block on stderr: {err}"
    );
    assert_eq!(summary(&out, "blocks downsampled"), 1, "{out}");
    assert_eq!(summary(&out, "blocks written"), 0, "{out}");

    // Compaction with downsampling on, to a fixed point: nothing more to downsample (the 2d
    // block's sources are covered), nothing to compact.
    let on = write_config(tmp.path(), &s3.bucket_yaml());
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes <= 4, "no fixed point after 3 passes");
        let (ok, out, err) = strata(&["tools", "bucket", "compact"], &on);
        assert!(ok, "compact failed: {out}\n{err}");
        if summary(&out, "blocks written") == 0 && summary(&out, "blocks downsampled") == 0 {
            break;
        }
    }
    assert_eq!(passes, 1, "the downsample tool left nothing to do");

    let blocks = bucket_blocks(&s3.bucket_dir());
    let five: Vec<&(String, Value, bool)> = blocks
        .iter()
        .filter(|(_, m, marked)| !marked && resolution(m) == RES_MS)
        .collect();
    assert_eq!(five.len(), 1, "one 5m block: {blocks:?}");
    let (five_ulid, five_meta, _) = five[0].clone();
    assert_ne!(five_ulid, raw_ulid);
    for key in ["minTime", "maxTime"] {
        assert_eq!(five_meta[key], raw_meta[key], "{key}");
    }
    assert_eq!(
        five_meta["compaction"]["sources"], raw_meta["compaction"]["sources"],
        "the 5m block carries the 2d block's sources"
    );
    assert_eq!(
        five_meta["compaction"]["level"],
        raw_meta["compaction"]["level"]
    );
    assert_eq!(five_meta["thanos"]["source"], "compactor");
    assert_eq!(five_meta["thanos"]["labels"], raw_meta["thanos"]["labels"]);
    assert_eq!(five_meta["stats"]["numSeries"], 6);
    // The raw block is still there: each resolution has its own retention.
    assert!(blocks
        .iter()
        .any(|(u, _, marked)| *u == raw_ulid && !marked));

    // ls and inspect show the resolutions.
    let (ok, out, err) = strata(&["tools", "bucket", "ls"], &on);
    assert!(ok, "ls failed: {err}");
    let row = |u: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(u))
            .unwrap_or_else(|| panic!("no row for {u} in:\n{out}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert!(row(&five_ulid).contains(&"5m".to_string()), "{out}");
    assert!(row(&raw_ulid).contains(&"0s".to_string()), "{out}");
    let (ok, out, err) = strata(&["tools", "bucket", "inspect", &five_ulid], &on);
    assert!(ok, "inspect failed: {err}");
    assert!(out.contains("\"resolution\": 300000"), "{out}");
    assert!(out.contains("\"source\": \"compactor\""), "{out}");

    // The aggregates against the reference.
    let copy = tmp.path().join("five");
    visible_copy(&s3.bucket_dir(), &copy);
    let reader = BlockReader::open(&copy.join(&five_ulid)).unwrap();
    let (mint, maxt) = (
        five_meta["minTime"].as_i64().unwrap(),
        five_meta["maxTime"].as_i64().unwrap(),
    );
    let mut windows_total = 0u64;
    let mut checked = 0;
    for id in reader.series_refs(&[]).unwrap() {
        let s = reader
            .load_series(id, i64::MIN, i64::MAX, false)
            .unwrap()
            .unwrap();
        let key = (
            s.labels.metric_name().unwrap().to_string(),
            s.labels.get("job").unwrap().to_string(),
        );
        let want = reference(&raw[&key], mint, maxt);
        let mut got: BTreeMap<i64, (f64, f64, f64, f64)> = BTreeMap::new();
        let mut counter: Vec<(i64, f64)> = Vec::new();
        for c in &s.chunks {
            assert_eq!(c.encoding, 0xff, "{key:?}: an AggrChunk");
            let a = AggrChunk::from_bytes(c.data.clone());
            let part = |t: AggrType| -> Vec<(i64, f64)> {
                a.samples(t).unwrap().iter().map(|x| (x.t, x.v)).collect()
            };
            let (cnt, sum, min, max) = (
                part(AggrType::Count),
                part(AggrType::Sum),
                part(AggrType::Min),
                part(AggrType::Max),
            );
            assert!(cnt.len() == sum.len() && sum.len() == min.len() && min.len() == max.len());
            assert_eq!(c.min_time, cnt[0].0, "index chunk meta: first stamp");
            assert_eq!(
                c.max_time,
                cnt[cnt.len() - 1].0,
                "index chunk meta: last stamp"
            );
            for i in 0..cnt.len() {
                let t = cnt[i].0;
                assert!(
                    t >= mint && t < maxt,
                    "{key:?}: stamp {t} outside the block"
                );
                for other in [&sum, &min, &max] {
                    assert_eq!(other[i].0, t);
                }
                let w = t - t.rem_euclid(RES_MS);
                let prev = got.insert(w, (cnt[i].1, sum[i].1, min[i].1, max[i].1));
                assert!(prev.is_none(), "{key:?}: window {w} twice");
            }
            windows_total += cnt.len() as u64;
            counter.extend(part(AggrType::Counter));
        }
        assert_eq!(
            got, want,
            "{key:?}: 5m aggregates differ from the raw reference"
        );
        if key.0 == "ds_requests_total" {
            // No reset: at every stamp the counter is the last raw value at or before it.
            for (t, v) in counter {
                let last = raw[&key]
                    .iter()
                    .rev()
                    .find(|(rt, _)| *rt <= t && *rt >= mint)
                    .unwrap();
                assert_eq!(v, last.1, "{key:?}: counter at {t}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
    assert_eq!(
        five_meta["stats"]["numSamples"].as_u64(),
        Some(windows_total)
    );
}
