//! Read-only SQL: only SELECT, WITH and EXPLAIN reach the engine, under a timeout and a row cap.

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use datafusion::execution::context::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use vigil_store::exposition::{self, Exposition, Histogram};

/// Why a query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Not a read-only query, or not valid SQL.
    #[error("{0}")]
    Refused(String),
    /// Planning or execution failed (unknown column, type error…).
    #[error("{0}")]
    Failed(String),
    /// The query ran longer than allowed.
    #[error("query did not finish within {0:?}")]
    Timeout(Duration),
}

/// A query's answer.
#[derive(Debug)]
pub struct QueryResult {
    /// Result batches, at most `max_rows` rows in all.
    pub batches: Vec<RecordBatch>,
    /// The result schema (also when there are no rows).
    pub schema: arrow::datatypes::SchemaRef,
    /// True when rows beyond the cap were dropped.
    pub truncated: bool,
}

/// How long the queries [`run`] answered took, refused ones aside.
static QUERY_SECONDS: Histogram = Histogram::new(exposition::QUERY_SECONDS);

/// Writes the query latencies to `page`.
pub fn render_metrics(page: &mut Exposition) {
    page.histogram(
        "vigil_query_duration_seconds",
        "Time the query API's queries took to plan and run, timeouts and failures included.",
    )
    .observed(&[], &QUERY_SECONDS);
}

/// Refuses anything but a single SELECT / WITH … SELECT / EXPLAIN.
pub fn check_read_only(sql: &str) -> Result<(), QueryError> {
    let statements =
        DFParser::parse_sql(sql).map_err(|e| QueryError::Refused(format!("invalid SQL: {e}")))?;
    if statements.len() != 1 {
        return Err(QueryError::Refused(format!(
            "expected exactly one statement, got {}",
            statements.len()
        )));
    }
    match &statements[0] {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Query(_) => Ok(()),
            Statement::Explain { statement, .. }
                if matches!(statement.as_ref(), Statement::Query(_)) =>
            {
                Ok(())
            }
            other => Err(QueryError::Refused(format!(
                "only read-only queries (SELECT, WITH, EXPLAIN) are allowed; refused: {}",
                first_words(&other.to_string())
            ))),
        },
        DfStatement::Explain(e) if matches!(e.statement.as_ref(), DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_))) => {
            Ok(())
        }
        other => Err(QueryError::Refused(format!(
            "only read-only queries (SELECT, WITH, EXPLAIN) are allowed; refused: {}",
            first_words(&other.to_string())
        ))),
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Runs a read-only query in `ctx`, returning at most `max_rows` rows within `timeout`.
pub async fn run(
    ctx: &SessionContext,
    sql: &str,
    max_rows: usize,
    timeout: Duration,
) -> Result<QueryResult, QueryError> {
    check_read_only(sql)?;
    let options = vigil_store::Store::read_only();
    let work = async {
        let df = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|e| QueryError::Failed(e.to_string()))?;
        let schema = df.schema().inner().clone();
        let df = df
            .limit(0, Some(max_rows.saturating_add(1)))
            .map_err(|e| QueryError::Failed(e.to_string()))?;
        let batches = df
            .collect()
            .await
            .map_err(|e| QueryError::Failed(e.to_string()))?;
        Ok::<_, QueryError>((schema, batches))
    };
    let started = Instant::now();
    let answer = tokio::time::timeout(timeout, work).await;
    QUERY_SECONDS.observe(started.elapsed().as_secs_f64());
    let (schema, mut batches) = answer.map_err(|_| QueryError::Timeout(timeout))??;
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let truncated = total > max_rows;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_pass() {
        for ok in [
            "SELECT 1",
            "with x as (select 1) select * from x",
            "EXPLAIN SELECT 1",
            "select * from spans limit 3",
        ] {
            assert!(check_read_only(ok).is_ok(), "{ok}");
        }
        for bad in [
            "CREATE TABLE t (a INT)",
            "DROP TABLE spans",
            "INSERT INTO spans VALUES (1)",
            "COPY spans TO '/tmp/x.parquet'",
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'",
            "SET datafusion.execution.batch_size = 1",
            "SELECT 1; SELECT 2",
            "EXPLAIN COPY spans TO '/tmp/x'",
            "DELETE FROM spans",
        ] {
            assert!(
                matches!(check_read_only(bad), Err(QueryError::Refused(_))),
                "{bad}"
            );
        }
    }
}
