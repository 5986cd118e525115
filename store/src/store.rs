//! The store facade: open with WAL replay, durable appends, flushes, retention, SQL sessions.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionConfig;
use tokio::sync::{Notify, oneshot};

use crate::catalog::{Catalog, SegmentFile, TailEntry};
use crate::compaction::{self, CompactionReport};
use crate::config::StoreConfig;
use crate::error::{Result, StoreError};
use crate::hour_file;
use crate::parquet_files::{self, FileLayout, split_by_hour};
use crate::table::SignalTable;
use crate::wal::{self, encode_record, list_segments, read_segment, segment_path};
use crate::writer::{Command, WalStats, Writer};
use crate::{Signal, rollup, schema};

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

struct Inner {
    config: StoreConfig,
    wal_dir: PathBuf,
    parquet_dir: PathBuf,
    catalog: Arc<Catalog>,
    tx: Mutex<Option<SyncSender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    wal_stats: Arc<WalStats>,
    flush_stats: FlushStats,
    flush_lock: tokio::sync::Mutex<()>,
    flush_wanted: Notify,
    replay: ReplayReport,
    /// Shared by every query session, so Parquet footers read once stay cached.
    runtime: Arc<RuntimeEnv>,
}

/// Vigil's columnar store. Cheap to clone; all clones share one WAL and catalog.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.inner.config.data_dir)
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir`: loads the Parquet catalog, replays the
    /// WAL into the tail (skipping what Parquet already has) and starts the WAL writer thread.
    pub fn open(config: StoreConfig) -> Result<Store> {
        let wal_dir = config.data_dir.join("wal");
        let parquet_dir = config.data_dir.join("parquet");
        for dir in [&wal_dir, &parquet_dir] {
            fs::create_dir_all(dir)
                .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        }
        let catalog = Arc::new(Catalog::default());
        let files = parquet_files::scan(&parquet_dir)?;
        let spans: Vec<&SegmentFile> = files
            .iter()
            .filter(|(s, _)| *s == Signal::Spans)
            .map(|(_, f)| f)
            .collect();
        rollup::sidecar::repair(&parquet_dir, &spans)?;
        let coverage = parquet_files::coverage(files.iter().map(|(s, f)| (*s, f)));
        catalog.add_files(files);

        let mut replay = ReplayReport::default();
        let segments = list_segments(&wal_dir)?;
        let mut last = (0u64, 0u64);
        let mut entries = Vec::new();
        for &id in &segments {
            let contents = read_segment(&segment_path(&wal_dir, id))?;
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
                for batch in parquet_files::uncovered(record.signal, id, &record.batch, &coverage)?
                {
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

        let wal_stats = Arc::new(WalStats::default());
        let writer = Writer::open(
            wal_dir.clone(),
            last.0,
            last.1,
            config.fsync,
            catalog.clone(),
            wal_stats.clone(),
        )?;
        let (tx, rx) = sync_channel(config.wal_queue_capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("vigil-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::io("starting the WAL writer thread", e))?;
        Ok(Store {
            inner: Arc::new(Inner {
                config,
                wal_dir,
                parquet_dir,
                catalog,
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                wal_stats,
                flush_stats: FlushStats::default(),
                flush_lock: tokio::sync::Mutex::new(()),
                flush_wanted: Notify::new(),
                replay,
                runtime: RuntimeEnvBuilder::new().build_arc()?,
            }),
        })
    }

    /// The catalog of queryable data.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    /// What start-up recovered.
    pub fn replay_report(&self) -> &ReplayReport {
        &self.inner.replay
    }

    /// WAL counters.
    pub fn wal_stats(&self) -> &WalStats {
        &self.inner.wal_stats
    }

    /// Flush and retention counters.
    pub fn flush_stats(&self) -> &FlushStats {
        &self.inner.flush_stats
    }

    /// True while the tail is over its memory limit (new writes are refused until a flush).
    pub fn is_over_budget(&self) -> bool {
        self.inner.catalog.tail_bytes() > self.inner.config.tail_limit.0 as usize
    }

    fn sender(&self) -> Result<SyncSender<Command>> {
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::WriterStopped)
    }

    /// Makes `batch` durable in the WAL (per the fsync policy) and queryable; returns once both hold.
    ///
    /// Refuses with a retryable error, without writing anything, when the WAL queue is full
    /// or the tail is over its memory limit.
    pub async fn append(&self, signal: Signal, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let expected = schema::schema(signal);
        // Batches built by the collector share the schema's Arc: a pointer check is enough then.
        if !Arc::ptr_eq(batch.schema_ref(), &expected) && batch.schema_ref() != &expected {
            return Err(StoreError::SchemaMismatch {
                signal,
                detail: format!("got {:?}", batch.schema_ref().fields()),
            });
        }
        let used = self.inner.catalog.tail_bytes();
        let limit = self.inner.config.tail_limit.0 as usize;
        if used > limit {
            self.inner.flush_wanted.notify_one();
            return Err(StoreError::MemoryBudget { used, limit });
        }
        if used > self.inner.config.flush_size.0 as usize {
            self.inner.flush_wanted.notify_one();
        }
        let record = encode_record(signal, &batch)?;
        let (ack, done) = oneshot::channel();
        let cmd = Command::Append {
            signal,
            record,
            batch,
            ack,
        };
        self.inner
            .wal_stats
            .queue_depth
            .fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.sender()?.try_send(cmd) {
            self.inner
                .wal_stats
                .queue_depth
                .fetch_sub(1, Ordering::Relaxed);
            return Err(match e {
                TrySendError::Full(_) => StoreError::QueueFull,
                TrySendError::Disconnected(_) => StoreError::WriterStopped,
            });
        }
        done.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Writes everything in the tail to Parquet and drops the WAL segments it covered.
    pub async fn flush(&self) -> Result<FlushReport> {
        let _guard = self.inner.flush_lock.lock().await;
        let started = Instant::now();
        let (ack, done) = oneshot::channel();
        let sender = self.sender()?;
        self.inner
            .wal_stats
            .queue_depth
            .fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || sender.send(Command::Rotate { ack }))
            .await
            .map_err(|e| StoreError::WalWrite(e.to_string()))?
            .map_err(|_| StoreError::WriterStopped)?;
        let segment = done.await.map_err(|_| StoreError::WriterStopped)??;
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || this.flush_segments(segment))
            .await
            .map_err(|e| StoreError::WalWrite(format!("flush task: {e}")))?;
        let stats = &self.inner.flush_stats;
        match &result {
            Ok(report) => {
                let micros = started.elapsed().as_micros() as u64;
                stats.flushes.fetch_add(1, Ordering::Relaxed);
                stats.micros_total.fetch_add(micros, Ordering::Relaxed);
                stats.last_micros.store(micros, Ordering::Relaxed);
                stats.rows.fetch_add(report.rows, Ordering::Relaxed);
                if report.rows > 0 {
                    tracing::debug!(?report, micros, "flushed tail to parquet");
                }
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "flush failed; data stays in the WAL and tail");
            }
        }
        result
    }

    fn flush_segments(&self, segment: u64) -> Result<FlushReport> {
        let tails = self.inner.catalog.tail_up_to(segment);
        let mut files = Vec::new();
        let mut report = FlushReport {
            wal_segment: segment,
            ..Default::default()
        };
        for signal in Signal::ALL {
            let mut by_hour: std::collections::BTreeMap<i64, Vec<RecordBatch>> = Default::default();
            for entry in &tails[signal.index()] {
                for (hour, batch) in split_by_hour(&entry.batch)? {
                    by_hour.entry(hour).or_default().push(batch);
                }
            }
            for (hour, batches) in by_hour {
                let file = hour_file::write(
                    &self.inner.parquet_dir,
                    (signal, hour, segment),
                    &batches,
                    self.layout(),
                    &[],
                )?;
                report.rows += file.rows;
                report.files += 1;
                files.push((signal, file));
            }
        }
        self.inner.catalog.commit_flush(segment, files);
        for id in list_segments(&self.inner.wal_dir)?
            .into_iter()
            .filter(|id| *id <= segment)
        {
            let path = wal::segment_path(&self.inner.wal_dir, id);
            fs::remove_file(&path)
                .map_err(|e| StoreError::io(format!("removing {}", path.display()), e))?;
        }
        Ok(report)
    }

    /// Deletes Parquet files older than the retention age, then the oldest while over the size limit.
    pub fn enforce_retention(&self) -> usize {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i64;
        let cutoff = now.saturating_sub(self.inner.config.retention_age.0.as_nanos() as i64);
        let mut removed = self.inner.catalog.remove_files(|_, f| f.max_time < cutoff);
        let mut files = self.inner.catalog.files();
        let mut total: u64 = files.iter().map(|(_, f)| f.bytes).sum();
        let limit = self.inner.config.retention_size.0;
        if total > limit {
            files.sort_by_key(|(_, f)| f.max_time);
            let mut doomed = std::collections::HashSet::new();
            for (_, f) in &files {
                if total <= limit {
                    break;
                }
                total -= f.bytes;
                doomed.insert(f.path.clone());
            }
            removed.extend(
                self.inner
                    .catalog
                    .remove_files(|_, f| doomed.contains(&f.path)),
            );
        }
        for (signal, f) in &removed {
            hour_file::delete(*signal, f);
        }
        self.inner
            .flush_stats
            .expired_files
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        removed.len()
    }

    fn layout(&self) -> FileLayout {
        FileLayout {
            row_group_rows: self.inner.config.row_group_rows,
            working_bytes: self.inner.config.write_memory.0 as usize,
        }
    }

    /// Merges small files of finished hours (see [`crate::compaction`]), reading at most
    /// `write_memory` of decoded rows per merge.
    pub fn compact(&self) -> Result<CompactionReport> {
        let config = &self.inner.config;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i64;
        let report = compaction::compact(
            &self.inner.catalog,
            &self.inner.parquet_dir,
            self.layout(),
            now,
            config.flush_interval.0.as_nanos() as i64,
        )?;
        self.inner
            .flush_stats
            .compacted_files
            .fetch_add(report.inputs as u64, Ordering::Relaxed);
        Ok(report)
    }

    /// Runs flushes (on the interval, or early when the tail grows) and retention until `shutdown` fires.
    pub async fn run_background(&self, shutdown: Arc<Notify>) {
        let interval = self
            .inner
            .config
            .flush_interval
            .0
            .max(Duration::from_millis(100));
        let mut retention_due = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.notified() => break,
                _ = tokio::time::sleep(interval) => {}
                _ = self.inner.flush_wanted.notified() => {}
            }
            let _ = self.flush().await;
            if Instant::now() >= retention_due {
                let this = self.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    this.enforce_retention();
                    if let Err(e) = this.compact() {
                        tracing::warn!(error = %e, "compaction failed; the small files stay and are retried later");
                    }
                })
                .await;
                retention_due = Instant::now() + Duration::from_secs(60);
            }
        }
    }

    /// A SQL session with a table per signal (`spans`, `logs`, `metrics`, `alerts`,
    /// `anomalies`) and the `span_rollup` of the spans registered.
    pub fn session(&self) -> Result<SessionContext> {
        let mut config = SessionConfig::new().with_information_schema(true);
        let options = config.options_mut();
        options.execution.collect_statistics = false;
        options.execution.parquet.pushdown_filters = true;
        options.execution.parquet.reorder_filters = true;
        let ctx = SessionContext::new_with_config_rt(config, self.inner.runtime.clone());
        for signal in Signal::ALL {
            ctx.register_table(
                signal.table_name(),
                Arc::new(SignalTable::new(signal, self.inner.catalog.clone())),
            )?;
        }
        ctx.register_table(
            rollup::TABLE,
            Arc::new(rollup::RollupTable::new(self.inner.catalog.clone())),
        )?;
        Ok(ctx)
    }

    /// The options every query of users' SQL runs with: DDL, DML and other statements
    /// (`SET`, transactions…) are refused, so a query can only read.
    pub fn read_only() -> SQLOptions {
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
    }

    /// Stops the WAL writer after it has handled everything already sent. Later appends fail.
    pub fn close(&self) {
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}
