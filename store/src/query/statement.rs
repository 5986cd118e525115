//! What a statement must be before it is planned: read-only (one SELECT, WITH or EXPLAIN of
//! one) and with expressions nested at most [`MAX_EXPRESSION_DEPTH`] deep.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Statement, Visit, Visitor};

/// How deep expressions may nest (`a + b + c` is two deep: `(a + b) + c`). Planning and
/// evaluating recurse once per level; beyond this a query is refused rather than risk the
/// stack.
pub const MAX_EXPRESSION_DEPTH: usize = 256;

/// Why a statement may not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatementError {
    /// Not a query: DDL, DML, `SET`, `COPY`…
    #[error("only read-only queries (SELECT, WITH, EXPLAIN) are allowed; refused: {0}")]
    NotReadOnly(String),
    /// Expressions nest deeper than [`MAX_EXPRESSION_DEPTH`].
    #[error(
        "expressions nest more than {MAX_EXPRESSION_DEPTH} deep; split the query or use IN (…) instead of long OR/AND chains"
    )]
    TooDeep,
}

/// Refuses anything but one SELECT / WITH … SELECT / EXPLAIN of one, and too deep expressions.
pub fn check(statement: &DfStatement) -> Result<(), StatementError> {
    let query = match statement {
        DfStatement::Statement(s) => read_only(s),
        DfStatement::Explain(e) => match e.statement.as_ref() {
            DfStatement::Statement(s) => read_only(s),
            other => Err(refused(&other.to_string())),
        },
        other => Err(refused(&other.to_string())),
    }?;
    let mut depth = Depth::default();
    match query.visit(&mut depth) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(StatementError::TooDeep),
    }
}

/// The query `s` is, or is explains.
fn read_only(s: &Statement) -> Result<&Statement, StatementError> {
    match s {
        Statement::Query(_) => Ok(s),
        Statement::Explain { statement, .. }
            if matches!(statement.as_ref(), Statement::Query(_)) =>
        {
            Ok(statement)
        }
        other => Err(refused(&other.to_string())),
    }
}

fn refused(statement: &str) -> StatementError {
    StatementError::NotReadOnly(
        statement
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Tracks the nesting of expressions while visiting, and stops past the cap (so the visit
/// itself never recurses deeper than the cap either).
#[derive(Default)]
struct Depth {
    now: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now += 1;
        if self.now > MAX_EXPRESSION_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn checked(sql: &str) -> Result<(), StatementError> {
        let mut statements = DFParser::parse_sql(sql).unwrap();
        assert_eq!(statements.len(), 1, "{sql}");
        check(&statements.pop_front().unwrap())
    }

    #[test]
    fn only_queries_pass() {
        for ok in [
            "SELECT 1",
            "with x as (select 1) select * from x",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "select * from spans limit 3",
        ] {
            assert_eq!(checked(ok), Ok(()), "{ok}");
        }
        for bad in [
            "CREATE TABLE t (a INT)",
            "DROP TABLE spans",
            "INSERT INTO spans VALUES (1)",
            "COPY spans TO '/tmp/x.parquet'",
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'",
            "SET datafusion.execution.batch_size = 1",
            "EXPLAIN COPY spans TO '/tmp/x'",
            "DELETE FROM spans",
        ] {
            assert!(
                matches!(checked(bad), Err(StatementError::NotReadOnly(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn deep_expressions_are_refused_and_wide_ones_are_not() {
        let chain = |n: usize| format!("SELECT {}", vec!["1"; n].join(" + "));
        assert_eq!(checked(&chain(MAX_EXPRESSION_DEPTH)), Ok(()));
        assert_eq!(checked(&chain(10_000)), Err(StatementError::TooDeep));
        let filters = (0..2_000)
            .map(|i| format!("body LIKE '%w{i}%'"))
            .collect::<Vec<_>>()
            .join(" AND ");
        assert_eq!(
            checked(&format!("SELECT * FROM logs WHERE {filters}")),
            Err(StatementError::TooDeep)
        );
        let wide = (0..10_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(checked(&format!("SELECT 1 WHERE 5 IN ({wide})")), Ok(()));
    }
}
