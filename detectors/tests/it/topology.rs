//! Service-map edges from a fixture saga (`fixtures/saga_spans.json`): a call across services,
//! messaging hops whose consumers start new traces (joined through their links) and one that
//! continues the producer's trace, and calls to uninstrumented dependencies, against
//! `fixtures/saga_edges.expected.json` worked out by hand.

use serde::Deserialize;
use vigil_detectors::topology::{EdgeKind, edges};
use vigil_store::query::Window;
use vigil_store::rows::SpanRow;

use crate::spans::store_with;

#[derive(Debug, PartialEq, Deserialize)]
struct ExpectedEdge {
    caller: String,
    callee: String,
    kind: String,
    instrumented: bool,
    calls: u64,
    error_rate: f64,
    p50_ms: i64,
    lag_p50_ms: Option<i64>,
}

const T0: i64 = 1_800_000_000_000_000_000;
const MS: f64 = 1e-3;

#[tokio::test]
async fn saga_edges_include_messaging_hops_across_new_traces() {
    let rows: Vec<SpanRow> =
        serde_json::from_str(include_str!("../fixtures/saga_spans.json")).unwrap();
    let expected: Vec<ExpectedEdge> =
        serde_json::from_str(include_str!("../fixtures/saga_edges.expected.json")).unwrap();
    let (_dir, store) = store_with(&rows).await;
    let ctx = crate::spans::session(&store);
    let window = Window {
        start: T0 - 60_000_000_000,
        end: T0 + 60_000_000_000,
    };
    let found = edges(&ctx, window).await.unwrap();
    let got: Vec<ExpectedEdge> = found
        .iter()
        .map(|e| ExpectedEdge {
            caller: e.caller.clone(),
            callee: e.callee.clone(),
            kind: match e.kind {
                EdgeKind::Call => "call".into(),
                EdgeKind::Messaging => "messaging".into(),
            },
            instrumented: e.instrumented,
            calls: e.calls,
            error_rate: e.error_rate,
            p50_ms: (e.p50.unwrap() / MS).round() as i64,
            lag_p50_ms: e.lag_p50.map(|l| (l / MS).round() as i64),
        })
        .collect();
    assert_eq!(got, expected);
    let rate = found[0].rate;
    assert!(
        (rate - 1.0 / 120.0).abs() < 1e-9,
        "calls per second: {rate}"
    );
}
