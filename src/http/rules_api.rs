//! Mimir's ruler config API: rule groups written over HTTP, kept in the bucket and evaluated by
//! the RuleEvaluators beside the rule-file groups. Served at `/prometheus/config/v1/rules` (the
//! path Mimir and mimirtool use) and `/config/v1/rules` (where Grafana's data source-managed
//! rules send a Mimir data source's calls), both below the web route prefix:
//! `GET` of all namespaces, of one namespace (YAML map namespace → groups) and of one group
//! (YAML), `POST /{namespace}` with exactly one group in YAML (202), `DELETE` of a group or a
//! namespace (202). Names are percent-decoded path segments. As in Mimir: errors are plain
//! text with Mimir's words (`no rule groups found`, `group does not exist`, `group namespace
//! does not exist`, 404), successful writes answer `{"status":"success",...}` with 202, and
//! a namespace with no groups is not listed. Unlike Mimir there is no tenant: a body is
//! validated as `strata check rules` validates a rule file's group (Mimir only decodes it) and
//! the problems are answered with 400; a group with a rule file's `file;name` key is refused
//! with 409; writes need the admin bearer token when one is configured (they change what every
//! node evaluates, like the admin API's writes); `POST ...?dry_run=true` stores nothing and
//! evaluates the group once now, answering what each rule would record or which alerts would
//! be pending or firing, with a warning for every selector that matches no series.
//!
//! A write goes to the bucket first (`apiconfig::DocStore`, kind `rules`, one document per
//! `[namespace, group]`), then to this node's copy (its RuleEvaluator takes it up at once),
//! then wakes the syncers; every node re-reads the documents at start, on that signal and on
//! a timer. Reads (and the existence checks of deletes) read the bucket, so every node answers
//! alike right after a write through any of them.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::error::success_with_annotations;
use super::AdminState;
use crate::apiconfig::{run_syncer, Apply, DocStore, Documents, SyncSignal};
use crate::promql::Value as PromValue;
use crate::query::service::{QueryOptions, QueryService};
use crate::rules::api::{
    from_documents, parse_group, render_group, render_namespaces, selector_probes, ApiGroups,
    ApiRulesError, Namespaces,
};
use crate::rules::file::RuleGroup;
use crate::rules::group::{Group, RuleQuerier};
use crate::rules::manager::SharedRules;
use crate::storage::bucket::ObjectStore;

/// The bucket kind of API rule groups (`strata/config/rules/`).
pub const KIND: &str = "rules";

const NO_RULE_GROUPS: &str = "no rule groups found";
const GROUP_NOT_FOUND: &str = "group does not exist";
const NAMESPACE_NOT_FOUND: &str = "group namespace does not exist";

/// What the ruler config API reads and writes.
pub struct RulesApiState {
    pub groups: Arc<ApiGroups>,
    pub store: DocStore,
    /// Wakes this node's syncers after a write.
    pub signal: SyncSignal,
    /// For dry runs.
    pub query: Arc<QueryService>,
    /// A group's interval when it sets none (`global.evaluation_interval`).
    pub default_interval: Duration,
}

/// Builds the API's state and starts the syncer that keeps this node's API groups (and so its
/// RuleEvaluator's) equal to the bucket's, until `cancel`. `rule_files` are read here too
/// when no RuleEvaluator has read them yet, so that a node without that role also refuses an
/// API group that would shadow a rule file's.
pub fn start(
    bucket: Arc<dyn ObjectStore>,
    rules: SharedRules,
    rule_files: &[std::path::PathBuf],
    query: Arc<QueryService>,
    default_interval: Duration,
    signal: SyncSignal,
    cancel: CancellationToken,
) -> RulesApiState {
    if rules.read().file_groups.is_empty() {
        if let Ok(defs) = crate::rules::manager::load(rule_files) {
            let mut view = rules.write();
            if view.file_groups.is_empty() {
                view.file_groups = defs;
            }
        }
    }
    let groups = Arc::new(ApiGroups::new(rules));
    let store = DocStore::new(bucket, KIND);
    let target = groups.clone();
    let apply: Apply = Arc::new(move |docs: &Documents| {
        let (all, bad) = from_documents(docs);
        for (name, e) in bad {
            tracing::error!(document = ?name, error = %e, "API rule group left out");
        }
        target.replace(all);
        Ok(())
    });
    actix_rt::spawn(run_syncer(
        store.clone(),
        apply,
        signal.clone(),
        crate::apiconfig::SYNC_INTERVAL,
        cancel,
    ));
    RulesApiState {
        groups,
        store,
        signal,
        query,
        default_interval,
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    for base in ["/prometheus/config/v1/rules", "/config/v1/rules"] {
        cfg.route(base, web::get().to(list_all))
            .route(
                &format!("{base}/{{namespace}}"),
                web::get().to(list_namespace),
            )
            .route(
                &format!("{base}/{{namespace}}"),
                web::post().to(create_group),
            )
            .route(
                &format!("{base}/{{namespace}}"),
                web::delete().to(delete_namespace),
            )
            .route(
                &format!("{base}/{{namespace}}/{{group}}"),
                web::get().to(get_group),
            )
            .route(
                &format!("{base}/{{namespace}}/{{group}}"),
                web::delete().to(delete_group),
            );
    }
}

/// Why a call of the ruler config API fails; each answers as Mimir does, in plain text.
#[derive(Debug, thiserror::Error)]
pub enum RulesApiError {
    /// A bad path parameter or body (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such namespace or group (404), in Mimir's words.
    #[error("{0}")]
    NotFound(&'static str),
    /// The group would shadow a rule file's group or another API group (409).
    #[error("{0}")]
    Conflict(ApiRulesError),
    /// The bucket or rendering failed (500).
    #[error("{0}")]
    Internal(String),
    /// No or a wrong admin token (401, the admin API's JSON error).
    #[error("{0}")]
    Unauthorized(super::error::ApiError),
}

type Result<T> = std::result::Result<T, RulesApiError>;

impl ResponseError for RulesApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            RulesApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RulesApiError::NotFound(_) => StatusCode::NOT_FOUND,
            RulesApiError::Conflict(_) => StatusCode::CONFLICT,
            RulesApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            RulesApiError::Unauthorized(e) => e.status_code(),
        }
    }

    /// Go's `http.Error`: the message and a newline, as plain text.
    fn error_response(&self) -> HttpResponse {
        if let RulesApiError::Unauthorized(e) = self {
            return e.error_response();
        }
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(format!("{self}\n"))
    }
}

impl From<ApiRulesError> for RulesApiError {
    fn from(e: ApiRulesError) -> Self {
        match e {
            ApiRulesError::Invalid(problems) => RulesApiError::BadRequest(problems.join(", ")),
            e @ (ApiRulesError::Conflict { .. } | ApiRulesError::Ambiguous { .. }) => {
                RulesApiError::Conflict(e)
            }
            e => RulesApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::apiconfig::ApiConfigError> for RulesApiError {
    fn from(e: crate::apiconfig::ApiConfigError) -> Self {
        tracing::error!(error = %e, "cannot store API rule groups");
        RulesApiError::Internal(e.to_string())
    }
}

fn yaml(text: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(text)
}

/// Mimir's answer to an accepted write.
fn accepted() -> HttpResponse {
    HttpResponse::Accepted().json(json!({
        "status": "success", "data": null, "errorType": "", "error": ""
    }))
}

/// A path parameter, percent-decoded (`a%2Fb` is `a/b`).
fn param(req: &HttpRequest, name: &str) -> Result<String> {
    let raw = req.match_info().get(name).unwrap_or_default();
    match percent_decode(raw) {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) if name == "namespace" => Err(RulesApiError::BadRequest(
            "a namespace must be provided in the request".to_string(),
        )),
        Some(_) => Err(RulesApiError::BadRequest(
            "a matching group name must be provided in the request".to_string(),
        )),
        None => Err(RulesApiError::BadRequest(format!(
            "invalid URL escape in {name} {raw:?}"
        ))),
    }
}

pub use crate::apiconfig::percent_decode;

/// Writes change what every node evaluates, so they need the admin token as the admin API's
/// writes do (Mimir has tenants instead; Strata has none).
fn authorized(req: &HttpRequest, admin: &AdminState) -> Result<()> {
    super::admin::authorize(req, admin).map_err(RulesApiError::Unauthorized)
}

/// The API groups as the bucket holds them now: reads see a write made through any node at
/// once (behind a load balancer, mimirtool's next call may reach another node than its
/// write did), not only after that node's next sync.
async fn current(state: &RulesApiState) -> Result<Namespaces> {
    let docs = state.store.load_all().await?;
    let (all, bad) = from_documents(&docs);
    for (name, e) in bad {
        tracing::warn!(document = ?name, error = %e, "API rule group left out");
    }
    Ok(all)
}

async fn list_all(state: web::Data<RulesApiState>) -> Result<HttpResponse> {
    let all = current(&state).await?;
    if all.is_empty() {
        return Err(RulesApiError::NotFound(NO_RULE_GROUPS));
    }
    Ok(yaml(render_namespaces(&all)?))
}

async fn list_namespace(req: HttpRequest, state: web::Data<RulesApiState>) -> Result<HttpResponse> {
    let namespace = param(&req, "namespace")?;
    let mut all = current(&state).await?;
    all.retain(|ns, _| *ns == namespace);
    if all.is_empty() {
        return Err(RulesApiError::NotFound(NO_RULE_GROUPS));
    }
    Ok(yaml(render_namespaces(&all)?))
}

async fn get_group(req: HttpRequest, state: web::Data<RulesApiState>) -> Result<HttpResponse> {
    let namespace = param(&req, "namespace")?;
    let name = param(&req, "group")?;
    let all = current(&state).await?;
    match all.get(&namespace).and_then(|g| g.get(&name)) {
        Some(g) => Ok(yaml(render_group(g)?)),
        None => Err(RulesApiError::NotFound(GROUP_NOT_FOUND)),
    }
}

async fn create_group(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<RulesApiState>,
    admin: web::Data<AdminState>,
) -> Result<HttpResponse> {
    authorized(&req, &admin)?;
    let namespace = param(&req, "namespace")?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| RulesApiError::BadRequest("the rule group is not UTF-8 text".to_string()))?;
    let group = parse_group(text)?;
    state.groups.conflict(&namespace, &group.name)?;
    if dry_run_asked(&req) {
        return dry_run(&state, &namespace, &group).await;
    }
    let stored = render_group(&group)?;
    state.store.put(&[&namespace, &group.name], &stored).await?;
    tracing::info!(namespace = %namespace, group = %group.name, "API rule group stored");
    state.groups.put(&namespace, group);
    state.signal.notify();
    // Peers re-read now rather than at their next timer.
    let _ = super::scrape_configs::notify_peers(&req, &admin).await;
    Ok(accepted())
}

async fn delete_group(
    req: HttpRequest,
    state: web::Data<RulesApiState>,
    admin: web::Data<AdminState>,
) -> Result<HttpResponse> {
    authorized(&req, &admin)?;
    let namespace = param(&req, "namespace")?;
    let name = param(&req, "group")?;
    let exists = current(&state)
        .await?
        .get(&namespace)
        .is_some_and(|g| g.contains_key(&name));
    if !exists {
        return Err(RulesApiError::NotFound(GROUP_NOT_FOUND));
    }
    state.store.delete(&[&namespace, &name]).await?;
    tracing::info!(namespace = %namespace, group = %name, "API rule group deleted");
    state.groups.remove_group(&namespace, &name);
    state.signal.notify();
    // Peers re-read now rather than at their next timer.
    let _ = super::scrape_configs::notify_peers(&req, &admin).await;
    Ok(accepted())
}

async fn delete_namespace(
    req: HttpRequest,
    state: web::Data<RulesApiState>,
    admin: web::Data<AdminState>,
) -> Result<HttpResponse> {
    authorized(&req, &admin)?;
    let namespace = param(&req, "namespace")?;
    let names: Vec<String> = match current(&state).await?.remove(&namespace) {
        Some(groups) => groups.into_keys().collect(),
        None => return Err(RulesApiError::NotFound(NAMESPACE_NOT_FOUND)),
    };
    for name in &names {
        state.store.delete(&[&namespace, name]).await?;
    }
    tracing::info!(namespace = %namespace, groups = names.len(), "API rule namespace deleted");
    state.groups.remove_namespace(&namespace);
    state.signal.notify();
    // Peers re-read now rather than at their next timer.
    let _ = super::scrape_configs::notify_peers(&req, &admin).await;
    Ok(accepted())
}

fn dry_run_asked(req: &HttpRequest) -> bool {
    form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "dry_run" && matches!(v.as_ref(), "true" | "1"))
}

/// The rules' queries through the node's query service, at the dry run's instant.
struct Querier(Arc<QueryService>);

impl RuleQuerier for Querier {
    fn query<'a>(
        &'a self,
        expr: &'a str,
        ts_ms: i64,
    ) -> futures::future::BoxFuture<'a, std::result::Result<(PromValue, Vec<String>), String>> {
        Box::pin(async move {
            let v = self
                .0
                .instant(expr, ts_ms, &QueryOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok((v.value, v.warnings))
        })
    }
}

/// Alert templates in a dry run: labels and values, no `query` function.
struct DryRunExpander;

impl crate::rules::alerting::Expander for DryRunExpander {
    fn expand(
        &self,
        alert: &str,
        text: &str,
        labels: &crate::storage::model::Labels,
        value: f64,
        ts_ns: i64,
    ) -> String {
        use crate::rules::template::{ExpandContext, NoQueries, TemplateData};
        let data = TemplateData::for_alert(labels, value, &Default::default(), "");
        let queries = NoQueries("queries are not run in a dry run".to_string());
        let ctx = ExpandContext {
            data: &data,
            eval_time_ms: ts_ns.div_euclid(1_000_000),
            query: &queries,
            external_url: None,
        };
        crate::rules::template::expand_or_error_text(alert, text, &ctx)
    }
}

/// Evaluates each rule of `group` once now (each on its own: nothing is written, so a rule
/// never sees another's output) and probes every selector of the rules' expressions.
async fn dry_run(
    state: &RulesApiState,
    namespace: &str,
    group: &RuleGroup,
) -> Result<HttpResponse> {
    let now_ns = crate::time::now_ms().saturating_mul(1_000_000);
    let querier = Querier(state.query.clone());
    let mut rules = Vec::with_capacity(group.rules.len());
    let mut warnings = Vec::new();
    let mut probed: Vec<String> = Vec::new();
    for rule in &group.rules {
        let single = RuleGroup {
            rules: vec![rule.clone()],
            ..group.clone()
        };
        let mut g = Group::new(namespace, &single, state.default_interval, false)
            .map_err(RulesApiError::BadRequest)?;
        let out = g.eval(now_ns, &querier, &DryRunExpander).await;
        let Some(r) = g.rules.first() else {
            continue;
        };
        let mut o = super::rules::rule_json(r);
        if r.alerting.is_none() && r.last_error.is_none() {
            let series: Vec<Value> = out
                .samples
                .iter()
                .map(|s| {
                    let metric: serde_json::Map<String, Value> = s
                        .labels
                        .iter()
                        .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
                        .collect();
                    json!({
                        "metric": metric,
                        "value": [s.t as f64 / 1000.0, crate::gocompat::format_float(s.v)],
                    })
                })
                .collect();
            o["series"] = Value::Array(series);
        }
        rules.push(o);
        let Ok(expr) = rule.parsed_expr() else {
            continue;
        };
        for probe in selector_probes(&expr) {
            if probed.contains(&probe.selector) {
                continue;
            }
            probed.push(probe.selector.clone());
            let answer = state
                .query
                .instant(&probe.query, now_ns / 1_000_000, &QueryOptions::default())
                .await;
            match answer {
                Ok(v) if matches!(&v.value, PromValue::Vector(s) if s.is_empty()) => {
                    warnings.push(format!(
                        "rule {:?}: selector {} matches no series",
                        rule.name(),
                        probe.selector
                    ));
                }
                Ok(_) => {}
                Err(e) => warnings.push(format!(
                    "rule {:?}: cannot check selector {}: {e}",
                    rule.name(),
                    probe.selector
                )),
            }
        }
    }
    let data = json!({
        "namespace": namespace,
        "name": group.name,
        "evaluatedAt": crate::time::go_rfc3339_nano(now_ns),
        "rules": rules,
    });
    Ok(success_with_annotations(&data, &warnings, &[]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[actix_rt::test]
    async fn path_parameters_are_decoded_once() {
        use actix_web::test;
        async fn echo(req: HttpRequest) -> Result<HttpResponse> {
            Ok(HttpResponse::Ok().body(param(&req, "namespace")?))
        }
        let app =
            test::init_service(actix_web::App::new().route("/x/{namespace}", web::get().to(echo)))
                .await;
        for (path, want) in [
            ("/x/a%25b%2Fc%2Bd%20e", "a%b/c+d e"),
            ("/x/%C3%BC", "ü"),
            ("/x/plain", "plain"),
        ] {
            let resp =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(resp.status(), 200, "{path}");
            let body = test::read_body(resp).await;
            assert_eq!(std::str::from_utf8(&body).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn path_segments_decode_like_go() {
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("a b%20c").as_deref(), Some("a b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%C3%BC").as_deref(), Some("ü"));
        assert_eq!(percent_decode("%FF"), None);
    }
}
