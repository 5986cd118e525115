//! Spans to rollup rows and back: [`aggregate`] groups spans per minute, service, span name
//! and kind; [`to_batch`] writes the groups as a `span_rollup` batch; [`rows`] reads one.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampNanosecondType, UInt64Type};

use super::figures::Figures;
use super::sketch::DurationSketch;
use crate::error::{Result, StoreError};
use crate::query::StatusCode;
use crate::schema::{SERVICE_NAME, TIME, TRACE_ID, list_type, timestamp_type};

/// One minute in nanoseconds: the rollup's resolution.
pub const MINUTE_NS: i64 = 60_000_000_000;

/// The `span_rollup` schema: one row per minute (`time` is its start), service, span name
/// and span kind.
static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(TIME, timestamp_type(), false),
        Field::new(SERVICE_NAME, DataType::Utf8, false),
        Field::new("span_name", DataType::Utf8, false),
        Field::new("span_kind", DataType::Utf8, false),
        Field::new("spans", DataType::UInt64, false),
        Field::new("errors", DataType::UInt64, false),
        Field::new("fastest_ns", DataType::Int64, false),
        Field::new("slowest_ns", DataType::Int64, false),
        Field::new("slowest_trace_id", DataType::Utf8, false),
        Field::new("error_trace_id", DataType::Utf8, false),
        Field::new("sketch_offset", DataType::Int32, false),
        Field::new("sketch_counts", list_type(DataType::UInt64), false),
    ]))
});

/// The schema of the `span_rollup` table and its files.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// What a rollup row is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key<S> {
    /// `service.name`.
    pub service: S,
    /// Start of the minute, ns.
    pub minute: i64,
    /// The operation.
    pub span_name: S,
    /// `SERVER`, `CLIENT`, `PRODUCER`, `CONSUMER` or `INTERNAL`.
    pub span_kind: S,
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            StoreError::Arrow(arrow::error::ArrowError::SchemaError(format!(
                "rollup input lacks column {name:?} of the expected type"
            )))
        })
}

/// Groups the spans of `batches` (which need `time`, `service_name`, `span_name`,
/// `span_kind`, `status_code`, `duration_ns` and `trace_id`, in the `spans` types) per
/// minute, service, span name and kind, ordered by service then minute.
pub fn aggregate(batches: &[RecordBatch]) -> Result<BTreeMap<Key<&str>, Figures>> {
    let mut groups: BTreeMap<Key<&str>, Figures> = BTreeMap::new();
    for b in batches {
        let time: &TimestampNanosecondArray = column(b, TIME)?;
        let service: &StringArray = column(b, SERVICE_NAME)?;
        let name: &StringArray = column(b, "span_name")?;
        let kind: &StringArray = column(b, "span_kind")?;
        let status: &StringArray = column(b, "status_code")?;
        let duration: &Int64Array = column(b, "duration_ns")?;
        let trace: &StringArray = column(b, TRACE_ID)?;
        for i in 0..b.num_rows() {
            let key = Key {
                service: service.value(i),
                minute: time.value(i).div_euclid(MINUTE_NS) * MINUTE_NS,
                span_name: name.value(i),
                span_kind: kind.value(i),
            };
            groups.entry(key).or_default().add_span(
                duration.value(i),
                status.value(i) == StatusCode::Error.as_str(),
                trace.value(i),
            );
        }
    }
    Ok(groups)
}

/// The groups as a `span_rollup` batch, in their order.
pub fn to_batch<S: AsRef<str>>(groups: &BTreeMap<Key<S>, Figures>) -> Result<RecordBatch> {
    let strings = |f: &dyn for<'a> Fn(&'a Key<S>, &'a Figures) -> &'a str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            groups.iter().map(|(k, v)| f(k, v)),
        ))
    };
    let mut sketches = ListBuilder::new(UInt64Builder::new());
    for figures in groups.values() {
        sketches.values().append_slice(&figures.sketch.counts);
        sketches.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampNanosecondArray::from_iter_values(groups.keys().map(|k| k.minute))
                .with_timezone("UTC"),
        ),
        strings(&|k, _| k.service.as_ref()),
        strings(&|k, _| k.span_name.as_ref()),
        strings(&|k, _| k.span_kind.as_ref()),
        Arc::new(UInt64Array::from_iter_values(
            groups.values().map(|f| f.spans),
        )),
        Arc::new(UInt64Array::from_iter_values(
            groups.values().map(|f| f.errors),
        )),
        Arc::new(Int64Array::from_iter_values(
            groups.values().map(|f| f.fastest_ns),
        )),
        Arc::new(Int64Array::from_iter_values(
            groups.values().map(|f| f.slowest_ns),
        )),
        strings(&|_, f| f.slowest_trace_id.as_str()),
        strings(&|_, f| f.error_trace_id.as_str()),
        Arc::new(Int32Array::from_iter_values(
            groups.values().map(|f| f.sketch.offset),
        )),
        Arc::new(sketches.finish()),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// The rows of a `span_rollup` batch (every column but `time` is needed, as the table names
/// them).
pub fn rows(b: &RecordBatch) -> Result<Vec<(Key<&str>, Figures)>> {
    let text = |name: &str| -> Result<&StringArray> { column(b, name) };
    let (service, name, kind) = (text(SERVICE_NAME)?, text("span_name")?, text("span_kind")?);
    let (slowest_trace, error_trace) = (text("slowest_trace_id")?, text("error_trace_id")?);
    let minute = b
        .column_by_name(TIME)
        .map(|c| c.as_primitive::<TimestampNanosecondType>());
    let spans = column::<UInt64Array>(b, "spans")?;
    let errors = column::<UInt64Array>(b, "errors")?;
    let fastest = column::<Int64Array>(b, "fastest_ns")?;
    let slowest = column::<Int64Array>(b, "slowest_ns")?;
    let offset = column::<Int32Array>(b, "sketch_offset")?;
    let counts = b
        .column_by_name("sketch_counts")
        .and_then(|c| c.as_list_opt::<i32>())
        .ok_or_else(|| {
            StoreError::Arrow(arrow::error::ArrowError::SchemaError(
                "rollup rows lack sketch_counts".into(),
            ))
        })?;
    (0..b.num_rows())
        .map(|i| {
            let bucket_counts = counts.value(i);
            let figures = Figures {
                spans: spans.value(i),
                errors: errors.value(i),
                fastest_ns: fastest.value(i),
                slowest_ns: slowest.value(i),
                slowest_trace_id: slowest_trace.value(i).to_string(),
                error_trace_id: error_trace.value(i).to_string(),
                sketch: DurationSketch {
                    offset: offset.value(i),
                    counts: bucket_counts.as_primitive::<UInt64Type>().values().to_vec(),
                },
            };
            let key = Key {
                service: service.value(i),
                minute: minute.map_or(0, |m| m.value(i)),
                span_name: name.value(i),
                span_kind: kind.value(i),
            };
            Ok((key, figures))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{SpanRow, spans_batch};

    fn span(service: &str, name: &str, start_s: i64, ms: i64, error: bool, trace: &str) -> SpanRow {
        let start_ns = start_s * 1_000_000_000;
        SpanRow {
            trace_id: trace.into(),
            span_id: format!("{start_s:016x}"),
            service_name: service.into(),
            span_name: name.into(),
            span_kind: "SERVER".into(),
            status_code: if error { "ERROR" } else { "OK" }.into(),
            start_ns,
            end_ns: start_ns + ms * 1_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn spans_group_per_minute_and_survive_the_round_trip_through_a_batch() {
        let batch = spans_batch(&[
            span("pay", "charge", 600, 10, false, "t1"),
            span("pay", "charge", 659, 30, true, "t2"),
            span("pay", "charge", 660, 20, false, "t3"),
            span("api", "GET /", 601, 5, false, "t4"),
        ])
        .unwrap();
        let groups = aggregate(std::slice::from_ref(&batch)).unwrap();
        let summary: Vec<_> = groups
            .iter()
            .map(|(k, f)| {
                (
                    k.service,
                    k.minute / MINUTE_NS,
                    f.spans,
                    f.errors,
                    f.slowest_trace_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("api", 10, 1, 0, "t4"),
                ("pay", 10, 2, 1, "t2"),
                ("pay", 11, 1, 0, "t3")
            ]
        );
        let written = to_batch(&groups).unwrap();
        assert_eq!(written.schema(), schema());
        let back = rows(&written).unwrap();
        let again: BTreeMap<_, _> = back.into_iter().collect();
        assert_eq!(again, groups);
    }
}
