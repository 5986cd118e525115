//! A PagerDuty Events API v2 alert event for a group: `trigger` while it fires (with the
//! payload, client and links), `resolve` once it has resolved, both under one `dedup_key` per
//! receiver and group.

use std::collections::BTreeSet;

use aws_lc_rs::digest;
use serde::Serialize;

use super::severity::Severity;
use super::text::{hex, truncate};
use super::webhook::{self, WebhookAlert};
use super::{
    alert_url, annotation, base, count, label, relevant, rfc3339, started_at, summary, title,
    trace_ids, trace_url,
};
use crate::notification::{GroupStatus, Notification};
use vigil_store::alert::{Alert, AlertState, RCA_REPORT_URL, RCA_SUSPECTS};

/// PagerDuty's limit on `payload.summary`.
const SUMMARY_MAX: usize = 1024;
/// Alerts listed in `custom_details` (PagerDuty takes events of at most 512 KB).
const ALERTS_DETAILED: usize = 20;
/// Alerts linked (to Vigil, their runbooks and traces).
const ALERTS_LINKED: usize = 10;
/// Exemplar traces linked per alert.
const TRACES_LINKED: usize = 3;

/// Per-receiver settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyOptions {
    /// The integration key of the PagerDuty service (or ruleset) to send to.
    pub routing_key: String,
    /// The severity to send instead of the one read from the alerts' `severity` labels.
    pub severity: Option<Severity>,
}

/// What the event does to the PagerDuty alert with its `dedup_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventAction {
    /// Open the alert (or add to it while it is open).
    Trigger,
    /// Close the alert.
    Resolve,
}

/// The JSON body posted to `https://events.pagerduty.com/v2/enqueue`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagerDutyEvent {
    /// [`PagerDutyOptions::routing_key`].
    pub routing_key: String,
    /// `trigger` while the group fires, `resolve` once it has resolved.
    pub event_action: EventAction,
    /// Lowercase hex SHA-256 of the receiver's name, a 0xff byte and the group key: the same
    /// for every event about one group at one receiver.
    pub dedup_key: String,
    /// What happened; only in `trigger` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// `Vigil`; only in `trigger` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Vigil's address; only in `trigger` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    /// The alerts in Vigil, their runbooks and exemplar traces; only in `trigger` events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// The `payload` of a `trigger` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payload {
    /// The title and the first firing alert's summary, at most 1024 characters.
    pub summary: String,
    /// The `service` label all firing alerts share, else `vigil`.
    pub source: String,
    /// [`PagerDutyOptions::severity`], else the worst `severity` label of the firing alerts,
    /// else `error`.
    pub severity: Severity,
    /// When the earliest firing alert started firing (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The `operation` label all firing alerts share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The group labels, `name=value` joined by commas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The firing alerts' names, sorted, joined by `, `.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Counts and the alerts themselves.
    pub custom_details: CustomDetails,
}

/// `payload.custom_details`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomDetails {
    /// Firing alerts in the group.
    pub firing: usize,
    /// Resolved alerts in the group.
    pub resolved: usize,
    /// Alerts of the group not listed in `alerts`.
    pub truncated: usize,
    /// The first firing alert's likely causes, one line per suspect, when its root-cause
    /// analysis came with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likely_cause: Option<String>,
    /// The first alerts of the group, as the webhook payload lists them.
    pub alerts: Vec<WebhookAlert>,
}

/// A link shown on the PagerDuty alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// Where it goes.
    pub href: String,
    /// What it says.
    pub text: String,
}

/// The PagerDuty event for `n`: a `trigger` while the group fires, else a `resolve`.
pub fn event(n: &Notification, options: &PagerDutyOptions) -> PagerDutyEvent {
    let resolve = PagerDutyEvent {
        routing_key: options.routing_key.clone(),
        event_action: EventAction::Resolve,
        dedup_key: dedup_key(n),
        payload: None,
        client: None,
        client_url: None,
        links: Vec::new(),
    };
    if n.status() == GroupStatus::Resolved {
        return resolve;
    }
    PagerDutyEvent {
        event_action: EventAction::Trigger,
        payload: Some(payload(n, options)),
        client: Some("Vigil".to_string()),
        client_url: Some(base(&n.external_url).to_string()),
        links: links(n),
        ..resolve
    }
}

/// Lowercase hex SHA-256 of the receiver, a 0xff byte (never part of UTF-8, so no two
/// receiver/group pairs run together) and the group key.
pub fn dedup_key(n: &Notification) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(n.receiver.as_bytes());
    ctx.update(&[0xff]);
    ctx.update(n.group_key.as_bytes());
    hex(ctx.finish().as_ref())
}

fn payload(n: &Notification, options: &PagerDutyOptions) -> Payload {
    let title = title(n);
    let summary = match summary(n) {
        Some(s) => format!("{title}: {s}"),
        None => title,
    };
    let firing: Vec<&Alert> = relevant(n).collect();
    let shared = |name: &str| {
        let first = firing.first().and_then(|a| label(a, name))?;
        firing
            .iter()
            .all(|a| label(a, name) == Some(first))
            .then(|| first.to_string())
    };
    let names: BTreeSet<&str> = firing
        .iter()
        .map(|a| a.name())
        .filter(|s| !s.is_empty())
        .collect();
    let group: Vec<String> = n
        .group_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let listed: Vec<WebhookAlert> = n
        .alerts
        .iter()
        .take(ALERTS_DETAILED)
        .map(|a| webhook::alert(n, a))
        .collect();
    Payload {
        summary: truncate(&summary, SUMMARY_MAX),
        source: shared("service").unwrap_or_else(|| "vigil".to_string()),
        severity: options
            .severity
            .or_else(|| Severity::of_group(n))
            .unwrap_or(Severity::Error),
        timestamp: firing.iter().map(|a| started_at(a)).min().map(rfc3339),
        component: shared("operation"),
        group: (!group.is_empty()).then(|| group.join(",")),
        class: (!names.is_empty()).then(|| names.into_iter().collect::<Vec<_>>().join(", ")),
        custom_details: CustomDetails {
            firing: count(n, AlertState::Firing),
            resolved: count(n, AlertState::Resolved),
            truncated: n.truncated + n.alerts.len().saturating_sub(listed.len()),
            likely_cause: firing
                .iter()
                .find_map(|a| annotation(a, RCA_SUSPECTS))
                .map(|c| truncate(c, SUMMARY_MAX)),
            alerts: listed,
        },
    }
}

/// For each of the first firing alerts: the alert in Vigil, its runbook (an http(s) address)
/// and its exemplar traces.
fn links(n: &Notification) -> Vec<Link> {
    let mut out = Vec::new();
    for a in relevant(n).take(ALERTS_LINKED) {
        let name = match a.name() {
            "" => a.fingerprint.to_string(),
            name => name.to_string(),
        };
        out.push(Link {
            href: alert_url(&n.external_url, a),
            text: format!("{name} in Vigil"),
        });
        let report = annotation(a, RCA_REPORT_URL).filter(|u| is_http(u));
        if let Some(url) = report {
            out.push(Link {
                href: url.to_string(),
                text: format!("Root cause: {name}"),
            });
        }
        let runbook = annotation(a, "runbook_url").filter(|u| is_http(u));
        if let Some(url) = runbook {
            out.push(Link {
                href: url.to_string(),
                text: format!("Runbook: {name}"),
            });
        }
        for id in trace_ids(a).take(TRACES_LINKED) {
            out.push(Link {
                href: trace_url(&n.external_url, id),
                text: format!("Trace {id}"),
            });
        }
    }
    out
}

/// An http(s) address.
fn is_http(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_store::alert::Labels;

    #[test]
    fn dedup_keys_are_sha256_of_receiver_and_group_key() {
        let mut n = Notification {
            receiver: "ab".into(),
            group_key: "c".into(),
            group_labels: Labels::new(),
            alerts: Vec::new(),
            truncated: 0,
            external_url: String::new(),
        };
        // SHA-256 of b"ab\xffc", computed with Python's hashlib.
        assert_eq!(
            dedup_key(&n),
            "3239f09555c633f7d3ff528c0ddf4b8f182735a9df6f06ed5daf720c90b3b6d0"
        );
        let before = dedup_key(&n);
        n.receiver = "a".into();
        n.group_key = "bc".into();
        assert_ne!(dedup_key(&n), before);
        assert_eq!(dedup_key(&n).len(), 64);
    }
}
