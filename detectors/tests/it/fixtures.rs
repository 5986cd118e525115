//! Record batches for fixture tables: any signal's schema with the given columns, the rest
//! empty or zero.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, ListBuilder, MapBuilder,
    RecordBatch, StringArray, StringBuilder, TimestampNanosecondArray, UInt32Array, UInt64Array,
    new_null_array,
};
use arrow::datatypes::{DataType, TimeUnit};
use vigil_store::Signal;
use vigil_store::schema::schema;

pub fn attrs(rows: &[Vec<(&str, &str)>]) -> ArrayRef {
    let mut m = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for row in rows {
        for (k, v) in row {
            m.keys().append_value(k);
            m.values().append_value(v);
        }
        m.append(true).unwrap();
    }
    Arc::new(m.finish())
}

pub fn texts(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

pub fn times(v: &[i64]) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(v.to_vec()).with_timezone("UTC"))
}

/// A batch of `signal` with `n` rows: the given columns, every other one empty or zero.
pub fn batch(signal: Signal, n: usize, given: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let given: BTreeMap<&str, ArrayRef> = given.into_iter().collect();
    let schema = schema(signal);
    let columns = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            if let Some(c) = given.get(f.name().as_str()) {
                return c.clone();
            }
            match f.data_type() {
                DataType::Timestamp(TimeUnit::Nanosecond, _) if !f.is_nullable() => {
                    times(&vec![0; n])
                }
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                DataType::Utf8 => texts(&vec![""; n]),
                DataType::Int64 => Arc::new(Int64Array::from(vec![0; n])),
                DataType::Int32 => Arc::new(Int32Array::from(vec![0; n])),
                DataType::UInt32 => Arc::new(UInt32Array::from(vec![0; n])),
                DataType::UInt64 => Arc::new(UInt64Array::from(vec![0; n])),
                DataType::Float64 => Arc::new(Float64Array::from(vec![0.0; n])),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![false; n])),
                DataType::Map(_, _) => attrs(&vec![vec![]; n]),
                DataType::List(_) => {
                    let mut l = ListBuilder::new(StringBuilder::new());
                    (0..n).for_each(|_| l.append(true));
                    Arc::new(l.finish())
                }
                other => panic!("no default for {}: {other}", f.name()),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}
