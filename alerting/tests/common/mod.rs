//! Notifications for the delivery tests.

use std::collections::BTreeSet;

use chrono::Utc;
use vigil_alerting::dispatch::Dispatch;
use vigil_alerting::nflog::{IntegrationId, LogEntry};
use vigil_alerting::{Alert, AlertState, Fingerprint, Labels, Notification};

/// A webhook notification for `receiver` about one firing alert named `group`, annotated
/// with `marker` so a receiver can tell notifications apart.
pub fn dispatch(receiver: &str, group: &str, marker: &str) -> Dispatch {
    let labels: Labels = [("alertname".to_string(), group.to_string())].into();
    let alert = Alert {
        fingerprint: Fingerprint::of(&labels),
        labels,
        annotations: [("marker".to_string(), marker.to_string())].into(),
        state: AlertState::Firing,
        active_at: Utc::now(),
        fired_at: Some(Utc::now()),
        resolved_at: None,
        value: None,
        generator: "test".into(),
    };
    Dispatch {
        integration: IntegrationId {
            receiver: receiver.into(),
            kind: "webhook".into(),
            index: 0,
        },
        notification: Notification {
            receiver: receiver.into(),
            group_key: format!("{{}}:{{alertname=\"{group}\"}}"),
            group_labels: Labels::new(),
            alerts: vec![alert],
            truncated: 0,
            external_url: "http://127.0.0.1:8080".into(),
        },
        entry: LogEntry {
            firing: BTreeSet::new(),
            resolved: BTreeSet::new(),
            at: Utc::now(),
        },
    }
}
