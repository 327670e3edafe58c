//! The `promtool test rules` file format (Prometheus 2.42 `cmd/promtool/unittest.go`
//! `unitTestFile`, `testGroup`), decoded strictly: an unknown key is an error, as with Go's
//! `yaml.UnmarshalStrict`. Durations are Prometheus durations (`1m`, `1h30m`, `0`); a YAML
//! number where a duration or a text is expected is read as its text, as yaml.v2 does.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Result, UnitTestError};

/// A YAML scalar read as text: `0`, `1m`, `'1 2 3'`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }

    /// The scalar as a Prometheus duration in milliseconds.
    pub fn duration_ms(&self) -> Result<u64> {
        let t = self.text();
        crate::gocompat::parse_duration(&t).map_err(|e| UnitTestError::Duration {
            text: t,
            message: e.to_string(),
        })
    }
}

/// A whole test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub evaluation_interval: Option<Scalar>,
    #[serde(default)]
    pub group_eval_order: Vec<String>,
    #[serde(default)]
    pub tests: Vec<TestGroup>,
}

/// One `tests[]` entry: input series and the checks made over them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    #[serde(default)]
    pub interval: Option<Scalar>,
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    #[serde(default)]
    pub alert_rule_test: Vec<AlertTestCase>,
    #[serde(default)]
    pub promql_expr_test: Vec<PromqlTestCase>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub external_url: String,
    #[serde(default)]
    pub name: String,
}

/// `{series: 'm{l="v"}', values: '1+2x3 _ stale'}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    pub series: String,
    #[serde(default)]
    pub values: Option<Scalar>,
}

/// The alerts expected firing for one alert name at one time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTestCase {
    #[serde(default)]
    pub eval_time: Option<Scalar>,
    #[serde(default)]
    pub alertname: String,
    #[serde(default)]
    pub exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    #[serde(default)]
    pub exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub exp_annotations: BTreeMap<String, String>,
}

/// The samples expected from an instant query at one time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlTestCase {
    pub expr: String,
    #[serde(default)]
    pub eval_time: Option<Scalar>,
    #[serde(default)]
    pub exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    #[serde(default)]
    pub labels: String,
    #[serde(default)]
    pub value: f64,
}

/// Decodes a test file's text.
pub fn parse(text: &str) -> Result<TestFile> {
    serde_norway::from_str(text).map_err(|e| UnitTestError::Yaml(e.to_string()))
}

/// An optional duration, 0 when absent.
pub fn opt_duration_ms(d: &Option<Scalar>) -> Result<u64> {
    match d {
        Some(s) => s.duration_ms(),
        None => Ok(0),
    }
}
