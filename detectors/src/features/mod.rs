//! Windowed features: per service (entry spans, error logs, consumer lag), per (service,
//! operation) and per partition of each consumer operation (the members of a peer group),
//! one value per feature for each fixed window read from the store (`extract.rs`; windows
//! holding whole minutes read those from the store's per-minute rollup, `rollup.rs`). Each
//! window is read once, bounded by time, so history is never rescanned.

pub mod extract;
pub mod rollup;

pub use extract::{PARTITION_ATTRIBUTE, extract, extract_partitions};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rules::selector::Aggregation;
use crate::rules::threshold::Unit;

/// What is measured per series and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// Spans per second.
    RequestRate,
    /// Share of spans with status ERROR.
    ErrorRate,
    /// Median span duration, seconds.
    LatencyP50,
    /// 95th percentile span duration, seconds.
    LatencyP95,
    /// 99th percentile span duration, seconds.
    LatencyP99,
    /// Log records of severity ERROR or worse per second (service series only).
    LogErrorRate,
    /// Consumer lag, summed over the service's consumer groups (service series only).
    ConsumerLag,
    /// A metric named in `[anomaly] metrics`, aggregated per window (its own series only).
    Metric,
}

impl Feature {
    /// Every feature, in vector order.
    pub const ALL: [Feature; 8] = [
        Feature::RequestRate,
        Feature::ErrorRate,
        Feature::LatencyP50,
        Feature::LatencyP95,
        Feature::LatencyP99,
        Feature::LogErrorRate,
        Feature::ConsumerLag,
        Feature::Metric,
    ];

    /// How many there are.
    pub const COUNT: usize = Feature::ALL.len();

    /// The name used in the API and the `anomalies` table.
    pub fn name(self) -> &'static str {
        match self {
            Feature::RequestRate => "request_rate",
            Feature::ErrorRate => "error_rate",
            Feature::LatencyP50 => "latency_p50",
            Feature::LatencyP95 => "latency_p95",
            Feature::LatencyP99 => "latency_p99",
            Feature::LogErrorRate => "log_error_rate",
            Feature::ConsumerLag => "consumer_lag",
            Feature::Metric => "metric",
        }
    }

    /// The feature called `name`, as [`Feature::name`] writes it.
    pub fn named(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The unit its values are in, for writing them.
    pub fn unit(self) -> Unit {
        match self {
            Feature::RequestRate | Feature::LogErrorRate => Unit::PerSecond,
            Feature::ErrorRate => Unit::Ratio,
            Feature::LatencyP50 | Feature::LatencyP95 | Feature::LatencyP99 => Unit::Seconds,
            Feature::ConsumerLag | Feature::Metric => Unit::Number,
        }
    }

    /// Position in [`Feature::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The smallest spread a change of this feature is measured against: `(relative to the
    /// baseline, absolute)`. Smaller wobbles than this are noise, never anomalies.
    pub fn noise_floor(self) -> (f64, f64) {
        match self {
            Feature::RequestRate => (0.05, 0.5),
            Feature::ErrorRate => (0.0, 0.01),
            Feature::LatencyP50 | Feature::LatencyP95 | Feature::LatencyP99 => (0.1, 0.001),
            Feature::LogErrorRate => (0.1, 0.1),
            Feature::ConsumerLag => (0.1, 1.0),
            Feature::Metric => (0.1, 0.0),
        }
    }

    /// The value when a series had no telemetry in a window: rates are zero, the rest
    /// unknown.
    pub fn when_idle(self) -> Option<f64> {
        match self {
            Feature::RequestRate | Feature::LogErrorRate => Some(0.0),
            _ => None,
        }
    }
}

/// A series: a service (empty `operation`), one of its operations, or one of its watched
/// metrics' series (`metric <name>{attribute=value,…}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// `service.name`.
    pub service: String,
    /// Span name; empty for the service as a whole; `metric <name>{…}` for a metric series.
    pub operation: String,
}

/// A metric watched for anomalies (`[[anomaly.metrics]]`): each of its series per window is
/// a series of its own with the single feature `metric`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedMetric {
    /// Metric name, e.g. `messaging.client.consumed.messages`.
    pub name: String,
    /// How a window's points become one value: `rate`, `increase`, `avg`, `min`, `max`,
    /// `last`, `sum`, or `p50`…`p999` for histograms.
    pub aggregation: Aggregation,
    /// Point attributes that must have these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Point attributes that split the metric into series, besides the service.
    #[serde(default)]
    pub group_by: Vec<String>,
}

impl WatchedMetric {
    /// The series name of the group with attribute `values` (in `group_by` order).
    pub fn series(&self, values: &BTreeMap<String, String>) -> String {
        let attrs: Vec<String> = self
            .group_by
            .iter()
            .filter_map(|k| values.get(k).map(|v| format!("{k}={v}")))
            .collect();
        if attrs.is_empty() {
            format!("metric {}", self.name)
        } else {
            format!("metric {}{{{}}}", self.name, attrs.join(","))
        }
    }
}

/// One series' features in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Which series.
    pub key: SeriesKey,
    /// Values by [`Feature::index`]; none when not measured (no spans, no lag metric…).
    pub values: [Option<f64>; Feature::COUNT],
    /// Exemplar traces: the slowest span's and an error span's.
    pub trace_ids: Vec<String>,
}

/// One member of a peer group in one window: a consumer operation's deliveries from one
/// partition, compared with the same operation's other partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerMember {
    /// The group: the service and consumer operation.
    pub group: SeriesKey,
    /// The member's features, keyed by its own series name.
    pub observation: Observation,
}

impl Observation {
    /// An observation of `key` with nothing measured yet.
    pub fn empty(key: SeriesKey) -> Self {
        Observation {
            key,
            values: [None; Feature::COUNT],
            trace_ids: Vec::new(),
        }
    }

    /// What an idle series shows in a window without telemetry.
    pub fn idle(key: SeriesKey) -> Self {
        let mut o = Observation::empty(key);
        for f in Feature::ALL {
            o.values[f.index()] = f.when_idle();
        }
        o
    }
}
