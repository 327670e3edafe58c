//! The scrape-config API: scrape jobs added, read, changed and removed over HTTP, checked
//! before they land. `PUT /api/v1/admin/scrape_configs/{job}` takes one job in Prometheus's
//! syntax (YAML, or JSON by content type); it is validated as one more job of the node's config
//! (errors name the key, 400), refused with 409 when the config file defines the job, and with
//! `?dry_run=true` every target is scraped once and the answer says, per target, whether it
//! answered, its series, naming problems and estimated bytes per day — for a job that exists,
//! both for the config in force (`before`) and the one sent (`after`) — and nothing is stored.
//! An accepted job is written to the bucket (`apiconfig`), applied here, and every live peer is
//! told to re-read, so the cluster scrapes it; the bucket copy is what brings it back after a
//! restart. `GET` lists or shows jobs (file and API, each with its source), `DELETE` removes an
//! API job. Every admin route needs the admin token. Unauthenticated, `/api/v1/http_sd` and
//! `/api/v1/http_sd/{job}` serve the jobs' static and file targets in the `http_sd_configs`
//! format, so a plain Prometheus can scrape what is managed here.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::json;

use super::admin::authorize;
use super::error::{success, ApiError, ApiResult, ErrorType};
use super::{AdminState, TargetsState};
use crate::apiconfig::scrape::{is_file_job, parse_body, validate, JobError};
use crate::config::{Config, ScrapeConfig};
use crate::scrape::dry_run::{dry_run, DryRunReport};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/admin/scrape_configs", web::get().to(list_jobs))
        .route("/api/v1/admin/scrape_configs/{job}", web::get().to(get_job))
        .route("/api/v1/admin/scrape_configs/{job}", web::put().to(put_job))
        .route(
            "/api/v1/admin/scrape_configs/{job}",
            web::delete().to(delete_job),
        )
        .route("/api/v1/admin/config/sync", web::post().to(sync))
        .route("/api/v1/http_sd", web::get().to(http_sd_all))
        .route("/api/v1/http_sd/{job}", web::get().to(http_sd_job));
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::FileJob(_) => ApiError::new(ErrorType::Conflict, e.to_string()),
            other => ApiError::bad_data(other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct JobView {
    job: String,
    /// `file` or `api`.
    source: &'static str,
    /// The config as the node uses it (intervals filled in, secrets as `<secret>`).
    yaml: String,
}

fn view(job: &ScrapeConfig) -> Result<JobView, ApiError> {
    Ok(JobView {
        job: job.job_name.clone(),
        source: if job.from_api { "api" } else { "file" },
        yaml: serde_norway::to_string(job)
            .map_err(|e| ApiError::internal(format!("rendering job {}: {e}", job.job_name)))?,
    })
}

async fn list_jobs(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    targets: web::Data<TargetsState>,
) -> ApiResult {
    authorize(&req, &admin)?;
    let config = targets.scrape.config();
    let jobs: Vec<JobView> = config
        .scrape_configs
        .iter()
        .map(view)
        .collect::<Result<_, _>>()?;
    Ok(success(&jobs))
}

fn find<'a>(config: &'a Config, job: &str) -> Option<&'a ScrapeConfig> {
    config.scrape_configs.iter().find(|j| j.job_name == job)
}

async fn get_job(
    req: HttpRequest,
    path: web::Path<String>,
    admin: web::Data<AdminState>,
    targets: web::Data<TargetsState>,
) -> ApiResult {
    authorize(&req, &admin)?;
    let config = targets.scrape.config();
    match find(&config, &path) {
        Some(job) => Ok(success(&view(job)?)),
        None => Err(no_such_job(&path)),
    }
}

fn no_such_job(job: &str) -> ApiError {
    ApiError::new(
        ErrorType::NotFound,
        format!("no scrape config for job {job:?}"),
    )
}

async fn put_job(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    admin: web::Data<AdminState>,
    targets: web::Data<TargetsState>,
) -> ApiResult {
    authorize(&req, &admin)?;
    let job = path.into_inner();
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = parse_body(&body, content_type, &job)?;
    let current = targets.scrape.config();
    validate(&current, &parsed.config)?;
    if is_dry_run(&req) {
        let base = current.clone();
        let mut after_cfg =
            crate::scrape::manager::with_api_jobs(&base, std::slice::from_ref(&parsed.config));
        let after_job = after_cfg
            .scrape_configs
            .pop()
            .ok_or_else(|| ApiError::internal("the job vanished while being checked"))?;
        let resolve = |p: &std::path::Path| base.resolve_path(p);
        let after = dry_run(&after_job, resolve).await;
        let before: Option<DryRunReport> = match find(&current, &job) {
            Some(existing) => Some(dry_run(existing, resolve).await),
            None => None,
        };
        return Ok(success(&json!({
            "job": job,
            "dryRun": true,
            "stored": false,
            "before": before,
            "after": after,
        })));
    }
    admin
        .api_configs
        .scrape
        .put(&[&job], &parsed.yaml)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot store the job: {e}")))?;
    let report = apply_stored(&admin, &targets).await?;
    let warnings = notify_peers(&req, &admin).await;
    Ok(super::error::success_with_annotations(
        &json!({"job": job, "stored": true, "reload": report}),
        &warnings,
        &[],
    ))
}

async fn delete_job(
    req: HttpRequest,
    path: web::Path<String>,
    admin: web::Data<AdminState>,
    targets: web::Data<TargetsState>,
) -> ApiResult {
    authorize(&req, &admin)?;
    let job = path.into_inner();
    let current = targets.scrape.config();
    if is_file_job(&current, &job) {
        return Err(JobError::FileJob(job).into());
    }
    if find(&current, &job).is_none() {
        return Err(no_such_job(&job));
    }
    admin
        .api_configs
        .scrape
        .delete(&[&job])
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot delete the job: {e}")))?;
    let report = apply_stored(&admin, &targets).await?;
    let warnings = notify_peers(&req, &admin).await;
    Ok(super::error::success_with_annotations(
        &json!({"job": job, "deleted": true, "reload": report}),
        &warnings,
        &[],
    ))
}

fn is_dry_run(req: &HttpRequest) -> bool {
    form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "dry_run" && matches!(v.as_ref(), "true" | "1" | "yes"))
}

/// Re-reads every stored job and applies the set here, at once (not waiting for the syncer),
/// so the answer of a write reports what this node now scrapes.
async fn apply_stored(
    admin: &AdminState,
    targets: &TargetsState,
) -> Result<crate::scrape::ReloadReport, ApiError> {
    let docs = admin
        .api_configs
        .scrape
        .load_all()
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot read the stored jobs: {e}")))?;
    let jobs = crate::apiconfig::scrape::jobs_from_documents(&docs);
    Ok(targets.scrape.set_api_jobs(jobs))
}

/// Tells every live peer to re-read the API configs now; the ones that cannot be told are
/// named in warnings (their timer still brings them up to date).
pub(super) async fn notify_peers(req: &HttpRequest, admin: &AdminState) -> Vec<String> {
    let peers: Vec<_> = admin.router.cluster.live_peers();
    if peers.is_empty() {
        return Vec::new();
    }
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot tell peers about the change: {e}")],
    };
    let prefix = req
        .path()
        .split("/api/v1/")
        .next()
        .unwrap_or("")
        .to_string();
    let auth = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .cloned();
    let calls = peers.iter().map(|p| {
        let mut call = client.post(format!(
            "http://{}{prefix}/api/v1/admin/config/sync",
            p.http_addr
        ));
        if let Some(a) = &auth {
            call = call.header(reqwest::header::AUTHORIZATION, a.as_bytes());
        }
        async move { call.send().await.and_then(|r| r.error_for_status()) }
    });
    let answers = futures::future::join_all(calls).await;
    let mut warnings = Vec::new();
    for (p, a) in peers.iter().zip(answers) {
        if let Err(e) = a {
            warnings.push(format!(
                "node {} ({}) was not told to re-read the config now ({e}); it will within {}s",
                p.node_id,
                p.http_addr,
                crate::apiconfig::SYNC_INTERVAL.as_secs()
            ));
        }
    }
    warnings
}

async fn sync(req: HttpRequest, admin: web::Data<AdminState>) -> ApiResult {
    authorize(&req, &admin)?;
    admin.api_configs.signal.notify();
    Ok(success(&json!({"synced": true})))
}

/// One `http_sd_configs` target group.
#[derive(Serialize)]
struct SdGroup {
    targets: Vec<String>,
    labels: BTreeMap<String, String>,
}

/// The static and file_sd groups of `job`, with `job` as a label when `with_job`.
fn sd_groups(config: &Config, job: &ScrapeConfig, with_job: bool) -> Vec<SdGroup> {
    let mut groups = crate::scrape::target::static_groups(job);
    for sd in &job.file_sd_configs {
        let patterns: Vec<_> = sd.files.iter().map(|f| config.resolve_path(f)).collect();
        // Unreadable files are left out, as a running discovery would leave them.
        groups.extend(crate::scrape::file_sd::read_once(&patterns).0);
    }
    groups
        .into_iter()
        .map(|g| {
            let mut labels = g.labels;
            if with_job {
                labels
                    .entry("job".to_string())
                    .or_insert_with(|| job.job_name.clone());
            }
            SdGroup {
                targets: g
                    .targets
                    .iter()
                    .filter_map(|t| t.get(crate::scrape::target::ADDRESS_LABEL).cloned())
                    .collect(),
                labels,
            }
        })
        .filter(|g| !g.targets.is_empty())
        .collect()
}

async fn http_sd_all(targets: web::Data<TargetsState>) -> HttpResponse {
    let config = targets.scrape.config();
    let groups: Vec<SdGroup> = config
        .scrape_configs
        .iter()
        .flat_map(|j| sd_groups(&config, j, true))
        .collect();
    HttpResponse::Ok().json(groups)
}

async fn http_sd_job(path: web::Path<String>, targets: web::Data<TargetsState>) -> ApiResult {
    let config = targets.scrape.config();
    match find(&config, &path) {
        Some(job) => Ok(HttpResponse::Ok().json(sd_groups(&config, job, false))),
        None => Err(no_such_job(&path)),
    }
}
