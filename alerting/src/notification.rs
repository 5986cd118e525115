//! One message to one receiver about one group of alerts: what the dispatcher hands to a
//! receiver, and what every payload format (webhook, Slack, PagerDuty) is built from.

use serde::{Deserialize, Serialize};

use vigil_store::alert::{Alert, AlertState, Labels};

/// Whether a group still has firing alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    /// At least one alert of the group fires.
    Firing,
    /// Every alert of the group has resolved.
    Resolved,
}

impl GroupStatus {
    /// `firing` or `resolved`, as payloads spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Firing => "firing",
            GroupStatus::Resolved => "resolved",
        }
    }
}

/// A group of alerts going to one receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The receiver's name in the routing configuration.
    pub receiver: String,
    /// Identifies the group across notifications: the route's matchers from the root down,
    /// then the group labels, as Alertmanager writes it (`{}/{severity="page"}:{alertname="X"}`).
    pub group_key: String,
    /// The labels the route groups by, with this group's values.
    pub group_labels: Labels,
    /// The group's alerts, firing ones first, each group ordered by when it became active.
    pub alerts: Vec<Alert>,
    /// Alerts of the group left out because the receiver takes at most so many.
    pub truncated: usize,
    /// Vigil's own address, for links back to the alert and its traces.
    pub external_url: String,
}

impl Notification {
    /// Firing while any alert of the group fires.
    pub fn status(&self) -> GroupStatus {
        if self.alerts.iter().any(|a| a.state == AlertState::Firing) {
            GroupStatus::Firing
        } else {
            GroupStatus::Resolved
        }
    }

    /// The labels every alert of the group carries with the same value.
    pub fn common_labels(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// The annotations every alert of the group carries with the same value.
    pub fn common_annotations(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.annotations))
    }
}

/// The pairs present, with equal values, in every map (none for no maps).
fn common<'a>(mut maps: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = maps.next() else {
        return Labels::new();
    };
    let mut shared = first.clone();
    for m in maps {
        shared.retain(|k, v| m.get(k) == Some(v));
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::alert;

    #[test]
    fn a_group_fires_while_any_alert_fires_and_shares_only_equal_labels() {
        let mut n = Notification {
            receiver: "team".into(),
            group_key: "{}:{alertname=\"Slow\"}".into(),
            group_labels: Labels::new(),
            alerts: vec![
                alert(
                    &[("alertname", "Slow"), ("service", "payment")],
                    AlertState::Firing,
                ),
                alert(
                    &[("alertname", "Slow"), ("service", "order")],
                    AlertState::Resolved,
                ),
            ],
            truncated: 0,
            external_url: "http://127.0.0.1:8080".into(),
        };
        assert_eq!(n.status(), GroupStatus::Firing);
        assert_eq!(
            n.common_labels(),
            Labels::from([("alertname".to_string(), "Slow".to_string())])
        );
        n.alerts[0].state = AlertState::Resolved;
        assert_eq!(n.status(), GroupStatus::Resolved);
        n.alerts.clear();
        assert!(n.common_labels().is_empty());
    }
}
