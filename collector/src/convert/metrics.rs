//! Metric export requests → one row per data point in the `metrics` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::error::ArrowError;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, Metric, NumberDataPoint, exemplar,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use vigil_store::{Signal, schema::schema};

use super::Converted;
use super::common::{CommonColumns, Origin, RowKey, map_builder, nanos, push_map, strings};
use super::correlation;
use super::ids::hex_id;
use super::json;
use super::values::attributes_text;

/// What one data point contributes beyond the shared columns.
#[derive(Default)]
struct Point<'a> {
    time: u64,
    start: u64,
    attributes: &'a [KeyValue],
    value: Option<f64>,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    buckets: Option<&'a [u64]>,
    bounds: Option<&'a [f64]>,
    exp: Option<Exponential<'a>>,
    quantiles: Option<&'a [ValueAtQuantile]>,
    exemplars: &'a [Exemplar],
    flags: u32,
}

struct Exponential<'a> {
    scale: i32,
    zero_count: u64,
    zero_threshold: f64,
    positive: Option<&'a Buckets>,
    negative: Option<&'a Buckets>,
}

/// What the metric says about all its points.
struct Kind {
    name: &'static str,
    is_monotonic: Option<bool>,
    temporality: Option<&'static str>,
}

fn temporality(t: i32) -> Option<&'static str> {
    Some(
        match AggregationTemporality::try_from(t).unwrap_or(AggregationTemporality::Unspecified) {
            AggregationTemporality::Unspecified => "UNSPECIFIED",
            AggregationTemporality::Delta => "DELTA",
            AggregationTemporality::Cumulative => "CUMULATIVE",
        },
    )
}

fn number(v: Option<&number_data_point::Value>) -> Option<f64> {
    match v? {
        number_data_point::Value::AsDouble(d) => Some(*d),
        number_data_point::Value::AsInt(i) => Some(*i as f64),
    }
}

fn exemplars_json(exemplars: &[Exemplar]) -> String {
    let mut out = String::new();
    json::array(&mut out, exemplars, |out, e| {
        let mut o = json::Object::begin(out);
        o.uint("time_unix_nano", e.time_unix_nano);
        let value = o.key("value");
        match e.value {
            Some(exemplar::Value::AsDouble(d)) => json::float(value, d),
            Some(exemplar::Value::AsInt(i)) => value.push_str(&i.to_string()),
            None => value.push_str("null"),
        }
        o.id("trace_id", &e.trace_id)
            .id("span_id", &e.span_id)
            .attributes("filtered_attributes", &e.filtered_attributes);
        o.end();
    });
    out
}

struct MetricColumns {
    common: CommonColumns,
    name: StringBuilder,
    description: StringBuilder,
    metric_type: StringBuilder,
    unit: StringBuilder,
    metadata: arrow::array::MapBuilder<StringBuilder, StringBuilder>,
    start: TimestampNanosecondBuilder,
    value: Float64Builder,
    is_monotonic: BooleanBuilder,
    temporality: StringBuilder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    buckets: ListBuilder<UInt64Builder>,
    bounds: ListBuilder<Float64Builder>,
    exp_scale: Int32Builder,
    exp_zero_count: UInt64Builder,
    exp_zero_threshold: Float64Builder,
    exp_pos_offset: Int32Builder,
    exp_pos_counts: ListBuilder<UInt64Builder>,
    exp_neg_offset: Int32Builder,
    exp_neg_counts: ListBuilder<UInt64Builder>,
    quantile_levels: ListBuilder<Float64Builder>,
    quantile_values: ListBuilder<Float64Builder>,
    exemplars: StringBuilder,
    exemplar_trace_ids: ListBuilder<StringBuilder>,
    flags: UInt32Builder,
}

impl MetricColumns {
    fn with_capacity(rows: usize, attributes: usize) -> Self {
        let u64s = || ListBuilder::with_capacity(UInt64Builder::new(), rows);
        let f64s = || ListBuilder::with_capacity(Float64Builder::new(), rows);
        MetricColumns {
            common: CommonColumns::with_capacity(rows, attributes),
            name: strings(rows, 24),
            description: strings(rows, 0),
            metric_type: strings(rows, 9),
            unit: strings(rows, 2),
            metadata: map_builder(rows, 0),
            start: TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            value: Float64Builder::with_capacity(rows),
            is_monotonic: BooleanBuilder::with_capacity(rows),
            temporality: strings(rows, 10),
            count: UInt64Builder::with_capacity(rows),
            sum: Float64Builder::with_capacity(rows),
            min: Float64Builder::with_capacity(rows),
            max: Float64Builder::with_capacity(rows),
            buckets: u64s(),
            bounds: f64s(),
            exp_scale: Int32Builder::with_capacity(rows),
            exp_zero_count: UInt64Builder::with_capacity(rows),
            exp_zero_threshold: Float64Builder::with_capacity(rows),
            exp_pos_offset: Int32Builder::with_capacity(rows),
            exp_pos_counts: u64s(),
            exp_neg_offset: Int32Builder::with_capacity(rows),
            exp_neg_counts: u64s(),
            quantile_levels: f64s(),
            quantile_values: f64s(),
            exemplars: strings(rows, 2),
            exemplar_trace_ids: ListBuilder::with_capacity(StringBuilder::new(), rows),
            flags: UInt32Builder::with_capacity(rows),
        }
    }
}

fn push_list<T: Copy>(
    builder: &mut ListBuilder<impl arrow::array::ArrayBuilder + Extend<Option<T>>>,
    values: Option<&[T]>,
) {
    match values {
        Some(v) => {
            builder.values().extend(v.iter().map(|x| Some(*x)));
            builder.append(true);
        }
        None => builder.append(false),
    }
}

impl MetricColumns {
    fn push(
        &mut self,
        origin: &Origin,
        metric: &Metric,
        metadata: &[(String, String)],
        kind: &Kind,
        p: Point<'_>,
    ) {
        let cid = correlation::explicit(p.attributes);
        let key = RowKey {
            time: nanos(p.time),
            trace_id: "",
            span_id: "",
            correlation_id: cid,
        };
        self.common.push(origin, key, p.attributes);
        self.name.append_value(&metric.name);
        self.description.append_value(&metric.description);
        self.metric_type.append_value(kind.name);
        self.unit.append_value(&metric.unit);
        push_map(
            &mut self.metadata,
            metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self.start
            .append_option((p.start != 0).then(|| nanos(p.start)));
        self.value.append_option(p.value);
        self.is_monotonic.append_option(kind.is_monotonic);
        self.temporality.append_option(kind.temporality);
        self.count.append_option(p.count);
        self.sum.append_option(p.sum);
        self.min.append_option(p.min);
        self.max.append_option(p.max);
        push_list(&mut self.buckets, p.buckets);
        push_list(&mut self.bounds, p.bounds);
        let exp = p.exp.as_ref();
        self.exp_scale.append_option(exp.map(|e| e.scale));
        self.exp_zero_count.append_option(exp.map(|e| e.zero_count));
        self.exp_zero_threshold
            .append_option(exp.map(|e| e.zero_threshold));
        let pos = exp.map(|e| e.positive.cloned().unwrap_or_default());
        let neg = exp.map(|e| e.negative.cloned().unwrap_or_default());
        self.exp_pos_offset
            .append_option(pos.as_ref().map(|b| b.offset));
        push_list(
            &mut self.exp_pos_counts,
            pos.as_ref().map(|b| b.bucket_counts.as_slice()),
        );
        self.exp_neg_offset
            .append_option(neg.as_ref().map(|b| b.offset));
        push_list(
            &mut self.exp_neg_counts,
            neg.as_ref().map(|b| b.bucket_counts.as_slice()),
        );
        let levels: Option<Vec<f64>> = p.quantiles.map(|q| q.iter().map(|v| v.quantile).collect());
        let values: Option<Vec<f64>> = p.quantiles.map(|q| q.iter().map(|v| v.value).collect());
        push_list(&mut self.quantile_levels, levels.as_deref());
        push_list(&mut self.quantile_values, values.as_deref());
        self.exemplars.append_value(exemplars_json(p.exemplars));
        for e in p.exemplars {
            if let Ok(id) = hex_id(&e.trace_id, 16, "", true) {
                self.exemplar_trace_ids.values().append_value(id);
            }
        }
        self.exemplar_trace_ids.append(true);
        self.flags.append_value(p.flags);
    }

    fn finish(mut self) -> Result<arrow::array::RecordBatch, ArrowError> {
        let middle: Vec<ArrayRef> = vec![
            Arc::new(self.name.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.metric_type.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.metadata.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.is_monotonic.finish()),
            Arc::new(self.temporality.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.buckets.finish()),
            Arc::new(self.bounds.finish()),
            Arc::new(self.exp_scale.finish()),
            Arc::new(self.exp_zero_count.finish()),
            Arc::new(self.exp_zero_threshold.finish()),
            Arc::new(self.exp_pos_offset.finish()),
            Arc::new(self.exp_pos_counts.finish()),
            Arc::new(self.exp_neg_offset.finish()),
            Arc::new(self.exp_neg_counts.finish()),
            Arc::new(self.quantile_levels.finish()),
            Arc::new(self.quantile_values.finish()),
            Arc::new(self.exemplars.finish()),
            Arc::new(self.exemplar_trace_ids.finish()),
            Arc::new(self.flags.finish()),
        ];
        self.common.finish(schema(Signal::Metrics), middle)
    }
}

/// Gauge and sum points: one value each.
fn number_points(points: &[NumberDataPoint]) -> Vec<Point<'_>> {
    points
        .iter()
        .map(|d| Point {
            time: d.time_unix_nano,
            start: d.start_time_unix_nano,
            attributes: &d.attributes,
            value: number(d.value.as_ref()),
            exemplars: &d.exemplars,
            flags: d.flags,
            ..Default::default()
        })
        .collect()
}

/// The points of one metric, flattened to [`Point`]s.
fn points(metric: &Metric) -> (Kind, Vec<Point<'_>>) {
    let plain = |name| Kind {
        name,
        is_monotonic: None,
        temporality: None,
    };
    match &metric.data {
        None => (plain("empty"), vec![]),
        Some(Data::Gauge(g)) => (plain("gauge"), number_points(&g.data_points)),
        Some(Data::Sum(s)) => (
            Kind {
                name: "sum",
                is_monotonic: Some(s.is_monotonic),
                temporality: temporality(s.aggregation_temporality),
            },
            number_points(&s.data_points),
        ),
        Some(Data::Histogram(h)) => (
            Kind {
                name: "histogram",
                is_monotonic: None,
                temporality: temporality(h.aggregation_temporality),
            },
            h.data_points
                .iter()
                .map(|d| Point {
                    time: d.time_unix_nano,
                    start: d.start_time_unix_nano,
                    attributes: &d.attributes,
                    count: Some(d.count),
                    sum: d.sum,
                    min: d.min,
                    max: d.max,
                    buckets: Some(&d.bucket_counts),
                    bounds: Some(&d.explicit_bounds),
                    exemplars: &d.exemplars,
                    flags: d.flags,
                    ..Default::default()
                })
                .collect(),
        ),
        Some(Data::ExponentialHistogram(h)) => (
            Kind {
                name: "exponential_histogram",
                is_monotonic: None,
                temporality: temporality(h.aggregation_temporality),
            },
            h.data_points
                .iter()
                .map(|d| Point {
                    time: d.time_unix_nano,
                    start: d.start_time_unix_nano,
                    attributes: &d.attributes,
                    count: Some(d.count),
                    sum: d.sum,
                    min: d.min,
                    max: d.max,
                    exp: Some(Exponential {
                        scale: d.scale,
                        zero_count: d.zero_count,
                        zero_threshold: d.zero_threshold,
                        positive: d.positive.as_ref(),
                        negative: d.negative.as_ref(),
                    }),
                    exemplars: &d.exemplars,
                    flags: d.flags,
                    ..Default::default()
                })
                .collect(),
        ),
        Some(Data::Summary(s)) => (
            plain("summary"),
            s.data_points
                .iter()
                .map(|d| Point {
                    time: d.time_unix_nano,
                    start: d.start_time_unix_nano,
                    attributes: &d.attributes,
                    count: Some(d.count),
                    sum: Some(d.sum),
                    quantiles: Some(&d.quantile_values),
                    flags: d.flags,
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

/// Converts a metrics export request: one row per data point.
pub fn convert_metrics(req: &ExportMetricsServiceRequest) -> Result<Converted, ArrowError> {
    let mut out = Converted::default();
    let metrics = req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics);
    let (rows, attributes) = metrics
        .flat_map(|m| points(m).1)
        .fold((0, 0), |(n, a), p| (n + 1, a + p.attributes.len()));
    let mut cols = MetricColumns::with_capacity(rows, attributes);
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            let origin = Origin::new(
                rm.resource.as_ref(),
                &rm.schema_url,
                sm.scope.as_ref(),
                &sm.schema_url,
            );
            for metric in &sm.metrics {
                let (kind, points) = points(metric);
                let metadata = attributes_text(&metric.metadata);
                if metric.name.is_empty() && !points.is_empty() {
                    out.received += points.len() as u64;
                    for _ in &points {
                        out.reject("data point: metric name is empty".to_string());
                    }
                    continue;
                }
                for p in points {
                    out.received += 1;
                    cols.push(&origin, metric, &metadata, &kind, p);
                }
            }
        }
    }
    if !cols.common.is_empty() {
        out.batch = Some(cols.finish()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int32Type, UInt64Type};
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, ResourceMetrics, ScopeMetrics,
        Summary, SummaryDataPoint,
    };

    fn metric(name: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            data: Some(data),
            ..Default::default()
        }
    }

    #[test]
    fn every_point_type_lands_in_its_columns() {
        let exp = ExponentialHistogramDataPoint {
            time_unix_nano: 5,
            count: 6,
            sum: Some(12.5),
            scale: 3,
            zero_count: 1,
            zero_threshold: 0.001,
            positive: Some(Buckets {
                offset: -2,
                bucket_counts: vec![2, 3],
            }),
            negative: None,
            ..Default::default()
        };
        let summary = SummaryDataPoint {
            time_unix_nano: 7,
            count: 10,
            sum: 99.0,
            quantile_values: vec![
                ValueAtQuantile {
                    quantile: 0.5,
                    value: 8.0,
                },
                ValueAtQuantile {
                    quantile: 0.99,
                    value: 20.0,
                },
            ],
            ..Default::default()
        };
        let gauge = NumberDataPoint {
            time_unix_nano: 3,
            value: Some(number_data_point::Value::AsInt(-4)),
            ..Default::default()
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(
                            "g",
                            Data::Gauge(Gauge {
                                data_points: vec![gauge],
                            }),
                        ),
                        metric(
                            "e",
                            Data::ExponentialHistogram(ExponentialHistogram {
                                data_points: vec![exp],
                                aggregation_temporality: 1,
                            }),
                        ),
                        metric(
                            "s",
                            Data::Summary(Summary {
                                data_points: vec![summary],
                            }),
                        ),
                        metric(
                            "",
                            Data::Gauge(Gauge {
                                data_points: vec![NumberDataPoint::default()],
                            }),
                        ),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let out = convert_metrics(&req).unwrap();
        assert_eq!((out.received, out.rejected), (4, 1));
        assert!(out.message("data points").contains("metric name is empty"));
        let b = out.batch.unwrap();
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        assert_eq!(
            col("metric_type")
                .as_string::<i32>()
                .iter()
                .collect::<Vec<_>>(),
            vec![
                Some("gauge"),
                Some("exponential_histogram"),
                Some("summary")
            ]
        );
        assert_eq!(
            col("service_name").as_string::<i32>().value(0),
            "unknown_service"
        );
        assert_eq!(col("value").as_primitive::<Float64Type>().value(0), -4.0);
        assert!(col("value").is_null(1));
        assert_eq!(col("exp_scale").as_primitive::<Int32Type>().value(1), 3);
        assert_eq!(
            col("exp_positive_offset")
                .as_primitive::<Int32Type>()
                .value(1),
            -2
        );
        let pos = col("exp_positive_bucket_counts");
        assert_eq!(
            pos.as_list::<i32>()
                .value(1)
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec(),
            vec![2, 3]
        );
        assert_eq!(col("temporality").as_string::<i32>().value(1), "DELTA");
        let levels = col("quantile_levels");
        assert_eq!(
            levels
                .as_list::<i32>()
                .value(2)
                .as_primitive::<Float64Type>()
                .values()
                .to_vec(),
            vec![0.5, 0.99]
        );
        let values = col("quantile_values");
        assert_eq!(
            values
                .as_list::<i32>()
                .value(2)
                .as_primitive::<Float64Type>()
                .values()
                .to_vec(),
            vec![8.0, 20.0]
        );
        assert_eq!(col("sum").as_primitive::<Float64Type>().value(2), 99.0);
        assert!(col("bucket_counts").is_null(0));
    }
}
