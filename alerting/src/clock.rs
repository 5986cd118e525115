//! Wall-clock arithmetic that saturates instead of overflowing (a `Duration::MAX` timing must
//! mean "never", not a panic).

use std::time::Duration;

use chrono::{DateTime, Utc};

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
