//! What a receiver's answer means for a notification (delivered, try again, give up) and
//! when to try again: exponential backoff with jitter, never sooner than the receiver's
//! `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took it (2xx).
    Delivered,
    /// Worth another attempt (connection errors, timeouts, 408, 429, 5xx), no sooner than
    /// the receiver asked.
    Retry {
        /// What went wrong.
        error: String,
        /// The receiver's `Retry-After`, if it sent one.
        after: Option<Duration>,
    },
    /// The receiver refused it for good (4xx other than 408 and 429).
    Permanent {
        /// What went wrong.
        error: String,
    },
}

/// The outcome of an HTTP answer with `status`, its `Retry-After` header and a short
/// excerpt of its body.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str, now: DateTime<Utc>) -> Outcome {
    let error = || {
        let excerpt: String = body.chars().take(200).collect();
        format!("HTTP {status}: {}", excerpt.trim())
    };
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            error: error(),
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
        },
        _ => Outcome::Permanent { error: error() },
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// How retries are spaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Each delay is spread by ± this share, so receivers that come back are not hit by
    /// every sender at once.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1` after `attempt` failures (1 or more); `unit`
    /// is a uniform draw in [0, 1) for the jitter; never below `retry_after`.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let doubling = 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
        let base = (self.initial.as_secs_f64() * doubling).min(self.max.as_secs_f64());
        let spread = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let delay = Duration::from_secs_f64((base * spread).max(0.0));
        retry_after.map_or(delay, |r| delay.max(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-28T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn statuses_are_delivered_retried_or_given_up() {
        assert_eq!(classify(202, None, "", now()), Outcome::Delivered);
        assert_eq!(
            classify(429, Some("7"), "slow down", now()),
            Outcome::Retry {
                error: "HTTP 429: slow down".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            classify(503, None, "", now()),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify(408, None, "", now()),
            Outcome::Retry { .. }
        ));
        assert_eq!(
            classify(400, None, "invalid routing key", now()),
            Outcome::Permanent {
                error: "HTTP 400: invalid routing key".into()
            }
        );
        assert!(matches!(
            classify(404, None, "", now()),
            Outcome::Permanent { .. }
        ));
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 10:00:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 09:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    #[test]
    fn delays_double_up_to_the_cap_with_bounded_jitter_and_respect_retry_after() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, None, 0.5), Duration::from_secs(1));
        assert_eq!(b.delay(4, None, 0.5), Duration::from_secs(8));
        assert_eq!(b.delay(30, None, 0.5), Duration::from_secs(60));
        assert_eq!(b.delay(u32::MAX, None, 0.5), Duration::from_secs(60));
        let low = b.delay(3, None, 0.0).as_secs_f64();
        let high = b.delay(3, None, 0.999_999).as_secs_f64();
        assert!(
            (low - 3.2).abs() < 1e-9 && (high - 4.8).abs() < 1e-3,
            "{low} {high}"
        );
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(30)), 0.5),
            Duration::from_secs(30)
        );
    }
}
