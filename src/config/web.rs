//! The `web:` section: how the node's HTTP surface is mounted. `route_prefix` (Prometheus's
//! `--web.route-prefix`) puts every route — the API, admin, `/metrics`, health and the UI —
//! below a path, for a load balancer that mounts Strata there. It is normalised here (leading
//! `/`, no trailing `/`) so the HTTP layer only ever sees `/` or `/a/b`. Nodes of one cluster
//! call each other's API with the path of the request they forward, so every node of a cluster
//! must use the same prefix.

use serde::{Deserialize, Deserializer, Serialize};

use super::error::{ConfigError, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// `/` (the default) or a path such as `/strata` every route is served below.
    #[serde(
        default = "default_route_prefix",
        deserialize_with = "deserialize_route_prefix"
    )]
    pub route_prefix: String,
}

fn default_route_prefix() -> String {
    "/".to_string()
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            route_prefix: default_route_prefix(),
        }
    }
}

impl WebConfig {
    /// The prefix to put before every route: `""` for `/`, else `/a/b` (no trailing slash).
    pub fn path_prefix(&self) -> &str {
        self.route_prefix.trim_end_matches('/')
    }

    pub fn validate(&self) -> Result<()> {
        normalize_route_prefix(&self.route_prefix)
            .map(|_| ())
            .map_err(|m| ConfigError::invalid("web.route_prefix", m))
    }
}

/// `/` or `/a/b`: must start with `/`, trailing slashes are dropped, no query, fragment,
/// whitespace or empty segments.
pub fn normalize_route_prefix(raw: &str) -> std::result::Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!("must start with \"/\", got {raw:?}"));
    }
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("/".to_string());
    }
    if trimmed
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%' | '\\'))
    {
        return Err(format!(
            "must be a plain path without spaces, '?', '#', '%' or '\\', got {raw:?}"
        ));
    }
    if trimmed[1..]
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "must not have empty, \".\" or \"..\" segments, got {raw:?}"
        ));
    }
    Ok(trimmed.to_string())
}

fn deserialize_route_prefix<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    normalize_route_prefix(&raw)
        .map_err(|m| serde::de::Error::custom(format!("web.route_prefix: {m}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> std::result::Result<WebConfig, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn default_is_root() {
        let c = parse("{}").unwrap();
        assert_eq!(c, WebConfig::default());
        assert_eq!(c.route_prefix, "/");
        assert_eq!(c.path_prefix(), "");
    }

    #[test]
    fn prefixes_are_normalised() {
        for (raw, want, path) in [
            ("/", "/", ""),
            ("//", "/", ""),
            ("/strata", "/strata", "/strata"),
            ("/strata/", "/strata", "/strata"),
            ("/a/b//", "/a/b", "/a/b"),
        ] {
            let c = parse(&format!("route_prefix: {raw:?}")).unwrap();
            assert_eq!(c.route_prefix, want, "{raw}");
            assert_eq!(c.path_prefix(), path, "{raw}");
        }
    }

    #[test]
    fn bad_prefixes_name_the_key() {
        for raw in ["strata", "", "/a b", "/a?x=1", "/a//b", "/../x", "/a#b"] {
            let err = parse(&format!("route_prefix: {raw:?}")).unwrap_err();
            assert!(err.contains("web.route_prefix"), "{raw}: {err}");
        }
        assert!(parse("prefix: /x").is_err(), "unknown key");
        let built = WebConfig {
            route_prefix: "x".into(),
        };
        assert_eq!(
            built.validate().unwrap_err().key(),
            Some("web.route_prefix")
        );
    }
}
