//! The dispatcher on a fake clock: grouping, intervals, resolutions, silences, inhibition,
//! time intervals, expiry and a restart with the notification log.

use super::*;

const CONFIG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['team="night"']
      receiver: night
      mute_time_intervals: [day]
receivers:
  - name: team
    webhook_configs: [{url: 'http://127.0.0.1:1/hook'}]
  - name: night
    webhook_configs: [{url: 'http://127.0.0.1:1/night', send_resolved: false, max_alerts: 1}]
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="warning"']
    equal: [service]
time_intervals:
  - name: day
    time_intervals: [{times: [{start_time: '06:00', end_time: '18:00'}]}]
"#;

/// 20:00 UTC, outside the `day` interval.
fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_273_600 + secs, 0).unwrap_or_default()
}

fn dispatcher() -> Dispatcher {
    let config = AlertingConfig::parse("test.yml", CONFIG).unwrap_or_else(|e| panic!("{e}"));
    Dispatcher::new(
        Arc::new(config),
        NotificationLog::default(),
        "http://127.0.0.1:8080".into(),
    )
}

fn alert(pairs: &[(&str, &str)], fired: i64) -> Alert {
    Alert {
        active_at: t(fired - 60),
        fired_at: Some(t(fired)),
        ..crate::testing::alert(pairs, AlertState::Firing)
    }
}

fn resolved(mut a: Alert, at: i64) -> Alert {
    a.state = AlertState::Resolved;
    a.resolved_at = Some(t(at));
    a
}

fn never(_: &Labels) -> bool {
    false
}

/// Feeds `alerts` at `at` (valid for 10 minutes) and flushes.
fn step(d: &mut Dispatcher, alerts: &[Alert], at: i64) -> Vec<Dispatch> {
    for a in alerts {
        d.insert(a, t(at + 600), t(at));
    }
    flush(d, t(at), &never)
}

/// Flushes what is due, every dispatch made durable.
fn flush(
    d: &mut Dispatcher,
    now: DateTime<Utc>,
    silenced: &dyn Fn(&Labels) -> bool,
) -> Vec<Dispatch> {
    let mut out = Vec::new();
    d.flush_due(now, silenced, &mut |batch| {
        out.extend(batch);
        true
    });
    out
}

#[test]
fn a_flush_that_could_not_be_made_durable_changes_nothing_and_is_made_again() {
    let mut d = dispatcher();
    let a = alert(&[("alertname", "Down")], 0);
    d.insert(&a, t(600), t(0));
    assert_eq!(step(&mut d, &[], 30).len(), 1);
    // The resolution's flush fails to be queued (disk full): nothing is recorded or dropped.
    d.insert(&resolved(a, 60), t(600), t(60));
    let mut refused = 0;
    d.flush_due(t(330), &never, &mut |batch| {
        refused += batch.len();
        false
    });
    assert_eq!(refused, 1);
    // The next flush makes the same resolution again.
    let out = flush(&mut d, t(630), &never);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0]
            .notification
            .alerts
            .iter()
            .all(|a| a.state == AlertState::Resolved)
    );
    assert!(flush(&mut d, t(930), &never).is_empty());
}

fn services(n: &Notification) -> Vec<(&str, AlertState)> {
    n.alerts
        .iter()
        .map(|a| (a.labels["service"].as_str(), a.state))
        .collect()
}

fn slow(service: &str, fired: i64) -> Alert {
    alert(&[("alertname", "Slow"), ("service", service)], fired)
}

#[test]
fn alerts_with_the_same_group_labels_make_one_notification_after_group_wait() {
    let mut d = dispatcher();
    let (a, b, c) = (slow("payment", 0), slow("order", 1), slow("shipping", 2));
    assert!(step(&mut d, std::slice::from_ref(&a), 0).is_empty());
    assert!(step(&mut d, &[a.clone(), b.clone()], 1).is_empty());
    assert!(step(&mut d, &[a.clone(), b.clone(), c.clone()], 2).is_empty());
    assert_eq!(d.next_flush(), Some(t(30)));
    assert!(flush(&mut d, t(29), &never).is_empty());
    let out = flush(&mut d, t(30), &never);
    assert_eq!(out.len(), 1);
    let n = &out[0].notification;
    assert_eq!(out[0].integration.to_string(), "team/webhook/0");
    assert_eq!(n.group_key, "{}:{alertname=\"Slow\"}");
    assert_eq!(n.alerts.len(), 3);
    assert_eq!(n.alerts[0].labels["service"], "payment");
    // Nothing new at the next interval; a new alert waits for it.
    let d4 = slow("inventory", 40);
    assert!(step(&mut d, std::slice::from_ref(&d4), 40).is_empty());
    assert!(flush(&mut d, t(329), &never).is_empty());
    let out = flush(&mut d, t(330), &never);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].notification.alerts.len(), 4);
}

#[test]
fn an_unchanged_group_repeats_after_repeat_interval_and_resolutions_are_sent_once() {
    let mut d = dispatcher();
    let (a, b) = (slow("payment", 0), slow("order", 0));
    step(&mut d, &[a.clone(), b.clone()], 0);
    assert_eq!(flush(&mut d, t(30), &never).len(), 1);
    let mut sent = 0;
    for k in 1..=12 {
        sent += step(&mut d, &[a.clone(), b.clone()], 30 + 300 * k).len();
    }
    // 3,630 s: one repeat after an hour.
    assert_eq!(sent, 1);
    let gone = resolved(b.clone(), 3700);
    let out = step(&mut d, &[a.clone(), gone.clone()], 3930);
    assert_eq!(out.len(), 1);
    assert_eq!(
        services(&out[0].notification),
        [
            ("payment", AlertState::Firing),
            ("order", AlertState::Resolved)
        ]
    );
    // The rule engine keeps reporting the resolution for a while: not news again.
    assert!(step(&mut d, &[a.clone(), gone.clone()], 4230).is_empty());
    let out = step(&mut d, &[resolved(a.clone(), 4300), gone], 4530);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].notification.status(), crate::GroupStatus::Resolved);
    assert_eq!(d.groups(), 0);
}

#[test]
fn silenced_and_inhibited_alerts_are_left_out() {
    let mut d = dispatcher();
    let page = alert(
        &[
            ("alertname", "Down"),
            ("severity", "page"),
            ("service", "payment"),
        ],
        0,
    );
    let warn = alert(
        &[
            ("alertname", "Slow"),
            ("severity", "warning"),
            ("service", "payment"),
        ],
        0,
    );
    let other = alert(
        &[
            ("alertname", "Slow"),
            ("severity", "warning"),
            ("service", "order"),
        ],
        0,
    );
    for a in [&page, &warn, &other] {
        d.insert(a, t(600), t(0));
    }
    let silence_down = |l: &Labels| l.get("alertname").is_some_and(|n| n == "Down");
    let out = flush(&mut d, t(30), &silence_down);
    // Down is silenced (but still inhibits); Slow on payment is inhibited; Slow on order is not.
    assert_eq!(out.len(), 1);
    assert_eq!(
        services(&out[0].notification),
        [("order", AlertState::Firing)]
    );
    // Once the source resolves, the target is news.
    let out = step(
        &mut d,
        &[resolved(page, 100), warn.clone(), other.clone()],
        330,
    );
    let slow_group: Vec<_> = out
        .iter()
        .filter(|x| x.notification.group_key.contains("Slow"))
        .collect();
    assert_eq!(slow_group.len(), 1);
    assert_eq!(slow_group[0].notification.alerts.len(), 2);
}

#[test]
fn a_muted_route_waits_for_its_time_interval_to_end_and_limits_apply() {
    let mut d = dispatcher();
    // 12:00 UTC is inside `day`, which mutes the night route.
    let noon = -8 * 3600;
    let a = alert(
        &[("alertname", "Nightly"), ("team", "night"), ("n", "1")],
        noon,
    );
    let b = alert(
        &[("alertname", "Nightly"), ("team", "night"), ("n", "2")],
        noon,
    );
    for x in [&a, &b] {
        d.insert(x, t(0), t(noon));
    }
    assert!(flush(&mut d, t(noon + 30), &never).is_empty());
    // 18:00 is outside: the alerts (still firing, refreshed) go out, one per payload.
    for x in [&a, &b] {
        d.insert(x, t(600), t(-2 * 3600));
    }
    let out = flush(&mut d, t(-2 * 3600), &never);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].integration.to_string(), "night/webhook/0");
    assert_eq!(out[0].notification.alerts.len(), 1);
    assert_eq!(out[0].notification.truncated, 1);
    // This receiver does not want resolutions: the log forgets, nothing is sent.
    for x in [&a, &b] {
        d.insert(
            &resolved(x.clone(), -2 * 3600 + 10),
            t(600),
            t(-2 * 3600 + 10),
        );
    }
    assert!(flush(&mut d, t(-2 * 3600 + 300), &never).is_empty());
    assert_eq!(d.groups(), 0);
}

#[test]
fn an_alert_nobody_refreshes_resolves_when_it_expires() {
    let mut d = dispatcher();
    let a = slow("payment", 0);
    d.insert(&a, t(100), t(0));
    assert_eq!(flush(&mut d, t(30), &never).len(), 1);
    let out = flush(&mut d, t(330), &never);
    assert_eq!(out.len(), 1);
    assert_eq!(
        services(&out[0].notification),
        [("payment", AlertState::Resolved)]
    );
    assert_eq!(out[0].notification.alerts[0].resolved_at, Some(t(100)));
}

#[test]
fn after_a_restart_the_log_keeps_firing_alerts_from_being_notified_again() {
    let mut d = dispatcher();
    let a = slow("payment", 0);
    step(&mut d, std::slice::from_ref(&a), 0);
    assert_eq!(flush(&mut d, t(30), &never).len(), 1);
    let log = d.log().clone();
    let mut restarted = Dispatcher::new(
        Arc::new(AlertingConfig::parse("test.yml", CONFIG).unwrap()),
        log,
        "http://127.0.0.1:8080".into(),
    );
    // The alert has fired for longer than group_wait: flushed at once, but it is no news.
    assert!(step(&mut restarted, std::slice::from_ref(&a), 200).is_empty());
    assert_eq!(restarted.next_flush(), Some(t(500)));
    // A new alert in the group is.
    let out = step(&mut restarted, &[a, slow("order", 400)], 500);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].notification.alerts.len(), 2);
}
