//! Severities as payloads need them: read from the `severity` label, ranked, and named the way
//! PagerDuty names them.

use serde::Serialize;

use crate::notification::Notification;
use vigil_store::alert::Alert;

/// How bad an alert is, least to most severe (PagerDuty's four levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `info`.
    Info,
    /// `warning`.
    Warning,
    /// `error`.
    Error,
    /// `critical` (also written `page`).
    Critical,
}

impl Severity {
    /// The severity a `severity` label value names, ignoring case: `critical` or `page`,
    /// `error`, `warning`, `info`; `None` for anything else.
    pub fn from_label(value: &str) -> Option<Severity> {
        match value.trim().to_ascii_lowercase().as_str() {
            "critical" | "page" => Some(Severity::Critical),
            "error" => Some(Severity::Error),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }

    /// The severity of `alert`'s `severity` label, if it names one.
    pub fn of_alert(alert: &Alert) -> Option<Severity> {
        alert
            .labels
            .get("severity")
            .and_then(|v| Severity::from_label(v))
    }

    /// The most severe of the alerts the message is about (see [`super::relevant`]).
    pub fn of_group(n: &Notification) -> Option<Severity> {
        super::relevant(n).filter_map(Severity::of_alert).max()
    }

    /// The lowercase name PagerDuty accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_map_to_pagerduty_levels_and_rank() {
        assert_eq!(Severity::from_label("page"), Some(Severity::Critical));
        assert_eq!(Severity::from_label(" Critical "), Some(Severity::Critical));
        assert_eq!(Severity::from_label("warning"), Some(Severity::Warning));
        assert_eq!(Severity::from_label("sev1"), None);
        assert!(Severity::Critical > Severity::Error && Severity::Warning > Severity::Info);
        assert_eq!(Severity::Error.as_str(), "error");
    }
}
