//! A store in a temporary directory holding given span rows.

use tempfile::TempDir;
use vigil_store::rows::{SpanRow, spans_batch};
use vigil_store::{ReadLimits, Reader, Session, Signal, Store, StoreConfig};

/// A new store holding `rows`; it lives as long as the directory.
pub async fn store_with(rows: &[SpanRow]) -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig {
        data_dir: dir.path().to_path_buf(),
        ..StoreConfig::default()
    })
    .unwrap();
    store
        .append(Signal::Spans, spans_batch(rows).unwrap())
        .await
        .unwrap();
    (dir, store)
}

/// A session over `store` as the rule engine and the anomaly detector read it.
pub fn session(store: &Store) -> Session {
    store
        .session(Reader::Internal, ReadLimits::INTERNAL)
        .unwrap()
}
