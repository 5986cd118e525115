//! Each service's metrics in a window: the mean of gauges and non-monotonic sums, the
//! increase per second of monotonic counters, with their spread, so a metric that moved at
//! the time of an anomaly can be compared with its baseline. Read per series (service plus
//! attributes), so a metric reported per topic or partition is not one jumbled series.
//! Which series moved, and which of them measure the service's own resources (process,
//! runtime, container), whose rise points at the service itself.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use vigil_store::Session;

use crate::eval::EvalError;
use crate::eval::metrics::{NAME_LABEL, increase, series};
use vigil_store::query::{Window, strings, text};
use vigil_store::sql;

/// One series' level in a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Mean value (gauges) or increase per second (counters).
    pub value: f64,
    /// Standard deviation of the points (0 for counters).
    pub spread: f64,
}

/// (service, metric) → level.
pub type Levels = BTreeMap<(String, String), Level>;

/// Every series' level in `w`: a counter's rises (resets and series that started in the
/// window handled as the rule engine does) summed over its series, per second; a gauge's
/// mean of its series' means, with their mean spread.
pub async fn levels(ctx: &Session, w: Window) -> Result<Levels, EvalError> {
    let counters_sql = sql!(
        "SELECT DISTINCT service_name, metric_name FROM metrics WHERE {} AND is_monotonic",
        w.sql()
    );
    let mut counters = BTreeSet::new();
    for b in ctx.fetch(&counters_sql).await? {
        let (service, metric) = (strings(&b, "service_name")?, strings(&b, "metric_name")?);
        for i in 0..b.num_rows() {
            counters.insert((text(&service, i).to_string(), text(&metric, i).to_string()));
        }
    }
    let points_sql = sql!(
        "SELECT time, start_time, service_name, metric_name, attributes, temporality, value, \
         bucket_counts, explicit_bounds FROM metrics WHERE {} AND value IS NOT NULL",
        w.sql()
    );
    let batches = ctx.fetch(&points_sql).await?;
    // (service, metric) → each series' level and spread.
    let mut by_metric: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for s in series(&batches)? {
        let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        let key = (label("service"), label(NAME_LABEL));
        let level = if counters.contains(&key) {
            (increase(&s.points, w) / w.seconds().max(1.0), 0.0)
        } else {
            let values: Vec<f64> = s.points.iter().filter_map(|p| p.value).collect();
            mean_and_spread(&values)
        };
        by_metric.entry(key).or_default().push(level);
    }
    Ok(by_metric
        .into_iter()
        .map(|(key, per_series)| {
            let combined = if counters.contains(&key) {
                Level {
                    value: per_series.iter().map(|l| l.0).sum(),
                    spread: 0.0,
                }
            } else {
                let n = per_series.len().max(1) as f64;
                Level {
                    value: per_series.iter().map(|l| l.0).sum::<f64>() / n,
                    spread: per_series.iter().map(|l| l.1).sum::<f64>() / n,
                }
            };
            (key, combined)
        })
        .collect())
}

/// Name prefixes of the metrics that measure a service's own resources and runtime
/// (OpenTelemetry semantic conventions).
const RESOURCE_PREFIXES: [&str; 9] = [
    "process.",
    "system.",
    "container.",
    "k8s.pod.",
    "jvm.",
    "go.",
    "dotnet.",
    "v8js.",
    "cpython.",
];

/// Whether `metric` measures its service's own resources or runtime.
pub fn is_resource(metric: &str) -> bool {
    RESOURCE_PREFIXES.iter().any(|p| metric.starts_with(p))
}

/// A metric series that moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricShift {
    /// The service reporting it.
    pub service: String,
    /// The metric.
    pub metric: String,
    /// Level in the baseline (mean, or increase per second for counters).
    pub before: f64,
    /// Level in the anomaly window.
    pub after: f64,
    /// The change in baseline spreads.
    pub shift: f64,
}

/// Series of services `in_scope` whose level moved at least three baseline spreads (and
/// 10%), largest first.
pub fn shifts(
    before: &Levels,
    after: &Levels,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<MetricShift> {
    let mut out: Vec<MetricShift> = after
        .iter()
        .filter(|((svc, _), _)| in_scope(svc))
        .filter_map(|(key, a)| {
            let b = before.get(key)?;
            let change = (a.value - b.value).abs();
            // In baseline spreads, a tenth of the larger level at least: a series that jumps
            // from nothing is not infinitely remarkable.
            let shift = change / (b.spread + 0.1 * b.value.abs().max(a.value.abs())).max(1e-9);
            (shift >= 3.0 && change >= 0.1 * b.value.abs()).then(|| MetricShift {
                service: key.0.clone(),
                metric: key.1.clone(),
                before: b.value,
                after: a.value,
                shift,
            })
        })
        .collect();
    out.sort_by(|a, b| b.shift.total_cmp(&a.shift));
    out
}

/// Mean and sample standard deviation (0 for fewer than two values).
fn mean_and_spread(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_series_are_told_from_symptoms() {
        assert!(is_resource("process.cpu.utilization"));
        assert!(is_resource("jvm.memory.used"));
        assert!(!is_resource("http.server.request.duration"));
        assert!(!is_resource("messaging.consumer.lag"));
    }

    #[test]
    fn a_series_that_moved_many_spreads_is_a_shift() {
        let level = |value, spread| Level { value, spread };
        let key = |m: &str| ("order".to_string(), m.to_string());
        let before = Levels::from([
            (key("process.cpu.utilization"), level(0.01, 0.002)),
            (key("queue"), level(10.0, 2.0)),
        ]);
        let after = Levels::from([
            (key("process.cpu.utilization"), level(0.6, 0.05)),
            (key("queue"), level(11.0, 2.0)),
        ]);
        let moved = shifts(&before, &after, &|_| true);
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!(moved[0].metric, "process.cpu.utilization");
        assert!(moved[0].shift > 9.0, "{moved:?}");
        assert!(shifts(&before, &after, &|s| s != "order").is_empty());
    }

    #[test]
    fn mean_and_sample_spread() {
        assert_eq!(mean_and_spread(&[]), (0.0, 0.0));
        assert_eq!(mean_and_spread(&[4.0]), (4.0, 0.0));
        let (m, s) = mean_and_spread(&[2.0, 4.0, 6.0]);
        assert!(
            (m - 4.0).abs() < 1e-12 && (s - 2.0).abs() < 1e-12,
            "{m} {s}"
        );
    }
}
