//! Metric measures: points of one metric in a window, grouped into series (service plus
//! point attributes), reduced per series (counter increase with resets, gauge statistics,
//! histogram bucket increases) and combined per `group_by` series.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray, ListArray, MapArray, RecordBatch};
use arrow::datatypes::{DataType, TimestampNanosecondType};
use vigil_store::Session;

use super::quantile::from_buckets;
use super::{EvalError, Sample, selector_conditions};
use crate::rules::selector::{Aggregation, MetricSelector, SpanSelector};
use vigil_store::query::{Sql, Window, all, eq, floats, strings, text, to_strings};
use vigil_store::sql;

/// One data point of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Time of the point (ns).
    pub time: i64,
    /// Start of the cumulative series (ns), if known.
    pub start: Option<i64>,
    /// Delta temporality (each point counts only its own interval).
    pub delta: bool,
    /// Gauge or sum value.
    pub value: Option<f64>,
    /// Histogram bucket counts.
    pub buckets: Option<Vec<f64>>,
    /// Histogram bucket upper bounds.
    pub bounds: Option<Vec<f64>>,
}

/// The label holding the metric's name when the rows carry `metric_name`, as in Prometheus.
pub const NAME_LABEL: &str = "__name__";

/// A series: its service and attributes, and its points in time order.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// `service` plus every point attribute (and [`NAME_LABEL`] when the rows name the metric).
    pub labels: BTreeMap<String, String>,
    /// Points, oldest first.
    pub points: Vec<Point>,
}

/// The query for `metric`'s points in `window`, filtered by service and label matchers.
pub fn query(selector: &SpanSelector, metric: &MetricSelector, window: Window) -> Sql {
    let mut conditions = vec![eq("metric_name", &metric.name), window.sql()];
    conditions.extend(selector_conditions(
        selector.service.as_deref(),
        metric.labels.iter().chain(&selector.attributes),
    ));
    sql!(
        "SELECT time, start_time, service_name, attributes, temporality, value, bucket_counts, \
         explicit_bounds FROM metrics WHERE {} ORDER BY time",
        all(conditions)
    )
}

fn list_values(list: &ListArray, row: usize) -> Result<Option<Vec<f64>>, EvalError> {
    if list.is_null(row) {
        return Ok(None);
    }
    let values = arrow::compute::cast(&list.value(row), &DataType::Float64)
        .map_err(|e| EvalError::Shape(format!("bucket values: {e}")))?;
    Ok(Some(
        values
            .as_primitive::<arrow::datatypes::Float64Type>()
            .iter()
            .map(|v| v.unwrap_or(0.0))
            .collect(),
    ))
}

/// Groups the rows of `batches` (as [`query`] selects them, optionally with `metric_name`
/// too) into series.
pub fn series(batches: &[RecordBatch]) -> Result<Vec<Series>, EvalError> {
    let mut by_key: HashMap<BTreeMap<String, String>, Vec<Point>> = HashMap::new();
    let shape = |what: &str| EvalError::Shape(format!("metrics result: {what}"));
    for b in batches {
        let column = |name: &str| b.column_by_name(name).ok_or_else(|| shape(name));
        let time = column("time")?
            .as_primitive_opt::<TimestampNanosecondType>()
            .ok_or_else(|| shape("time is not a timestamp"))?
            .clone();
        let start = column("start_time")?
            .as_primitive_opt::<TimestampNanosecondType>()
            .ok_or_else(|| shape("start_time is not a timestamp"))?
            .clone();
        let service = strings(b, "service_name")?;
        let temporality = strings(b, "temporality")?;
        let value = floats(b, "value")?;
        let attributes = column("attributes")?
            .as_any()
            .downcast_ref::<MapArray>()
            .ok_or_else(|| shape("attributes is not a map"))?
            .clone();
        let keys = to_strings(attributes.keys())?;
        let values = to_strings(attributes.values())?;
        let buckets = column("bucket_counts")?.as_list::<i32>().clone();
        let bounds = column("explicit_bounds")?.as_list::<i32>().clone();
        let names = b
            .column_by_name("metric_name")
            .map(|_| strings(b, "metric_name"))
            .transpose()?;
        let offsets = attributes.value_offsets();
        for row in 0..b.num_rows() {
            let mut labels =
                BTreeMap::from([("service".to_string(), service.value(row).to_string())]);
            if let Some(names) = &names {
                labels.insert(NAME_LABEL.to_string(), text(names, row).to_string());
            }
            for e in offsets[row] as usize..offsets[row + 1] as usize {
                labels.insert(keys.value(e).to_string(), text(&values, e).to_string());
            }
            by_key.entry(labels).or_default().push(Point {
                time: time.value(row),
                start: (!start.is_null(row)).then(|| start.value(row)),
                delta: text(&temporality, row) == "delta",
                value: (!value.is_null(row)).then(|| value.value(row)),
                buckets: list_values(&buckets, row)?,
                bounds: list_values(&bounds, row)?,
            });
        }
    }
    Ok(by_key
        .into_iter()
        .map(|(labels, mut points)| {
            points.sort_by_key(|p| p.time);
            Series { labels, points }
        })
        .collect())
}

/// How much a counter rose over `points`: delta points add up; cumulative points add their
/// rises, a fall being a reset that restarts from zero; a series that started inside the
/// window counts its first value too.
pub fn increase(points: &[Point], window: Window) -> f64 {
    let vals: Vec<f64> = points.iter().filter_map(|p| p.value).collect();
    if points.first().is_some_and(|p| p.delta) {
        return vals.iter().sum();
    }
    let mut total = match (points.first(), vals.first()) {
        (Some(p), Some(v)) if p.start.is_some_and(|s| s >= window.start) => *v,
        _ => 0.0,
    };
    for pair in vals.windows(2) {
        total += if pair[1] >= pair[0] {
            pair[1] - pair[0]
        } else {
            pair[1]
        };
    }
    total
}

/// Bucket counts observed over `points`, the histogram counterpart of [`increase`].
pub fn bucket_increase(points: &[Point], window: Window) -> Option<(Vec<f64>, Vec<f64>)> {
    let with: Vec<(&Vec<f64>, &Vec<f64>)> = points
        .iter()
        .filter_map(|p| Some((p.buckets.as_ref()?, p.bounds.as_ref()?)))
        .collect();
    let (first, bounds) = *with.first()?;
    let mut total = vec![0.0; first.len()];
    let mut add = |counts: &[f64], sign: f64| {
        for (t, c) in total.iter_mut().zip(counts) {
            *t += sign * c;
        }
    };
    if points[0].delta || points[0].start.is_some_and(|s| s >= window.start) {
        add(first, 1.0);
    }
    for pair in with.windows(2) {
        let (prev, cur) = (pair[0].0, pair[1].0);
        if points[0].delta {
            add(cur, 1.0);
        } else if cur.iter().sum::<f64>() >= prev.iter().sum::<f64>() && cur.len() == prev.len() {
            add(cur, 1.0);
            add(prev, -1.0);
        } else {
            add(cur, 1.0);
        }
    }
    Some((bounds.clone(), total))
}

/// Combines `series` per `group_by` labels with `aggregation`.
pub fn aggregate(
    series: &[Series],
    aggregation: Aggregation,
    group_by: &[String],
    window: Window,
) -> Result<Vec<Sample>, EvalError> {
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<&Series>> = BTreeMap::new();
    for s in series {
        let key = group_by
            .iter()
            .filter_map(|g| Some((g.clone(), s.labels.get(g)?.clone())))
            .collect();
        groups.entry(key).or_default().push(s);
    }
    let mut out = Vec::new();
    for (labels, members) in groups {
        let values = || {
            members
                .iter()
                .flat_map(|s| s.points.iter().filter_map(|p| p.value))
        };
        let value = match aggregation {
            Aggregation::Increase => {
                Some(members.iter().map(|s| increase(&s.points, window)).sum())
            }
            Aggregation::Rate => Some(
                members
                    .iter()
                    .map(|s| increase(&s.points, window))
                    .sum::<f64>()
                    / window.seconds(),
            ),
            Aggregation::Sum => Some(values().sum()),
            Aggregation::Last => Some(
                members
                    .iter()
                    .filter_map(|s| s.points.iter().rev().find_map(|p| p.value))
                    .sum(),
            ),
            Aggregation::Avg => {
                let (n, sum) = values().fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
                (n > 0).then(|| sum / n as f64)
            }
            Aggregation::Min => values().reduce(f64::min),
            Aggregation::Max => values().reduce(f64::max),
            q => {
                let quantile = q
                    .quantile()
                    .ok_or_else(|| EvalError::Shape(format!("{q:?} is not a quantile")))?;
                merged_quantile(&members, quantile, window)?
            }
        };
        if let Some(value) = value {
            out.push(Sample {
                labels,
                value,
                context: Default::default(),
            });
        }
    }
    Ok(out)
}

fn merged_quantile(members: &[&Series], q: f64, window: Window) -> Result<Option<f64>, EvalError> {
    let mut merged: Option<(Vec<f64>, Vec<f64>)> = None;
    for s in members {
        let Some((bounds, counts)) = bucket_increase(&s.points, window) else {
            continue;
        };
        match &mut merged {
            None => merged = Some((bounds, counts)),
            Some((b, c)) if *b == bounds && c.len() == counts.len() => {
                for (t, x) in c.iter_mut().zip(counts) {
                    *t += x;
                }
            }
            Some(_) => {
                return Err(EvalError::Shape(
                    "histogram series in one group have different bucket bounds".into(),
                ));
            }
        }
    }
    Ok(merged.and_then(|(bounds, counts)| from_buckets(&bounds, &counts, q)))
}

/// `metric` aggregated over `window` per `group_by` series.
pub async fn evaluate(
    ctx: &Session,
    selector: &SpanSelector,
    metric: &MetricSelector,
    group_by: &[String],
    window: Window,
) -> Result<Vec<Sample>, EvalError> {
    let batches = ctx.fetch(&query(selector, metric, window)).await?;
    aggregate(&series(&batches)?, metric.aggregation, group_by, window)
}
