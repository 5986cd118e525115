//! What a request reserves before it is decoded (its wire size times its type's
//! `BYTES_PER_WIRE_BYTE`) covers what its handling really allocates: the wire bytes,
//! the decoded protobuf, the Arrow batch and the WAL record, measured with the allocator's
//! counters for payloads shaped like real exporters' and like the overload test's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::alloc::System;
use std::io::Write as _;
use std::process::Command;
use std::sync::Mutex;

use cap::Cap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use vigil_collector::convert::CorrelationIndex;
use vigil_collector::ingest::{ExportRequest, REPEATED_RESERVATION};
use vigil_store::encode_record;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", service),
            kv("service.version", "1.4.2"),
            kv("host.name", "node-3"),
            kv("telemetry.sdk.language", "rust"),
        ],
        ..Default::default()
    })
}

/// A resource as Kubernetes resource detectors describe a pod: 20 attributes.
fn k8s_resource() -> Option<Resource> {
    let names = [
        "service.name",
        "service.namespace",
        "service.version",
        "service.instance.id",
        "k8s.cluster.name",
        "k8s.namespace.name",
        "k8s.node.name",
        "k8s.pod.name",
        "k8s.pod.uid",
        "k8s.deployment.name",
        "k8s.replicaset.name",
        "k8s.container.name",
        "container.id",
        "container.image.name",
        "container.image.tag",
        "host.name",
        "host.arch",
        "os.type",
        "process.runtime.name",
        "telemetry.sdk.version",
    ];
    Some(Resource {
        attributes: names
            .iter()
            .map(|n| kv(n, &format!("{n}-7f9c4d5b8-x2x4q")))
            .collect(),
        ..Default::default()
    })
}

/// A request of `n` spans of service `checkout`, the `i`th with `attributes(i)` and `events(i)`.
fn spans(
    n: usize,
    attributes: impl Fn(u64) -> Vec<KeyValue>,
    events: impl Fn(u64) -> Vec<Event>,
) -> ExportTraceServiceRequest {
    let spans = (0..n as u64)
        .map(|i| Span {
            trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            parent_span_id: (i + 1_000_000).to_be_bytes().to_vec(),
            name: "GET /orders/{id}".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i,
            end_time_unix_nano: 1_700_000_000_050_000_000 + i,
            attributes: attributes(i),
            events: events(i),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("checkout"),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `n` spans as an instrumented HTTP service exports them: 20 short attributes and an event.
fn sdk_spans(n: usize) -> ExportTraceServiceRequest {
    spans(
        n,
        |i| {
            (0..20)
                .map(|a| {
                    kv(
                        &format!("app.attribute_{a}"),
                        &format!("value-{}", i * 31 + a),
                    )
                })
                .collect()
        },
        |i| {
            vec![Event {
                time_unix_nano: 1_700_000_000_010_000_000 + i,
                name: "cache miss".into(),
                attributes: vec![kv("cache.key", &format!("order:{i}"))],
                ..Default::default()
            }]
        },
    )
}

/// `n` spans with one 400-byte attribute each, as the overload test sends.
fn padded_spans(n: usize) -> ExportTraceServiceRequest {
    spans(n, |_| vec![kv("padding", &"7".repeat(400))], |_| Vec::new())
}

/// `n` log records with a sentence of body, a trace context and five attributes.
fn sdk_logs(n: usize) -> ExportLogsServiceRequest {
    let log_records = (0..n as u64)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(Value::StringValue(format!(
                    "reserved stock for order {i} in warehouse {} after {} ms",
                    i % 7,
                    i % 100
                ))),
            }),
            attributes: (0..5)
                .map(|a| kv(&format!("app.field_{a}"), &format!("v{}", i + a)))
                .collect(),
            trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("inventory"),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Decodes, converts and encodes as a WAL record one request of `wire` bytes, with its
/// reservation as the allocation limit (beyond it an allocation fails and the test aborts),
/// and returns the reservation and the most bytes allocated at once, the wire bytes
/// included (a transport's buffer may hold them throughout).
fn handle<R: ExportRequest>(what: &str, wire: &[u8]) -> (usize, usize) {
    let index = Mutex::new(CorrelationIndex::new(200_000));
    let base = ALLOC.allocated() - wire.len();
    // Admission reserves from the wire size; decoded, the request's repeated bytes are
    // reserved too before it is converted.
    let mut reserved = wire.len() * R::BYTES_PER_WIRE_BYTE;
    ALLOC.set_limit(base + reserved).unwrap();
    let decoded = R::decode(wire).unwrap();
    reserved += REPEATED_RESERVATION * decoded.repeated_bytes();
    eprintln!("{what}: {} wire bytes, {reserved} reserved", wire.len());
    ALLOC.set_limit(base + reserved).unwrap();
    let batch = decoded.convert(&index).unwrap().batch.unwrap();
    drop(decoded);
    let record = encode_record(R::SIGNAL, &batch).unwrap();
    drop((record, batch));
    ALLOC.set_limit(usize::MAX).unwrap();
    (reserved, ALLOC.max_allocated() - base)
}

/// `n` gauge points of one metric, each with three attributes, as a host metrics exporter
/// sends them, under `resource`.
fn sdk_gauge(n: usize, resource: Option<Resource>) -> ExportMetricsServiceRequest {
    let data_points = (0..n as u64)
        .map(|i| NumberDataPoint {
            time_unix_nano: 1_700_000_000_000_000_000 + i,
            value: Some(number_data_point::Value::AsDouble(i as f64 * 0.5)),
            attributes: vec![
                kv("cpu", &(i % 64).to_string()),
                kv("state", "user"),
                kv("host.name", &format!("node-{}", i / 64)),
            ],
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource,
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "system.cpu.utilization".into(),
                    unit: "1".into(),
                    data: Some(metric::Data::Gauge(Gauge { data_points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Names the request a child process measures.
const CASE: &str = "VIGIL_RESERVATION_CASE";
const TEST: &str = "a_request_reserves_at_least_what_its_handling_allocates";

/// Encodes `req`, drops it, and handles its wire bytes: the wire size and [`handle`]'s figures.
fn encoded_and_handled<R: ExportRequest>(case: &str, req: R) -> (usize, (usize, usize)) {
    let wire = req.encode_to_vec();
    drop(req);
    let figures = handle::<R>(case, &wire);
    (wire.len(), figures)
}

/// Measures the request `case` names. Only its wire bytes are kept, so building it leaves
/// no peak above what handling it takes.
fn measure(case: &str) {
    let (wire, (reserved, peak)) = match case {
        "1000 SDK log records" => encoded_and_handled(case, sdk_logs(1000)),
        "512 SDK spans" => encoded_and_handled(case, sdk_spans(512)),
        "5000 gauge points" => encoded_and_handled(case, sdk_gauge(5000, resource("host-agent"))),
        "5000 gauge points of a pod" => encoded_and_handled(case, sdk_gauge(5000, k8s_resource())),
        "2000 padded spans" => encoded_and_handled(case, padded_spans(2000)),
        other => panic!("unknown case {other}"),
    };
    eprintln!(
        "{case}: {peak} bytes at most ({:.1} per wire byte), {reserved} reserved ({:.0} per wire byte)",
        peak as f64 / wire as f64,
        reserved as f64 / wire as f64
    );
    assert!(
        peak <= reserved,
        "{case}: {peak} bytes used, {reserved} reserved"
    );
}

#[test]
fn a_request_reserves_at_least_what_its_handling_allocates() {
    if let Ok(case) = std::env::var(CASE) {
        return measure(&case);
    }
    // The allocator's peak cannot be reset: each request is measured in a process of its own.
    for case in [
        "1000 SDK log records",
        "512 SDK spans",
        "5000 gauge points",
        "5000 gauge points of a pod",
        "2000 padded spans",
    ] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CASE, case)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Written past the test harness's capture, so every run shows the figures.
        let _ = std::io::stderr().write_all(stderr.as_bytes());
        assert!(out.status.success(), "{case}: {stderr}");
    }
}
