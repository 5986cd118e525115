//! Anomaly rules: the highest score of each series in the `anomalies` table over the rule's
//! window, with what the detector found (top feature, observed against expected, detectors,
//! exemplar traces) carried along as context for the alert.

use std::collections::BTreeMap;

use vigil_store::Session;

use super::{EvalError, Sample};
use crate::features::Feature;
use crate::rules::model::AnomalySelector;
use crate::rules::template::format_value;
use vigil_store::query::{Sql, Window, eq, floats, strings, text};
use vigil_store::sql;

/// The SQL reading the rows `selector` picks in `window`, with the top feature's observed and
/// expected values.
fn query(selector: &AnomalySelector, window: Window) -> Sql {
    let mut sql = sql!(
        "SELECT service_name, operation, score, top_feature, detectors, \
         array_to_string(trace_ids, ',') AS traces, \
         map_extract(observed, top_feature)[1] AS observed, \
         map_extract(expected, top_feature)[1] AS expected \
         FROM anomalies WHERE {}",
        window.sql()
    );
    for (column, value) in [
        ("service_name", selector.service.as_deref()),
        ("operation", selector.operation.as_deref()),
        ("top_feature", selector.feature.map(Feature::name)),
    ] {
        if let Some(v) = value {
            sql.push(sql!(" AND {}", eq(column, v)));
        }
    }
    sql
}

/// One row of the `anomalies` table, as the rule reads it.
#[derive(Clone, Copy)]
struct Found<'a> {
    service: &'a str,
    operation: &'a str,
    score: f64,
    feature: &'a str,
    detectors: &'a str,
    traces: &'a str,
    observed: Option<f64>,
    expected: Option<f64>,
}

/// What an anomaly row says beyond its score, as annotations.
fn context(f: &Found) -> BTreeMap<String, String> {
    let Found {
        service,
        operation,
        score,
        feature,
        detectors,
        traces,
        observed,
        expected,
    } = *f;
    let unit = Feature::named(feature).map(Feature::unit);
    let show = |v: Option<f64>| v.map_or_else(|| "unknown".into(), |v| format_value(v, unit));
    let series = if operation.is_empty() {
        service.to_string()
    } else {
        format!("{service} {operation}")
    };
    let mut out = BTreeMap::from([
        ("anomaly_score".to_string(), format!("{score:.3}")),
        ("top_feature".to_string(), feature.to_string()),
        ("observed".to_string(), show(observed)),
        ("expected".to_string(), show(expected)),
        ("detectors".to_string(), detectors.to_string()),
        (
            "summary".to_string(),
            format!(
                "{series} is anomalous (score {score:.2}): {feature} is {}, expected {}",
                show(observed),
                show(expected)
            ),
        ),
    ]);
    if !traces.is_empty() {
        out.insert("trace_ids".into(), traces.to_string());
    }
    out
}

/// One sample per `group_by` series: its highest score in `window`, with that row's context.
pub async fn evaluate(
    ctx: &Session,
    selector: &AnomalySelector,
    group_by: &[String],
    window: Window,
) -> Result<Vec<Sample>, EvalError> {
    let batches = ctx.fetch(&query(selector, window)).await?;
    let mut best: BTreeMap<BTreeMap<String, String>, Sample> = BTreeMap::new();
    for b in &batches {
        let service = strings(b, "service_name")?;
        let operation = strings(b, "operation")?;
        let score = floats(b, "score")?;
        let feature = strings(b, "top_feature")?;
        let detectors = strings(b, "detectors")?;
        let traces = strings(b, "traces")?;
        let observed = floats(b, "observed")?;
        let expected = floats(b, "expected")?;
        let number = |a: &arrow::array::Float64Array, i: usize| {
            (!arrow::array::Array::is_null(a, i)).then(|| a.value(i))
        };
        for row in 0..b.num_rows() {
            let Some(value) = number(&score, row) else {
                continue;
            };
            let (svc, op) = (text(&service, row), text(&operation, row));
            let labels: BTreeMap<String, String> = group_by
                .iter()
                .map(|g| {
                    let v = if g == "service" { svc } else { op };
                    (g.clone(), v.to_string())
                })
                .filter(|(_, v)| !v.is_empty())
                .collect();
            if best.get(&labels).is_some_and(|s| s.value >= value) {
                continue;
            }
            let context = context(&Found {
                service: svc,
                operation: op,
                score: value,
                feature: text(&feature, row),
                detectors: text(&detectors, row),
                traces: text(&traces, row),
                observed: number(&observed, row),
                expected: number(&expected, row),
            });
            best.insert(
                labels.clone(),
                Sample {
                    labels,
                    value,
                    context,
                },
            );
        }
    }
    Ok(best.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_filters_and_reads_the_top_features_values() {
        let sql = query(
            &AnomalySelector {
                service: Some("pay'ment".into()),
                operation: None,
                feature: Some(Feature::LatencyP95),
            },
            Window { start: 0, end: 1 },
        );
        assert!(sql.contains("service_name = 'pay''ment'"), "{sql}");
        assert!(sql.contains("top_feature = 'latency_p95'"), "{sql}");
        assert!(!sql.contains("operation ="), "{sql}");
        assert!(sql.contains("map_extract(observed, top_feature)"), "{sql}");
    }

    #[test]
    fn context_writes_values_in_the_features_unit() {
        let c = context(&Found {
            service: "payment",
            operation: "process inventory",
            score: 0.974,
            feature: "latency_p95",
            detectors: "baseline,iforest",
            traces: "t1,t2",
            observed: Some(0.3125),
            expected: Some(0.16),
        });
        assert_eq!(
            c["summary"],
            "payment process inventory is anomalous (score 0.97): latency_p95 is 312.5ms, expected 160ms"
        );
        assert_eq!(c["trace_ids"], "t1,t2");
        assert_eq!(c["anomaly_score"], "0.974");
        let none = context(&Found {
            service: "shipping",
            operation: "",
            score: 0.9,
            feature: "consumer_lag",
            detectors: "baseline",
            traces: "",
            observed: None,
            expected: Some(3.0),
        });
        assert!(none["summary"].starts_with("shipping is anomalous"));
        assert_eq!(none["observed"], "unknown");
        assert!(!none.contains_key("trace_ids"));
    }
}
