//! The `query:` section: how the QueryPlanner reads downsampled data when a request does not
//! say (`default_max_source_resolution`), and the one parser of Thanos's
//! `max_source_resolution` values (`auto`, `raw`, `0`, float seconds or a Prometheus
//! duration such as `5m`) that the HTTP API shares. Turning `auto` into a resolution needs the
//! query's step and happens in the query layer (`SourceResolution::resolve`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::PromDuration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// `max_source_resolution` of requests without one: `auto` (the default: step/5 for range
    /// queries, raw for instant ones, as Thanos's `auto`) or a resolution (`0s`, `5m`, `1h`).
    #[serde(default)]
    pub default_max_source_resolution: SourceResolution,
    /// Record metric usage (`/api/v1/status/metric_usage`) for every query evaluated here;
    /// off only to measure what the recording costs.
    #[serde(default = "super::http_client::default_true")]
    pub record_usage: bool,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            default_max_source_resolution: SourceResolution::Auto,
            record_usage: true,
        }
    }
}

/// A query's maximum source resolution (Thanos's `max_source_resolution`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceResolution {
    /// step/5 for a range query (Thanos), raw for an instant query (Thanos's instant default).
    #[default]
    Auto,
    /// At most this resolution, in ms (0 = raw).
    Max(i64),
}

impl SourceResolution {
    /// Parses `auto`, `raw`, float seconds (`0`, `300`) or a Prometheus duration (`0s`, `5m`,
    /// `1h`); negative and malformed values are refused with a message for the caller to
    /// prefix with the parameter or key name.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        match s {
            "auto" => return Ok(SourceResolution::Auto),
            "raw" => return Ok(SourceResolution::Max(0)),
            _ => {}
        }
        if let Ok(secs) = s.parse::<f64>() {
            let ms = (secs * 1000.0).round();
            if !ms.is_finite() || ms >= i64::MAX as f64 {
                return Err(format!("cannot parse {s:?} to a valid resolution"));
            }
            if ms < 0.0 {
                return Err("negative resolution is not accepted".into());
            }
            return Ok(SourceResolution::Max(ms as i64));
        }
        if s.starts_with('-') {
            return Err("negative resolution is not accepted".into());
        }
        let d: PromDuration = s.parse().map_err(|_| {
            format!("cannot parse {s:?}: want auto, raw, seconds or a duration such as 5m")
        })?;
        let ms = i64::try_from(d.as_millis())
            .map_err(|_| format!("cannot parse {s:?} to a valid resolution"))?;
        Ok(SourceResolution::Max(ms))
    }

    /// The resolution in ms for a query with this step (`None` for an instant query).
    pub fn resolve(self, step_ms: Option<i64>) -> i64 {
        match (self, step_ms) {
            (SourceResolution::Max(ms), _) => ms.max(0),
            (SourceResolution::Auto, Some(step)) => (step / 5).max(0),
            (SourceResolution::Auto, None) => 0,
        }
    }
}

impl std::fmt::Display for SourceResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceResolution::Auto => f.write_str("auto"),
            SourceResolution::Max(ms) => {
                write!(f, "{}", PromDuration::from_millis((*ms).max(0) as u64))
            }
        }
    }
}

impl Serialize for SourceResolution {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for SourceResolution {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // YAML may give `0` as a number.
        let v = serde_norway::Value::deserialize(d)?;
        let text = match v {
            serde_norway::Value::String(s) => s,
            serde_norway::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                "query.default_max_source_resolution: expected auto or a duration, got {other:?}"
            )))
            }
        };
        SourceResolution::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("query.default_max_source_resolution: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> std::result::Result<QueryConfig, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn default_is_auto() {
        assert_eq!(parse("{}").unwrap(), QueryConfig::default());
        assert_eq!(
            QueryConfig::default().default_max_source_resolution,
            SourceResolution::Auto
        );
    }

    #[test]
    fn every_form_parses() {
        for (yaml, want) in [
            (
                "default_max_source_resolution: auto",
                SourceResolution::Auto,
            ),
            (
                "default_max_source_resolution: 0s",
                SourceResolution::Max(0),
            ),
            ("default_max_source_resolution: 0", SourceResolution::Max(0)),
            (
                "default_max_source_resolution: raw",
                SourceResolution::Max(0),
            ),
            (
                "default_max_source_resolution: 5m",
                SourceResolution::Max(300_000),
            ),
            (
                "default_max_source_resolution: 1h",
                SourceResolution::Max(3_600_000),
            ),
        ] {
            assert_eq!(
                parse(yaml).unwrap().default_max_source_resolution,
                want,
                "{yaml}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        for yaml in [
            "default_max_source_resolution: -5m",
            "default_max_source_resolution: fast",
            "default_max_source_resolution: [1]",
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(
                err.contains("default_max_source_resolution"),
                "{yaml}: {err}"
            );
        }
        assert!(parse("max_resolution: 5m").is_err(), "unknown key");
    }

    #[test]
    fn parameter_values_follow_thanos() {
        let p = SourceResolution::parse;
        assert_eq!(p("auto"), Ok(SourceResolution::Auto));
        assert_eq!(p("0"), Ok(SourceResolution::Max(0)));
        assert_eq!(p("0s"), Ok(SourceResolution::Max(0)));
        assert_eq!(p("raw"), Ok(SourceResolution::Max(0)));
        assert_eq!(p("300"), Ok(SourceResolution::Max(300_000)));
        assert_eq!(p("1.5"), Ok(SourceResolution::Max(1_500)));
        assert_eq!(p("5m"), Ok(SourceResolution::Max(300_000)));
        assert_eq!(p("1h"), Ok(SourceResolution::Max(3_600_000)));
        assert!(p("-1").is_err());
        assert!(p("-5m").is_err());
        assert!(p("5x").is_err());
        assert!(p("").is_err());
        assert!(p("NaN").is_err());
    }

    #[test]
    fn display_round_trips() {
        for r in [
            SourceResolution::Auto,
            SourceResolution::Max(0),
            SourceResolution::Max(300_000),
            SourceResolution::Max(3_600_000),
        ] {
            assert_eq!(SourceResolution::parse(&r.to_string()), Ok(r));
        }
    }
}
