//! The values a template computes with, standing in for the Go types Prometheus's templates
//! see (`float64`, `int`, `string`, `map[string]string`, `*template.sample`,
//! `template.queryResult`, `*time.Time`, `template.HTML`, the alert data struct), with Go's
//! type names (they appear in error texts) and Go's truth rules.

use std::collections::BTreeMap;
use std::rc::Rc;

/// One query result element (Prometheus's `*template.sample`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SampleValue {
    pub labels: Rc<BTreeMap<String, String>>,
    pub value: f64,
}

/// The alert template data (Prometheus's `AlertTemplateData` struct).
#[derive(Debug, Clone)]
pub(crate) struct DataValue {
    pub labels: Rc<BTreeMap<String, String>>,
    pub external_labels: Rc<BTreeMap<String, String>>,
    pub external_url: String,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// Go's invalid value / nil interface.
    Nil,
    Bool(bool),
    Int(i64),
    /// A byte, as `index` of a string yields.
    Byte(u8),
    Float(f64),
    Str(String),
    /// `template.HTML`, as `safeHtml` yields: a string kind of another type.
    Html(String),
    StrMap(Rc<BTreeMap<String, String>>),
    AnyMap(Rc<BTreeMap<String, Value>>),
    Sample(Rc<SampleValue>),
    Samples(Rc<Vec<Rc<SampleValue>>>),
    /// `*time.Time` (UTC) as seconds and nanoseconds since the epoch.
    Time {
        secs: i64,
        nanos: u32,
    },
    Data(Rc<DataValue>),
}

pub(crate) const DATA_TYPE: &str = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }";

impl Value {
    /// Go's `reflect.Type.String()` (`%T`), `<nil>` for nil.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Byte(_) => "uint8",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::StrMap(_) => "map[string]string",
            Value::AnyMap(_) => "map[string]interface {}",
            Value::Sample(_) => "*template.sample",
            Value::Samples(_) => "template.queryResult",
            Value::Time { .. } => "*time.Time",
            Value::Data(_) => DATA_TYPE,
        }
    }

    /// Go's `isTrue`: the zero value of a type is false; structs and non-nil pointers are
    /// true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Byte(b) => *b != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
            Value::AnyMap(m) => !m.is_empty(),
            Value::Samples(v) => !v.is_empty(),
            Value::Sample(_) | Value::Time { .. } | Value::Data(_) => true,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Html(s) => Some(s),
            _ => None,
        }
    }
}
