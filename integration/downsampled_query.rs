//! Queries over downsampled blocks through a StoreShard + QueryPlanner node: a filesystem
//! bucket holds a raw block for the recent 4 hours and 5m blocks for the whole 8 hours, the
//! raw block of the older 4 hours being gone (past raw retention). `max_source_resolution`
//! picks what answers and the `X-Strata-Resolutions` header says what did: `5m` reads the
//! 5m blocks only, `0s` reads raw where it exists and the 5m block where raw is gone (Thanos
//! would answer nothing there), `auto` follows step/5. The answers agree with the raw data
//! (`count_over_time` counts raw samples, `max_over_time` is exact at window stamps) and
//! `rate(x[5m])` has values over the downsampled-only part.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use strata::storage::block::meta::{ThanosDownsample, ThanosMeta};
use strata::storage::block::writer::BlockWriter;
use strata::storage::block::BlockMeta;
use strata::storage::bucket::filesystem::FilesystemStore;
use strata::storage::bucket::tools::upload_dir;
use strata::storage::dedup::encode_chunks;
use strata::storage::downsample::{downsample_raw, RES_5M};
use strata::storage::model::{EncodedChunk, Labels, Sample};
use strata_testing::{http_client, now_ms, Wait};

const H: i64 = 3_600_000;
const SCRAPE: i64 = 15_000;

/// `gauge` and `counter` samples every 15s over `[from, to)`.
fn data(from: i64, to: i64) -> (Vec<Sample>, Vec<Sample>) {
    let mut gauge = Vec::new();
    let mut counter = Vec::new();
    let mut c = 0.0;
    let mut i = 0i64;
    let mut t = from;
    while t < to {
        gauge.push(Sample {
            t,
            v: ((i * 7919) % 1000) as f64,
        });
        c += (10 + (i * 31) % 7) as f64;
        counter.push(Sample { t, v: c });
        i += 1;
        t += SCRAPE;
    }
    (gauge, counter)
}

/// A test-only block writer: a raw block (`resolution` 0) of the samples as XOR chunks, or a
/// downsampled one of their `downsample_raw` AggrChunks, covering `[min, max)`. The real
/// downsampling pass is the compactor's.
fn write_block(
    dir: &Path,
    min: i64,
    max: i64,
    resolution: i64,
    series: &[(&str, &[Sample])],
) -> BlockMeta {
    let mut symbols = vec!["__name__".to_string(), "series".into(), "a".into()];
    symbols.extend(series.iter().map(|(n, _)| n.to_string()));
    let mut w = BlockWriter::create(dir, symbols).unwrap();
    for (name, samples) in series {
        let chunks: Vec<EncodedChunk> = if resolution == 0 {
            encode_chunks(samples).unwrap()
        } else {
            downsample_raw(samples, resolution)
                .unwrap()
                .iter()
                .map(|c| c.to_encoded())
                .collect()
        };
        let labels = Labels::from_pairs([("__name__", *name), ("series", "a")]);
        w.add_series(&labels, &chunks).unwrap();
    }
    let mut meta = BlockMeta::new(w.ulid(), min, max);
    meta.thanos = Some(ThanosMeta {
        version: 1,
        downsample: ThanosDownsample { resolution },
        ..ThanosMeta::default()
    });
    w.finish(meta).unwrap()
}

pub(crate) struct Answer {
    pub(crate) resolutions: String,
    pub(crate) body: Value,
}

/// Posts `params` to `path`; the answer and its `X-Strata-Resolutions` header.
pub(crate) async fn query(base: &str, path: &str, params: &[(&str, String)]) -> Answer {
    let resp = http_client()
        .post(format!("{base}{path}"))
        .form(params)
        .send()
        .await
        .unwrap();
    let resolutions = resp
        .headers()
        .get("X-Strata-Resolutions")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Answer {
        resolutions,
        body: resp.json().await.unwrap(),
    }
}

fn scalar_of(body: &Value) -> Option<f64> {
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[actix_rt::test]
async fn max_source_resolution_picks_blocks_and_coarse_data_fills_past_raw_retention() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Old part [t0-4h, t0), recent part [t0, t0+4h), ending 2h ago.
    let t0 = now_ms() / H * H - 6 * H;
    let (old_g, old_c) = data(t0 - 4 * H, t0);
    let (new_g, new_c) = data(t0, t0 + 4 * H);
    // The counter continues across the two parts.
    let last_old = old_c.last().map_or(0.0, |s| s.v);
    let new_c: Vec<Sample> = new_c
        .iter()
        .map(|s| Sample {
            t: s.t,
            v: s.v + last_old,
        })
        .collect();
    let series = |g: &'static str, gs: &[Sample], c: &[Sample]| -> Vec<(String, Vec<Sample>)> {
        vec![
            (g.to_string(), gs.to_vec()),
            ("ds_total".into(), c.to_vec()),
        ]
    };
    let old = series("ds_gauge", &old_g, &old_c);
    let new = series("ds_gauge", &new_g, &new_c);
    for (min, max, res, s) in [
        (t0, t0 + 4 * H, 0, new.clone()),
        (t0 - 4 * H, t0, RES_5M, old.clone()),
        (t0, t0 + 4 * H, RES_5M, new.clone()),
    ] {
        let refs: Vec<(&str, &[Sample])> =
            s.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        write_block(local.path(), min, max, res, &refs);
    }
    let store = FilesystemStore::new(bucket_dir.path()).unwrap();
    let labels = BTreeMap::from([("cluster".to_string(), "test".to_string())]);
    let report = upload_dir(&store, local.path(), &labels, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.uploaded.len(), 3, "{:?}", report.failed);

    let node = strata_testing::TestNode::builder()
        .roles(&["store_shard", "query_planner"])
        .filesystem_bucket(bucket_dir.path())
        .start()
        .await;
    let base = node.base.clone();
    let raw_total = (old_g.len() + new_g.len()) as f64;
    // The end of the data, a 5m window stamp; 8h is a multiple of 5m.
    let t_end = t0 + 4 * H - 1;
    let instant = |q: &str, msr: &str, t: i64| {
        let mut p = vec![
            ("query", q.to_string()),
            ("time", format!("{:.3}", t as f64 / 1000.0)),
        ];
        if !msr.is_empty() {
            p.push(("max_source_resolution", msr.to_string()));
        }
        p
    };
    Wait::new("the store serves the three blocks", Duration::from_secs(30))
        .until(|| async {
            let a = query(
                &base,
                "/api/v1/query",
                &instant("count_over_time(ds_gauge[8h])", "5m", t_end),
            )
            .await;
            scalar_of(&a.body) == Some(raw_total)
        })
        .await
        .expect("the store never answered the full count");

    // count_over_time counts raw samples at every resolution choice.
    for (msr, want_res) in [
        ("5m", "300000"),
        ("0s", "0,300000"),
        ("raw", "0,300000"),
        ("", "0,300000"),
    ] {
        let a = query(
            &base,
            "/api/v1/query",
            &instant("count_over_time(ds_gauge[8h])", msr, t_end),
        )
        .await;
        assert_eq!(a.resolutions, want_res, "max_source_resolution={msr:?}");
        assert_eq!(
            scalar_of(&a.body),
            Some(raw_total),
            "count with {msr:?}: {}",
            a.body
        );
    }

    // max_over_time over the old (downsampled-only) part is exact at a window stamp.
    let t_old = t0 - 1;
    let want_max = old_g[old_g.len() - 240..]
        .iter()
        .map(|s| s.v)
        .fold(f64::MIN, f64::max);
    for msr in ["0s", "5m"] {
        let a = query(
            &base,
            "/api/v1/query",
            &instant("max_over_time(ds_gauge[1h])", msr, t_old),
        )
        .await;
        assert_eq!(a.resolutions, "300000", "only the 5m block covers {t_old}");
        assert_eq!(scalar_of(&a.body), Some(want_max), "{msr}: {}", a.body);
    }

    // rate(x[5m]) over downsampled-only data has a value close to the raw rate.
    let a = query(
        &base,
        "/api/v1/query",
        &instant("rate(ds_total[5m])", "0s", t0 - 2 * H - 1),
    )
    .await;
    let rate = scalar_of(&a.body).unwrap_or_else(|| panic!("no rate: {}", a.body));
    // The raw counter grows by 10..16 per 15s scrape.
    assert!((10.0 / 15.0..=16.0 / 15.0).contains(&rate), "rate {rate}");

    // Range queries: auto is step/5 — a 30m step reads 5m data, a 1m step raw (with the 5m
    // block filling the old part).
    for (step, want_res) in [("1800", "300000"), ("60", "0,300000")] {
        let a = query(
            &base,
            "/api/v1/query_range",
            &[
                ("query", "max_over_time(ds_gauge[30m])".to_string()),
                ("start", format!("{}", (t0 - 3 * H) / 1000)),
                ("end", format!("{}", (t0 + 3 * H) / 1000)),
                ("step", step.to_string()),
                ("max_source_resolution", "auto".to_string()),
            ],
        )
        .await;
        assert_eq!(a.body["status"], "success", "{}", a.body);
        assert_eq!(a.resolutions, want_res, "step {step}");
        let points = a.body["data"]["result"][0]["values"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(points > 0, "step {step}: {}", a.body);
    }

    // A bad value is bad_data naming the parameter.
    let resp = http_client()
        .post(format!("{base}/api/v1/query"))
        .form(&instant("ds_gauge", "-5m", t_end))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errorType"], "bad_data");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("max_source_resolution"),
        "{body}"
    );
    node.handle.stop().await;
}
