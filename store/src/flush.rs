//! The flush, one pipeline: the WAL writer rotates to a new segment; the tail up to it is
//! split by signal and hour; each hour becomes a file (a spans file's rollup first,
//! `hour_file.rs`); the catalog swaps the files in for those tail entries under one lock;
//! then the WAL segments they cover are deleted.

use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use std::path::Path;

use arrow::array::RecordBatch;

use crate::catalog::Catalog;
use crate::error::{Result, StoreError};
use crate::hour_file;
use crate::parquet_files::{FileLayout, split_by_hour};
use crate::signal::Signal;
use crate::wal::{self, list_segments};

/// Counters about flushes and retention, for `/metrics`.
#[derive(Debug, Default)]
pub struct FlushStats {
    /// Completed flushes.
    pub flushes: AtomicU64,
    /// Failed flushes.
    pub failures: AtomicU64,
    /// Total flush time, microseconds.
    pub micros_total: AtomicU64,
    /// Duration of the last flush, microseconds.
    pub last_micros: AtomicU64,
    /// Rows written to Parquet.
    pub rows: AtomicU64,
    /// Files deleted by retention.
    pub expired_files: AtomicU64,
    /// Small files merged away by compaction.
    pub compacted_files: AtomicU64,
}

/// What one flush did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    /// Files written.
    pub files: usize,
    /// Rows written.
    pub rows: u64,
    /// Last WAL segment the flush covered.
    pub wal_segment: u64,
}

impl FlushStats {
    /// Counts a finished flush that started at `started`.
    pub(crate) fn record(&self, result: &Result<FlushReport>, started: Instant) {
        match result {
            Ok(report) => {
                let micros = started.elapsed().as_micros() as u64;
                self.flushes.fetch_add(1, Ordering::Relaxed);
                self.micros_total.fetch_add(micros, Ordering::Relaxed);
                self.last_micros.store(micros, Ordering::Relaxed);
                self.rows.fetch_add(report.rows, Ordering::Relaxed);
                if report.rows > 0 {
                    tracing::debug!(?report, micros, "flushed tail to parquet");
                }
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "flush failed; data stays in the WAL and tail");
            }
        }
    }
}

/// Writes the tail's rows up to WAL segment `segment` into files under `parquet_dir`, makes
/// them visible in place of those rows, and deletes the WAL segments they cover.
pub(crate) fn write_up_to(
    catalog: &Catalog,
    (wal_dir, parquet_dir): (&Path, &Path),
    layout: FileLayout,
    segment: u64,
) -> Result<FlushReport> {
    let tails = catalog.tail_up_to(segment);
    let mut files = Vec::new();
    let mut report = FlushReport {
        wal_segment: segment,
        ..Default::default()
    };
    for signal in Signal::ALL {
        let mut by_hour: BTreeMap<i64, Vec<RecordBatch>> = BTreeMap::new();
        for entry in &tails[signal.index()] {
            for (hour, batch) in split_by_hour(&entry.batch)? {
                by_hour.entry(hour).or_default().push(batch);
            }
        }
        for (hour, batches) in by_hour {
            let file =
                hour_file::write(parquet_dir, (signal, hour, segment), &batches, layout, &[])?;
            report.rows += file.rows;
            report.files += 1;
            files.push((signal, file));
        }
    }
    catalog.commit_flush(segment, files);
    for id in list_segments(wal_dir)?
        .into_iter()
        .filter(|id| *id <= segment)
    {
        let path = wal::segment_path(wal_dir, id);
        fs::remove_file(&path)
            .map_err(|e| StoreError::io(format!("removing {}", path.display()), e))?;
    }
    Ok(report)
}
