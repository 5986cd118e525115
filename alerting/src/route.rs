//! The routing tree: which receivers an alert goes to, how alerts are grouped into one
//! notification, and when (group_wait, group_interval, repeat_interval, time intervals).
//! Semantics are Alertmanager's: a route matches when all its matchers do; its children are
//! tried in order and the first matching one ends the search unless it has `continue`; an
//! alert no child takes stays with the route itself. Children inherit the receiver, grouping
//! and timings they do not set; time intervals are not inherited.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;
use vigil_store::units::HumanDuration;

use crate::matcher::{Matcher, all_match, valid_label_name};
use vigil_store::alert::Labels;

/// A route as written in the configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The receiver that gets this route's notifications; required at the root, inherited
    /// below.
    #[serde(default)]
    pub receiver: Option<String>,
    /// Labels whose values split alerts into groups; `[...]` groups by every label (each
    /// alert alone). Inherited; the root's default is no label (one group per route).
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// Keep trying later siblings after this route matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// All must hold for an alert to take this route (`severity="page"`, `service=~"pay.*"`).
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// How long a new group waits for more alerts before its first notification (30s).
    #[serde(default)]
    pub group_wait: Option<HumanDuration>,
    /// How long a group waits before notifying about changes to it (5m).
    #[serde(default)]
    pub group_interval: Option<HumanDuration>,
    /// How long before an unchanged, still firing group is notified again (4h).
    #[serde(default)]
    pub repeat_interval: Option<HumanDuration>,
    /// Names of time intervals during which this route sends nothing.
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside which this route sends nothing.
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    /// Child routes, tried in order.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// How alerts are split into groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    /// By these labels' values (none: one group).
    By(BTreeSet<String>),
    /// By every label: each alert is its own group.
    All,
}

impl Grouping {
    /// The labels of `alert` that name its group.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            Grouping::All => labels.clone(),
            Grouping::By(names) => labels
                .iter()
                .filter(|(k, _)| names.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// When a route's groups are notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Before a new group's first notification.
    pub group_wait: Duration,
    /// Between notifications about a changed group.
    pub group_interval: Duration,
    /// Between notifications about an unchanged firing group.
    pub repeat_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
        }
    }
}

/// A route with everything inherited filled in.
#[derive(Debug, Clone)]
pub struct Route {
    /// Alertmanager's route key: the matchers of every route from the root down,
    /// `{}/{severity="page"}`; a sibling index is appended where siblings share matchers.
    pub key: String,
    /// Receiver name.
    pub receiver: String,
    /// How its alerts are grouped.
    pub grouping: Grouping,
    /// Its own matchers.
    pub matchers: Vec<Matcher>,
    /// Whether later siblings are tried after it matched.
    pub continue_matching: bool,
    /// Its timings.
    pub timing: Timing,
    /// Time interval names that mute it.
    pub mute_time_intervals: Vec<String>,
    /// Time interval names outside which it is muted.
    pub active_time_intervals: Vec<String>,
    /// Children, in order.
    pub routes: Vec<Route>,
}

/// Why a routing tree is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct RouteError {
    /// Where in the tree, e.g. `route.routes[1].routes[0]`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl Route {
    /// The root route from its configuration, checking what only the tree can tell.
    pub fn root(config: &RouteConfig) -> Result<Route, RouteError> {
        let err = |reason: &str| RouteError {
            path: "route".into(),
            reason: reason.into(),
        };
        if config.receiver.is_none() {
            return Err(err("the root route needs a receiver"));
        }
        if !config.matchers.is_empty() {
            return Err(err(
                "the root route takes every alert and cannot have matchers",
            ));
        }
        if config.continue_matching {
            return Err(err("the root route cannot have continue"));
        }
        if !config.mute_time_intervals.is_empty() || !config.active_time_intervals.is_empty() {
            return Err(err("the root route cannot have time intervals"));
        }
        let parent = Route {
            key: String::new(),
            receiver: String::new(),
            grouping: Grouping::By(BTreeSet::new()),
            matchers: Vec::new(),
            continue_matching: false,
            timing: Timing::default(),
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            routes: Vec::new(),
        };
        Route::child(config, &parent, "route", None)
    }

    fn child(
        config: &RouteConfig,
        parent: &Route,
        path: &str,
        sibling: Option<usize>,
    ) -> Result<Route, RouteError> {
        let err = |reason: String| RouteError {
            path: path.to_string(),
            reason,
        };
        let grouping = match &config.group_by {
            None => parent.grouping.clone(),
            Some(names) if names.iter().any(|n| n == "...") => {
                if names.len() > 1 {
                    return Err(err("group_by: '...' must be the only label".into()));
                }
                Grouping::All
            }
            Some(names) => {
                if let Some(bad) = names.iter().find(|n| !valid_label_name(n)) {
                    return Err(err(format!("group_by: {bad:?} is not a label name")));
                }
                Grouping::By(names.iter().cloned().collect())
            }
        };
        let pick = |own: Option<HumanDuration>, inherited: Duration| own.map_or(inherited, |d| d.0);
        let timing = Timing {
            group_wait: pick(config.group_wait, parent.timing.group_wait),
            group_interval: pick(config.group_interval, parent.timing.group_interval),
            repeat_interval: pick(config.repeat_interval, parent.timing.repeat_interval),
        };
        if timing.group_interval.is_zero() || timing.repeat_interval.is_zero() {
            return Err(err(
                "group_interval and repeat_interval must be longer than zero".into(),
            ));
        }
        let mut key = parent.key.clone();
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(&matcher_set(&config.matchers));
        if let Some(i) = sibling {
            let _ = write!(key, "/{i}");
        }
        let mut route = Route {
            key,
            receiver: config
                .receiver
                .clone()
                .unwrap_or_else(|| parent.receiver.clone()),
            grouping,
            matchers: config.matchers.clone(),
            continue_matching: config.continue_matching,
            timing,
            mute_time_intervals: config.mute_time_intervals.clone(),
            active_time_intervals: config.active_time_intervals.clone(),
            routes: Vec::with_capacity(config.routes.len()),
        };
        for (i, c) in config.routes.iter().enumerate() {
            let shared = config
                .routes
                .iter()
                .filter(|o| o.matchers == c.matchers)
                .count()
                > 1;
            let child_path = format!("{path}.routes[{i}]");
            let child = Route::child(c, &route, &child_path, shared.then_some(i))?;
            route.routes.push(child);
        }
        Ok(route)
    }

    /// The routes `labels` end at, in order (at least this one if it matches at all).
    pub fn matching(&self, labels: &Labels) -> Vec<&Route> {
        if !all_match(&self.matchers, labels) {
            return Vec::new();
        }
        let mut found = Vec::new();
        for child in &self.routes {
            let taken = child.matching(labels);
            let matched = !taken.is_empty();
            found.extend(taken);
            if matched && !child.continue_matching {
                break;
            }
        }
        if found.is_empty() {
            found.push(self);
        }
        found
    }

    /// Every route of the tree, this one first (for checking names it refers to).
    pub fn walk(&self) -> Vec<&Route> {
        let mut all = vec![self];
        for child in &self.routes {
            all.extend(child.walk());
        }
        all
    }

    /// The group key of an alert with `labels` on this route: `<route key>:<group labels>`.
    pub fn group_key(&self, group_labels: &Labels) -> String {
        format!("{}:{}", self.key, label_set(group_labels))
    }
}

/// `{a="1",b=~"x"}`.
fn matcher_set(matchers: &[Matcher]) -> String {
    let inner: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    format!("{{{}}}", inner.join(","))
}

/// `{a="1",b="2"}`.
pub fn label_set(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::labels;

    fn tree(yaml: &str) -> Route {
        let config: RouteConfig = serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        Route::root(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    const TREE: &str = r#"
receiver: default
group_by: [alertname]
routes:
  - matchers: ['severity="page"']
    receiver: pager
    group_wait: 10s
    continue: true
  - matchers: ['service=~"payment|order"']
    receiver: shop
    group_by: [alertname, service]
    routes:
      - matchers: ['env="dev"']
        receiver: dev-null
  - matchers: ['service="payment"']
    receiver: never-reached
"#;

    #[test]
    fn first_match_wins_unless_continue_and_children_inherit() {
        let root = tree(TREE);
        let names = |l: &Labels| -> Vec<String> {
            root.matching(l)
                .iter()
                .map(|r| r.receiver.clone())
                .collect()
        };
        assert_eq!(
            names(&labels(&[("severity", "page"), ("service", "payment")])),
            ["pager", "shop"]
        );
        assert_eq!(names(&labels(&[("service", "payment")])), ["shop"]);
        assert_eq!(
            names(&labels(&[("service", "order"), ("env", "dev")])),
            ["dev-null"]
        );
        assert_eq!(names(&labels(&[("service", "shipping")])), ["default"]);
        let dev = &root.routes[1].routes[0];
        assert_eq!(
            dev.grouping,
            Grouping::By(["alertname".to_string(), "service".to_string()].into())
        );
        assert_eq!(root.routes[0].timing.group_wait, Duration::from_secs(10));
        assert_eq!(
            root.routes[0].timing.repeat_interval,
            Duration::from_secs(14_400)
        );
        assert_eq!(dev.timing.group_wait, Duration::from_secs(30));
    }

    #[test]
    fn keys_follow_alertmanager() {
        let root = tree(TREE);
        assert_eq!(root.key, "{}");
        assert_eq!(
            root.routes[1].routes[0].key,
            "{}/{service=~\"payment|order\"}/{env=\"dev\"}"
        );
        let l = labels(&[("alertname", "Slow"), ("service", "payment")]);
        let shop = &root.routes[1];
        assert_eq!(
            shop.group_key(&shop.grouping.group_labels(&l)),
            "{}/{service=~\"payment|order\"}:{alertname=\"Slow\",service=\"payment\"}"
        );
        assert_eq!(Grouping::All.group_labels(&l), l);
    }

    #[test]
    fn invalid_trees_name_the_route_at_fault() {
        for (yaml, want) in [
            ("group_by: [x]", "route: the root route needs a receiver"),
            (
                "receiver: a\nmatchers: ['a=b']",
                "route: the root route takes every alert",
            ),
            (
                "receiver: a\nroutes: [{routes: [{group_by: ['...', 'x']}]}]",
                "route.routes[0].routes[0]: group_by: '...' must be the only label",
            ),
            (
                "receiver: a\nroutes: [{repeat_interval: 0}]",
                "route.routes[0]: group_interval and repeat_interval",
            ),
        ] {
            let config: RouteConfig = serde_yaml_ng::from_str(yaml).unwrap();
            let e = Route::root(&config).unwrap_err().to_string();
            assert!(e.starts_with(want), "{yaml}: {e}");
        }
    }
}
