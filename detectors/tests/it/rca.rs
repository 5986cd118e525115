//! Root-cause ranking on synthetic traffic: order calls payment (which calls a card processor)
//! and inventory. In the anomaly window one thing changes; the service where it changed must
//! come first, not the callers waiting on it, with the attribute that marks the bad spans.

use std::collections::BTreeMap;

use vigil_detectors::rca::{RcaWindows, Report, analyse};
use vigil_store::Store;
use vigil_store::query::Window;
use vigil_store::rows::SpanRow;

use crate::spans::store_with;

const T0: i64 = 1_800_000_000_000_000_000;
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000 * MS;

#[derive(Clone, Copy, Default)]
struct Change {
    /// Extra self time of payment's handler on host node-3, ms.
    payment_ms: i64,
    /// Whether inventory's handler fails.
    inventory_fails: bool,
}

/// One checkout at `t`: order SERVER → (payment CLIENT → payment SERVER → card CLIENT) and
/// (inventory CLIENT → inventory SERVER).
fn checkout(i: i64, t: i64, change: Change) -> Vec<SpanRow> {
    let trace_id = format!("{i:032x}");
    let id = |n: i64| format!("{:016x}", i * 16 + n);
    let host = if i % 2 == 0 { "node-3" } else { "node-1" };
    let slow = if host == "node-3" {
        change.payment_ms * MS
    } else {
        0
    };
    let span =
        |n: i64, parent: i64, service: &str, kind: &str, name: &str, start: i64, end: i64| {
            SpanRow {
                trace_id: trace_id.clone(),
                span_id: id(n),
                parent_span_id: if parent == 0 {
                    String::new()
                } else {
                    id(parent)
                },
                service_name: service.into(),
                span_kind: kind.into(),
                span_name: name.into(),
                start_ns: t + start,
                end_ns: t + end,
                resource_attributes: BTreeMap::from([("host.name".to_string(), host.to_string())]),
                ..SpanRow::default()
            }
        };
    let pay_end = 40 * MS + slow;
    let mut spans = vec![
        span(
            1,
            0,
            "order",
            "SERVER",
            "POST /orders",
            0,
            pay_end + 30 * MS,
        ),
        span(
            2,
            1,
            "order",
            "CLIENT",
            "call payment",
            2 * MS,
            pay_end + 2 * MS,
        ),
        span(3, 2, "payment", "SERVER", "charge", 3 * MS, pay_end + MS),
        span(4, 3, "payment", "CLIENT", "card processor", 5 * MS, 25 * MS),
        span(
            5,
            1,
            "order",
            "CLIENT",
            "call inventory",
            pay_end + 5 * MS,
            pay_end + 25 * MS,
        ),
        span(
            6,
            5,
            "inventory",
            "SERVER",
            "reserve",
            pay_end + 6 * MS,
            pay_end + 24 * MS,
        ),
    ];
    if change.inventory_fails && i % 3 == 0 {
        spans[5].status_code = "ERROR".into();
        spans[4].status_code = "ERROR".into();
        spans[0].status_code = "ERROR".into();
    }
    spans
}

async fn store(change: Change) -> (tempfile::TempDir, Store) {
    let mut rows = Vec::new();
    for i in 0..120 {
        // Baseline: the 10 minutes before T0; anomaly window: the 5 minutes after.
        let (t, c) = if i < 60 {
            (T0 - 600 * SEC + i * 10 * SEC, Change::default())
        } else {
            (T0 + (i - 60) * 5 * SEC, change)
        };
        rows.extend(checkout(i, t, c));
    }
    store_with(&rows).await
}

fn windows() -> RcaWindows {
    RcaWindows {
        window: Window {
            start: T0,
            end: T0 + 300 * SEC,
        },
        baseline: Window {
            start: T0 - 600 * SEC,
            end: T0,
        },
    }
}

/// The unscoped report for `change`, and the store it ran on.
async fn report(change: Change) -> (tempfile::TempDir, Store, Report) {
    let (dir, store) = store(change).await;
    let ctx = crate::spans::session(&store);
    let report = analyse(&ctx, windows(), None).await.unwrap();
    (dir, store, report)
}

#[tokio::test]
async fn a_slow_leaf_is_blamed_not_its_callers_and_its_host_stands_out() {
    let (_dir, store, report) = report(Change {
        payment_ms: 400,
        ..Change::default()
    })
    .await;
    let ctx = crate::spans::session(&store);
    let first = &report.suspects[0];
    assert_eq!(
        (first.service.as_str(), first.operation.as_str()),
        ("payment", "charge"),
        "{report:#?}"
    );
    assert!(
        first.after.self_p95 > 0.3 && first.before.self_p95 < 0.05,
        "{first:?}"
    );
    assert!(!first.trace_ids.is_empty());
    assert!(
        report.suspects.iter().all(|s| s.service != "order"),
        "order only waited on payment: {report:#?}"
    );
    let host = &report.attributes[0];
    assert_eq!(
        (host.key.as_str(), host.value.as_str()),
        ("host.name", "node-3"),
        "{report:#?}"
    );
    assert!(host.bad_share > 0.9 && host.good_share < 0.1, "{host:?}");

    // Scoped to the symptom's service, the suspect is still found downstream of it.
    let scoped = analyse(&ctx, windows(), Some("order")).await.unwrap();
    assert_eq!(scoped.suspects[0].service, "payment");
    let elsewhere = analyse(&ctx, windows(), Some("inventory")).await.unwrap();
    assert!(elsewhere.suspects.iter().all(|s| s.service == "inventory"));
}

#[tokio::test]
async fn the_service_whose_own_spans_fail_is_blamed_not_the_callers_that_saw_the_error() {
    let (_dir, _store, report) = report(Change {
        inventory_fails: true,
        ..Change::default()
    })
    .await;
    let first = &report.suspects[0];
    assert_eq!(
        (first.service.as_str(), first.operation.as_str()),
        ("inventory", "reserve"),
        "{report:#?}"
    );
    assert!(
        first.after.error_rate > 0.3 && first.before.error_rate == 0.0,
        "{first:?}"
    );
    assert!(
        report.suspects.iter().all(|s| s.service != "order"),
        "{report:#?}"
    );
}

#[tokio::test]
async fn nothing_changed_means_no_suspects() {
    let (_dir, _store, report) = report(Change::default()).await;
    assert!(report.suspects.is_empty(), "{report:#?}");
}
