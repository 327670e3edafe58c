//! Prometheus's remote-read endpoint (`POST /api/v1/read`, Prometheus's
//! `storage/remote/read_handler.go`): a snappy `ReadRequest` in; the data of the whole cluster
//! out, selected like a query selects it (the QueryPlanner's sources: scraper_shippers' heads,
//! sidecar Prometheuses, store shards over the bucket) with HA replicas deduplicated, raw
//! resolution only, and the node's `global.external_labels` added to series (matchers that only
//! restate them are dropped first), as Prometheus does. A client that accepts
//! `STREAMED_XOR_CHUNKS` first gets `ChunkedReadResponse` frames (one series each, at most about
//! 1 MiB), encoded one series at a time as the body is sent and one query selected at a time;
//! otherwise one snappy `ReadResponse` with the samples in each query's range. A body that does
//! not decode, or a bad matcher, answers 400 with the reason as plain text (like Prometheus).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::stream;

use super::forward::forward_unless_local;
use super::QueryState;
use crate::config::Role;
use crate::query::fanout::ClusterQueryable;
use crate::query::service::{QueryOptions, SourceResolution};
use crate::remote::prompb::{ReadResponse, STREAMED_CONTENT_TYPE};
use crate::remote::read::{
    self, decode_request, query_matchers, query_result, series_frames, wants_streamed,
    with_external, ReadError, MAX_BYTES_IN_FRAME, SAMPLE_LIMIT,
};
use crate::storage::model::{Matcher, Queryable, SelectHints, Series};

#[derive(Debug, thiserror::Error)]
pub enum RemoteReadError {
    #[error("{0}")]
    Request(#[from] ReadError),
    #[error("no query_planner role serves remote read on this node")]
    NoPlanner,
    #[error("reading series: {0}")]
    Select(String),
}

impl RemoteReadError {
    fn status(&self) -> StatusCode {
        match self {
            RemoteReadError::Request(ReadError::Chunks { .. }) | RemoteReadError::Select(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            RemoteReadError::Request(_) => StatusCode::BAD_REQUEST,
            RemoteReadError::NoPlanner => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status())
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/read", web::post().to(read_handler));
}

/// One query of the request, checked and ready to select.
struct Prepared {
    matchers: Vec<Matcher>,
    mint: i64,
    maxt: i64,
    hints: SelectHints,
}

async fn read_handler(
    req: HttpRequest,
    state: web::Data<QueryState>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(forwarded) =
        forward_unless_local(&state.router, &req, &body, Role::QueryPlanner).await
    {
        return match forwarded {
            Ok(r) => r,
            Err(e) => HttpResponse::ServiceUnavailable().body(e.message),
        };
    }
    match serve(&state, &body).await {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

async fn serve(state: &QueryState, body: &[u8]) -> Result<HttpResponse, RemoteReadError> {
    if !state.router.runs(Role::QueryPlanner) {
        return Err(RemoteReadError::NoPlanner);
    }
    let request = decode_request(body)?;
    let external: BTreeMap<String, String> = state
        .service
        .external_labels()
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    let mut queries = Vec::with_capacity(request.queries.len());
    for (i, q) in request.queries.iter().enumerate() {
        let hints = q.hints.as_ref();
        queries.push(Prepared {
            matchers: query_matchers(i, q, &external)?,
            mint: q.start_timestamp_ms,
            maxt: q.end_timestamp_ms,
            hints: SelectHints {
                func: hints.map(|h| h.func.clone()).filter(|f| !f.is_empty()),
                range_ms: hints.map_or(0, |h| h.range_ms),
                max_resolution_ms: Some(0),
                ..SelectHints::default()
            },
        });
    }
    // Raw data only: remote read carries samples and XOR chunks, never aggregates.
    let opts = QueryOptions {
        max_source_resolution: Some(SourceResolution::Max(0)),
        ..QueryOptions::default()
    };
    let queryable = state.service.queryable(&opts);
    if wants_streamed(&request) {
        return Ok(streamed(queryable, queries, Arc::new(external)));
    }
    let mut budget = SAMPLE_LIMIT;
    let mut resp = ReadResponse {
        results: Vec::with_capacity(queries.len()),
    };
    for q in queries {
        let (mint, maxt) = (q.mint, q.maxt);
        let series = select(queryable.clone(), q, Arc::new(external.clone())).await?;
        resp.results
            .push(query_result(&series, mint, maxt, &mut budget)?);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .insert_header(("Content-Encoding", "snappy"))
        .body(read::encode_sampled(&resp)))
}

/// Selects one query's series on the blocking pool, labelled with the external labels.
async fn select(
    queryable: Arc<ClusterQueryable>,
    q: Prepared,
    external: Arc<BTreeMap<String, String>>,
) -> Result<Vec<Series>, RemoteReadError> {
    let series = tokio::task::spawn_blocking(move || {
        queryable.select(&q.matchers, q.mint, q.maxt, &q.hints)
    })
    .await
    .map_err(|e| RemoteReadError::Select(e.to_string()))?
    .map_err(|e| RemoteReadError::Select(e.to_string()))?;
    let mut out: Vec<Series> = series
        .into_iter()
        .map(|mut s| {
            s.labels = with_external(std::mem::take(&mut s.labels), &external);
            s
        })
        .collect();
    if !out.windows(2).all(|w| w[0].labels <= w[1].labels) {
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
    Ok(out)
}

/// Where the streamed body is: the frames of the series being sent, the series of the
/// query being sent, the queries still to select.
struct StreamState {
    queryable: Arc<ClusterQueryable>,
    external: Arc<BTreeMap<String, String>>,
    queries: VecDeque<Prepared>,
    query_index: i64,
    series: std::vec::IntoIter<Series>,
    frames: VecDeque<bytes::Bytes>,
}

/// The streamed answer: each query is selected when the previous one has been sent, and
/// each series is framed only when the body needs it. A failure after the first byte can
/// only end the body early; the client sees a truncated stream.
fn streamed(
    queryable: Arc<ClusterQueryable>,
    queries: Vec<Prepared>,
    external: Arc<BTreeMap<String, String>>,
) -> HttpResponse {
    let state = StreamState {
        queryable,
        external,
        queries: queries.into(),
        query_index: -1,
        series: Vec::new().into_iter(),
        frames: VecDeque::new(),
    };
    let body = stream::unfold(Some(state), |st| async move {
        let mut st = st?;
        loop {
            if let Some(f) = st.frames.pop_front() {
                return Some((Ok::<_, RemoteReadError>(f), Some(st)));
            }
            if let Some(s) = st.series.next() {
                match series_frames(&s, st.query_index, MAX_BYTES_IN_FRAME) {
                    Ok(frames) => st.frames.extend(frames),
                    Err(e) => return Some((Err(e.into()), None)),
                }
                continue;
            }
            let q = st.queries.pop_front()?;
            st.query_index += 1;
            match select(st.queryable.clone(), q, st.external.clone()).await {
                Ok(series) => st.series = series.into_iter(),
                Err(e) => {
                    tracing::warn!(error = %e, "remote read: ending the streamed answer early");
                    return Some((Err(e), None));
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type(STREAMED_CONTENT_TYPE)
        .streaming(body)
}
