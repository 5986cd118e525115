//! Spans read from the `spans` table into typed rows, with their events and links parsed.

use std::time::Duration;

use datafusion::prelude::SessionContext;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::json::objects;
use crate::sql;

/// The columns a [`Span`] is read from.
pub const COLUMNS: &str = "trace_id, span_id, parent_span_id, service_name, span_name, \
    span_kind, status_code, status_message, CAST(time AS BIGINT) AS start_ns, \
    CAST(end_time AS BIGINT) AS end_ns, attributes, resource_attributes, events, links, \
    correlation_id";

/// One span.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    #[serde(deserialize_with = "json_text")]
    pub events: Vec<Value>,
    /// Links: `[{trace_id, span_id, trace_state, attributes, flags, dropped_attributes_count}]`.
    #[serde(deserialize_with = "json_text")]
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

/// A JSON array stored as text; empty when the text is empty or not an array.
fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    let text = String::deserialize(d)?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

/// The spans matching `filter` (a SQL condition), at most `max` of them, in no set order;
/// the flag says whether more matched.
pub async fn read(
    ctx: &SessionContext,
    filter: &str,
    max: usize,
    timeout: Duration,
) -> Result<(Vec<Span>, bool), ApiError> {
    let result = sql::run(
        ctx,
        &format!("SELECT {COLUMNS} FROM spans WHERE {filter}"),
        max,
        timeout,
    )
    .await?;
    let spans = objects(&result.batches)
        .into_iter()
        .map(|row| serde_json::from_value(Value::Object(row)))
        .collect::<Result<Vec<Span>, _>>()
        .map_err(ApiError::internal)?;
    Ok((spans, result.truncated))
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
