//! Why an export request was refused, and how each reason maps to HTTP and gRPC status codes.
//!
//! This is the one place where collector errors become wire status codes.

use std::time::Duration;

use http::StatusCode;
use tonic::Code;
use vigil_store::StoreError;

/// A refused export request. Nothing of a refused request is stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The payload could not be decoded (malformed protobuf/JSON, bad gzip).
    #[error("{0}")]
    InvalidArgument(String),
    /// The request body, compressed or not, is over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// `Content-Type` is not one OTLP/HTTP defines.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The memory budget is spent; retry after the hint.
    #[error("{reason}")]
    Exhausted {
        /// What is full.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// The write path is momentarily unable to accept data (WAL queue full or WAL failing); retry.
    #[error("{reason}")]
    Unavailable {
        /// What is wrong.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// A bug or an unexpected internal failure.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Default pause suggested to clients when refusing for overload.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::MemoryBudget { .. } => IngestError::Exhausted {
                reason: e.to_string(),
                retry_after: RETRY_AFTER,
            },
            StoreError::QueueFull
            | StoreError::WriterStopped
            | StoreError::WalWrite(_)
            | StoreError::Io { .. } => IngestError::Unavailable {
                reason: e.to_string(),
                retry_after: RETRY_AFTER,
            },
            other => IngestError::Internal(other.to_string()),
        }
    }
}

impl IngestError {
    /// The HTTP status OTLP/HTTP prescribes.
    pub fn http_status(&self) -> StatusCode {
        match self {
            IngestError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Exhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC code OTLP/gRPC prescribes.
    pub fn grpc_code(&self) -> Code {
        match self {
            IngestError::InvalidArgument(_) | IngestError::UnsupportedMediaType(_) => {
                Code::InvalidArgument
            }
            IngestError::TooLarge(_) | IngestError::Exhausted { .. } => Code::ResourceExhausted,
            IngestError::Unavailable { .. } => Code::Unavailable,
            IngestError::Internal(_) => Code::Internal,
        }
    }

    /// The retry hint, for retryable refusals.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IngestError::Exhausted { retry_after, .. }
            | IngestError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// A short label for metrics.
    pub fn reason_label(&self) -> &'static str {
        match self {
            IngestError::InvalidArgument(_) => "invalid",
            IngestError::TooLarge(_) => "too_large",
            IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
            IngestError::Exhausted { .. } => "memory_budget",
            IngestError::Unavailable { .. } => "unavailable",
            IngestError::Internal(_) => "internal",
        }
    }

    /// The gRPC status, with `RetryInfo` for retryable refusals (OTLP clients only retry
    /// RESOURCE_EXHAUSTED when it is present).
    pub fn to_grpc_status(&self) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt};
        match self.retry_after() {
            Some(delay) => tonic::Status::with_error_details(
                self.grpc_code(),
                self.to_string(),
                ErrorDetails::with_retry_info(Some(delay)),
            ),
            None => tonic::Status::new(self.grpc_code(), self.to_string()),
        }
    }
}
