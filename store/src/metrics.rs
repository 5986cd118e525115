//! The store's figures for `/metrics`: WAL, flushes, retention, tail, Parquet files and queries.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::exposition::{Exposition, Single};
use crate::{Reader, Refusal, Signal, Store};

impl Store {
    /// Writes the store's metrics to `page`.
    pub fn render_metrics(&self, page: &mut Exposition) {
        let wal = self.wal_stats();
        let flush = self.flush_stats();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let catalog = self.catalog();
        for (kind, name, help, value) in [
            (
                Single::Counter,
                "vigil_wal_bytes_total",
                "Bytes appended to the write-ahead log.",
                load(&wal.bytes),
            ),
            (
                Single::Counter,
                "vigil_wal_records_total",
                "Records appended to the write-ahead log.",
                load(&wal.records),
            ),
            (
                Single::Counter,
                "vigil_wal_syncs_total",
                "fsync calls on the write-ahead log.",
                load(&wal.syncs),
            ),
            (
                Single::Gauge,
                "vigil_wal_segment_bytes",
                "Bytes in the current WAL segment.",
                load(&wal.segment_bytes),
            ),
            (
                Single::Gauge,
                "vigil_wal_queue_depth",
                "Write requests waiting for the WAL writer.",
                wal.queue_depth.load(Ordering::Relaxed) as f64,
            ),
            (
                Single::Counter,
                "vigil_flush_total",
                "Completed flushes of the tail to Parquet.",
                load(&flush.flushes),
            ),
            (
                Single::Counter,
                "vigil_query_files_skipped_by_attributes_total",
                "Parquet files queries skipped because attribute bloom filters ruled out the value searched for.",
                catalog.skipped_by_attributes() as f64,
            ),
            (
                Single::Counter,
                "vigil_query_row_groups_skipped_by_attributes_total",
                "Parquet row groups queries skipped because attribute bloom filters ruled out the value searched for.",
                catalog.row_groups_skipped_by_attributes() as f64,
            ),
            (
                Single::Counter,
                "vigil_flush_failures_total",
                "Failed flushes.",
                load(&flush.failures),
            ),
            (
                Single::Counter,
                "vigil_flush_duration_seconds_total",
                "Time spent flushing.",
                load(&flush.micros_total) / 1e6,
            ),
            (
                Single::Gauge,
                "vigil_flush_last_duration_seconds",
                "Duration of the last flush.",
                load(&flush.last_micros) / 1e6,
            ),
            (
                Single::Counter,
                "vigil_flush_rows_total",
                "Rows written to Parquet.",
                load(&flush.rows),
            ),
            (
                Single::Counter,
                "vigil_retention_deleted_files_total",
                "Parquet files deleted by retention.",
                load(&flush.expired_files),
            ),
            (
                Single::Gauge,
                "vigil_tail_bytes",
                "Memory held by the in-memory tail.",
                catalog.tail_bytes() as f64,
            ),
        ] {
            page.single(kind, name, help, value);
        }
        let rows = catalog.tail_rows();
        let files = catalog.files();
        let count = |s: Signal| files.iter().filter(|(fs, _)| *fs == s).count() as f64;
        let bytes = |s: Signal| {
            files
                .iter()
                .filter(|(fs, _)| *fs == s)
                .map(|(_, f)| f.bytes)
                .sum::<u64>() as f64
        };
        type PerSignal<'a> = (&'static str, &'static str, &'a dyn Fn(Signal) -> f64);
        let per_signal: [PerSignal; 3] = [
            ("vigil_tail_rows", "Rows in the in-memory tail.", &|s| {
                rows[s.index()] as f64
            }),
            ("vigil_parquet_files", "Parquet segment files.", &count),
            (
                "vigil_parquet_bytes",
                "Bytes in Parquet segment files.",
                &bytes,
            ),
        ];
        for (name, help, value) in per_signal {
            let mut family = page.gauge(name, help);
            for s in Signal::ALL {
                family.sample(&[("signal", s.table_name())], value(s));
            }
        }
        self.inner.queries.render(page);
    }

    /// Counts a query of `reader` refused before it reached the store (the query API's
    /// concurrency limit), beside the store's own refusals in `/metrics`.
    pub fn count_refusal(&self, reader: Reader, reason: Refusal) {
        self.inner.queries.refused(reader, reason);
    }
}
