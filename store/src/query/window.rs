//! The one time-window type of the read side: a half-open range of nanoseconds, and the SQL
//! condition that selects it (which the store pushes down to prune tail batches and files).

use std::fmt;

use chrono::{DateTime, Utc};

use super::sql::{Sql, SqlArg};
use super::time::{nanos, rfc3339};

/// A half-open time range `[start, end)` in nanoseconds since the epoch.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant included.
    pub start: i64,
    /// First instant excluded.
    pub end: i64,
}

impl Window {
    /// The `length` ending at `end`.
    pub fn ending(end: DateTime<Utc>, length: std::time::Duration) -> Window {
        let end = nanos(end);
        let len = i64::try_from(length.as_nanos()).unwrap_or(i64::MAX);
        Window {
            start: end.saturating_sub(len),
            end,
        }
    }

    /// The window of the same length just before this one, to compare with.
    pub fn previous(&self) -> Window {
        Window {
            start: self
                .start
                .saturating_sub(self.end.saturating_sub(self.start)),
            end: self.start,
        }
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.start) as f64 / 1e9
    }

    /// A SQL condition on `time` selecting this window.
    pub fn sql(&self) -> Sql {
        crate::sql!(
            "time >= {} AND time < {}",
            Instant(self.start),
            Instant(self.end)
        )
    }
}

/// An instant as a SQL timestamp literal.
struct Instant(i64);

impl SqlArg for Instant {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", rfc3339(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_is_half_open_in_rfc3339() {
        let w = Window {
            start: 0,
            end: 1_500_000_000,
        };
        assert_eq!(
            w.sql().as_str(),
            "time >= '1970-01-01T00:00:00.000000000Z' AND time < '1970-01-01T00:00:01.500000000Z'"
        );
        assert_eq!(w.seconds(), 1.5);
        assert_eq!(
            w.previous(),
            Window {
                start: -1_500_000_000,
                end: 0
            }
        );
    }
}
