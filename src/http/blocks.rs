//! `GET /api/v1/blocks`: the bucket's blocks as Thanos's bucket web API lists them
//! (`{"blocks": [meta.json...], "label": "", "refreshedAt": ..., "err": null}`), each
//! `meta.json` exactly as stored, plus a `strata` object per block with what a listing of its
//! directory shows: the marks (`deletion-mark.json`, `no-compact-mark.json`,
//! `no-downsample-mark.json`) and the size of its objects. Partial uploads (no `meta.json`)
//! are left out and counted. Read-only, like Thanos's: no admin token. What the `/blocks` page
//! of the UI draws.

use actix_web::web;
use futures::StreamExt;
use serde_json::{json, Value};

use super::error::{success, ApiError, ApiResult};
use super::AdminState;
use crate::storage::bucket::blocks::{list_blocks, read_meta_json, BlockDir};

/// How many `meta.json` reads run at once.
const META_READS: usize = 16;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/blocks", web::get().to(blocks));
}

/// What the directory listing says about a block, beside its meta.json.
pub fn listing_json(d: &BlockDir) -> Value {
    json!({
        "deletionMark": d.has_deletion_mark,
        "noCompactMark": d.has_no_compact_mark,
        "noDownsampleMark": d.has_no_downsample_mark,
        "sizeBytes": d.objects.iter().map(|o| o.size).sum::<u64>(),
        "indexBytes": d.index_size.unwrap_or(0),
        "chunkBytes": d.segments.iter().map(|s| s.size).sum::<u64>(),
    })
}

async fn blocks(state: web::Data<AdminState>) -> ApiResult {
    let dirs = list_blocks(state.bucket.as_ref())
        .await
        .map_err(|e| ApiError::unavailable(format!("listing the bucket: {e}")))?;
    let partial = dirs.values().filter(|d| d.is_partial()).count();
    let complete: Vec<BlockDir> = dirs.into_values().filter(|d| !d.is_partial()).collect();
    let bucket = state.bucket.clone();
    let read = futures::stream::iter(complete)
        .map(|d| {
            let bucket = bucket.clone();
            async move {
                let meta = read_meta_json(bucket.as_ref(), d.ulid).await;
                (d, meta)
            }
        })
        .buffer_unordered(META_READS)
        .collect::<Vec<_>>()
        .await;
    let mut out = Vec::with_capacity(read.len());
    let mut errors = Vec::new();
    for (dir, meta) in read {
        match meta {
            Ok(Some(Value::Object(mut m))) => {
                m.insert("strata".into(), listing_json(&dir));
                out.push(Value::Object(m));
            }
            // Deleted between the listing and the read.
            Ok(_) => {}
            Err(e) => errors.push(format!("{}: {e}", dir.ulid)),
        }
    }
    out.sort_by(|a, b| {
        let key = |v: &Value| (v["minTime"].as_i64().unwrap_or(0), v["ulid"].to_string());
        key(a).cmp(&key(b))
    });
    let err = (!errors.is_empty()).then(|| errors.join("; "));
    Ok(success(&json!({
        "blocks": out,
        "label": "",
        "refreshedAt": crate::time::rfc3339_nanos_or_seconds(std::time::SystemTime::now()),
        "err": err,
        "partialUploads": partial,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::bucket::ListEntry;

    #[test]
    fn listing_sums_sizes_and_reports_marks() {
        let ulid = ulid::Ulid::new();
        let d = BlockDir {
            ulid,
            has_meta: true,
            has_deletion_mark: false,
            has_no_compact_mark: true,
            has_no_downsample_mark: false,
            index_size: Some(10),
            segments: vec![crate::storage::bucket::blocks::SegmentObject {
                key: format!("{ulid}/chunks/000001"),
                size: 100,
            }],
            objects: [("index", 10), ("chunks/000001", 100), ("meta.json", 5)]
                .into_iter()
                .map(|(k, size)| ListEntry {
                    key: format!("{ulid}/{k}"),
                    size,
                    last_modified: None,
                })
                .collect(),
        };
        let v = listing_json(&d);
        assert_eq!(v["sizeBytes"], 115);
        assert_eq!(v["indexBytes"], 10);
        assert_eq!(v["chunkBytes"], 100);
        assert_eq!(v["noCompactMark"], true);
        assert_eq!(v["deletionMark"], false);
    }
}
