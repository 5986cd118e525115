//! The rule file's groups and rules: declarative SLI rules (a measure over matching spans,
//! metrics or logs, compared with a threshold) and SQL rules, as read and validated.

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_store::query::SpanKind;
use vigil_store::units::HumanDuration;

use super::selector::{LogSelector, MetricSelector, SpanSelector};
use super::slo::Slo;
use super::threshold::{Comparison, Threshold, Unit};
use crate::features::Feature;

/// A whole rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Rule groups; each is evaluated on its own schedule.
    pub groups: Vec<Group>,
}

fn default_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

/// Rules evaluated together every `interval`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Unique name within the file.
    pub name: String,
    /// How often the group is evaluated [default: 30s].
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// Alerting rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Service level objectives.
    #[serde(default)]
    pub slos: Vec<Slo>,
}

/// What an SLI rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Median span duration.
    LatencyP50,
    /// 90th percentile span duration.
    LatencyP90,
    /// 95th percentile span duration.
    LatencyP95,
    /// 99th percentile span duration.
    LatencyP99,
    /// 99.9th percentile span duration.
    LatencyP999,
    /// Share of spans with status ERROR.
    ErrorRate,
    /// Share of spans without status ERROR.
    Availability,
    /// Spans per second.
    Throughput,
    /// A metric, aggregated as `metric:` says.
    Metric,
    /// Log records per second matching `logs:`.
    LogCount,
    /// Messages a consumer group has not acknowledged (`messaging.consumer.lag`).
    ConsumerLag,
}

impl Measure {
    /// The unit its threshold must have.
    pub fn unit(self) -> Option<Unit> {
        match self {
            Measure::LatencyP50
            | Measure::LatencyP90
            | Measure::LatencyP95
            | Measure::LatencyP99
            | Measure::LatencyP999 => Some(Unit::Seconds),
            Measure::ErrorRate | Measure::Availability => Some(Unit::Ratio),
            Measure::Throughput | Measure::LogCount => Some(Unit::PerSecond),
            Measure::ConsumerLag => Some(Unit::Number),
            // A metric's unit is the metric's own.
            Measure::Metric => None,
        }
    }
}

fn default_severity() -> String {
    "warning".into()
}

/// The kinds of rule a file can name with `kind:`; without it, `sql:` makes an SQL rule and
/// `measure:` an SLI rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindName {
    Sli,
    Sql,
    Anomaly,
}

/// A rule as written; [`Rule`] is the validated form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    alert: String,
    #[serde(default)]
    kind: Option<KindName>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    span_kind: Option<SpanKind>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    group_by: Option<Vec<String>>,
    #[serde(default)]
    measure: Option<Measure>,
    #[serde(default)]
    metric: Option<MetricSelector>,
    #[serde(default)]
    logs: Option<LogSelector>,
    #[serde(default)]
    sql: Option<String>,
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    min_score: Option<f64>,
    #[serde(default)]
    window: Option<HumanDuration>,
    #[serde(default)]
    op: Option<Comparison>,
    #[serde(default)]
    threshold: Option<Threshold>,
    #[serde(default, rename = "for")]
    for_: Option<HumanDuration>,
    #[serde(default)]
    keep_firing_for: Option<HumanDuration>,
    #[serde(default = "default_severity")]
    severity: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// What a rule evaluates.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// A measure over a window of matching telemetry, one series per `group_by` value.
    Sli {
        /// What is measured.
        measure: Measure,
        /// Which spans (or, for metric, log and lag measures, which service).
        spans: SpanSelector,
        /// The metric, for `measure: metric`.
        metric: Option<MetricSelector>,
        /// The logs, for `measure: log_count`.
        logs: LogSelector,
        /// Series are split by these: `service`, `operation`, or an attribute name.
        group_by: Vec<String>,
        /// The window each evaluation looks back over.
        window: HumanDuration,
    },
    /// A SELECT returning label columns and a `value` column; one series per row.
    Sql {
        /// The query.
        query: String,
    },
    /// The highest anomaly score of each series in the `anomalies` table over the window.
    Anomaly {
        /// Which anomalies count.
        anomalies: AnomalySelector,
        /// Series are split by these: `service`, `operation`.
        group_by: Vec<String>,
        /// The window each evaluation looks back over; at least the detector's window plus
        /// its delay, so that every evaluation sees the latest scored window.
        window: HumanDuration,
    },
}

/// Which rows of the `anomalies` table an anomaly rule looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnomalySelector {
    /// `service.name`; none means every service.
    pub service: Option<String>,
    /// Span name (empty for service-wide series); none means every series.
    pub operation: Option<String>,
    /// Only anomalies whose top contributing feature is this one.
    pub feature: Option<Feature>,
}

/// A validated alerting rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct Rule {
    /// Alert name (`alertname` label).
    pub alert: String,
    /// What it evaluates.
    pub kind: RuleKind,
    /// How the value is compared with the threshold.
    pub op: Comparison,
    /// The threshold.
    pub threshold: Threshold,
    /// How long a breach must last before the alert fires [default: 0s].
    pub for_: HumanDuration,
    /// How long an alert keeps firing after the breach ends [default: 0s].
    pub keep_firing_for: HumanDuration,
    /// `severity` label, e.g. `page`, `ticket`, `warning`.
    pub severity: String,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations, templated with `{{ $value }}` and `{{ $labels.name }}`.
    pub annotations: BTreeMap<String, String>,
}

fn default_window() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

/// An anomaly rule's default window: two default detector windows, so each evaluation sees
/// the latest scored one.
fn default_anomaly_window() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(20))
}

impl RawRule {
    /// The first of `fields` that is set, for refusing fields a kind does not use.
    fn set_field(&self, fields: &[&'static str]) -> Option<&'static str> {
        fields.iter().copied().find(|f| match *f {
            "service" => self.service.is_some(),
            "operation" => self.operation.is_some(),
            "span_kind" => self.span_kind.is_some(),
            "attributes" => !self.attributes.is_empty(),
            "group_by" => self.group_by.is_some(),
            "measure" => self.measure.is_some(),
            "metric" => self.metric.is_some(),
            "logs" => self.logs.is_some(),
            "sql" => self.sql.is_some(),
            "feature" => self.feature.is_some(),
            "min_score" => self.min_score.is_some(),
            "window" => self.window.is_some(),
            "op" => self.op.is_some(),
            "threshold" => self.threshold.is_some(),
            _ => false,
        })
    }

    fn kind_name(&self) -> Result<KindName, String> {
        match (self.kind, &self.sql, self.measure) {
            (Some(kind), _, _) => Ok(kind),
            (None, Some(_), Some(_)) => Err("has both `sql` and `measure`; use one".into()),
            (None, Some(_), None) => Ok(KindName::Sql),
            (None, None, Some(_)) => Ok(KindName::Sli),
            (None, None, None) => {
                Err("needs a `measure`, an `sql` query or `kind: anomaly`".into())
            }
        }
    }

    fn threshold(&self) -> Result<Threshold, String> {
        self.threshold
            .ok_or_else(|| "needs a `threshold`".to_string())
    }

    fn sql_kind(&self) -> Result<RuleKind, String> {
        let query = self
            .sql
            .as_ref()
            .ok_or("`kind: sql` needs an `sql` query")?;
        if let Some(field) = self.set_field(&[
            "service",
            "operation",
            "span_kind",
            "attributes",
            "group_by",
            "measure",
            "metric",
            "logs",
            "feature",
            "min_score",
        ]) {
            return Err(format!(
                "`{field}` does not apply to an sql rule; select and filter in the query"
            ));
        }
        if self.window.is_some() {
            return Err("`window` does not apply to an sql rule; bound time in the query".into());
        }
        let lower = query.trim_start().to_ascii_lowercase();
        if !(lower.starts_with("select") || lower.starts_with("with")) {
            return Err("`sql` must be a SELECT (or WITH … SELECT) query".into());
        }
        Ok(RuleKind::Sql {
            query: query.clone(),
        })
    }

    fn sli_kind(&self) -> Result<RuleKind, String> {
        let measure = self.measure.ok_or("`kind: sli` needs a `measure`")?;
        if let Some(field) = self.set_field(&["sql", "feature", "min_score"]) {
            return Err(format!("`{field}` does not apply to an SLI rule"));
        }
        let threshold = self.threshold()?;
        if let Some(unit) = measure.unit()
            && unit != threshold.unit
        {
            return Err(format!(
                "threshold for {measure:?} must be {unit}, not {}",
                threshold.unit
            ));
        }
        match (measure, &self.metric, &self.logs) {
            (Measure::Metric, None, _) => {
                return Err("`measure: metric` needs a `metric:` selector".into());
            }
            (m, Some(_), _) if m != Measure::Metric => {
                return Err("`metric:` applies only to `measure: metric`".into());
            }
            (m, _, Some(_)) if m != Measure::LogCount => {
                return Err("`logs:` applies only to `measure: log_count`".into());
            }
            _ => {}
        }
        let group_by = self.group_by.clone().unwrap_or_else(|| {
            let mut g = vec!["service".to_string()];
            if self.operation.is_none() && matches!(measure.unit(), Some(Unit::Seconds)) {
                g.push("operation".into());
            }
            g
        });
        Ok(RuleKind::Sli {
            measure,
            spans: SpanSelector {
                service: self.service.clone(),
                operation: self.operation.clone(),
                span_kind: self.span_kind,
                attributes: self.attributes.clone(),
            },
            metric: self.metric.clone(),
            logs: self.logs.clone().unwrap_or_default(),
            group_by,
            window: self.window.unwrap_or_else(default_window),
        })
    }

    fn anomaly_kind(&self) -> Result<RuleKind, String> {
        if let Some(field) = self.set_field(&[
            "span_kind",
            "attributes",
            "measure",
            "metric",
            "logs",
            "sql",
            "op",
            "threshold",
        ]) {
            return Err(format!(
                "`{field}` does not apply to an anomaly rule (it compares scores with `min_score`)"
            ));
        }
        match self.min_score {
            None => return Err("an anomaly rule needs `min_score` (0 to 1)".into()),
            Some(s) if !(s > 0.0 && s <= 1.0) => {
                return Err(format!(
                    "`min_score` must be above 0 and at most 1, not {s}"
                ));
            }
            Some(_) => {}
        }
        let feature = match &self.feature {
            None => None,
            Some(name) => Some(Feature::named(name).ok_or_else(|| {
                let known: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).collect();
                format!("unknown feature {name:?}; known: {}", known.join(", "))
            })?),
        };
        let group_by = self
            .group_by
            .clone()
            .unwrap_or_else(|| vec!["service".into(), "operation".into()]);
        if let Some(other) = group_by
            .iter()
            .find(|g| *g != "service" && *g != "operation")
        {
            return Err(format!(
                "an anomaly rule groups by service and operation only, not {other:?}"
            ));
        }
        Ok(RuleKind::Anomaly {
            anomalies: AnomalySelector {
                service: self.service.clone(),
                operation: self.operation.clone(),
                feature,
            },
            group_by,
            window: self.window.unwrap_or_else(default_anomaly_window),
        })
    }
}

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(r: RawRule) -> Result<Rule, String> {
        if r.alert.trim().is_empty() {
            return Err("a rule needs a non-empty `alert` name".into());
        }
        let name = r.alert.clone();
        let checked = || -> Result<(RuleKind, Comparison, Threshold), String> {
            Ok(match r.kind_name()? {
                KindName::Sql => (r.sql_kind()?, r.op.unwrap_or_default(), r.threshold()?),
                KindName::Sli => (r.sli_kind()?, r.op.unwrap_or_default(), r.threshold()?),
                KindName::Anomaly => {
                    let kind = r.anomaly_kind()?;
                    let score = Threshold {
                        value: r.min_score.unwrap_or(1.0),
                        unit: Unit::Number,
                    };
                    (kind, Comparison::AtLeast, score)
                }
            })
        };
        let (kind, op, threshold) = checked().map_err(|why| format!("rule {name:?}: {why}"))?;
        for (key, text) in &r.annotations {
            if let Err(why) = super::template::check(text) {
                return Err(format!("rule {name:?}: annotation {key:?}: {why}"));
            }
        }
        Ok(Rule {
            alert: r.alert,
            kind,
            op,
            threshold,
            for_: r.for_.unwrap_or(HumanDuration(std::time::Duration::ZERO)),
            keep_firing_for: r
                .keep_firing_for
                .unwrap_or(HumanDuration(std::time::Duration::ZERO)),
            severity: r.severity,
            labels: r.labels,
            annotations: r.annotations,
        })
    }
}
