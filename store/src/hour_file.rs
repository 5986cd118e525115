//! A signal's file for one hour together with what derives from it: a spans file's rollup is
//! written (synced, renamed) before the file and deleted with it, so every spans file has its
//! rollup whoever writes or removes it (flush, compaction, retention).

use std::path::Path;

use arrow::array::RecordBatch;

use crate::catalog::SegmentFile;
use crate::error::Result;
use crate::parquet_files::{self, FileLayout};
use crate::rollup::sidecar;
use crate::signal::Signal;

/// Writes `signal`'s rows of `hour` (from WAL segments `<= wal_segment`) as a new file under
/// `root`, a spans file's rollup first; `replaces` as [`parquet_files::write_hour`] says.
pub fn write(
    root: &Path,
    (signal, hour, wal_segment): (Signal, i64, u64),
    batches: &[RecordBatch],
    layout: FileLayout,
    replaces: &[String],
) -> Result<SegmentFile> {
    let path = parquet_files::new_path(root, signal, hour, wal_segment, replaces);
    if signal == Signal::Spans {
        sidecar::write(&path, batches)?;
    }
    parquet_files::write_hour(path, (signal, hour, wal_segment), batches, layout, replaces)
}

/// Removes a file of `signal`, and a spans file's rollup with it.
pub fn delete(signal: Signal, file: &SegmentFile) {
    if signal == Signal::Spans {
        sidecar::delete(&file.path);
    }
    parquet_files::delete(file);
}
