//! Grouping and timing. Alerts are sorted into groups (one per route and group labels); a
//! new group is flushed after `group_wait`, then every `group_interval`. A flush leaves out
//! silenced and inhibited alerts, respects the route's time intervals, and becomes a
//! notification to an integration only when the notification log says it is news (a new
//! firing alert, a resolution, or `repeat_interval` passed). Pure logic on a given clock:
//! the caller makes each dispatch durable and delivers it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::AlertingConfig;
use crate::inhibit::inhibited;
use crate::nflog::{IntegrationId, LogEntry, NotificationLog, needs_update};
use crate::notification::Notification;
use crate::route::{Route, Timing};
use vigil_store::alert::{Alert, AlertState, Fingerprint, Labels};
use vigil_store::query::after;

/// A notification due to one integration, with the log entry it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// Where it goes.
    pub integration: IntegrationId,
    /// What it says.
    pub notification: Notification,
    /// What the notification log records for it (already recorded in the dispatcher's log;
    /// kept with the dispatch so a restart can replay it).
    pub entry: LogEntry,
}

/// An alert in a group, and when it counts as resolved if nothing refreshes it.
#[derive(Debug, Clone)]
struct Held {
    alert: Alert,
    expires: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Group {
    key: String,
    receiver: String,
    timing: Timing,
    mute_time_intervals: Vec<String>,
    active_time_intervals: Vec<String>,
    labels: Labels,
    alerts: BTreeMap<Fingerprint, Held>,
    next_flush: DateTime<Utc>,
}

/// Resolved alerts already flushed are remembered this long, so the same resolution
/// reported again is not news.
const SETTLED_FOR: Duration = Duration::from_secs(3600);

/// Every group and the notification log.
#[derive(Debug)]
pub struct Dispatcher {
    config: Arc<AlertingConfig>,
    external_url: String,
    groups: BTreeMap<String, Group>,
    log: NotificationLog,
    /// Resolutions already flushed, with when each resolved.
    settled: HashMap<Fingerprint, DateTime<Utc>>,
}

impl Dispatcher {
    /// A dispatcher with no groups, continuing `log` (restored after a restart).
    pub fn new(config: Arc<AlertingConfig>, log: NotificationLog, external_url: String) -> Self {
        Dispatcher {
            config,
            external_url,
            groups: BTreeMap::new(),
            log,
            settled: HashMap::new(),
        }
    }

    /// Swaps in a new configuration. Groups start afresh (their alerts come back with the
    /// next evaluation); the notification log keeps them from being notified twice.
    pub fn set_config(&mut self, config: Arc<AlertingConfig>) {
        self.config = config;
        self.groups.clear();
    }

    /// The notification log, to persist.
    pub fn log(&self) -> &NotificationLog {
        &self.log
    }

    /// Adds or refreshes `alert`; a firing alert not refreshed by `expires` counts as
    /// resolved then. Pending alerts are not notified and are ignored.
    pub fn insert(&mut self, alert: &Alert, expires: DateTime<Utc>, now: DateTime<Utc>) {
        if alert.state == AlertState::Pending {
            return;
        }
        if alert.state == AlertState::Resolved
            && self.settled.get(&alert.fingerprint) == alert.resolved_at.as_ref()
        {
            return;
        }
        let config = Arc::clone(&self.config);
        for route in config.route.matching(&alert.labels) {
            let labels = route.grouping.group_labels(&alert.labels);
            let key = route.group_key(&labels);
            let group = self
                .groups
                .entry(key.clone())
                .or_insert_with(|| new_group(route, key, labels, alert, now));
            group.alerts.insert(
                alert.fingerprint,
                Held {
                    alert: alert.clone(),
                    expires,
                },
            );
        }
    }

    /// When the next group is due, if any.
    pub fn next_flush(&self) -> Option<DateTime<Utc>> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// Groups held.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Flushes every group that is due: the dispatches of one group go to `queue`, which
    /// makes them durable and says whether it did. Only then does the group's flush count
    /// (the log records it, resolved alerts leave); otherwise the group stays as it was and
    /// is flushed again after `group_interval`.
    pub fn flush_due(
        &mut self,
        now: DateTime<Utc>,
        silenced: &dyn Fn(&Labels) -> bool,
        queue: &mut dyn FnMut(Vec<Dispatch>) -> bool,
    ) {
        self.expire(now);
        let current: Vec<Alert> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.values().map(|h| h.alert.clone()))
            .collect();
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(mut group) = self.groups.remove(&key) else {
                continue;
            };
            group.next_flush = after(now, group.timing.group_interval);
            if !self.route_muted(&group, now) {
                let visible: Vec<Alert> = group
                    .alerts
                    .values()
                    .map(|h| h.alert.clone())
                    .filter(|a| {
                        !silenced(&a.labels) && !inhibited(&self.config.inhibit_rules, a, &current)
                    })
                    .collect();
                let (dispatches, records) = self.notify(&group, visible, now);
                if !dispatches.is_empty() && !queue(dispatches) {
                    self.groups.insert(key, group);
                    continue;
                }
                for (integration, entry) in records {
                    self.log.record(&integration, &group.key, entry);
                }
                for held in group.alerts.values() {
                    if let Some(at) = held.alert.resolved_at {
                        self.settled.insert(held.alert.fingerprint, at);
                    }
                }
                group
                    .alerts
                    .retain(|_, h| h.alert.state != AlertState::Resolved);
            }
            if !group.alerts.is_empty() {
                self.groups.insert(key, group);
            }
        }
        self.settled.retain(|_, at| after(*at, SETTLED_FOR) > now);
    }

    /// Firing alerts nobody refreshed become resolved when they expire.
    fn expire(&mut self, now: DateTime<Utc>) {
        for held in self.groups.values_mut().flat_map(|g| g.alerts.values_mut()) {
            if held.alert.state == AlertState::Firing && held.expires <= now {
                held.alert.state = AlertState::Resolved;
                held.alert.resolved_at = Some(held.expires);
            }
        }
    }

    /// Whether the group's route is muted at `now` by its time intervals.
    fn route_muted(&self, group: &Group, now: DateTime<Utc>) -> bool {
        let inside = |name: &String| {
            self.config
                .time_intervals
                .iter()
                .any(|t| &t.name == name && t.contains(now))
        };
        group.mute_time_intervals.iter().any(inside)
            || (!group.active_time_intervals.is_empty()
                && !group.active_time_intervals.iter().any(inside))
    }

    /// The dispatches a flush of `group` showing `visible` alerts makes, and the log entries
    /// to record once they are durable (also for integrations that only need to forget).
    fn notify(
        &self,
        group: &Group,
        visible: Vec<Alert>,
        now: DateTime<Utc>,
    ) -> (Vec<Dispatch>, Vec<(IntegrationId, LogEntry)>) {
        let mut records = Vec::new();
        let Some(receiver) = self.config.receiver(&group.receiver) else {
            return (Vec::new(), records);
        };
        let of = |state: AlertState| -> BTreeSet<Fingerprint> {
            visible
                .iter()
                .filter(|a| a.state == state)
                .map(|a| a.fingerprint)
                .collect()
        };
        let (firing, resolved) = (of(AlertState::Firing), of(AlertState::Resolved));
        let mut sorted = visible;
        sorted.sort_by(|a, b| {
            (a.state != AlertState::Firing, a.active_at, a.fingerprint).cmp(&(
                b.state != AlertState::Firing,
                b.active_at,
                b.fingerprint,
            ))
        });
        let mut out = Vec::new();
        for integration in receiver.integrations() {
            let last = self.log.get(&integration.id, &group.key);
            let repeat = group.timing.repeat_interval;
            if !needs_update(
                last,
                &firing,
                &resolved,
                integration.send_resolved,
                repeat,
                now,
            ) {
                continue;
            }
            let entry = LogEntry {
                firing: firing.clone(),
                resolved: resolved.clone(),
                at: now,
            };
            records.push((integration.id.clone(), entry.clone()));
            let mut alerts: Vec<Alert> = sorted
                .iter()
                .filter(|a| integration.send_resolved || a.state == AlertState::Firing)
                .cloned()
                .collect();
            if alerts.is_empty() {
                // All resolved and the receiver does not want resolutions: only the log
                // needed to forget the firing alerts.
                continue;
            }
            let mut truncated = 0;
            if integration.max_alerts > 0 && alerts.len() > integration.max_alerts {
                truncated = alerts.len() - integration.max_alerts;
                alerts.truncate(integration.max_alerts);
            }
            out.push(Dispatch {
                integration: integration.id,
                notification: Notification {
                    receiver: group.receiver.clone(),
                    group_key: group.key.clone(),
                    group_labels: group.labels.clone(),
                    alerts,
                    truncated,
                    external_url: self.external_url.clone(),
                },
                entry,
            });
        }
        (out, records)
    }
}

/// A group for `route` created by `first`: flushed after `group_wait`, or at once when the
/// alert has been firing longer than that already (e.g. after a restart).
fn new_group(
    route: &Route,
    key: String,
    labels: Labels,
    first: &Alert,
    now: DateTime<Utc>,
) -> Group {
    let wait = route.timing.group_wait;
    let firing_since = first.fired_at.unwrap_or(first.active_at);
    let next_flush = if after(firing_since, wait) < now {
        now
    } else {
        after(now, wait)
    };
    Group {
        key,
        receiver: route.receiver.clone(),
        timing: route.timing,
        mute_time_intervals: route.mute_time_intervals.clone(),
        active_time_intervals: route.active_time_intervals.clone(),
        labels,
        alerts: BTreeMap::new(),
        next_flush,
    }
}

#[cfg(test)]
mod tests;
