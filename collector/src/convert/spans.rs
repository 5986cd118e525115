//! Trace export requests → rows of the `spans` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Builder, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
};
use arrow::error::ArrowError;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use vigil_store::query::{SpanKind as Stored, StatusCode as StoredStatus};
use vigil_store::{Signal, schema::schema};

use super::Converted;
use super::common::{CommonColumns, Origin, RowKey, nanos, strings};
use super::correlation::{self, CorrelationIndex};
use super::ids::hex_id;
use super::json;

struct Ids {
    trace: String,
    span: String,
    parent: String,
}

fn ids(span: &Span) -> Result<Ids, String> {
    let trace = hex_id(&span.trace_id, 16, "trace_id", true)?;
    let span_hex = hex_id(&span.span_id, 8, "span_id", true)?;
    let parent = hex_id(&span.parent_span_id, 8, "parent_span_id", false)?;
    Ok(Ids {
        trace,
        span: span_hex,
        parent,
    })
}

fn kind_name(kind: i32) -> &'static str {
    let stored = match SpanKind::try_from(kind).unwrap_or(SpanKind::Unspecified) {
        SpanKind::Unspecified => Stored::Unspecified,
        SpanKind::Internal => Stored::Internal,
        SpanKind::Server => Stored::Server,
        SpanKind::Client => Stored::Client,
        SpanKind::Producer => Stored::Producer,
        SpanKind::Consumer => Stored::Consumer,
    };
    stored.as_str()
}

fn status_name(code: i32) -> &'static str {
    let stored = match StatusCode::try_from(code).unwrap_or(StatusCode::Unset) {
        StatusCode::Unset => StoredStatus::Unset,
        StatusCode::Ok => StoredStatus::Ok,
        StatusCode::Error => StoredStatus::Error,
    };
    stored.as_str()
}

/// Writes the span's events as a JSON array.
fn events_json(out: &mut String, span: &Span) {
    json::array(out, &span.events, |out, e| {
        let mut o = json::Object::begin(out);
        o.uint("time_unix_nano", e.time_unix_nano)
            .str("name", &e.name)
            .attributes("attributes", &e.attributes)
            .uint(
                "dropped_attributes_count",
                u64::from(e.dropped_attributes_count),
            );
        o.end();
    });
}

/// Writes the span's links as a JSON array.
fn links_json(out: &mut String, span: &Span) {
    json::array(out, &span.links, |out, l| {
        let mut o = json::Object::begin(out);
        o.id("trace_id", &l.trace_id)
            .id("span_id", &l.span_id)
            .str("trace_state", &l.trace_state)
            .attributes("attributes", &l.attributes)
            .uint("flags", u64::from(l.flags))
            .uint(
                "dropped_attributes_count",
                u64::from(l.dropped_attributes_count),
            );
        o.end();
    });
}

struct SpanColumns {
    common: CommonColumns,
    end_time: TimestampNanosecondBuilder,
    duration: Int64Builder,
    parent: StringBuilder,
    name: StringBuilder,
    kind: StringBuilder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    events: StringBuilder,
    links: StringBuilder,
    dropped_attributes: UInt32Builder,
    dropped_events: UInt32Builder,
    dropped_links: UInt32Builder,
    /// Reused buffer for the JSON columns.
    scratch: String,
}

impl SpanColumns {
    fn with_capacity(rows: usize, attributes: usize) -> Self {
        SpanColumns {
            common: CommonColumns::with_capacity(rows, attributes),
            end_time: TimestampNanosecondBuilder::with_capacity(rows),
            duration: Int64Builder::with_capacity(rows),
            parent: strings(rows, 16),
            name: strings(rows, 24),
            kind: strings(rows, 8),
            status_code: strings(rows, 5),
            status_message: strings(rows, 0),
            trace_state: strings(rows, 0),
            flags: UInt32Builder::with_capacity(rows),
            events: strings(rows, 2),
            links: strings(rows, 2),
            dropped_attributes: UInt32Builder::with_capacity(rows),
            dropped_events: UInt32Builder::with_capacity(rows),
            dropped_links: UInt32Builder::with_capacity(rows),
            scratch: String::new(),
        }
    }

    fn push(&mut self, origin: &Origin, span: &Span, ids: &Ids, cid: Option<&str>) {
        let start = nanos(span.start_time_unix_nano);
        let end = nanos(span.end_time_unix_nano);
        let key = RowKey {
            time: start,
            trace_id: &ids.trace,
            span_id: &ids.span,
            correlation_id: cid,
        };
        self.common.push(origin, key, &span.attributes);
        self.end_time.append_value(end);
        self.duration.append_value(end.saturating_sub(start).max(0));
        self.parent.append_value(&ids.parent);
        self.name.append_value(&span.name);
        self.kind.append_value(kind_name(span.kind));
        let status = span.status.as_ref();
        self.status_code
            .append_value(status_name(status.map_or(0, |s| s.code)));
        self.status_message
            .append_value(status.map_or("", |s| s.message.as_str()));
        self.trace_state.append_value(&span.trace_state);
        self.flags.append_value(span.flags);
        self.scratch.clear();
        events_json(&mut self.scratch, span);
        self.events.append_value(&self.scratch);
        self.scratch.clear();
        links_json(&mut self.scratch, span);
        self.links.append_value(&self.scratch);
        self.dropped_attributes
            .append_value(span.dropped_attributes_count);
        self.dropped_events.append_value(span.dropped_events_count);
        self.dropped_links.append_value(span.dropped_links_count);
    }

    fn finish(mut self) -> Result<arrow::array::RecordBatch, ArrowError> {
        let middle: Vec<ArrayRef> = vec![
            Arc::new(self.end_time.with_timezone("UTC").finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.events.finish()),
            Arc::new(self.links.finish()),
            Arc::new(self.dropped_attributes.finish()),
            Arc::new(self.dropped_events.finish()),
            Arc::new(self.dropped_links.finish()),
        ];
        self.common.finish(schema(Signal::Spans), middle)
    }
}

/// The correlation id of a span: its own (`own`), else its parent's, a linked span's, or its trace's.
fn resolve(
    span: &Span,
    ids: &Ids,
    own: Option<&str>,
    index: &CorrelationIndex,
) -> Option<Arc<str>> {
    if let Some(own) = own {
        return Some(Arc::from(own));
    }
    index
        .span(&ids.parent)
        .or_else(|| {
            span.links
                .iter()
                .find_map(|l| index.span(&hex_id(&l.span_id, 8, "", false).ok()?))
        })
        .or_else(|| index.trace(&ids.trace))
}

/// Converts a trace export request, learning and applying correlation ids through `index`.
pub fn convert_traces(
    req: &ExportTraceServiceRequest,
    index: &mut CorrelationIndex,
) -> Result<Converted, ArrowError> {
    let mut out = Converted::default();
    // Pass 1: validate, and learn the correlation ids spans state themselves, so a child
    // exported in the same request as its parent inherits regardless of order.
    let mut valid: Vec<Option<(Ids, Option<&str>)>> = Vec::new();
    let mut attributes = 0;
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                out.received += 1;
                attributes += span.attributes.len();
                match ids(span) {
                    Ok(ids) => {
                        let own = correlation::explicit(&span.attributes);
                        if let Some(cid) = own {
                            index.remember(&ids.trace, &ids.span, &Arc::from(cid));
                        }
                        valid.push(Some((ids, own)));
                    }
                    Err(reason) => {
                        out.reject(format!("span {:?}: {reason}", span.name));
                        valid.push(None);
                    }
                }
            }
        }
    }
    // Pass 2: resolve inheritance and build rows.
    let mut cols = SpanColumns::with_capacity(valid.len(), attributes);
    let mut valid = valid.into_iter();
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            let origin = Origin::new(
                rs.resource.as_ref(),
                &rs.schema_url,
                ss.scope.as_ref(),
                &ss.schema_url,
            );
            for span in &ss.spans {
                let Some(Some((ids, own))) = valid.next() else {
                    continue;
                };
                let cid = resolve(span, &ids, own, index);
                if let Some(cid) = &cid {
                    index.remember(&ids.trace, &ids.span, cid);
                }
                cols.push(&origin, span, &ids, cid.as_deref());
            }
        }
    }
    if !cols.common.is_empty() {
        out.batch = Some(cols.finish()?);
    }
    Ok(out)
}
