//! Store settings: where data lives, when it is synced, flushed and expired.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::units::{ByteSize, HumanDuration};

/// When the WAL is fsynced relative to acknowledging a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync every group commit before acknowledging it (the default: nothing acknowledged is lost).
    Always,
    /// Acknowledge after the write reaches the OS; fsync at most this long after the first unsynced write.
    /// A machine crash (not a process crash) can lose up to this much.
    Interval(Duration),
    /// Never fsync explicitly; the OS decides. Survives process crashes, not machine crashes.
    Never,
}

impl FsyncPolicy {
    pub(crate) fn interval(self) -> Option<Duration> {
        match self {
            FsyncPolicy::Interval(d) => Some(d),
            _ => None,
        }
    }
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => other.parse::<HumanDuration>().map(|h| FsyncPolicy::Interval(h.0)).map_err(|_| {
                format!("invalid fsync policy {other:?}: expected \"always\", \"never\" or an interval such as \"100ms\"")
            }),
        }
    }
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for FsyncPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FsyncPolicy::Always => s.serialize_str("always"),
            FsyncPolicy::Never => s.serialize_str("never"),
            FsyncPolicy::Interval(d) => s.collect_str(&HumanDuration(*d)),
        }
    }
}

/// `[store]` section of the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory for the WAL and Parquet files (created if missing).
    pub data_dir: PathBuf,
    /// WAL fsync policy: `"always"` (fsync before acknowledging), `"never"`, or an interval like `"100ms"`.
    pub fsync: FsyncPolicy,
    /// Most write requests waiting for the WAL writer; beyond it writes are refused as overload.
    pub wal_queue_capacity: usize,
    /// Flush the in-memory tail to Parquet at least this often.
    pub flush_interval: HumanDuration,
    /// Flush early once the tail holds this much memory (derived from `[limits] memory_limit`).
    #[serde(skip)]
    pub flush_size: ByteSize,
    /// Refuse new writes (retryably) while the tail holds more than this (derived from `[limits] memory_limit`).
    #[serde(skip)]
    pub tail_limit: ByteSize,
    /// Memory one file write (a flush's or a compaction's) may use beyond the rows it writes:
    /// the chunk of rows being put in order and the row group being encoded (derived from
    /// `[limits] memory_limit`). Compaction also reads at most this much decoded input per merge.
    #[serde(skip)]
    pub write_memory: ByteSize,
    /// Rows per Parquet row group. Each row group has its own bloom filters, so smaller
    /// groups let a search for a rare value (one user's id) read less; larger ones cost less
    /// metadata per row.
    pub row_group_rows: usize,
    /// Memory users' queries (query API, CLI) may hold together for sorts, joins and
    /// aggregations; beyond it they spill to disk, and what cannot spill fails (derived from
    /// `[limits] memory_limit`).
    pub query_memory: ByteSize,
    /// Memory reserved for the rule engine's and anomaly detector's queries, which users'
    /// queries cannot take (derived from `[limits] memory_limit`).
    pub internal_query_memory: ByteSize,
    /// Most disk space queries may spill to, under `data_dir/spill`: half for users'
    /// queries, half for the rule engine's and anomaly detector's.
    pub spill_limit: ByteSize,
    /// Delete data older than this.
    pub retention_age: HumanDuration,
    /// Delete the oldest Parquet files while all of them together are larger than this.
    pub retention_size: ByteSize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("./vigil-data"),
            fsync: FsyncPolicy::Always,
            wal_queue_capacity: 1024,
            flush_interval: HumanDuration(Duration::from_secs(60)),
            flush_size: ByteSize(64 << 20),
            tail_limit: ByteSize(256 << 20),
            write_memory: ByteSize(32 << 20),
            row_group_rows: 16 * 1024,
            query_memory: ByteSize(96 << 20),
            internal_query_memory: ByteSize(48 << 20),
            spill_limit: ByteSize(2 << 30),
            retention_age: HumanDuration(Duration::from_secs(7 * 86_400)),
            retention_size: ByteSize(100 << 30),
        }
    }
}
