//! The real OpenTelemetry Rust SDK (`opentelemetry-otlp`, gRPC and HTTP/protobuf) exports
//! spans, logs and metrics to the running binary; SQL and the trace API return exactly that.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::{Vigil, web};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

#[derive(Clone, Copy, Debug)]
enum Wire {
    Grpc,
    HttpProtobuf,
}

struct Sent {
    service: String,
    trace_id: String,
    root_span_id: String,
    child_span_id: String,
}

const SPANS_PER_TRACE: usize = 2;
const TRACES: usize = 5;

/// Sends TRACES traces of a root and a child span, one log per child, and three metrics.
async fn send(vigil: &Vigil, wire: Wire) -> Sent {
    let service = format!("rust-sdk-{wire:?}").to_lowercase();
    let resource = Resource::builder()
        .with_service_name(service.clone())
        .with_attribute(KeyValue::new("deployment.environment", "test"))
        .build();
    let (spans, logs, metrics) = match wire {
        Wire::Grpc => (
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&vigil.grpc)
                .build()
                .unwrap(),
            LogExporter::builder()
                .with_tonic()
                .with_endpoint(&vigil.grpc)
                .build()
                .unwrap(),
            MetricExporter::builder()
                .with_tonic()
                .with_endpoint(&vigil.grpc)
                .build()
                .unwrap(),
        ),
        Wire::HttpProtobuf => (
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", vigil.http))
                .build()
                .unwrap(),
            LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/logs", vigil.http))
                .build()
                .unwrap(),
            MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/metrics", vigil.http))
                .build()
                .unwrap(),
        ),
    };
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_batch_exporter(logs)
        .with_resource(resource.clone())
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics)
        .with_resource(resource)
        .build();

    let tracer = tracer_provider.tracer("vigil-e2e");
    let logger = logger_provider.logger("vigil-e2e");
    let meter = meter_provider.meter("vigil-e2e");
    let mut sent = None;
    for i in 0..TRACES {
        let mut root = tracer
            .span_builder("POST /orders")
            .with_kind(SpanKind::Server)
            .with_attributes(vec![
                KeyValue::new("correlation_id", format!("order-{i}")),
                KeyValue::new("http.route", "/orders"),
                KeyValue::new("order.items", 3i64),
            ])
            .start(&tracer);
        root.add_event("validated", vec![KeyValue::new("rule", "stock")]);
        let root_cx = Context::current_with_span(root);
        let mut child = tracer
            .span_builder("charge card")
            .with_kind(SpanKind::Client)
            .start_with_context(&tracer, &root_cx);
        let child_sc = child.span_context().clone();
        let mut record = logger.create_log_record();
        record.set_body(format!("charged order-{i}").into());
        record.set_severity_number(Severity::Warn);
        record.set_severity_text("WARN");
        record.add_attribute("payment.provider", "acme");
        record.set_trace_context(
            child_sc.trace_id(),
            child_sc.span_id(),
            Some(child_sc.trace_flags()),
        );
        logger.emit(record);
        child.set_status(opentelemetry::trace::Status::error("card declined"));
        child.end();
        let root_sc = root_cx.span().span_context().clone();
        root_cx.span().end();
        if i == 0 {
            sent = Some(Sent {
                service: service.clone(),
                trace_id: root_sc.trace_id().to_string(),
                root_span_id: root_sc.span_id().to_string(),
                child_span_id: child_sc.span_id().to_string(),
            });
        }
    }
    let counter = meter
        .u64_counter("orders_placed")
        .with_unit("{order}")
        .build();
    counter.add(3, &[KeyValue::new("region", "eu")]);
    counter.add(4, &[KeyValue::new("region", "eu")]);
    let gauge = meter.f64_gauge("queue_depth").build();
    gauge.record(7.5, &[KeyValue::new("queue", "payments")]);
    let histogram = meter
        .f64_histogram("checkout_latency")
        .with_unit("ms")
        .with_boundaries(vec![10.0, 100.0, 1000.0])
        .build();
    for v in [5.0, 15.0, 15.0, 250.0] {
        histogram.record(v, &[]);
    }

    tokio::task::spawn_blocking(move || {
        tracer_provider.shutdown().expect("flush spans");
        logger_provider.shutdown().expect("flush logs");
        meter_provider.shutdown().expect("flush metrics");
    })
    .await
    .unwrap();
    sent.unwrap()
}

fn check(vigil: &Vigil, sent: &Sent) {
    let svc = &sent.service;
    assert_eq!(
        vigil.count(&format!(
            "SELECT count(*) FROM spans WHERE service_name = '{svc}'"
        )),
        (TRACES * SPANS_PER_TRACE) as u64
    );
    assert_eq!(
        vigil.count(&format!(
            "SELECT count(DISTINCT trace_id) FROM spans WHERE service_name = '{svc}'"
        )),
        TRACES as u64
    );

    let root = vigil.sql(&format!(
        "SELECT span_name, span_kind, parent_span_id, attributes['http.route'], attributes['order.items'], correlation_id, \
         resource_attributes['deployment.environment'], events, scope_name, status_code \
         FROM spans WHERE trace_id = '{}' AND span_id = '{}'",
        sent.trace_id, sent.root_span_id
    ));
    let row = &root["rows"][0];
    assert_eq!(row[0], "POST /orders");
    assert_eq!(row[1], "SERVER");
    assert_eq!(row[2], "");
    assert_eq!(row[3], "/orders");
    assert_eq!(row[4], "3");
    assert_eq!(row[5], "order-0");
    assert_eq!(row[6], "test");
    assert!(
        row[7].as_str().unwrap().contains("\"validated\""),
        "{}",
        row[7]
    );
    assert_eq!(row[8], "vigil-e2e");
    assert_eq!(row[9], "UNSET");

    let child = vigil.sql(&format!(
        "SELECT parent_span_id, span_kind, status_code, status_message, correlation_id FROM spans WHERE span_id = '{}'",
        sent.child_span_id
    ));
    let row = &child["rows"][0];
    assert_eq!(row[0], sent.root_span_id.as_str());
    assert_eq!(row[1], "CLIENT");
    assert_eq!(row[2], "ERROR");
    assert_eq!(row[3], "card declined");
    assert_eq!(
        row[4], "order-0",
        "the child inherits its parent's correlation id"
    );

    assert_eq!(
        vigil.count(&format!(
            "SELECT count(*) FROM logs WHERE service_name = '{svc}'"
        )),
        TRACES as u64
    );
    let log = vigil.sql(&format!(
        "SELECT body, severity_number, severity_text, span_id, attributes['payment.provider'], correlation_id FROM logs WHERE trace_id = '{}'",
        sent.trace_id
    ));
    let row = &log["rows"][0];
    assert_eq!(row[0], "charged order-0");
    assert_eq!(row[1], 13);
    assert_eq!(row[2], "WARN");
    assert_eq!(row[3], sent.child_span_id.as_str());
    assert_eq!(row[4], "acme");
    assert_eq!(
        row[5], "order-0",
        "a log inherits the correlation id of its span"
    );

    let latest = |name: &str, cols: &str| {
        vigil.sql(&format!(
            "SELECT {cols} FROM metrics WHERE service_name = '{svc}' AND metric_name = '{name}' ORDER BY time DESC LIMIT 1"
        ))["rows"][0]
            .clone()
    };
    let counter = latest(
        "orders_placed",
        "metric_type, value, is_monotonic, temporality, unit, attributes['region']",
    );
    assert_eq!(
        counter,
        serde_json::json!(["sum", 7.0, true, "CUMULATIVE", "{order}", "eu"])
    );
    let gauge = latest("queue_depth", "metric_type, value, attributes['queue']");
    assert_eq!(gauge, serde_json::json!(["gauge", 7.5, "payments"]));
    let hist = latest(
        "checkout_latency",
        "metric_type, count, sum, min, max, bucket_counts, explicit_bounds, unit",
    );
    assert_eq!(
        hist,
        serde_json::json!([
            "histogram",
            4,
            285.0,
            5.0,
            250.0,
            [1, 2, 1, 0],
            [10.0, 100.0, 1000.0],
            "ms"
        ])
    );

    let (status, trace) = web::get_json(&format!(
        "http://{}/api/v1/traces/{}",
        vigil.api, sent.trace_id
    ));
    assert_eq!(status, 200, "{trace}");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), SPANS_PER_TRACE);
    assert_eq!(
        spans[0]["span_id"],
        sent.root_span_id.as_str(),
        "the root comes first"
    );
    assert_eq!(spans[1]["depth"], 1);
    assert_eq!(trace["logs"].as_array().unwrap().len(), 1);
    assert_eq!(trace["logs"][0]["body"], "charged order-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_exports_over_grpc_and_http_protobuf_are_stored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let vigil = tokio::task::block_in_place(|| Vigil::start(dir.path(), &[]));
    let mut sent = Vec::new();
    for wire in [Wire::Grpc, Wire::HttpProtobuf] {
        let s = send(&vigil, wire).await;
        tokio::task::block_in_place(|| check(&vigil, &s));
        sent.push(s);
    }
    // The same answers after a clean stop moved everything from the tail to Parquet.
    tokio::task::block_in_place(|| vigil.stop());
    let parquet_files = walk(&dir.path().join("parquet"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert!(
        parquet_files >= 3,
        "a clean stop flushes every signal to Parquet; found {parquet_files} files"
    );
    let vigil = tokio::task::block_in_place(|| Vigil::start(dir.path(), &[]));
    for s in &sent {
        tokio::task::block_in_place(|| check(&vigil, s));
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
