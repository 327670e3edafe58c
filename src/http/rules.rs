//! `GET /api/v1/rules` and `GET /api/v1/alerts` in Prometheus 2.42's shapes, from the rule
//! groups the RuleEvaluator on this node evaluates (`rules::manager::SharedRules`): groups
//! sorted by (file, name), rules in file order, rule labels and annotations as written, alert
//! labels and annotations expanded, times in Go's RFC 3339 with nanoseconds, alert values in
//! Go's `%e`. Filters: `type=alert|record` (case-insensitive; anything else is `bad_data`),
//! and the later `rule_name[]`, `rule_group[]`, `file[]`. Like `/api/v1/targets`, the node
//! asked answers for the whole cluster: it merges the answers of every live RuleEvaluator
//! (asked for their own groups only), each group and each alert listed once although
//! `cluster.rule_replication` nodes evaluate it. Each group carries one key Prometheus does
//! not have, `evaluatedBy`: the ids of the nodes evaluating it (sorted), as Thanos adds its
//! own `partialResponseStrategy`; clients that read Prometheus's shape ignore it. Also
//! `/api/v1/alertmanagers` from the notifier.

use actix_web::{web, HttpRequest};
use serde_json::{json, Map, Value};

use std::collections::{BTreeMap, BTreeSet};

use super::error::{success, success_with_annotations, ApiError, ApiResult};
use super::params::Params;
use super::targets_cluster::{ask_peers, wants_local_only};
use crate::config::Role;
use crate::gocompat::format_float_e;
use crate::rules::alerting::{Alert, AlertState};
use crate::rules::group::{Group, RuleRuntime};
use crate::rules::manager::SharedRules;
use crate::time::go_rfc3339_nano;

/// What the rules endpoints read.
pub struct RulesState {
    pub router: std::sync::Arc<super::Router>,
    pub rules: SharedRules,
    /// The notifier, for `/api/v1/alertmanagers`.
    pub alerts: std::sync::Arc<dyn crate::actors::rule_evaluator::AlertSender>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/rules", web::get().to(rules))
        .route("/api/v1/rules", web::post().to(rules))
        .route("/api/v1/alerts", web::get().to(alerts))
        .route("/api/v1/alerts", web::post().to(alerts))
        .route("/api/v1/alertmanagers", web::get().to(alertmanagers));
}

async fn alertmanagers(state: web::Data<RulesState>) -> ApiResult {
    Ok(success(&state.alerts.alertmanagers()))
}

/// Seconds as Go's JSON encodes a float64: a whole number without a fraction (`3`, not `3.0`).
fn go_seconds(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

fn string_map<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Value::Object(m)
}

fn alert_json(a: &Alert) -> Value {
    let mut o = json!({
        "labels": string_map(a.labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))),
        "annotations": string_map(a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        "state": a.state.as_str(),
        "activeAt": go_rfc3339_nano(a.active_at_ns),
        "value": format_float_e(a.value),
    });
    if let Some(since) = a.keep_firing_since_ns {
        o["keepFiringSince"] = Value::String(go_rfc3339_nano(since));
    }
    o
}

fn last_eval(ns: Option<i64>) -> String {
    ns.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), go_rfc3339_nano)
}

pub(super) fn rule_json(r: &RuleRuntime) -> Value {
    let mut o = Map::new();
    if let Some(alerting) = &r.alerting {
        let state = alerting
            .active_alerts()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive);
        o.insert("state".into(), json!(state.as_str()));
        o.insert("name".into(), json!(r.rule.name()));
        o.insert("query".into(), json!(r.printed_expr));
        o.insert("duration".into(), go_seconds(r.rule.for_.as_secs_f64()));
        o.insert(
            "keepFiringFor".into(),
            go_seconds(r.rule.keep_firing_for.as_secs_f64()),
        );
        o.insert(
            "labels".into(),
            string_map(r.rule.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        o.insert(
            "annotations".into(),
            string_map(
                r.rule
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
        );
        let alerts: Vec<Value> = alerting.active_alerts().map(alert_json).collect();
        o.insert("alerts".into(), Value::Array(alerts));
    } else {
        o.insert("name".into(), json!(r.rule.name()));
        o.insert("query".into(), json!(r.printed_expr));
        if !r.rule.labels.is_empty() {
            o.insert(
                "labels".into(),
                string_map(r.rule.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            );
        }
    }
    o.insert("health".into(), json!(r.health.as_str()));
    if let Some(e) = &r.last_error {
        o.insert("lastError".into(), json!(e));
    }
    if !r.last_warnings.is_empty() {
        o.insert("warnings".into(), json!(r.last_warnings));
    }
    o.insert(
        "evaluationTime".into(),
        json!(r.last_duration.as_secs_f64()),
    );
    o.insert("lastEvaluation".into(), json!(last_eval(r.last_eval_ns)));
    o.insert(
        "type".into(),
        json!(if r.alerting.is_some() {
            "alerting"
        } else {
            "recording"
        }),
    );
    Value::Object(o)
}

/// The values of repeated parameter `name` (`name` or `name[]`).
fn multi(params: &Params, name: &str) -> Vec<String> {
    let mut out: Vec<String> = params.get_all(name).into_iter().map(String::from).collect();
    out.extend(
        params
            .get_all(&format!("{name}[]"))
            .into_iter()
            .map(String::from),
    );
    out
}

fn group_json(g: &Group, rules: Vec<Value>, node: &str) -> Value {
    json!({
        "name": g.name,
        "evaluatedBy": [node],
        "file": g.file,
        "rules": rules,
        "interval": go_seconds(g.interval.as_secs_f64()),
        "limit": g.limit,
        "evaluationTime": go_seconds(g.last_duration.as_secs_f64()),
        "lastEvaluation": last_eval(g.last_eval_ns),
    })
}

async fn rules(req: HttpRequest, body: web::Bytes, state: web::Data<RulesState>) -> ApiResult {
    let params = Params::from_request(&req, &body);
    let kind = params.get("type").unwrap_or_default().to_string();
    let (want_alert, want_record) = match kind.to_lowercase().as_str() {
        "" => (true, true),
        "alert" => (true, false),
        "record" => (false, true),
        _ => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"type\": not supported value {kind:?}"
            )))
        }
    };
    let names = multi(&params, "rule_name");
    let group_names = multi(&params, "rule_group");
    let files = multi(&params, "file");
    let mut out = local_groups(
        &state.rules,
        &state.router.node_id,
        &names,
        &group_names,
        &files,
        (want_alert, want_record),
    );
    let mut warnings = Vec::new();
    if !wants_local_only(&req) {
        let (remote, w) = ask_peers::<Value>(&state.router, &req, Role::RuleEvaluator).await;
        warnings = w;
        for r in remote {
            out.extend(r["groups"].as_array().cloned().unwrap_or_default());
        }
        out = merge_groups(out);
    }
    Ok(success_with_annotations(
        &json!({ "groups": out }),
        &warnings,
        &[],
    ))
}

/// This node's groups, filtered, as `/api/v1/rules` lists them.
fn local_groups(
    rules: &SharedRules,
    node: &str,
    names: &[String],
    group_names: &[String],
    files: &[String],
    (want_alert, want_record): (bool, bool),
) -> Vec<Value> {
    let view = rules.read();
    let mut groups: Vec<&Group> = view.groups.values().collect();
    groups.sort_by(|a, b| (&a.file, &a.name).cmp(&(&b.file, &b.name)));
    let mut out = Vec::new();
    for g in groups {
        if (!group_names.is_empty() && !group_names.contains(&g.name))
            || (!files.is_empty() && !files.contains(&g.file))
        {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| {
                if r.alerting.is_some() {
                    want_alert
                } else {
                    want_record
                }
            })
            .filter(|r| names.is_empty() || names.iter().any(|n| n == r.rule.name()))
            .map(rule_json)
            .collect();
        // With name filters a group without matching rules is left out (Prometheus 2.44+).
        if !names.is_empty() && rules.is_empty() {
            continue;
        }
        out.push(group_json(g, rules, node));
    }
    out
}

/// One entry per group (`file`, `name`) across the evaluators that answered: groups are
/// evaluated by several nodes (`cluster.rule_replication`); the most recently evaluated copy
/// is listed, its `evaluatedBy` the union of every copy's. Sorted by (file, name) as
/// Prometheus sorts them.
fn merge_groups(all: Vec<Value>) -> Vec<Value> {
    let mut best: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut nodes: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for g in all {
        let key = (
            g["file"].as_str().unwrap_or_default().to_string(),
            g["name"].as_str().unwrap_or_default().to_string(),
        );
        let by = g["evaluatedBy"].as_array().into_iter().flatten();
        nodes
            .entry(key.clone())
            .or_default()
            .extend(by.filter_map(|n| n.as_str().map(String::from)));
        let newer = best.get(&key).is_none_or(|old| {
            g["lastEvaluation"].as_str().unwrap_or_default()
                > old["lastEvaluation"].as_str().unwrap_or_default()
        });
        if newer {
            best.insert(key, g);
        }
    }
    let mut out = Vec::with_capacity(best.len());
    for (key, mut g) in best {
        let by: Vec<String> = nodes.remove(&key).unwrap_or_default().into_iter().collect();
        g["evaluatedBy"] = json!(by);
        out.push(g);
    }
    out
}

/// One alert per label set across the evaluators: firing before pending, then the earliest
/// `activeAt` (the copy that has been active longest).
fn merge_alerts(all: Vec<Value>) -> Vec<Value> {
    let mut best: BTreeMap<String, Value> = BTreeMap::new();
    let rank = |a: &Value| {
        (
            a["state"] != "firing",
            a["activeAt"].as_str().unwrap_or_default().to_string(),
        )
    };
    for a in all {
        let key = a["labels"].to_string();
        let better = best.get(&key).is_none_or(|old| rank(&a) < rank(old));
        if better {
            best.insert(key, a);
        }
    }
    best.into_values().collect()
}

async fn alerts(req: HttpRequest, state: web::Data<RulesState>) -> ApiResult {
    let mut out = Vec::new();
    {
        let view = state.rules.read();
        for g in view.groups.values() {
            for r in &g.rules {
                if let Some(a) = &r.alerting {
                    out.extend(a.active_alerts().map(alert_json));
                }
            }
        }
    }
    let mut warnings = Vec::new();
    if !wants_local_only(&req) {
        let (remote, w) = ask_peers::<Value>(&state.router, &req, Role::RuleEvaluator).await;
        warnings = w;
        for r in remote {
            out.extend(r["alerts"].as_array().cloned().unwrap_or_default());
        }
        out = merge_alerts(out);
    }
    Ok(success_with_annotations(
        &json!({ "alerts": out }),
        &warnings,
        &[],
    ))
}
