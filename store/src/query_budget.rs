//! The memory and spill budget queries run under: DataFusion runtimes whose memory pools are
//! sized from the store's configuration — one for users' queries and one reserved for the
//! rule engine and the anomaly detector, so a user's query cannot starve them — spilling to a
//! capped directory under the data dir, and the counts of spills and refusals.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};

use crate::error::Result;
use crate::exposition::{self, Exposition, Histogram, Single};
use crate::units::ByteSize;

/// How many of the largest consumers an exhausted pool names in its error.
const NAMED_CONSUMERS: usize = 3;

/// Who a query runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The query API and the CLI: users' queries.
    Users,
    /// The rule engine and the anomaly detector.
    Internal,
}

impl Reader {
    /// Both readers.
    pub const ALL: [Reader; 2] = [Reader::Users, Reader::Internal];

    /// The `reader` label value in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Reader::Users => "users",
            Reader::Internal => "internal",
        }
    }
}

/// Why a query was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not valid SQL, not read-only, or failed to plan or run.
    Invalid,
    /// Expressions nested too deep.
    TooDeep,
    /// Needed more memory (or spill space) than its pool has.
    Memory,
    /// Ran past its deadline.
    Timeout,
    /// Would return more rows than allowed.
    Rows,
    /// Too many queries at once (the query API's concurrency limit).
    Busy,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Refusal::Invalid,
        Refusal::TooDeep,
        Refusal::Memory,
        Refusal::Timeout,
        Refusal::Rows,
        Refusal::Busy,
    ];

    /// The `reason` label value in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::TooDeep => "too_deep",
            Refusal::Memory => "memory",
            Refusal::Timeout => "timeout",
            Refusal::Rows => "rows",
            Refusal::Busy => "busy",
        }
    }
}

/// One runtime per [`Reader`], with its pool, and what queries did with them.
#[derive(Debug)]
pub struct QueryRuntimes {
    users: Arc<RuntimeEnv>,
    internal: Arc<RuntimeEnv>,
    users_limit: ByteSize,
    internal_limit: ByteSize,
    /// Refused queries per (reader, reason), indexed as `Reader::ALL` × `Refusal::ALL`.
    refused: [AtomicU64; Reader::ALL.len() * Refusal::ALL.len()],
    /// Times an operator wrote its state to disk, and the bytes it wrote.
    spills: AtomicU64,
    spilled_bytes: AtomicU64,
    /// How long queries took, per reader.
    seconds: [Histogram; 2],
}

impl QueryRuntimes {
    /// Runtimes for users' queries (`users` bytes) and internal ones (`internal` bytes),
    /// spilling under `spill_dir` up to `spill_limit` bytes in all, sharing one cache of
    /// Parquet footers (files are immutable, so what one reader read serves the other).
    pub fn new(
        users: ByteSize,
        internal: ByteSize,
        spill_dir: &Path,
        spill_limit: ByteSize,
    ) -> Result<QueryRuntimes> {
        let runtime = |bytes: ByteSize, caches: CacheManagerConfig| -> Result<Arc<RuntimeEnv>> {
            let pool: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(bytes.0 as usize),
                NonZeroUsize::MIN.saturating_add(NAMED_CONSUMERS - 1),
            ));
            Ok(RuntimeEnvBuilder::new()
                .with_memory_pool(pool)
                .with_temp_file_path(spill_dir)
                .with_max_temp_directory_size(spill_limit.0 / 2)
                .with_cache_manager(caches)
                .build_arc()?)
        };
        let users_runtime = runtime(users, CacheManagerConfig::default())?;
        let footers = users_runtime.cache_manager.get_file_metadata_cache();
        let shared = CacheManagerConfig::default().with_file_metadata_cache(Some(footers));
        Ok(QueryRuntimes {
            users: users_runtime,
            internal: runtime(internal, shared)?,
            users_limit: users,
            internal_limit: internal,
            refused: Default::default(),
            spills: AtomicU64::new(0),
            spilled_bytes: AtomicU64::new(0),
            seconds: [
                Histogram::new(exposition::QUERY_SECONDS),
                Histogram::new(exposition::QUERY_SECONDS),
            ],
        })
    }

    /// Counts a query of `reader` refused for `reason`.
    pub fn refused(&self, reader: Reader, reason: Refusal) {
        self.refused[Self::slot(reader, reason)].fetch_add(1, Ordering::Relaxed);
    }

    fn slot(reader: Reader, reason: Refusal) -> usize {
        reader as usize * Refusal::ALL.len() + reason as usize
    }

    /// Records how long a query of `reader` took.
    pub fn took(&self, reader: Reader, elapsed: std::time::Duration) {
        self.seconds[reader as usize].observe(elapsed.as_secs_f64());
    }

    /// Counts what one query spilled.
    pub fn spilled(&self, spills: usize, bytes: usize) {
        self.spills.fetch_add(spills as u64, Ordering::Relaxed);
        self.spilled_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Writes the queries' latency, memory, spills and refusals to `page`.
    pub fn render(&self, page: &mut Exposition) {
        let mut family = page.histogram(
            "vigil_query_duration_seconds",
            "Time queries took to plan and run, refusals included, per reader.",
        );
        for reader in Reader::ALL {
            family.observed(&[("reader", reader.name())], &self.seconds[reader as usize]);
        }
        let mut family = page.gauge(
            "vigil_query_memory_bytes",
            "Memory queries hold now for sorts, joins and aggregations, per reader (users: the query API; internal: rules and anomaly detection).",
        );
        for reader in Reader::ALL {
            family.sample(&[("reader", reader.name())], self.reserved(reader) as f64);
        }
        let mut family = page.gauge(
            "vigil_query_memory_limit_bytes",
            "Memory queries of each reader may hold together; beyond it they spill or fail.",
        );
        for reader in Reader::ALL {
            family.sample(&[("reader", reader.name())], self.limit(reader).0 as f64);
        }
        let disk = self.users.disk_manager.used_disk_space()
            + self.internal.disk_manager.used_disk_space();
        for (kind, name, help, value) in [
            (
                Single::Gauge,
                "vigil_query_spill_bytes",
                "Bytes of spill files queries hold on disk now.",
                disk as f64,
            ),
            (
                Single::Counter,
                "vigil_query_spills_total",
                "Times a query operator wrote its state to disk to stay within its memory.",
                self.spills.load(Ordering::Relaxed) as f64,
            ),
            (
                Single::Counter,
                "vigil_query_spilled_bytes_total",
                "Bytes query operators wrote to disk.",
                self.spilled_bytes.load(Ordering::Relaxed) as f64,
            ),
        ] {
            page.single(kind, name, help, value);
        }
        let mut family = page.counter(
            "vigil_queries_refused_total",
            "Queries not answered, per reader and reason: invalid, too_deep, memory, timeout, rows, busy.",
        );
        for reader in Reader::ALL {
            for reason in Refusal::ALL {
                let n = self.refused[Self::slot(reader, reason)].load(Ordering::Relaxed);
                family.sample(
                    &[("reader", reader.name()), ("reason", reason.name())],
                    n as f64,
                );
            }
        }
    }

    /// The runtime `reader`'s queries run in.
    pub fn runtime(&self, reader: Reader) -> Arc<RuntimeEnv> {
        match reader {
            Reader::Users => self.users.clone(),
            Reader::Internal => self.internal.clone(),
        }
    }

    /// The memory `reader`'s queries may hold together.
    pub fn limit(&self, reader: Reader) -> ByteSize {
        match reader {
            Reader::Users => self.users_limit,
            Reader::Internal => self.internal_limit,
        }
    }

    /// Bytes `reader`'s queries hold now.
    pub fn reserved(&self, reader: Reader) -> usize {
        self.runtime(reader).memory_pool.reserved()
    }
}

/// True when `error` (or what it wraps) is a memory pool refusing a reservation.
pub fn is_out_of_memory(error: &DataFusionError) -> bool {
    matches!(error.find_root(), DataFusionError::ResourcesExhausted(_))
}
