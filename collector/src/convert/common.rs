//! Builders for the columns every table shares: time, service, ids, correlation, attributes, scope.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, MapBuilder, RecordBatch, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::values::{append_text, attributes_text, find_str};

/// Service name used when a resource has no `service.name`, as the OTel SDKs do.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Resource and scope of a group of items, converted once and repeated on every row.
#[derive(Debug, Default)]
pub struct Origin {
    /// `service.name` of the resource.
    pub service: String,
    /// Resource attributes as text.
    pub resource: Vec<(String, String)>,
    /// Instrumentation scope name.
    pub scope_name: String,
    /// Instrumentation scope version.
    pub scope_version: String,
    /// Scope attributes as text.
    pub scope_attributes: Vec<(String, String)>,
    /// The scope's schema URL, else the resource's.
    pub schema_url: String,
}

impl Origin {
    /// The origin of items under `resource` and `scope`.
    pub fn new(
        resource: Option<&Resource>,
        resource_schema_url: &str,
        scope: Option<&InstrumentationScope>,
        scope_schema_url: &str,
    ) -> Origin {
        let attrs: &[KeyValue] = resource.map_or(&[], |r| &r.attributes);
        Origin {
            service: find_str(attrs, "service.name")
                .unwrap_or(UNKNOWN_SERVICE)
                .to_string(),
            resource: attributes_text(attrs),
            scope_name: scope.map(|s| s.name.clone()).unwrap_or_default(),
            scope_version: scope.map(|s| s.version.clone()).unwrap_or_default(),
            scope_attributes: scope
                .map(|s| attributes_text(&s.attributes))
                .unwrap_or_default(),
            schema_url: if scope_schema_url.is_empty() {
                resource_schema_url
            } else {
                scope_schema_url
            }
            .to_string(),
        }
    }
}

/// A string builder for `rows` values of about `avg` bytes.
pub fn strings(rows: usize, avg: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows.saturating_mul(avg))
}

/// A map builder for `rows` maps holding `entries` entries in all.
pub fn map_builder(rows: usize, entries: usize) -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::with_capacity(None, strings(entries, 16), strings(entries, 24), rows)
}

/// Appends one map value made of `pairs`.
pub fn push_map<'a>(
    builder: &mut MapBuilder<StringBuilder, StringBuilder>,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (k, v) in pairs {
        builder.keys().append_value(k);
        builder.values().append_value(v);
    }
    // Only fails when keys and values differ in length, which the loop above rules out.
    let _ = builder.append(true);
}

/// The identity of one row: when, which trace/span, which business transaction.
#[derive(Debug, Clone, Copy)]
pub struct RowKey<'a> {
    /// Event time, ns since the epoch.
    pub time: i64,
    /// Lowercase hex or empty.
    pub trace_id: &'a str,
    /// Lowercase hex or empty.
    pub span_id: &'a str,
    /// The row's correlation id, if any.
    pub correlation_id: Option<&'a str>,
}

/// Column builders for the shared leading and trailing columns.
pub struct CommonColumns {
    time: TimestampNanosecondBuilder,
    service: StringBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    correlation_id: StringBuilder,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    resource: MapBuilder<StringBuilder, StringBuilder>,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attributes: MapBuilder<StringBuilder, StringBuilder>,
    schema_url: StringBuilder,
}

impl CommonColumns {
    /// Builders sized for `rows` rows carrying `attributes` item attributes in all, so a small
    /// request does not hold the builders' default capacity in the tail.
    pub fn with_capacity(rows: usize, attributes: usize) -> Self {
        CommonColumns {
            time: TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            service: strings(rows, 16),
            trace_id: strings(rows, 32),
            span_id: strings(rows, 16),
            correlation_id: strings(rows, 16),
            attributes: map_builder(rows, attributes),
            resource: map_builder(rows, rows * 4),
            scope_name: strings(rows, 16),
            scope_version: strings(rows, 4),
            scope_attributes: map_builder(rows, 0),
            schema_url: strings(rows, 0),
        }
    }
}

impl std::fmt::Debug for CommonColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonColumns")
            .field("rows", &self.time.len())
            .finish()
    }
}

/// Converts a `u64` OTLP timestamp to the store's `i64`, saturating far-future values.
pub fn nanos(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl CommonColumns {
    /// Appends the shared columns of one row.
    pub fn push(&mut self, origin: &Origin, key: RowKey<'_>, attributes: &[KeyValue]) {
        self.time.append_value(key.time);
        self.service.append_value(&origin.service);
        self.trace_id.append_value(key.trace_id);
        self.span_id.append_value(key.span_id);
        self.correlation_id.append_option(key.correlation_id);
        for kv in attributes {
            self.attributes.keys().append_value(&kv.key);
            append_text(self.attributes.values(), kv.value.as_ref());
        }
        let _ = self.attributes.append(true);
        push_map(
            &mut self.resource,
            origin
                .resource
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self.scope_name.append_value(&origin.scope_name);
        self.scope_version.append_value(&origin.scope_version);
        push_map(
            &mut self.scope_attributes,
            origin
                .scope_attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self.schema_url.append_value(&origin.schema_url);
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// True when no row was appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Assembles a batch of `schema`: shared head, the signal's own `middle` columns, shared tail.
    pub fn finish(
        mut self,
        schema: SchemaRef,
        middle: Vec<ArrayRef>,
    ) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.correlation_id.finish()),
        ];
        columns.extend(middle);
        columns.push(Arc::new(self.attributes.finish()));
        columns.push(Arc::new(self.resource.finish()));
        columns.push(Arc::new(self.scope_name.finish()));
        columns.push(Arc::new(self.scope_version.finish()));
        columns.push(Arc::new(self.scope_attributes.finish()));
        columns.push(Arc::new(self.schema_url.finish()));
        RecordBatch::try_new(schema, columns)
    }
}
