//! Vigil's columnar store: one Arrow schema per signal, a write-ahead log, an in-memory tail,
//! hourly Parquet segments, retention, and DataFusion tables over all of it.
//!
//! The store knows nothing about OTLP or HTTP: it takes Arrow `RecordBatch`es that match
//! [`schema::schema`] and answers SQL. The write path is
//! `append` → WAL record (group commit, fsync per policy) → tail → acknowledgement; a
//! background flush moves the tail to Parquet and drops the WAL segments it covered.

pub mod alert;
mod attribute_pruning;
mod bounded_functions;
mod catalog;
mod compaction;
pub mod config;
mod durable;
pub mod error;
pub mod exposition;
pub mod file_stamp;
mod flush;
mod hour_file;
mod metrics;
mod parquet_files;
mod parquet_layout;
pub mod query;
pub mod rollup;
pub mod rows;
pub mod schema;
mod signal;
mod sorted_write;

mod query_budget;
mod recovery;
mod retention;
mod session;
mod store;
mod table;
pub mod units;
mod wal;
mod writer;

pub use catalog::{Catalog, SegmentFile};
pub use compaction::CompactionReport;
pub use config::{FsyncPolicy, StoreConfig};
pub use error::StoreError;
pub use flush::{FlushReport, FlushStats};
pub use query_budget::{Reader, Refusal};
pub use recovery::ReplayReport;
pub use session::{QueryResult, ReadError, ReadLimits, Session};
pub use signal::Signal;
pub use store::Store;
pub use wal::encode_record;
pub use writer::WalStats;
