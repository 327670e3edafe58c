//! The server half of the StoreAPI: answers a peer's `series`, `label_names`,
//! `label_values` and `info` requests from this node's local sources (its TSDB while it runs a
//! scraper_shipper, its bucket blocks while it runs a store_shard), each source's series
//! labelled with its external labels, merged, and streamed in frames of `BATCH_SERIES`.

use futures::stream;

use super::{
    label_series, LabelsRequest, SeriesFrame, SeriesRequest, BATCH_SERIES, METHOD_INFO,
    METHOD_LABEL_NAMES, METHOD_LABEL_VALUES, METHOD_SERIES,
};
use crate::cluster::transport::{RemoteError, RemoteErrorKind, Request, ResponseStream};
use crate::query::fanout::local_label_values;
use crate::query::sources::SourceSet;
use crate::query::storeapi;
use crate::storage::model::SelectHints;

/// Answers a StoreAPI request from this node's local sources.
pub async fn serve(set: &SourceSet, req: Request) -> Result<ResponseStream, RemoteError> {
    let sources = set.local();
    let bad =
        |e: storeapi::StoreApiError| RemoteError::new(RemoteErrorKind::BadRequest, e.to_string());
    let internal = |e: String| RemoteError::new(RemoteErrorKind::Internal, e);
    match req.method.as_str() {
        METHOD_SERIES => {
            let r: SeriesRequest = storeapi::decode(&req.body).map_err(bad)?;
            let matchers = storeapi::to_matchers(&r.matchers).map_err(bad)?;
            let hints = SelectHints {
                labels_only: r.labels_only,
                limit: r.limit,
                max_resolution_ms: Some(r.max_resolution_ms),
                ..SelectHints::default()
            };
            let (series, warnings, resolutions) = tokio::task::spawn_blocking(move || {
                let mut parts = Vec::new();
                let mut warnings = Vec::new();
                let mut resolutions = std::collections::BTreeSet::new();
                for s in &sources {
                    if storeapi::store_matches(&s.external_labels, &matchers) {
                        let got = s
                            .queryable
                            .select(&matchers, r.min_time, r.max_time, &hints)
                            .map_err(|e| e.to_string())?;
                        let res = s.queryable.take_resolutions();
                        // A source of raw data reports nothing: its series are raw.
                        if res.is_empty() && !got.is_empty() {
                            resolutions.insert(0);
                        }
                        resolutions.extend(res);
                        parts.push(label_series(got, &s.external_labels));
                        warnings.extend(s.queryable.take_warnings());
                    }
                }
                let resolutions: Vec<i64> = resolutions.into_iter().collect();
                Ok::<_, String>((
                    crate::storage::dedup::merge_sources(parts),
                    warnings,
                    resolutions,
                ))
            })
            .await
            .map_err(|e| internal(e.to_string()))?
            .map_err(internal)?;
            let mut frames = Vec::new();
            for (i, batch) in series.chunks(BATCH_SERIES).enumerate() {
                let frame = SeriesFrame {
                    series: batch
                        .iter()
                        .map(|s| (s.labels.clone(), s.chunks.clone()))
                        .collect(),
                    warnings: if i == 0 { warnings.clone() } else { Vec::new() },
                    resolutions: if i == 0 {
                        resolutions.clone()
                    } else {
                        Vec::new()
                    },
                };
                frames.push(storeapi::encode(&frame).map_err(|e| internal(e.to_string())));
            }
            if series.is_empty() && !warnings.is_empty() {
                frames.push(
                    storeapi::encode(&SeriesFrame {
                        series: Vec::new(),
                        warnings,
                        resolutions,
                    })
                    .map_err(|e| internal(e.to_string())),
                );
            }
            Ok(Box::pin(stream::iter(frames)))
        }
        METHOD_LABEL_NAMES | METHOD_LABEL_VALUES => {
            let r: LabelsRequest = storeapi::decode(&req.body).map_err(bad)?;
            let matchers = storeapi::to_matchers(&r.matchers).map_err(bad)?;
            let values = tokio::task::spawn_blocking(move || {
                let mut all = Vec::new();
                for s in &sources {
                    if !storeapi::store_matches(&s.external_labels, &matchers) {
                        continue;
                    }
                    match &r.name {
                        None => {
                            all.extend(
                                s.queryable
                                    .label_names(&matchers, r.min_time, r.max_time)
                                    .map_err(|e| e.to_string())?,
                            );
                            all.extend(s.external_labels.iter().map(|l| l.name.to_string()));
                        }
                        Some(name) => all.extend(
                            local_label_values(s, name, &matchers, r.min_time, r.max_time)
                                .map_err(|e| e.to_string())?,
                        ),
                    }
                }
                all.sort();
                all.dedup();
                Ok::<_, String>(all)
            })
            .await
            .map_err(|e| internal(e.to_string()))?
            .map_err(internal)?;
            let body = storeapi::encode(&values).map_err(|e| internal(e.to_string()))?;
            Ok(crate::cluster::transport::single_response(body))
        }
        METHOD_INFO => {
            let body = storeapi::encode(&set.info()).map_err(|e| internal(e.to_string()))?;
            Ok(crate::cluster::transport::single_response(body))
        }
        other => Err(RemoteError::new(
            RemoteErrorKind::NotFound,
            format!("unknown store method {other:?}"),
        )),
    }
}
