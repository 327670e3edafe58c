//! `GET /api/v1/status/cardinality`: the cluster's series, samples and bytes per metric name,
//! per job and per label name, the same whichever node is asked. The node asked builds its own
//! digest and asks every other live ScraperShipper and StoreShard for theirs (each answers for
//! itself, marked with the `LOCAL_ONLY` header, with the asking node's resolved time range);
//! `digest::merge` then counts each series once across HA replicas (see `digest` for the
//! rules). A peer that does not answer is named in the warnings. Exact deduplication needs
//! the series themselves, so a digest has one compact row per series (a 64-bit identity hash
//! and indices into a string table) plus the distinct values per label name: the cost of a
//! request grows with the cluster's series, like Prometheus's TSDB status grows with its head.
//!
//! Parameters: `match[]` (series selectors, any of them; default every series), `focusLabel`
//! (adds `seriesCountByFocusLabelValue`), `limit` (entries per list, default 10, at most
//! 10000, as Prometheus's TSDB status), `start`/`end` (default: the last hour up to now).
//! A series counts when it has a chunk overlapping the range in a head or in a bucket block.
//!
//! Figures: head bytes are the XOR chunk bytes in the heads (the open chunk as encoded so far)
//! of chunks overlapping the range; samples per second come from the head only: per series,
//! (samples − 1) / (last − first sample time) over those chunks, summed per list entry;
//! bucket bytes are the stored chunk records (every resolution) of blocks overlapping the
//! range, from the block indexes (see `storage::store::footprint`). Blocks still only on a
//! ScraperShipper's disk are not counted. For replicas the max is taken, not the sum.
//!
//! Answer (`data`): `start`, `end` (unix seconds), `totals` {series, headSeries, bucketSeries,
//! metrics, labelNames, labelValuePairs, samplesPerSecond, headBytes, bucketBytes, blocks},
//! `seriesCountByMetricName` and `seriesCountByJob` [{name, series, samplesPerSecond,
//! headBytes, bucketBytes}], `seriesCountByLabelName` [{name, series, values}], with a focus
//! label `focusLabel` and `seriesCountByFocusLabelValue` (like the metric list), and `nodes`
//! [{node, headSeries, bucketSeries, blocks}] (before deduplication).

pub mod digest;

use std::time::Duration;

use actix_web::{web, HttpRequest};
use serde::Serialize;

use super::error::{success, success_with_annotations, ApiError, ApiResult};
use super::params::Params;
use super::targets_cluster::{wants_local_only, LOCAL_ONLY};
use super::StatusState;
use crate::cluster::membership::identity::NodeMeta;
use crate::config::Role;
use crate::storage::model::{Labels, Matcher};
use digest::{Digest, DigestBuilder, Report};

const DEFAULT_RANGE_MS: i64 = 3_600_000;
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 10_000;
/// Blocks read at once by this node's StoreShard.
const BLOCK_CONCURRENCY: usize = 4;
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CardinalityError {
    #[error("invalid parameter \"limit\": {0}")]
    Limit(String),
    #[error("reading the head: {0}")]
    Head(String),
    #[error("cannot ask peers: {0}")]
    Client(String),
}

pub type Result<T> = std::result::Result<T, CardinalityError>;

impl From<CardinalityError> for ApiError {
    fn from(e: CardinalityError) -> Self {
        match e {
            CardinalityError::Limit(_) => ApiError::bad_data(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/status/cardinality", web::get().to(cardinality));
}

/// The request, resolved once by the node asked so every peer answers for the same range.
struct Request {
    selectors: Vec<Vec<Matcher>>,
    raw_selectors: Vec<String>,
    focus: Option<String>,
    limit: usize,
    start: i64,
    end: i64,
}

fn parse(params: &Params, now: i64) -> std::result::Result<Request, ApiError> {
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(s) => parse_limit(s)?,
    };
    let end = params.time("end", now)?;
    let start = params.time("start", end - DEFAULT_RANGE_MS)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    Ok(Request {
        selectors: params.matchers()?,
        raw_selectors: params
            .get_all("match[]")
            .into_iter()
            .map(String::from)
            .collect(),
        focus: params.get("focusLabel").map(String::from),
        limit,
        start,
        end,
    })
}

fn parse_limit(s: &str) -> Result<usize> {
    let n: usize = s
        .parse()
        .map_err(|_| CardinalityError::Limit(format!("cannot parse {s:?} to a valid limit")))?;
    if n == 0 {
        return Err(CardinalityError::Limit("must be a positive number".into()));
    }
    if n > MAX_LIMIT {
        return Err(CardinalityError::Limit(format!(
            "must not exceed {MAX_LIMIT}"
        )));
    }
    Ok(n)
}

#[derive(Serialize)]
struct Answer {
    start: f64,
    end: f64,
    #[serde(flatten)]
    report: Report,
}

async fn cardinality(req: HttpRequest, state: web::Data<StatusState>) -> ApiResult {
    let params = Params::from_request(&req, &[]);
    let r = parse(&params, crate::time::now_ms())?;
    let local = local_digest(&state, &r).await?;
    if wants_local_only(&req) {
        return Ok(success(&local));
    }
    let (mut digests, mut warnings) = ask_peers(&state, &req, &r).await;
    // A node holding no series is no source: the answer stays the same on every node.
    if state.router.runs(Role::ScraperShipper) || state.router.runs(Role::StoreShard) {
        digests.insert(0, local);
    }
    warnings.extend(digest::doubly_served_blocks(&digests));
    for d in &digests {
        warnings.extend(d.warnings.iter().map(|w| format!("node {}: {w}", d.node)));
    }
    let focus = r.focus.clone();
    let limit = r.limit;
    let report = web::block(move || digest::merge(&digests, focus.as_deref(), limit))
        .await
        .map_err(|e| ApiError::internal(format!("merging the digests: {e}")))?;
    Ok(success_with_annotations(
        &Answer {
            start: r.start as f64 / 1000.0,
            end: r.end as f64 / 1000.0,
            report,
        },
        &warnings,
        &[],
    ))
}

/// This node's share: its head when it runs the ScraperShipper role, its served blocks when
/// it runs the StoreShard role.
async fn local_digest(state: &StatusState, r: &Request) -> Result<Digest> {
    let replica = vec![state.config.cluster.replica_label.clone()];
    let mut b = DigestBuilder::new(&state.router.node_id, &replica, r.focus.as_deref());
    let external = Labels::from_pairs(state.config.shipping_labels());
    let head_selectors = head_selectors(&r.selectors, &external);
    if state.router.runs(Role::ScraperShipper) {
        if let Some(selectors) = head_selectors {
            let db = state.db.clone();
            let (start, end) = (r.start, r.end);
            let series = web::block(move || db.head().footprints(&selectors, start, end))
                .await
                .map_err(|e| CardinalityError::Head(e.to_string()))?;
            b.add_head(&series, &external);
        }
    }
    if state.router.runs(Role::StoreShard) {
        let got = state
            .store
            .footprints(&r.selectors, r.start, r.end, BLOCK_CONCURRENCY)
            .await;
        for w in got.warnings {
            b.warn(w);
        }
        b.add_blocks(&got.blocks);
    }
    Ok(b.finish())
}

/// The selectors to apply to the head, whose series carry no external labels: matchers on
/// an external label are decided by the node's value (as the query path does); a selector
/// that value rules out is left out. `None`: no selector can match (not "every series").
fn head_selectors(selectors: &[Vec<Matcher>], external: &Labels) -> Option<Vec<Vec<Matcher>>> {
    if selectors.is_empty() {
        return Some(Vec::new());
    }
    let kept: Vec<Vec<Matcher>> = selectors
        .iter()
        .filter(|sel| {
            sel.iter()
                .all(|m| external.get(&m.name).is_none_or(|v| m.matches(v)))
        })
        .map(|sel| {
            sel.iter()
                .filter(|m| external.get(&m.name).is_none())
                .cloned()
                .collect()
        })
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// Every live peer holding series: ScraperShippers and StoreShards, each once.
fn holders(state: &StatusState) -> Vec<NodeMeta> {
    let mut peers = state
        .router
        .cluster
        .live_peers_with_role(Role::ScraperShipper);
    for p in state.router.cluster.live_peers_with_role(Role::StoreShard) {
        if !peers.iter().any(|q| q.node_id == p.node_id) {
            peers.push(p);
        }
    }
    peers
}

#[derive(serde::Deserialize)]
struct PeerAnswer {
    data: Digest,
}

/// The digests of every peer holding series, for the resolved request.
async fn ask_peers(
    state: &StatusState,
    req: &HttpRequest,
    r: &Request,
) -> (Vec<Digest>, Vec<String>) {
    let peers = holders(state);
    if peers.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let client = match reqwest::Client::builder().timeout(PEER_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            return (
                Vec::new(),
                vec![CardinalityError::Client(e.to_string()).to_string()],
            )
        }
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("start", &format!("{:.3}", r.start as f64 / 1000.0));
    query.append_pair("end", &format!("{:.3}", r.end as f64 / 1000.0));
    for s in &r.raw_selectors {
        query.append_pair("match[]", s);
    }
    if let Some(f) = &r.focus {
        query.append_pair("focusLabel", f);
    }
    let path = format!("{}?{}", req.path(), query.finish());
    let asks = peers.iter().map(|p| {
        let send = client
            .get(format!("http://{}{path}", p.http_addr))
            .header(LOCAL_ONLY, state.router.node_id.as_str())
            .send();
        async move {
            let answer: PeerAnswer = send.await?.error_for_status()?.json().await?;
            Ok::<Digest, reqwest::Error>(answer.data)
        }
    });
    let answers = futures::future::join_all(asks).await;
    let mut digests = Vec::new();
    let mut warnings = Vec::new();
    for (peer, answer) in peers.iter().zip(answers) {
        match answer {
            Ok(d) => digests.push(d),
            Err(e) => warnings.push(format!(
                "the answer of node {} ({}) is missing: {e}",
                peer.node_id, peer.http_addr
            )),
        }
    }
    (digests, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_are_the_last_hour_and_ten_entries() {
        let r = parse(&params(&[]), 10_000_000).unwrap();
        assert_eq!((r.start, r.end, r.limit), (6_400_000, 10_000_000, 10));
        assert!(r.selectors.is_empty() && r.focus.is_none());
    }

    #[test]
    fn limits_outside_one_to_ten_thousand_are_bad_data() {
        for bad in ["0", "10001", "-1", "x"] {
            let e = parse(&params(&[("limit", bad)]), 0).err().unwrap();
            assert!(e.message.contains("\"limit\""), "{bad}: {}", e.message);
        }
        assert_eq!(
            parse(&params(&[("limit", "10000")]), 0).unwrap().limit,
            10_000
        );
    }

    #[test]
    fn external_label_matchers_are_decided_by_the_nodes_value() {
        let ext = Labels::from_pairs([("cluster", "eu1"), ("replica", "a")]);
        let sel = |s: &str| crate::promql::parse_series_selector(s).unwrap();
        assert_eq!(head_selectors(&[], &ext), Some(vec![]));
        let got = head_selectors(&sel("up{cluster=\"eu1\"}"), &ext).unwrap();
        assert_eq!(got, vec![vec![Matcher::equal("__name__", "up")]]);
        assert_eq!(head_selectors(&sel("up{cluster=\"us\"}"), &ext), None);
        let mut both = sel("up{replica=\"b\"}");
        both.extend(sel("{job=\"x\"}"));
        assert_eq!(
            head_selectors(&both, &ext),
            Some(vec![vec![Matcher::equal("job", "x")]])
        );
    }

    #[test]
    fn selectors_and_focus_are_read() {
        let r = parse(
            &params(&[
                ("match[]", "up"),
                ("match[]", "{job=\"a\"}"),
                ("focusLabel", "instance"),
                ("start", "100"),
                ("end", "200"),
            ]),
            0,
        )
        .unwrap();
        assert_eq!(r.selectors.len(), 2);
        assert_eq!(r.focus.as_deref(), Some("instance"));
        assert_eq!((r.start, r.end), (100_000, 200_000));
        assert!(parse(&params(&[("start", "300"), ("end", "200")]), 0).is_err());
    }
}
