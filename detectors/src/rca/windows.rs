//! The windows a root-cause analysis compares: when things went wrong and what normal looked
//! like, given or chosen around an alert.

use chrono::{DateTime, Duration, Utc};
use vigil_store::alert::Alert;
use vigil_store::query::{Window, nanos};

/// How much of what went before an alert's window is its baseline: recent normal, and few
/// enough rows that the analysis is done within seconds of the alert firing.
const ALERT_BASELINE: Duration = Duration::minutes(15);
/// How far before an alert became active its window starts: the change precedes the alert
/// by the detection window, and the baseline must not already hold it.
const ALERT_LEAD: Duration = Duration::seconds(30);
/// Shortest window around an alert.
const ALERT_MIN_WINDOW: Duration = Duration::minutes(1);

/// The windows to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RcaWindows {
    /// When things went wrong.
    pub window: Window,
    /// What normal looked like: before or after `window`, not overlapping it.
    pub baseline: Window,
}

impl RcaWindows {
    /// `alert`'s active span (from a little before it became active until it resolved, or
    /// `now`; a minute at least) against the quarter of an hour before.
    pub fn around(alert: &Alert, now: DateTime<Utc>) -> RcaWindows {
        let start = alert.active_at - ALERT_LEAD;
        let end = alert
            .resolved_at
            .unwrap_or(now)
            .max(start + ALERT_MIN_WINDOW);
        RcaWindows {
            window: Window {
                start: nanos(start),
                end: nanos(end),
            },
            baseline: Window {
                start: nanos(start - ALERT_BASELINE),
                end: nanos(start),
            },
        }
    }

    /// Whether the baseline and the window share any time.
    pub fn overlap(&self) -> bool {
        self.baseline.start < self.window.end && self.window.start < self.baseline.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_store::alert::{AlertState, Fingerprint, labels};

    #[test]
    fn an_alert_is_compared_with_the_quarter_hour_before_it_became_active() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let l = labels(&[("alertname", "Slow")]);
        let alert = Alert {
            fingerprint: Fingerprint::of(&l),
            labels: l,
            annotations: Default::default(),
            state: AlertState::Firing,
            active_at: at("2026-12-01T10:00:00Z"),
            fired_at: None,
            resolved_at: None,
            value: None,
            generator: String::new(),
        };
        let w = RcaWindows::around(&alert, at("2026-12-01T10:00:10Z"));
        assert_eq!(w.window.start, nanos(at("2026-12-01T09:59:30Z")));
        assert_eq!(
            w.window.end,
            nanos(at("2026-12-01T10:00:30Z")),
            "a minute at least"
        );
        assert_eq!(w.baseline.start, nanos(at("2026-12-01T09:44:30Z")));
        assert!(!w.overlap());
        let after = RcaWindows {
            window: w.window,
            baseline: Window {
                start: w.window.end,
                end: w.window.end + 1,
            },
        };
        assert!(!after.overlap(), "a baseline after the window is fine");
        let over = RcaWindows {
            window: w.window,
            baseline: Window {
                start: w.window.start - 1,
                end: w.window.start + 1,
            },
        };
        assert!(over.overlap());
    }
}
