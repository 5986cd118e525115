//! API errors as HTTP responses with a JSON `{"error": ...}` body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::sql::QueryError;

/// An API failure: a status and a message for the caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// A failure with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// What the caller is told.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An unexpected internal failure.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let status = match e {
            QueryError::Refused(_) | QueryError::Failed(_) => StatusCode::BAD_REQUEST,
            QueryError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<vigil_store::StoreError> for ApiError {
    fn from(e: vigil_store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<vigil_store::query::ColumnError> for ApiError {
    fn from(e: vigil_store::query::ColumnError) -> Self {
        ApiError::internal(e)
    }
}

impl From<vigil_detectors::eval::EvalError> for ApiError {
    fn from(e: vigil_detectors::eval::EvalError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}
