//! JSON shapes of the Prometheus HTTP API query results, and the parsing of the API's time
//! and duration parameters (`parseTime`, `parseDuration`).

use serde_json::{json, Map, Value as Json};

use crate::gocompat::format_float;
use crate::promql::value::{QueryValue, Value};
use crate::storage::model::Labels;

fn ts_json(t: i64) -> Json {
    // Prometheus writes seconds with millisecond precision as a JSON number.
    let secs = t as f64 / 1000.0;
    serde_json::Number::from_f64(secs)
        .map(Json::Number)
        .unwrap_or(Json::Null)
}

fn metric_json(l: &Labels) -> Json {
    let mut m = Map::new();
    for lb in l.iter() {
        m.insert(lb.name.to_string(), Json::String(lb.value.to_string()));
    }
    Json::Object(m)
}

fn point(t: i64, v: f64) -> Json {
    json!([ts_json(t), format_float(v)])
}

/// `{"resultType": ..., "result": ...}` exactly as Prometheus's `/api/v1/query(_range)` `data`.
pub fn format_value(q: &QueryValue) -> Json {
    match &q.value {
        Value::Scalar { t, v } => json!({"resultType": "scalar", "result": point(*t, *v)}),
        Value::String { t, s } => json!({"resultType": "string", "result": [ts_json(*t), s]}),
        Value::Vector(v) => {
            let result: Vec<Json> = v
                .iter()
                .map(|s| json!({"metric": metric_json(&s.labels), "value": point(s.t, s.v)}))
                .collect();
            json!({"resultType": "vector", "result": result})
        }
        Value::Matrix(m) => {
            let result: Vec<Json> = m
                .iter()
                .map(|s| {
                    let values: Vec<Json> = s.points.iter().map(|p| point(p.t, p.v)).collect();
                    json!({"metric": metric_json(&s.labels), "values": values})
                })
                .collect();
            json!({"resultType": "matrix", "result": result})
        }
    }
}

/// Prometheus's `jsonutil.MarshalTimestamp`: seconds, then `.` and exactly three digits
/// when there is a millisecond part.
fn write_ts(out: &mut String, t: i64) {
    let (sign, abs) = if t < 0 {
        ("-", t.unsigned_abs())
    } else {
        ("", t as u64)
    };
    out.push_str(sign);
    out.push_str(&(abs / 1000).to_string());
    let frac = abs % 1000;
    if frac != 0 {
        out.push_str(&format!(".{frac:03}"));
    }
}

fn write_str(out: &mut String, s: &str) {
    // Most strings (label names, values, formatted numbers) need no escaping: copied as they
    // are, they skip the three allocations of the general path, which dominates large answers.
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    out.push_str(&Json::String(s.to_string()).to_string());
}

fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_ts(out, t);
    out.push(',');
    write_str(out, &format_float(v));
    out.push(']');
}

fn write_metric(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, lb) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &lb.name);
        out.push(':');
        write_str(out, &lb.value);
    }
    out.push('}');
}

/// The `data` object of a query response as the exact bytes Prometheus writes (timestamps
/// like `1700000045.500`), for callers that embed raw JSON.
pub fn format_value_bytes(q: &QueryValue) -> String {
    let mut out = String::new();
    match &q.value {
        Value::Scalar { t, v } => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            write_point(&mut out, *t, *v);
        }
        Value::String { t, s } => {
            out.push_str(r#"{"resultType":"string","result":["#);
            write_ts(&mut out, *t);
            out.push(',');
            write_str(&mut out, s);
            out.push(']');
        }
        Value::Vector(v) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_metric(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                write_point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(m) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_metric(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, p) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(&mut out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// A whole successful API response body: `{"status":"success","data":...}` plus the
/// `warnings`/`infos` arrays when there are any.
pub fn format_success_body(q: &QueryValue) -> String {
    let mut out = String::from(r#"{"status":"success","data":"#);
    out.push_str(&format_value_bytes(q));
    for (key, list) in [("warnings", &q.warnings), ("infos", &q.infos)] {
        if !list.is_empty() {
            out.push_str(&format!(",\"{key}\":"));
            out.push_str(&Json::from(list.clone()).to_string());
        }
    }
    out.push('}');
    out
}

/// An error response body with Prometheus's `errorType`.
pub fn format_error_body(e: &crate::promql::PromqlError) -> String {
    json!({"status": "error", "errorType": e.error_type(), "error": e.to_string()}).to_string()
}

/// Errors of the API parameter parsers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("cannot parse {0:?} to a valid timestamp")]
    Time(String),
    #[error("cannot parse {0:?} to a valid duration")]
    Duration(String),
}

/// Prometheus's `minTime` / `maxTime` (what the API prints for open-ended ranges).
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;

/// Parses an API time: unix seconds with optional fraction, or RFC 3339. Returns milliseconds.
pub fn parse_time(s: &str) -> Result<i64, ParamError> {
    let err = || ParamError::Time(s.to_string());
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs.abs() >= 9.2e15 {
            return Err(err());
        }
        // Whole seconds and a fraction rounded to milliseconds, as Prometheus does.
        let whole = secs.trunc();
        let frac_ms = ((secs - whole) * 1000.0).round();
        return Ok(whole as i64 * 1000 + frac_ms as i64);
    }
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME_MS),
        _ => {}
    }
    crate::time::parse_rfc3339_millis(s).ok_or_else(err)
}

/// Parses a Prometheus duration (`1h30m`, `5m`, `10s`, `100ms`, `1d`, `1w`, `1y`) to
/// milliseconds. PromQL takes any length that fits an `i64` of milliseconds (longer than the
/// config's limit, Go's `time.Duration`).
pub fn parse_prom_duration(s: &str) -> Option<i64> {
    crate::gocompat::parse_duration_up_to(s, i64::MAX as u64)
        .ok()
        .map(|ms| ms as i64)
}

/// `step`/`timeout` parameters: seconds (with fraction) or a Prometheus duration; in ms.
pub fn parse_duration_or_seconds(s: &str) -> Result<i64, ParamError> {
    let err = || ParamError::Duration(s.to_string());
    if let Ok(secs) = s.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms >= i64::MAX as f64 || ms <= i64::MIN as f64 {
            return Err(err());
        }
        return Ok(ms as i64);
    }
    parse_prom_duration(s).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::value::VectorSample;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        for s in [
            "plain",
            "",
            "a\"b",
            "back\\slash",
            "new\nline",
            "\u{1}\u{1f}",
            "del\u{7f}",
            "ü/<&>",
        ] {
            let mut out = String::new();
            write_str(&mut out, s);
            assert_eq!(out, Json::String(s.to_string()).to_string(), "{s:?}");
        }
    }

    #[test]
    fn vector_json_shape() {
        let q = QueryValue {
            value: Value::Vector(vec![VectorSample {
                labels: Labels::from_pairs([("a", "b")]),
                t: 1_700_000_045_500,
                v: 14.0,
            }]),
            warnings: vec![],
            infos: vec![],
        };
        let j = format_value(&q);
        assert_eq!(
            j.to_string(),
            r#"{"result":[{"metric":{"a":"b"},"value":[1700000045.5,"14"]}],"resultType":"vector"}"#
        );
    }

    #[test]
    fn exact_prometheus_bytes() {
        let q = QueryValue {
            value: Value::Matrix(vec![crate::promql::value::RangeSeries {
                labels: Labels::from_pairs([("__name__", "up")]),
                points: vec![
                    crate::storage::model::Sample {
                        t: 1_700_000_045_500,
                        v: f64::NAN,
                    },
                    crate::storage::model::Sample {
                        t: 1_700_000_060_000,
                        v: 1e-7,
                    },
                    crate::storage::model::Sample {
                        t: 1_700_000_060_005,
                        v: f64::INFINITY,
                    },
                ],
            }]),
            warnings: vec!["PromQL warning: x".into()],
            infos: vec![],
        };
        assert_eq!(
            format_success_body(&q),
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up"},"values":[[1700000045.500,"NaN"],[1700000060,"0.0000001"],[1700000060.005,"+Inf"]]}]},"warnings":["PromQL warning: x"]}"#
        );
        let s = QueryValue {
            value: Value::Scalar { t: -1500, v: 2.5 },
            warnings: vec![],
            infos: vec![],
        };
        assert_eq!(
            format_value_bytes(&s),
            r#"{"resultType":"scalar","result":[-1.500,"2.5"]}"#
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1700000045.5"), Ok(1_700_000_045_500));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20.250+01:00"),
            Ok(1_700_000_000_250)
        );
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("-292273086-05-16T16:47:06Z"), Ok(MIN_TIME_MS));
        assert_eq!(parse_duration_or_seconds("15"), Ok(15_000));
        assert_eq!(parse_duration_or_seconds("1m30s"), Ok(90_000));
        assert!(parse_duration_or_seconds("1x").is_err());
    }
}
