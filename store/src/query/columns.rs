//! Typed readers for query results: a named column as text or as floats, whatever Arrow type
//! the scan produced for it.

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Float64Type};

/// A result column that is missing or cannot be read as the type asked for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ColumnError(String);

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ColumnError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ColumnError(format!("result has no column {name:?}")))
}

/// Column `name` of `batch` as UTF-8 strings, whatever string type the scan produced.
pub fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray, ColumnError> {
    to_strings(column(batch, name)?)
}

/// `col` cast to UTF-8 strings.
pub fn to_strings(col: &ArrayRef) -> Result<StringArray, ColumnError> {
    let cast = arrow::compute::cast(col, &DataType::Utf8)
        .map_err(|e| ColumnError(format!("cannot read column as text: {e}")))?;
    Ok(cast.as_string::<i32>().clone())
}

/// Column `name` of `batch` as f64 values (nulls stay null).
pub fn floats(batch: &RecordBatch, name: &str) -> Result<Float64Array, ColumnError> {
    let cast = arrow::compute::cast(column(batch, name)?, &DataType::Float64)
        .map_err(|e| ColumnError(format!("column {name:?} is not numeric: {e}")))?;
    Ok(cast.as_primitive::<Float64Type>().clone())
}

/// The text value of row `i`, empty when null.
pub fn text(a: &StringArray, i: usize) -> &str {
    if a.is_null(i) { "" } else { a.value(i) }
}
