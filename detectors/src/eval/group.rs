//! One rule group's state and its evaluation: a shared span window for the span rules,
//! one query per log, metric and SQL rule, the SLOs' counts, and the alerts that follow.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vigil_store::Session;
use vigil_store::alert::{Alert, Labels};

use super::lifecycle::{Breach, RuleAlerts, Timing};
use super::slo::{SloCounts, assess};
use super::spans::{SpanWindow, is_span_measure};
use super::status::{GroupStatus, Health, RuleStatus, SloEntry};
use super::{EvalError, Sample};
use crate::rules::model::RuleKind;
use crate::rules::template::render;
use crate::rules::{Group, Measure, Rule, Slo};
use vigil_store::query::Window;

/// Name of the metric `consumer_lag` reads.
pub const CONSUMER_LAG_METRIC: &str = "messaging.consumer.lag";

/// How the last evaluation of a rule or SLO went; its health follows from it.
#[derive(Debug, Default)]
struct Outcome {
    evaluated: bool,
    error: Option<String>,
}

impl Outcome {
    fn ok(&mut self) {
        self.evaluated = true;
        self.error = None;
    }

    /// Records a failure; true when it differs from the previous outcome (worth logging).
    fn failed(&mut self, message: String) -> bool {
        self.evaluated = true;
        let new = self.error.as_ref() != Some(&message);
        self.error = Some(message);
        new
    }

    fn health(&self) -> Health {
        match (self.evaluated, &self.error) {
            (false, _) => Health::Unknown,
            (true, None) => Health::Ok,
            (true, Some(_)) => Health::Err,
        }
    }
}

/// A rule and what its evaluations left behind.
#[derive(Debug)]
pub struct RuleState {
    /// The rule.
    pub rule: Rule,
    /// Its alerts.
    pub alerts: RuleAlerts,
    outcome: Outcome,
    last_evaluation: Option<DateTime<Utc>>,
    duration: Duration,
    series: usize,
}

/// An SLO and its counts and alerts.
#[derive(Debug)]
pub struct SloState {
    /// The SLO.
    pub slo: Slo,
    /// Per-minute events over its period.
    pub counts: SloCounts,
    /// One alert set per burn-rate alert.
    pub alerts: Vec<RuleAlerts>,
    outcome: Outcome,
    status: Option<super::slo::SloStatus>,
}

/// A group and what its evaluations left behind.
#[derive(Debug)]
pub struct GroupState {
    /// The file it came from.
    pub file: String,
    /// Group name.
    pub name: String,
    /// Evaluation interval.
    pub interval: Duration,
    /// Its rules.
    pub rules: Vec<RuleState>,
    /// Its SLOs.
    pub slos: Vec<SloState>,
    /// When it is next due.
    pub next_due: Instant,
    last_evaluation: Option<DateTime<Utc>>,
    duration: Duration,
    evaluations: u64,
    failures: u64,
    /// Evaluations started late.
    pub missed: u64,
}

impl RuleState {
    /// A rule not evaluated yet.
    pub fn new(rule: Rule) -> RuleState {
        RuleState {
            rule,
            alerts: RuleAlerts::default(),
            outcome: Outcome::default(),
            last_evaluation: None,
            duration: Duration::ZERO,
            series: 0,
        }
    }
}

impl SloState {
    /// An SLO not evaluated yet.
    pub fn new(slo: Slo) -> SloState {
        SloState {
            alerts: slo.alerts.iter().map(|_| RuleAlerts::default()).collect(),
            slo,
            counts: SloCounts::default(),
            outcome: Outcome::default(),
            status: None,
        }
    }
}

impl GroupState {
    /// A group not evaluated yet, due at once.
    pub fn new(file: String, group: Group) -> GroupState {
        GroupState {
            file,
            name: group.name,
            interval: group.interval.0.max(Duration::from_secs(1)),
            rules: group.rules.into_iter().map(RuleState::new).collect(),
            slos: group.slos.into_iter().map(SloState::new).collect(),
            next_due: Instant::now(),
            last_evaluation: None,
            duration: Duration::ZERO,
            evaluations: 0,
            failures: 0,
            missed: 0,
        }
    }

    /// Evaluates every rule and SLO at `now`; returns the alerts whose state changed.
    pub async fn evaluate(&mut self, ctx: &Session, now: DateTime<Utc>) -> Vec<Alert> {
        let started = Instant::now();
        let mut changes = Vec::new();
        let spans = self.load_spans(ctx, now).await;
        for r in &mut self.rules {
            let t = Instant::now();
            let result = measure(ctx, &r.rule, spans.as_ref(), now).await;
            r.duration = t.elapsed();
            r.last_evaluation = Some(now);
            match result {
                Ok(samples) => {
                    r.outcome.ok();
                    r.series = samples.len();
                    let breaches = breaches(&r.rule, samples);
                    let timing = Timing {
                        for_: r.rule.for_.0,
                        keep_firing_for: r.rule.keep_firing_for.0,
                    };
                    let generator = format!("rules/{}/{}", self.name, r.rule.alert);
                    changes.extend(r.alerts.update(now, breaches, timing, &generator));
                }
                Err(e) => {
                    self.failures += 1;
                    if r.outcome.failed(e.to_string()) {
                        tracing::warn!(group = %self.name, rule = %r.rule.alert, error = %e, "rule evaluation failed");
                    }
                }
            }
        }
        for s in &mut self.slos {
            match s.counts.refresh(ctx, &s.slo, now).await {
                Ok(()) => {
                    let (status, breaches) = assess(&s.slo, &s.counts, now);
                    let generator = format!("slos/{}/{}", self.name, s.slo.name);
                    for (alerts, breach) in s.alerts.iter_mut().zip(breaches) {
                        changes.extend(alerts.update(
                            now,
                            breach.into_iter().collect(),
                            Timing::default(),
                            &generator,
                        ));
                    }
                    s.status = Some(status);
                    s.outcome.ok();
                }
                Err(e) => {
                    self.failures += 1;
                    if s.outcome.failed(e.to_string()) {
                        tracing::warn!(group = %self.name, slo = %s.slo.name, error = %e, "slo evaluation failed");
                    }
                }
            }
        }
        self.evaluations += 1;
        self.last_evaluation = Some(now);
        self.duration = started.elapsed();
        changes
    }

    /// The window of spans every span rule of the group reads, loaded once.
    async fn load_spans(
        &self,
        ctx: &Session,
        now: DateTime<Utc>,
    ) -> Option<Result<SpanWindow, String>> {
        let span_rules: Vec<_> = self
            .rules
            .iter()
            .filter_map(|r| match &r.rule.kind {
                RuleKind::Sli {
                    measure,
                    spans,
                    group_by,
                    window,
                    ..
                } if is_span_measure(*measure) => Some((spans, group_by, window.0)),
                _ => None,
            })
            .collect();
        let longest = span_rules.iter().map(|(_, _, w)| *w).max()?;
        let mut keys = BTreeSet::new();
        for (spans, group_by, _) in &span_rules {
            keys.extend(spans.attributes.keys().cloned());
            keys.extend(
                group_by
                    .iter()
                    .filter(|g| *g != "service" && *g != "operation")
                    .cloned(),
            );
        }
        let services: Option<Vec<String>> = span_rules
            .iter()
            .map(|(s, _, _)| s.service.clone())
            .collect::<Option<BTreeSet<_>>>()
            .map(|s| s.into_iter().collect());
        Some(
            SpanWindow::load(
                ctx,
                Window::ending(now, longest),
                services.as_deref(),
                keys.into_iter().collect(),
            )
            .await
            .map_err(|e| e.to_string()),
        )
    }

    /// What the API shows of this group.
    pub fn status(&self) -> GroupStatus {
        GroupStatus {
            name: self.name.clone(),
            file: self.file.clone(),
            interval_seconds: self.interval.as_secs_f64(),
            last_evaluation: self.last_evaluation,
            evaluation_seconds: self.duration.as_secs_f64(),
            evaluations: self.evaluations,
            failures: self.failures,
            missed: self.missed,
            rules: self
                .rules
                .iter()
                .map(|r| RuleStatus {
                    name: r.rule.alert.clone(),
                    kind: match r.rule.kind {
                        RuleKind::Sli { .. } => "sli",
                        RuleKind::Sql { .. } => "sql",
                        RuleKind::Anomaly { .. } => "anomaly",
                    },
                    query: match &r.rule.kind {
                        RuleKind::Sli { measure, .. } => format!("{measure:?}"),
                        RuleKind::Sql { query } => query.clone(),
                        RuleKind::Anomaly { anomalies, .. } => format!("{anomalies:?}"),
                    },
                    condition: format!("{:?} {}", r.rule.op, r.rule.threshold.value),
                    health: r.outcome.health(),
                    last_error: r.outcome.error.clone(),
                    last_evaluation: r.last_evaluation,
                    evaluation_seconds: r.duration.as_secs_f64(),
                    series: r.series,
                    alerts: r.alerts.alerts(),
                })
                .collect(),
            slos: self
                .slos
                .iter()
                .map(|s| SloEntry {
                    name: s.slo.name.clone(),
                    health: s.outcome.health(),
                    last_error: s.outcome.error.clone(),
                    status: s.status.clone(),
                    alerts: s.alerts.iter().flat_map(RuleAlerts::alerts).collect(),
                })
                .collect(),
        }
    }
}

/// The rule's samples at `now`.
pub async fn measure(
    ctx: &Session,
    rule: &Rule,
    spans: Option<&Result<SpanWindow, String>>,
    now: DateTime<Utc>,
) -> Result<Vec<Sample>, EvalError> {
    let (measure, selector, metric, logs, group_by, window) = match &rule.kind {
        RuleKind::Sql { query } => return super::sql_rule::evaluate(ctx, query).await,
        RuleKind::Anomaly {
            anomalies,
            group_by,
            window,
        } => {
            let window = Window::ending(now, window.0);
            return super::anomaly_rule::evaluate(ctx, anomalies, group_by, window).await;
        }
        RuleKind::Sli {
            measure,
            spans,
            metric,
            logs,
            group_by,
            window,
        } => (measure, spans, metric, logs, group_by, window),
    };
    let window = Window::ending(now, window.0);
    match measure {
        m if is_span_measure(*m) => match spans {
            Some(Ok(w)) => w.evaluate(*m, selector, group_by, window),
            Some(Err(e)) => Err(EvalError::Shape(format!("loading spans: {e}"))),
            None => Err(EvalError::Shape("span window not loaded".into())),
        },
        Measure::LogCount => super::logs::evaluate(ctx, selector, logs, group_by, window).await,
        Measure::Metric => {
            let metric = metric
                .as_ref()
                .ok_or_else(|| EvalError::Shape("metric rule without a selector".into()))?;
            super::metrics::evaluate(ctx, selector, metric, group_by, window).await
        }
        Measure::ConsumerLag => {
            let lag = crate::rules::selector::MetricSelector {
                name: CONSUMER_LAG_METRIC.into(),
                aggregation: crate::rules::selector::Aggregation::Last,
                labels: Default::default(),
            };
            super::metrics::evaluate(ctx, selector, &lag, group_by, window).await
        }
        other => Err(EvalError::Shape(format!("{other:?} has no evaluator"))),
    }
}

/// The samples that breach, as alerts: series labels, then the rule's labels, `alertname`
/// and `severity`; annotations are the sample's context, overridden by the rule's own
/// rendered with the value and the final labels.
pub fn breaches(rule: &Rule, samples: Vec<Sample>) -> Vec<Breach> {
    samples
        .into_iter()
        .filter(|s| rule.op.holds(s.value, rule.threshold.value))
        .map(|s| {
            let mut labels: Labels = s.labels;
            labels.extend(rule.labels.clone());
            labels.insert("alertname".into(), rule.alert.clone());
            labels.insert("severity".into(), rule.severity.clone());
            let unit = Some(rule.threshold.unit);
            let mut annotations = s.context;
            annotations.extend(
                rule.annotations
                    .iter()
                    .map(|(k, t)| (k.clone(), render(t, s.value, unit, &labels))),
            );
            Breach {
                labels,
                annotations,
                value: s.value,
            }
        })
        .collect()
}
