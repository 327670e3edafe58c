//! One target's scrape loop: a tokio task that waits for the target's stable offset in its
//! interval, then every interval fetches the body (Accept negotiation, gzip, timeout,
//! body_size_limit, auth), appends it to the head through the target's [`ScrapeCache`], writes
//! the report series (`up`, `scrape_*`), and records health for `/api/v1/targets`. A failure
//! touches only this target: it is reported as `up 0` with a clear `lastError`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::append::{report_samples, AppendCtx, AppendError, AppendStats, ScrapeCache};
use super::parser::{negotiate, Format, Metadata, SCRAPE_ACCEPT_HEADER};
use super::target::Target;
use crate::config::{LintPolicy, ScrapeConfig};
use crate::storage::db::Db;
use crate::storage::model::Labels;
use crate::time;

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("Get \"{url}\": {reason}")]
    Request { url: String, reason: String },
    #[error("Get \"{url}\": context deadline exceeded (scrape timeout {timeout:?})")]
    Timeout { url: String, timeout: Duration },
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded: the body is larger than body_size_limit ({0} bytes)")]
    BodyTooLarge(u64),
    #[error("reading the body: {0}")]
    Body(String),
    #[error("reading {what} {path}: {reason}")]
    Secret {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{0}")]
    Append(#[from] AppendError),
    #[error("{0}")]
    Parse(#[from] super::parser::ParseError),
    #[error("{0}")]
    Forced(String),
}

pub type Result<T> = std::result::Result<T, ScrapeError>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Unknown,
    Up,
    Down,
}

/// What `/api/v1/targets` shows about a target's last scrape.
#[derive(Clone, Debug, Default)]
pub struct TargetStatus {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: Duration,
    /// Naming problems of the exposition (`scrape::lint`), from the last linted scrape.
    pub lint: Vec<crate::scrape::lint::Problem>,
}

/// How often a target's body is linted: its names rarely change between scrapes, and the
/// lint costs about as much as a parse.
const LINT_EVERY: Duration = Duration::from_secs(300);

/// At most this many problems are kept per target (the counts by check stay exact in the
/// metric only up to it).
const MAX_LINT_PROBLEMS: usize = 200;

/// The handles a running loop shares with its pool.
#[derive(Clone, Default)]
pub struct LoopShared {
    pub status: Arc<Mutex<TargetStatus>>,
    pub metadata: Arc<Mutex<std::collections::BTreeMap<String, Metadata>>>,
    /// Cancels the loop.
    pub cancel: CancellationToken,
    /// Set before `cancel` when the target went away: its series then go stale.
    pub stale_on_stop: Arc<AtomicBool>,
    /// Cancelled when the whole manager stops (role stop, node shutdown): a loop waiting to
    /// write end-of-run staleness markers then gives up, as Prometheus does on shutdown.
    pub shutdown: CancellationToken,
    /// Fails every scrape with this error without fetching (the pool's target_limit).
    pub forced_error: Arc<Mutex<Option<String>>>,
}

/// Everything one loop needs; the pool builds it.
pub struct ScrapeLoop {
    pub cfg: Arc<ScrapeConfig>,
    pub client: reqwest::Client,
    pub target: Arc<Target>,
    pub db: Arc<Db>,
    pub interval: Duration,
    pub timeout: Duration,
    pub jitter_seed: u64,
    pub shared: LoopShared,
}

/// Per-loop mutable state.
struct LoopState {
    cache: ScrapeCache,
    body: Vec<u8>,
    target_labels: Labels,
    url: String,
    /// Timestamp of the last append, so end-of-run markers land after it.
    last_t: i64,
    /// Head refs of the five report series, so they skip the label lookup.
    report_refs: [u64; 5],
    /// When the body was last linted.
    linted_at: Option<Instant>,
    /// Under `lint: drop`, the families with problems in the last body.
    lint_dropped: HashSet<String>,
}

impl ScrapeLoop {
    /// Runs until cancelled. When cancelled with `stale_on_stop`, the target's series (and
    /// its report series) get staleness markers.
    pub async fn run(self) {
        let cancel = self.shared.cancel.clone();
        let offset = self.target.offset(
            self.interval,
            self.jitter_seed,
            time::since_epoch(SystemTime::now()).as_nanos(),
        );
        let mut st = LoopState {
            cache: ScrapeCache::default(),
            body: Vec::new(),
            target_labels: self.target.series_labels(),
            url: self.target.url(),
            last_t: 0,
            report_refs: [0; 5],
            linted_at: None,
            lint_dropped: HashSet::new(),
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(offset) => {}
        }
        let start = tokio::time::Instant::now();
        let mut ticker =
            tokio::time::interval_at(start, self.interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.scrape_once(&mut st) => {}
            }
        }
        if self.shared.stale_on_stop.load(Ordering::Acquire) && st.last_t > 0 {
            if let Some(t) = self.wait_before_staleness(&mut ticker).await {
                self.end_of_run(&mut st, t);
            }
        }
    }

    /// Like Prometheus, a removed target's markers are written only after just over two
    /// intervals (the target may come back under a reload), stamped with the time the next
    /// scrape would have run. `None` when the manager shuts down meanwhile: a restart or
    /// another node carries the series on, so no markers.
    async fn wait_before_staleness(&self, ticker: &mut tokio::time::Interval) -> Option<i64> {
        let shutdown = &self.shared.shutdown;
        let stale_t = tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = ticker.tick() => time::now_ms(),
        };
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(self.interval / 10) => {}
        }
        Some(stale_t)
    }

    /// One scrape. A successful body, its staleness markers and the report series go to
    /// the head in one commit (one WAL write); a failed one is rolled back and only the
    /// staleness markers and the report are committed.
    async fn scrape_once(&self, st: &mut LoopState) {
        let started = Instant::now();
        let wall = SystemTime::now();
        let t = time::now_ms().max(st.last_t + 1);
        let forced = self.shared.forced_error.lock().clone();
        let fetched = match forced {
            Some(e) => Err(ScrapeError::Forced(e)),
            None => self.fetch(&st.url, &mut st.body).await,
        };
        // Like Prometheus, the duration is the fetch's, not the append's.
        let duration = started.elapsed();
        let body_format = fetched.as_ref().ok().copied();
        // `lint: drop` lints every body before it is stored, so a family gets in neither
        // on the first scrape nor after it changes.
        let drop_lint = match body_format {
            Some(format) if self.cfg.lint == LintPolicy::Drop => {
                st.linted_at = Some(Instant::now());
                let problems = crate::scrape::lint::lint_body(&st.body, format).ok();
                if let Some(p) = &problems {
                    let families: HashSet<String> = p.iter().map(|p| p.metric.clone()).collect();
                    if families != st.lint_dropped {
                        // Cached series decisions were made under the old set; start over,
                        // as Prometheus does when a job's relabeling changes.
                        st.cache = ScrapeCache::default();
                        st.lint_dropped = families;
                    }
                }
                problems
            }
            _ => None,
        };
        let mut app = self.db.appender();
        // A failed append still reports what it counted (Prometheus's partial counts).
        let result: std::result::Result<AppendStats, (String, AppendStats)> = match fetched {
            Err(e) => Err((e.to_string(), AppendStats::default())),
            Ok(format) => {
                let ctx = AppendCtx {
                    cfg: &self.cfg,
                    target_labels: &st.target_labels,
                    lint_dropped: (self.cfg.lint == LintPolicy::Drop).then_some(&st.lint_dropped),
                };
                st.cache
                    .append(&mut app, &ctx, &st.body, format, t)
                    .map_err(|f| (f.error.to_string(), f.stats))
            }
        };
        let (up, stats, error) = match result {
            Ok(stats) => {
                if stats.out_of_order + stats.duplicates + stats.out_of_bounds > 0 {
                    tracing::debug!(target = %st.url, out_of_order = stats.out_of_order, duplicates = stats.duplicates,
                        out_of_bounds = stats.out_of_bounds, "samples rejected by the head");
                }
                (true, stats, String::new())
            }
            Err((e, counted)) => {
                // Dropping the appender rolls the partial body back.
                app = self.db.appender();
                if let Err(se) = st.cache.append_failed(&mut app, t) {
                    tracing::warn!(target = %st.url, error = %se, "writing staleness markers failed");
                }
                (false, counted, e)
            }
        };
        let report = report_samples(&self.target, &stats, up, duration.as_secs_f64());
        for (i, (labels, v)) in report.iter().enumerate() {
            let r = st.report_refs.get(i).copied().unwrap_or(0);
            match app.append(r, labels, t, *v) {
                Ok(new_ref) => {
                    if let Some(slot) = st.report_refs.get_mut(i) {
                        *slot = new_ref;
                    }
                }
                Err(e) => tracing::debug!(%labels, error = %e, "report sample rejected"),
            }
        }
        if let Err(e) = app.commit() {
            tracing::warn!(target = %st.url, error = %e, "committing a scrape failed");
        }
        st.last_t = t;
        let lint = match body_format {
            _ if drop_lint.is_some() => drop_lint.map(|mut p| {
                p.truncate(MAX_LINT_PROBLEMS);
                p
            }),
            Some(format) if up && st.linted_at.is_none_or(|at| at.elapsed() >= LINT_EVERY) => {
                st.linted_at = Some(Instant::now());
                crate::scrape::lint::lint_body(&st.body, format)
                    .ok()
                    .map(|mut p| {
                        p.truncate(MAX_LINT_PROBLEMS);
                        p
                    })
            }
            _ => None,
        };
        if st.body.capacity() > 4 * st.body.len().max(1 << 16) {
            // A one-off huge body should not pin its buffer.
            st.body = Vec::new();
        }
        {
            let mut s = self.shared.status.lock();
            s.health = if up { Health::Up } else { Health::Down };
            s.last_error = error;
            s.last_scrape = Some(wall);
            s.last_duration = duration;
            if let Some(lint) = lint {
                s.lint = lint;
            }
        }
        if up {
            let mut meta = self.shared.metadata.lock();
            if *meta != st.cache.metadata {
                meta.clone_from(&st.cache.metadata);
            }
        }
    }

    /// The target went away: its series and report series end at `stale_t`.
    fn end_of_run(&self, st: &mut LoopState, stale_t: i64) {
        let t = stale_t.max(st.last_t + 1);
        let mut app = self.db.appender();
        if let Err(e) = st.cache.append_end_of_run(&mut app, t) {
            tracing::warn!(target = %st.url, error = %e, "end-of-run staleness failed");
        }
        for (labels, _) in report_samples(&self.target, &AppendStats::default(), false, 0.0) {
            let _ = app.append(0, &labels, t, crate::storage::model::stale_nan());
        }
        if let Err(e) = app.commit() {
            tracing::warn!(target = %st.url, error = %e, "committing end-of-run staleness failed");
        }
    }

    /// GETs the body into `buf` within the timeout; returns the negotiated format.
    async fn fetch(&self, url: &str, buf: &mut Vec<u8>) -> Result<Format> {
        fetch_body(&self.client, &self.cfg, url, self.timeout, buf).await
    }
}

/// One scrape's GET of `url` into `buf` within `timeout` (Accept negotiation, auth,
/// body_size_limit), as every scrape and the dry run of the scrape-config API make it;
/// returns the negotiated format.
pub async fn fetch_body(
    client: &reqwest::Client,
    cfg: &ScrapeConfig,
    url: &str,
    timeout: Duration,
    buf: &mut Vec<u8>,
) -> Result<Format> {
    match tokio::time::timeout(timeout, fetch_inner(client, cfg, url, timeout, buf)).await {
        Ok(r) => r,
        Err(_) => Err(ScrapeError::Timeout {
            url: url.to_string(),
            timeout,
        }),
    }
}

async fn fetch_inner(
    client: &reqwest::Client,
    cfg: &ScrapeConfig,
    url: &str,
    timeout: Duration,
    buf: &mut Vec<u8>,
) -> Result<Format> {
    let mut req = client
        .get(url)
        .header(reqwest::header::ACCEPT, SCRAPE_ACCEPT_HEADER)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", timeout.as_secs_f64()),
        );
    req = apply_auth(req, cfg)?;
    let request_err = |e: reqwest::Error| ScrapeError::Request {
        url: url.to_string(),
        reason: crate::httpclient::error_chain(&e),
    };
    let mut resp = req.send().await.map_err(request_err)?;
    let status = resp.status();
    if status != reqwest::StatusCode::OK {
        return Err(ScrapeError::Status(status.to_string()));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let limit = cfg.body_size_limit.0;
    buf.clear();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ScrapeError::Body(crate::httpclient::error_chain(&e)))?
    {
        if limit > 0 && (buf.len() + chunk.len()) as u64 > limit {
            return Err(ScrapeError::BodyTooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(negotiate(&content_type)?.format)
}

/// Basic auth or an `Authorization` header; files are re-read per scrape like Prometheus.
fn apply_auth(req: reqwest::RequestBuilder, cfg: &ScrapeConfig) -> Result<reqwest::RequestBuilder> {
    crate::httpclient::apply_auth(req, &cfg.http_client().auth_header(), |p| p.to_path_buf())
        .map_err(|e| ScrapeError::Secret {
            what: e.what,
            path: e.path,
            reason: e.reason,
        })
}

/// The HTTP client of one scrape pool: TLS settings, redirects; no proxy from the environment.
pub fn build_client(
    cfg: &ScrapeConfig,
    resolve: impl Fn(&std::path::Path) -> std::path::PathBuf,
) -> std::result::Result<reqwest::Client, String> {
    crate::httpclient::build_client(
        &cfg.tls_config,
        cfg.follow_redirects,
        concat!("Strata/", env!("CARGO_PKG_VERSION")),
        resolve,
    )
}
