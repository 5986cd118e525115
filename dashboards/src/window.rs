//! The time window a request asks about: `start` and `end` (RFC 3339), `end` defaulting to
//! now and `start` to a default length before it.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use vigil_store::query::{Window, nanos};

use crate::error::ApiError;

/// `[start, end)`, with the defaults filled in; refused when empty.
pub fn window(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    default_length: chrono::Duration,
) -> Result<Window, ApiError> {
    let end = end.unwrap_or_else(Utc::now);
    let start = start.unwrap_or(end - default_length);
    if start >= end {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "start must be before end",
        ));
    }
    Ok(Window {
        start: nanos(start),
        end: nanos(end),
    })
}
