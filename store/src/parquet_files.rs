//! Parquet segment files: how a flush writes them and how start-up finds them again.
//!
//! Layout: `parquet/<signal>/<YYYY-MM-DD>/<HH>/<wal segment>.parquet`. Each file holds one
//! signal's rows of one hour, sorted by service then time ([`crate::sorted_write`]), laid out as [`crate::parquet_layout`] says. Its key-value metadata records the time
//! bounds and the last WAL segment it covers, which is what lets start-up skip WAL records
//! that already reached Parquet.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::array::Int64Array;
use arrow::array::RecordBatch;
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::cmp::eq;
use arrow::datatypes::SchemaRef;
use chrono::DateTime;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::Signal;
use crate::catalog::{SegmentFile, time_column};
use crate::durable::sync_dir;
use crate::error::{Result, StoreError};
use crate::schema::schema;
use crate::sorted_write::write_sorted;

const HOUR_NS: i64 = 3_600_000_000_000;
const META_MIN: &str = "vigil.min_time";
const META_MAX: &str = "vigil.max_time";
const META_SEGMENT: &str = "vigil.wal_segment";
const META_REPLACES: &str = "vigil.replaces";

/// The hour partition of a nanosecond timestamp.
pub fn hour_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(HOUR_NS)
}

fn hour_dir(root: &Path, signal: Signal, hour: i64) -> PathBuf {
    let start = DateTime::from_timestamp(hour.saturating_mul(3600), 0).unwrap_or_default();
    root.join(signal.table_name())
        .join(start.format("%Y-%m-%d").to_string())
        .join(start.format("%H").to_string())
}

/// Splits a batch into per-hour batches.
pub fn split_by_hour(batch: &RecordBatch) -> Result<Vec<(i64, RecordBatch)>> {
    let Some(times) = time_column(batch) else {
        return Ok(vec![]);
    };
    let hours: Int64Array = times.iter().map(|t| t.map(hour_of)).collect();
    let mut distinct: Vec<i64> = hours.iter().flatten().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == 1 {
        return Ok(vec![(distinct[0], batch.clone())]);
    }
    distinct
        .into_iter()
        .map(|h| {
            let mask = eq(&hours, &Int64Array::new_scalar(h))?;
            Ok((h, filter_record_batch(batch, &mask)?))
        })
        .collect()
}

/// Where and how [`write_hour`] writes a file.
#[derive(Debug, Clone, Copy)]
pub struct FileLayout {
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Memory the write may use beyond its input rows (see [`crate::sorted_write`]).
    pub working_bytes: usize,
}

/// The path of a new file of `signal` for `hour` covering WAL segments `<= wal_segment`; a
/// file that replaces others (a compaction) gets a name of its own.
pub fn new_path(
    root: &Path,
    signal: Signal,
    hour: i64,
    wal_segment: u64,
    replaces: &[String],
) -> PathBuf {
    let stem = if replaces.is_empty() {
        format!("{wal_segment:020}")
    } else {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{wal_segment:020}-merged-{nanos}")
    };
    hour_dir(root, signal, hour).join(format!("{stem}.parquet"))
}

/// Writes one signal's rows of one hour, all from WAL segments `<= wal_segment`, as the new
/// file `path` (from [`new_path`]). `replaces` names the files (same directory) whose rows
/// this file holds instead: start-up deletes them if a crash left them behind.
pub fn write_hour(
    path: PathBuf,
    (signal, hour, wal_segment): (Signal, i64, u64),
    batches: &[RecordBatch],
    layout: FileLayout,
    replaces: &[String],
) -> Result<SegmentFile> {
    let table_schema = schema(signal);
    let (min_time, max_time) = batches
        .iter()
        .filter_map(crate::catalog::time_bounds)
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
        .unwrap_or((0, 0));
    let props = crate::parquet_layout::apply(
        WriterProperties::builder(),
        &table_schema,
        layout.row_group_rows,
    )?
    .set_key_value_metadata(Some(vec![
        KeyValue::new(META_MIN.to_string(), min_time.to_string()),
        KeyValue::new(META_MAX.to_string(), max_time.to_string()),
        KeyValue::new(META_SEGMENT.to_string(), wal_segment.to_string()),
        KeyValue::new(META_REPLACES.to_string(), replaces.join(",")),
    ]))
    .build();
    let bytes = write_parquet(&path, table_schema.clone(), props, |writer| {
        write_sorted(writer, &table_schema, batches, layout.working_bytes)
    })?;
    Ok(SegmentFile {
        path,
        min_time,
        max_time,
        rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
        bytes,
        hour,
        wal_segment,
    })
}

/// Writes a Parquet file at `path` (creating its directory) with what `rows` writes to it:
/// through a `.tmp` file, synced and renamed, so the file is either whole or absent. Returns
/// its size.
pub(crate) fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    props: WriterProperties,
    rows: impl FnOnce(&mut ArrowWriter<File>) -> Result<()>,
) -> Result<u64> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file =
        File::create(&tmp).map_err(|e| StoreError::io(format!("creating {}", tmp.display()), e))?;
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))?;
    rows(&mut writer)?;
    let file = writer.into_inner()?;
    file.sync_all()
        .map_err(|e| StoreError::io(format!("fsync of {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io(format!("renaming {}", tmp.display()), e))?;
    sync_dir(dir)?;
    // Queries hand this size to the Parquet reader, which finds the footer by it.
    fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| StoreError::io(format!("reading the size of {}", path.display()), e))
}

/// Reads the footer of an existing segment file: the file and the names of files it replaces.
fn load_file(path: &Path) -> Result<(SegmentFile, Vec<String>)> {
    let file =
        File::open(path).map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
    let bytes = file
        .metadata()
        .map_err(|e| StoreError::io(format!("reading the size of {}", path.display()), e))?
        .len();
    let reader = SerializedFileReader::new(file)?;
    let meta = reader.metadata().file_metadata();
    let kv: HashMap<&str, &str> = meta
        .key_value_metadata()
        .map(|kvs| {
            kvs.iter()
                .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_deref()?)))
                .collect()
        })
        .unwrap_or_default();
    let num = |key: &str| -> Result<i64> {
        kv.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| {
            StoreError::Parquet(parquet::errors::ParquetError::General(format!(
                "{} lacks {key} metadata",
                path.display()
            )))
        })
    };
    let min_time = num(META_MIN)?;
    let replaces = kv
        .get(META_REPLACES)
        .map(|v| {
            v.split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let file = SegmentFile {
        path: path.to_path_buf(),
        min_time,
        max_time: num(META_MAX)?,
        rows: meta.num_rows() as u64,
        bytes,
        hour: hour_of(min_time),
        wal_segment: num(META_SEGMENT)? as u64,
    };
    Ok((file, replaces))
}

/// Every file under `dir`, at any depth, sorted; none when `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    let mut found = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Every segment file under `root`. Leftovers of interrupted flushes (`*.tmp`) and files a
/// finished compaction replaced (but a crash left behind) are deleted.
pub fn scan(root: &Path) -> Result<Vec<(Signal, SegmentFile)>> {
    let mut found = Vec::new();
    for signal in Signal::ALL {
        for path in files_under(&root.join(signal.table_name())) {
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = fs::remove_file(&path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                match load_file(&path) {
                    Ok((file, replaces)) => found.push((signal, file, replaces)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable segment file")
                    }
                }
            }
        }
    }
    let replaced: std::collections::HashSet<PathBuf> = found
        .iter()
        .flat_map(|(_, f, replaces)| {
            replaces
                .iter()
                .filter_map(|name| Some(f.path.parent()?.join(name)))
        })
        .collect();
    let mut live = Vec::with_capacity(found.len());
    for (signal, file, _) in found {
        if replaced.contains(&file.path) {
            let _ = fs::remove_file(&file.path);
        } else {
            live.push((signal, file));
        }
    }
    Ok(live)
}

impl SegmentFile {
    /// Reads every row of the file.
    pub fn read_all(&self) -> Result<Vec<RecordBatch>> {
        let f = File::open(&self.path)
            .map_err(|e| StoreError::io(format!("opening {}", self.path.display()), e))?;
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)?.build()?;
        Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

/// Highest WAL segment already in Parquet, per (signal, hour).
pub type Coverage = HashMap<(Signal, i64), u64>;

/// Builds the coverage map of `files`.
pub fn coverage<'a>(files: impl IntoIterator<Item = (Signal, &'a SegmentFile)>) -> Coverage {
    let mut map = Coverage::new();
    for (signal, f) in files {
        let e = map.entry((signal, f.hour)).or_insert(0);
        *e = (*e).max(f.wal_segment);
    }
    map
}

/// Rows of a WAL record (from `segment`) that Parquet does not have yet.
pub fn uncovered(
    signal: Signal,
    segment: u64,
    batch: &RecordBatch,
    cov: &Coverage,
) -> Result<Vec<RecordBatch>> {
    if !cov.keys().any(|(s, _)| *s == signal) {
        return Ok(vec![batch.clone()]);
    }
    Ok(split_by_hour(batch)?
        .into_iter()
        .filter(|(hour, _)| cov.get(&(signal, *hour)).is_none_or(|c| *c < segment))
        .map(|(_, b)| b)
        .collect())
}

/// Removes a file (and its hour directory when that becomes empty).
pub fn delete(file: &SegmentFile) {
    if let Err(e) = fs::remove_file(&file.path) {
        tracing::warn!(path = %file.path.display(), error = %e, "could not delete segment file");
    }
    if let Some(dir) = file.path.parent() {
        let _ = fs::remove_dir(dir);
    }
}
