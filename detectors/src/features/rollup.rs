//! Span features of a window with whole minutes in it, read from the store's `span_rollup`
//! for those minutes and from raw spans only for the partial minutes at its edges: what keeps
//! rates, errors and percentiles over hours of millions of spans under a second.
//! Percentiles come from the rollup's duration sketch (within about 1%).

use std::collections::BTreeMap;

use vigil_store::Session;
use vigil_store::StoreError;
use vigil_store::rollup::{Figures, MINUTE_NS, aggregate, rows};

use super::{Feature, Observation, SeriesKey};
use crate::eval::EvalError;
use vigil_store::query::{SpanKind, Sql, Window};
use vigil_store::sql;

/// The whole minutes inside `window`; `None` when it holds none.
pub fn whole_minutes(window: Window) -> Option<Window> {
    let start = window.start.div_euclid(MINUTE_NS) * MINUTE_NS;
    let start = if start < window.start {
        start + MINUTE_NS
    } else {
        start
    };
    let end = window.end.div_euclid(MINUTE_NS) * MINUTE_NS;
    (end > start).then_some(Window { start, end })
}

/// Figures per (service, span name, span kind).
type ByKind = BTreeMap<(String, String, String), Figures>;

fn shape(e: StoreError) -> EvalError {
    EvalError::Shape(e.to_string())
}

/// Adds the rows `sql` answers to `acc`, one batch at a time, through `read`.
async fn fold(
    ctx: &Session,
    sql: &Sql,
    acc: &mut ByKind,
    read: fn(&arrow::array::RecordBatch, &mut ByKind) -> Result<(), StoreError>,
) -> Result<(), EvalError> {
    let mut failed = None;
    ctx.for_each(sql, |batch| match read(&batch, acc) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(shape(e));
            false
        }
    })
    .await?;
    failed.map_or(Ok(()), Err)
}

fn add(acc: &mut ByKind, service: &str, name: &str, kind: &str, figures: &Figures) {
    acc.entry((service.to_string(), name.to_string(), kind.to_string()))
        .or_default()
        .merge(figures);
}

fn from_rollup(b: &arrow::array::RecordBatch, acc: &mut ByKind) -> Result<(), StoreError> {
    for (k, f) in rows(b)? {
        add(acc, k.service, k.span_name, k.span_kind, &f);
    }
    Ok(())
}

fn from_spans(b: &arrow::array::RecordBatch, acc: &mut ByKind) -> Result<(), StoreError> {
    for (k, f) in aggregate(std::slice::from_ref(b))? {
        add(acc, k.service, k.span_name, k.span_kind, &f);
    }
    Ok(())
}

/// One observation per (service, operation) and per service (its entry spans) over
/// `window`, whose whole minutes are `inner`, into `out`.
pub async fn span_features(
    ctx: &Session,
    window: Window,
    inner: Window,
    out: &mut BTreeMap<SeriesKey, Observation>,
) -> Result<(), EvalError> {
    let mut acc = ByKind::new();
    let sql = sql!(
        "SELECT service_name, span_name, span_kind, spans, errors, fastest_ns, slowest_ns, \
         slowest_trace_id, error_trace_id, sketch_offset, sketch_counts \
         FROM span_rollup WHERE {}",
        inner.sql()
    );
    fold(ctx, &sql, &mut acc, from_rollup).await?;
    let edges = [
        Window {
            start: window.start,
            end: inner.start,
        },
        Window {
            start: inner.end,
            end: window.end,
        },
    ];
    for edge in edges.into_iter().filter(|e| e.end > e.start) {
        let sql = sql!(
            "SELECT time, service_name, span_name, span_kind, status_code, duration_ns, \
             trace_id FROM spans WHERE {}",
            edge.sql()
        );
        fold(ctx, &sql, &mut acc, from_spans).await?;
    }
    let mut series: BTreeMap<SeriesKey, Figures> = BTreeMap::new();
    for ((service, name, kind), figures) in &acc {
        let key = |operation: &str| SeriesKey {
            service: service.clone(),
            operation: operation.to_string(),
        };
        series.entry(key(name)).or_default().merge(figures);
        if SpanKind::ENTRY.iter().any(|k| k.as_str() == kind) {
            series.entry(key("")).or_default().merge(figures);
        }
    }
    let seconds = window.seconds().max(f64::MIN_POSITIVE);
    for (key, figures) in series {
        out.insert(key.clone(), observe(key, &figures, seconds));
    }
    Ok(())
}

/// The span features of `figures`, counted over `seconds`.
fn observe(key: SeriesKey, figures: &Figures, seconds: f64) -> Observation {
    let mut o = Observation::empty(key);
    let count = figures.spans as f64;
    o.values[Feature::RequestRate.index()] = Some(count / seconds);
    o.values[Feature::ErrorRate.index()] = Some(figures.errors as f64 / count.max(1.0));
    for (f, q) in [
        (Feature::LatencyP50, 0.5),
        (Feature::LatencyP95, 0.95),
        (Feature::LatencyP99, 0.99),
    ] {
        o.values[f.index()] = figures.quantile(q).map(|ns| ns / 1e9);
    }
    for t in [&figures.slowest_trace_id, &figures.error_trace_id] {
        if !t.is_empty() && !o.trace_ids.contains(t) {
            o.trace_ids.push(t.clone());
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_minutes_round_the_start_up_and_the_end_down() {
        let m = MINUTE_NS;
        let w = |start, end| Window { start, end };
        assert_eq!(whole_minutes(w(m + 1, 4 * m - 1)), Some(w(2 * m, 3 * m)));
        assert_eq!(whole_minutes(w(m, 3 * m)), Some(w(m, 3 * m)));
        assert_eq!(whole_minutes(w(m + 1, 2 * m + 5)), None);
        assert_eq!(whole_minutes(w(10, 20)), None);
    }
}
