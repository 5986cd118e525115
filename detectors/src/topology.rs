//! Who calls whom in a window: service-to-service edges from parent/child spans across
//! services, messaging edges from consumer spans to the producer spans they continue or link to
//! (also when the consumer started a new trace), and edges to uninstrumented dependencies
//! (`peer.service` of CLIENT spans). Each edge carries the callee side's rate, errors and
//! latency, and for messaging the delivery lag (consumer start − producer start).

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, Float64Array};
use serde::Serialize;
use vigil_store::Session;

use crate::eval::EvalError;
use vigil_store::query::{SpanKind, Sql, StatusCode, Window, floats, strings, text};
use vigil_store::sql;

/// How long before the window a parent or producer span may have started and still count.
const LOOKBACK_NS: i64 = 300 * 1_000_000_000;

/// What kind of dependency an edge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// A request/response call (CLIENT → SERVER, or to an uninstrumented dependency).
    Call,
    /// A message from a producer to a consumer through the broker.
    Messaging,
}

/// One caller → callee edge in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    /// The calling (or producing) service.
    pub caller: String,
    /// The called (or consuming) service, or the dependency's `peer.service`.
    pub callee: String,
    /// Call or messaging.
    pub kind: EdgeKind,
    /// Whether the callee reports its own spans.
    pub instrumented: bool,
    /// Calls (deliveries) per second.
    pub rate: f64,
    /// Calls in the window.
    pub calls: u64,
    /// Share of calls that failed.
    pub error_rate: f64,
    /// Callee-side latency percentiles, seconds.
    pub p50: Option<f64>,
    /// 95th percentile, seconds.
    pub p95: Option<f64>,
    /// 99th percentile, seconds.
    pub p99: Option<f64>,
    /// Messaging only: how long after the producer started the consumer started, seconds.
    pub lag_p50: Option<f64>,
    /// 95th percentile of the lag, seconds.
    pub lag_p95: Option<f64>,
}

/// The edge figures over caller `p` and callee `c` rows.
fn aggregates() -> Sql {
    sql!(
        "count(*) AS n, \
    sum(CASE WHEN c.status_code = {} THEN 1 ELSE 0 END) AS errors, \
    approx_percentile_cont(c.duration_ns, 0.5) AS p50, \
    approx_percentile_cont(c.duration_ns, 0.95) AS p95, \
    approx_percentile_cont(c.duration_ns, 0.99) AS p99, \
    approx_percentile_cont(CAST(c.start_ns - p.start_ns AS DOUBLE), 0.5) AS lag_p50, \
    approx_percentile_cont(CAST(c.start_ns - p.start_ns AS DOUBLE), 0.95) AS lag_p95",
        StatusCode::Error
    )
}

const CHILD_COLUMNS: &str = "trace_id, parent_span_id, service_name, span_kind, status_code, \
    duration_ns, CAST(time AS BIGINT) AS start_ns";

/// The SQL for edges between instrumented services: parent/child across services, and
/// consumers in new traces joined to the producer span their first link names.
fn service_edges_sql(window: Window) -> [Sql; 2] {
    let wider = Window {
        start: window.start.saturating_sub(LOOKBACK_NS),
        end: window.end,
    };
    let parent_child = sql!(
        "SELECT p.service_name AS caller, c.service_name AS callee, \
         CASE WHEN c.span_kind = {} THEN 'messaging' ELSE 'call' END AS kind, {} \
         FROM (SELECT {} FROM spans WHERE {} AND parent_span_id <> '') c \
         JOIN (SELECT trace_id, span_id, service_name, CAST(time AS BIGINT) AS start_ns \
               FROM spans WHERE {}) p \
         ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id \
         WHERE c.service_name <> p.service_name GROUP BY 1, 2, 3",
        SpanKind::Consumer,
        aggregates(),
        CHILD_COLUMNS,
        window.sql(),
        wider.sql()
    );
    let links = sql!(
        "SELECT p.service_name AS caller, c.service_name AS callee, 'messaging' AS kind, \
         {} \
         FROM (SELECT {}, \
                 regexp_match(links, '\"trace_id\":\"([0-9a-f]{{32}})\",\"span_id\":\"([0-9a-f]{{16}})\"') AS l \
               FROM spans WHERE {} AND span_kind = {} AND links <> '[]') c \
         JOIN (SELECT trace_id, span_id, service_name, CAST(time AS BIGINT) AS start_ns \
               FROM spans WHERE {} AND span_kind = {}) p \
         ON p.trace_id = c.l[1] AND p.span_id = c.l[2] \
         WHERE c.trace_id <> c.l[1] GROUP BY 1, 2, 3",
        aggregates(),
        CHILD_COLUMNS,
        window.sql(),
        SpanKind::Consumer,
        wider.sql(),
        SpanKind::Producer
    );
    [parent_child, links]
}

/// CLIENT spans naming a `peer.service`: edges to dependencies, instrumented or not.
fn dependency_edges_sql(window: Window) -> Sql {
    sql!(
        "SELECT c.service_name AS caller, c.peer AS callee, 'call' AS kind, \
         count(*) AS n, sum(CASE WHEN c.status_code = {} THEN 1 ELSE 0 END) AS errors, \
         approx_percentile_cont(c.duration_ns, 0.5) AS p50, \
         approx_percentile_cont(c.duration_ns, 0.95) AS p95, \
         approx_percentile_cont(c.duration_ns, 0.99) AS p99, \
         CAST(NULL AS DOUBLE) AS lag_p50, CAST(NULL AS DOUBLE) AS lag_p95 \
         FROM (SELECT service_name, status_code, duration_ns, \
                 attributes['peer.service'] AS peer FROM spans \
               WHERE {} AND span_kind = {}) c \
         WHERE c.peer IS NOT NULL AND c.peer <> '' GROUP BY 1, 2, 3",
        StatusCode::Error,
        window.sql(),
        SpanKind::Client
    )
}

fn seconds(ns: &Float64Array, i: usize) -> Option<f64> {
    (!ns.is_null(i)).then(|| ns.value(i) / 1e9)
}

async fn run(
    ctx: &Session,
    sql: &Sql,
    window: Window,
    out: &mut BTreeMap<(String, String, EdgeKind), Edge>,
) -> Result<(), EvalError> {
    let length = window.seconds().max(f64::MIN_POSITIVE);
    for b in ctx.fetch(sql).await? {
        let (caller, callee, kind) = (
            strings(&b, "caller")?,
            strings(&b, "callee")?,
            strings(&b, "kind")?,
        );
        let (n, errors) = (floats(&b, "n")?, floats(&b, "errors")?);
        let q = [
            floats(&b, "p50")?,
            floats(&b, "p95")?,
            floats(&b, "p99")?,
            floats(&b, "lag_p50")?,
            floats(&b, "lag_p95")?,
        ];
        for i in 0..b.num_rows() {
            let kind = if text(&kind, i) == "messaging" {
                EdgeKind::Messaging
            } else {
                EdgeKind::Call
            };
            let calls = n.value(i);
            let lag = |a: &Float64Array| {
                (kind == EdgeKind::Messaging)
                    .then(|| seconds(a, i))
                    .flatten()
            };
            let edge = Edge {
                caller: text(&caller, i).to_string(),
                callee: text(&callee, i).to_string(),
                kind,
                instrumented: true,
                rate: calls / length,
                calls: calls as u64,
                error_rate: if errors.is_null(i) {
                    0.0
                } else {
                    errors.value(i) / calls.max(1.0)
                },
                p50: seconds(&q[0], i),
                p95: seconds(&q[1], i),
                p99: seconds(&q[2], i),
                lag_p50: lag(&q[3]),
                lag_p95: lag(&q[4]),
            };
            // Parent/child and link edges of one pair add up (errors weighted by calls); the
            // first's percentiles stay.
            out.entry((edge.caller.clone(), edge.callee.clone(), kind))
                .and_modify(|e| {
                    let total = (e.calls + edge.calls).max(1) as f64;
                    e.error_rate = (e.error_rate * e.calls as f64
                        + edge.error_rate * edge.calls as f64)
                        / total;
                    e.calls += edge.calls;
                    e.rate += edge.rate;
                })
                .or_insert(edge);
        }
    }
    Ok(())
}

/// Every edge with traffic in `window`, ordered by caller, callee and kind.
pub async fn edges(ctx: &Session, window: Window) -> Result<Vec<Edge>, EvalError> {
    let mut out = BTreeMap::new();
    for sql in service_edges_sql(window) {
        run(ctx, &sql, window, &mut out).await?;
    }
    let services: BTreeSet<String> = {
        let sql = sql!(
            "SELECT DISTINCT service_name FROM spans WHERE {}",
            window.sql()
        );
        let mut names = BTreeSet::new();
        for b in ctx.fetch(&sql).await? {
            let col = strings(&b, "service_name")?;
            names.extend((0..b.num_rows()).map(|i| text(&col, i).to_string()));
        }
        names
    };
    let mut dependencies = BTreeMap::new();
    run(
        ctx,
        &dependency_edges_sql(window),
        window,
        &mut dependencies,
    )
    .await?;
    for (key, mut edge) in dependencies {
        // A CLIENT span naming an instrumented service is already an edge from its child.
        if services.contains(&edge.callee) {
            continue;
        }
        edge.instrumented = false;
        out.insert(key, edge);
    }
    Ok(out.into_values().collect())
}
