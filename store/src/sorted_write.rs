//! Writing rows to a Parquet file in service-then-time order within a memory bound.
//!
//! A flush or a compaction hands over many batches (the tail's, or the files being merged).
//! Concatenating and sorting them whole would hold two more copies of every row; instead only
//! the sort keys are gathered, and the rows are copied into order one chunk at a time, each
//! chunk written before the next is built. The Parquet writer's buffered row group is kept
//! under the same bound by closing the row group early when it grows past it.

use std::fs::File;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{SortColumn, concat, interleave_record_batch, lexsort_to_indices};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;

use crate::error::Result;
use crate::schema::{SERVICE_NAME, TIME};

/// Writes every row of `batches` (all in `schema`) to `writer`, sorted by service then time,
/// using at most about `working_bytes` beyond the batches themselves and their sort keys:
/// half for the chunk of rows being copied into order, half for the row group the writer
/// buffers.
pub fn write_sorted(
    writer: &mut ArrowWriter<File>,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    working_bytes: usize,
) -> Result<()> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows == 0 {
        return Ok(());
    }
    let keys = |name: &str| -> Result<SortColumn> {
        let index = schema.index_of(name)?;
        let columns: Vec<&dyn arrow::array::Array> =
            batches.iter().map(|b| b.column(index).as_ref()).collect();
        let values: ArrayRef = concat(&columns)?;
        Ok(SortColumn {
            values,
            options: None,
        })
    };
    let order = lexsort_to_indices(&[keys(SERVICE_NAME)?, keys(TIME)?], None)?;
    let starts: Vec<usize> = batches
        .iter()
        .scan(0, |next, b| {
            let start = *next;
            *next += b.num_rows();
            Some(start)
        })
        .collect();
    // A row's batch is the last one starting at or before it (empty batches share a start
    // with the next, which is the one holding the row).
    let locate = |row: usize| {
        let batch = starts.partition_point(|s| *s <= row).saturating_sub(1);
        (batch, row - starts[batch])
    };
    let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let half = (working_bytes / 2).max(1);
    let chunk_rows = (half / (bytes / rows).max(1)).clamp(1, rows);
    let sources: Vec<&RecordBatch> = batches.iter().collect();
    for chunk in order.values().chunks(chunk_rows) {
        let picks: Vec<(usize, usize)> = chunk.iter().map(|&r| locate(r as usize)).collect();
        writer.write(&interleave_record_batch(&sources, &picks)?)?;
        if writer.memory_size() > half {
            writer.flush()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(TIME, DataType::Timestamp(TimeUnit::Nanosecond, None), false),
            Field::new(SERVICE_NAME, DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]))
    }

    fn batch(rows: &[(i64, &str)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    rows.iter().map(|r| r.0),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0 * 10))),
            ],
        )
        .unwrap()
    }

    /// Writes `batches` with `working_bytes`, returning (time, service, n) rows in file order
    /// and the number of row groups.
    fn round_trip(
        batches: &[RecordBatch],
        working_bytes: usize,
    ) -> (Vec<(i64, String, i64)>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let mut writer =
            ArrowWriter::try_new(File::create(&path).unwrap(), schema(), None).unwrap();
        write_sorted(&mut writer, &schema(), batches, working_bytes).unwrap();
        writer.close().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let groups = reader.metadata().num_row_groups();
        let mut out = Vec::new();
        for b in reader.build().unwrap() {
            let b = b.unwrap();
            let t = b
                .column(0)
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .unwrap();
            let s = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            let n = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..b.num_rows() {
                out.push((t.value(i), s.value(i).to_string(), n.value(i)));
            }
        }
        (out, groups)
    }

    #[test]
    fn rows_from_every_batch_come_out_sorted_by_service_then_time_whatever_the_chunk_size() {
        let batches = [
            batch(&[(5, "b"), (1, "a"), (3, "c")]),
            batch(&[]),
            batch(&[(2, "b"), (4, "a")]),
            batch(&[(0, "c")]),
        ];
        let expected: Vec<(i64, String, i64)> =
            [(1, "a"), (4, "a"), (2, "b"), (5, "b"), (0, "c"), (3, "c")]
                .into_iter()
                .map(|(t, s)| (t, s.to_string(), t * 10))
                .collect();
        for working_bytes in [1, 64, 1 << 20] {
            assert_eq!(
                round_trip(&batches, working_bytes).0,
                expected,
                "{working_bytes}"
            );
        }
    }

    #[test]
    fn a_small_bound_closes_row_groups_early_and_a_large_one_does_not() {
        let rows: Vec<(i64, String)> = (0..20_000).map(|i| (i, format!("svc-{}", i % 7))).collect();
        let rows: Vec<(i64, &str)> = rows.iter().map(|(t, s)| (*t, s.as_str())).collect();
        let batches = [batch(&rows[..10_000]), batch(&rows[10_000..])];
        let (small, small_groups) = round_trip(&batches, 64 << 10);
        let (large, large_groups) = round_trip(&batches, 256 << 20);
        assert_eq!(small, large);
        assert_eq!(small.len(), 20_000);
        assert_eq!(large_groups, 1);
        assert!(small_groups > 1, "{small_groups} row groups");
    }
}
