//! Alerts other rule engines posted, as they stand now: firing until their end, then
//! resolved and kept for `RESOLVED_KEPT`, so `GET /api/v1/alerts` and notification links
//! find them as they find the rule engine's own.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use vigil_store::alert::{Alert, AlertState, Fingerprint};
use vigil_store::query::after;

/// How long a resolved posted alert stays listed.
pub const RESOLVED_KEPT: Duration = Duration::from_secs(15 * 60);

/// The latest version of each posted alert, with when it ends unless posted again.
#[derive(Debug, Default)]
pub struct PostedAlerts {
    alerts: HashMap<Fingerprint, (Alert, DateTime<Utc>)>,
}

impl PostedAlerts {
    /// Takes the latest state of some alerts, each valid until its `DateTime`.
    pub fn record(&mut self, alerts: &[(Alert, DateTime<Utc>)], now: DateTime<Utc>) {
        for (alert, ends) in alerts {
            let mut alert = alert.clone();
            if alert.state == AlertState::Resolved {
                // A resolution keeps the original start of a known alert.
                if let Some((known, _)) = self.alerts.get(&alert.fingerprint) {
                    alert.active_at = known.active_at;
                    alert.fired_at = known.fired_at;
                }
            }
            self.alerts.insert(alert.fingerprint, (alert, *ends));
        }
        self.prune(now);
    }

    /// Every posted alert as of `now`: those past their end are resolved at it.
    pub fn current(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        self.prune(now);
        let mut out: Vec<Alert> = self
            .alerts
            .values()
            .map(|(alert, ends)| {
                let mut alert = alert.clone();
                if *ends <= now && alert.state != AlertState::Resolved {
                    alert.state = AlertState::Resolved;
                    alert.resolved_at = Some(*ends);
                }
                alert
            })
            .collect();
        out.sort_by(|a, b| a.active_at.cmp(&b.active_at).then(a.labels.cmp(&b.labels)));
        out
    }

    /// Forgets alerts resolved longer than `RESOLVED_KEPT` ago.
    fn prune(&mut self, now: DateTime<Utc>) {
        self.alerts.retain(|_, (alert, ends)| {
            after(alert.resolved_at.unwrap_or(*ends), RESOLVED_KEPT) > now
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::alert;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap_or_default()
    }

    #[test]
    fn a_posted_alert_fires_until_its_end_then_resolves_and_is_kept_for_a_while() {
        let mut posted = PostedAlerts::default();
        let a = alert(&[("alertname", "DiskFull")], AlertState::Firing);
        posted.record(&[(a.clone(), at(300))], at(0));
        let now = posted.current(at(100));
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].state, AlertState::Firing);

        let later = posted.current(at(301));
        assert_eq!(later[0].state, AlertState::Resolved);
        assert_eq!(later[0].resolved_at, Some(at(300)));

        assert!(posted.current(at(300 + 15 * 60 + 1)).is_empty());
    }

    #[test]
    fn posting_again_extends_and_a_resolution_keeps_the_start() {
        let mut posted = PostedAlerts::default();
        let a = alert(&[("alertname", "DiskFull")], AlertState::Firing);
        posted.record(&[(a.clone(), at(300))], at(0));
        posted.record(&[(a.clone(), at(600))], at(200));
        assert_eq!(posted.current(at(400))[0].state, AlertState::Firing);

        let mut resolved = alert(&[("alertname", "DiskFull")], AlertState::Resolved);
        resolved.active_at = at(450);
        resolved.resolved_at = Some(at(450));
        posted.record(&[(resolved, at(450))], at(450));
        let now = posted.current(at(460));
        assert_eq!(now[0].state, AlertState::Resolved);
        assert_eq!(now[0].active_at, at(0));
    }
}
