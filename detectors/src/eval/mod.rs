//! Rule evaluation: windows of telemetry (or of anomaly scores) read from the store become one
//! value per series (`spans.rs`, `logs.rs`, `metrics.rs`, `sql_rule.rs`, `anomaly_rule.rs`),
//! values become alerts with a lifecycle (`lifecycle.rs`), SLOs become burn rates and budgets
//! (`slo.rs`), and the engine (`engine.rs`) schedules groups, reloads rule files and reports
//! status.

pub mod anomaly_rule;
pub mod engine;
pub mod group;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod quantile;
pub mod slo;
pub mod source;
pub mod spans;
pub mod sql_rule;
pub mod status;

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use chrono::{DateTime, SecondsFormat, Utc};

pub use engine::{AlertSink, Engine};
pub use source::RuleSource;

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The query failed to plan or run.
    #[error("query failed: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// A result had an unexpected shape.
    #[error("{0}")]
    Shape(String),
    /// Writing the alert history failed.
    #[error("writing alert history: {0}")]
    History(String),
}

/// One series' value at an evaluation: its labels and the measured value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`service`, `operation`, attribute names…).
    pub labels: BTreeMap<String, String>,
    /// The value, in the rule's canonical unit.
    pub value: f64,
    /// What explains the value beyond its labels (an anomaly's top feature, exemplar traces);
    /// it becomes annotations the rule does not set itself.
    pub context: BTreeMap<String, String>,
}

/// A half-open time range `[start, end)` in nanoseconds since the epoch.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant included.
    pub start: i64,
    /// First instant excluded.
    pub end: i64,
}

impl Window {
    /// The `length` ending at `end`.
    pub fn ending(end: DateTime<Utc>, length: std::time::Duration) -> Window {
        let end = nanos(end);
        let len = i64::try_from(length.as_nanos()).unwrap_or(i64::MAX);
        Window {
            start: end.saturating_sub(len),
            end,
        }
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.start) as f64 / 1e9
    }

    /// A SQL condition on `time` selecting this window, which the store pushes down to prune
    /// tail batches and Parquet files.
    pub fn sql(&self) -> String {
        format!(
            "time >= '{}' AND time < '{}'",
            rfc3339(self.start),
            rfc3339(self.end)
        )
    }
}

/// Nanoseconds since the epoch.
pub fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn rfc3339(ns: i64) -> String {
    DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `s` as a SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The SQL expression for a label name: `service` and `operation` are columns, anything else
/// an attribute.
pub fn label_column(label: &str, operation_column: &str) -> String {
    match label {
        "service" => "service_name".into(),
        "operation" => operation_column.into(),
        attr => format!("attributes[{}]", quote(attr)),
    }
}

/// Column `name` of `batch` as UTF-8 strings, whatever string type the scan produced.
pub fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray, EvalError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| EvalError::Shape(format!("result has no column {name:?}")))?;
    to_strings(col)
}

/// `col` cast to UTF-8 strings.
pub fn to_strings(col: &ArrayRef) -> Result<StringArray, EvalError> {
    let cast = arrow::compute::cast(col, &DataType::Utf8)
        .map_err(|e| EvalError::Shape(format!("cannot read column as text: {e}")))?;
    Ok(cast.as_string::<i32>().clone())
}

/// Column `name` of `batch` as f64 values (nulls stay null).
pub fn floats(batch: &RecordBatch, name: &str) -> Result<arrow::array::Float64Array, EvalError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| EvalError::Shape(format!("result has no column {name:?}")))?;
    let cast = arrow::compute::cast(col, &DataType::Float64)
        .map_err(|e| EvalError::Shape(format!("column {name:?} is not numeric: {e}")))?;
    Ok(cast.as_primitive::<arrow::datatypes::Float64Type>().clone())
}

/// The text value of row `i`, empty when null.
pub fn text(a: &StringArray, i: usize) -> &str {
    if a.is_null(i) { "" } else { a.value(i) }
}
