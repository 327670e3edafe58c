//! Offline rule unit tests: Prometheus 2.42's `promtool test rules` run through Strata's
//! PromQL engine and rule code. A test file (`spec`) names rule files and test groups; each
//! test group loads its `input_series` into an in-memory storage, evaluates every rule group
//! from time 0 at the file's `evaluation_interval` up to the largest `eval_time` (groups in
//! `group_eval_order`, then file order; each rule's output is appended before the next rule
//! runs, so recording chains see earlier outputs at the same time), compares the firing
//! alerts at each `alert_rule_test` time and runs each `promql_expr_test` as an instant
//! query afterwards (`runner`). Failures are worded as promtool words them (`report`).
//!
//! In: a test file path. Out: the warnings and failure texts of the file ([`test_file`], [`Outcome`]), which the CLI
//! prints in promtool's `Unit Testing:  f` / `  SUCCESS` / `  FAILED:` shape.

mod report;
mod runner;
pub mod spec;

pub use runner::{test_file, Outcome};

/// Why a test file or a test group could not run (a failed check is not an error: it is
/// one of the texts [`test_file`] returns; these errors become such texts too).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitTestError {
    #[error("{0}")]
    Read(String),
    #[error("{0}")]
    Yaml(String),
    #[error("not a valid duration string: {text:?}: {message}")]
    Duration { text: String, message: String },
    #[error("group name repeated in evaluation order: {0}")]
    RepeatedGroup(String),
    #[error("{0}")]
    Glob(String),
    #[error("input series {series:?}: {message}")]
    Series { series: String, message: String },
    #[error(
        "an item under alert_rule_test misses required attribute alertname at eval_time {eval_time}{in_group}"
    )]
    MissingAlertname { eval_time: String, in_group: String },
    /// A rule file failed to load (promtool prints the loader's errors).
    #[error("{0}")]
    RuleFile(String),
}

pub type Result<T> = std::result::Result<T, UnitTestError>;

#[cfg(test)]
mod tests;
