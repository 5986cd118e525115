//! Anomalies as rows of the store's `anomalies` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, ListBuilder, MapBuilder, RecordBatch, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow::error::ArrowError;
use vigil_store::Signal;
use vigil_store::schema::schema;

use super::monitor::Anomaly;
use crate::features::Feature;

fn numbers(
    rows: &[Anomaly],
    get: impl Fn(&Anomaly) -> &[(Feature, f64)],
) -> Result<ArrayRef, ArrowError> {
    let mut b = MapBuilder::new(None, StringBuilder::new(), Float64Builder::new());
    for a in rows {
        for (f, v) in get(a) {
            b.keys().append_value(f.name());
            b.values().append_value(*v);
        }
        b.append(true)?;
    }
    Ok(Arc::new(b.finish()))
}

/// One row per anomaly, in the `anomalies` schema.
pub fn anomalies_batch(rows: &[Anomaly]) -> Result<RecordBatch, ArrowError> {
    let text = |f: &dyn Fn(&Anomaly) -> String| -> ArrayRef {
        let mut b = StringBuilder::new();
        for a in rows {
            b.append_value(f(a));
        }
        Arc::new(b.finish())
    };
    let time = |f: &dyn Fn(&Anomaly) -> i64| -> ArrayRef {
        let mut b = TimestampNanosecondBuilder::new().with_timezone("UTC");
        for a in rows {
            b.append_value(f(a));
        }
        Arc::new(b.finish())
    };
    let mut score = Float64Builder::new();
    let mut traces = ListBuilder::new(StringBuilder::new());
    for a in rows {
        score.append_value(a.score);
        for t in &a.trace_ids {
            traces.values().append_value(t);
        }
        traces.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        time(&|a| a.window.end),
        text(&|a| a.key.service.clone()),
        text(&|a| a.key.operation.clone()),
        time(&|a| a.window.start),
        Arc::new(score.finish()),
        text(&|a| a.detectors.join(",")),
        text(&|a| a.top_feature.name().to_string()),
        numbers(rows, |a| &a.contributions)?,
        numbers(rows, |a| &a.expected)?,
        numbers(rows, |a| &a.observed)?,
        Arc::new(traces.finish()),
    ];
    RecordBatch::try_new(schema(Signal::Anomalies), columns)
}
