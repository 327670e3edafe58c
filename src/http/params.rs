//! Request parameters of the Prometheus HTTP API: GET query strings and POST form bodies, with
//! repeated keys (`match[]`), and the parameter parsers whose errors Prometheus words as
//! `invalid parameter "name": ...`.

use actix_web::HttpRequest;

use super::error::ApiError;
use crate::promql::json::{parse_duration_or_seconds, parse_time, MAX_TIME_MS, MIN_TIME_MS};
use crate::query::service::{QueryOptions, SourceResolution};
use crate::storage::model::Matcher;

/// All parameters of a request in order, query string first, then a form body.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_request(req: &HttpRequest, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(req.query_string().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let is_form = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            pairs.extend(
                form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        }
        Params(pairs)
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A timestamp parameter in ms; `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => parse_time(s).map_err(|e| invalid(name, e)),
        }
    }

    /// `start`/`end` of the metadata endpoints: Prometheus's min/max time when absent.
    pub fn time_range(&self) -> Result<(i64, i64), ApiError> {
        let start = self.time("start", MIN_TIME_MS)?;
        let end = self.time("end", MAX_TIME_MS)?;
        if end < start {
            return Err(ApiError::bad_data(
                "end timestamp must not be before start time",
            ));
        }
        Ok((start, end))
    }

    /// A duration parameter in ms (Prometheus duration or float seconds).
    pub fn duration(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(s) => parse_duration_or_seconds(s)
                .map(Some)
                .map_err(|e| invalid(name, e)),
        }
    }

    /// `limit`: a non-negative integer, 0 = none.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(0),
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| invalid("limit", format!("cannot parse {s:?} to a valid limit"))),
        }
    }

    /// Every `match[]` selector, each as its alternative matcher sets (`or` in braces).
    pub fn matchers(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        let mut out = Vec::new();
        for sel in self.get_all("match[]") {
            let sets =
                crate::promql::parse_series_selector(sel).map_err(|e| invalid("match[]", e))?;
            out.extend(sets);
        }
        Ok(out)
    }
}

impl Params {
    /// A boolean parameter (`true|1|false|0`), `default` when absent.
    fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(invalid(
                name,
                format!("cannot parse {other:?} to a boolean"),
            )),
        }
    }

    /// Thanos's per-request parameters: `dedup` (default true), `replicaLabels[]` and
    /// `partial_response` (default true, as Thanos's querier).
    pub fn fanout_options(&self) -> Result<QueryOptions, ApiError> {
        let replica_labels = self
            .get_all("replicaLabels[]")
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Ok(QueryOptions {
            dedup: self.flag("dedup", true)?,
            replica_labels,
            partial_response: self.flag("partial_response", true)?,
            timeout: None,
            max_source_resolution: None,
            source: crate::query::usage::Source::AdHoc,
        })
    }

    /// The options of an instant or range query: `timeout` (a positive duration tightens the
    /// engine's), then the fan-out parameters.
    pub fn query_options(&self) -> Result<QueryOptions, ApiError> {
        let timeout = self
            .duration("timeout")?
            .filter(|ms| *ms > 0)
            .map(|ms| std::time::Duration::from_millis(ms as u64));
        Ok(QueryOptions {
            timeout,
            max_source_resolution: self.max_source_resolution()?,
            ..self.fanout_options()?
        })
    }

    /// Thanos's `max_source_resolution`: `auto`, `raw`, `0`, float seconds or a duration;
    /// `None` when absent (the configured default applies).
    pub fn max_source_resolution(&self) -> Result<Option<SourceResolution>, ApiError> {
        const NAME: &str = "max_source_resolution";
        self.get(NAME)
            .map(|s| SourceResolution::parse(s).map_err(|e| invalid(NAME, e)))
            .transpose()
    }
}

/// Prometheus's wording for a bad parameter.
pub fn invalid(name: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::bad_data(format!("invalid parameter \"{name}\": {err}"))
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
    fn max_source_resolution_accepts_thanos_values() {
        for (v, want) in [
            ("auto", SourceResolution::Auto),
            ("0s", SourceResolution::Max(0)),
            ("0", SourceResolution::Max(0)),
            ("raw", SourceResolution::Max(0)),
            ("5m", SourceResolution::Max(300_000)),
            ("1h", SourceResolution::Max(3_600_000)),
            ("300", SourceResolution::Max(300_000)),
        ] {
            let p = params(&[("max_source_resolution", v)]);
            assert_eq!(p.max_source_resolution().unwrap(), Some(want), "{v}");
            assert_eq!(p.query_options().unwrap().max_source_resolution, Some(want));
        }
        assert_eq!(params(&[]).max_source_resolution().unwrap(), None);
    }

    #[test]
    fn bad_max_source_resolution_is_bad_data_naming_the_parameter() {
        for v in ["-5m", "-1", "fast", "5x"] {
            let err = params(&[("max_source_resolution", v)])
                .query_options()
                .unwrap_err();
            assert_eq!(err.kind, super::super::error::ErrorType::BadData, "{v}");
            assert!(
                err.message
                    .contains("invalid parameter \"max_source_resolution\""),
                "{v}: {}",
                err.message
            );
        }
    }
}
