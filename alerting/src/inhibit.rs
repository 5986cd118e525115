//! Inhibition: while a source alert fires, target alerts that share its `equal` labels send
//! no notifications ("the whole service is down" silences "its endpoint is slow").
//! Alertmanager's semantics: a label missing on both sides counts as equal, and an alert
//! that matches both sides is never inhibited by another alert that also matches both.

use serde::Deserialize;

use crate::matcher::{Matcher, all_match, valid_label_name};
use vigil_store::alert::{Alert, AlertState};

/// One inhibition rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// What a firing alert must match to inhibit.
    pub source_matchers: Vec<Matcher>,
    /// What an alert must match to be inhibited.
    pub target_matchers: Vec<Matcher>,
    /// Labels that must have the same value on source and target.
    #[serde(default)]
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Checks the `equal` label names.
    pub fn validate(&self) -> Result<(), String> {
        match self.equal.iter().find(|n| !valid_label_name(n)) {
            Some(bad) => Err(format!("equal: {bad:?} is not a label name")),
            None => Ok(()),
        }
    }

    /// Whether `target` is inhibited by one of `alerts` (only firing ones count).
    pub fn inhibits(&self, target: &Alert, alerts: &[Alert]) -> bool {
        if !all_match(&self.target_matchers, &target.labels) {
            return false;
        }
        let two_sided = all_match(&self.source_matchers, &target.labels);
        alerts.iter().any(|source| {
            source.state == AlertState::Firing
                && source.fingerprint != target.fingerprint
                && all_match(&self.source_matchers, &source.labels)
                && !(two_sided && all_match(&self.target_matchers, &source.labels))
                && self
                    .equal
                    .iter()
                    .all(|l| source.labels.get(l) == target.labels.get(l))
        })
    }
}

/// Whether any rule inhibits `target` given the current `alerts`.
pub fn inhibited(rules: &[InhibitRule], target: &Alert, alerts: &[Alert]) -> bool {
    rules.iter().any(|r| r.inhibits(target, alerts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::alert;

    fn rule(yaml: &str) -> InhibitRule {
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_firing_source_inhibits_targets_with_equal_labels() {
        let r = rule(
            "source_matchers: ['severity=\"page\"']\ntarget_matchers: ['severity=\"warning\"']\nequal: [service]\n",
        );
        let down = alert(
            &[
                ("alertname", "Down"),
                ("severity", "page"),
                ("service", "payment"),
            ],
            AlertState::Firing,
        );
        let slow = alert(
            &[
                ("alertname", "Slow"),
                ("severity", "warning"),
                ("service", "payment"),
            ],
            AlertState::Firing,
        );
        let other = alert(
            &[
                ("alertname", "Slow"),
                ("severity", "warning"),
                ("service", "order"),
            ],
            AlertState::Firing,
        );
        let alerts = vec![down.clone(), slow.clone(), other.clone()];
        assert!(r.inhibits(&slow, &alerts));
        assert!(!r.inhibits(&other, &alerts));
        assert!(!r.inhibits(&down, &alerts));
        // A pending or resolved source inhibits nothing.
        let mut resting = down.clone();
        resting.state = AlertState::Pending;
        assert!(!r.inhibits(&slow, &[resting, slow.clone()]));
    }

    #[test]
    fn labels_missing_on_both_sides_are_equal_and_two_sided_alerts_do_not_inhibit_each_other() {
        let r = rule(
            "source_matchers: ['team=\"db\"']\ntarget_matchers: ['team=\"db\"']\nequal: [cluster]\n",
        );
        let a = alert(&[("alertname", "A"), ("team", "db")], AlertState::Firing);
        let b = alert(&[("alertname", "B"), ("team", "db")], AlertState::Firing);
        assert!(!r.inhibits(&a, &[a.clone(), b.clone()]));
        let r = rule(
            "source_matchers: ['alertname=\"A\"']\ntarget_matchers: ['team=\"db\"']\nequal: [cluster]\n",
        );
        assert!(r.inhibits(&b, &[a.clone(), b.clone()]));
        assert!(r.validate().is_ok());
        assert!(
            rule("source_matchers: []\ntarget_matchers: []\nequal: ['a-b']\n")
                .validate()
                .is_err()
        );
    }
}
