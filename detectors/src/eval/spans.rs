//! Span measures (latency quantiles, error rate, availability, throughput) computed from one
//! window of spans loaded per group evaluation and shared by the group's rules.

use std::collections::HashMap;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use vigil_store::Session;

use super::{EvalError, Sample, label_column};
use crate::rules::Measure;
use crate::rules::selector::SpanSelector;
use vigil_store::query::{Sql, Window, list, strings, text};
use vigil_store::sql;

/// The columns of one batch of spans.
#[derive(Debug)]
struct Columns {
    time: TimestampNanosecondArray,
    service: StringArray,
    operation: StringArray,
    kind: StringArray,
    status: StringArray,
    duration: Int64Array,
    attrs: Vec<StringArray>,
}

/// Spans of a time window, with the attributes the group's rules need.
#[derive(Debug)]
pub struct SpanWindow {
    window: Window,
    attr_keys: Vec<String>,
    parts: Vec<Columns>,
}

/// Where a group-by label's value comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Service,
    Operation,
    Attr(usize),
}

#[derive(Debug, Default)]
struct Acc {
    count: u64,
    errors: u64,
    durations: Vec<f64>,
}

impl SpanWindow {
    /// Loads `window` of spans (only `services`, when given) with attributes `attr_keys`.
    pub async fn load(
        ctx: &Session,
        window: Window,
        services: Option<&[String]>,
        attr_keys: Vec<String>,
    ) -> Result<SpanWindow, EvalError> {
        let mut sql =
            Sql::from("SELECT time, service_name, span_name, span_kind, status_code, duration_ns");
        for (i, key) in attr_keys.iter().enumerate() {
            sql.push(sql!(", {} AS attr_{}", label_column(key, "span_name"), i));
        }
        sql.push(sql!(" FROM spans WHERE {}", window.sql()));
        if let Some(services) = services {
            sql.push(sql!(" AND service_name IN ({})", list(services)));
        }
        let batches = ctx.fetch(&sql).await?;
        SpanWindow::from_batches(window, attr_keys, &batches)
    }

    /// A window over already-queried `batches` (columns as [`SpanWindow::load`] selects them).
    pub fn from_batches(
        window: Window,
        attr_keys: Vec<String>,
        batches: &[RecordBatch],
    ) -> Result<SpanWindow, EvalError> {
        let column = |b: &RecordBatch, name: &str| {
            b.column_by_name(name)
                .cloned()
                .ok_or_else(|| EvalError::Shape(format!("span window has no column {name:?}")))
        };
        let mut parts = Vec::with_capacity(batches.len());
        for b in batches.iter().filter(|b| b.num_rows() > 0) {
            let attrs = (0..attr_keys.len())
                .map(|i| strings(b, &format!("attr_{i}")))
                .collect::<Result<_, _>>()?;
            parts.push(Columns {
                time: column(b, "time")?
                    .as_primitive_opt::<TimestampNanosecondType>()
                    .ok_or_else(|| EvalError::Shape("time is not a timestamp".into()))?
                    .clone(),
                service: strings(b, "service_name")?,
                operation: strings(b, "span_name")?,
                kind: strings(b, "span_kind")?,
                status: strings(b, "status_code")?,
                duration: column(b, "duration_ns")?
                    .as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| EvalError::Shape("duration_ns is not an integer".into()))?
                    .clone(),
                attrs,
            });
        }
        Ok(SpanWindow {
            window,
            attr_keys,
            parts,
        })
    }

    /// Spans loaded.
    pub fn rows(&self) -> usize {
        self.parts.iter().map(|p| p.time.len()).sum()
    }

    fn attr_index(&self, key: &str) -> Result<usize, EvalError> {
        self.attr_keys
            .iter()
            .position(|k| k == key)
            .ok_or_else(|| EvalError::Shape(format!("attribute {key:?} was not loaded")))
    }

    /// One sample per `group_by` series of spans matching `selector` within `window` (which
    /// must lie inside the loaded window).
    pub fn evaluate(
        &self,
        measure: Measure,
        selector: &SpanSelector,
        group_by: &[String],
        window: Window,
    ) -> Result<Vec<Sample>, EvalError> {
        if window.start < self.window.start || window.end > self.window.end {
            return Err(EvalError::Shape(
                "rule window outside the loaded window".into(),
            ));
        }
        let sources = group_by
            .iter()
            .map(|g| match g.as_str() {
                "service" => Ok(Source::Service),
                "operation" => Ok(Source::Operation),
                attr => self.attr_index(attr).map(Source::Attr),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let filters = selector
            .attributes
            .iter()
            .map(|(k, v)| Ok((self.attr_index(k)?, v.as_str())))
            .collect::<Result<Vec<_>, EvalError>>()?;
        let kind = selector.span_kind.map(|k| k.as_str());
        let latency = measure_quantile(measure);
        let mut groups: HashMap<Vec<&str>, Acc> = HashMap::new();
        let mut key: Vec<&str> = Vec::with_capacity(sources.len());
        for p in &self.parts {
            for i in 0..p.time.len() {
                let t = p.time.value(i);
                if t < window.start || t >= window.end {
                    continue;
                }
                if selector
                    .service
                    .as_deref()
                    .is_some_and(|s| s != p.service.value(i))
                    || selector
                        .operation
                        .as_deref()
                        .is_some_and(|o| o != p.operation.value(i))
                    || kind.is_some_and(|k| k != p.kind.value(i))
                    || filters.iter().any(|(a, v)| text(&p.attrs[*a], i) != *v)
                {
                    continue;
                }
                key.clear();
                key.extend(sources.iter().map(|s| match s {
                    Source::Service => p.service.value(i),
                    Source::Operation => p.operation.value(i),
                    Source::Attr(a) => text(&p.attrs[*a], i),
                }));
                // Look up with the reused buffer; allocate a key only for a new series.
                if !groups.contains_key(key.as_slice()) {
                    groups.insert(key.clone(), Acc::default());
                }
                let Some(acc) = groups.get_mut(key.as_slice()) else {
                    continue;
                };
                acc.count += 1;
                if p.status.value(i) == "ERROR" {
                    acc.errors += 1;
                }
                if latency.is_some() {
                    acc.durations.push(p.duration.value(i) as f64 / 1e9);
                }
            }
        }
        if groups.is_empty()
            && measure == Measure::Throughput
            && let Some(labels) = pinned(selector, group_by)
        {
            // No spans at all is a throughput of zero when the series is fully named.
            return Ok(vec![Sample {
                labels,
                value: 0.0,
                context: Default::default(),
            }]);
        }
        let mut out = Vec::with_capacity(groups.len());
        for (key, mut acc) in groups {
            let value = match (measure, latency) {
                (_, Some(q)) => super::quantile::exact(&mut acc.durations, q),
                (Measure::ErrorRate, _) => Some(acc.errors as f64 / acc.count as f64),
                (Measure::Availability, _) => Some(1.0 - acc.errors as f64 / acc.count as f64),
                (Measure::Throughput, _) => Some(acc.count as f64 / window.seconds()),
                (other, _) => {
                    return Err(EvalError::Shape(format!("{other:?} is not a span measure")));
                }
            };
            if let Some(value) = value {
                out.push(Sample {
                    labels: group_by
                        .iter()
                        .zip(key)
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect(),
                    value,
                    context: Default::default(),
                });
            }
        }
        Ok(out)
    }
}

/// The labels of the one series `selector` names, if it fixes every `group_by` label.
fn pinned(
    selector: &SpanSelector,
    group_by: &[String],
) -> Option<std::collections::BTreeMap<String, String>> {
    group_by
        .iter()
        .map(|g| {
            let v = match g.as_str() {
                "service" => selector.service.clone(),
                "operation" => selector.operation.clone(),
                attr => selector.attributes.get(attr).cloned(),
            };
            v.map(|v| (g.clone(), v))
        })
        .collect()
}

/// The quantile a latency measure asks for.
fn measure_quantile(measure: Measure) -> Option<f64> {
    match measure {
        Measure::LatencyP50 => Some(0.5),
        Measure::LatencyP90 => Some(0.9),
        Measure::LatencyP95 => Some(0.95),
        Measure::LatencyP99 => Some(0.99),
        Measure::LatencyP999 => Some(0.999),
        _ => None,
    }
}

/// True for the measures computed from spans.
pub fn is_span_measure(measure: Measure) -> bool {
    measure_quantile(measure).is_some()
        || matches!(
            measure,
            Measure::ErrorRate | Measure::Availability | Measure::Throughput
        )
}
