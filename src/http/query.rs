//! The Prometheus query API: `/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/<name>/values`, `query_exemplars`, `metadata`, `format_query` and `/federate`, GET and
//! POST, answering with Prometheus's JSON to the byte shape. Queries run on the blocking pool,
//! bounded by a concurrency limit; the engine enforces timeouts and the sample limit.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::{success, success_with_annotations, ApiError, ApiResult, ErrorType};
use super::forward::forward_unless_local;
use super::params::{invalid, Params};
use crate::cluster::transport::TransportClient;
use crate::config::Role;
use crate::node::NodeState;
use crate::promql::{Engine, PromqlError, QueryValue, Value};
use crate::query::fanout::{ClusterQueryable, FanoutOptions};
use crate::query::sources::SourceSet;
use crate::storage::model::{Labels, Matcher, Queryable, SelectHints};

/// Prometheus refuses range queries with more points per series than this.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// What the query endpoints need: the engine, where data comes from, and the limits.
pub struct QueryService {
    pub engine: Engine,
    pub sources: Arc<SourceSet>,
    pub client: Arc<TransportClient>,
    /// Replica labels deduplicated by default (`replicaLabels[]` overrides per request).
    pub replica_labels: Vec<String>,
    pub concurrency: tokio::sync::Semaphore,
    pub external_labels: Labels,
}

impl QueryService {
    pub fn new(
        engine: Engine,
        sources: Arc<SourceSet>,
        client: Arc<TransportClient>,
        replica_labels: Vec<String>,
        max_concurrent: usize,
        external_labels: Labels,
    ) -> Self {
        QueryService {
            engine,
            sources,
            client,
            replica_labels,
            concurrency: tokio::sync::Semaphore::new(max_concurrent.max(1)),
            external_labels,
        }
    }

    /// The cluster-wide queryable for one request: `dedup` (default true), `replicaLabels[]`
    /// and `partial_response` (default true, as Thanos's querier) come from its parameters.
    pub fn queryable_for(&self, params: &Params) -> Result<Arc<ClusterQueryable>, ApiError> {
        let flag = |name: &str, default: bool| -> Result<bool, ApiError> {
            match params.get(name) {
                None => Ok(default),
                Some("true" | "1") => Ok(true),
                Some("false" | "0") => Ok(false),
                Some(other) => Err(invalid(
                    name,
                    format!("cannot parse {other:?} to a boolean"),
                )),
            }
        };
        let mut replica_labels: Vec<String> = params
            .get_all("replicaLabels[]")
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if replica_labels.is_empty() {
            replica_labels = self.replica_labels.clone();
        }
        let opts = FanoutOptions {
            dedup: flag("dedup", true)?,
            replica_labels,
            partial_response: flag("partial_response", true)?,
            timeout: self.engine.opts.timeout,
        };
        Ok(Arc::new(ClusterQueryable::new(
            self.sources.local(),
            self.sources.remote(),
            self.client.clone(),
            opts,
        )))
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        ("/api/v1/query", Handler::Instant),
        ("/api/v1/query_range", Handler::Range),
        ("/api/v1/series", Handler::Series),
        ("/api/v1/labels", Handler::Labels),
        ("/api/v1/query_exemplars", Handler::Exemplars),
        ("/api/v1/format_query", Handler::Format),
    ] {
        let h = move |req: HttpRequest, state: web::Data<NodeState>, body: web::Bytes| {
            dispatch(handler, req, state, body)
        };
        cfg.route(path, web::get().to(h))
            .route(path, web::post().to(h));
    }
    cfg.route("/api/v1/label/{name}/values", web::get().to(label_values))
        .route("/api/v1/metadata", web::get().to(metadata))
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
    state: web::Data<NodeState>,
    body: web::Bytes,
) -> ApiResult {
    if body.len() > MAX_FORM_BYTES {
        return Err(ApiError::bad_data(
            "error parsing form values: http: POST too large",
        ));
    }
    if let Some(forwarded) = forward_unless_local(&state, &req, &body, Role::QueryPlanner).await {
        return forwarded;
    }
    let params = Params::from_request(&req, &body);
    let svc = query_service(&state)?;
    match handler {
        Handler::Instant => instant(svc, params).await,
        Handler::Range => range(svc, params).await,
        Handler::Series => series(svc, params).await,
        Handler::Labels => label_names(svc, params).await,
        Handler::Exemplars => {
            params.time_range()?;
            Ok(success(&Vec::<serde_json::Value>::new()))
        }
        Handler::Format => format_query(params),
    }
}

fn query_service(state: &NodeState) -> Result<Arc<QueryService>, ApiError> {
    if !state.running.contains(Role::QueryPlanner) {
        return Err(ApiError::unavailable(
            "no query_planner role serves queries on this node",
        ));
    }
    Ok(state.query.clone())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn promql_error(e: PromqlError) -> ApiError {
    let kind = match e.error_type() {
        "bad_data" => ErrorType::BadData,
        "timeout" => ErrorType::Timeout,
        "canceled" => ErrorType::Canceled,
        _ => ErrorType::Execution,
    };
    if matches!(e, PromqlError::Parse(_)) {
        return invalid("query", e);
    }
    ApiError::new(kind, e.to_string())
}

/// Runs `f` on the blocking pool once a concurrency slot is free.
async fn run_query<F>(svc: &QueryService, f: F) -> Result<QueryValue, ApiError>
where
    F: FnOnce() -> Result<QueryValue, PromqlError> + Send + 'static,
{
    let _permit = svc
        .concurrency
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("query service is shutting down"))?;
    web::block(f)
        .await
        .map_err(|e| ApiError::internal(format!("query worker failed: {e}")))?
        .map_err(promql_error)
}

fn engine_for(svc: &QueryService, timeout_ms: Option<i64>) -> Engine {
    let mut engine = svc.engine.clone();
    if let Some(ms) = timeout_ms.filter(|ms| *ms > 0) {
        engine.opts.timeout = engine.opts.timeout.min(Duration::from_millis(ms as u64));
    }
    engine
}

/// Go's limit on a form body, which Prometheus inherits.
const MAX_FORM_BYTES: usize = 10 << 20;
/// Deeper nesting than this is refused before parsing, so no recursive pass can exhaust the
/// stack of a query worker (a stack overflow aborts the process; a panic would not).
const MAX_NESTING: usize = 256;

fn query_param(params: &Params) -> Result<String, ApiError> {
    // Prometheus lets the parser report an absent query ("no expression found in input").
    let q = params.get("query").unwrap_or("");
    check_nesting(q).map_err(|e| invalid("query", e))?;
    Ok(q.to_string())
}

/// Refuses queries nested deeper than `MAX_NESTING` brackets (outside string literals).
pub fn check_nesting(q: &str) -> Result<(), String> {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in q.chars() {
        if let Some(qc) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && qc != '`' {
                escaped = true;
            } else if c == qc {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max > MAX_NESTING {
        return Err(format!(
            "query nests {max} levels of brackets, more than the {MAX_NESTING} allowed"
        ));
    }
    Ok(())
}

/// Prometheus's exact bytes (timestamps as `1700000045.500`, values as strings).
fn value_response(v: QueryValue) -> HttpResponse {
    let body = crate::promql::json::format_success_body(&v);
    // A large result takes a while to free; the answer need not wait for that.
    crate::promql::eval::drop_in_background(Box::new(v));
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

async fn instant(svc: Arc<QueryService>, params: Params) -> ApiResult {
    let query = query_param(&params)?;
    let t = params.time("time", now_ms())?;
    let engine = engine_for(&svc, params.duration("timeout")?);
    let q = svc.queryable_for(&params)?;
    let mut v = run_query(&svc, {
        let q = q.clone();
        move || engine.instant(q.as_ref(), &query, t)
    })
    .await?;
    v.warnings.extend(q.take_warnings());
    Ok(value_response(v))
}

async fn range(svc: Arc<QueryService>, params: Params) -> ApiResult {
    let query = query_param(&params)?;
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
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let engine = engine_for(&svc, params.duration("timeout")?);
    let q = svc.queryable_for(&params)?;
    let mut v = run_query(&svc, {
        let q = q.clone();
        move || engine.range(q.as_ref(), &query, start, end, step)
    })
    .await?;
    v.warnings.extend(q.take_warnings());
    Ok(value_response(v))
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

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

fn storage_error(e: crate::storage::model::QueryableError) -> ApiError {
    ApiError::new(ErrorType::Execution, e.to_string())
}

async fn series(svc: Arc<QueryService>, params: Params) -> ApiResult {
    let sets = params.matchers()?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = params.time_range()?;
    let limit = params.limit()?;
    let q = svc.queryable_for(&params)?;
    let partial = q.clone();
    let found = blocking(move || {
        let mut all: Vec<Labels> = Vec::new();
        let hints = SelectHints {
            labels_only: true,
            ..Default::default()
        };
        for set in &sets {
            all.extend(
                q.select(set, start, end, &hints)
                    .map_err(storage_error)?
                    .into_iter()
                    .map(|s| s.labels),
            );
        }
        all.sort();
        all.dedup();
        Ok(all)
    })
    .await?;
    let mut warnings = partial.take_warnings();
    let found = apply_limit(found, limit, &mut warnings);
    let data: Vec<serde_json::Value> = found.iter().map(labels_json).collect();
    Ok(success_with_annotations(&data, &warnings, &[]))
}

/// Runs a per-matcher-set lookup over all `match[]` sets (or once with none) and merges.
fn merged_strings(
    q: &dyn Queryable,
    sets: &[Vec<Matcher>],
    f: impl Fn(&dyn Queryable, &[Matcher]) -> Result<Vec<String>, ApiError>,
) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    if sets.is_empty() {
        out = f(q, &[])?;
    }
    for set in sets {
        out.extend(f(q, set)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

async fn label_names(svc: Arc<QueryService>, params: Params) -> ApiResult {
    let sets = params.matchers()?;
    let (start, end) = params.time_range()?;
    let limit = params.limit()?;
    let q = svc.queryable_for(&params)?;
    let partial = q.clone();
    let names = blocking(move || {
        merged_strings(q.as_ref(), &sets, |q, m| {
            q.label_names(m, start, end).map_err(storage_error)
        })
    })
    .await?;
    let mut warnings = partial.take_warnings();
    let names = apply_limit(names, limit, &mut warnings);
    Ok(success_with_annotations(&names, &warnings, &[]))
}

async fn label_values(
    req: HttpRequest,
    state: web::Data<NodeState>,
    path: web::Path<String>,
) -> ApiResult {
    if let Some(forwarded) = forward_unless_local(&state, &req, &[], Role::QueryPlanner).await {
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
    let q = svc.queryable_for(&params)?;
    let partial = q.clone();
    let values = blocking(move || {
        merged_strings(q.as_ref(), &sets, |q, m| {
            q.label_values(&name, m, start, end).map_err(storage_error)
        })
    })
    .await?;
    let mut warnings = partial.take_warnings();
    let values = apply_limit(values, limit, &mut warnings);
    Ok(success_with_annotations(&values, &warnings, &[]))
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

async fn metadata(req: HttpRequest, state: web::Data<NodeState>) -> ApiResult {
    query_service(&state)?;
    // Metric metadata comes from the scrapes of the cluster's ScraperShippers.
    super::targets::metadata(&req, &state).await
}

fn format_query(params: Params) -> ApiResult {
    let query = params.get("query").unwrap_or("");
    let expr = crate::promql::engine::parse_query(query, 0, 0).map_err(promql_error)?;
    Ok(success(&expr.prettify()))
}

/// `/federate`: the latest sample of every series matching `match[]`, in the text format, with
/// this node's external labels added where a series lacks them.
async fn federate(req: HttpRequest, state: web::Data<NodeState>) -> ApiResult {
    if let Some(forwarded) = forward_unless_local(&state, &req, &[], Role::QueryPlanner).await {
        return forwarded;
    }
    let svc = query_service(&state)?;
    let params = Params::from_request(&req, &[]);
    let sets = params.matchers()?;
    let t = now_ms();
    let engine = svc.engine.clone();
    let q = svc.queryable_for(&params)?;
    let ext = svc.external_labels.clone();
    let body = blocking(move || {
        let mut samples: Vec<(Labels, f64, i64)> = Vec::new();
        for set in &sets {
            let selector = selector_text(set);
            let v = engine
                .instant(q.as_ref(), &selector, t)
                .map_err(promql_error)?;
            if let Value::Vector(vs) = v.value {
                samples.extend(vs.into_iter().map(|s| (s.labels, s.v, s.t)));
            }
        }
        Ok(federation_text(samples, &ext))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

/// A selector that selects exactly the series a matcher set matches.
fn selector_text(set: &[Matcher]) -> String {
    let parts: Vec<String> = set.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", parts.join(","))
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
            crate::storage::tools::format::go_float(v)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_but_strings_do_not_count() {
        assert!(check_nesting(&format!("{}1{}", "(".repeat(300), ")".repeat(300))).is_err());
        assert!(check_nesting(&format!("{}1{}", "(".repeat(20), ")".repeat(20))).is_ok());
        assert!(check_nesting(&format!(
            "label_replace(up, \"a\", \"{}\", \"b\", \"c\")",
            "(".repeat(400)
        ))
        .is_ok());
    }

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
