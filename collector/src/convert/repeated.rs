//! How many bytes conversion writes again on every row: a request's resource and scope, and
//! for metrics each metric's name, description and unit.
//!
//! The protobuf encoding carries them once per group; the store's tables repeat them on each
//! row, so a request of many small items under a rich resource (Kubernetes resource
//! attributes on every metric point) converts to many times its wire size. Admission adds
//! this to a request's reservation before converting it.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric::Data};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// Arrow's per-entry cost of a map entry or string beyond its bytes (offsets, validity).
const ENTRY_OVERHEAD: usize = 16;

fn attributes(attrs: &[KeyValue]) -> usize {
    attrs
        .iter()
        .map(|kv| kv.encoded_len() + ENTRY_OVERHEAD)
        .sum()
}

fn resource(r: Option<&Resource>, schema_url: &str) -> usize {
    r.map_or(0, |r| attributes(&r.attributes)) + schema_url.len()
}

fn scope(s: Option<&InstrumentationScope>, schema_url: &str) -> usize {
    s.map_or(0, |s| {
        s.name.len() + s.version.len() + attributes(&s.attributes)
    }) + schema_url.len()
}

fn points(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// Bytes the rows of `req` repeat from their resource and scope.
pub fn traces(req: &ExportTraceServiceRequest) -> usize {
    let mut total = 0usize;
    for rs in &req.resource_spans {
        let res = resource(rs.resource.as_ref(), &rs.schema_url);
        for ss in &rs.scope_spans {
            let per_row = res + scope(ss.scope.as_ref(), &ss.schema_url);
            total = total.saturating_add(ss.spans.len().saturating_mul(per_row));
        }
    }
    total
}

/// Bytes the rows of `req` repeat from their resource and scope.
pub fn logs(req: &ExportLogsServiceRequest) -> usize {
    let mut total = 0usize;
    for rl in &req.resource_logs {
        let res = resource(rl.resource.as_ref(), &rl.schema_url);
        for sl in &rl.scope_logs {
            let per_row = res + scope(sl.scope.as_ref(), &sl.schema_url);
            total = total.saturating_add(sl.log_records.len().saturating_mul(per_row));
        }
    }
    total
}

/// Bytes the rows of `req` repeat from their resource, scope and metric.
pub fn metrics(req: &ExportMetricsServiceRequest) -> usize {
    let mut total = 0usize;
    for rm in &req.resource_metrics {
        let res = resource(rm.resource.as_ref(), &rm.schema_url);
        for sm in &rm.scope_metrics {
            let sc = scope(sm.scope.as_ref(), &sm.schema_url);
            for m in &sm.metrics {
                let per_row = res
                    + sc
                    + m.name.len()
                    + m.description.len()
                    + m.unit.len()
                    + 3 * ENTRY_OVERHEAD;
                total = total.saturating_add(points(m).saturating_mul(per_row));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_row_counts_its_resource_and_scope_once() {
        let resource_attrs = vec![kv("service.name", "checkout"), kv("k8s.pod.name", "pod-1")];
        let per_row = attributes(&resource_attrs) + "lib".len();
        let group = |spans: usize| ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "lib".into(),
                ..Default::default()
            }),
            spans: vec![Span::default(); spans],
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource_attrs,
                    ..Default::default()
                }),
                scope_spans: vec![group(3), group(2)],
                ..Default::default()
            }],
        };
        assert_eq!(traces(&req), 5 * per_row);
        assert_eq!(traces(&ExportTraceServiceRequest::default()), 0);
    }
}
