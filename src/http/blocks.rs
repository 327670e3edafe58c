//! The bucket's blocks for the blocks page (Thanos's bucket viewer): `GET /api/v1/blocks`
//! lists every block directory with its meta.json as stored (Thanos's `data.blocks`, with
//! `label`, `refreshedAt` and `err`), plus per block its marks, index and chunk sizes and
//! whether it is a partial upload; `POST /api/v1/admin/blocks/{ulid}/mark` puts a deletion,
//! no-compact or no-downsample mark (reason `manual`) on one, with the admin token. Every
//! node has the bucket, so any node answers. One listing per request; meta.json files never
//! change once written, so each is read once and kept.

use std::collections::BTreeMap;
use std::time::SystemTime;

use actix_web::{web, HttpRequest};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};
use ulid::Ulid;

use super::admin::authorize;
use super::error::{success, ApiError, ApiResult, ErrorType};
use super::AdminState;
use crate::storage::bucket::blocks::{self, BlockDir, ManualMark};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/blocks", web::get().to(list))
        .route("/api/v1/admin/blocks/{ulid}/mark", web::post().to(mark));
}

/// meta.json contents by block, read once (they never change).
#[derive(Default)]
pub struct MetaCache {
    metas: Mutex<BTreeMap<Ulid, Value>>,
}

async fn list(state: web::Data<AdminState>) -> ApiResult {
    let store = state.bucket.as_ref();
    let dirs = blocks::list_blocks(store)
        .await
        .map_err(|e| ApiError::unavailable(format!("listing the bucket: {e}")))?;
    state
        .block_metas
        .metas
        .lock()
        .retain(|u, _| dirs.get(u).is_some_and(|d| d.has_meta));
    let mut out = Vec::with_capacity(dirs.len());
    let mut errors = Vec::new();
    for dir in dirs.values() {
        let meta = if dir.has_meta {
            let cached = state.block_metas.metas.lock().get(&dir.ulid).cloned();
            match cached {
                Some(m) => Some(m),
                None => match blocks::read_meta_json(store, dir.ulid).await {
                    Ok(Some(m)) => {
                        state.block_metas.metas.lock().insert(dir.ulid, m.clone());
                        Some(m)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        errors.push(format!("block {}: {e}", dir.ulid));
                        None
                    }
                },
            }
        } else {
            None
        };
        out.push(entry(dir, meta));
    }
    Ok(success(&json!({
        "blocks": out,
        "label": "",
        "refreshedAt": crate::time::rfc3339_millis(SystemTime::now()),
        "err": (!errors.is_empty()).then(|| errors.join("; ")),
    })))
}

/// One block as listed: its meta.json (or just the ULID for a partial upload) with Strata's
/// additions.
fn entry(dir: &BlockDir, meta: Option<Value>) -> Value {
    let partial = meta.is_none();
    let mut v = meta.unwrap_or_else(|| json!({ "ulid": dir.ulid.to_string() }));
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "marks".into(),
            json!({
                "deletion": dir.has_deletion_mark,
                "no_compact": dir.has_no_compact_mark,
                "no_downsample": dir.has_no_downsample_mark,
            }),
        );
        obj.insert(
            "size".into(),
            json!({
                "indexSize": dir.index_size.unwrap_or(0),
                "chunkSize": dir.segments.iter().map(|s| s.size).sum::<u64>(),
            }),
        );
        obj.insert("partial".into(), json!(partial));
    }
    v
}

#[derive(Deserialize)]
struct MarkBody {
    kind: String,
    #[serde(default)]
    details: String,
}

async fn mark(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult {
    authorize(&req, &state)?;
    let id = path.into_inner();
    let ulid = Ulid::from_string(&id)
        .map_err(|e| ApiError::bad_data(format!("{id:?} is not a block ULID: {e}")))?;
    let parsed: MarkBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_data(format!(
            "invalid body, want {{\"kind\":\"deletion|no-compact|no-downsample\",\"details\":\"...\"}}: {e}"
        ))
    })?;
    let kind = ManualMark::parse(&parsed.kind).ok_or_else(|| {
        ApiError::bad_data(format!(
            "unknown mark kind {:?}: want deletion, no-compact or no-downsample",
            parsed.kind
        ))
    })?;
    let store = state.bucket.as_ref();
    let exists = blocks::block_exists(store, ulid)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    if !exists {
        return Err(ApiError::new(
            ErrorType::NotFound,
            format!("no block {ulid} in the bucket"),
        ));
    }
    let written = blocks::put_manual_mark(store, ulid, kind, &parsed.details, SystemTime::now())
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(success(&json!({
        "block": ulid.to_string(),
        "kind": kind.as_str(),
        "written": written,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_marks_sizes_and_partial() {
        let ulid = Ulid::from_parts(1, 2);
        let mut dir = BlockDir {
            ulid,
            has_meta: false,
            has_deletion_mark: true,
            has_no_compact_mark: false,
            has_no_downsample_mark: true,
            index_size: Some(10),
            segments: vec![
                blocks::SegmentObject {
                    key: "a".into(),
                    size: 5,
                },
                blocks::SegmentObject {
                    key: "b".into(),
                    size: 7,
                },
            ],
            objects: Vec::new(),
        };
        let partial = entry(&dir, None);
        assert_eq!(partial["ulid"], ulid.to_string());
        assert_eq!(partial["partial"], true);
        assert_eq!(partial["marks"]["deletion"], true);
        assert_eq!(partial["marks"]["no_compact"], false);
        assert_eq!(partial["size"]["chunkSize"], 12);
        dir.has_meta = true;
        let full = entry(&dir, Some(json!({"ulid": ulid.to_string(), "minTime": 1})));
        assert_eq!(full["minTime"], 1);
        assert_eq!(full["partial"], false);
        assert_eq!(full["size"]["indexSize"], 10);
    }
}
