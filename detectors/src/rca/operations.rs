//! Each (service, operation)'s own behaviour in a window: calls, self time (its duration less
//! its synchronous children's, so a slow callee does not make its callers look slow) and own
//! errors (an error span none of whose children failed), computed by the query engine.

use std::collections::BTreeMap;

use arrow::array::Array;
use vigil_store::Session;

use crate::eval::EvalError;
use vigil_store::query::{SpanKind, Sql, StatusCode, Window, floats, strings, text};
use vigil_store::sql;

/// One operation's figures in one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationStats {
    /// Spans.
    pub calls: f64,
    /// Spans that failed on their own.
    pub own_errors: f64,
    /// Self time percentiles, seconds.
    pub self_p50: f64,
    /// 95th percentile.
    pub self_p95: f64,
    /// The trace of the slowest span (by self time) and of an own error, if any.
    pub slowest_trace: String,
    /// An own error's trace.
    pub error_trace: String,
    /// A CLIENT operation whose calls reach an instrumented service: the callee's spans
    /// carry the evidence (its time, errors and calls), not the caller's.
    pub reaches_service: bool,
}

impl OperationStats {
    /// Own errors per call.
    pub fn error_rate(&self) -> f64 {
        self.own_errors / self.calls.max(1.0)
    }
}

/// (service, operation) → figures.
pub type Operations = BTreeMap<(String, String), OperationStats>;

/// The SQL giving every operation's figures in `w`. CONSUMER children are asynchronous (they
/// handle a message after the producer span ended), so they do not count against the parent.
/// A CLIENT span whose callee is instrumented has no self time and no own error: what it
/// spends outside the callee's SERVER span is the network's and the callee's
/// (`rca::network` measures it), and so is a failure the callee's span does not show (a
/// timeout waiting on it); such operations are flagged (`reaches_service`) so that their
/// call rate, which the callee's SERVER spans show too, is not counted twice.
pub fn operations_sql(w: Window) -> Sql {
    sql!(
        "WITH s AS (SELECT trace_id, span_id, parent_span_id, service_name, span_name, \
                  span_kind, status_code, duration_ns FROM spans WHERE {}), \
         c AS (SELECT trace_id, parent_span_id, sum(duration_ns) AS child_ns, \
                  sum(CASE WHEN status_code = {} THEN 1 ELSE 0 END) AS child_errors \
               FROM s WHERE span_kind <> {} AND parent_span_id <> '' GROUP BY 1, 2), \
         o AS (SELECT s.service_name, s.span_name, s.trace_id, \
                  CASE WHEN s.span_kind = {} AND c.child_ns IS NOT NULL THEN 0 \
                       ELSE greatest(s.duration_ns - coalesce(c.child_ns, 0), 0) END AS self_ns, \
                  CASE WHEN s.status_code = {} AND coalesce(c.child_errors, 0) = 0 \
                        AND NOT (s.span_kind = {} AND c.child_ns IS NOT NULL) \
                       THEN 1 ELSE 0 END AS own_error, \
                  CASE WHEN s.span_kind = {} AND c.child_ns IS NOT NULL THEN 1 ELSE 0 END \
                    AS reaches \
               FROM s LEFT JOIN c ON s.trace_id = c.trace_id AND s.span_id = c.parent_span_id) \
         SELECT service_name, span_name, count(*) AS calls, sum(own_error) AS own_errors, \
                approx_percentile_cont(CAST(self_ns AS DOUBLE), 0.5) AS self_p50, \
                approx_percentile_cont(CAST(self_ns AS DOUBLE), 0.95) AS self_p95, \
                first_value(trace_id ORDER BY self_ns DESC) AS slowest_trace, \
                max(CASE WHEN own_error = 1 THEN trace_id END) AS error_trace, \
                CAST(max(reaches) AS DOUBLE) AS reaches_service \
         FROM o GROUP BY 1, 2",
        w.sql(),
        StatusCode::Error,
        SpanKind::Consumer,
        SpanKind::Client,
        StatusCode::Error,
        SpanKind::Client,
        SpanKind::Client
    )
}

/// Every operation's figures in `w`.
pub async fn operations(ctx: &Session, w: Window) -> Result<Operations, EvalError> {
    let mut out = Operations::new();
    for b in ctx.fetch(&operations_sql(w)).await? {
        let (service, name) = (strings(&b, "service_name")?, strings(&b, "span_name")?);
        let (calls, errors) = (floats(&b, "calls")?, floats(&b, "own_errors")?);
        let (p50, p95) = (floats(&b, "self_p50")?, floats(&b, "self_p95")?);
        let (slowest, error) = (strings(&b, "slowest_trace")?, strings(&b, "error_trace")?);
        let reaches = floats(&b, "reaches_service")?;
        for i in 0..b.num_rows() {
            let value =
                |a: &arrow::array::Float64Array| if a.is_null(i) { 0.0 } else { a.value(i) };
            out.insert(
                (text(&service, i).to_string(), text(&name, i).to_string()),
                OperationStats {
                    calls: value(&calls),
                    own_errors: value(&errors),
                    self_p50: value(&p50) / 1e9,
                    self_p95: value(&p95) / 1e9,
                    slowest_trace: text(&slowest, i).to_string(),
                    error_trace: text(&error, i).to_string(),
                    reaches_service: value(&reaches) > 0.0,
                },
            );
        }
    }
    Ok(out)
}
