//! The Alertmanager webhook payload, version 4, exactly as Alertmanager's `webhook_config`
//! sends it, and the HMAC-SHA256 signature Vigil adds in `X-Vigil-Signature`.

use aws_lc_rs::hmac;
use serde::Serialize;

use super::text::hex;
use super::{alert_status, alert_url, rfc3339, started_at};
use crate::notification::{GroupStatus, Notification};
use vigil_store::alert::{Alert, AlertState, Labels};

/// The header carrying [`signature`] of the request body.
pub const SIGNATURE_HEADER: &str = "X-Vigil-Signature";

/// `endsAt` of an alert that has not ended: Go's zero time, as Alertmanager sends it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The body of a webhook notification (Alertmanager's `webhook.Message`, version 4).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    /// The receiver's name.
    pub receiver: String,
    /// `firing` while any alert of the group fires, else `resolved`.
    pub status: GroupStatus,
    /// The group's alerts.
    pub alerts: Vec<WebhookAlert>,
    /// The labels the route groups by, with this group's values.
    pub group_labels: Labels,
    /// The labels every alert carries with the same value.
    pub common_labels: Labels,
    /// The annotations every alert carries with the same value.
    pub common_annotations: Labels,
    /// Vigil's own address.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// Always `"4"`.
    pub version: String,
    /// Identifies the group across notifications.
    pub group_key: String,
    /// How many alerts of the group were left out.
    pub truncated_alerts: usize,
}

/// One alert of a [`WebhookMessage`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// The alert's labels.
    pub labels: Labels,
    /// The alert's annotations.
    pub annotations: Labels,
    /// When it started firing (RFC 3339).
    pub starts_at: String,
    /// When it resolved (RFC 3339), or [`ZERO_TIME`] while it has not (or the time is unknown).
    pub ends_at: String,
    /// The alert in Vigil: `{externalURL}/api/v1/alerts?fingerprint=<fingerprint>`.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// The label set's fingerprint, 16 hex digits.
    pub fingerprint: String,
}

/// The webhook payload for `n`.
pub fn message(n: &Notification) -> WebhookMessage {
    WebhookMessage {
        receiver: n.receiver.clone(),
        status: n.status(),
        alerts: n.alerts.iter().map(|a| alert(n, a)).collect(),
        group_labels: n.group_labels.clone(),
        common_labels: n.common_labels(),
        common_annotations: n.common_annotations(),
        external_url: n.external_url.clone(),
        version: "4".to_string(),
        group_key: n.group_key.clone(),
        truncated_alerts: n.truncated,
    }
}

/// `a` as the webhook lists it (PagerDuty's custom details list alerts the same way).
pub(crate) fn alert(n: &Notification, a: &Alert) -> WebhookAlert {
    let ends_at = match (a.state, a.resolved_at) {
        (AlertState::Resolved, Some(t)) => rfc3339(t),
        _ => ZERO_TIME.to_string(),
    };
    WebhookAlert {
        status: alert_status(a).to_string(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: rfc3339(started_at(a)),
        ends_at,
        generator_url: alert_url(&n.external_url, a),
        fingerprint: a.fingerprint.to_string(),
    }
}

/// The value of [`SIGNATURE_HEADER`] for `body`: `sha256=` and the lowercase hex of
/// HMAC-SHA256 keyed with `secret` over the body's bytes (as GitHub signs its webhooks).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex(hmac::sign(&key, body).as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_rfc_4231() {
        // Test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 1.
        assert_eq!(
            signature(&[0x0b; 20], b"Hi There"),
            "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 6: a key longer than the block size is hashed first.
        assert_eq!(
            signature(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
