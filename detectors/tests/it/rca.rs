//! Root-cause ranking on synthetic traffic: order calls payment (which calls a card processor)
//! and inventory, and payment and inventory log a line per call. In the anomaly window one
//! thing changes, in spans, in logs or in the network; the service where it changed must come
//! first, not the callers waiting on it, with the evidence that shows it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Int32Array, RecordBatch};
use vigil_detectors::rca::{Cause, RcaWindows, Report, analyse};
use vigil_store::query::Window;
use vigil_store::rows::SpanRow;
use vigil_store::{Signal, Store};

use crate::fixtures::{attrs, batch, texts, times};
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
    /// Whether inventory's handler hits (and logs) an exception, its span still OK.
    inventory_throws: bool,
    /// Whether payment logs that the order it was sent fails validation.
    payment_rejects: bool,
    /// Extra network time between order and inventory, ms, both ways.
    inventory_network_ms: i64,
}

/// One log line: service, severity number, body, trace and span, and attributes.
type Line = (
    &'static str,
    i32,
    String,
    String,
    String,
    Vec<(&'static str, &'static str)>,
);

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
    let net = change.inventory_network_ms * MS;
    let mut spans = vec![
        span(
            1,
            0,
            "order",
            "SERVER",
            "POST /orders",
            0,
            pay_end + 30 * MS + net,
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
            pay_end + 25 * MS + net,
        ),
        span(
            6,
            5,
            "inventory",
            "SERVER",
            "reserve",
            pay_end + 6 * MS + net / 2,
            pay_end + 24 * MS + net / 2,
        ),
    ];
    if change.inventory_fails && i % 3 == 0 {
        spans[5].status_code = "ERROR".into();
        spans[4].status_code = "ERROR".into();
        spans[0].status_code = "ERROR".into();
    }
    spans
}

/// What payment and inventory log in checkout `i` at `t`.
fn lines(i: i64, t: i64, change: Change) -> Vec<(i64, Line)> {
    let trace_id = format!("{i:032x}");
    let span = |n: i64| format!("{:016x}", i * 16 + n);
    let line = |service, severity, body: String, n, attributes| {
        (
            service,
            severity,
            body,
            trace_id.clone(),
            span(n),
            attributes,
        )
    };
    let mut out = vec![
        (
            t + 10 * MS,
            line("payment", 9, format!("charged order {i}"), 3, vec![]),
        ),
        (
            t + 50 * MS,
            line(
                "inventory",
                9,
                format!("reserved stock for order {i}"),
                6,
                vec![],
            ),
        ),
    ];
    if change.inventory_throws && i % 2 == 0 {
        out.push((
            t + 51 * MS,
            line(
                "inventory",
                17,
                format!("unexpected exception in reserve, serving the fallback: cache entry {i} was null"),
                6,
                vec![("exception.type", "NullPointerException")],
            ),
        ));
    }
    if change.payment_rejects && i % 2 == 0 {
        out.push((
            t + 11 * MS,
            line(
                "payment",
                13,
                format!("validation failed for order {i}: amount does not match the items' total"),
                3,
                vec![],
            ),
        ));
    }
    out
}

fn logs_batch(lines: &[(i64, Line)]) -> RecordBatch {
    let n = lines.len();
    let col = |f: fn(&Line) -> &str| lines.iter().map(|(_, l)| f(l)).collect::<Vec<_>>();
    batch(
        Signal::Logs,
        n,
        vec![
            (
                "time",
                times(&lines.iter().map(|l| l.0).collect::<Vec<_>>()),
            ),
            ("service_name", texts(&col(|l| l.0))),
            (
                "severity_number",
                Arc::new(Int32Array::from(
                    lines.iter().map(|l| l.1.1).collect::<Vec<_>>(),
                )),
            ),
            ("body", texts(&col(|l| &l.2))),
            ("trace_id", texts(&col(|l| &l.3))),
            ("span_id", texts(&col(|l| &l.4))),
            (
                "attributes",
                attrs(&lines.iter().map(|l| l.1.5.clone()).collect::<Vec<_>>()),
            ),
        ],
    )
}

async fn store(change: Change) -> (tempfile::TempDir, Store) {
    let (mut rows, mut logged) = (Vec::new(), Vec::new());
    for i in 0..120 {
        // Baseline: the 10 minutes before T0; anomaly window: the 5 minutes after.
        let (t, c) = if i < 60 {
            (T0 - 600 * SEC + i * 10 * SEC, Change::default())
        } else {
            (T0 + (i - 60) * 5 * SEC, change)
        };
        rows.extend(checkout(i, t, c));
        logged.extend(lines(i, t, c));
    }
    let (dir, store) = store_with(&rows).await;
    store
        .append(Signal::Logs, logs_batch(&logged))
        .await
        .unwrap();
    (dir, store)
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

#[tokio::test]
async fn an_exception_only_the_logs_show_is_blamed_on_the_service_that_logged_it() {
    let (_dir, _store, report) = report(Change {
        inventory_throws: true,
        ..Change::default()
    })
    .await;
    let first = &report.suspects[0];
    assert_eq!(first.service, "inventory", "{report:#?}");
    assert_eq!(first.cause, Cause::Errors, "{first:#?}");
    assert!(
        first.contributions.logs > 1.0 && first.contributions.spans == 0.0,
        "{first:#?}"
    );
    assert!(
        first.log_patterns[0].contains("unexpected exception"),
        "{first:#?}"
    );
    assert_eq!(report.log_patterns[0].severity, "error");
    assert_eq!(report.suspects.len(), 1, "{report:#?}");
}

#[tokio::test]
async fn input_rejected_downstream_is_blamed_on_the_sender() {
    let (_dir, _store, report) = report(Change {
        payment_rejects: true,
        ..Change::default()
    })
    .await;
    let first = &report.suspects[0];
    assert_eq!(
        first.service, "order",
        "payment rejects what order sent: {report:#?}"
    );
    assert_eq!(first.cause, Cause::Logic, "{first:#?}");
    assert!(
        first.reasons[0].starts_with("payment rejects its output"),
        "{first:#?}"
    );
    assert_eq!(report.log_patterns[0].service, "payment");
    assert_eq!(report.log_patterns[0].blamed, "order");
}

#[tokio::test]
async fn a_slower_network_is_blamed_on_the_service_waited_for_not_the_caller() {
    let (_dir, _store, report) = report(Change {
        inventory_network_ms: 60,
        ..Change::default()
    })
    .await;
    let first = &report.suspects[0];
    assert_eq!(first.service, "inventory", "{report:#?}");
    assert_eq!(first.cause, Cause::Network, "{first:#?}");
    assert!(first.contributions.network > 2.0, "{first:#?}");
    assert!(first.reasons[0].contains("from order"), "{first:#?}");
    assert!(
        report.suspects.iter().all(|s| s.service != "order"),
        "{report:#?}"
    );
}
