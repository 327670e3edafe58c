//! The PromQL engine: parsing (via `promql-parser` plus small token-based pre-passes),
//! evaluation of instant and range queries against any `Queryable` with Prometheus 3
//! semantics, the JSON shapes of the HTTP API, and the runner for Prometheus's PromQL
//! test-file language used by the conformance tests.
//!
//! Evaluation model: every selector's series are selected once per query (union time range)
//! and the window is decoded with `SeriesIterator`; the expression tree is then evaluated
//! step by step (range queries assemble the steps into a matrix). Subquery inner steps are
//! cached per query, so overlapping windows of consecutive steps are evaluated once.
//! Values are floats only: native histograms give `NATIVE_HISTOGRAMS_UNSUPPORTED`.

pub mod aggregate;
pub mod binary;
pub(crate) mod downsampled;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fetch;
pub mod freer;
pub mod functions;
pub mod histogram;
pub mod info;
pub mod json;
pub mod labelfns;
pub mod preprocess;
pub mod range_functions;
pub mod start_timestamps;
pub(crate) mod syntax_error;
pub mod testlang;
pub mod testlang_parse;
pub mod value;

pub use downsampled::lookback_for;
pub use engine::{check_range_params, Engine, EngineOptions, MAX_POINTS_PER_SERIES};
pub use error::{ErrorKind, PromqlError, Result};
pub use freer::Freer;
pub use json::{
    format_error_body, format_success_body, format_value, format_value_bytes,
    parse_duration_or_seconds, parse_time,
};
pub use value::{QueryValue, RangeSeries, Value, VectorSample};
pub mod selector;
pub use selector::parse_series_selector;
