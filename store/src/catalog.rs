//! What is queryable right now: the in-memory tail and the Parquet files, per signal.
//!
//! One lock guards both, so a flush makes its Parquet files visible and drops the tail
//! entries they replace in a single step: a query never sees a row twice or not at all.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use arrow::array::{Array, RecordBatch, TimestampNanosecondArray};
use arrow::compute::kernels::aggregate::{max, min};

use crate::Signal;
use crate::schema::TIME;

/// An inclusive nanosecond time range; `None` means unbounded on that side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest time wanted.
    pub start: Option<i64>,
    /// Latest time wanted.
    pub end: Option<i64>,
}

impl TimeRange {
    /// True when `[min, max]` intersects this range.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        self.start.is_none_or(|s| max >= s) && self.end.is_none_or(|e| min <= e)
    }
}

/// A batch acknowledged into the WAL and not yet flushed.
#[derive(Debug, Clone)]
pub struct TailEntry {
    /// WAL segment holding the batch; a flush covering that segment replaces the entry.
    pub segment: u64,
    /// The rows.
    pub batch: RecordBatch,
    /// Smallest `time` in the batch.
    pub min_time: i64,
    /// Largest `time` in the batch.
    pub max_time: i64,
    /// Memory held by the batch.
    pub bytes: usize,
}

impl TailEntry {
    /// Wraps `batch`, reading its time bounds; `None` for an empty batch.
    pub fn new(segment: u64, batch: RecordBatch) -> Option<TailEntry> {
        let (min_time, max_time) = time_bounds(&batch)?;
        let bytes = batch.get_array_memory_size();
        Some(TailEntry {
            segment,
            batch,
            min_time,
            max_time,
            bytes,
        })
    }
}

/// The time column of a store batch.
pub fn time_column(batch: &RecordBatch) -> Option<&TimestampNanosecondArray> {
    batch
        .column_by_name(TIME)?
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
}

/// Smallest and largest `time` of a batch; `None` when it has no rows.
pub fn time_bounds(batch: &RecordBatch) -> Option<(i64, i64)> {
    let times = time_column(batch)?;
    Some((min(times)?, max(times)?))
}

/// One Parquet file of one signal and hour.
#[derive(Debug, Clone)]
pub struct SegmentFile {
    /// Where it is.
    pub path: PathBuf,
    /// Smallest `time` in the file.
    pub min_time: i64,
    /// Largest `time` in the file.
    pub max_time: i64,
    /// Row count.
    pub rows: u64,
    /// Size on disk.
    pub bytes: u64,
    /// Hour partition (`time / 1h`).
    pub hour: i64,
    /// Every WAL segment up to and including this one is in the file, for this signal and hour.
    pub wal_segment: u64,
}

#[derive(Debug, Default)]
pub(crate) struct CatalogState {
    pub tail: [Vec<TailEntry>; Signal::COUNT],
    pub files: [Vec<Arc<SegmentFile>>; Signal::COUNT],
}

/// The store's view of queryable data, shared by the WAL writer, flushes and queries.
#[derive(Debug, Default)]
pub struct Catalog {
    state: RwLock<CatalogState>,
    tail_bytes: AtomicUsize,
    skipped_by_attributes: AtomicU64,
    row_groups_skipped_by_attributes: AtomicU64,
}

/// What a query over one signal reads.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Tail batches overlapping the range.
    pub batches: Vec<RecordBatch>,
    /// Parquet files overlapping the range.
    pub files: Vec<Arc<SegmentFile>>,
}

impl Catalog {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, CatalogState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, CatalogState> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Files queries skipped because their attribute bloom filters ruled them out.
    pub fn skipped_by_attributes(&self) -> u64 {
        self.skipped_by_attributes.load(Ordering::Relaxed)
    }

    /// Row groups queries skipped because their attribute bloom filters ruled them out
    /// (those of skipped files included).
    pub fn row_groups_skipped_by_attributes(&self) -> u64 {
        self.row_groups_skipped_by_attributes
            .load(Ordering::Relaxed)
    }

    pub(crate) fn count_skipped_by_attributes(&self, files: usize, row_groups: usize) {
        self.skipped_by_attributes
            .fetch_add(files as u64, Ordering::Relaxed);
        self.row_groups_skipped_by_attributes
            .fetch_add(row_groups as u64, Ordering::Relaxed);
    }

    /// Memory held by the tail, all signals.
    pub fn tail_bytes(&self) -> usize {
        self.tail_bytes.load(Ordering::Relaxed)
    }

    /// Adds durable batches to the tail.
    pub(crate) fn append_tail(&self, entries: Vec<(Signal, TailEntry)>) {
        let added: usize = entries.iter().map(|(_, e)| e.bytes).sum();
        let mut state = self.write();
        for (signal, entry) in entries {
            state.tail[signal.index()].push(entry);
        }
        self.tail_bytes.fetch_add(added, Ordering::Relaxed);
    }

    /// Tail batches of segments `<= segment`, per signal, for a flush.
    pub(crate) fn tail_up_to(&self, segment: u64) -> [Vec<TailEntry>; Signal::COUNT] {
        let state = self.read();
        Signal::ALL.map(|s| {
            state.tail[s.index()]
                .iter()
                .filter(|e| e.segment <= segment)
                .cloned()
                .collect()
        })
    }

    /// Publishes flushed files and drops the tail entries of segments `<= segment`, atomically.
    pub(crate) fn commit_flush(&self, segment: u64, files: Vec<(Signal, SegmentFile)>) {
        let mut state = self.write();
        for (signal, file) in files {
            state.files[signal.index()].push(Arc::new(file));
        }
        let mut freed = 0;
        for tail in state.tail.iter_mut() {
            tail.retain(|e| {
                let keep = e.segment > segment;
                if !keep {
                    freed += e.bytes;
                }
                keep
            });
        }
        self.tail_bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Swaps `old` files of `signal` for `merged` in one step (a compaction).
    pub(crate) fn replace_files(
        &self,
        signal: Signal,
        old: &[Arc<SegmentFile>],
        merged: SegmentFile,
    ) {
        let mut state = self.write();
        let files = &mut state.files[signal.index()];
        files.retain(|f| !old.iter().any(|o| o.path == f.path));
        files.push(Arc::new(merged));
    }

    /// Registers files found on disk at start-up.
    pub(crate) fn add_files(&self, files: Vec<(Signal, SegmentFile)>) {
        let mut state = self.write();
        for (signal, file) in files {
            state.files[signal.index()].push(Arc::new(file));
        }
    }

    /// Removes the files `doomed` picks from the catalog and returns them (for deletion).
    pub(crate) fn remove_files(
        &self,
        mut doomed: impl FnMut(Signal, &SegmentFile) -> bool,
    ) -> Vec<(Signal, Arc<SegmentFile>)> {
        let mut state = self.write();
        let mut removed = Vec::new();
        for signal in Signal::ALL {
            state.files[signal.index()].retain(|f| {
                let drop = doomed(signal, f);
                if drop {
                    removed.push((signal, f.clone()));
                }
                !drop
            });
        }
        removed
    }

    /// Every Parquet file, all signals.
    pub fn files(&self) -> Vec<(Signal, Arc<SegmentFile>)> {
        let state = self.read();
        Signal::ALL
            .iter()
            .flat_map(|s| state.files[s.index()].iter().map(move |f| (*s, f.clone())))
            .collect()
    }

    /// Rows held in the tail, per signal.
    pub fn tail_rows(&self) -> [usize; Signal::COUNT] {
        let state = self.read();
        Signal::ALL.map(|s| {
            state.tail[s.index()]
                .iter()
                .map(|e| e.batch.num_rows())
                .sum()
        })
    }

    /// What a query over `signal` limited to `range` must read.
    pub fn snapshot(&self, signal: Signal, range: &TimeRange) -> Snapshot {
        let state = self.read();
        Snapshot {
            batches: state.tail[signal.index()]
                .iter()
                .filter(|e| range.overlaps(e.min_time, e.max_time))
                .map(|e| e.batch.clone())
                .collect(),
            files: state.files[signal.index()]
                .iter()
                .filter(|f| range.overlaps(f.min_time, f.max_time))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_overlap_inclusively_and_open_ends_match_everything() {
        let r = TimeRange {
            start: Some(10),
            end: Some(20),
        };
        assert!(r.overlaps(20, 30));
        assert!(r.overlaps(0, 10));
        assert!(!r.overlaps(21, 30));
        assert!(!r.overlaps(0, 9));
        assert!(TimeRange::default().overlaps(i64::MIN, i64::MIN));
        assert!(
            TimeRange {
                start: Some(5),
                end: None
            }
            .overlaps(6, 6)
        );
    }
}
