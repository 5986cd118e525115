//! Reading traces back from the real binary: the trace view's tree, self time and critical
//! path for the checkout fixture sent over OTLP/HTTP, links from a consumer's trace, paging,
//! trace search, and a Jaeger HTTP API client decoding Jaeger's documented JSON shape.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::otlp::{kv, now_ns, request};
use common::{Vigil, web};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, status};
use prost::Message;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct FixtureSpan {
    span_id: String,
    parent_span_id: String,
    service: String,
    kind: String,
    name: String,
    start_ms: u64,
    end_ms: u64,
}

#[derive(Deserialize)]
struct Expected {
    self_ms: HashMap<String, i64>,
    critical_path: Vec<(String, i64)>,
}

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const CONSUMER_TRACE_ID: &str = "6c9f0008a9149214e37ac744924fd71d";
const MS: u64 = 1_000_000;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn kind(name: &str) -> i32 {
    let kind = match name {
        "SERVER" => SpanKind::Server,
        "CLIENT" => SpanKind::Client,
        "PRODUCER" => SpanKind::Producer,
        "CONSUMER" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    kind as i32
}

/// The checkout fixture (starting 5 s ago) per service, plus shipping's consumer trace that
/// links to the `publish` span.
fn requests(t0: u64) -> Vec<(&'static str, Vec<u8>)> {
    let fixture: Vec<FixtureSpan> = serde_json::from_str(include_str!(
        "../dashboards/tests/fixtures/checkout_trace.json"
    ))
    .unwrap();
    let mut by_service: HashMap<String, Vec<Span>> = HashMap::new();
    for f in &fixture {
        let mut span = Span {
            trace_id: hex(TRACE_ID),
            span_id: hex(&f.span_id),
            parent_span_id: hex(&f.parent_span_id),
            name: f.name.clone(),
            kind: kind(&f.kind),
            start_time_unix_nano: t0 + f.start_ms * MS,
            end_time_unix_nano: t0 + f.end_ms * MS,
            attributes: vec![
                kv("messaging.destination.name", "orders"),
                kv("correlation_id", "order-7"),
            ],
            ..Default::default()
        };
        if f.name == "fraud check" {
            span.status = Some(Status {
                code: status::StatusCode::Error as i32,
                message: "score too high".into(),
            });
        }
        by_service.entry(f.service.clone()).or_default().push(span);
    }
    let consumer = Span {
        trace_id: hex(CONSUMER_TRACE_ID),
        span_id: hex("00000000000000d9"),
        name: "process order.created".into(),
        kind: kind("CONSUMER"),
        attributes: vec![kv("messaging.destination.name", "orders")],
        start_time_unix_nano: t0 + 300 * MS,
        end_time_unix_nano: t0 + 320 * MS,
        links: vec![Link {
            trace_id: hex(TRACE_ID),
            span_id: hex("00000000000000c2"),
            ..Default::default()
        }],
        ..Default::default()
    };
    by_service.insert("shipping".into(), vec![consumer]);
    by_service
        .into_iter()
        .map(|(service, spans)| ("/v1/traces", request(&service, spans).encode_to_vec()))
        .chain([("/v1/logs", log_request(t0))])
        .collect()
}

/// One warning from payment inside the checkout trace.
fn log_request(t0: u64) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "payment")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: t0 + 45 * MS,
                    severity_number: SeverityNumber::Warn as i32,
                    severity_text: "WARN".into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(
                            "Fraud score 0.97 above limit for order-7".into(),
                        )),
                    }),
                    trace_id: hex(TRACE_ID),
                    span_id: hex("00000000000000f1"),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn post(vigil: &Vigil, path: &str, body: Vec<u8>) {
    let url = format!("{}{path}", vigil.http);
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        });
    assert_eq!(status, 200);
}

fn get(vigil: &Vigil, path: &str) -> Value {
    let (status, body) = web::get_json(&format!("http://{}{path}", vigil.api));
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Jaeger's query API response envelope and trace model, as documented for its HTTP JSON API.
#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
    total: usize,
    errors: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerOperation {
    name: String,
    span_kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    spans: Vec<JaegerSpan>,
    processes: HashMap<String, JaegerProcess>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    operation_name: String,
    references: Vec<JaegerReference>,
    start_time: u64,
    duration: u64,
    tags: Vec<JaegerTag>,
    #[serde(rename = "processID")]
    process_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerReference {
    ref_type: String,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Deserialize)]
struct JaegerTag {
    key: String,
    #[serde(rename = "type")]
    kind: String,
    value: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerProcess {
    service_name: String,
}

fn jaeger<T: serde::de::DeserializeOwned>(vigil: &Vigil, path: &str) -> Envelope<T> {
    serde_json::from_value(get(vigil, path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn traces_read_back_as_trees_with_critical_paths_through_search_and_the_jaeger_api() {
    let dir = tempfile::tempdir().unwrap();
    let vigil = Vigil::start(dir.path(), &[]);
    let t0 = now_ns() - 5_000 * MS;
    for (path, body) in requests(t0) {
        post(&vigil, path, body);
    }
    let expected: Expected = serde_json::from_str(include_str!(
        "../dashboards/tests/fixtures/checkout_trace.expected.json"
    ))
    .unwrap();

    // The trace view: tree order, self time, critical path, links from the consumer.
    let view = get(&vigil, &format!("/api/v1/traces/{TRACE_ID}"));
    assert_eq!(view["span_count"], 7);
    assert_eq!(view["duration_ns"], 100 * MS);
    assert_eq!(view["error_count"], 1);
    assert_eq!(view["services"], serde_json::json!(["order", "payment"]));
    let spans = view["spans"].as_array().unwrap();
    assert_eq!(spans[0]["span_id"], "00000000000000a1");
    assert_eq!(spans[0]["depth"], 0);
    for s in spans {
        let id = s["span_id"].as_str().unwrap();
        assert_eq!(
            s["self_ns"].as_i64().unwrap(),
            expected.self_ms[id] * MS as i64,
            "self time of {id}"
        );
    }
    let path: Vec<(String, i64)> = view["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["span_id"].as_str().unwrap().to_string(),
                p["critical_ns"].as_i64().unwrap() / MS as i64,
            )
        })
        .collect();
    assert_eq!(path, expected.critical_path);
    assert_eq!(view["linked_from"][0]["trace_id"], CONSUMER_TRACE_ID);
    assert_eq!(view["linked_from"][0]["service_name"], "shipping");

    // Paging in tree order.
    let page = get(
        &vigil,
        &format!("/api/v1/traces/{TRACE_ID}?limit=3&offset=3"),
    );
    assert_eq!(page["spans"].as_array().unwrap().len(), 3);
    assert_eq!(page["spans"][0]["span_id"], "00000000000000d1");
    assert_eq!(page["next_offset"], 6);

    // Search: a slow payment span finds the trace, summarised by its root.
    let found = get(
        &vigil,
        "/api/v1/traces?service=payment&min_duration=30ms&limit=5",
    );
    let traces = found["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "{found}");
    assert_eq!(traces[0]["trace_id"], TRACE_ID);
    assert_eq!(traces[0]["root_operation"], "POST /orders");
    assert_eq!(traces[0]["span_count"], 7);
    assert_eq!(traces[0]["error_count"], 1);
    let none = get(&vigil, "/api/v1/traces?service=payment&min_duration=1s");
    assert!(none["traces"].as_array().unwrap().is_empty(), "{none}");
    let by_status = get(
        &vigil,
        "/api/v1/traces?status=error&attr.messaging.destination.name=orders",
    );
    assert_eq!(by_status["traces"][0]["trace_id"], TRACE_ID);
    let (status, refused) =
        web::get_json(&format!("http://{}/api/v1/traces?colour=red", vigil.api));
    assert_eq!(status, 400, "{refused}");

    // A Jaeger client: services, operations, one trace, a search.
    let services: Envelope<Vec<String>> = jaeger(&vigil, "/api/services");
    assert_eq!(services.data, ["order", "payment", "shipping"]);
    assert_eq!(services.total, 3);
    assert!(services.errors.is_none());
    let ops: Envelope<Vec<String>> = jaeger(&vigil, "/api/services/payment/operations");
    assert_eq!(ops.data, ["authorize", "card processor", "fraud check"]);
    let server_ops: Envelope<Vec<JaegerOperation>> =
        jaeger(&vigil, "/api/operations?service=payment&spanKind=server");
    assert_eq!(server_ops.data.len(), 1);
    assert_eq!(server_ops.data[0].name, "authorize");
    assert_eq!(server_ops.data[0].span_kind, "server");

    let trace: Envelope<Vec<JaegerTrace>> = jaeger(&vigil, &format!("/api/traces/{TRACE_ID}"));
    let t = &trace.data[0];
    assert_eq!(t.trace_id, TRACE_ID);
    assert_eq!(t.spans.len(), 7);
    let d1 = t
        .spans
        .iter()
        .find(|s| s.operation_name == "authorize")
        .unwrap();
    assert_eq!(d1.trace_id, TRACE_ID);
    assert_eq!(d1.span_id, "00000000000000d1");
    assert_eq!(d1.references[0].ref_type, "CHILD_OF");
    assert_eq!(d1.references[0].span_id, "00000000000000c1");
    assert_eq!(d1.start_time, (t0 + 25 * MS) / 1_000, "µs since the epoch");
    assert_eq!(d1.duration, 60_000, "µs");
    assert_eq!(t.processes[&d1.process_id].service_name, "payment");
    let kind_tag = d1.tags.iter().find(|t| t.key == "span.kind").unwrap();
    assert_eq!(
        (kind_tag.kind.as_str(), &kind_tag.value),
        ("string", &Value::from("server"))
    );
    let fraud = t
        .spans
        .iter()
        .find(|s| s.operation_name == "fraud check")
        .unwrap();
    assert!(
        fraud
            .tags
            .iter()
            .any(|t| t.key == "error" && t.value == Value::Bool(true))
    );

    let start_us = t0 / 1_000 - 60_000_000;
    let end_us = t0 / 1_000 + 60_000_000;
    let search: Envelope<Vec<JaegerTrace>> = jaeger(
        &vigil,
        &format!("/api/traces?service=shipping&start={start_us}&end={end_us}&limit=20&lookback=1h"),
    );
    assert_eq!(search.data.len(), 1);
    let consumer = &search.data[0].spans[0];
    assert_eq!(consumer.references[0].ref_type, "FOLLOWS_FROM");
    assert_eq!(consumer.references[0].trace_id, TRACE_ID);
    let slow: Envelope<Vec<JaegerTrace>> = jaeger(
        &vigil,
        &format!("/api/traces?service=payment&minDuration=55ms&start={start_us}&end={end_us}"),
    );
    assert_eq!(slow.data.len(), 1);

    // The transaction across the broker: the consumer's new trace found through its link.
    let tx = get(&vigil, "/api/v1/correlations/order-7");
    assert_eq!(
        tx["trace_ids"],
        serde_json::json!([TRACE_ID, CONSUMER_TRACE_ID])
    );
    assert_eq!(tx["span_count"], 8);
    assert_eq!(tx["hops"][0]["consumer_service"], "shipping");
    assert_eq!(
        tx["hops"][0]["queued_ns"],
        201 * MS,
        "consumer start − producer end"
    );
    assert_eq!(tx["hops"][0]["new_trace"], true);
    assert!(
        tx["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "log" && i["service_name"] == "payment")
    );

    // RED per service and operation.
    let red = get(&vigil, "/api/v1/services?service=payment");
    let payment = &red["services"][0];
    assert_eq!(payment["service"], "payment");
    assert_eq!(
        payment["figures"]["latency_p50"], 0.06,
        "authorize, its SERVER span"
    );
    let fraud = payment["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == "fraud check")
        .unwrap();
    assert_eq!(fraud["figures"]["error_rate"], 1.0);
    assert!(
        payment["previous"].is_null(),
        "nothing in the window before"
    );

    // The service map: the call and the messaging hop across traces.
    let map = get(&vigil, "/api/v1/service-map");
    let edges = map["edges"].as_array().unwrap();
    let edge = |caller: &str, callee: &str| {
        edges
            .iter()
            .find(|e| e["caller"] == caller && e["callee"] == callee)
            .unwrap_or_else(|| panic!("no edge {caller} → {callee} in {map}"))
    };
    assert_eq!(edge("order", "payment")["kind"], "call");
    assert_eq!(edge("order", "payment")["p50"], 0.06);
    assert_eq!(edge("order", "shipping")["kind"], "messaging");
    assert_eq!(edge("order", "shipping")["lag_p50"], 0.208);

    // Log search: words in any case, severity, the jump to the trace.
    let logs = get(
        &vigil,
        "/api/v1/logs?q=fraud%20LIMIT&severity=warn&service=payment",
    );
    assert_eq!(logs["logs"].as_array().unwrap().len(), 1, "{logs}");
    assert_eq!(
        logs["logs"][0]["trace_url"],
        format!("/api/v1/traces/{TRACE_ID}")
    );
    let quiet = get(&vigil, "/api/v1/logs?q=fraud&severity=error");
    assert!(quiet["logs"].as_array().unwrap().is_empty());

    // A walk through the pages sees one snapshot: a span arriving after the first page
    // shows from the next first page on, never in the middle of a walk.
    let first = get(&vigil, &format!("/api/v1/traces/{TRACE_ID}?limit=3"));
    assert_eq!(first["span_count"], 7);
    let late = Span {
        trace_id: hex(TRACE_ID),
        span_id: hex("00000000000000e1"),
        parent_span_id: hex("00000000000000a1"),
        name: "audit".into(),
        kind: kind("INTERNAL"),
        start_time_unix_nano: t0 + 90 * MS,
        end_time_unix_nano: t0 + 95 * MS,
        ..Default::default()
    };
    post(
        &vigil,
        "/v1/traces",
        request("audit", vec![late]).encode_to_vec(),
    );
    let later = get(
        &vigil,
        &format!("/api/v1/traces/{TRACE_ID}?limit=3&offset=3"),
    );
    assert_eq!(later["span_count"], 7, "the walk's snapshot");
    assert_eq!(later["spans"][0]["span_id"], "00000000000000d1");
    let again = get(&vigil, &format!("/api/v1/traces/{TRACE_ID}?limit=3"));
    assert_eq!(again["span_count"], 8, "a new walk reads the trace again");
}
