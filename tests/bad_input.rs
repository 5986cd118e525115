//! Bad input gets the documented status and a message saying what is wrong; the server stays up
//! and what it accepted earlier is intact.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::io::Write;

use common::Vigil;
use common::otlp::{request, span};
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::{Value, json};

const MIB: usize = 1 << 20;

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let mut req = reqwest::Client::new().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("POST");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Reply {
        status: r.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vigil = tokio::task::block_in_place(|| Vigil::start(dir.path(), &[]));
    let traces = format!("{}/v1/traces", vigil.http);
    let pb = [("content-type", "application/x-protobuf")];
    let js = [("content-type", "application/json")];

    // Data accepted before the bad requests.
    let good = request(
        "before",
        (1..=10u8)
            .map(|i| span(vec![i; 16], vec![i; 8], "ok"))
            .collect(),
    );
    let r = post(&traces, &pb, good.encode_to_vec()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/x-protobuf");

    // Malformed protobuf.
    let r = post(&traces, &pb, vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type, "application/x-protobuf");
    let status = tonic_types::pb::Status::decode(&r.body[..]).expect("a google.rpc.Status body");
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
    assert!(
        status.message.contains("malformed protobuf"),
        "{}",
        status.message
    );

    // Invalid JSON, with where it broke.
    let r = post(
        &traces,
        &js,
        br#"{"resourceSpans": [ {"resource": 12 ]}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["code"], 3);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("invalid OTLP JSON")
            && body["message"].as_str().unwrap().contains("column"),
        "{body}"
    );

    // Wrong content type, and none at all.
    let r = post(
        &traces,
        &[("content-type", "text/plain")],
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(r.text().contains("text/plain"), "{}", r.text());
    let r = post(&traces, &[], good.encode_to_vec()).await;
    assert_eq!(r.status, 415);

    // A gzip bomb: 64 MiB of zeros in a few KiB.
    let bomb = gzip(&vec![0u8; 64 * MIB]);
    assert!(bomb.len() < MIB);
    let r = post(&traces, &[pb[0], ("content-encoding", "gzip")], bomb).await;
    assert_eq!(r.status, 413);
    let status = tonic_types::pb::Status::decode(&r.body[..]).unwrap();
    assert!(
        status
            .message
            .contains("decompressed request body is larger than the 16777216-byte limit"),
        "{}",
        status.message
    );

    // Corrupt gzip.
    let r = post(
        &traces,
        &[js[0], ("content-encoding", "gzip")],
        b"not gzip at all".to_vec(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("invalid gzip"),
        "{}",
        r.text()
    );

    // Oversize body.
    let r = post(&traces, &pb, vec![0u8; 17 * MIB]).await;
    assert_eq!(r.status, 413);

    // Ids of the wrong length: those spans are rejected (partial success), the valid one is kept.
    let mixed = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "mixed"}}]},
    "scopeSpans": [{"spans": [
        {"traceId": "0102030405060708090a0b0c0d0e0f", "spanId": "0102030405060708", "name": "short trace id", "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
        {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "01020304050607", "name": "short span id", "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
        {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708", "name": "fine", "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000001000"}
    ]}]}]});
    let r = post(&traces, &js, mixed.to_string().into_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let partial = &r.json()["partialSuccess"];
    assert_eq!(
        partial["rejectedSpans"]
            .as_i64()
            .or_else(|| partial["rejectedSpans"].as_str()?.parse().ok()),
        Some(2),
        "{partial}"
    );
    let msg = partial["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("trace_id must be 16 bytes") && msg.contains("span_id must be 8 bytes"),
        "{msg}"
    );

    // The same over gRPC.
    let mut grpc = TraceServiceClient::connect(vigil.grpc.clone())
        .await
        .unwrap();
    let reply = grpc
        .export(request(
            "grpc-mixed",
            vec![
                span(vec![1; 15], vec![1; 8], "bad"),
                span(vec![3; 16], vec![3; 8], "good"),
            ],
        ))
        .await
        .unwrap();
    let partial = reply.into_inner().partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace_id must be 16 bytes"),
        "{}",
        partial.error_message
    );
    let err = grpc
        .export(request(
            "too-big",
            vec![span(vec![4; 16], vec![4; 8], &"x".repeat(17 * MIB))],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");

    // Empty requests are fine and store nothing.
    assert_eq!(post(&traces, &pb, vec![]).await.status, 200);
    assert_eq!(post(&traces, &js, b"{}".to_vec()).await.status, 200);
    assert_eq!(post(&traces, &js, vec![]).await.status, 200);
    assert!(
        grpc.export(ExportTraceServiceRequest::default())
            .await
            .is_ok()
    );

    tokio::task::block_in_place(|| {
        assert_eq!(
            common::web::get_status(&format!("http://{}/readyz", vigil.api)).unwrap(),
            200
        );
        assert_eq!(
            vigil.count("SELECT count(*) FROM spans WHERE service_name = 'before'"),
            10
        );
        assert_eq!(
            vigil.count("SELECT count(*) FROM spans WHERE service_name = 'mixed'"),
            1
        );
        assert_eq!(
            vigil.count("SELECT count(*) FROM spans WHERE service_name = 'grpc-mixed'"),
            1
        );
        assert_eq!(vigil.count("SELECT count(*) FROM spans"), 12);
        let (_, metrics) = common::web::get_text(&format!("http://{}/metrics", vigil.api));
        assert!(metrics.contains("vigil_ingest_requests_refused_total{signal=\"spans\",transport=\"http\",reason=\"too_large\"} 2"), "{metrics}");
        assert!(
            metrics.contains(
                "vigil_ingest_items_rejected_total{signal=\"spans\",transport=\"http\"} 2"
            )
        );
    });
}
