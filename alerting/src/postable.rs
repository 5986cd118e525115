//! Alerts in Alertmanager's API v2 shape (`POST /api/v2/alerts`), both ways: alerts other
//! rule engines post to Vigil become Vigil alerts, and Vigil's alerts are forwarded to a
//! real Alertmanager in the same shape.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use vigil_store::alert::{Alert, AlertState, Fingerprint, Labels};
use vigil_store::query::after;

/// How long a posted alert without `endsAt` stays firing unless posted again
/// (Alertmanager's `resolve_timeout`).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(300);

/// One alert as Alertmanager's API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostableAlert {
    /// Identity; must include `alertname`.
    pub labels: Labels,
    /// Context.
    #[serde(default)]
    pub annotations: Labels,
    /// When it started (now if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends: in the past, it has resolved; absent, it fires for
    /// [`RESOLVE_TIMEOUT`] unless posted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Where it came from.
    #[serde(
        default,
        rename = "generatorURL",
        skip_serializing_if = "String::is_empty"
    )]
    pub generator_url: String,
}

/// Why a posted alert was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert {index}: {reason}")]
pub struct PostError {
    /// Its position in the request.
    pub index: usize,
    /// What is wrong.
    pub reason: String,
}

impl PostableAlert {
    /// As a Vigil alert at `now`, with when it expires if not posted again.
    pub fn into_alert(
        self,
        index: usize,
        now: DateTime<Utc>,
    ) -> Result<(Alert, DateTime<Utc>), PostError> {
        let err = |reason: &str| PostError {
            index,
            reason: reason.to_string(),
        };
        if self.labels.get("alertname").is_none_or(String::is_empty) {
            return Err(err("labels must include a non-empty alertname"));
        }
        if let Some(bad) = self
            .labels
            .keys()
            .find(|k| !crate::matcher::valid_label_name(k))
        {
            return Err(err(&format!("{bad:?} is not a label name")));
        }
        // As Alertmanager does: an alert posted with only a past end started then.
        let starts = self.starts_at.unwrap_or(match self.ends_at {
            Some(end) if end <= now => end,
            _ => now,
        });
        let expires = self.ends_at.unwrap_or_else(|| after(now, RESOLVE_TIMEOUT));
        if expires < starts {
            return Err(err("endsAt is before startsAt"));
        }
        let resolved = expires <= now;
        Ok((
            Alert {
                fingerprint: Fingerprint::of(&self.labels),
                labels: self.labels,
                annotations: self.annotations,
                state: if resolved {
                    AlertState::Resolved
                } else {
                    AlertState::Firing
                },
                active_at: starts,
                fired_at: Some(starts),
                resolved_at: resolved.then_some(expires),
                value: None,
                generator: self.generator_url,
            },
            expires,
        ))
    }

    /// A Vigil alert in this shape (`generator_url` links back to it in Vigil).
    pub fn from_alert(alert: &Alert, generator_url: String) -> PostableAlert {
        PostableAlert {
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            starts_at: Some(alert.fired_at.unwrap_or(alert.active_at)),
            ends_at: alert.resolved_at,
            generator_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-28T10:00:00Z".parse().unwrap()
    }

    fn post(json: &str) -> Result<(Alert, DateTime<Utc>), PostError> {
        let p: PostableAlert = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        p.into_alert(0, now())
    }

    #[test]
    fn posted_alerts_fire_until_they_end_or_time_out() {
        let (a, expires) = post(
            r#"{"labels":{"alertname":"Disk","instance":"db1"},"annotations":{"summary":"full"}}"#,
        )
        .unwrap();
        assert_eq!(a.state, AlertState::Firing);
        assert_eq!(expires, now() + chrono::Duration::seconds(300));
        assert_eq!(a.fingerprint, Fingerprint::of(&a.labels));
        let (a, _) = post(r#"{"labels":{"alertname":"Disk"},"startsAt":"2026-11-28T09:00:00Z","endsAt":"2026-11-28T09:30:00Z","generatorURL":"http://prom/graph"}"#).unwrap();
        assert_eq!(a.state, AlertState::Resolved);
        assert_eq!(a.resolved_at, Some("2026-11-28T09:30:00Z".parse().unwrap()));
        let back = PostableAlert::from_alert(&a, "http://vigil/x".into());
        assert_eq!(back.ends_at, a.resolved_at);
        let json = serde_json::to_value(&back).unwrap();
        assert_eq!(json["generatorURL"], "http://vigil/x");
        assert_eq!(json["startsAt"], "2026-11-28T09:00:00Z");
    }

    #[test]
    fn malformed_alerts_are_refused_with_their_index_and_reason() {
        let e = post(r#"{"labels":{"instance":"db1"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "alert 0: labels must include a non-empty alertname"
        );
        let e = post(r#"{"labels":{"alertname":"X","bad-name":"1"}}"#).unwrap_err();
        assert!(e.reason.contains("bad-name"), "{e}");
        let e = post(r#"{"labels":{"alertname":"X"},"startsAt":"2026-11-28T11:00:00Z","endsAt":"2026-11-28T10:30:00Z"}"#).unwrap_err();
        assert!(e.reason.contains("before"), "{e}");
        assert!(serde_json::from_str::<PostableAlert>(r#"{"labels":{},"status":"x"}"#).is_err());
    }
}
