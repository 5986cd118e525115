//! Errors the store reports to its callers.

use crate::Signal;

/// Anything that can go wrong inside the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File-system trouble, with the path or operation it concerns.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An Arrow encode/decode or compute failure.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A Parquet read/write failure.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A DataFusion planning or execution failure.
    #[error("query: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A batch whose schema is not the table's.
    #[error("batch for {signal} does not match the table schema: {detail}")]
    SchemaMismatch {
        /// The table the batch was meant for.
        signal: Signal,
        /// What differs.
        detail: String,
    },
    /// The WAL writer is full: the caller should retry later.
    #[error("write-ahead log queue is full")]
    QueueFull,
    /// The in-memory tail is over its memory budget until a flush completes.
    #[error("in-memory tail is over its budget ({used} of {limit} bytes); flush in progress")]
    MemoryBudget {
        /// Bytes held now.
        used: usize,
        /// The limit.
        limit: usize,
    },
    /// The WAL writer stopped (shutdown or a fatal I/O error).
    #[error("write-ahead log writer is not running")]
    WriterStopped,
    /// A WAL write or sync failed; the data was not made durable.
    #[error("write-ahead log write failed: {0}")]
    WalWrite(String),
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the same request may succeed later (overload, not bad data).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::QueueFull | StoreError::MemoryBudget { .. }
        )
    }
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
