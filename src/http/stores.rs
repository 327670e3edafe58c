//! `GET /api/v1/stores`: every StoreAPI source the QueryPlanner fans out to, in the shape of
//! Thanos Query's stores API (`data` maps a kind of source to its entries, each with `name`,
//! `lastCheck`, `lastError`, `labelSets`, `minTime`, `maxTime`), plus the node each source
//! runs on. Kinds are `store` (a StoreShard's bucket blocks, Thanos's store gateway) and
//! `sidecar` (a ScraperShipper's or RuleEvaluator's local TSDB, which Thanos reaches through a
//! sidecar); a peer that did not answer is listed under `unreachable` with its error, never
//! dropped. Answered by a node that runs the QueryPlanner (forwarded there otherwise).

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use actix_web::{web, HttpRequest};
use serde_json::{json, Map, Value};

use super::error::{success, ApiResult};
use super::QueryState;
use crate::config::Role;
use crate::query::service::StoreStatus;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/stores", web::get().to(stores));
}

async fn stores(req: HttpRequest, state: web::Data<QueryState>) -> ApiResult {
    if let Some(forwarded) =
        super::forward::forward_unless_local(&state.router, &req, &[], Role::QueryPlanner).await
    {
        return forwarded;
    }
    Ok(success(&group(state.service.stores().await)))
}

/// Thanos's grouping of the sources by kind.
fn group(list: Vec<StoreStatus>) -> Value {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for s in list {
        let kind = match s.info.as_ref().map(|i| i.source.as_str()) {
            Some("bucket store") => "store",
            Some(_) => "sidecar",
            None if s.last_error.is_some() => "unreachable",
            None => continue,
        };
        let name = match &s.rpc_addr {
            Some(addr) => format!("{} ({addr})", s.node),
            None => format!("{} (this node)", s.node),
        };
        let label_sets: Vec<Value> = s
            .info
            .as_ref()
            .map(|i| {
                i.label_sets
                    .iter()
                    .map(|l| {
                        let m: Map<String, Value> = l
                            .iter()
                            .map(|x| (x.name.to_string(), json!(x.value.to_string())))
                            .collect();
                        Value::Object(m)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let entry = json!({
            "name": name,
            "node": s.node,
            "source": s.info.as_ref().map(|i| i.source.clone()),
            "lastCheck": crate::time::rfc3339_millis(
                UNIX_EPOCH + Duration::from_millis(s.last_check_ms.max(0) as u64)
            ),
            "lastError": s.last_error,
            "labelSets": label_sets,
            // Thanos reports an empty store with math.MaxInt64 / math.MinInt64.
            "minTime": s.info.as_ref().and_then(|i| i.min_time).unwrap_or(i64::MAX),
            "maxTime": s.info.as_ref().and_then(|i| i.max_time).unwrap_or(i64::MIN),
        });
        out.entry(kind.to_string()).or_default().push(entry);
    }
    json!(out)
}
