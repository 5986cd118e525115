//! What the rules API and `/metrics` show: a snapshot of every group, rule, SLO and alert,
//! published by the engine after each evaluation and each reload.

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil_store::alert::{Alert, AlertState};
use vigil_store::exposition::{Exposition, Single};

use super::slo::SloStatus;

/// Whether the last evaluation worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Evaluated without error.
    Ok,
    /// The last evaluation failed; see `last_error`.
    Err,
}

/// One alerting rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleStatus {
    /// `alert` name.
    pub name: String,
    /// `sli` or `sql`.
    pub kind: &'static str,
    /// The measure (`latency_p95`…) or the SQL query.
    pub query: String,
    /// Threshold as written in canonical units, with the comparison.
    pub condition: String,
    /// Health of the last evaluation.
    pub health: Health,
    /// Why the last evaluation failed.
    pub last_error: Option<String>,
    /// When it was last evaluated.
    pub last_evaluation: Option<DateTime<Utc>>,
    /// How long that took, in seconds.
    pub evaluation_seconds: f64,
    /// Series the last evaluation measured.
    pub series: usize,
    /// Its current alerts.
    pub alerts: Vec<Alert>,
}

/// One SLO.
#[derive(Debug, Clone, Serialize)]
pub struct SloEntry {
    /// SLO name.
    pub name: String,
    /// Health of the last evaluation.
    pub health: Health,
    /// Why the last evaluation failed.
    pub last_error: Option<String>,
    /// The last reading.
    pub status: Option<SloStatus>,
    /// Its burn-rate alerts.
    pub alerts: Vec<Alert>,
}

/// One group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    /// Group name.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// Evaluation interval in seconds.
    pub interval_seconds: f64,
    /// When it was last evaluated.
    pub last_evaluation: Option<DateTime<Utc>>,
    /// How long the last evaluation took, in seconds.
    pub evaluation_seconds: f64,
    /// Evaluations so far.
    pub evaluations: u64,
    /// Rule or SLO evaluations that failed so far.
    pub failures: u64,
    /// Evaluations started late because the previous ones overran.
    pub missed: u64,
    /// Its rules.
    pub rules: Vec<RuleStatus>,
    /// Its SLOs.
    pub slos: Vec<SloEntry>,
}

impl GroupStatus {
    /// The group's current alerts (rules and SLOs).
    pub fn alerts(&self) -> Vec<Alert> {
        self.rules
            .iter()
            .flat_map(|r| &r.alerts)
            .chain(self.slos.iter().flat_map(|s| &s.alerts))
            .cloned()
            .collect()
    }
}

/// The outcome of reading the rule files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// Files read.
    pub files: Vec<String>,
    /// When the rules in force were loaded.
    pub last_success: Option<DateTime<Utc>>,
    /// Why the last attempt failed, if it did (the previous rules stay in force).
    pub last_error: Option<String>,
    /// Successful loads.
    pub successes: u64,
    /// Failed loads.
    pub failures: u64,
}

/// Everything the engine reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Every group.
    pub groups: Vec<GroupStatus>,
    /// Rule file loading.
    pub reload: ReloadStatus,
    /// Alert history rows that could not be written.
    pub history_failures: u64,
}

impl Status {
    /// Every current alert (rules and SLOs).
    pub fn alerts(&self) -> Vec<Alert> {
        self.groups.iter().flat_map(GroupStatus::alerts).collect()
    }

    /// Every SLO's last reading.
    pub fn slos(&self) -> Vec<SloStatus> {
        self.groups
            .iter()
            .flat_map(|g| g.slos.iter().filter_map(|s| s.status.clone()))
            .collect()
    }

    /// Writes the rule engine's self-metrics to `page`.
    pub fn render(&self, page: &mut Exposition) {
        type PerGroup = (&'static str, fn(&GroupStatus) -> f64);
        let per_group: [(Single, &str, PerGroup); 4] = [
            (
                Single::Counter,
                "Rule group evaluations.",
                ("vigil_rule_group_evaluations_total", |g| {
                    g.evaluations as f64
                }),
            ),
            (
                Single::Counter,
                "Rule and SLO evaluations that failed.",
                ("vigil_rule_evaluation_failures_total", |g| {
                    g.failures as f64
                }),
            ),
            (
                Single::Counter,
                "Group evaluations started late because earlier ones overran.",
                ("vigil_rule_group_missed_iterations_total", |g| {
                    g.missed as f64
                }),
            ),
            (
                Single::Gauge,
                "How long the group's last evaluation took.",
                ("vigil_rule_group_last_duration_seconds", |g| {
                    g.evaluation_seconds
                }),
            ),
        ];
        for (kind, help, (name, get)) in per_group {
            let mut family = page.scalar(kind, name, help);
            for g in &self.groups {
                family.sample(&[("rule_group", &g.name)], get(g));
            }
        }
        page.counter(
            "vigil_rule_config_reloads_total",
            "Rule file loads by result.",
        )
        .sample(&[("result", "success")], self.reload.successes as f64)
        .sample(&[("result", "failure")], self.reload.failures as f64);
        page.single(
            Single::Gauge,
            "vigil_rule_config_last_reload_successful",
            "1 if the last rule file load succeeded.",
            f64::from(u8::from(self.reload.last_error.is_none())),
        );
        page.single(
            Single::Counter,
            "vigil_alert_history_write_failures_total",
            "Alert state changes that could not be written to the alerts table.",
            self.history_failures as f64,
        );
        let alerts = self.alerts();
        let mut family = page.gauge("vigil_alerts", "Current alerts by state.");
        for s in [
            AlertState::Pending,
            AlertState::Firing,
            AlertState::Resolved,
        ] {
            let n = alerts.iter().filter(|a| a.state == s).count();
            family.sample(&[("state", s.as_str())], n as f64);
        }
    }
}
