//! The wire formats a [`Notification`] becomes — the Alertmanager webhook (version 4), a Slack
//! Block Kit message and a PagerDuty Events API v2 event — and what they share: the group's
//! title, summary and severity, and links back into Vigil.
//!
//! Every builder is a pure function of the notification (and the receiver's options) returning
//! a serialisable struct; sending, retrying and configuration live elsewhere.

pub mod pagerduty;
mod severity;
pub mod slack;
mod text;
pub mod webhook;

use chrono::{DateTime, SecondsFormat, Utc};

pub use pagerduty::{PagerDutyEvent, PagerDutyOptions};
pub use severity::Severity;
pub use slack::{SlackMessage, SlackOptions};
pub use webhook::{SIGNATURE_HEADER, WebhookMessage};

use crate::notification::{GroupStatus, Notification};
use vigil_store::alert::{Alert, AlertState};

/// The address of `alert` in Vigil's API: `{external_url}/api/v1/alerts?fingerprint=<fp>`.
pub fn alert_url(external_url: &str, alert: &Alert) -> String {
    format!(
        "{}/api/v1/alerts?fingerprint={}",
        base(external_url),
        alert.fingerprint
    )
}

/// The address of a trace in Vigil's API: `{external_url}/api/v1/traces/<trace_id>`.
pub fn trace_url(external_url: &str, trace_id: &str) -> String {
    format!("{}/api/v1/traces/{trace_id}", base(external_url))
}

/// The exemplar traces of an anomaly alert: its `trace_ids` annotation, comma-separated.
/// Entries that are not hexadecimal ids (at most 64 digits) are skipped, so every id returned
/// can go into a URL as it is.
pub fn trace_ids(alert: &Alert) -> impl Iterator<Item = &str> {
    annotation(alert, "trace_ids")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The group's title, as Alertmanager's default templates write it: `[FIRING:<n>] <group>`
/// (`n` counting firing alerts) or `[RESOLVED] <group>`, where `<group>` is the values of the
/// group labels, else the alert name every alert shares, else `alerts`.
pub fn title(n: &Notification) -> String {
    let mut name = n
        .group_labels
        .values()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        name = n
            .common_labels()
            .remove("alertname")
            .unwrap_or_else(|| "alerts".to_string());
    }
    match n.status() {
        GroupStatus::Firing => format!("[FIRING:{}] {name}", count(n, AlertState::Firing)),
        GroupStatus::Resolved => format!("[RESOLVED] {name}"),
    }
}

/// A one-line summary of the group: the `summary` annotation of the first alert the message is
/// about (see [`relevant`]) that has one.
pub fn summary(n: &Notification) -> Option<&str> {
    relevant(n).find_map(|a| annotation(a, "summary"))
}

/// The alerts a message is about: the firing ones while the group fires, else all of them.
pub fn relevant(n: &Notification) -> impl Iterator<Item = &Alert> {
    let firing = n.status() == GroupStatus::Firing;
    n.alerts
        .iter()
        .filter(move |a| !firing || a.state == AlertState::Firing)
}

/// How many alerts of the group are in `state`.
pub(crate) fn count(n: &Notification, state: AlertState) -> usize {
    n.alerts.iter().filter(|a| a.state == state).count()
}

/// An alert's status as payloads spell it: `resolved`, or `firing` (also for a pending alert,
/// which the dispatcher never sends: the formats know no third status).
pub(crate) fn alert_status(alert: &Alert) -> &'static str {
    match alert.state {
        AlertState::Resolved => "resolved",
        AlertState::Firing | AlertState::Pending => "firing",
    }
}

/// When an alert started firing (when it became active if it never fired).
pub(crate) fn started_at(alert: &Alert) -> DateTime<Utc> {
    alert.fired_at.unwrap_or(alert.active_at)
}

/// A time in RFC 3339 as Go writes it in JSON (`time.RFC3339Nano`, which Alertmanager's
/// payloads use): UTC as `Z`, fractional seconds without trailing zeros, none when whole.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let Some((whole, fraction)) = s.trim_end_matches('Z').split_once('.') else {
        return s;
    };
    match fraction.trim_end_matches('0') {
        "" => format!("{whole}Z"),
        digits => format!("{whole}.{digits}Z"),
    }
}

/// A non-empty annotation of `alert`.
pub(crate) fn annotation<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
    alert
        .annotations
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// A non-empty label of `alert`.
pub(crate) fn label<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
    alert
        .labels
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// `external_url` without trailing slashes, so paths can be appended.
fn base(external_url: &str) -> &str {
    external_url.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_store::alert::Labels;

    fn alert(state: AlertState, labels: &[(&str, &str)], trace_ids: &str) -> Alert {
        Alert {
            annotations: Labels::from([("trace_ids".to_string(), trace_ids.to_string())]),
            ..crate::testing::alert(labels, state)
        }
    }

    fn group(alerts: Vec<Alert>, group_labels: &[(&str, &str)]) -> Notification {
        Notification {
            receiver: "team".into(),
            group_key: "{}:{}".into(),
            group_labels: group_labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            alerts,
            truncated: 0,
            external_url: "https://vigil.example.com/".into(),
        }
    }

    #[test]
    fn titles_count_firing_alerts_and_name_the_group() {
        let slow = [("alertname", "Slow"), ("service", "payment")];
        let n = group(
            vec![
                alert(AlertState::Firing, &slow, ""),
                alert(AlertState::Resolved, &[("alertname", "Slow")], ""),
            ],
            &[],
        );
        assert_eq!(title(&n), "[FIRING:1] Slow");
        let n = group(
            vec![alert(AlertState::Resolved, &slow, "")],
            &[("service", "payment"), ("alertname", "Slow")],
        );
        // Group label values in label-name order, as Alertmanager's templates join them.
        assert_eq!(title(&n), "[RESOLVED] Slow payment");
        assert_eq!(title(&group(Vec::new(), &[])), "[RESOLVED] alerts");
    }

    #[test]
    fn links_and_trace_ids_are_url_safe() {
        let a = alert(
            AlertState::Firing,
            &[("alertname", "X")],
            " 4bf92f3577b34da6a3ce929d0e0e4736, not-hex,,00f067aa0ba902b7 ",
        );
        let ids: Vec<&str> = trace_ids(&a).collect();
        assert_eq!(
            ids,
            ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"]
        );
        assert_eq!(
            trace_url("https://vigil.example.com/", ids[1]),
            "https://vigil.example.com/api/v1/traces/00f067aa0ba902b7"
        );
        assert_eq!(
            alert_url("https://vigil.example.com", &a),
            format!(
                "https://vigil.example.com/api/v1/alerts?fingerprint={}",
                a.fingerprint
            )
        );
    }

    #[test]
    fn times_are_written_as_go_writes_rfc_3339_nano() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
        assert_eq!(
            t("2026-11-28T01:00:00+01:00").map(rfc3339),
            Ok("2026-11-28T00:00:00Z".into())
        );
        assert_eq!(
            t("2026-11-28T00:15:30.250Z").map(rfc3339),
            Ok("2026-11-28T00:15:30.25Z".into())
        );
        assert_eq!(
            t("2026-11-28T00:15:30.000000001Z").map(rfc3339),
            Ok("2026-11-28T00:15:30.000000001Z".into())
        );
    }
}
