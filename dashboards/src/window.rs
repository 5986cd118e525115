//! The time window a request asks about: `start` and `end` (RFC 3339), `end` defaulting to
//! now and `start` to a default length before it; both after 1970 and before 2262 (what
//! nanoseconds since the epoch can hold), at most [`MAX_WINDOW_DAYS`] days apart.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use vigil_store::query::{Window, nanos};

use crate::error::ApiError;

/// The longest window a request may ask about, in days.
pub const MAX_WINDOW_DAYS: i64 = 31;

/// `[start, end)`, with the defaults filled in; refused when empty, out of range or longer
/// than [`MAX_WINDOW_DAYS`].
pub fn window(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    default_length: chrono::Duration,
) -> Result<Window, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let end = end.unwrap_or_else(Utc::now);
    let start = start.unwrap_or(end - default_length);
    for (name, t) in [("start", start), ("end", end)] {
        if t < DateTime::UNIX_EPOCH || t.timestamp_nanos_opt().is_none() {
            return Err(bad(format!(
                "{name} must be between 1970-01-01T00:00:00Z and 2262-04-11T00:00:00Z, got {}",
                t.to_rfc3339()
            )));
        }
    }
    if start >= end {
        return Err(bad("start must be before end".into()));
    }
    if end - start > chrono::Duration::days(MAX_WINDOW_DAYS) {
        return Err(bad(format!(
            "the window from start to end may be at most {MAX_WINDOW_DAYS} days long"
        )));
    }
    Ok(Window {
        start: nanos(start),
        end: nanos(end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    #[test]
    fn far_times_empty_and_overlong_windows_are_refused() {
        let hour = chrono::Duration::hours(1);
        let ok = window(at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z"), hour).unwrap();
        assert_eq!(ok.end - ok.start, 86_400_000_000_000);
        for (start, end) in [
            ("0001-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
            ("2026-01-01T00:00:00Z", "9999-01-01T00:00:00Z"),
            ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
            ("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        ] {
            let err = window(at(start), at(end), hour).unwrap_err();
            assert!(
                err.message().contains("start") || err.message().contains("end"),
                "{}",
                err.message()
            );
        }
        // Only an end: the default length before it.
        let w = window(None, at("2026-01-01T00:00:00Z"), hour).unwrap();
        assert_eq!(w.end - w.start, 3_600_000_000_000);
        assert!(window(None, at("0001-01-01T00:00:00Z"), hour).is_err());
    }
}
