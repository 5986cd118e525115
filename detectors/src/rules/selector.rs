//! What a rule selects, shared by the rule kinds, SLOs and the anomaly features: spans by
//! service, operation, kind and attributes; metric series and how their points aggregate;
//! log records by severity and body.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_store::query::{Severity, SpanKind};

/// How a metric's points become one value per series and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Per-second increase of a counter over the window.
    Rate,
    /// Increase of a counter over the window.
    Increase,
    /// Mean of gauge values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Most recent value.
    Last,
    /// Sum of values.
    Sum,
    /// Median of a histogram over the window, from its buckets.
    P50,
    /// 90th percentile of a histogram.
    P90,
    /// 95th percentile of a histogram.
    P95,
    /// 99th percentile of a histogram.
    P99,
    /// 99.9th percentile of a histogram.
    P999,
}

impl Aggregation {
    /// The quantile a histogram aggregation asks for.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Aggregation::P50 => Some(0.5),
            Aggregation::P90 => Some(0.9),
            Aggregation::P95 => Some(0.95),
            Aggregation::P99 => Some(0.99),
            Aggregation::P999 => Some(0.999),
            _ => None,
        }
    }
}

/// Which metric series a `metric` rule reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSelector {
    /// Metric name, e.g. `http.server.request.duration`.
    pub name: String,
    /// How points are aggregated.
    pub aggregation: Aggregation,
    /// Point attributes that must have these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Which log records a `log_count` rule counts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSelector {
    /// Lowest severity text counted (TRACE, DEBUG, INFO, WARN, ERROR, FATAL).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Substring the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
}

/// Which spans an SLI rule looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanSelector {
    /// `service.name`; none means every service.
    pub service: Option<String>,
    /// Span name; none means every operation.
    pub operation: Option<String>,
    /// Span kind; none means every kind.
    pub span_kind: Option<SpanKind>,
    /// Span attributes that must have these values.
    pub attributes: BTreeMap<String, String>,
}
