//! The notification log: for each integration and alert group, which alerts the last
//! notification that went out said were firing and resolved, and when. It decides whether a
//! flush is news (Alertmanager's dedup stage) and is what keeps a restart from notifying
//! again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use vigil_store::alert::Fingerprint;
use vigil_store::query::after;

/// One integration of one receiver: `team/webhook/0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntegrationId {
    /// The receiver's name.
    pub receiver: String,
    /// `webhook`, `slack`, `pagerduty` or `alertmanager`.
    pub kind: String,
    /// Its position among the receiver's integrations of that kind.
    pub index: usize,
}

impl std::fmt::Display for IntegrationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.receiver, self.kind, self.index)
    }
}

/// What the last notification to an integration about a group said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Alerts it reported firing.
    pub firing: BTreeSet<Fingerprint>,
    /// Alerts it reported resolved.
    pub resolved: BTreeSet<Fingerprint>,
    /// When it was sent.
    pub at: DateTime<Utc>,
}

/// Whether a group with these firing and resolved alerts is worth a notification, given the
/// last one (`None`: never notified).
pub fn needs_update(
    last: Option<&LogEntry>,
    firing: &BTreeSet<Fingerprint>,
    resolved: &BTreeSet<Fingerprint>,
    send_resolved: bool,
    repeat: Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(last) = last else {
        // Nothing to say about a group the receiver never heard of that only resolved.
        return !firing.is_empty();
    };
    if !firing.is_subset(&last.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: news only if the receiver last heard something fire.
        return !last.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&last.resolved) {
        return true;
    }
    after(last.at, repeat) <= now
}

/// Entries by integration (`team/webhook/0`) and group key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationLog {
    entries: BTreeMap<String, BTreeMap<String, LogEntry>>,
}

impl NotificationLog {
    /// The last entry for `integration` and `group_key`.
    pub fn get(&self, integration: &IntegrationId, group_key: &str) -> Option<&LogEntry> {
        self.entries.get(&integration.to_string())?.get(group_key)
    }

    /// Records a notification that went out (or, for an all-resolved group, that the
    /// receiver has nothing more to hear).
    pub fn record(&mut self, integration: &IntegrationId, group_key: &str, entry: LogEntry) {
        self.entries
            .entry(integration.to_string())
            .or_default()
            .insert(group_key.to_string(), entry);
    }

    /// Forgets entries older than `keep` (groups long gone), so the log stays small.
    pub fn prune(&mut self, now: DateTime<Utc>, keep: Duration) {
        for groups in self.entries.values_mut() {
            groups.retain(|_, e| after(e.at, keep) > now);
        }
        self.entries.retain(|_, groups| !groups.is_empty());
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.values().map(BTreeMap::len).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(fps: &[u64]) -> BTreeSet<Fingerprint> {
        fps.iter().map(|f| Fingerprint(*f)).collect()
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
    }

    const REPEAT: Duration = Duration::from_secs(3600);

    #[test]
    fn news_is_a_new_firing_alert_a_resolution_or_the_repeat_interval() {
        assert!(needs_update(
            None,
            &set(&[1]),
            &set(&[]),
            true,
            REPEAT,
            t(0)
        ));
        assert!(!needs_update(
            None,
            &set(&[]),
            &set(&[1]),
            true,
            REPEAT,
            t(0)
        ));
        let last = LogEntry {
            firing: set(&[1, 2]),
            resolved: set(&[]),
            at: t(0),
        };
        let l = Some(&last);
        // The same or fewer firing alerts and nothing newly resolved: quiet until the repeat.
        assert!(!needs_update(
            l,
            &set(&[1, 2]),
            &set(&[]),
            true,
            REPEAT,
            t(60)
        ));
        assert!(!needs_update(
            l,
            &set(&[1]),
            &set(&[]),
            false,
            REPEAT,
            t(60)
        ));
        assert!(needs_update(
            l,
            &set(&[1, 2]),
            &set(&[]),
            true,
            REPEAT,
            t(3600)
        ));
        // A new firing alert.
        assert!(needs_update(
            l,
            &set(&[1, 3]),
            &set(&[]),
            true,
            REPEAT,
            t(60)
        ));
        // A resolution, if the receiver wants them.
        assert!(needs_update(l, &set(&[1]), &set(&[2]), true, REPEAT, t(60)));
        assert!(!needs_update(
            l,
            &set(&[1]),
            &set(&[2]),
            false,
            REPEAT,
            t(60)
        ));
        // All resolved: always news once, so the log forgets the firing alerts.
        assert!(needs_update(
            l,
            &set(&[]),
            &set(&[1, 2]),
            false,
            REPEAT,
            t(60)
        ));
        let cleared = LogEntry {
            firing: set(&[]),
            resolved: set(&[1, 2]),
            at: t(60),
        };
        assert!(!needs_update(
            Some(&cleared),
            &set(&[]),
            &set(&[1, 2]),
            true,
            REPEAT,
            t(120)
        ));
    }

    #[test]
    fn the_log_is_per_integration_and_group_and_prunes_old_entries() {
        let mut log = NotificationLog::default();
        let hook = IntegrationId {
            receiver: "team".into(),
            kind: "webhook".into(),
            index: 0,
        };
        let entry = |at| LogEntry {
            firing: set(&[1]),
            resolved: set(&[]),
            at,
        };
        log.record(&hook, "{}:{}", entry(t(0)));
        log.record(&hook, "{}:{a=\"1\"}", entry(t(100)));
        assert_eq!(log.len(), 2);
        assert!(log.get(&hook, "{}:{}").is_some());
        log.prune(t(150), Duration::from_secs(100));
        assert_eq!(log.len(), 1);
        assert!(log.get(&hook, "{}:{}").is_none());
        assert_eq!(hook.to_string(), "team/webhook/0");
        let json = serde_json::to_string(&log).unwrap();
        assert_eq!(serde_json::from_str::<NotificationLog>(&json).unwrap(), log);
    }
}
