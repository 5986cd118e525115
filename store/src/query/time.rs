//! Instants as the store keeps them (nanoseconds since the epoch, RFC 3339 in SQL) and
//! wall-clock arithmetic that saturates instead of overflowing (a `Duration::MAX` timing must
//! mean "never", not a panic).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// Nanoseconds since the epoch (the latest representable instant when out of range).
pub fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// `ns` since the epoch as RFC 3339 with nanoseconds, the form SQL timestamp literals take.
pub fn rfc3339(ns: i64) -> String {
    DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `t + d`, or the latest representable instant when that overflows.
pub fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_overflowing() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(after(t, Duration::from_secs(90)).timestamp(), 90);
        assert_eq!(after(t, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            after(DateTime::<Utc>::MAX_UTC, Duration::from_secs(1)),
            DateTime::<Utc>::MAX_UTC
        );
    }
}
