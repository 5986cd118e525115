//! Span features of long windows, read from the store's per-minute rollup plus raw spans at
//! the window's edges, agree with the spans themselves: counts and exemplars exactly,
//! percentiles within the sketch's 1.1%, whether the spans are flushed or still in the tail.

use vigil_detectors::features::{Feature, SeriesKey, extract};
use vigil_store::Signal;
use vigil_store::query::Window;
use vigil_store::rows::{SpanRow, spans_batch};

use crate::spans::store_with;

const SECOND: i64 = 1_000_000_000;

fn span(i: i64, t0: i64) -> SpanRow {
    // One span every 2 s for 10 minutes; durations 1..=97 ms in a scrambled order; every
    // 7th fails; the api's entry spans are SERVER, its calls out CLIENT.
    let start_ns = t0 + i * 2 * SECOND;
    let ms = (i * 37) % 97 + 1;
    SpanRow {
        trace_id: format!("{i:032x}"),
        span_id: format!("{i:016x}"),
        service_name: "api".into(),
        span_name: if i % 3 == 0 { "call db" } else { "GET /orders" }.into(),
        span_kind: if i % 3 == 0 { "CLIENT" } else { "SERVER" }.into(),
        status_code: if i % 7 == 0 { "ERROR" } else { "OK" }.into(),
        start_ns,
        end_ns: start_ns + ms * 1_000_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn long_windows_read_the_rollup_and_agree_with_the_spans() {
    // Minute-aligned start, 300 spans over 10 minutes: the first half flushed to Parquet
    // (with its rollup), the second half still in the tail.
    let t0 = 1_700_000_040 * SECOND;
    assert_eq!(t0 % (60 * SECOND), 0);
    let rows: Vec<SpanRow> = (0..300).map(|i| span(i, t0)).collect();
    let (_dir, store) = store_with(&rows[..150]).await;
    store.flush().await.unwrap();
    store
        .append(Signal::Spans, spans_batch(&rows[150..]).unwrap())
        .await
        .unwrap();
    // Partial minutes at both ends: 0:30 to 9:20.
    let window = Window {
        start: t0 + 30 * SECOND,
        end: t0 + 560 * SECOND,
    };
    let found = extract(&crate::spans::session(&store), window, &[])
        .await
        .unwrap();
    let inside: Vec<&SpanRow> = rows
        .iter()
        .filter(|r| r.start_ns >= window.start && r.start_ns < window.end)
        .collect();
    for (operation, pick) in [
        (
            "",
            &(|r: &SpanRow| r.span_kind == "SERVER") as &dyn Fn(&SpanRow) -> bool,
        ),
        ("call db", &|r: &SpanRow| r.span_name == "call db"),
    ] {
        let key = SeriesKey {
            service: "api".into(),
            operation: operation.into(),
        };
        let o = found.iter().find(|o| o.key == key).unwrap();
        let mine: Vec<&&SpanRow> = inside.iter().filter(|r| pick(r)).collect();
        let n = mine.len() as f64;
        let errors = mine.iter().filter(|r| r.status_code == "ERROR").count() as f64;
        let value = |f: Feature| o.values[f.index()].unwrap();
        assert!((value(Feature::RequestRate) - n / window.seconds()).abs() < 1e-9);
        assert!((value(Feature::ErrorRate) - errors / n).abs() < 1e-9);
        let mut durations: Vec<i64> = mine.iter().map(|r| r.end_ns - r.start_ns).collect();
        durations.sort_unstable();
        for (f, q) in [
            (Feature::LatencyP50, 0.5),
            (Feature::LatencyP95, 0.95),
            (Feature::LatencyP99, 0.99),
        ] {
            let exact = durations[(q * (n - 1.0)).floor() as usize] as f64 / 1e9;
            let got = value(f);
            assert!(
                (got / exact - 1.0).abs() < 0.011,
                "{operation:?} {f:?}: {got} vs {exact}"
            );
        }
        let slowest = mine
            .iter()
            .max_by_key(|r| (r.end_ns - r.start_ns, std::cmp::Reverse(&r.trace_id)))
            .unwrap();
        assert_eq!(o.trace_ids[0], slowest.trace_id, "{operation:?}");
        let last_error = mine
            .iter()
            .filter(|r| r.status_code == "ERROR")
            .map(|r| &r.trace_id)
            .max()
            .unwrap();
        assert!(o.trace_ids.contains(last_error), "{operation:?}");
    }
}
