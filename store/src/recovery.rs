//! What start-up restores: the Parquet catalog (deleting files a compaction replaced,
//! repairing rollups) and the tail, from the WAL rows no Parquet file covers yet.

use std::path::Path;
use std::sync::Arc;

use crate::catalog::{Catalog, SegmentFile, TailEntry};
use crate::error::Result;
use crate::parquet_files;
use crate::rollup;
use crate::signal::Signal;
use crate::wal::{list_segments, read_segment, segment_path};

/// What start-up recovered from the WAL.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segments read.
    pub segments: usize,
    /// Rows put back into the tail.
    pub rows: u64,
    /// Rows skipped because Parquet already had them.
    pub rows_already_flushed: u64,
    /// Bytes of torn or corrupt record data cut off the end of the last segment.
    pub torn_bytes: u64,
}

/// Loads the files under `parquet_dir` into `catalog` and replays the WAL in `wal_dir` into
/// its tail; returns what was replayed and where new writes continue (segment, offset).
pub(crate) fn restore(
    wal_dir: &Path,
    parquet_dir: &Path,
    catalog: &Arc<Catalog>,
) -> Result<(ReplayReport, (u64, u64))> {
    let files = parquet_files::scan(parquet_dir)?;
    let spans: Vec<&SegmentFile> = files
        .iter()
        .filter(|(s, _)| *s == Signal::Spans)
        .map(|(_, f)| f)
        .collect();
    rollup::sidecar::repair(parquet_dir, &spans)?;
    let coverage = parquet_files::coverage(files.iter().map(|(s, f)| (*s, f)));
    catalog.add_files(files);

    let mut replay = ReplayReport::default();
    let segments = list_segments(wal_dir)?;
    let mut last = (0u64, 0u64);
    let mut entries = Vec::new();
    for &id in &segments {
        let contents = read_segment(&segment_path(wal_dir, id))?;
        replay.segments += 1;
        if contents.valid_len < contents.file_len {
            replay.torn_bytes += contents.file_len - contents.valid_len;
            tracing::warn!(
                segment = id,
                torn = contents.file_len - contents.valid_len,
                "cutting off a torn WAL tail"
            );
        }
        for record in contents.records {
            let total = record.batch.num_rows() as u64;
            let mut kept = 0;
            for batch in parquet_files::uncovered(record.signal, id, &record.batch, &coverage)? {
                kept += batch.num_rows() as u64;
                if let Some(entry) = TailEntry::new(id, batch) {
                    entries.push((record.signal, entry));
                }
            }
            replay.rows += kept;
            replay.rows_already_flushed += total - kept;
        }
        last = (id, contents.valid_len);
    }
    catalog.append_tail(entries);
    // New writes must land in a segment no Parquet file claims to cover, or a later
    // replay would skip them.
    let max_covered = coverage.values().copied().max().unwrap_or(0);
    if last.0 <= max_covered {
        last = (max_covered + 1, 0);
    }
    if replay.segments > 0 {
        tracing::info!(?replay, "replayed write-ahead log");
    }
    Ok((replay, last))
}
