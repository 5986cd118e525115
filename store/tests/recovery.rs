//! Store-level recovery: flushed rows come back from Parquet, unflushed ones from the WAL,
//! nothing twice, and new writes after a lost WAL directory are never mistaken for flushed ones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, ListBuilder, MapBuilder,
    RecordBatch, StringArray, StringBuilder, TimestampNanosecondArray, UInt32Array, UInt64Array,
    UInt64Builder, new_null_array,
};
use arrow::datatypes::{DataType, TimeUnit};
use vigil_store::units::ByteSize;
use vigil_store::{ReadLimits, Reader, Signal, Store, StoreConfig, schema::schema};

const HOUR: i64 = 3_600_000_000_000;

/// A batch of `signal` with one row per time in `times`, service `service`, defaults elsewhere.
fn batch(signal: Signal, service: &str, times: &[i64]) -> RecordBatch {
    let n = times.len();
    let schema = schema(signal);
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match (f.name().as_str(), f.data_type()) {
                ("service_name", _) => Arc::new(StringArray::from(vec![service; n])),
                (_, DataType::Timestamp(TimeUnit::Nanosecond, _)) => {
                    Arc::new(TimestampNanosecondArray::from(times.to_vec()).with_timezone("UTC"))
                }
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                (_, DataType::Utf8) => Arc::new(StringArray::from(vec![""; n])),
                (_, DataType::Int64) => Arc::new(Int64Array::from(vec![0; n])),
                (_, DataType::Int32) => Arc::new(Int32Array::from(vec![0; n])),
                (_, DataType::UInt32) => Arc::new(UInt32Array::from(vec![0; n])),
                (_, DataType::UInt64) => Arc::new(UInt64Array::from(vec![0; n])),
                (_, DataType::Float64) => Arc::new(Float64Array::from(vec![0.0; n])),
                (_, DataType::Boolean) => Arc::new(BooleanArray::from(vec![false; n])),
                (_, DataType::Map(_, _)) => {
                    let mut m = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                    for _ in 0..n {
                        m.append(true).unwrap();
                    }
                    Arc::new(m.finish())
                }
                (_, DataType::List(item)) if item.data_type() == &DataType::Utf8 => {
                    let mut l = ListBuilder::new(StringBuilder::new());
                    (0..n).for_each(|_| l.append(true));
                    Arc::new(l.finish())
                }
                (_, DataType::List(_)) => {
                    let mut l = ListBuilder::new(UInt64Builder::new());
                    (0..n).for_each(|_| l.append(true));
                    Arc::new(l.finish())
                }
                (name, other) => panic!("no test value for {name}: {other}"),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

async fn count(store: &Store, sql: &str) -> i64 {
    let session = store.session(Reader::Users, ReadLimits::INTERNAL).unwrap();
    let batches = session.query(sql, 1).await.unwrap().batches;
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

/// Spans counted by `span_rollup`, which must always equal `count(*)` of `spans`.
async fn rolled_up(store: &Store) -> i64 {
    count(
        store,
        "SELECT CAST(coalesce(sum(spans), 0) AS BIGINT) FROM span_rollup",
    )
    .await
}

/// Rollup files on disk.
/// Appends `rows` as spans and flushes them into one Parquet file.
async fn flushed(store: &Store, rows: &[vigil_store::rows::SpanRow]) {
    store
        .append(Signal::Spans, vigil_store::rows::spans_batch(rows).unwrap())
        .await
        .unwrap();
    store.flush().await.unwrap();
}

/// The span rollup files, sorted (`parquet/span_rollup/<date>/<hour>/<file>`).
fn rollup_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let inside = |d: std::path::PathBuf| {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
    };
    let mut files: Vec<_> = inside(dir.join("parquet").join("span_rollup"))
        .flat_map(inside)
        .flat_map(inside)
        .collect();
    files.sort();
    files
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        ..StoreConfig::default()
    }
}

#[tokio::test]
async fn rows_survive_a_crash_once_whether_flushed_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000 * 1_000_000_000;
    {
        let store = Store::open(config(dir.path())).unwrap();
        // Two hours of spans and some logs, flushed.
        store
            .append(
                Signal::Spans,
                batch(Signal::Spans, "a", &[t0, t0 + 1, t0 + HOUR]),
            )
            .await
            .unwrap();
        store
            .append(Signal::Logs, batch(Signal::Logs, "a", &[t0]))
            .await
            .unwrap();
        let report = store.flush().await.unwrap();
        assert_eq!((report.files, report.rows), (3, 4));
        // More, not flushed: only in the WAL and the tail.
        store
            .append(
                Signal::Spans,
                batch(Signal::Spans, "b", &[t0 + 2, t0 + HOUR + 5]),
            )
            .await
            .unwrap();
        assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 5);
        store.close(); // the WAL writer stops; nothing is flushed: as after kill -9
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.replay_report().rows, 2);
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 5);
    assert_eq!(rolled_up(&store).await, 5, "files' rollups plus the tail's");
    assert_eq!(rollup_files(dir.path()).len(), 2, "one per spans file");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM spans WHERE service_name = 'b'"
        )
        .await,
        2
    );
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 1);
    // Time-range pruning still sees both sources.
    let late = format!(
        "SELECT count(*) FROM spans WHERE time >= to_timestamp_nanos({})",
        t0 + HOUR
    );
    assert_eq!(count(&store, &late).await, 2);

    // A flush after recovery, then another crash: still exactly once.
    store.flush().await.unwrap();
    store
        .append(Signal::Spans, batch(Signal::Spans, "c", &[t0 + 3]))
        .await
        .unwrap();
    store.close();
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 6);
    assert_eq!(rolled_up(&store).await, 6);
    store.close();
}

#[tokio::test]
async fn writes_after_losing_the_wal_directory_are_not_mistaken_for_flushed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000 * 1_000_000_000;
    let store = Store::open(config(dir.path())).unwrap();
    for i in 0..3 {
        store
            .append(Signal::Spans, batch(Signal::Spans, "a", &[t0 + i]))
            .await
            .unwrap();
        store.flush().await.unwrap();
    }
    store.close();
    std::fs::remove_dir_all(dir.path().join("wal")).unwrap();

    let store = Store::open(config(dir.path())).unwrap();
    store
        .append(Signal::Spans, batch(Signal::Spans, "new", &[t0 + 10]))
        .await
        .unwrap();
    store.close();
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM spans WHERE service_name = 'new'"
        )
        .await,
        1
    );
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 4);
    store.close();
}

#[tokio::test]
async fn retention_drops_files_past_the_age_limit() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ns();
    let store = Store::open(config(dir.path())).unwrap();
    store
        .append(
            Signal::Spans,
            batch(Signal::Spans, "old", &[now - 8 * 24 * HOUR]),
        )
        .await
        .unwrap();
    store
        .append(Signal::Spans, batch(Signal::Spans, "new", &[now]))
        .await
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(rollup_files(dir.path()).len(), 2);
    assert_eq!(store.enforce_retention(), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 1);
    assert_eq!(
        rollup_files(dir.path()).len(),
        1,
        "the rollup goes with its file"
    );
    assert_eq!(rolled_up(&store).await, 1);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM spans WHERE service_name = 'new'"
        )
        .await,
        1
    );
    store.close();
}

#[tokio::test]
async fn compaction_merges_a_finished_hour_and_a_crash_never_double_counts() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ns();
    let past = now - 3 * HOUR;
    let store = Store::open(config(dir.path())).unwrap();
    for i in 0..4 {
        store
            .append(
                Signal::Spans,
                batch(Signal::Spans, "s", &[past + i, past + 10 + i]),
            )
            .await
            .unwrap();
        store.flush().await.unwrap();
    }
    // The current hour is not compacted: more data may still arrive for it.
    store
        .append(Signal::Spans, batch(Signal::Spans, "s", &[now]))
        .await
        .unwrap();
    store.flush().await.unwrap();
    store
        .append(Signal::Spans, batch(Signal::Spans, "s", &[now]))
        .await
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.catalog().files().len(), 6);
    let first = store
        .catalog()
        .files()
        .into_iter()
        .map(|(_, f)| f.path.clone())
        .min()
        .unwrap();
    let saved = std::fs::read(&first).unwrap();
    let report = store.compact().unwrap();
    assert_eq!((report.inputs, report.outputs), (4, 1));
    assert_eq!(store.catalog().files().len(), 3);
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 10);
    assert_eq!(rollup_files(dir.path()).len(), 3);
    assert_eq!(rolled_up(&store).await, 10);
    let merged = store
        .catalog()
        .files()
        .into_iter()
        .find(|(_, f)| f.rows == 8)
        .unwrap()
        .1
        .path
        .clone();
    store.close();

    // A crash after the merged file was published but before its inputs were deleted:
    // put an input back; start-up must drop it again rather than count its rows twice.
    assert_eq!(first.parent(), merged.parent());
    assert!(!first.exists());
    std::fs::write(&first, saved).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert!(
        !first.exists(),
        "a replaced file left behind is deleted at start-up"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 10);
    assert_eq!(rolled_up(&store).await, 10);
    store.close();
}

#[tokio::test]
async fn compaction_reads_no_more_decoded_rows_per_merge_than_its_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let past = now_ns() - 3 * HOUR;
    let store = Store::open(config(dir.path())).unwrap();
    for i in 0..4 {
        let times: Vec<i64> = (0..5000).map(|t| past + i * 5000 + t).collect();
        store
            .append(Signal::Spans, batch(Signal::Spans, "s", &times))
            .await
            .unwrap();
        store.flush().await.unwrap();
    }
    let files = store.catalog().files();
    let decoded: usize = files[0]
        .1
        .read_all()
        .unwrap()
        .iter()
        .map(|b| b.get_array_memory_size())
        .sum();
    assert!(files.iter().all(|(_, f)| (f.bytes as usize) < decoded));
    store.close();
    // Room for one file and a half: each merge takes the file that reaches the bound and stops.
    let store = Store::open(StoreConfig {
        write_memory: ByteSize((decoded * 3 / 2) as u64),
        ..config(dir.path())
    })
    .unwrap();
    let report = store.compact().unwrap();
    assert_eq!((report.inputs, report.outputs), (4, 2));
    assert_eq!(store.catalog().files().len(), 2);
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 20_000);
    assert_eq!(rolled_up(&store).await, 20_000);
}

#[tokio::test]
async fn start_up_rebuilds_a_missing_rollup_and_drops_one_without_its_spans() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000 * 1_000_000_000;
    let store = Store::open(config(dir.path())).unwrap();
    for service in ["a", "b"] {
        store
            .append(Signal::Spans, batch(Signal::Spans, service, &[t0, t0 + 1]))
            .await
            .unwrap();
        store.flush().await.unwrap();
    }
    store.close();
    let rollups = rollup_files(dir.path());
    assert_eq!(rollups.len(), 2);
    // A crash between writing a rollup and its spans file leaves an orphan; one written by
    // an older version is missing.
    let orphan = rollups[0].with_file_name("00000000000000009999.parquet");
    std::fs::copy(&rollups[0], &orphan).unwrap();
    std::fs::remove_file(&rollups[1]).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(rollup_files(dir.path()), rollups);
    assert_eq!(rolled_up(&store).await, 4);
    assert_eq!(
        count(
            &store,
            "SELECT CAST(sum(spans) AS BIGINT) FROM span_rollup WHERE service_name = 'b'"
        )
        .await,
        2
    );
    store.close();
}

#[tokio::test]
async fn a_query_on_recent_time_does_not_open_older_files() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000 * 1_000_000_000;
    let store = Store::open(config(dir.path())).unwrap();
    store
        .append(Signal::Spans, batch(Signal::Spans, "old", &[t0]))
        .await
        .unwrap();
    store
        .append(
            Signal::Spans,
            batch(Signal::Spans, "new", &[t0 + 30 * 24 * HOUR]),
        )
        .await
        .unwrap();
    store.flush().await.unwrap();
    // Corrupt last month's file behind the catalog's back: only a query that opens it can notice.
    let old = store
        .catalog()
        .files()
        .into_iter()
        .map(|(_, f)| f)
        .find(|f| f.min_time == t0)
        .unwrap();
    std::fs::write(&old.path, b"not a parquet file").unwrap();
    let recent = format!(
        "SELECT count(*) FROM spans WHERE time > to_timestamp_nanos({})",
        t0 + 29 * 24 * HOUR
    );
    assert_eq!(count(&store, &recent).await, 1);
    let session = store.session(Reader::Users, ReadLimits::INTERNAL).unwrap();
    assert!(
        session
            .query("SELECT count(*) FROM spans", 1)
            .await
            .is_err()
    );
    store.close();
}

#[tokio::test]
async fn retention_by_size_drops_the_oldest_files_first() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ns();
    let store = Store::open(config(dir.path())).unwrap();
    for (i, service) in ["oldest", "middle", "newest"].into_iter().enumerate() {
        let t = now - (3 - i as i64) * HOUR;
        store
            .append(Signal::Spans, batch(Signal::Spans, service, &[t]))
            .await
            .unwrap();
    }
    store.flush().await.unwrap();
    let sizes: Vec<u64> = store
        .catalog()
        .files()
        .iter()
        .map(|(_, f)| f.bytes)
        .collect();
    store.close();
    // Room for two of the three files.
    let mut cfg = config(dir.path());
    cfg.retention_size = vigil_store::units::ByteSize(sizes.iter().sum::<u64>() - 1);
    let store = Store::open(cfg).unwrap();
    assert_eq!(store.enforce_retention(), 1);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM spans WHERE service_name = 'oldest'"
        )
        .await,
        0
    );
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 2);
    store.close();
}

#[tokio::test]
async fn an_attribute_search_skips_files_whose_bloom_filters_rule_the_value_out() {
    use std::collections::BTreeMap;
    use vigil_store::rows::SpanRow;
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000 * 1_000_000_000;
    let store = Store::open(config(dir.path())).unwrap();
    // One file per tier, each with a unique order id per span and one host.
    for (i, tier) in ["free", "pro", "enterprise"].iter().enumerate() {
        let rows: Vec<SpanRow> = (0..500)
            .map(|j| SpanRow {
                trace_id: format!("{i:016x}{j:016x}"),
                service_name: "api".into(),
                start_ns: t0 + (i * 1000 + j) as i64,
                end_ns: t0 + (i * 1000 + j) as i64 + 5,
                attributes: BTreeMap::from([
                    ("customer.tier".to_string(), tier.to_string()),
                    ("order.id".to_string(), format!("ord-{i}-{j}")),
                ]),
                resource_attributes: BTreeMap::from([(
                    "host.name".to_string(),
                    format!("node-{i}"),
                )]),
                ..Default::default()
            })
            .collect();
        flushed(&store, &rows).await;
    }
    let skipped = || store.catalog().skipped_by_attributes();
    let search = |k: &str, v: &str| {
        format!(
            "SELECT count(*) FROM spans WHERE attributes['{k}'] = '{v}' OR resource_attributes['{k}'] = '{v}'"
        )
    };
    assert_eq!(count(&store, &search("customer.tier", "pro")).await, 500);
    assert_eq!(skipped(), 2, "the free and enterprise files");
    assert_eq!(count(&store, &search("order.id", "ord-2-499")).await, 1);
    assert_eq!(skipped(), 4);
    assert_eq!(count(&store, &search("host.name", "node-0")).await, 500);
    assert_eq!(skipped(), 6, "resource attributes are filtered too");
    assert_eq!(count(&store, &search("customer.tier", "gold")).await, 0);
    assert_eq!(skipped(), 9, "no file holds it");
    // Anything but an attribute equality reads every file.
    let other = "SELECT count(*) FROM spans WHERE attributes['customer.tier'] <> 'gold'";
    assert_eq!(count(&store, other).await, 1500);
    assert_eq!(skipped(), 9);
    store.close();
}

#[tokio::test]
async fn an_attribute_search_reads_only_the_row_groups_that_may_hold_the_value() {
    use std::collections::BTreeMap;
    use vigil_store::rows::SpanRow;
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000 * 1_000_000_000;
    let mut cfg = config(dir.path());
    cfg.row_group_rows = 1024;
    let store = Store::open(cfg).unwrap();
    // One file of three row groups, a user per row group.
    let rows: Vec<SpanRow> = (0..3 * 1024)
        .map(|j| SpanRow {
            trace_id: format!("{j:032x}"),
            service_name: "api".into(),
            start_ns: t0 + j as i64,
            end_ns: t0 + j as i64 + 5,
            attributes: BTreeMap::from([("user.id".to_string(), format!("user-{}", j / 1024))]),
            ..Default::default()
        })
        .collect();
    flushed(&store, &rows).await;
    let catalog = store.catalog();
    let search =
        |v: &str| format!("SELECT count(*) FROM spans WHERE attributes['user.id'] = '{v}'");
    assert_eq!(count(&store, &search("user-2")).await, 1024);
    assert_eq!(catalog.row_groups_skipped_by_attributes(), 2);
    assert_eq!(catalog.skipped_by_attributes(), 0, "the file is read");
    assert_eq!(count(&store, &search("user-7")).await, 0);
    assert_eq!(catalog.row_groups_skipped_by_attributes(), 5);
    assert_eq!(catalog.skipped_by_attributes(), 1);
    store.close();
}
