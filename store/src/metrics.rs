//! The store's counters in Prometheus text format, and the helper that writes one metric.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::{Signal, Store};

/// Writes one metric: its `HELP` and `TYPE` lines, then a sample per `(labels, value)`, where
/// `labels` is empty or a rendered `{k="v",...}`.
pub fn series(out: &mut String, name: &str, kind: &str, help: &str, values: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in values {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

impl Store {
    /// Appends the store's metrics to `out` (Prometheus text exposition format 0.0.4).
    pub fn render_metrics(&self, out: &mut String) {
        let wal = self.wal_stats();
        let flush = self.flush_stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        series(
            out,
            "vigil_wal_bytes_total",
            "counter",
            "Bytes appended to the write-ahead log.",
            &[("", load(&wal.bytes))],
        );
        series(
            out,
            "vigil_wal_records_total",
            "counter",
            "Records appended to the write-ahead log.",
            &[("", load(&wal.records))],
        );
        series(
            out,
            "vigil_wal_syncs_total",
            "counter",
            "fsync calls on the write-ahead log.",
            &[("", load(&wal.syncs))],
        );
        series(
            out,
            "vigil_wal_segment_bytes",
            "gauge",
            "Bytes in the current WAL segment.",
            &[("", load(&wal.segment_bytes))],
        );
        series(
            out,
            "vigil_wal_queue_depth",
            "gauge",
            "Write requests waiting for the WAL writer.",
            &[("", wal.queue_depth.load(Ordering::Relaxed) as f64)],
        );
        series(
            out,
            "vigil_flush_total",
            "counter",
            "Completed flushes of the tail to Parquet.",
            &[("", load(&flush.flushes))],
        );
        series(
            out,
            "vigil_query_files_skipped_by_attributes_total",
            "counter",
            "Parquet files queries skipped because attribute bloom filters ruled out the value searched for.",
            &[("", self.catalog().skipped_by_attributes() as f64)],
        );
        series(
            out,
            "vigil_query_row_groups_skipped_by_attributes_total",
            "counter",
            "Parquet row groups queries skipped because attribute bloom filters ruled out the value searched for.",
            &[("", self.catalog().row_groups_skipped_by_attributes() as f64)],
        );
        series(
            out,
            "vigil_flush_failures_total",
            "counter",
            "Failed flushes.",
            &[("", load(&flush.failures))],
        );
        series(
            out,
            "vigil_flush_duration_seconds_total",
            "counter",
            "Time spent flushing.",
            &[("", load(&flush.micros_total) / 1e6)],
        );
        series(
            out,
            "vigil_flush_last_duration_seconds",
            "gauge",
            "Duration of the last flush.",
            &[("", load(&flush.last_micros) / 1e6)],
        );
        series(
            out,
            "vigil_flush_rows_total",
            "counter",
            "Rows written to Parquet.",
            &[("", load(&flush.rows))],
        );
        series(
            out,
            "vigil_retention_deleted_files_total",
            "counter",
            "Parquet files deleted by retention.",
            &[("", load(&flush.expired_files))],
        );
        series(
            out,
            "vigil_tail_bytes",
            "gauge",
            "Memory held by the in-memory tail.",
            &[("", self.catalog().tail_bytes() as f64)],
        );
        let rows = self.catalog().tail_rows();
        let labels: Vec<String> = Signal::ALL
            .iter()
            .map(|s| format!("{{signal=\"{s}\"}}"))
            .collect();
        let per_signal = |f: &dyn Fn(Signal) -> f64| -> Vec<(&str, f64)> {
            Signal::ALL
                .iter()
                .zip(&labels)
                .map(|(s, l)| (l.as_str(), f(*s)))
                .collect()
        };
        series(
            out,
            "vigil_tail_rows",
            "gauge",
            "Rows in the in-memory tail.",
            &per_signal(&|s| rows[s.index()] as f64),
        );
        let files = self.catalog().files();
        let count = |s: Signal| files.iter().filter(|(fs, _)| *fs == s).count() as f64;
        let bytes = |s: Signal| {
            files
                .iter()
                .filter(|(fs, _)| *fs == s)
                .map(|(_, f)| f.bytes)
                .sum::<u64>() as f64
        };
        series(
            out,
            "vigil_parquet_files",
            "gauge",
            "Parquet segment files.",
            &per_signal(&count),
        );
        series(
            out,
            "vigil_parquet_bytes",
            "gauge",
            "Bytes in Parquet segment files.",
            &per_signal(&bytes),
        );
    }
}
