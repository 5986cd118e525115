//! The Arrow schema of each table: the data model every other crate writes and reads.
//!
//! Ids are lowercase hex strings (empty when absent), times are UTC nanosecond timestamps,
//! attributes are `Map<Utf8, Utf8>` so SQL can say `attributes['http.route']`, and nested
//! OTLP structures without a natural column (span events and links, exemplars) are JSON text.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::Signal;

/// Name of the event-time column every table has and is partitioned by.
pub const TIME: &str = "time";
/// Name of the service column every table has and is sorted by.
pub const SERVICE_NAME: &str = "service_name";
/// Name of the trace id column (lowercase hex).
pub const TRACE_ID: &str = "trace_id";

/// Arrow type of every timestamp column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// Arrow type of a map from strings to `values`: what `arrow::array::MapBuilder` builds by
/// default.
fn map_type(values: DataType) -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", values, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// Arrow type of every attribute column: a map from strings to strings.
pub fn attributes_type() -> DataType {
    map_type(DataType::Utf8)
}

/// Arrow type of a list column of `item`: what `arrow::array::ListBuilder` builds by default.
pub fn list_type(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

fn common_head() -> Vec<Field> {
    vec![
        Field::new(TIME, timestamp_type(), false),
        Field::new(SERVICE_NAME, DataType::Utf8, false),
        Field::new(TRACE_ID, DataType::Utf8, false),
        Field::new("span_id", DataType::Utf8, false),
        Field::new("correlation_id", DataType::Utf8, true),
    ]
}

fn common_tail() -> Vec<Field> {
    vec![
        Field::new("attributes", attributes_type(), false),
        Field::new("resource_attributes", attributes_type(), false),
        Field::new("scope_name", DataType::Utf8, false),
        Field::new("scope_version", DataType::Utf8, false),
        Field::new("scope_attributes", attributes_type(), false),
        Field::new("schema_url", DataType::Utf8, false),
    ]
}

fn build(middle: Vec<Field>) -> SchemaRef {
    let mut fields = common_head();
    fields.extend(middle);
    fields.extend(common_tail());
    Arc::new(Schema::new(fields))
}

static SPANS: LazyLock<SchemaRef> = LazyLock::new(|| {
    build(vec![
        Field::new("end_time", timestamp_type(), false),
        Field::new("duration_ns", DataType::Int64, false),
        Field::new("parent_span_id", DataType::Utf8, false),
        Field::new("span_name", DataType::Utf8, false),
        Field::new("span_kind", DataType::Utf8, false),
        Field::new("status_code", DataType::Utf8, false),
        Field::new("status_message", DataType::Utf8, false),
        Field::new("trace_state", DataType::Utf8, false),
        Field::new("flags", DataType::UInt32, false),
        Field::new("events", DataType::Utf8, false),
        Field::new("links", DataType::Utf8, false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
        Field::new("dropped_events_count", DataType::UInt32, false),
        Field::new("dropped_links_count", DataType::UInt32, false),
    ])
});

static LOGS: LazyLock<SchemaRef> = LazyLock::new(|| {
    build(vec![
        Field::new("observed_time", timestamp_type(), true),
        Field::new("severity_number", DataType::Int32, false),
        Field::new("severity_text", DataType::Utf8, false),
        Field::new("body", DataType::Utf8, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("flags", DataType::UInt32, false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
    ])
});

static METRICS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let u64_list = || list_type(DataType::UInt64);
    let f64_list = || list_type(DataType::Float64);
    build(vec![
        Field::new("metric_name", DataType::Utf8, false),
        Field::new("metric_description", DataType::Utf8, false),
        Field::new("metric_type", DataType::Utf8, false),
        Field::new("unit", DataType::Utf8, false),
        Field::new("metric_metadata", attributes_type(), false),
        Field::new("start_time", timestamp_type(), true),
        Field::new("value", DataType::Float64, true),
        Field::new("is_monotonic", DataType::Boolean, true),
        Field::new("temporality", DataType::Utf8, true),
        Field::new("count", DataType::UInt64, true),
        Field::new("sum", DataType::Float64, true),
        Field::new("min", DataType::Float64, true),
        Field::new("max", DataType::Float64, true),
        Field::new("bucket_counts", u64_list(), true),
        Field::new("explicit_bounds", f64_list(), true),
        Field::new("exp_scale", DataType::Int32, true),
        Field::new("exp_zero_count", DataType::UInt64, true),
        Field::new("exp_zero_threshold", DataType::Float64, true),
        Field::new("exp_positive_offset", DataType::Int32, true),
        Field::new("exp_positive_bucket_counts", u64_list(), true),
        Field::new("exp_negative_offset", DataType::Int32, true),
        Field::new("exp_negative_bucket_counts", u64_list(), true),
        Field::new("quantile_levels", f64_list(), true),
        Field::new("quantile_values", f64_list(), true),
        Field::new("exemplars", DataType::Utf8, false),
        Field::new("exemplar_trace_ids", list_type(DataType::Utf8), false),
        Field::new("flags", DataType::UInt32, false),
    ])
});

/// The alert history: one row per alert state change (pending, firing, resolved). Sorted and
/// partitioned like telemetry (by `service_name`, then `time`), but without the telemetry ids.
static ALERTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(TIME, timestamp_type(), false),
        Field::new(SERVICE_NAME, DataType::Utf8, false),
        Field::new("alertname", DataType::Utf8, false),
        Field::new("fingerprint", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("rule_group", DataType::Utf8, false),
        Field::new("active_at", timestamp_type(), false),
        Field::new("labels", attributes_type(), false),
        Field::new("annotations", attributes_type(), false),
    ]))
});

/// Arrow type of a map from names to numbers.
pub fn numbers_type() -> DataType {
    map_type(DataType::Float64)
}

/// The anomaly history: one row per series and window whose anomaly score reached the
/// configured sensitivity. `operation` is empty for a service-wide series. The maps are keyed
/// by feature name (`latency_p95`, `error_rate`…): each feature's share of the anomaly, the
/// value its baseline expected and the value observed.
static ANOMALIES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(TIME, timestamp_type(), false),
        Field::new(SERVICE_NAME, DataType::Utf8, false),
        Field::new("operation", DataType::Utf8, false),
        Field::new("window_start", timestamp_type(), false),
        Field::new("score", DataType::Float64, false),
        Field::new("detectors", DataType::Utf8, false),
        Field::new("top_feature", DataType::Utf8, false),
        Field::new("contributions", numbers_type(), false),
        Field::new("expected", numbers_type(), false),
        Field::new("observed", numbers_type(), false),
        Field::new("trace_ids", list_type(DataType::Utf8), false),
    ]))
});

/// The schema of `signal`'s table. Every batch handed to the store must have exactly this schema.
pub fn schema(signal: Signal) -> SchemaRef {
    match signal {
        Signal::Spans => SPANS.clone(),
        Signal::Logs => LOGS.clone(),
        Signal::Metrics => METRICS.clone(),
        Signal::Alerts => ALERTS.clone(),
        Signal::Anomalies => ANOMALIES.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_has_the_common_columns_first() {
        for signal in Signal::ALL {
            let s = schema(signal);
            assert_eq!(s.field(0).name(), TIME);
            assert_eq!(s.field(1).name(), SERVICE_NAME);
            if Signal::TELEMETRY.contains(&signal) {
                assert_eq!(s.field(2).name(), TRACE_ID);
                assert!(s.field_with_name("attributes").is_ok());
            }
        }
    }
}
