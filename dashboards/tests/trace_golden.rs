//! Trace shape against hand-worked fixtures: tree order and depth, self time and the
//! critical path of a checkout trace (`fixtures/checkout_trace*.json`, times in ms).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_dashboards::trace::tree::{Node, analyse};

#[derive(Deserialize)]
struct FixtureSpan {
    span_id: String,
    parent_span_id: String,
    start_ms: i64,
    end_ms: i64,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Expected {
    order: Vec<(String, usize)>,
    self_ms: BTreeMap<String, i64>,
    critical_path: Vec<(String, i64)>,
}

const MS: i64 = 1_000_000;

#[test]
fn checkout_trace_self_time_and_critical_path() {
    let spans: Vec<FixtureSpan> =
        serde_json::from_str(include_str!("fixtures/checkout_trace.json")).unwrap();
    let expected: Expected =
        serde_json::from_str(include_str!("fixtures/checkout_trace.expected.json")).unwrap();
    let t0 = 1_764_300_000_000 * MS;
    let nodes: Vec<Node> = spans
        .iter()
        .map(|s| Node {
            span_id: &s.span_id,
            parent_span_id: &s.parent_span_id,
            start: t0 + s.start_ms * MS,
            end: t0 + s.end_ms * MS,
        })
        .collect();
    let shape = analyse(&nodes);
    let id = |i: usize| spans[i].span_id.clone();
    let got = Expected {
        order: shape.order.iter().map(|(i, d)| (id(*i), *d)).collect(),
        self_ms: (0..spans.len())
            .map(|i| (id(i), shape.self_ns[i] / MS))
            .collect(),
        critical_path: shape
            .critical_path
            .iter()
            .map(|(i, ns)| (id(*i), ns / MS))
            .collect(),
    };
    assert_eq!(got, expected);
    // The path accounts for the whole trace, and each span's share adds up.
    let total: i64 = shape.critical_path.iter().map(|(_, ns)| ns).sum();
    assert_eq!(total, 100 * MS);
    let a1 = spans
        .iter()
        .position(|s| s.span_id == "00000000000000a1")
        .unwrap();
    assert_eq!(shape.critical_ns[a1], 23 * MS);
}
