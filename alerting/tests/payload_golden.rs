#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Golden tests of the payloads: one fixed group of two alerts (a rule alert and an anomaly
//! alert), firing and then resolved, becomes the Alertmanager webhook, Slack and PagerDuty
//! bodies in `tests/fixtures/` (written by hand from the public specs). Then the specs' limits,
//! checked on hostile input rather than on the fixtures.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use vigil_alerting::payload::{
    PagerDutyOptions, Severity, SlackOptions, pagerduty, slack, webhook,
};
use vigil_alerting::{Alert, AlertState, Fingerprint, Labels, Notification};
use vigil_store::alert::{RCA_REPORT_URL, RCA_SUSPECTS, RCA_TRACE_URL};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(
    label_pairs: &[(&str, &str)],
    annotations: &[(&str, &str)],
    fired: &str,
    value: f64,
) -> Alert {
    let labels = labels(label_pairs);
    Alert {
        fingerprint: Fingerprint::of(&labels),
        labels,
        annotations: self::labels(annotations),
        state: AlertState::Firing,
        active_at: at(fired),
        fired_at: Some(at(fired)),
        resolved_at: None,
        value: Some(value),
        generator: String::new(),
    }
}

/// The group: a latency rule alert at `page` and an anomaly alert at `warning` on payment.
fn firing() -> Notification {
    let mut slow = alert(
        &[
            ("alertname", "PaymentSlow"),
            ("operation", "POST /pay"),
            ("service", "payment"),
            ("severity", "page"),
        ],
        &[
            ("summary", "Payment p95 latency 812 ms > 500 ms threshold"),
            (
                "description",
                "POST /pay on payment has been slower than 500 ms at p95 for 5 minutes.",
            ),
            ("runbook_url", "https://runbooks.example.com/payment-slow"),
            (
                RCA_SUSPECTS,
                "1. payment `POST /pay` — latency (score 3.9): self time p50 4.0 ms → 180.0 ms\n\
                 2. card-processor — network (score 1.2): wait on the way in from payment: p50 1.0 ms → 4.0 ms",
            ),
            (
                RCA_REPORT_URL,
                "https://vigil.example.com/api/v1/alerts/8c1f0e2a9b7d6c54/rca",
            ),
            (
                RCA_TRACE_URL,
                "https://vigil.example.com/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736",
            ),
        ],
        "2026-11-28T00:00:00Z",
        0.812,
    );
    slow.active_at = at("2026-11-27T23:55:00Z");
    slow.generator = "rules/latency/PaymentSlow".into();
    let mut anomalous = alert(
        &[
            ("alertname", "PaymentAnomalous"),
            ("operation", "POST /pay"),
            ("service", "payment"),
            ("severity", "warning"),
        ],
        &[
            ("summary", "POST /pay on payment behaves unlike its history"),
            ("anomaly_score", "0.97"),
            ("top_feature", "latency_p95"),
            ("expected", "120"),
            ("observed", "812"),
            ("detectors", "iforest,bocpd"),
            (
                "trace_ids",
                "4bf92f3577b34da6a3ce929d0e0e4736,00f067aa0ba902b7a3ce929d0e0e4736",
            ),
        ],
        "2026-11-28T00:01:00Z",
        0.97,
    );
    anomalous.generator = "anomalies/payment/PaymentAnomalous".into();
    Notification {
        receiver: "payments-oncall".into(),
        group_key: r#"{}:{service="payment"}"#.into(),
        group_labels: labels(&[("service", "payment")]),
        alerts: vec![slow, anomalous],
        truncated: 0,
        external_url: "https://vigil.example.com".into(),
    }
}

/// The same group once both alerts have resolved.
fn resolved() -> Notification {
    let mut n = firing();
    for (a, end) in n
        .alerts
        .iter_mut()
        .zip(["2026-11-28T00:20:00Z", "2026-11-28T00:15:30.250Z"])
    {
        a.state = AlertState::Resolved;
        a.resolved_at = Some(at(end));
    }
    n
}

fn pagerduty_options() -> PagerDutyOptions {
    PagerDutyOptions {
        routing_key: "0123456789abcdef0123456789abcdef".into(),
        severity: None,
    }
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn json(body: impl Serialize) -> Value {
    serde_json::to_value(body).unwrap()
}

fn assert_golden(actual: impl Serialize, name: &str) {
    let actual = json(actual);
    assert_eq!(
        actual,
        fixture(name),
        "{name} differs; built:\n{}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn payloads_match_the_fixtures() {
    let slack_options = SlackOptions {
        channel: Some("#payments-oncall".into()),
        username: Some("Vigil".into()),
        icon_emoji: Some(":rotating_light:".into()),
    };
    assert_golden(webhook::message(&firing()), "webhook_v4_firing.json");
    assert_golden(webhook::message(&resolved()), "webhook_v4_resolved.json");
    assert_golden(
        slack::message(&firing(), &slack_options),
        "slack_firing.json",
    );
    assert_golden(
        slack::message(&resolved(), &SlackOptions::default()),
        "slack_resolved.json",
    );
    assert_golden(
        pagerduty::event(&firing(), &pagerduty_options()),
        "pagerduty_trigger.json",
    );
    assert_golden(
        pagerduty::event(&resolved(), &pagerduty_options()),
        "pagerduty_resolve.json",
    );
}

#[test]
fn webhook_has_every_v4_key_and_go_zero_end_times_while_firing() {
    let mut n = firing();
    n.alerts[1].state = AlertState::Resolved;
    n.alerts[1].resolved_at = Some(at("2026-11-28T00:05:00Z"));
    n.truncated = 3;
    let body = json(webhook::message(&n));
    let mut top = keys(&body);
    top.sort_unstable();
    assert_eq!(
        top,
        [
            "alerts",
            "commonAnnotations",
            "commonLabels",
            "externalURL",
            "groupKey",
            "groupLabels",
            "receiver",
            "status",
            "truncatedAlerts",
            "version"
        ]
    );
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["truncatedAlerts"], 3);
    let alerts = body["alerts"].as_array().unwrap();
    for a in alerts {
        let mut k = keys(a);
        k.sort_unstable();
        assert_eq!(
            k,
            [
                "annotations",
                "endsAt",
                "fingerprint",
                "generatorURL",
                "labels",
                "startsAt",
                "status"
            ]
        );
        let starts = a["startsAt"].as_str().unwrap();
        assert!(DateTime::parse_from_rfc3339(starts).is_ok(), "{starts}");
        assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    }
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alerts[1]["status"], "resolved");
    assert_eq!(alerts[1]["endsAt"], "2026-11-28T00:05:00Z");
}

#[test]
fn webhook_bodies_are_signed_with_hmac_sha256() {
    let body = serde_json::to_vec(&webhook::message(&firing())).unwrap();
    let sig = webhook::signature(b"s3cret", &body);
    let hex = sig.strip_prefix("sha256=").unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_ne!(sig, webhook::signature(b"other", &body));
    assert_eq!(webhook::SIGNATURE_HEADER, "X-Vigil-Signature");
    // RFC 4231, test case 2.
    assert_eq!(
        webhook::signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// A group built to break Slack's limits: a 399-character multibyte group label, fifteen
/// common labels of 3000 multibyte characters, summaries and descriptions of thousands of
/// multibyte characters and `&`, and thirty alerts.
fn oversized() -> Notification {
    let mut n = firing();
    let huge = "é😀&".repeat(1000);
    n.group_labels = labels(&[("service", "支払い".repeat(133).as_str())]);
    let template = n.alerts[1].clone();
    n.alerts = (0..30)
        .map(|i| {
            let mut a = template.clone();
            for j in 0..15 {
                a.labels.insert(format!("label_{j:02}"), "ü".repeat(3000));
            }
            a.labels.insert("instance".into(), i.to_string());
            a.annotations
                .insert("summary".into(), format!("{i}{huge}{huge}"));
            a.annotations
                .insert("description".into(), format!("{i}{huge}"));
            a.fingerprint = Fingerprint::of(&a.labels);
            a
        })
        .collect();
    n.truncated = 5;
    n
}

fn utf16_len(v: &Value) -> usize {
    v.as_str().unwrap().encode_utf16().count()
}

#[test]
fn slack_stays_within_block_kit_limits() {
    let msg = json(slack::message(&oversized(), &SlackOptions::default()));
    assert!(keys(&msg).contains(&"text"));
    assert!(msg.get("channel").is_none());
    let attachment = &msg["attachments"][0];
    assert_eq!(attachment["color"], "#ECB22E", "warning only");
    let blocks = attachment["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50, "{} blocks", blocks.len());
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(utf16_len(&blocks[0]["text"]["text"]) <= 150);
    assert!(blocks[0]["text"]["text"].as_str().unwrap().ends_with('…'));
    for block in blocks {
        match block["type"].as_str().unwrap() {
            "header" => {}
            "section" => {
                if let Some(text) = block.get("text") {
                    assert_eq!(text["type"], "mrkdwn");
                    assert!((1..=3000).contains(&utf16_len(&text["text"])));
                }
                if let Some(fields) = block.get("fields") {
                    let fields = fields.as_array().unwrap();
                    assert!((1..=10).contains(&fields.len()));
                    for f in fields {
                        assert!(utf16_len(&f["text"]) <= 2000);
                    }
                }
            }
            "context" => {
                let elements = block["elements"].as_array().unwrap();
                assert!((1..=10).contains(&elements.len()));
            }
            other => panic!("unexpected block {other}"),
        }
    }
    let last = &blocks[blocks.len() - 1];
    assert_eq!(
        last["elements"][0]["text"],
        "25 more alerts of this group are not shown"
    );
}

#[test]
fn slack_colours_follow_severity() {
    let colour = |severity: &str| {
        let mut n = firing();
        for a in &mut n.alerts {
            a.labels.insert("severity".into(), severity.into());
        }
        json(slack::message(&n, &SlackOptions::default()))["attachments"][0]["color"].clone()
    };
    assert_eq!(colour("critical"), "#E01E5A");
    assert_eq!(colour("page"), "#E01E5A");
    assert_eq!(colour("warning"), "#ECB22E");
    assert_eq!(colour("info"), "#36C5F0");
    assert_eq!(colour("whatever"), "#36C5F0");
}

#[test]
fn pagerduty_summary_fits_1024_characters_of_a_long_multibyte_summary() {
    let mut n = firing();
    let long = "延迟".repeat(1000) + "😀";
    assert_eq!(long.chars().count(), 2001);
    for a in &mut n.alerts {
        a.annotations.insert("summary".into(), long.clone());
    }
    let event = json(pagerduty::event(&n, &pagerduty_options()));
    let summary = event["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.chars().count() <= 1024,
        "{}",
        summary.chars().count()
    );
    assert!(summary.encode_utf16().count() <= 1024);
    assert!(summary.starts_with("[FIRING:2] payment: 延迟延迟"));
    assert!(summary.ends_with('…'));
}

#[test]
fn pagerduty_trigger_has_the_required_fields_and_resolve_only_three() {
    let trigger = json(pagerduty::event(&firing(), &pagerduty_options()));
    let mut top = keys(&trigger);
    top.sort_unstable();
    assert_eq!(
        top,
        [
            "client",
            "client_url",
            "dedup_key",
            "event_action",
            "links",
            "payload",
            "routing_key"
        ]
    );
    for required in ["summary", "source", "severity"] {
        assert!(!trigger["payload"][required].as_str().unwrap().is_empty());
    }
    assert!(trigger["dedup_key"].as_str().unwrap().len() <= 255);
    for link in trigger["links"].as_array().unwrap() {
        assert!(link["href"].as_str().unwrap().starts_with("https://"));
    }

    let resolve = json(pagerduty::event(&resolved(), &pagerduty_options()));
    let mut top = keys(&resolve);
    top.sort_unstable();
    assert_eq!(top, ["dedup_key", "event_action", "routing_key"]);
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
}

#[test]
fn pagerduty_severity_is_mapped_or_overridden() {
    let severity = |label: &str, set: Option<Severity>| {
        let mut n = firing();
        for a in &mut n.alerts {
            a.labels.insert("severity".into(), label.into());
        }
        let options = PagerDutyOptions {
            severity: set,
            ..pagerduty_options()
        };
        json(pagerduty::event(&n, &options))["payload"]["severity"].clone()
    };
    assert_eq!(severity("page", None), "critical");
    assert_eq!(severity("warning", None), "warning");
    assert_eq!(severity("info", None), "info");
    assert_eq!(severity("sev2", None), "error");
    assert_eq!(severity("page", Some(Severity::Info)), "info");
}

#[test]
fn a_group_without_alerts_still_yields_valid_payloads() {
    let mut n = firing();
    n.alerts.clear();
    n.group_labels.clear();
    assert_eq!(json(webhook::message(&n))["status"], "resolved");
    assert_eq!(
        json(pagerduty::event(&n, &pagerduty_options()))["event_action"],
        "resolve"
    );
    let msg = json(slack::message(&n, &SlackOptions::default()));
    assert_eq!(msg["text"], "[RESOLVED] alerts");
}
