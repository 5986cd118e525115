//! The store facade: opening (restoring what `recovery.rs` finds), durable appends through the
//! WAL writer thread, the flush (`flush.rs`), retention (`retention.rs`) and compaction on a
//! schedule, and SQL sessions.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;
use tokio::sync::{Notify, oneshot};

use crate::bounded_functions;
use crate::catalog::Catalog;
use crate::compaction::{self, CompactionReport};
use crate::config::StoreConfig;
use crate::error::{Result, StoreError};
use crate::flush::{self, FlushReport, FlushStats};
use crate::parquet_files::FileLayout;
use crate::query::nanos;
use crate::query_budget::{QueryRuntimes, Reader};
use crate::recovery::{self, ReplayReport};
use crate::retention;
use crate::table::SignalTable;
use crate::wal::encode_record;
use crate::writer::{Command, WalStats, Writer};
use crate::{Signal, rollup, schema};

pub(crate) struct Inner {
    pub(crate) config: StoreConfig,
    pub(crate) wal_dir: PathBuf,
    pub(crate) parquet_dir: PathBuf,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) tx: Mutex<Option<SyncSender<Command>>>,
    pub(crate) writer: Mutex<Option<JoinHandle<()>>>,
    pub(crate) wal_stats: Arc<WalStats>,
    pub(crate) flush_stats: FlushStats,
    pub(crate) flush_lock: tokio::sync::Mutex<()>,
    pub(crate) flush_wanted: Notify,
    pub(crate) replay: ReplayReport,
    /// Shared by every query session, so Parquet footers read once stay cached.
    pub(crate) queries: Arc<QueryRuntimes>,
}

/// Vigil's columnar store. Cheap to clone; all clones share one WAL and catalog.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
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
        let spill_dir = config.data_dir.join("spill");
        // Spill files of a previous run are never read again.
        let _ = fs::remove_dir_all(&spill_dir);
        for dir in [&wal_dir, &parquet_dir, &spill_dir] {
            fs::create_dir_all(dir)
                .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        }
        let catalog = Arc::new(Catalog::default());
        let (replay, last) = recovery::restore(&wal_dir, &parquet_dir, &catalog)?;

        let wal_stats = Arc::new(WalStats::default());
        let writer = Writer::open(
            wal_dir.clone(),
            last.0,
            last.1,
            config.fsync,
            catalog.clone(),
            wal_stats.clone(),
        )?;
        let queries = Arc::new(QueryRuntimes::new(
            config.query_memory,
            config.internal_query_memory,
            &spill_dir,
            config.spill_limit,
        )?);
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
                queries,
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

    pub(crate) fn sender(&self) -> Result<SyncSender<Command>> {
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
        let result = tokio::task::spawn_blocking(move || {
            let inner = &this.inner;
            flush::write_up_to(
                &inner.catalog,
                (&inner.wal_dir, &inner.parquet_dir),
                this.layout(),
                segment,
            )
        })
        .await
        .map_err(|e| StoreError::WalWrite(format!("flush task: {e}")))?;
        self.inner.flush_stats.record(&result, started);
        result
    }

    /// How flushes and compactions write files.
    pub(crate) fn layout(&self) -> FileLayout {
        FileLayout {
            row_group_rows: self.inner.config.row_group_rows,
            working_bytes: self.inner.config.write_memory.0 as usize,
        }
    }

    /// Deletes Parquet files older than the retention age, then the oldest while over the size limit.
    pub fn enforce_retention(&self) -> usize {
        let config = &self.inner.config;
        let removed = retention::expire(
            &self.inner.catalog,
            config.retention_age,
            config.retention_size,
            nanos(chrono::Utc::now()),
        );
        self.inner
            .flush_stats
            .expired_files
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// Merges small files of finished hours (see [`crate::compaction`]), reading at most
    /// `write_memory` of decoded rows per merge.
    pub fn compact(&self) -> Result<CompactionReport> {
        let config = &self.inner.config;
        let now = nanos(chrono::Utc::now());
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

    /// A DataFusion context over the store's tables — one per signal (`spans`, `logs`,
    /// `metrics`, `alerts`, `anomalies`) and the `span_rollup` of the spans — in `reader`'s
    /// memory pool. Only [`crate::Session`] runs queries in it.
    pub(crate) fn context(&self, reader: Reader) -> Result<SessionContext> {
        // One partition per query: a query uses one core at most, leaving the others to
        // ingest and to other queries, and a sort's final merge needs no second merge with
        // buffers of its own, which a tight pool could not grant.
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(1);
        let options = config.options_mut();
        options.execution.collect_statistics = false;
        options.execution.parquet.pushdown_filters = true;
        options.execution.parquet.reorder_filters = true;
        // What a sort keeps back for merging its spilled runs: DataFusion's 10 MB default
        // would not fit a small pool.
        options.execution.sort_spill_reservation_bytes =
            (self.inner.queries.limit(reader).0 / 8) as usize;
        let ctx = SessionContext::new_with_config_rt(config, self.inner.queries.runtime(reader));
        bounded_functions::register(&ctx);
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
