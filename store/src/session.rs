//! Governed reads, the one way to query the store: a [`Session`] checks each statement
//! (read-only, expressions not too deep), plans and runs it in its reader's memory pool before
//! a deadline and under a row cap, and counts what spilled and what was refused.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;
use tokio::time::Instant;

use crate::Store;
use crate::query::Sql;
use crate::query::statement::{self, StatementError};
use crate::query_budget::{QueryRuntimes, Reader, Refusal, is_out_of_memory};
use crate::units::ByteSize;

/// What one session's reads may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Time from the session's start by which every one of its reads must have finished.
    pub timeout: Duration,
    /// Most rows one read may return.
    pub max_rows: usize,
}

impl ReadLimits {
    /// Most rows one read returns unless a session says fewer: the store's own reads
    /// aggregate, so a result this large means a window far too wide, not an answer.
    pub const MAX_ROWS: usize = 1_000_000;

    /// The rule engine's and anomaly detector's limits.
    pub const INTERNAL: ReadLimits = ReadLimits::within(Duration::from_secs(60));

    /// Reads that must finish within `timeout`, at most [`ReadLimits::MAX_ROWS`] rows each.
    pub const fn within(timeout: Duration) -> ReadLimits {
        ReadLimits {
            timeout,
            max_rows: Self::MAX_ROWS,
        }
    }
}

/// Why a read was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not valid SQL.
    #[error("invalid SQL: {0}")]
    Invalid(String),
    /// Valid SQL that may not run here.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// Planning or execution failed (unknown column, type error…).
    #[error("{0}")]
    Failed(String),
    /// The query needed more memory (or spill space) than its reader's pool has.
    #[error(
        "query needs more than {limit} of memory; narrow the time range or raise [limits] memory_limit ({detail})"
    )]
    OutOfMemory {
        /// The pool's size.
        limit: ByteSize,
        /// DataFusion's account of who held what.
        detail: String,
    },
    /// The session's deadline passed.
    #[error("query did not finish within {0:?}")]
    Timeout(Duration),
    /// The read would return more rows than allowed.
    #[error("query returns more than {0} rows; narrow the time range or filter further")]
    TooManyRows(usize),
    /// The store could not open the session.
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

impl ReadError {
    /// The reason `/metrics` counts this refusal under.
    fn refusal(&self) -> Refusal {
        match self {
            ReadError::Invalid(_)
            | ReadError::Failed(_)
            | ReadError::Store(_)
            | ReadError::Statement(StatementError::NotReadOnly(_)) => Refusal::Invalid,
            ReadError::Statement(StatementError::TooDeep) => Refusal::TooDeep,
            ReadError::OutOfMemory { .. } => Refusal::Memory,
            ReadError::Timeout(_) => Refusal::Timeout,
            ReadError::TooManyRows(_) => Refusal::Rows,
        }
    }
}

/// A query's answer.
#[derive(Debug)]
pub struct QueryResult {
    /// Result batches, at most the rows asked for.
    pub batches: Vec<RecordBatch>,
    /// The result schema (also when there are no rows).
    pub schema: SchemaRef,
    /// True when rows beyond those asked for were dropped.
    pub truncated: bool,
}

/// A SQL session over the store's tables whose reads are governed (see the module docs).
pub struct Session {
    ctx: SessionContext,
    reader: Reader,
    limits: ReadLimits,
    deadline: Instant,
    budget: Arc<QueryRuntimes>,
}

impl Store {
    /// A session for `reader`, whose reads must all finish within `limits.timeout` from now.
    pub fn session(&self, reader: Reader, limits: ReadLimits) -> Result<Session, ReadError> {
        Ok(Session {
            ctx: self.context(reader)?,
            reader,
            limits,
            deadline: Instant::now() + limits.timeout,
            budget: self.inner.queries.clone(),
        })
    }
}

impl Session {
    /// The rows a query built with the toolkit answers; more than the session's row cap is
    /// an error.
    pub async fn fetch(&self, sql: &Sql) -> Result<Vec<RecordBatch>, ReadError> {
        let result = self.query(sql.as_str(), self.limits.max_rows).await?;
        if result.truncated {
            return Err(self.refuse(ReadError::TooManyRows(self.limits.max_rows)));
        }
        Ok(result.batches)
    }

    /// Users' SQL: at most `max_rows` rows (and never more than the session's cap), flagged
    /// when more were dropped.
    pub async fn query(&self, text: &str, max_rows: usize) -> Result<QueryResult, ReadError> {
        let max_rows = max_rows.min(self.limits.max_rows);
        let mut batches = Vec::new();
        let mut rows = 0usize;
        let schema = self
            .each(text, |batch| {
                rows += batch.num_rows();
                batches.push(batch);
                rows <= max_rows
            })
            .await?;
        let truncated = rows > max_rows;
        if truncated {
            let mut keep = max_rows;
            for b in batches.iter_mut() {
                let n = b.num_rows().min(keep);
                *b = b.slice(0, n);
                keep -= n;
            }
            batches.retain(|b| b.num_rows() > 0);
        }
        Ok(QueryResult {
            batches,
            schema,
            truncated,
        })
    }

    /// Hands the batches a toolkit query answers to `each` as they come, without holding
    /// them; `each` returns false to stop early.
    pub async fn for_each(
        &self,
        sql: &Sql,
        each: impl FnMut(RecordBatch) -> bool,
    ) -> Result<(), ReadError> {
        self.each(sql.as_str(), each).await.map(|_| ())
    }

    /// Checks, plans and runs `text` before the deadline, handing its batches to `each`.
    async fn each(
        &self,
        text: &str,
        mut each: impl FnMut(RecordBatch) -> bool,
    ) -> Result<SchemaRef, ReadError> {
        let work = async {
            let plan = self.plan(text).await?;
            let schema = plan.schema();
            let mut stream =
                execute_stream(plan.clone(), self.ctx.task_ctx()).map_err(|e| self.failed(e))?;
            while let Some(batch) = stream.next().await {
                if !each(batch.map_err(|e| self.failed(e))?) {
                    break;
                }
            }
            drop(stream);
            let (spills, bytes) = spilled(&plan);
            self.budget.spilled(spills, bytes);
            Ok::<_, ReadError>(schema)
        };
        let started = Instant::now();
        let answer = match tokio::time::timeout_at(self.deadline, work).await {
            Ok(answer) => answer,
            Err(_) => Err(ReadError::Timeout(self.limits.timeout)),
        };
        self.budget.took(self.reader, started.elapsed());
        answer.map_err(|e| self.refuse(e))
    }

    async fn plan(&self, text: &str) -> Result<Arc<dyn ExecutionPlan>, ReadError> {
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state
            .sql_to_statement(text, &dialect)
            .map_err(|e| ReadError::Invalid(e.strip_backtrace()))?;
        statement::check(&statement)?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| self.failed(e))?;
        read_only().verify_plan(&plan).map_err(|e| self.failed(e))?;
        let plan = state
            .create_physical_plan(&plan)
            .await
            .map_err(|e| self.failed(e))?;
        cooperative(plan).map_err(|e| self.failed(e))
    }

    /// `e` as this session's reader sees it: memory refusals name the pool's size.
    fn failed(&self, e: DataFusionError) -> ReadError {
        if is_out_of_memory(&e) {
            ReadError::OutOfMemory {
                limit: self.budget.limit(self.reader),
                detail: e.find_root().strip_backtrace(),
            }
        } else {
            ReadError::Failed(e.strip_backtrace())
        }
    }

    /// Counts `e` against this session's reader and hands it back.
    fn refuse(&self, e: ReadError) -> ReadError {
        self.budget.refused(self.reader, e.refusal());
        e
    }
}

/// What a plan may do: DDL, DML and other statements (`SET`, transactions…) are refused, so
/// a query can only read, whatever the statement check let through.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// `plan` with every operator's output counted against the task's Tokio budget, so a query
/// whose operators never wait (a cross join of generated rows) still yields every so often:
/// its deadline can stop it, and the threads it runs on serve other tasks meanwhile.
fn cooperative(plan: Arc<dyn ExecutionPlan>) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CooperativeExec::new(node));
        Ok(Transformed::yes(wrapped))
    })
    .map(|t| t.data)
}

/// Spills and spilled bytes over every operator of an executed plan.
fn spilled(plan: &Arc<dyn ExecutionPlan>) -> (usize, usize) {
    let (mut spills, mut bytes) = (0, 0);
    let mut todo = vec![plan.clone()];
    while let Some(node) = todo.pop() {
        if let Some(m) = node.metrics() {
            spills += m.spill_count().unwrap_or(0);
            bytes += m.spilled_bytes().unwrap_or(0);
        }
        todo.extend(node.children().into_iter().cloned());
    }
    (spills, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;
    use crate::exposition::Exposition;

    fn store(dir: &std::path::Path, query_memory: ByteSize) -> Store {
        Store::open(StoreConfig {
            data_dir: dir.to_path_buf(),
            query_memory,
            ..StoreConfig::default()
        })
        .unwrap()
    }

    fn metrics(store: &Store) -> String {
        let mut page = Exposition::new();
        store.render_metrics(&mut page);
        page.into_text()
    }

    fn limits(max_rows: usize) -> ReadLimits {
        ReadLimits {
            timeout: Duration::from_secs(30),
            max_rows,
        }
    }

    #[tokio::test]
    async fn reads_are_capped_checked_bounded_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), ByteSize(4 << 20));
        let session = store.session(Reader::Users, limits(10)).unwrap();

        let answer = session
            .query("SELECT value FROM generate_series(1, 100)", 1_000)
            .await
            .unwrap();
        assert!(answer.truncated);
        assert_eq!(
            answer
                .batches
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>(),
            10
        );
        let sql = Sql::from("SELECT value FROM generate_series(1, 100)");
        assert!(matches!(
            session.fetch(&sql).await,
            Err(ReadError::TooManyRows(10))
        ));
        let five = Sql::from("SELECT value FROM generate_series(1, 5)");
        assert_eq!(
            session
                .fetch(&five)
                .await
                .unwrap()
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>(),
            5
        );

        let deep = vec!["1"; 10_000].join(" + ");
        let err = session
            .query(&format!("SELECT {deep}"), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ReadError::Statement(StatementError::TooDeep)),
            "{err}"
        );
        let err = session.query("DROP TABLE spans", 1).await.unwrap_err();
        assert!(
            matches!(err, ReadError::Statement(StatementError::NotReadOnly(_))),
            "{err}"
        );

        let err = session
            .query(
                "SELECT array_agg(value) FROM generate_series(1, 2000000) GROUP BY value % 3",
                10,
            )
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("query needs more than 4MiB of memory; narrow the time range"),
            "{message}"
        );

        let slow = store
            .session(
                Reader::Users,
                ReadLimits {
                    timeout: Duration::from_millis(50),
                    max_rows: 10,
                },
            )
            .unwrap();
        let err = slow
            .query("SELECT max(a.value + b.value) FROM generate_series(1, 100000) a, generate_series(1, 100000) b", 1)
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Timeout(_)), "{err}");

        let text = metrics(&store);
        for line in [
            "vigil_queries_refused_total{reader=\"users\",reason=\"rows\"} 1",
            "vigil_queries_refused_total{reader=\"users\",reason=\"too_deep\"} 1",
            "vigil_queries_refused_total{reader=\"users\",reason=\"invalid\"} 1",
            "vigil_queries_refused_total{reader=\"users\",reason=\"memory\"} 1",
            "vigil_queries_refused_total{reader=\"users\",reason=\"timeout\"} 1",
            "vigil_query_memory_limit_bytes{reader=\"users\"} 4194304",
            "vigil_query_memory_bytes{reader=\"users\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        store.close();
    }

    #[tokio::test]
    async fn a_sort_bigger_than_memory_spills_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), ByteSize(8 << 20));
        let session = store.session(Reader::Users, limits(10)).unwrap();
        let sorted = session
            .query("SELECT v FROM (SELECT repeat('x', 16) || CAST(value AS VARCHAR) AS v FROM generate_series(1, 500000)) ORDER BY v DESC", 1)
            .await
            .unwrap();
        assert_eq!(sorted.batches[0].num_rows(), 1);
        let text = metrics(&store);
        let spills = text
            .lines()
            .find_map(|l| l.strip_prefix("vigil_query_spills_total "))
            .unwrap();
        assert!(spills.parse::<f64>().unwrap() >= 1.0, "{text}");
        store.close();
    }
}
