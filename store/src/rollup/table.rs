//! The `span_rollup` SQL table: the rollup files of the `spans` files a query's time range
//! touches, plus the rollup of the spans still in the tail, computed as the query plans. Both
//! come from one catalog snapshot, so every span is counted exactly once.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::minutes::{MINUTE_NS, aggregate, schema, to_batch};
use super::sidecar;
use crate::Signal;
use crate::catalog::Catalog;
use crate::table::{Scan, ScanFile, time_range};

/// The table.
#[derive(Debug)]
pub struct RollupTable {
    catalog: Arc<Catalog>,
}

impl RollupTable {
    /// The rollup of the spans in `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> RollupTable {
        RollupTable { catalog }
    }
}

#[async_trait]
impl TableProvider for RollupTable {
    fn schema(&self) -> SchemaRef {
        schema()
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
        let mut range = time_range(filters);
        // A row's `time` is the start of its minute: spans up to a minute later count in it.
        range.end = range.end.map(|e| e.saturating_add(MINUTE_NS));
        let snapshot = self.catalog.snapshot(Signal::Spans, &range);
        let batches = if snapshot.batches.is_empty() {
            vec![]
        } else {
            let tail = aggregate(&snapshot.batches).and_then(|groups| to_batch(&groups));
            vec![tail.map_err(|e| DataFusionError::External(Box::new(e)))?]
        };
        let files = snapshot
            .files
            .iter()
            .filter_map(|f| {
                let path = sidecar::path_of(&f.path)?;
                match std::fs::metadata(&path) {
                    Ok(meta) => Some(ScanFile {
                        path,
                        bytes: meta.len(),
                        row_groups: None,
                    }),
                    Err(_) => {
                        tracing::warn!(spans = %f.path.display(), "spans file without its rollup; its spans are left out of span_rollup");
                        None
                    }
                }
            })
            .collect();
        let scan = Scan {
            schema: schema(),
            batches,
            files,
        };
        scan.plan(state, projection, filters, limit).await
    }
}
