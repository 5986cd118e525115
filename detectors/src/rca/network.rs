//! How long requests and messages wait on their way into each service: for a call, the
//! caller's CLIENT span less the callee's SERVER span under it (the network both ways and
//! anything in front of the callee's handler); for a message, the consumer span's start less
//! the producer span's (transit and queueing). Measured per (caller, callee) pair, so a
//! slower network into a service is blamed on that service, not on the callers that waited.

use std::collections::BTreeMap;

use arrow::array::Array;
use vigil_store::Session;

use crate::eval::EvalError;
use vigil_store::query::{SpanKind, Window, floats, strings, text};
use vigil_store::sql;

/// How far before the window a parent span may have started.
const LOOKBACK_NS: i64 = 60 * 1_000_000_000;

/// The wait on one (caller, callee) pair in one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wait {
    /// Calls or messages measured.
    pub count: f64,
    /// Median wait, seconds.
    pub p50: f64,
}

/// (caller, callee) → wait.
pub type Waits = BTreeMap<(String, String), Wait>;

/// Every pair's inbound wait in `w`.
pub async fn waits(ctx: &Session, w: Window) -> Result<Waits, EvalError> {
    let wider = Window {
        start: w.start.saturating_sub(LOOKBACK_NS),
        end: w.end,
    };
    let sql = sql!(
        "SELECT p.service_name AS caller, c.service_name AS callee, count(*) AS n, \
           approx_percentile_cont(CAST(CASE WHEN p.span_kind = {} \
               THEN p.duration_ns - c.duration_ns ELSE c.start_ns - p.start_ns END AS DOUBLE), 0.5) \
             AS wait_p50 \
         FROM (SELECT trace_id, parent_span_id, service_name, duration_ns, \
                 CAST(time AS BIGINT) AS start_ns FROM spans \
               WHERE {} AND parent_span_id <> '' AND span_kind IN ({}, {})) c \
         JOIN (SELECT trace_id, span_id, service_name, span_kind, duration_ns, \
                 CAST(time AS BIGINT) AS start_ns FROM spans \
               WHERE {} AND span_kind IN ({}, {})) p \
           ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id \
         WHERE c.service_name <> p.service_name GROUP BY 1, 2",
        SpanKind::Client,
        w.sql(),
        SpanKind::Server,
        SpanKind::Consumer,
        wider.sql(),
        SpanKind::Client,
        SpanKind::Producer
    );
    let mut out = Waits::new();
    for b in ctx.fetch(&sql).await? {
        let (caller, callee) = (strings(&b, "caller")?, strings(&b, "callee")?);
        let (n, p50) = (floats(&b, "n")?, floats(&b, "wait_p50")?);
        for i in 0..b.num_rows() {
            if p50.is_null(i) {
                continue;
            }
            out.insert(
                (text(&caller, i).to_string(), text(&callee, i).to_string()),
                Wait {
                    count: n.value(i),
                    p50: p50.value(i).max(0.0) / 1e9,
                },
            );
        }
    }
    Ok(out)
}
