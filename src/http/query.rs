//! The Prometheus query API: `/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/<name>/values`, `query_exemplars`, `metadata`, `format_query` and `/federate`, GET and
//! POST, answering with Prometheus's JSON to the byte shape. Handlers parse parameters and shape
//! answers; the queries themselves run through the node's `QueryService` (`crate::query`), which
//! owns the engine, the sources and the guards.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::{success, success_with_annotations, ApiError, ApiResult};
use super::forward::forward_unless_local;
use super::params::{invalid, Params};
use super::QueryState;
use crate::config::Role;
use crate::promql::QueryValue;
use crate::query::service::{QueryOptions, QueryService};
use crate::query::usage::Source;
use crate::storage::model::Labels;

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        ("/api/v1/query", Handler::Instant),
        ("/api/v1/query_range", Handler::Range),
        ("/api/v1/series", Handler::Series),
        ("/api/v1/labels", Handler::Labels),
        ("/api/v1/query_exemplars", Handler::Exemplars),
        ("/api/v1/format_query", Handler::Format),
    ] {
        let h = move |req: HttpRequest, state: web::Data<QueryState>, body: web::Bytes| {
            dispatch(handler, req, state, body)
        };
        cfg.route(path, web::get().to(h))
            .route(path, web::post().to(h));
    }
    cfg.route("/api/v1/label/{name}/values", web::get().to(label_values))
        .route("/federate", web::get().to(federate));
}

#[derive(Clone, Copy)]
enum Handler {
    Instant,
    Range,
    Series,
    Labels,
    Exemplars,
    Format,
}

async fn dispatch(
    handler: Handler,
    req: HttpRequest,
    state: web::Data<QueryState>,
    body: web::Bytes,
) -> ApiResult {
    if body.len() > MAX_FORM_BYTES {
        return Err(ApiError::bad_data(
            "error parsing form values: http: POST too large",
        ));
    }
    if let Some(forwarded) =
        forward_unless_local(&state.router, &req, &body, Role::QueryPlanner).await
    {
        return forwarded;
    }
    let params = Params::from_request(&req, &body);
    let svc = query_service(&state)?;
    // Grafana names the dashboard or alert rule a query comes from (metric usage).
    let source = crate::query::usage::Source::from_headers(|name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    });
    match handler {
        Handler::Instant => instant(&svc, params, source).await,
        Handler::Range => range(&svc, params, source).await,
        Handler::Series => series(&svc, params).await,
        Handler::Labels => label_names(&svc, params).await,
        Handler::Exemplars => {
            params.time_range()?;
            Ok(success(&Vec::<serde_json::Value>::new()))
        }
        Handler::Format => format_query(params),
    }
}

fn query_service(state: &QueryState) -> Result<std::sync::Arc<QueryService>, ApiError> {
    if !state.router.runs(Role::QueryPlanner) {
        return Err(ApiError::unavailable(
            "no query_planner role serves queries on this node",
        ));
    }
    Ok(state.service.clone())
}

/// Go's limit on a form body, which Prometheus inherits.
const MAX_FORM_BYTES: usize = 10 << 20;

/// The response header naming the resolutions (ms, 0 = raw) of the data that answered a
/// query, comma-separated and ascending (`0,300000`); absent when no data was read.
pub const RESOLUTIONS_HEADER: &str = "X-Strata-Resolutions";

/// Prometheus's exact bytes (timestamps as `1700000045.500`, values as strings), with the
/// `X-Strata-Resolutions` header.
fn answer_response(svc: &QueryService, v: QueryValue, resolutions: &[i64]) -> HttpResponse {
    let body = crate::promql::json::format_success_body(&v);
    svc.free_later(v);
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/json");
    if !resolutions.is_empty() {
        let list: Vec<String> = resolutions.iter().map(i64::to_string).collect();
        resp.insert_header((RESOLUTIONS_HEADER, list.join(",")));
    }
    resp.body(body)
}

/// The `query` parameter; Prometheus lets the parser report an absent one ("no expression
/// found in input").
fn query_param(params: &Params) -> String {
    params.get("query").unwrap_or("").to_string()
}

async fn instant(svc: &QueryService, params: Params, source: Source) -> ApiResult {
    let query = query_param(&params);
    let t = params.time("time", crate::time::now_ms())?;
    let opts = QueryOptions {
        source,
        ..params.query_options()?
    };
    let a = svc.instant_answer(&query, t, &opts).await?;
    Ok(answer_response(svc, a.value, &a.resolutions))
}

async fn range(svc: &QueryService, params: Params, source: Source) -> ApiResult {
    let query = query_param(&params);
    let start = params
        .get("start")
        .ok_or_else(|| invalid("start", "cannot parse \"\" to a valid timestamp"))?;
    let start = crate::promql::parse_time(start).map_err(|e| invalid("start", e))?;
    let end = params
        .get("end")
        .ok_or_else(|| invalid("end", "cannot parse \"\" to a valid timestamp"))?;
    let end = crate::promql::parse_time(end).map_err(|e| invalid("end", e))?;
    if end < start {
        return Err(invalid(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = params
        .duration("step")?
        .ok_or_else(|| invalid("step", "cannot parse \"\" to a valid duration"))?;
    if step <= 0 {
        return Err(invalid("step", "zero or negative query resolution step widths are not accepted. Try a positive integer"));
    }
    // The engine's own limits, checked before the remaining parameters as Prometheus does.
    crate::promql::check_range_params(start, end, step)?;
    let opts = QueryOptions {
        source,
        ..params.query_options()?
    };
    let a = svc.range_answer(&query, start, end, step, &opts).await?;
    Ok(answer_response(svc, a.value, &a.resolutions))
}

fn labels_json(l: &Labels) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = l
        .iter()
        .map(|lb| {
            (
                lb.name.to_string(),
                serde_json::Value::String(lb.value.to_string()),
            )
        })
        .collect();
    serde_json::Value::Object(map)
}

/// Truncates to `limit` (0 = none) with Prometheus's warning.
fn apply_limit<T>(mut items: Vec<T>, limit: usize, warnings: &mut Vec<String>) -> Vec<T> {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        warnings.push("results truncated due to limit".to_string());
    }
    items
}

async fn series(svc: &QueryService, params: Params) -> ApiResult {
    let sets = params.matchers()?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = params.time_range()?;
    let limit = params.limit()?;
    let opts = params.fanout_options()?;
    let mut found = svc.series(sets, start, end, &opts).await?;
    let items = apply_limit(found.items, limit, &mut found.warnings);
    let data: Vec<serde_json::Value> = items.iter().map(labels_json).collect();
    Ok(success_with_annotations(&data, &found.warnings, &[]))
}

async fn label_names(svc: &QueryService, params: Params) -> ApiResult {
    let sets = params.matchers()?;
    let (start, end) = params.time_range()?;
    let limit = params.limit()?;
    let opts = params.fanout_options()?;
    let mut names = svc.label_names(sets, start, end, &opts).await?;
    let items = apply_limit(names.items, limit, &mut names.warnings);
    Ok(success_with_annotations(&items, &names.warnings, &[]))
}

async fn label_values(
    req: HttpRequest,
    state: web::Data<QueryState>,
    path: web::Path<String>,
) -> ApiResult {
    if let Some(forwarded) =
        forward_unless_local(&state.router, &req, &[], Role::QueryPlanner).await
    {
        return forwarded;
    }
    let svc = query_service(&state)?;
    let params = Params::from_request(&req, &[]);
    let mut name = path.into_inner();
    // Prometheus 3 accepts UTF-8 names escaped as U__...; plain names are the common case.
    if let Some(rest) = name.strip_prefix("U__") {
        name = unescape_utf8_label(rest)
            .ok_or_else(|| ApiError::bad_data(format!("invalid label name: {name:?}")))?;
    } else if !crate::config::is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = params.matchers()?;
    let (start, end) = params.time_range()?;
    let limit = params.limit()?;
    let opts = params.fanout_options()?;
    let mut values = svc.label_values(name, sets, start, end, &opts).await?;
    let items = apply_limit(values.items, limit, &mut values.warnings);
    Ok(success_with_annotations(&items, &values.warnings, &[]))
}

/// Decodes Prometheus's `U__` label-name escaping: `_` stays, `__` is `_`, `_HEX_` is a code point.
fn unescape_utf8_label(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return None,
            }
        }
        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
    }
    Some(out)
}

fn format_query(params: Params) -> ApiResult {
    let query = params.get("query").unwrap_or("");
    let expr = crate::promql::engine::parse_query(query, 0, 0)?;
    Ok(success(&expr.prettify()))
}

/// `/federate`: the latest sample of every series matching `match[]`, in the text format, with
/// this node's external labels added where a series lacks them.
async fn federate(req: HttpRequest, state: web::Data<QueryState>) -> ApiResult {
    if let Some(forwarded) =
        forward_unless_local(&state.router, &req, &[], Role::QueryPlanner).await
    {
        return forwarded;
    }
    let svc = query_service(&state)?;
    let params = Params::from_request(&req, &[]);
    let sets = params.matchers()?;
    let opts = params.fanout_options()?;
    let samples = svc
        .latest_samples(sets, crate::time::now_ms(), &opts)
        .await?;
    let body = federation_text(samples, svc.external_labels());
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

/// Renders federated samples as the text format, grouped and sorted by metric name.
pub fn federation_text(mut samples: Vec<(Labels, f64, i64)>, external: &Labels) -> String {
    for (labels, _, _) in samples.iter_mut() {
        for ext in external.iter() {
            if labels.get(&ext.name).is_none() {
                *labels = labels.with(&ext.name, &ext.value);
            }
        }
    }
    samples.sort_by(|a, b| {
        a.0.metric_name()
            .cmp(&b.0.metric_name())
            .then_with(|| a.0.cmp(&b.0))
    });
    samples.dedup_by(|a, b| a.0 == b.0);
    let mut out = String::new();
    let mut last_name: Option<String> = None;
    for (labels, v, t) in samples {
        let name = labels.metric_name().unwrap_or("").to_string();
        if last_name.as_deref() != Some(name.as_str()) {
            out.push_str(&format!("# TYPE {name} untyped\n"));
            last_name = Some(name.clone());
        }
        let rest = labels.without(&[crate::storage::model::METRIC_NAME]);
        let label_text = if rest.is_empty() {
            String::new()
        } else {
            rest.to_string().replace(", ", ",")
        };
        out.push_str(&format!(
            "{name}{label_text} {} {t}\n",
            crate::gocompat::format_float_g(v)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_label_names_unescape() {
        assert_eq!(
            unescape_utf8_label("my_2e_label").as_deref(),
            Some("my.label")
        );
        assert_eq!(unescape_utf8_label("a__b").as_deref(), Some("a_b"));
        assert_eq!(unescape_utf8_label("bad_zz_"), None);
    }

    #[test]
    fn limit_truncates_with_a_warning() {
        let mut w = Vec::new();
        assert_eq!(apply_limit(vec![1, 2, 3], 2, &mut w), vec![1, 2]);
        assert_eq!(w, vec!["results truncated due to limit".to_string()]);
        let mut w = Vec::new();
        assert_eq!(apply_limit(vec![1, 2, 3], 0, &mut w).len(), 3);
        assert!(w.is_empty());
    }

    #[test]
    fn federation_adds_external_labels_and_groups_by_name() {
        let ext = Labels::from_pairs([("cluster", "eu1")]);
        let samples = vec![
            (
                Labels::from_pairs([("__name__", "up"), ("job", "b")]),
                1.0,
                1000,
            ),
            (
                Labels::from_pairs([("__name__", "a_metric"), ("cluster", "own")]),
                2.5,
                2000,
            ),
            (
                Labels::from_pairs([("__name__", "up"), ("job", "a")]),
                0.0,
                1000,
            ),
        ];
        let text = federation_text(samples, &ext);
        assert_eq!(
            text,
            "# TYPE a_metric untyped\na_metric{cluster=\"own\"} 2.5 2000\n# TYPE up untyped\nup{cluster=\"eu1\",job=\"a\"} 0 1000\nup{cluster=\"eu1\",job=\"b\"} 1 1000\n"
        );
    }
}
