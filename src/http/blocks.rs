//! `GET /api/v1/blocks`: the bucket's blocks as Thanos's bucket web API lists them
//! (`{"blocks": [meta.json...], "label": "", "refreshedAt": ..., "err": null}`), each
//! `meta.json` exactly as stored, plus a `strata` object per block with what a listing of its
//! directory shows: the marks (`deletion-mark.json`, `no-compact-mark.json`,
//! `no-downsample-mark.json`) and the size of its objects. Partial uploads (no `meta.json`)
//! are left out and counted; reading needs no token, like Thanos's. `POST /api/v1/blocks/mark`
//! (Thanos's form: `id`, `action=DELETION|NO_COMPACTION` or `NO_DOWNSAMPLE`, `detail`) writes the mark into the
//! bucket and needs the admin token. What the `/blocks` page of the UI draws and marks. One
//! listing per request; each meta.json is read once and kept (`MetaCache`).

use actix_web::{web, HttpRequest};
use futures::StreamExt;
use serde_json::{json, Value};

use super::admin::authorize;
use super::error::{success, ApiError, ApiResult, ErrorType};
use super::params::Params;
use super::AdminState;
use crate::storage::bucket::blocks::{
    block_exists, list_blocks, put_manual_mark, read_meta_json, BlockDir, ManualMark,
};

/// How many `meta.json` reads run at once.
const META_READS: usize = 16;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/blocks", web::get().to(blocks))
        .route("/api/v1/blocks/mark", web::post().to(mark));
}

/// The mark a Thanos `action` names (`NO_DOWNSAMPLE` is Strata's addition, as the CLI has it).
pub fn parse_action(s: &str) -> Result<ManualMark, ApiError> {
    match s {
        "DELETION" => Ok(ManualMark::Deletion),
        "NO_COMPACTION" => Ok(ManualMark::NoCompact),
        "NO_DOWNSAMPLE" => Ok(ManualMark::NoDownsample),
        other => Err(ApiError::bad_data(format!(
            "invalid parameter \"action\": {other:?}, want DELETION, NO_COMPACTION or NO_DOWNSAMPLE"
        ))),
    }
}

async fn mark(req: HttpRequest, state: web::Data<AdminState>, body: web::Bytes) -> ApiResult {
    authorize(&req, &state)?;
    let params = Params::from_request(&req, &body);
    let id = params.get("id").unwrap_or_default();
    let ulid = ulid::Ulid::from_string(id)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"id\": {id:?}: {e}")))?;
    let action = parse_action(params.get("action").unwrap_or_default())?;
    let detail = params.get("detail").unwrap_or_default();
    let bucket = state.bucket.as_ref();
    let exists = block_exists(bucket, ulid)
        .await
        .map_err(|e| ApiError::unavailable(format!("reading the bucket: {e}")))?;
    if !exists {
        return Err(ApiError::new(
            ErrorType::NotFound,
            format!("no block {ulid} in the bucket"),
        ));
    }
    let now = std::time::SystemTime::now();
    let written = put_manual_mark(bucket, ulid, action, detail, now)
        .await
        .map_err(|e| ApiError::unavailable(format!("writing the mark of {ulid}: {e}")))?;
    Ok(success(
        &json!({"id": ulid.to_string(), "written": written}),
    ))
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

/// The bucket's meta.json files as read once: a block's meta never changes after upload, so
/// a listing of a large bucket reads only the metas of blocks it has not seen.
#[derive(Default)]
pub struct MetaCache {
    metas: parking_lot::Mutex<std::collections::HashMap<ulid::Ulid, Value>>,
}

impl MetaCache {
    fn get(&self, ulid: ulid::Ulid) -> Option<Value> {
        self.metas.lock().get(&ulid).cloned()
    }

    fn put(&self, ulid: ulid::Ulid, meta: Value) {
        self.metas.lock().insert(ulid, meta);
    }

    /// Forgets blocks that are gone from the bucket.
    fn retain(&self, keep: impl Fn(&ulid::Ulid) -> bool) {
        self.metas.lock().retain(|u, _| keep(u));
    }
}

async fn blocks(state: web::Data<AdminState>) -> ApiResult {
    let dirs = list_blocks(state.bucket.as_ref())
        .await
        .map_err(|e| ApiError::unavailable(format!("listing the bucket: {e}")))?;
    let partial = dirs.values().filter(|d| d.is_partial()).count();
    let complete: Vec<BlockDir> = dirs.into_values().filter(|d| !d.is_partial()).collect();
    let bucket = state.bucket.clone();
    let cache = &state.block_metas;
    let listed: std::collections::HashSet<ulid::Ulid> = complete.iter().map(|d| d.ulid).collect();
    cache.retain(|u| listed.contains(u));
    let read = futures::stream::iter(complete)
        .map(|d| {
            let bucket = bucket.clone();
            async move {
                if let Some(m) = cache.get(d.ulid) {
                    return (d, Ok(Some(m)));
                }
                let meta = read_meta_json(bucket.as_ref(), d.ulid).await;
                if let Ok(Some(m)) = &meta {
                    cache.put(d.ulid, m.clone());
                }
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
    fn actions_are_thanos_words() {
        assert_eq!(parse_action("DELETION").unwrap(), ManualMark::Deletion);
        assert_eq!(
            parse_action("NO_COMPACTION").unwrap(),
            ManualMark::NoCompact
        );
        assert_eq!(
            parse_action("NO_DOWNSAMPLE").unwrap(),
            ManualMark::NoDownsample
        );
        assert!(parse_action("deletion").is_err());
    }

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
