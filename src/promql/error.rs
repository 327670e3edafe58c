//! The error type of the PromQL engine and its mapping to the Prometheus HTTP API `errorType`.

/// Every way a query can fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromqlError {
    /// The query text does not parse (Prometheus `bad_data`).
    #[error("parse error: {0}")]
    Parse(String),
    /// Other invalid request parameters, e.g. a non-positive step (Prometheus `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (Prometheus `execution`).
    #[error("{0}")]
    Execution(String),
    /// The query ran past its deadline (Prometheus `timeout`).
    #[error("query timed out in {0}")]
    Timeout(String),
    /// The query was canceled by its caller (Prometheus `canceled`).
    #[error("query was canceled in {0}")]
    Canceled(String),
    /// Reading from storage failed (Prometheus `execution`).
    #[error("{0}")]
    Storage(String),
}

impl PromqlError {
    /// The `errorType` string of the Prometheus HTTP API.
    pub fn error_type(&self) -> &'static str {
        match self {
            PromqlError::Parse(_) | PromqlError::BadData(_) => "bad_data",
            PromqlError::Execution(_) | PromqlError::Storage(_) => "execution",
            PromqlError::Timeout(_) => "timeout",
            PromqlError::Canceled(_) => "canceled",
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        PromqlError::Execution(msg.into())
    }
}

impl From<crate::storage::model::QueryableError> for PromqlError {
    fn from(e: crate::storage::model::QueryableError) -> Self {
        match e {
            crate::storage::model::QueryableError::Canceled(m) => PromqlError::Canceled(m),
            other => PromqlError::Storage(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, PromqlError>;

/// The message Prometheus gives when a query would exceed `max_samples`.
pub const TOO_MANY_SAMPLES: &str =
    "query processing would load too many samples into memory in query execution";
