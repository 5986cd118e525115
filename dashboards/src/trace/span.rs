//! Spans read from the `spans` table into typed rows, with their events and links parsed.

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use serde_json::{Map, Value};
use vigil_store::Session;
use vigil_store::query::{Sql, strings, to_strings};
use vigil_store::sql;

use crate::error::ApiError;

/// The columns a [`Span`] is read from.
pub const COLUMNS: &str = "trace_id, span_id, parent_span_id, service_name, span_name, \
    span_kind, status_code, status_message, CAST(time AS BIGINT) AS start_ns, \
    CAST(end_time AS BIGINT) AS end_ns, attributes, resource_attributes, events, links, \
    correlation_id";

/// One span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// Empty for a root.
    pub parent_span_id: String,
    /// `service.name`.
    pub service_name: String,
    /// The operation.
    pub span_name: String,
    /// `SERVER`, `CLIENT`, `PRODUCER`, `CONSUMER`, `INTERNAL` or `UNSPECIFIED`.
    pub span_kind: String,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: String,
    /// The status description.
    pub status_message: String,
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End, ns since the epoch.
    pub end_ns: i64,
    /// Span attributes.
    pub attributes: Map<String, Value>,
    /// Resource attributes.
    pub resource_attributes: Map<String, Value>,
    /// Events: `[{time_unix_nano, name, attributes, dropped_attributes_count}]`.
    pub events: Vec<Value>,
    /// Links: `[{trace_id, span_id, trace_state, attributes, flags, dropped_attributes_count}]`.
    pub links: Vec<Value>,
    /// The business transaction it belongs to, if known.
    pub correlation_id: Option<String>,
}

impl Span {
    /// Duration in ns (never negative).
    pub fn duration_ns(&self) -> i64 {
        (self.end_ns - self.start_ns).max(0)
    }
}

/// The spans matching `filter` (a SQL condition), at most `max` of them, in no set order;
/// the flag says whether more matched.
pub async fn read(ctx: &Session, filter: &Sql, max: usize) -> Result<(Vec<Span>, bool), ApiError> {
    let result = ctx
        .query(
            sql!("SELECT {} FROM spans WHERE {}", COLUMNS, filter).as_str(),
            max,
        )
        .await?;
    let mut spans = Vec::with_capacity(result.batches.iter().map(RecordBatch::num_rows).sum());
    for batch in &result.batches {
        from_batch(batch, &mut spans)?;
    }
    Ok((spans, result.truncated))
}

/// Appends the rows of `batch` (columns as in [`COLUMNS`]) to `out`, straight from the
/// Arrow arrays.
fn from_batch(batch: &RecordBatch, out: &mut Vec<Span>) -> Result<(), ApiError> {
    let text = |name: &str| strings(batch, name);
    let int = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("span column {name} is not a BIGINT")))
    };
    let map = |name: &str| {
        let map = batch
            .column_by_name(name)
            .and_then(|c| c.as_map_opt())
            .ok_or_else(|| ApiError::internal(format!("span column {name} is not a map")))?;
        Ok::<_, ApiError>(Attributes {
            offsets: map.value_offsets().to_vec(),
            keys: to_strings(map.keys())?,
            values: to_strings(map.values())?,
        })
    };
    let (trace_id, span_id, parent) =
        (text("trace_id")?, text("span_id")?, text("parent_span_id")?);
    let (service, name, kind) = (
        text("service_name")?,
        text("span_name")?,
        text("span_kind")?,
    );
    let (status, message) = (text("status_code")?, text("status_message")?);
    let (events, links, correlation) = (text("events")?, text("links")?, text("correlation_id")?);
    let (start, end) = (int("start_ns")?, int("end_ns")?);
    let (attributes, resource) = (map("attributes")?, map("resource_attributes")?);
    for i in 0..batch.num_rows() {
        out.push(Span {
            trace_id: trace_id.value(i).to_string(),
            span_id: span_id.value(i).to_string(),
            parent_span_id: parent.value(i).to_string(),
            service_name: service.value(i).to_string(),
            span_name: name.value(i).to_string(),
            span_kind: kind.value(i).to_string(),
            status_code: status.value(i).to_string(),
            status_message: message.value(i).to_string(),
            start_ns: start.value(i),
            end_ns: end.value(i),
            attributes: attributes.object(i),
            resource_attributes: resource.object(i),
            events: json_array(events.value(i)),
            links: json_array(links.value(i)),
            correlation_id: correlation
                .is_valid(i)
                .then(|| correlation.value(i).to_string()),
        });
    }
    Ok(())
}

/// A column of attribute maps, its keys and values as plain strings.
struct Attributes {
    offsets: Vec<i32>,
    keys: StringArray,
    values: StringArray,
}

impl Attributes {
    /// Row `i` as a JSON object.
    fn object(&self, i: usize) -> Map<String, Value> {
        let (from, to) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        (from..to)
            .map(|j| {
                let value = match self.values.is_valid(j) {
                    true => Value::String(self.values.value(j).to_string()),
                    false => Value::Null,
                };
                (self.keys.value(j).to_string(), value)
            })
            .collect()
    }
}

/// A JSON array stored as text; empty when the text is empty or not an array.
fn json_array(text: &str) -> Vec<Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// A trace id as the store keeps it (32 lowercase hex digits), if `id` is one.
pub fn trace_id(id: &str) -> Option<String> {
    let id = id.to_ascii_lowercase();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// `ns` since the epoch as RFC 3339 with nanoseconds.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
