//! Hand-built OTLP requests for tests that need exact control over ids and sizes.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as AnyV};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(AnyV::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

pub fn span(trace_id: Vec<u8>, span_id: Vec<u8>, name: &str) -> Span {
    let now = now_ns();
    Span {
        trace_id,
        span_id,
        name: name.into(),
        start_time_unix_nano: now,
        end_time_unix_nano: now + 1000,
        ..Default::default()
    }
}

pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `n` spans with unique ids, each tagged `batch = <batch>` and padded with `padding` bytes of attributes.
pub fn tagged_request(
    service: &str,
    batch: u64,
    n: usize,
    padding: usize,
) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| {
            let id = batch * 1_000_000 + i as u64 + 1;
            let mut trace_id = vec![0u8; 8];
            trace_id.extend(id.to_be_bytes());
            let mut s = span(trace_id, id.to_be_bytes().to_vec(), "tagged");
            s.attributes.push(kv("batch", &batch.to_string()));
            if padding > 0 {
                s.attributes
                    .push(kv("padding", &format!("{id:0>width$}", width = padding)));
            }
            s
        })
        .collect();
    request(service, spans)
}
