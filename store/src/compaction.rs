//! Compaction: merges the many small files that frequent flushes leave in a finished hour into
//! fewer large ones, so queries open fewer files and read longer row groups.
//!
//! Memory is bounded: one merge reads at most the write bound of decoded rows (plus the file
//! that crosses it), and writes within that bound too. The merged file
//! names the files it replaces in its metadata and is published before they are deleted, so a
//! crash at any point leaves either the inputs or the output, never both counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::Signal;
use crate::catalog::{Catalog, SegmentFile};
use crate::error::Result;
use crate::hour_file;
use crate::parquet_files::{FileLayout, hour_of};

/// What one compaction pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Files merged away.
    pub inputs: usize,
    /// Files written.
    pub outputs: usize,
}

/// Merges runs of files of the same signal and finished hour. An hour counts as finished
/// once `now_ns` is past its end by `grace_ns`. A merge reads at most `layout.working_bytes`
/// of decoded rows (plus the one file that crosses the bound) and writes within the same
/// bound; a file larger than the bound on disk is left as it is.
pub fn compact(
    catalog: &Catalog,
    root: &std::path::Path,
    layout: FileLayout,
    now_ns: i64,
    grace_ns: i64,
) -> Result<CompactionReport> {
    let current_hour = hour_of(now_ns.saturating_sub(grace_ns));
    let mut groups: BTreeMap<(Signal, i64), Vec<Arc<SegmentFile>>> = BTreeMap::new();
    for (signal, file) in catalog.files() {
        if file.hour < current_hour {
            groups.entry((signal, file.hour)).or_default().push(file);
        }
    }
    let mut report = CompactionReport::default();
    for ((signal, hour), mut files) in groups {
        files.sort_by_key(|f| f.wal_segment);
        for run in runs(&files, layout.working_bytes as u64) {
            // Files expand when decoded: read them one at a time and merge what has been
            // read once it reaches the bound.
            let (mut first, mut decoded, mut batches) = (0, 0, Vec::new());
            for (i, f) in run.iter().enumerate() {
                let rows = f.read_all()?;
                decoded += rows
                    .iter()
                    .map(RecordBatch::get_array_memory_size)
                    .sum::<usize>();
                batches.extend(rows);
                let full = decoded >= layout.working_bytes;
                if !full && i + 1 < run.len() {
                    continue;
                }
                if i > first {
                    merge(
                        catalog,
                        root,
                        signal,
                        hour,
                        &run[first..=i],
                        &batches,
                        layout,
                    )?;
                    report.inputs += i + 1 - first;
                    report.outputs += 1;
                }
                (first, decoded) = (i + 1, 0);
                batches.clear();
            }
        }
    }
    Ok(report)
}

/// Writes the rows of `run` (read into `batches`) as one file, publishes it in place of the
/// run, then deletes the run's files.
fn merge(
    catalog: &Catalog,
    root: &std::path::Path,
    signal: Signal,
    hour: i64,
    run: &[Arc<SegmentFile>],
    batches: &[RecordBatch],
    layout: FileLayout,
) -> Result<()> {
    let segment = run.iter().map(|f| f.wal_segment).max().unwrap_or(0);
    let names: Vec<String> = run
        .iter()
        .filter_map(|f| Some(f.path.file_name()?.to_string_lossy().into_owned()))
        .collect();
    let merged = hour_file::write(root, (signal, hour, segment), batches, layout, &names)?;
    catalog.replace_files(signal, run, merged);
    for f in run {
        hour_file::delete(signal, f);
    }
    Ok(())
}

/// Consecutive groups of at least two files, each file no larger than `max_bytes`: a file
/// that big alone (an earlier merge's output) is never read again.
fn runs(files: &[Arc<SegmentFile>], max_bytes: u64) -> Vec<&[Arc<SegmentFile>]> {
    files
        .split(|f| f.bytes > max_bytes)
        .filter(|run| run.len() >= 2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: u64) -> Arc<SegmentFile> {
        Arc::new(SegmentFile {
            path: "x".into(),
            min_time: 0,
            max_time: 0,
            rows: 1,
            bytes,
            hour: 0,
            wal_segment: 0,
        })
    }

    #[test]
    fn runs_leave_out_large_files_and_singletons() {
        let files: Vec<_> = [10, 10, 10, 50, 10, 60, 5, 5, 40]
            .into_iter()
            .map(file)
            .collect();
        let sizes: Vec<Vec<u64>> = runs(&files, 40)
            .iter()
            .map(|r| r.iter().map(|f| f.bytes).collect())
            .collect();
        assert_eq!(sizes, vec![vec![10, 10, 10], vec![5, 5, 40]]);
        assert!(runs(&files[..1], 100).is_empty());
    }
}
