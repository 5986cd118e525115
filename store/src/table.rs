//! DataFusion tables over the tail and the Parquet files, with time-range and projection pushdown.
//!
//! `scan` reads the `time` bounds out of the query's filters, keeps only the tail batches
//! and files whose time bounds overlap (and, for attribute equalities, only the row groups
//! whose bloom filters may hold the value), and hands projection and filters on to
//! DataFusion's own memory and Parquet scans (which prune row groups by statistics and bloom
//! filters).
//! Filters are reported `Inexact`, so DataFusion still applies them exactly on top.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;

use crate::Signal;
use crate::attribute_pruning::{self, Probe};
use crate::catalog::{Catalog, TimeRange};
use crate::schema::{TIME, schema};

/// The SQL table of one signal.
#[derive(Debug)]
pub struct SignalTable {
    signal: Signal,
    schema: SchemaRef,
    catalog: Arc<Catalog>,
}

impl SignalTable {
    /// A table reading `signal`'s data from `catalog`.
    pub fn new(signal: Signal, catalog: Arc<Catalog>) -> SignalTable {
        SignalTable {
            signal,
            schema: schema(signal),
            catalog,
        }
    }
}

#[async_trait]
impl TableProvider for SignalTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let range = time_range(filters);
        let snapshot = self.catalog.snapshot(self.signal, &range);
        let probes = attribute_pruning::probes(filters);
        let files: Vec<ScanFile> = snapshot
            .files
            .iter()
            .map(|f| ScanFile {
                path: f.path.clone(),
                bytes: f.bytes,
                row_groups: None,
            })
            .collect();
        let files = if probes.is_empty() {
            files
        } else {
            let catalog = self.catalog.clone();
            tokio::task::spawn_blocking(move || prune(files, &probes, &catalog))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
        };
        let scan = Scan {
            schema: self.schema.clone(),
            batches: snapshot.batches,
            files,
        };
        scan.plan(state, projection, filters, limit).await
    }
}

/// `files` less the row groups (and whole files) whose bloom filters rule out `probes`,
/// counted in `catalog`.
fn prune(files: Vec<ScanFile>, probes: &[Vec<Probe>], catalog: &Catalog) -> Vec<ScanFile> {
    let (mut files_skipped, mut groups_skipped) = (0, 0);
    let kept = files
        .into_iter()
        .filter_map(|mut f| {
            let groups = attribute_pruning::row_groups(&f.path, probes);
            let skipped = groups
                .as_ref()
                .map_or(0, |g| g.iter().filter(|k| !**k).count());
            groups_skipped += skipped;
            match groups {
                Some(g) if skipped == g.len() => {
                    files_skipped += 1;
                    None
                }
                Some(g) if skipped > 0 => {
                    f.row_groups = Some(g);
                    Some(f)
                }
                _ => Some(f),
            }
        })
        .collect();
    catalog.count_skipped_by_attributes(files_skipped, groups_skipped);
    kept
}

/// One Parquet file a scan reads.
pub(crate) struct ScanFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Which row groups to read, by index; all when `None`.
    pub row_groups: Option<Vec<bool>>,
}

impl ScanFile {
    /// The file as DataFusion's Parquet scan takes it, with its row groups to read.
    fn partitioned(&self) -> DfResult<PartitionedFile> {
        let url = ListingTableUrl::parse(self.path.to_string_lossy())?;
        let file = PartitionedFile::new(url.prefix().as_ref(), self.bytes);
        Ok(match &self.row_groups {
            Some(groups) => file.with_extension(ParquetAccessPlan::new(
                groups
                    .iter()
                    .map(|read| match read {
                        true => RowGroupAccess::Scan,
                        false => RowGroupAccess::Skip,
                    })
                    .collect(),
            )),
            None => file,
        })
    }
}

/// What one table scan reads: batches in memory and Parquet files, all of `schema`.
pub(crate) struct Scan {
    /// The table's schema.
    pub schema: SchemaRef,
    /// In-memory batches.
    pub batches: Vec<RecordBatch>,
    /// Parquet files.
    pub files: Vec<ScanFile>,
}

impl Scan {
    /// The plan reading all of it, with projection, filters and limit handed on to
    /// DataFusion's memory and Parquet scans.
    pub async fn plan(
        self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let parts = state.config().target_partitions().max(1);
        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !self.batches.is_empty() {
            let per = self.batches.len().div_ceil(parts);
            let partitions = self.batches.chunks(per.max(1)).map(<[_]>::to_vec).collect();
            let mem = MemTable::try_new(self.schema.clone(), partitions)?;
            plans.push(mem.scan(state, projection, filters, limit).await?);
        }
        if !self.files.is_empty() {
            let files = self
                .files
                .iter()
                .map(ScanFile::partitioned)
                .collect::<DfResult<Vec<_>>>()?;
            let format = ParquetFormat::default();
            let source = format.file_source(self.schema.clone().into());
            let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
                .with_file_groups(FileGroup::new(files).split_files(parts))
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            // Filters reach the Parquet scan (row group statistics, bloom filters, page
            // index) through DataFusion's filter pushdown, from the filter above.
            plans.push(format.create_physical_plan(state, config).await?);
        }
        if plans.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        UnionExec::try_new(plans)
    }
}

/// The `time` bounds implied by a conjunction of filters; unbounded where they say nothing.
pub fn time_range(filters: &[Expr]) -> TimeRange {
    let mut range = TimeRange::default();
    for f in filters {
        narrow(&mut range, f);
    }
    range
}

fn narrow(range: &mut TimeRange, expr: &Expr) {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            narrow(range, left);
            narrow(range, right);
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            if let (true, Some(v)) = (is_time(left), literal_ns(right)) {
                apply(range, *op, v);
            } else if let (Some(v), true, Some(op)) = (literal_ns(left), is_time(right), op.swap())
            {
                apply(range, op, v);
            }
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_time(expr) => {
            if let Some(v) = literal_ns(low) {
                apply(range, Operator::GtEq, v);
            }
            if let Some(v) = literal_ns(high) {
                apply(range, Operator::LtEq, v);
            }
        }
        _ => {}
    }
}

fn apply(range: &mut TimeRange, op: Operator, v: i64) {
    let raise = |cur: &mut Option<i64>, v: i64| *cur = Some(cur.map_or(v, |c| c.max(v)));
    let lower = |cur: &mut Option<i64>, v: i64| *cur = Some(cur.map_or(v, |c| c.min(v)));
    match op {
        Operator::Gt | Operator::GtEq => raise(&mut range.start, v),
        Operator::Lt | Operator::LtEq => lower(&mut range.end, v),
        Operator::Eq => {
            raise(&mut range.start, v);
            lower(&mut range.end, v);
        }
        _ => {}
    }
}

fn is_time(expr: &Expr) -> bool {
    match expr {
        Expr::Column(c) => c.name == TIME,
        Expr::Cast(c) => is_time(&c.expr),
        Expr::TryCast(c) => is_time(&c.expr),
        _ => false,
    }
}

fn literal_ns(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampNanosecond(Some(n), _) => Some(*n),
            ScalarValue::TimestampMicrosecond(Some(n), _) => n.checked_mul(1_000),
            ScalarValue::TimestampMillisecond(Some(n), _) => n.checked_mul(1_000_000),
            ScalarValue::TimestampSecond(Some(n), _) => n.checked_mul(1_000_000_000),
            _ => None,
        },
        Expr::Cast(c) => literal_ns(&c.expr),
        Expr::TryCast(c) => literal_ns(&c.expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn ts(n: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(n),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn time_bounds_come_from_comparisons_and_between() {
        let r = time_range(&[col("time").gt_eq(ts(100)), col("time").lt(ts(200))]);
        assert_eq!(
            r,
            TimeRange {
                start: Some(100),
                end: Some(200)
            }
        );
        let r = time_range(&[ts(150)
            .lt(col("time"))
            .and(col("service_name").eq(lit("a")))]);
        assert_eq!(
            r,
            TimeRange {
                start: Some(150),
                end: None
            }
        );
        let r = time_range(&[col("time").between(ts(1), ts(2))]);
        assert_eq!(
            r,
            TimeRange {
                start: Some(1),
                end: Some(2)
            }
        );
        let r = time_range(&[col("duration_ns").gt(lit(5i64))]);
        assert_eq!(r, TimeRange::default());
        // OR does not narrow.
        let r = time_range(&[col("time").gt(ts(5)).or(col("time").lt(ts(1)))]);
        assert_eq!(r, TimeRange::default());
    }
}
