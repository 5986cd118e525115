//! Compaction: merges the many small files that frequent flushes leave in a finished hour into
//! fewer large ones, so queries open fewer files and read longer row groups.
//!
//! Memory is bounded: one merge reads at most `max_input_bytes` of Parquet. The merged file
//! names the files it replaces in its metadata and is published before they are deleted, so a
//! crash at any point leaves either the inputs or the output, never both counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Signal;
use crate::catalog::{Catalog, SegmentFile};
use crate::error::Result;
use crate::parquet_files::{self, hour_of};

/// What one compaction pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Files merged away.
    pub inputs: usize,
    /// Files written.
    pub outputs: usize,
}

/// Merges runs of files of the same signal and finished hour, up to `max_input_bytes` per merge.
/// An hour counts as finished once `now_ns` is past its end by `grace_ns`.
pub fn compact(
    catalog: &Catalog,
    root: &std::path::Path,
    row_group_rows: usize,
    max_input_bytes: u64,
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
        for run in runs(&files, max_input_bytes) {
            let mut batches = Vec::new();
            for f in run {
                batches.extend(parquet_files::read_all(f)?);
            }
            let segment = run.iter().map(|f| f.wal_segment).max().unwrap_or(0);
            let names: Vec<String> = run
                .iter()
                .filter_map(|f| Some(f.path.file_name()?.to_string_lossy().into_owned()))
                .collect();
            let merged = parquet_files::write_hour(
                root,
                signal,
                hour,
                segment,
                &batches,
                row_group_rows,
                &names,
            )?;
            catalog.replace_files(signal, run, merged);
            for f in run {
                parquet_files::delete(signal, f);
            }
            report.inputs += run.len();
            report.outputs += 1;
        }
    }
    Ok(report)
}

/// Consecutive groups of at least two files whose sizes add up to at most `max_bytes`.
fn runs(files: &[Arc<SegmentFile>], max_bytes: u64) -> Vec<&[Arc<SegmentFile>]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut total = 0;
    for (i, f) in files.iter().enumerate() {
        if total + f.bytes > max_bytes && i > start {
            if i - start >= 2 {
                out.push(&files[start..i]);
            }
            start = i;
            total = 0;
        }
        total += f.bytes;
    }
    if files.len() - start >= 2 {
        out.push(&files[start..]);
    }
    out
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
    fn runs_respect_the_size_cap_and_skip_singletons() {
        let files: Vec<_> = [10, 10, 10, 50, 10, 60, 5, 5]
            .into_iter()
            .map(file)
            .collect();
        let sizes: Vec<Vec<u64>> = runs(&files, 40)
            .iter()
            .map(|r| r.iter().map(|f| f.bytes).collect())
            .collect();
        assert_eq!(sizes, vec![vec![10, 10, 10], vec![5, 5]]);
        assert!(runs(&files[..1], 100).is_empty());
    }
}
