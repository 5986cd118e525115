//! Reads one window of spans, error logs and consumer lag from the store and turns it into
//! one [`Observation`] per series.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;

use super::{Feature, Observation, SeriesKey};
use crate::eval::group::CONSUMER_LAG_METRIC;
use crate::eval::quantile::exact;
use crate::eval::{EvalError, Window, floats, metrics, strings, text};
use crate::rules::model::{Aggregation, MetricSelector, SpanSelector};

/// Severity number of ERROR in OpenTelemetry's log data model.
const ERROR_SEVERITY: i32 = 17;

/// The spans of one series in one window.
#[derive(Debug, Default)]
struct Acc {
    count: u64,
    errors: u64,
    durations: Vec<f64>,
    slowest: Option<(f64, String)>,
    error_trace: Option<String>,
}

impl Acc {
    fn add(&mut self, seconds: f64, error: bool, trace: &str) {
        self.count += 1;
        self.durations.push(seconds);
        if error {
            self.errors += 1;
            if self.error_trace.is_none() && !trace.is_empty() {
                self.error_trace = Some(trace.to_string());
            }
        }
        if !trace.is_empty() && self.slowest.as_ref().is_none_or(|(d, _)| seconds > *d) {
            self.slowest = Some((seconds, trace.to_string()));
        }
    }

    fn observe(mut self, key: SeriesKey, seconds: f64) -> Observation {
        let mut o = Observation::empty(key);
        let mut set = |f: Feature, v: Option<f64>| o.values[f.index()] = v;
        set(Feature::RequestRate, Some(self.count as f64 / seconds));
        set(
            Feature::ErrorRate,
            Some(self.errors as f64 / self.count.max(1) as f64),
        );
        set(Feature::LatencyP50, exact(&mut self.durations, 0.5));
        set(Feature::LatencyP95, exact(&mut self.durations, 0.95));
        set(Feature::LatencyP99, exact(&mut self.durations, 0.99));
        o.trace_ids.extend(self.slowest.map(|(_, t)| t));
        o.trace_ids.extend(self.error_trace);
        o.trace_ids.dedup();
        o
    }
}

/// Whether a span of `kind` is where a request enters its service.
fn is_entry(kind: &str) -> bool {
    kind == "SERVER" || kind == "CONSUMER"
}

/// Every series with telemetry in `window`, ordered by service then operation (the service
/// series first).
pub async fn extract(ctx: &SessionContext, window: Window) -> Result<Vec<Observation>, EvalError> {
    let seconds = window.seconds().max(f64::MIN_POSITIVE);
    let mut series: BTreeMap<SeriesKey, Acc> = BTreeMap::new();
    let sql = format!(
        "SELECT service_name, span_name, span_kind, status_code, duration_ns, trace_id \
         FROM spans WHERE {}",
        window.sql()
    );
    for b in ctx.sql(&sql).await?.collect().await? {
        let service = strings(&b, "service_name")?;
        let operation = strings(&b, "span_name")?;
        let kind = strings(&b, "span_kind")?;
        let status = strings(&b, "status_code")?;
        let duration = floats(&b, "duration_ns")?;
        let trace = strings(&b, "trace_id")?;
        for i in 0..b.num_rows() {
            let seconds = duration.value(i) / 1e9;
            let error = text(&status, i) == "ERROR";
            let (svc, trace) = (text(&service, i), text(&trace, i));
            let key = SeriesKey {
                service: svc.to_string(),
                operation: text(&operation, i).to_string(),
            };
            series.entry(key).or_default().add(seconds, error, trace);
            if is_entry(text(&kind, i)) {
                let key = SeriesKey {
                    service: svc.to_string(),
                    operation: String::new(),
                };
                series.entry(key).or_default().add(seconds, error, trace);
            }
        }
    }
    let mut out: BTreeMap<SeriesKey, Observation> = series
        .into_iter()
        .map(|(k, acc)| (k.clone(), acc.observe(k, seconds)))
        .collect();
    let service = |name: &str| SeriesKey {
        service: name.to_string(),
        operation: String::new(),
    };
    let logs = format!(
        "SELECT service_name, count(*) AS n FROM logs WHERE {} AND severity_number >= \
         {ERROR_SEVERITY} GROUP BY service_name",
        window.sql()
    );
    for b in ctx.sql(&logs).await?.collect().await? {
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
    Ok(out.into_values().collect())
}
