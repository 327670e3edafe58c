//! Prometheus's alert templates: Go `text/template` with Prometheus 2.42's functions, producing
//! the same text as Prometheus for the same data, error texts included.
//!
//! In: a template text (an alerting rule's label or annotation value), the alert's data
//! ([`TemplateData`]: sample labels, external labels and URL, value), the evaluation time and a
//! [`QueryFunc`] for the `query` function. Out: the expanded text, or a [`TemplateError`] worded
//! as Go words it; [`expand_or_error_text`] gives what `AlertingRule.Eval` stores on failure
//! (`<error expanding template: ...>`). [`check_alert_template`] is the rule-file parse check
//! (`template: __alert_A:1: unclosed action`). Pure code: no I/O.
//!
//! Written here rather than taken from a crate: the one candidate, `gtmpl`, lacks
//! `break`/`continue`, `slice`, Go's `fmt` verbs and flags, typed function arguments, and Go's
//! parse and execution error texts with positions, and those texts are part of what alerts
//! show. The parts: [`lex`], [`literal`], [`node`] and [`parse`] (Go's lexer and parser),
//! [`exec`] (execution), [`funcs`] (the function table) with [`builtins`] (Go's) and [`prom`]
//! (Prometheus's), [`goregex`] (Go's regexp syntax), [`fmt`] and [`float`] (Go's `fmt` and float text), [`value`] (the Go values templates handle).
//!
//! Differences from Prometheus 2.42, all outside what alert templates normally do: complex
//! number literals are refused; a query result printed inside a list shows a fixed address
//! where Go shows a real pointer; `sortByLabel` returns a sorted copy (Go also sorts its
//! argument in place); template recursion stops at depth 100 (Go: 100000, same message) and
//! expression nesting at 100 (Go: no limit), so that no input overflows a thread's stack; Go
//! regexp features the `regex` crate lacks (`\Q...\E`) fail, and rarer regexp errors keep the
//! crate's wording; `printf` of a time with verbs other than `v s x X q d b o O` differs.

mod builtins;
mod exec;
mod float;
mod fmt;
mod funcs;
mod goregex;
mod lex;
mod literal;
mod node;
mod parse;
mod prom;
mod value;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use funcs_api::*;

/// The result of a template operation.
pub type Result<T> = std::result::Result<T, TemplateError>;

/// A template failure, worded as Go and Prometheus word it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A syntax error: `template: __alert_A:1: unclosed action`.
    #[error("{0}")]
    Parse(String),
    /// An execution error: `template: __alert_A:1:115: executing "__alert_A" at <gt $value 1>:
    /// error calling gt: incompatible types for comparison`.
    #[error("{0}")]
    Exec(String),
    /// Prometheus's `Expander.Expand` wrapping of a syntax error.
    #[error("error parsing template {name}: {message}")]
    ExpandParse { name: String, message: String },
    /// Prometheus's `Expander.Expand` wrapping of an execution error.
    #[error("error executing template {name}: {message}")]
    ExpandExec { name: String, message: String },
}

mod funcs_api {
    use std::collections::BTreeMap;

    /// One element of a `query` result: Prometheus's template `sample`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct QuerySample {
        pub labels: BTreeMap<String, String>,
        pub value: f64,
    }

    /// Runs a PromQL instant query for the `query` template function at `ts_ms`; the error
    /// text is what the template error shows after `error calling query: `.
    pub trait QueryFunc {
        fn query(&self, expr: &str, ts_ms: i64) -> std::result::Result<Vec<QuerySample>, String>;
    }

    /// A [`QueryFunc`] for callers without a query engine: every query fails with this text.
    pub struct NoQueries(pub String);

    impl QueryFunc for NoQueries {
        fn query(&self, _expr: &str, _ts_ms: i64) -> std::result::Result<Vec<QuerySample>, String> {
            Err(self.0.clone())
        }
    }
}

/// What a query answered, as the `query` template function returns it (Prometheus's
/// `EngineQueryFunc`): a vector's samples, a scalar as one sample without labels, anything else
/// an error.
pub fn query_samples(value: crate::promql::Value) -> std::result::Result<Vec<QuerySample>, String> {
    match value {
        crate::promql::Value::Vector(v) => Ok(v
            .into_iter()
            .map(|s| QuerySample {
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                value: s.v,
            })
            .collect()),
        crate::promql::Value::Scalar { v, .. } => Ok(vec![QuerySample {
            labels: BTreeMap::new(),
            value: v,
        }]),
        _ => Err("rule result is not a vector or scalar".to_string()),
    }
}

/// The data an alert template sees (Prometheus's `AlertTemplateData`): `.Labels` (the sample's
/// labels, `__name__` included when the query kept it), `.ExternalLabels`, `.ExternalURL`,
/// `.Value`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

impl TemplateData {
    /// The data of one alert template expansion: the sample's `labels` and `value`, the
    /// node's external labels and URL.
    pub fn for_alert(
        labels: &crate::storage::model::Labels,
        value: f64,
        external_labels: &BTreeMap<String, String>,
        external_url: &str,
    ) -> TemplateData {
        TemplateData {
            labels: labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect(),
            external_labels: external_labels.clone(),
            external_url: external_url.to_string(),
            value,
        }
    }
}

/// What an expansion needs beside the text.
pub struct ExpandContext<'a> {
    pub data: &'a TemplateData,
    /// The evaluation time; `query` runs at it.
    pub eval_time_ms: i64,
    pub query: &'a dyn QueryFunc,
    /// The URL the `externalURL` and `pathPrefix` functions use; `None` makes them fail as
    /// Prometheus's nil URL does (`promtool test rules`).
    pub external_url: Option<&'a str>,
}

/// A parsed template (the main one and its `define`s).
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    text: String,
    tree: parse::Tree,
}

impl Template {
    /// Parses `text` as Go's `text/template` does with Prometheus's functions defined.
    pub fn parse(name: &str, text: &str) -> Result<Template> {
        let tree = parse::parse(name, text, &funcs::has_function)?;
        Ok(Template {
            name: name.to_string(),
            text: text.to_string(),
            tree,
        })
    }

    /// The template's name, which errors quote.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Executes the template over `ctx.data`.
    pub fn execute(&self, ctx: &ExpandContext<'_>) -> Result<String> {
        let d = ctx.data;
        let data = value::Value::Data(Rc::new(value::DataValue {
            labels: Rc::new(d.labels.clone()),
            external_labels: Rc::new(d.external_labels.clone()),
            external_url: d.external_url.clone(),
            value: d.value,
        }));
        let env = funcs::Env {
            query: ctx.query,
            ts_ms: ctx.eval_time_ms,
            external_url: ctx.external_url,
        };
        exec::execute(&self.tree, &self.name, &self.text, data, &env)
    }
}

/// The variables Prometheus 2.42 defines before every alert label and annotation template.
pub const ALERT_TEMPLATE_DEFS: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// The template name Prometheus gives an alert's templates: `__alert_<alertname>`.
pub fn alert_template_name(alert: &str) -> String {
    format!("__alert_{alert}")
}

/// The rule-file check of one alert label or annotation template (`rulefmt`'s
/// `testTemplateParsing`): the error reads `template: __alert_A:1: unclosed action`.
pub fn check_alert_template(alert: &str, text: &str) -> Result<()> {
    Template::parse(
        &alert_template_name(alert),
        &format!("{ALERT_TEMPLATE_DEFS}{text}"),
    )
    .map(|_| ())
}

/// Expands an alert label or annotation template as `AlertingRule.Eval` does, with the errors
/// Prometheus's `Expander.Expand` returns.
pub fn expand_alert_template(alert: &str, text: &str, ctx: &ExpandContext<'_>) -> Result<String> {
    // Text without an action is its own expansion (most rule labels: `severity: page`); it is
    // not worth a lex and parse per alert per evaluation.
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let name = alert_template_name(alert);
    let t = Template::parse(&name, &format!("{ALERT_TEMPLATE_DEFS}{text}")).map_err(|e| {
        TemplateError::ExpandParse {
            name: name.clone(),
            message: e.to_string(),
        }
    })?;
    t.execute(ctx).map_err(|e| TemplateError::ExpandExec {
        name,
        message: e.to_string(),
    })
}

/// [`expand_alert_template`], with a failure replaced by Prometheus's stored text
/// `<error expanding template: ...>`.
pub fn expand_or_error_text(alert: &str, text: &str, ctx: &ExpandContext<'_>) -> String {
    match expand_alert_template(alert, text, ctx) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {e}>"),
    }
}
