//! The notification configuration: the routing tree, receivers, inhibition rules and time
//! intervals, in Alertmanager's YAML shape so an existing `alertmanager.yml` route tree reads
//! the same here. Parsing checks everything that can be checked before an alert arrives and
//! names the place of the first mistake.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use crate::inhibit::InhibitRule;
use crate::nflog::IntegrationId;
use crate::payload::Severity;
use crate::route::{Grouping, Route, RouteConfig, Timing};
use crate::time_interval::NamedTimeInterval;

/// A value that must never be logged (URLs with tokens, routing keys): its `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

fn yes() -> bool {
    true
}

/// A generic webhook receiving Alertmanager's version 4 payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: Secret,
    /// Also notify when a group resolves (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// At most this many alerts per payload, the rest counted in `truncatedAlerts` (0: all).
    #[serde(default)]
    pub max_alerts: usize,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// Signs each body: `X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
}

/// A Slack incoming webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook's URL (`https://hooks.slack.com/services/...`).
    pub api_url: Secret,
    /// Overrides the webhook's channel where the workspace allows it.
    #[serde(default)]
    pub channel: Option<String>,
    /// Overrides the poster's name.
    #[serde(default)]
    pub username: Option<String>,
    /// Overrides the poster's icon, e.g. `:rotating_light:`.
    #[serde(default)]
    pub icon_emoji: Option<String>,
    /// Also post when a group resolves (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

/// PagerDuty through the Events API v2.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// The service integration's routing key.
    pub routing_key: Secret,
    /// The Events API endpoint.
    #[serde(default = "pagerduty_url")]
    pub url: Secret,
    /// `critical`, `error`, `warning` or `info`; by default from the `severity` label.
    #[serde(default)]
    pub severity: Option<String>,
    /// Also resolve the incident when the group resolves (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn pagerduty_url() -> Secret {
    Secret("https://events.pagerduty.com/v2/enqueue".into())
}

/// Another Alertmanager, whose `/api/v2/alerts` receives the alerts as they are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Its base URL, e.g. `http://127.0.0.1:9093`.
    pub url: Secret,
    /// Also forward resolved alerts with their end time (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

/// A named receiver: every integration listed gets each of its notifications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Referenced by routes.
    pub name: String,
    /// Generic webhooks.
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    /// Slack incoming webhooks.
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
    /// PagerDuty services.
    #[serde(default)]
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    /// Alertmanagers to forward to.
    #[serde(default)]
    pub alertmanager_configs: Vec<AlertmanagerConfig>,
    /// Notifications in flight at once per integration (default 4). One group's
    /// notifications always go one at a time, in order.
    #[serde(default = "four")]
    pub max_concurrency: usize,
    /// Most notifications sent per second per integration (default: no limit).
    #[serde(default)]
    pub rate_limit: Option<f64>,
}

fn four() -> usize {
    4
}

/// One integration of a receiver as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    /// `receiver/kind/index`.
    pub id: IntegrationId,
    /// Whether resolutions are sent.
    pub send_resolved: bool,
    /// At most this many alerts per notification (0: all).
    pub max_alerts: usize,
    /// The receiver's `max_concurrency`.
    pub max_concurrency: usize,
    /// The receiver's `rate_limit`.
    pub rate_limit: Option<f64>,
}

impl ReceiverConfig {
    /// Every integration, in a fixed order: webhooks, Slack, PagerDuty, Alertmanagers.
    pub fn integrations(&self) -> Vec<Integration> {
        let mut all = Vec::new();
        let mut add = |kind: &str, settings: Vec<(bool, usize)>| {
            for (index, (send_resolved, max_alerts)) in settings.into_iter().enumerate() {
                all.push(Integration {
                    id: IntegrationId {
                        receiver: self.name.clone(),
                        kind: kind.to_string(),
                        index,
                    },
                    send_resolved,
                    max_alerts,
                    max_concurrency: self.max_concurrency.max(1),
                    rate_limit: self.rate_limit.filter(|r| *r > 0.0),
                });
            }
        };
        add(
            "webhook",
            self.webhook_configs
                .iter()
                .map(|c| (c.send_resolved, c.max_alerts))
                .collect(),
        );
        add(
            "slack",
            self.slack_configs
                .iter()
                .map(|c| (c.send_resolved, 0))
                .collect(),
        );
        add(
            "pagerduty",
            self.pagerduty_configs
                .iter()
                .map(|c| (c.send_resolved, 0))
                .collect(),
        );
        add(
            "alertmanager",
            self.alertmanager_configs
                .iter()
                .map(|c| (c.send_resolved, 0))
                .collect(),
        );
        all
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    route: RouteConfig,
    receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    inhibit_rules: Vec<InhibitRule>,
    #[serde(default)]
    time_intervals: Vec<NamedTimeInterval>,
}

/// A checked notification configuration.
#[derive(Debug, Clone)]
pub struct AlertingConfig {
    /// The routing tree with inherited settings filled in.
    pub route: Route,
    /// Receivers by name (names are unique).
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibition rules.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Named time intervals (names are unique).
    pub time_intervals: Vec<NamedTimeInterval>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not valid YAML, or a field is unknown, missing or of the wrong type.
    #[error("{file}: {source}")]
    Syntax {
        /// The file's name.
        file: String,
        /// With line and column.
        source: serde_yaml_ng::Error,
    },
    /// Well-formed but inconsistent.
    #[error("{file}: {path}: {reason}")]
    Invalid {
        /// The file's name.
        file: String,
        /// Where, e.g. `route.routes[2]` or `receivers[1]`.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl AlertingConfig {
    /// Parses and checks `text` (already `${ENV}`-expanded); `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<AlertingConfig, ConfigError> {
        let raw: RawConfig =
            serde_yaml_ng::from_str(text).map_err(|source| ConfigError::Syntax {
                file: file.to_string(),
                source,
            })?;
        let invalid = |path: String, reason: String| ConfigError::Invalid {
            file: file.to_string(),
            path,
            reason,
        };
        let route = Route::root(&raw.route).map_err(|e| invalid(e.path, e.reason))?;
        let mut names = HashSet::new();
        for (i, r) in raw.receivers.iter().enumerate() {
            if !names.insert(r.name.as_str()) {
                return Err(invalid(
                    format!("receivers[{i}]"),
                    format!("receiver {:?} is defined twice", r.name),
                ));
            }
        }
        let mut intervals = HashSet::new();
        for (i, t) in raw.time_intervals.iter().enumerate() {
            if !intervals.insert(t.name.as_str()) {
                return Err(invalid(
                    format!("time_intervals[{i}]"),
                    format!("time interval {:?} is defined twice", t.name),
                ));
            }
        }
        for r in route.walk() {
            let at = || format!("route {}", r.key);
            if !names.contains(r.receiver.as_str()) {
                return Err(invalid(
                    at(),
                    format!("receiver {:?} is not defined", r.receiver),
                ));
            }
            let referenced = r.mute_time_intervals.iter().chain(&r.active_time_intervals);
            if let Some(missing) = referenced
                .into_iter()
                .find(|n| !intervals.contains(n.as_str()))
            {
                return Err(invalid(
                    at(),
                    format!("time interval {missing:?} is not defined"),
                ));
            }
        }
        for (i, r) in raw.receivers.iter().enumerate() {
            for (j, c) in r.pagerduty_configs.iter().enumerate() {
                if let Some(s) = c.severity.as_deref()
                    && Severity::from_label(s).is_none()
                {
                    return Err(invalid(
                        format!("receivers[{i}].pagerduty_configs[{j}]"),
                        format!("severity {s:?} is not critical, error, warning or info"),
                    ));
                }
            }
        }
        for (i, rule) in raw.inhibit_rules.iter().enumerate() {
            rule.validate()
                .map_err(|reason| invalid(format!("inhibit_rules[{i}]"), reason))?;
        }
        Ok(AlertingConfig {
            route,
            receivers: raw.receivers,
            inhibit_rules: raw.inhibit_rules,
            time_intervals: raw.time_intervals,
        })
    }

    /// Routing with one receiver and no integrations: alerts are grouped and can be
    /// silenced, and nobody is notified.
    pub fn empty() -> AlertingConfig {
        AlertingConfig {
            route: Route {
                key: "{}".into(),
                receiver: "default".into(),
                grouping: Grouping::By(Default::default()),
                matchers: Vec::new(),
                continue_matching: false,
                timing: Timing::default(),
                mute_time_intervals: Vec::new(),
                active_time_intervals: Vec::new(),
                routes: Vec::new(),
            },
            receivers: vec![ReceiverConfig {
                name: "default".into(),
                webhook_configs: Vec::new(),
                slack_configs: Vec::new(),
                pagerduty_configs: Vec::new(),
                alertmanager_configs: Vec::new(),
                max_concurrency: four(),
                rate_limit: None,
            }],
            inhibit_rules: Vec::new(),
            time_intervals: Vec::new(),
        }
    }

    /// The receiver called `name`.
    pub fn receiver(&self, name: &str) -> Option<&ReceiverConfig> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
route:
  receiver: team
  group_by: [alertname, service]
  routes:
    - matchers: ['severity="page"']
      receiver: oncall
      mute_time_intervals: [maintenance]
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9000/hook
        hmac_secret: s3cr3t
    slack_configs:
      - api_url: https://hooks.slack.com/services/T000/B000/XXXX
  - name: oncall
    pagerduty_configs:
      - routing_key: abcdef0123456789abcdef0123456789
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="warning"']
    equal: [service]
time_intervals:
  - name: maintenance
    time_intervals:
      - weekdays: [sunday]
        times: [{start_time: '02:00', end_time: '04:00'}]
"#;

    fn error(text: &str) -> String {
        AlertingConfig::parse("alerting.yml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_complete_configuration_parses_and_hides_its_secrets() {
        let c = AlertingConfig::parse("alerting.yml", GOOD).unwrap();
        assert_eq!(c.route.routes[0].receiver, "oncall");
        let team = c.receiver("team").unwrap();
        assert!(team.webhook_configs[0].send_resolved);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("XXXX") && !shown.contains("abcdef"));
        assert_eq!(
            c.receiver("oncall").unwrap().pagerduty_configs[0]
                .url
                .expose(),
            "https://events.pagerduty.com/v2/enqueue"
        );
    }

    #[test]
    fn mistakes_are_reported_with_their_place() {
        let e = error(&GOOD.replace("receiver: oncall", "receiver: nobody"));
        assert!(
            e.contains("route {}/{severity=\"page\"}: receiver \"nobody\" is not defined"),
            "{e}"
        );
        let e = error(&GOOD.replace("[maintenance]", "[holidays]"));
        assert!(
            e.contains("time interval \"holidays\" is not defined"),
            "{e}"
        );
        let e = error(&GOOD.replace("- name: oncall", "- name: team"));
        assert!(
            e.contains("receivers[1]: receiver \"team\" is defined twice"),
            "{e}"
        );
        let e = error(&GOOD.replace("hmac_secret", "hmac_key"));
        assert!(
            e.contains("unknown field `hmac_key`") && e.contains("line"),
            "{e}"
        );
        let e = error(&GOOD.replace(
            "['severity=\"page\"']\n      receiver",
            "['severity=~\"(\"']\n      receiver",
        ));
        assert!(
            e.starts_with("alerting.yml: ") && e.contains("unclosed group"),
            "{e}"
        );
        let e = error(&GOOD.replace("equal: [service]", "equal: ['not-a-label']"));
        assert!(e.contains("inhibit_rules[0]: equal"), "{e}");
    }
}
