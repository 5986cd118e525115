//! Arrow values as JSON: numbers stay numbers, maps become objects, lists arrays, times RFC 3339.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Value};

fn float(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number)
}

/// The JSON form of `array[i]`.
pub fn value_at(array: &ArrayRef, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::from(array.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => Value::from(array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::from(array.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => Value::from(array.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => Value::from(array.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(i).to_string()),
        DataType::List(_) => list(&array.as_list::<i32>().value(i)),
        DataType::LargeList(_) => list(&array.as_list::<i64>().value(i)),
        DataType::Map(_, _) => {
            let entries = array.as_map().value(i);
            let keys = entries.column(0);
            let values = entries.column(1);
            let mut obj = Map::new();
            for j in 0..entries.len() {
                let key = match value_at(keys, j) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                obj.insert(key, value_at(values, j));
            }
            Value::Object(obj)
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            Value::Object(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), value_at(c, i)))
                    .collect(),
            )
        }
        _ => formatted(array, i),
    }
}

fn list(values: &ArrayRef) -> Value {
    Value::Array((0..values.len()).map(|j| value_at(values, j)).collect())
}

fn formatted(array: &ArrayRef, i: usize) -> Value {
    let options = FormatOptions::default();
    match ArrayFormatter::try_new(array.as_ref(), &options) {
        Ok(f) => Value::String(f.value(i).to_string()),
        Err(_) => Value::Null,
    }
}

/// Rows of `batches` as arrays of values, in column order.
pub fn rows(batches: &[RecordBatch]) -> Vec<Value> {
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows())
                .map(move |i| Value::Array(b.columns().iter().map(|c| value_at(c, i)).collect()))
        })
        .collect()
}

/// Rows of `batches` as objects keyed by column name.
pub fn objects(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    batches
        .iter()
        .flat_map(|b| {
            let schema = b.schema();
            (0..b.num_rows())
                .map(move |i| {
                    schema
                        .fields()
                        .iter()
                        .zip(b.columns())
                        .map(|(f, c)| (f.name().clone(), value_at(c, i)))
                        .collect()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Float64Array, Int64Array, ListBuilder, MapBuilder, StringBuilder, TimestampNanosecondArray,
        UInt64Builder,
    };
    use std::sync::Arc;

    #[test]
    fn values_keep_their_json_types() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(-5), None]));
        assert_eq!(value_at(&ints, 0), Value::from(-5));
        assert_eq!(value_at(&ints, 1), Value::Null);
        let nan: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN]));
        assert_eq!(value_at(&nan, 0), Value::String("NaN".into()));
        let ts: ArrayRef =
            Arc::new(TimestampNanosecondArray::from(vec![1_500_000_000]).with_timezone("UTC"));
        assert_eq!(
            value_at(&ts, 0),
            Value::String("1970-01-01T00:00:01.500Z".into())
        );

        let mut m = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        m.keys().append_value("k");
        m.values().append_value("v");
        m.append(true).unwrap();
        let map: ArrayRef = Arc::new(m.finish());
        assert_eq!(value_at(&map, 0), serde_json::json!({"k": "v"}));

        let mut l = ListBuilder::new(UInt64Builder::new());
        l.values().append_value(3);
        l.values().append_value(4);
        l.append(true);
        let list: ArrayRef = Arc::new(l.finish());
        assert_eq!(value_at(&list, 0), serde_json::json!([3, 4]));
    }
}
