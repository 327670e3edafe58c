//! The one place where errors become HTTP responses: the Prometheus API error shape
//! `{"status":"error","errorType":...,"error":...}` with Prometheus's status codes, and the
//! success envelope `{"status":"success","data":...}` (plus `warnings`/`infos` when present).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::promql::{ErrorKind, PromqlError};
use crate::query::service::QueryError;

/// Prometheus's `errorType` values, plus `unauthorized` and `conflict` for the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Canceled,
    Timeout,
    Internal,
    Unavailable,
    NotFound,
    Unauthorized,
    /// The request conflicts with what exists (a file-defined job the API may not change).
    Conflict,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Canceled => "canceled",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::Unauthorized => "unauthorized",
            ErrorType::Conflict => "conflict",
        }
    }

    /// The status codes Prometheus's API uses for each error type.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            // Prometheus answers 499 (client closed request) for a canceled query.
            ErrorType::Canceled => {
                StatusCode::from_u16(499).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorType::Conflict => StatusCode::CONFLICT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError::new(ErrorType::BadData, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorType::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(ErrorType::Unavailable, message)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    status: &'static str,
    error_type: &'static str,
    error: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody {
            status: "error",
            error_type: self.kind.as_str(),
            error: &self.message,
        };
        let mut resp = HttpResponse::build(self.status_code());
        if self.kind == ErrorType::Unauthorized {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        resp.json(body)
    }
}

pub type ApiResult = Result<HttpResponse, ApiError>;

/// PromQL errors by kind: a query that does not parse is a bad `query` parameter in
/// Prometheus's words; the others keep their text under their API error type.
impl From<PromqlError> for ApiError {
    fn from(e: PromqlError) -> Self {
        let kind = match e.kind() {
            ErrorKind::Parse => {
                return ApiError::bad_data(format!("invalid parameter \"query\": {e}"))
            }
            ErrorKind::BadData => ErrorType::BadData,
            ErrorKind::Execution => ErrorType::Execution,
            ErrorKind::Timeout => ErrorType::Timeout,
            ErrorKind::Canceled => ErrorType::Canceled,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Promql(e) => e.into(),
            QueryError::Storage(e) => ApiError::new(ErrorType::Execution, e.to_string()),
            QueryError::ShuttingDown => ApiError::unavailable(e.to_string()),
            QueryError::Worker(_) => ApiError::internal(e.to_string()),
        }
    }
}

#[derive(Serialize)]
struct SuccessBody<'a, T: Serialize> {
    status: &'static str,
    data: &'a T,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    infos: &'a [String],
}

/// `{"status":"success","data":...}`.
pub fn success<T: Serialize>(data: &T) -> HttpResponse {
    success_with_annotations(data, &[], &[])
}

/// The success envelope with Prometheus's `warnings` and `infos` arrays (omitted when empty).
pub fn success_with_annotations<T: Serialize>(
    data: &T,
    warnings: &[String],
    infos: &[String],
) -> HttpResponse {
    HttpResponse::Ok().json(SuccessBody {
        status: "success",
        data,
        warnings,
        infos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(resp: HttpResponse) -> serde_json::Value {
        let bytes = resp.into_body().try_into_bytes().unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn error_shape_matches_prometheus() {
        let e = ApiError::bad_data("invalid parameter \"query\": 1:5: parse error");
        let resp = e.error_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let v = body_of(resp);
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert_eq!(v["error"], "invalid parameter \"query\": 1:5: parse error");
    }

    #[test]
    fn execution_and_unauthorized_codes() {
        assert_eq!(
            ErrorType::Execution.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let resp = ApiError::new(ErrorType::Unauthorized, "missing token").error_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers().get("WWW-Authenticate").map(|h| h.as_bytes()),
            Some(&b"Bearer"[..])
        );
    }

    #[test]
    fn promql_errors_map_by_kind() {
        let e = ApiError::from(PromqlError::Parse("1:5: parse error: unexpected".into()));
        assert_eq!(e.kind, ErrorType::BadData);
        assert_eq!(
            e.message,
            "invalid parameter \"query\": 1:5: parse error: unexpected"
        );
        let e = ApiError::from(PromqlError::Timeout("query execution".into()));
        assert_eq!(e.kind, ErrorType::Timeout);
        assert_eq!(e.message, "query timed out in query execution");
        let e = ApiError::from(QueryError::from(PromqlError::Canceled("x".into())));
        assert_eq!(e.kind, ErrorType::Canceled);
        let e = ApiError::from(PromqlError::Storage("disk".into()));
        assert_eq!(e.kind, ErrorType::Execution);
        assert_eq!(
            ApiError::from(QueryError::ShuttingDown).kind,
            ErrorType::Unavailable
        );
    }

    #[test]
    fn success_omits_empty_annotations() {
        let v = body_of(success(&serde_json::json!({"a": 1})));
        assert_eq!(v, serde_json::json!({"status":"success","data":{"a":1}}));
        let v = body_of(success_with_annotations(&1, &["w".to_string()], &[]));
        assert_eq!(
            v,
            serde_json::json!({"status":"success","data":1,"warnings":["w"]})
        );
    }
}
