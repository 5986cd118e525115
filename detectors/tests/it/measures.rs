//! Each measure evaluated through the real store and SQL session on small fixture tables,
//! against values worked out by hand in the comments.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fixtures::{attrs, batch, texts, times};
use arrow::array::{
    BooleanArray, Float64Array, Float64Builder, Int32Array, Int64Array, ListBuilder, RecordBatch,
    TimestampNanosecondArray, UInt64Builder,
};
use chrono::{DateTime, Utc};
use vigil_detectors::anomaly::history::anomalies_batch;
use vigil_detectors::anomaly::monitor::Anomaly;
use vigil_detectors::eval::Sample;
use vigil_detectors::eval::group::{GroupState, measure};
use vigil_detectors::eval::spans::SpanWindow;
use vigil_detectors::features::{Feature, SeriesKey, WatchedMetric, extract, extract_partitions};
use vigil_detectors::rca::metric_shifts::levels;
use vigil_detectors::rules::selector::Aggregation;
use vigil_detectors::rules::{Rule, parse};
use vigil_store::query::Window;
use vigil_store::{Signal, Store, StoreConfig};

const NOW_S: i64 = 1_800_000_000;
const SEC: i64 = 1_000_000_000;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW_S, 0).unwrap()
}

/// `secs_ago` before NOW, in ns.
fn ago(secs_ago: f64) -> i64 {
    NOW_S * SEC - (secs_ago * 1e9) as i64
}

/// Payment's consumer spans in the last minute: durations 10..90 ms and one of 1 s, two of
/// them errors (20 ms and 1 s); plus spans that must not count: older than the window, of
/// another service, of another kind. Span `i` came from partition `i % 3`.
fn spans() -> RecordBatch {
    let ms = [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000, 5000, 7000, 3000];
    let n = ms.len();
    let mut services = vec!["payment"; 10];
    services.extend(["payment", "shipping", "payment"]);
    let mut kinds = vec!["CONSUMER"; 12];
    kinds.push("PRODUCER");
    let mut status = vec!["UNSET"; n];
    status[1] = "ERROR";
    status[9] = "ERROR";
    let mut t: Vec<i64> = (0..10).map(|i| ago(5.0 + f64::from(i))).collect();
    t.extend([ago(90.0), ago(10.0), ago(10.0)]);
    let partitions = ["0", "1", "2"];
    let attributes: Vec<Vec<(&str, &str)>> = (0..n)
        .map(|i| {
            vec![
                (
                    "messaging.destination.name",
                    if i % 2 == 0 { "orders" } else { "stock" },
                ),
                ("messaging.destination.partition.id", partitions[i % 3]),
            ]
        })
        .collect();
    batch(
        Signal::Spans,
        n,
        vec![
            ("time", times(&t)),
            ("service_name", texts(&services)),
            ("span_name", texts(&vec!["process payments"; n])),
            ("span_kind", texts(&kinds)),
            ("status_code", texts(&status)),
            (
                "duration_ns",
                Arc::new(Int64Array::from(
                    ms.iter().map(|m| m * 1_000_000).collect::<Vec<_>>(),
                )),
            ),
            ("attributes", attrs(&attributes)),
        ],
    )
}

/// Logs in the last 5 minutes: three ERROR (one says "timeout"), two INFO; one ERROR older.
fn logs() -> RecordBatch {
    let sev = [17, 17, 17, 9, 9, 17];
    let body = [
        "card declined",
        "timeout calling card-processor",
        "boom",
        "ok",
        "ok",
        "timeout",
    ];
    let t = [
        ago(10.0),
        ago(20.0),
        ago(30.0),
        ago(40.0),
        ago(50.0),
        ago(400.0),
    ];
    batch(
        Signal::Logs,
        6,
        vec![
            ("time", times(&t)),
            ("service_name", texts(&["payment"; 6])),
            ("severity_number", Arc::new(Int32Array::from(sev.to_vec()))),
            ("body", texts(&body)),
        ],
    )
}

struct Point<'a> {
    name: &'a str,
    /// A monotonic counter.
    monotonic: bool,
    at: f64,
    start: f64,
    value: Option<f64>,
    buckets: Option<Vec<u64>>,
    attrs: Vec<(&'a str, &'a str)>,
}

fn metrics(points: &[Point]) -> RecordBatch {
    let n = points.len();
    let mut buckets = ListBuilder::new(UInt64Builder::new());
    let mut bounds = ListBuilder::new(Float64Builder::new());
    for p in points {
        match &p.buckets {
            Some(b) => {
                buckets.values().append_slice(b);
                buckets.append(true);
                bounds.values().append_slice(&[0.1, 0.5, 1.0]);
                bounds.append(true);
            }
            None => {
                buckets.append(false);
                bounds.append(false);
            }
        }
    }
    let start: Vec<Option<i64>> = points.iter().map(|p| Some(ago(p.start))).collect();
    batch(
        Signal::Metrics,
        n,
        vec![
            (
                "time",
                times(&points.iter().map(|p| ago(p.at)).collect::<Vec<_>>()),
            ),
            ("service_name", texts(&vec!["payment"; n])),
            (
                "metric_name",
                texts(&points.iter().map(|p| p.name).collect::<Vec<_>>()),
            ),
            (
                "start_time",
                Arc::new(TimestampNanosecondArray::from(start).with_timezone("UTC")),
            ),
            (
                "value",
                Arc::new(Float64Array::from(
                    points.iter().map(|p| p.value).collect::<Vec<_>>(),
                )),
            ),
            ("temporality", texts(&vec!["cumulative"; n])),
            (
                "is_monotonic",
                Arc::new(BooleanArray::from(
                    points.iter().map(|p| p.monotonic).collect::<Vec<_>>(),
                )),
            ),
            ("bucket_counts", Arc::new(buckets.finish())),
            ("explicit_bounds", Arc::new(bounds.finish())),
            (
                "attributes",
                attrs(&points.iter().map(|p| p.attrs.clone()).collect::<Vec<_>>()),
            ),
        ],
    )
}

fn counter(at: f64, start: f64, value: f64, outcome: &'static str) -> Point<'static> {
    Point {
        name: "messaging.client.consumed.messages",
        monotonic: true,
        at,
        start,
        value: Some(value),
        buckets: None,
        attrs: vec![("outcome", outcome)],
    }
}

fn fixture_metrics() -> RecordBatch {
    let lag = |at: f64, v: f64, topic: &'static str| Point {
        name: "messaging.consumer.lag",
        monotonic: false,
        at,
        start: 1000.0,
        value: Some(v),
        buckets: None,
        attrs: vec![("messaging.destination.name", topic)],
    };
    let hist = |at: f64, b: Vec<u64>| Point {
        name: "http.server.request.duration",
        monotonic: false,
        at,
        start: 1000.0,
        value: None,
        buckets: Some(b),
        attrs: vec![("http.route", "/orders")],
    };
    metrics(&[
        // Started before the window: 5 → 7 → 2 (reset) → 4 rises by 2 + 2 + 2 = 6.
        counter(250.0, 1000.0, 5.0, "dead_lettered"),
        counter(200.0, 1000.0, 7.0, "dead_lettered"),
        counter(150.0, 1000.0, 2.0, "dead_lettered"),
        counter(100.0, 1000.0, 4.0, "dead_lettered"),
        // Started inside the window (another series): 3 → 5 counts 3 + 2 = 5.
        Point {
            attrs: vec![
                ("outcome", "dead_lettered"),
                ("messaging.destination.name", "stock"),
            ],
            ..counter(120.0, 130.0, 3.0, "")
        },
        Point {
            attrs: vec![
                ("outcome", "dead_lettered"),
                ("messaging.destination.name", "stock"),
            ],
            ..counter(60.0, 130.0, 5.0, "")
        },
        // Another outcome, filtered out.
        counter(60.0, 1000.0, 100.0, "processed"),
        // Lag: orders 5 → 8, stock 3 → 1. Last summed: 9; max 8; mean 4.25.
        lag(50.0, 5.0, "orders"),
        lag(20.0, 8.0, "orders"),
        lag(50.0, 3.0, "stock"),
        lag(20.0, 1.0, "stock"),
        // Histogram: [10,10,10,0] → [20,40,60,10] observed [10,30,50,10] in the window.
        hist(200.0, vec![10, 10, 10, 0]),
        hist(10.0, vec![20, 40, 60, 10]),
    ])
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig {
        data_dir: dir.path().to_path_buf(),
        ..StoreConfig::default()
    })
    .unwrap();
    store.append(Signal::Spans, spans()).await.unwrap();
    store.append(Signal::Logs, logs()).await.unwrap();
    store
        .append(Signal::Metrics, fixture_metrics())
        .await
        .unwrap();
    (dir, store)
}

fn rule(yaml: &str) -> Rule {
    let text = format!(
        "groups:\n  - name: g\n    rules:\n      - {}\n",
        yaml.replace('\n', "\n        ")
    );
    parse("t.yaml", &text)
        .unwrap()
        .groups
        .remove(0)
        .rules
        .remove(0)
}

async fn eval(store: &Store, yaml: &str) -> Vec<Sample> {
    let r = rule(yaml);
    let ctx = crate::spans::session(store);
    let window = Window::ending(now(), std::time::Duration::from_secs(300));
    let keys = vec!["messaging.destination.name".to_string()];
    let spans = Some(
        SpanWindow::load(&ctx, window, None, keys)
            .await
            .map_err(|e| e.to_string()),
    );
    let mut samples = measure(&ctx, &r, spans.as_ref(), now()).await.unwrap();
    samples.sort_by(|a, b| a.labels.cmp(&b.labels));
    samples
}

fn one(samples: &[Sample]) -> f64 {
    assert_eq!(samples.len(), 1, "{samples:?}");
    samples[0].value
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

const PAYMENT: &str = "service: payment\nspan_kind: CONSUMER\nwindow: 1m\ngroup_by: [service]\n";

#[tokio::test]
async fn latency_quantiles_are_exact_over_the_window() {
    let (_dir, s) = store().await;
    // Ten durations 10..90 ms and 1000 ms. p50: rank 4.5 → 55 ms.
    let p50 = eval(
        &s,
        &format!("alert: A\nmeasure: latency_p50\nthreshold: 1s\n{PAYMENT}"),
    )
    .await;
    close(one(&p50), 0.055);
    assert_eq!(
        p50[0].labels,
        BTreeMap::from([("service".into(), "payment".into())])
    );
    // p95: rank 8.55 → 90 + 0.55 × 910 = 590.5 ms.
    let p95 = eval(
        &s,
        &format!("alert: A\nmeasure: latency_p95\nthreshold: 1s\n{PAYMENT}"),
    )
    .await;
    close(one(&p95), 0.5905);
    // p99: rank 8.91 → 90 + 0.91 × 910 = 918.1 ms.
    let p99 = eval(
        &s,
        &format!("alert: A\nmeasure: latency_p99\nthreshold: 1s\n{PAYMENT}"),
    )
    .await;
    close(one(&p99), 0.9181);
}

#[tokio::test]
async fn error_rate_availability_and_throughput() {
    let (_dir, s) = store().await;
    let rate = eval(
        &s,
        &format!("alert: A\nmeasure: error_rate\nthreshold: 1%\n{PAYMENT}"),
    )
    .await;
    close(one(&rate), 0.2);
    let avail = eval(
        &s,
        &format!("alert: A\nmeasure: availability\nthreshold: 1%\n{PAYMENT}"),
    )
    .await;
    close(one(&avail), 0.8);
    // 10 spans in 60 s.
    let tput = eval(
        &s,
        &format!("alert: A\nmeasure: throughput\nthreshold: 1/s\n{PAYMENT}"),
    )
    .await;
    close(one(&tput), 10.0 / 60.0);
    // Split by an attribute: even-numbered spans on "orders" (errors none), odd on "stock"
    // (both errors: 20 ms and 1 s).
    let by_topic = eval(
        &s,
        "alert: A\nmeasure: error_rate\nthreshold: 1%\nservice: payment\nspan_kind: CONSUMER\nwindow: 1m\ngroup_by: [messaging.destination.name]\n",
    )
    .await;
    assert_eq!(by_topic.len(), 2);
    assert_eq!(by_topic[0].labels["messaging.destination.name"], "orders");
    close(by_topic[0].value, 0.0);
    close(by_topic[1].value, 2.0 / 5.0);
}

#[tokio::test]
async fn no_spans_is_zero_throughput_for_a_named_series() {
    let (_dir, s) = store().await;
    let none = eval(&s, "alert: A\nmeasure: throughput\nthreshold: 1/m\nop: \"<\"\nservice: gateway\noperation: POST /orders\nwindow: 1m").await;
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].value, 0.0);
    assert_eq!(none[0].labels["service"], "gateway");
}

#[tokio::test]
async fn log_counts_per_second() {
    let (_dir, s) = store().await;
    // Three ERROR records in 5 minutes (the fourth is older).
    let errors = eval(
        &s,
        "alert: A\nmeasure: log_count\nlogs: { min_severity: ERROR }\nwindow: 5m\nthreshold: 1/s",
    )
    .await;
    close(one(&errors), 3.0 / 300.0);
    let timeouts = eval(&s, "alert: A\nmeasure: log_count\nlogs: { min_severity: ERROR, body_contains: timeout }\nwindow: 5m\nthreshold: 1/s").await;
    close(one(&timeouts), 1.0 / 300.0);
}

#[tokio::test]
async fn counter_increase_and_rate_handle_resets_and_new_series() {
    let (_dir, s) = store().await;
    let metric = "measure: metric\nmetric: { name: messaging.client.consumed.messages, aggregation: increase, labels: { outcome: dead_lettered } }\nwindow: 5m\nthreshold: 0";
    // 6 from the old series, 5 from the one that started in the window.
    close(one(&eval(&s, &format!("alert: A\n{metric}")).await), 11.0);
    let rate = metric.replace("increase", "rate");
    close(
        one(&eval(&s, &format!("alert: A\n{rate}")).await),
        11.0 / 300.0,
    );
}

#[tokio::test]
async fn rca_levels_read_each_series_as_the_rules_do() {
    let (_dir, s) = store().await;
    let ctx = crate::spans::session(&s);
    let window = Window::ending(now(), std::time::Duration::from_secs(300));
    let levels = levels(&ctx, window).await.unwrap();
    let level = |metric: &str| levels[&("payment".to_string(), metric.to_string())];
    // Dead letters rose 6 + 5; the processed series has one point, so no rise seen.
    let consumed = level("messaging.client.consumed.messages");
    close(consumed.value, 11.0 / 300.0);
    assert_eq!(consumed.spread, 0.0);
    // Lag: orders 5, 8 (mean 6.5, spread 2.12); stock 3, 1 (mean 2, spread 1.41).
    let lag = level("messaging.consumer.lag");
    close(lag.value, 4.25);
    close(lag.spread, (4.5f64.sqrt() + 2f64.sqrt()) / 2.0);
}

#[tokio::test]
async fn gauges_and_consumer_lag() {
    let (_dir, s) = store().await;
    let lag = eval(
        &s,
        "alert: A\nmeasure: consumer_lag\nwindow: 2m\nthreshold: 500",
    )
    .await;
    close(one(&lag), 9.0);
    let per_topic = eval(&s, "alert: A\nmeasure: consumer_lag\ngroup_by: [service, messaging.destination.name]\nwindow: 2m\nthreshold: 500").await;
    assert_eq!(per_topic.len(), 2);
    close(per_topic[0].value, 8.0);
    close(per_topic[1].value, 1.0);
    let max = eval(&s, "alert: A\nmeasure: metric\nmetric: { name: messaging.consumer.lag, aggregation: max }\nwindow: 2m\nthreshold: 0").await;
    close(one(&max), 8.0);
    let avg = eval(&s, "alert: A\nmeasure: metric\nmetric: { name: messaging.consumer.lag, aggregation: avg }\nwindow: 2m\nthreshold: 0").await;
    close(one(&avg), 4.25);
}

#[tokio::test]
async fn histogram_quantiles_from_bucket_increases() {
    let (_dir, s) = store().await;
    let q = |agg: &str| {
        format!(
            "alert: A\nmeasure: metric\nmetric: {{ name: http.server.request.duration, aggregation: {agg}, labels: {{ http.route: /orders }} }}\nwindow: 5m\nthreshold: 0"
        )
    };
    // 100 observations: rank 50 is 10 into the (0.5, 1] bucket of 50 → 0.6.
    close(one(&eval(&s, &q("p50")).await), 0.6);
    // rank 95 lands in +Inf → the highest finite bound.
    close(one(&eval(&s, &q("p95")).await), 1.0);
}

#[tokio::test]
async fn sql_rules_read_labels_and_value() {
    let (_dir, s) = store().await;
    let samples = eval(
        &s,
        "alert: A\nsql: SELECT service_name AS service, span_kind, count(*) AS value FROM spans GROUP BY 1, 2\nthreshold: 0",
    )
    .await;
    assert_eq!(samples.len(), 3, "{samples:?}");
    assert_eq!(samples[0].labels["service"], "payment");
    assert_eq!(samples[0].labels["span_kind"], "CONSUMER");
    close(samples[0].value, 11.0);
}

#[tokio::test]
async fn a_group_fires_alerts_and_counts_slo_events() {
    let (_dir, s) = store().await;
    let text = r#"
groups:
  - name: g
    rules:
      - alert: PaymentSlow
        service: payment
        span_kind: CONSUMER
        measure: latency_p95
        window: 1m
        threshold: 500ms
        severity: page
        annotations:
          summary: "{{ $labels.service }} {{ $labels.operation }} p95 {{ $value }}"
    slos:
      - name: payment-fast
        service: payment
        objective: 99
        period: 30d
        total: { span_kind: CONSUMER }
        good: { not_error: true, max_duration: 100ms }
"#;
    let group = parse("t.yaml", text).unwrap().groups.remove(0);
    let mut g = GroupState::new("t.yaml".into(), group);
    let changes = g.evaluate(&crate::spans::session(&s), now()).await;
    // for: 0 → firing at once, one series per operation.
    let slow: Vec<_> = changes
        .iter()
        .filter(|a| a.name() == "PaymentSlow")
        .collect();
    assert_eq!(slow.len(), 1, "{changes:?}");
    let alert = slow[0];
    assert_eq!(alert.state, vigil_store::alert::AlertState::Firing);
    assert_eq!(alert.labels["operation"], "process payments");
    assert_eq!(
        alert.annotations["summary"],
        "payment process payments p95 590.5ms"
    );
    let status = g.status();
    let slo = status.slos[0].status.as_ref().unwrap();
    // 11 payment CONSUMER spans in the period (10 recent, 1 at 90 s): bad are the two errors
    // and the 5 s one.
    assert_eq!((slo.events.total, slo.events.good), (11, 8));
    // Every window holds all 11 events: 3/11 bad against a 1% budget burns 27.27x, above
    // all four default thresholds, so both pages and both tickets fire.
    let burns: Vec<_> = changes
        .iter()
        .filter(|a| a.name() == "SLOBurnRate")
        .collect();
    assert_eq!(burns.len(), 4);
    for b in &burns {
        close(b.value.unwrap(), 3.0 / 11.0 / 0.01);
    }
    close(slo.error_budget_remaining, 1.0 - 3.0 / (0.01 * 11.0));
    // History rows go to the alerts table.
    let batch = vigil_store::alert::history::history_batch(&changes).unwrap();
    s.append(Signal::Alerts, batch).await.unwrap();
    let ctx = crate::spans::session(&s);
    let rows = ctx
        .query("SELECT alertname, state FROM alerts", 100)
        .await
        .unwrap()
        .batches;
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
}

fn anomaly(service: &str, operation: &str, end_ago: f64, score: f64) -> Anomaly {
    Anomaly {
        key: SeriesKey {
            service: service.into(),
            operation: operation.into(),
        },
        window: Window {
            start: ago(end_ago + 10.0),
            end: ago(end_ago),
        },
        score,
        detectors: vec!["baseline"],
        top_feature: Feature::LatencyP95,
        contributions: vec![(Feature::LatencyP95, 0.8), (Feature::LatencyP50, 0.2)],
        expected: vec![(Feature::LatencyP95, 0.16), (Feature::LatencyP50, 0.1)],
        observed: vec![(Feature::LatencyP95, 0.3125), (Feature::LatencyP50, 0.2)],
        trace_ids: vec!["t1".into(), "t2".into()],
    }
}

#[tokio::test]
async fn anomaly_rules_take_each_series_highest_score_in_the_window() {
    let (_dir, s) = store().await;
    let rows = [
        // Two windows of payment's consumer: the higher score is the value.
        anomaly("payment", "process payments", 2.0, 0.91),
        anomaly("payment", "process payments", 12.0, 0.97),
        // Service-wide series: no operation label.
        anomaly("payment", "", 2.0, 0.85),
        // Too old for a 20 s window.
        anomaly("shipping", "ship", 40.0, 0.99),
    ];
    s.append(Signal::Anomalies, anomalies_batch(&rows).unwrap())
        .await
        .unwrap();
    let samples = eval(&s, "alert: Odd\nkind: anomaly\nmin_score: 0.9").await;
    assert_eq!(samples.len(), 2, "{samples:?}");
    // Sorted by labels: `operation` comes before `service`.
    assert_eq!(samples[1].labels.len(), 1, "{samples:?}");
    close(samples[1].value, 0.85);
    assert_eq!(samples[0].labels["operation"], "process payments");
    close(samples[0].value, 0.97);
    let c = &samples[0].context;
    assert_eq!(c["top_feature"], "latency_p95");
    assert_eq!(c["observed"], "312.5ms");
    assert_eq!(c["expected"], "160ms");
    assert_eq!(c["trace_ids"], "t1,t2");
    // A group evaluates it into an alert: only the series at or above min_score, carrying
    // the context as annotations unless the rule writes its own.
    let text = "groups:\n  - name: g\n    rules:\n      - alert: Odd\n        kind: anomaly\n        service: payment\n        min_score: 0.9\n        annotations:\n          runbook: \"look at {{ $labels.service }}\"\n";
    let group = parse("t.yaml", text).unwrap().groups.remove(0);
    let mut g = GroupState::new("t.yaml".into(), group);
    let changes = g.evaluate(&crate::spans::session(&s), now()).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    let a = &changes[0];
    assert_eq!(a.state, vigil_store::alert::AlertState::Firing);
    assert_eq!(a.labels["operation"], "process payments");
    assert_eq!(a.annotations["runbook"], "look at payment");
    assert!(
        a.annotations["summary"].starts_with("payment process payments is anomalous (score 0.97)"),
        "{:?}",
        a.annotations
    );
    // Filtering by feature: none of these anomalies is led by the error rate.
    let none = eval(
        &s,
        "alert: Odd\nkind: anomaly\nmin_score: 0.5\nfeature: error_rate",
    )
    .await;
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn watched_metrics_are_series_of_their_own() {
    let (_dir, s) = store().await;
    let watched = WatchedMetric {
        name: "messaging.client.consumed.messages".into(),
        aggregation: Aggregation::Increase,
        labels: BTreeMap::from([("outcome".to_string(), "dead_lettered".to_string())]),
        group_by: vec!["messaging.destination.name".into()],
    };
    let window = Window::ending(now(), std::time::Duration::from_secs(300));
    let found = extract(&crate::spans::session(&s), window, &[watched])
        .await
        .unwrap();
    let metric: Vec<_> = found
        .iter()
        .filter(|o| o.key.operation.starts_with("metric "))
        .map(|o| (o.key.operation.as_str(), o.values))
        .collect();
    // The series without a destination rose by 6, the `stock` one by 5; nothing else is
    // measured on them.
    let value = |name: &str| {
        let (_, values) = metric.iter().find(|(n, _)| *n == name).unwrap();
        for f in Feature::ALL.into_iter().filter(|f| *f != Feature::Metric) {
            assert_eq!(values[f.index()], None, "{name} {f:?}");
        }
        values[Feature::Metric.index()].unwrap()
    };
    assert_eq!(metric.len(), 2, "{metric:?}");
    close(value("metric messaging.client.consumed.messages"), 6.0);
    close(
        value("metric messaging.client.consumed.messages{messaging.destination.name=stock}"),
        5.0,
    );
    assert!(
        found
            .iter()
            .filter(|o| o.key.operation.starts_with("metric "))
            .all(|o| o.key.service == "payment")
    );
}

#[tokio::test]
async fn each_partition_of_a_consumer_is_a_member_of_its_group() {
    let (_dir, s) = store().await;
    let window = Window::ending(now(), std::time::Duration::from_secs(300));
    let found = extract_partitions(&crate::spans::session(&s), window)
        .await
        .unwrap();
    let payment = SeriesKey {
        service: "payment".into(),
        operation: "process payments".into(),
    };
    let members: Vec<_> = found.iter().filter(|m| m.group == payment).collect();
    // Consumer spans 0..=10 of payment (the producer span is not a delivery): partition 0
    // has spans 0, 3, 6, 9 (9 an error), 1 has 1 (an error), 4, 7, 10, and 2 has 2, 5, 8.
    assert_eq!(members.len(), 3, "{found:?}");
    for (m, (count, errors)) in members.iter().zip([(4.0, 1.0), (4.0, 1.0), (3.0, 0.0)]) {
        let p = m.observation.key.operation.clone();
        assert!(
            p.starts_with("process payments{messaging.destination.partition.id="),
            "{p}"
        );
        let v = m.observation.values;
        close(v[Feature::RequestRate.index()].unwrap(), count / 300.0);
        close(v[Feature::ErrorRate.index()].unwrap(), errors / count);
        assert_eq!(m.observation.key.service, "payment");
    }
    assert_eq!(
        members[2].observation.key.operation,
        "process payments{messaging.destination.partition.id=2}"
    );
    // Shipping's one delivery is a group of its own.
    assert_eq!(found.len(), 4, "{found:?}");
}
