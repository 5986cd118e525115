//! Transaction stitching on the fixture saga (`detectors/tests/fixtures/saga_spans.json`):
//! three hops through the broker where each consumer starts a new trace (the last one without
//! the correlation id, found through its link), and a hop that continues the producer's trace,
//! against `fixtures/saga_transaction.expected.json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use vigil_dashboards::correlation::stitch;
use vigil_store::query::Window;
use vigil_store::rows::{SpanRow, spans_batch};
use vigil_store::{Signal, Store, StoreConfig};

#[derive(Deserialize)]
struct Expected {
    trace_ids: Vec<String>,
    span_count: usize,
    hops: Vec<Value>,
}

const T0: i64 = 1_800_000_000_000_000_000;

#[tokio::test]
async fn transactions_are_stitched_across_new_traces_per_consumer() {
    let rows: Vec<SpanRow> = serde_json::from_str(include_str!(
        "../../detectors/tests/fixtures/saga_spans.json"
    ))
    .unwrap();
    let expected: BTreeMap<String, Expected> =
        serde_json::from_str(include_str!("fixtures/saga_transaction.expected.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig {
        data_dir: dir.path().to_path_buf(),
        ..StoreConfig::default()
    })
    .unwrap();
    store
        .append(Signal::Spans, spans_batch(&rows).unwrap())
        .await
        .unwrap();
    let ctx = store
        .session(
            vigil_store::Reader::Users,
            vigil_store::ReadLimits::INTERNAL,
        )
        .unwrap();
    let window = Window {
        start: T0 - 60_000_000_000,
        end: T0 + 60_000_000_000,
    };
    for (id, want) in &expected {
        let t = stitch(&ctx, id, window).await.unwrap();
        assert_eq!(&t.trace_ids, &want.trace_ids, "{id}");
        assert_eq!(t.spans.len(), want.span_count, "{id}");
        let hops: Vec<Value> = t
            .hops
            .iter()
            .map(|h| serde_json::to_value(h).unwrap())
            .collect();
        assert_eq!(&hops, &want.hops, "{id}");
    }
    let none = stitch(&ctx, "order-0", window).await.unwrap();
    assert!(none.spans.is_empty());
}
