//! API errors as HTTP responses with a JSON `{"error": ...}` body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use vigil_store::ReadError;

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

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        let status = match e {
            ReadError::Invalid(_) | ReadError::Statement(_) | ReadError::Failed(_) => {
                StatusCode::BAD_REQUEST
            }
            ReadError::OutOfMemory { .. } | ReadError::TooManyRows(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ReadError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ReadError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
        match e {
            vigil_detectors::eval::EvalError::Query(read) => ApiError::from(read),
            other => ApiError::internal(other),
        }
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
