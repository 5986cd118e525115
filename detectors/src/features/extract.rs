//! Reads one window of spans, error logs, consumer lag and watched metrics from the store and
//! turns it into one [`Observation`] per series.

use std::collections::BTreeMap;

use arrow::array::Array;
use vigil_store::Session;

use super::{Feature, Observation, PeerMember, SeriesKey, WatchedMetric, rollup};
use crate::eval::group::CONSUMER_LAG_METRIC;
use crate::eval::{EvalError, metrics};
use crate::rules::selector::{Aggregation, MetricSelector, SpanSelector};
use vigil_store::query::{
    Severity, SpanKind, Sql, StatusCode, Window, attribute, floats, list, lit, strings, text,
};
use vigil_store::sql;

/// The attribute naming the partition a consumer span's message came from.
pub const PARTITION_ATTRIBUTE: &str = "messaging.destination.partition.id";

/// How a window's spans are grouped into series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// Per (service, span name).
    Operation,
    /// Entry spans (SERVER and CONSUMER) per service, operation `''`.
    Service,
    /// Consumer spans per (service, span name, partition), operation
    /// `<span name>{messaging.destination.partition.id=<p>}`.
    Partition,
}

/// The aggregate of one window's spans per series, computed by the query engine as it
/// streams the window (t-digest percentiles), so memory is bounded by the number of series,
/// never by the number of spans.
fn span_query(window: Window, grouping: Grouping) -> Sql {
    let partition = attribute(PARTITION_ATTRIBUTE);
    let (operation, filter, group) = match grouping {
        Grouping::Operation => (
            Sql::from("span_name"),
            Sql::default(),
            Sql::from("service_name, span_name"),
        ),
        Grouping::Service => (
            Sql::from("''"),
            sql!(
                " AND span_kind IN ({})",
                list(SpanKind::ENTRY.map(SpanKind::as_str))
            ),
            Sql::from("service_name"),
        ),
        Grouping::Partition => (
            sql!(
                "concat(span_name, {}, {}, '}}')",
                lit(&partition_marker()),
                partition
            ),
            sql!(
                " AND span_kind = {} AND {} IS NOT NULL",
                SpanKind::Consumer,
                partition
            ),
            sql!("service_name, span_name, {}", partition),
        ),
    };
    sql!(
        "SELECT service_name, {} AS operation, count(*) AS n, \
         sum(CASE WHEN status_code = {} THEN 1 ELSE 0 END) AS errors, \
         approx_percentile_cont(duration_ns, 0.5) AS p50, \
         approx_percentile_cont(duration_ns, 0.95) AS p95, \
         approx_percentile_cont(duration_ns, 0.99) AS p99, \
         first_value(trace_id ORDER BY duration_ns DESC, trace_id) AS slowest, \
         max(CASE WHEN status_code = {} THEN trace_id END) AS error_trace \
         FROM spans WHERE {}{} GROUP BY {}",
        operation,
        StatusCode::Error,
        StatusCode::Error,
        window.sql(),
        filter,
        group
    )
}

/// Adds one observation per row of `span_query`'s answer to `out`.
async fn span_features(
    ctx: &Session,
    sql: &Sql,
    seconds: f64,
    out: &mut BTreeMap<SeriesKey, Observation>,
) -> Result<(), EvalError> {
    for b in ctx.fetch(sql).await? {
        let (service, operation) = (strings(&b, "service_name")?, strings(&b, "operation")?);
        let (n, errors) = (floats(&b, "n")?, floats(&b, "errors")?);
        let quantiles = [floats(&b, "p50")?, floats(&b, "p95")?, floats(&b, "p99")?];
        let (slowest, error_trace) = (strings(&b, "slowest")?, strings(&b, "error_trace")?);
        for i in 0..b.num_rows() {
            let key = SeriesKey {
                service: text(&service, i).to_string(),
                operation: text(&operation, i).to_string(),
            };
            let mut o = Observation::empty(key.clone());
            let count = n.value(i);
            o.values[Feature::RequestRate.index()] = Some(count / seconds);
            o.values[Feature::ErrorRate.index()] = Some(errors.value(i) / count.max(1.0));
            let latencies = [
                Feature::LatencyP50,
                Feature::LatencyP95,
                Feature::LatencyP99,
            ];
            for (f, q) in latencies.into_iter().zip(&quantiles) {
                o.values[f.index()] = (!q.is_null(i)).then(|| q.value(i) / 1e9);
            }
            for t in [text(&slowest, i), text(&error_trace, i)] {
                if !t.is_empty() && !o.trace_ids.iter().any(|x| x == t) {
                    o.trace_ids.push(t.to_string());
                }
            }
            out.insert(key, o);
        }
    }
    Ok(())
}

/// Each consumer operation's deliveries per partition in `window`: the members of the peer
/// groups, one observation each (span features only), keyed
/// `<span name>{messaging.destination.partition.id=<p>}`.
pub async fn extract_partitions(
    ctx: &Session,
    window: Window,
) -> Result<Vec<PeerMember>, EvalError> {
    let seconds = window.seconds().max(f64::MIN_POSITIVE);
    let mut out = BTreeMap::new();
    span_features(
        ctx,
        &span_query(window, Grouping::Partition),
        seconds,
        &mut out,
    )
    .await?;
    let marker = partition_marker();
    Ok(out
        .into_values()
        .filter_map(|observation| {
            let (operation, _) = observation.key.operation.rsplit_once(&marker)?;
            let group = SeriesKey {
                service: observation.key.service.clone(),
                operation: operation.to_string(),
            };
            Some(PeerMember { group, observation })
        })
        .collect())
}

/// Every series with telemetry in `window`, ordered by service then operation (the service
/// series first), and every series of the `watched` metrics. Span features of a window
/// holding whole minutes come from the store's per-minute rollup (see [`rollup`]); those of a
/// shorter one from its spans.
pub async fn extract(
    ctx: &Session,
    window: Window,
    watched: &[WatchedMetric],
) -> Result<Vec<Observation>, EvalError> {
    let seconds = window.seconds().max(f64::MIN_POSITIVE);
    let mut out: BTreeMap<SeriesKey, Observation> = BTreeMap::new();
    match rollup::whole_minutes(window) {
        Some(inner) => rollup::span_features(ctx, window, inner, &mut out).await?,
        None => {
            for grouping in [Grouping::Operation, Grouping::Service] {
                span_features(ctx, &span_query(window, grouping), seconds, &mut out).await?;
            }
        }
    }
    let service = |name: &str| SeriesKey {
        service: name.to_string(),
        operation: String::new(),
    };
    let logs = sql!(
        "SELECT service_name, count(*) AS n FROM logs WHERE {} AND severity_number >= {} \
         GROUP BY service_name",
        window.sql(),
        Severity::Error
    );
    for b in ctx.fetch(&logs).await? {
        let (names, counts) = (strings(&b, "service_name")?, floats(&b, "n")?);
        for i in 0..b.num_rows() {
            let o = out
                .entry(service(text(&names, i)))
                .or_insert_with_key(|k| Observation::idle(k.clone()));
            o.values[Feature::LogErrorRate.index()] = Some(counts.value(i) / seconds);
        }
    }
    for o in out.values_mut().filter(|o| o.key.operation.is_empty()) {
        o.values[Feature::LogErrorRate.index()].get_or_insert(0.0);
    }
    let lag = MetricSelector {
        name: CONSUMER_LAG_METRIC.into(),
        aggregation: Aggregation::Last,
        labels: BTreeMap::new(),
    };
    let by_service = ["service".to_string()];
    let all = SpanSelector::default();
    for s in metrics::evaluate(ctx, &all, &lag, &by_service, window).await? {
        let Some(name) = s.labels.get("service") else {
            continue;
        };
        let o = out
            .entry(service(name))
            .or_insert_with_key(|k| Observation::idle(k.clone()));
        o.values[Feature::ConsumerLag.index()] = Some(s.value);
    }
    for m in watched {
        let selector = MetricSelector {
            name: m.name.clone(),
            aggregation: m.aggregation,
            labels: m.labels.clone(),
        };
        let group_by: Vec<String> = by_service.iter().chain(&m.group_by).cloned().collect();
        for s in metrics::evaluate(ctx, &all, &selector, &group_by, window).await? {
            let key = SeriesKey {
                service: s.labels.get("service").cloned().unwrap_or_default(),
                operation: m.series(&s.labels),
            };
            let o = out
                .entry(key)
                .or_insert_with_key(|k| Observation::empty(k.clone()));
            o.values[Feature::Metric.index()] = Some(s.value);
        }
    }
    Ok(out.into_values().collect())
}

/// What precedes the partition in a partition series' operation name.
fn partition_marker() -> String {
    format!("{{{PARTITION_ATTRIBUTE}=")
}
