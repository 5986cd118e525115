//! The life of a rule's alerts: a breaching series becomes pending, fires once it has breached
//! for `for`, keeps firing for `keep_firing_for` after the breach ends, then resolves. Resolved
//! alerts stay visible for a while; a pending alert that stops breaching is dropped.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vigil_store::alert::{Alert, AlertState, Fingerprint, Labels};

/// How long a resolved alert stays in the current state (the history keeps it for good).
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// A series that breached at this evaluation.
#[derive(Debug, Clone)]
pub struct Breach {
    /// Full alert labels.
    pub labels: Labels,
    /// Rendered annotations.
    pub annotations: Labels,
    /// The measured value.
    pub value: f64,
}

/// A rule's timing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// How long a breach must last before firing.
    pub for_: Duration,
    /// How long to keep firing after the breach ends.
    pub keep_firing_for: Duration,
}

#[derive(Debug, Clone)]
struct Tracked {
    alert: Alert,
    last_breach: DateTime<Utc>,
}

/// The alerts of one rule.
#[derive(Debug, Default)]
pub struct RuleAlerts {
    tracked: HashMap<Fingerprint, Tracked>,
}

fn resolve(alert: &mut Alert, now: DateTime<Utc>) {
    alert.state = AlertState::Resolved;
    alert.resolved_at = Some(now);
}

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or(Duration::ZERO)
}

impl RuleAlerts {
    /// Applies one evaluation at `now` and returns the alerts whose state changed, each in
    /// its new state.
    pub fn update(
        &mut self,
        now: DateTime<Utc>,
        breaches: Vec<Breach>,
        timing: Timing,
        generator: &str,
    ) -> Vec<Alert> {
        let mut changes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for b in breaches {
            let fingerprint = Fingerprint::of(&b.labels);
            seen.insert(fingerprint);
            match self.tracked.get_mut(&fingerprint) {
                Some(t) if t.alert.state != AlertState::Resolved => {
                    t.last_breach = now;
                    t.alert.value = Some(b.value);
                    t.alert.annotations = b.annotations;
                    if t.alert.state == AlertState::Pending
                        && elapsed(t.alert.active_at, now) >= timing.for_
                    {
                        t.alert.state = AlertState::Firing;
                        t.alert.fired_at = Some(now);
                        changes.push(t.alert.clone());
                    }
                }
                _ => {
                    let firing = timing.for_.is_zero();
                    let alert = Alert {
                        fingerprint,
                        labels: b.labels,
                        annotations: b.annotations,
                        state: if firing {
                            AlertState::Firing
                        } else {
                            AlertState::Pending
                        },
                        active_at: now,
                        fired_at: firing.then_some(now),
                        resolved_at: None,
                        value: Some(b.value),
                        generator: generator.to_string(),
                    };
                    changes.push(alert.clone());
                    self.tracked.insert(
                        fingerprint,
                        Tracked {
                            alert,
                            last_breach: now,
                        },
                    );
                }
            }
        }
        self.tracked.retain(|fingerprint, t| {
            if seen.contains(fingerprint) {
                return true;
            }
            match t.alert.state {
                AlertState::Firing if elapsed(t.last_breach, now) < timing.keep_firing_for => true,
                // A pending alert that clears is dropped; a firing one stays visible resolved.
                AlertState::Pending | AlertState::Firing => {
                    let keep = t.alert.state == AlertState::Firing;
                    resolve(&mut t.alert, now);
                    changes.push(t.alert.clone());
                    keep
                }
                AlertState::Resolved => t
                    .alert
                    .resolved_at
                    .is_some_and(|r| elapsed(r, now) < RESOLVED_RETENTION),
            }
        });
        changes
    }

    /// Current alerts (pending, firing and recently resolved), ordered by labels.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.tracked.values().map(|t| t.alert.clone()).collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Forgets every alert, returning the unresolved ones resolved at `now` (for a rule that
    /// was removed).
    pub fn resolve_all(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        self.tracked
            .drain()
            .filter(|(_, t)| t.alert.state != AlertState::Resolved)
            .map(|(_, mut t)| {
                resolve(&mut t.alert, now);
                t.alert
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn breach(value: f64) -> Breach {
        Breach {
            labels: [("alertname".to_string(), "Slow".to_string())].into(),
            annotations: Labels::new(),
            value,
        }
    }

    fn states(changes: &[Alert]) -> Vec<AlertState> {
        changes.iter().map(|a| a.state).collect()
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let timing = Timing {
            for_: Duration::from_secs(30),
            keep_firing_for: Duration::ZERO,
        };
        let mut r = RuleAlerts::default();
        // Interval 15 s: breaches at 0, 15, 30; clear at 45.
        assert_eq!(
            states(&r.update(at(0), vec![breach(1.0)], timing, "g")),
            [AlertState::Pending]
        );
        assert!(r.update(at(15), vec![breach(2.0)], timing, "g").is_empty());
        let fired = r.update(at(30), vec![breach(3.0)], timing, "g");
        assert_eq!(states(&fired), [AlertState::Firing]);
        assert_eq!(fired[0].active_at, at(0));
        assert_eq!(fired[0].fired_at, Some(at(30)));
        assert_eq!(fired[0].value, Some(3.0));
        let resolved = r.update(at(45), vec![], timing, "g");
        assert_eq!(states(&resolved), [AlertState::Resolved]);
        assert_eq!(resolved[0].resolved_at, Some(at(45)));
        // Still listed as resolved, then forgotten after the retention.
        assert_eq!(r.alerts().len(), 1);
        assert!(r.update(at(45 + 15 * 60), vec![], timing, "g").is_empty());
        assert!(r.alerts().is_empty());
    }

    #[test]
    fn a_pending_alert_that_clears_never_fires() {
        let timing = Timing {
            for_: Duration::from_secs(60),
            keep_firing_for: Duration::ZERO,
        };
        let mut r = RuleAlerts::default();
        r.update(at(0), vec![breach(1.0)], timing, "g");
        let changes = r.update(at(30), vec![], timing, "g");
        assert_eq!(states(&changes), [AlertState::Resolved]);
        assert_eq!(changes[0].fired_at, None);
        assert!(r.alerts().is_empty());
        // A new breach starts over.
        r.update(at(40), vec![breach(1.0)], timing, "g");
        assert!(r.update(at(90), vec![breach(1.0)], timing, "g").is_empty());
        assert_eq!(
            states(&r.update(at(100), vec![breach(1.0)], timing, "g")),
            [AlertState::Firing]
        );
    }

    #[test]
    fn keep_firing_for_holds_the_alert_after_the_breach() {
        let timing = Timing {
            for_: Duration::ZERO,
            keep_firing_for: Duration::from_secs(60),
        };
        let mut r = RuleAlerts::default();
        assert_eq!(
            states(&r.update(at(0), vec![breach(1.0)], timing, "g")),
            [AlertState::Firing]
        );
        assert!(r.update(at(30), vec![], timing, "g").is_empty());
        assert!(r.update(at(59), vec![], timing, "g").is_empty());
        assert_eq!(
            states(&r.update(at(60), vec![], timing, "g")),
            [AlertState::Resolved]
        );
        // Breaching again after resolving opens a new alert.
        let again = r.update(at(75), vec![breach(1.0)], timing, "g");
        assert_eq!(states(&again), [AlertState::Firing]);
        assert_eq!(again[0].active_at, at(75));
    }
}
