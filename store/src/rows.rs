//! Span rows from plain values: what fixtures and imports use to build `spans` batches
//! without an OTLP request. Columns not named here are empty (or zero).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Array, MapBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampNanosecondArray, UInt32Array,
};
use arrow::error::ArrowError;
use serde::Deserialize;

use crate::query::StatusCode;
use crate::schema::schema;
use crate::signal::Signal;

/// One span's values.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanRow {
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
    /// `SERVER`, `CLIENT`, `PRODUCER`, `CONSUMER` or `INTERNAL`.
    pub span_kind: String,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: String,
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End, ns since the epoch.
    pub end_ns: i64,
    /// The business transaction, if any.
    pub correlation_id: Option<String>,
    /// Span attributes.
    pub attributes: BTreeMap<String, String>,
    /// Resource attributes besides `service.name`.
    pub resource_attributes: BTreeMap<String, String>,
    /// The links as the `links` column holds them (a JSON array).
    pub links: String,
}

fn map(
    rows: &[SpanRow],
    get: impl Fn(&SpanRow) -> &BTreeMap<String, String>,
) -> Result<ArrayRef, ArrowError> {
    let mut m = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for r in rows {
        for (k, v) in get(r) {
            m.keys().append_value(k);
            m.values().append_value(v);
        }
        m.append(true)?;
    }
    Ok(Arc::new(m.finish()))
}

fn texts(rows: &[SpanRow], get: impl Fn(&SpanRow) -> &str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(get)))
}

fn times(rows: &[SpanRow], get: impl Fn(&SpanRow) -> i64) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(rows.iter().map(get)).with_timezone("UTC"))
}

/// The `spans` batch holding `rows`.
pub fn spans_batch(rows: &[SpanRow]) -> Result<RecordBatch, ArrowError> {
    let schema = schema(Signal::Spans);
    let n = rows.len();
    let columns = schema
        .fields()
        .iter()
        .map(|f| -> Result<ArrayRef, ArrowError> {
            Ok(match f.name().as_str() {
                "time" => times(rows, |r| r.start_ns),
                "end_time" => times(rows, |r| r.end_ns),
                "duration_ns" => Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.end_ns - r.start_ns),
                )),
                "service_name" => texts(rows, |r| &r.service_name),
                "trace_id" => texts(rows, |r| &r.trace_id),
                "span_id" => texts(rows, |r| &r.span_id),
                "parent_span_id" => texts(rows, |r| &r.parent_span_id),
                "span_name" => texts(rows, |r| &r.span_name),
                "span_kind" => texts(rows, |r| &r.span_kind),
                "status_code" => texts(rows, |r| {
                    if r.status_code.is_empty() {
                        StatusCode::Unset.as_str()
                    } else {
                        &r.status_code
                    }
                }),
                "events" => texts(rows, |_| "[]"),
                "links" => texts(rows, |r| if r.links.is_empty() { "[]" } else { &r.links }),
                "correlation_id" => Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| r.correlation_id.as_deref()),
                )),
                "attributes" => map(rows, |r| &r.attributes)?,
                "resource_attributes" => map(rows, |r| &r.resource_attributes)?,
                "scope_attributes" => map(rows, |_| &EMPTY)?,
                _ => match f.data_type() {
                    arrow::datatypes::DataType::UInt32 => Arc::new(UInt32Array::from(vec![0; n])),
                    _ => texts(rows, |_| ""),
                },
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_fill_every_column_of_the_schema() {
        let row = SpanRow {
            trace_id: "a".repeat(32),
            span_id: "b".repeat(16),
            service_name: "order".into(),
            span_name: "POST /orders".into(),
            span_kind: "SERVER".into(),
            start_ns: 1_000,
            end_ns: 4_000,
            attributes: BTreeMap::from([("http.route".into(), "/orders".into())]),
            ..SpanRow::default()
        };
        let b = spans_batch(&[row.clone(), row]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema(), schema(Signal::Spans));
        let d = b
            .column_by_name("duration_ns")
            .map(|c| c.as_any().downcast_ref::<Int64Array>().map(|a| a.value(0)));
        assert_eq!(d, Some(Some(3_000)));
    }
}
