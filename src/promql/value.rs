//! Query results: the public `QueryValue` (a value plus its annotations) and the internal
//! per-step values the evaluator passes between nodes. Points are float-only today; a
//! native histogram variant would be added beside `v` in `VectorSample`/`RangeSeries`.

use std::sync::Arc;

use crate::storage::model::{Labels, Sample};

/// One element of an instant vector result.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series of a range (matrix) result.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<Sample>,
}

/// The result of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, s: String },
    Vector(Vec<VectorSample>),
    Matrix(Vec<RangeSeries>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// A result with the warnings and infos Prometheus returns beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryValue {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// An element of an instant vector inside the evaluator (labels are shared: most operations
/// pass them through unchanged, and cloning an `Arc` is cheap). `drop_name` implements
/// Prometheus 3's delayed `__name__` removal: the name is removed at the end of evaluation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Elem {
    pub labels: Arc<Labels>,
    pub v: f64,
    pub drop_name: bool,
}

/// A series of a range vector inside the evaluator.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MSeries {
    pub labels: Arc<Labels>,
    pub points: Vec<Sample>,
    pub drop_name: bool,
}

/// A value inside the evaluator at one evaluation time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Elem>),
    Matrix(Vec<MSeries>),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "vector",
            Val::Matrix(_) => "matrix",
        }
    }
}

/// A 64-bit xxHash of the labels whose names pass `keep`, computed without building the
/// subset (Prometheus matches and groups by such signatures too).
pub(crate) fn hash_labels_where(l: &Labels, keep: impl Fn(&str) -> bool) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for lb in l.iter() {
        if keep(&lb.name) {
            h.update(lb.name.as_bytes());
            h.update(&[0xff]);
            h.update(lb.value.as_bytes());
            h.update(&[0xff]);
        }
    }
    h.digest()
}
