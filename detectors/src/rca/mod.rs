//! Root-cause analysis: what changed between a baseline window and an anomaly window.
//!
//! One ranking from the three signals, per service:
//! - spans: each operation's *self* time and *own* errors (so a slow or failing leaf is
//!   blamed, not the callers waiting on it) and operations that stopped taking work;
//! - the network: the wait in front of a service's handlers (a caller's CLIENT span less the
//!   callee's SERVER span; a message's delivery lag), blamed on the service waited for;
//! - logs: patterns new or surging, errors and exceptions weighted most, blamed on the
//!   service that logged them, or on the sender of the input they reject;
//! - metrics: the service's own resource series (process, runtime) rising against the
//!   baseline, and consumer lag growing.
//!
//! Each signal's score is the log of how much its figure grew (weighted by how specific the
//! signal is), so they add up on one scale; a suspect's score is their sum, and its likely
//! cause is the kind of its largest part. Then suspects whose symptoms a neighbour on the
//! call graph explains (callers of a failing service, consumers of one that stopped
//! sending) are demoted ([`propagation`]). Each suspect carries its numbers before and after,
//! exemplar traces and the evidence around it: attribute values over-represented among its
//! slow or failed spans, its log patterns and its shifted metric series.

pub mod attributes;
pub mod log_evidence;
pub mod metric_shifts;
pub mod network;
pub mod operations;
pub mod patterns;
pub mod propagation;
pub mod windows;

pub use windows::RcaWindows;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use vigil_store::Session;

use crate::eval::group::CONSUMER_LAG_METRIC;
use arrow::array::Array;

use crate::eval::EvalError;
use crate::topology::edges;
use attributes::{AttributeValue, over_represented};
use log_evidence::{LogSurge, log_surges};
use metric_shifts::{Levels, MetricShift, is_resource, levels, shifts};
use network::{Waits, waits};
use operations::{OperationStats, operations};
use vigil_store::query::{Window, floats};
use vigil_store::sql;

/// Fewest calls in a window for an operation's latency to be compared.
const MIN_CALLS: f64 = 5.0;
/// Smallest change of self time (seconds) worth blaming.
const MIN_LATENCY_CHANGE: f64 = 0.005;
/// Fewest own errors in the anomaly window for errors to count.
const MIN_ERRORS: f64 = 3.0;
/// Suspects returned.
const MAX_SUSPECTS: usize = 10;
/// Lowest score reported: below it, what changed is within what steady traffic does from one
/// window to the next (one signal's weak evidence: a 1.5× self time, an INFO pattern tripling).
pub const REPORT_THRESHOLD: f64 = 1.0;
/// Suspects whose attributes are examined.
const ATTRIBUTE_SUSPECTS: usize = 3;
/// Log patterns and metric shifts returned.
const MAX_EVIDENCE: usize = 10;
/// Log patterns and metric series named on one suspect.
const SUSPECT_EVIDENCE: usize = 3;
/// Floor of the inbound waits compared, seconds: a wait going from nothing to a little is
/// not infinitely remarkable.
const WAIT_FLOOR: f64 = 0.001;

/// One operation's figures, per second where a rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Calls per second.
    pub rate: f64,
    /// Own errors per call.
    pub error_rate: f64,
    /// Self time p50, seconds.
    pub self_p50: f64,
    /// Self time p95, seconds.
    pub self_p95: f64,
}

impl Figures {
    fn of(s: Option<&OperationStats>, w: Window) -> Figures {
        s.map_or_else(Figures::default, |s| Figures {
            rate: s.calls / w.seconds().max(f64::MIN_POSITIVE),
            error_rate: s.error_rate(),
            self_p50: s.self_p50,
            self_p95: s.self_p95,
        })
    }
}

/// What a suspect's evidence says the fault is: the kind of its largest contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// Its operations got slower on their own.
    Latency,
    /// It fails: its own spans, or its error and exception logs.
    Errors,
    /// It stopped taking work: fewer calls, consumer lag growing.
    Throughput,
    /// Requests and messages wait longer on their way into it.
    Network,
    /// Its own resources (CPU, memory, runtime) rose.
    Resource,
    /// It sends wrong data: the services it feeds reject its input.
    Logic,
}

impl Cause {
    /// Its name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Latency => "latency",
            Cause::Errors => "errors",
            Cause::Throughput => "throughput",
            Cause::Network => "network",
            Cause::Resource => "resource",
            Cause::Logic => "logic",
        }
    }
}

/// What each signal contributed to a suspect's score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Contributions {
    /// Self time, own errors and dropped calls of its operations.
    pub spans: f64,
    /// The wait in front of its handlers.
    pub network: f64,
    /// Its log patterns, and its consumers' rejections of its output.
    pub logs: f64,
    /// Its resource series and consumer lag.
    pub metrics: f64,
}

impl Contributions {
    fn total(&self) -> f64 {
        self.spans + self.network + self.logs + self.metrics
    }
}

/// A ranked suspect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suspect {
    /// The service to look at.
    pub service: String,
    /// Its operation that changed most (empty when its spans did not change).
    pub operation: String,
    /// How strongly it changed (the larger the likelier): the sum of the contributions, less
    /// what neighbours that explain its symptoms take (see [`propagation`]).
    pub score: f64,
    /// The likely kind of fault.
    pub cause: Cause,
    /// What each signal contributed.
    pub contributions: Contributions,
    /// What changed, in words, strongest first.
    pub reasons: Vec<String>,
    /// The operation in the baseline.
    pub before: Figures,
    /// The operation in the anomaly window.
    pub after: Figures,
    /// Traces showing it: the slowest span's, an own error's, a surging log's.
    pub trace_ids: Vec<String>,
    /// Its strongest log patterns (or those of the services rejecting its output).
    pub log_patterns: Vec<String>,
    /// Its shifted resource series.
    pub metrics: Vec<String>,
    /// The contribution behind `cause`.
    #[serde(skip)]
    pub(crate) strongest: f64,
}

impl Suspect {
    pub(crate) fn new(service: &str) -> Suspect {
        Suspect {
            service: service.to_string(),
            operation: String::new(),
            score: 0.0,
            cause: Cause::Latency,
            contributions: Contributions::default(),
            reasons: Vec::new(),
            before: Figures::default(),
            after: Figures::default(),
            trace_ids: Vec::new(),
            log_patterns: Vec::new(),
            metrics: Vec::new(),
            strongest: 0.0,
        }
    }

    /// Counts evidence worth `score` of `cause`.
    fn weigh(&mut self, score: f64, cause: Cause) {
        if score > self.strongest {
            (self.strongest, self.cause) = (score, cause);
        }
    }
}

/// What changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Suspects scoring at least `threshold`, likeliest first; none when nothing changed.
    pub suspects: Vec<Suspect>,
    /// The lowest score reported ([`REPORT_THRESHOLD`]).
    pub threshold: f64,
    /// Attribute values over-represented among the top suspects' slow or failed spans.
    pub attributes: Vec<AttributeValue>,
    /// New or surging log patterns, strongest first.
    pub log_patterns: Vec<LogSurge>,
    /// Metric series that shifted.
    pub metrics: Vec<MetricShift>,
}

/// How much one operation changed: its score, the cause of most of it, and the reasons.
fn score(
    before: &Figures,
    after: &Figures,
    b: Option<&OperationStats>,
    a: Option<&OperationStats>,
) -> (f64, Cause, Vec<String>) {
    let mut parts = Vec::new();
    let mut reasons = Vec::new();
    let calls = |s: Option<&OperationStats>| s.map_or(0.0, |s| s.calls);
    if calls(b) >= MIN_CALLS && calls(a) >= MIN_CALLS {
        let ratio = |x: f64, y: f64| ((y.max(1e-3)) / x.max(1e-3)).ln().max(0.0);
        let p50 = if after.self_p50 - before.self_p50 >= MIN_LATENCY_CHANGE {
            ratio(before.self_p50, after.self_p50)
        } else {
            0.0
        };
        let p95 = if after.self_p95 - before.self_p95 >= MIN_LATENCY_CHANGE {
            0.5 * ratio(before.self_p95, after.self_p95)
        } else {
            0.0
        };
        let latency = p50.max(p95);
        if latency > 0.0 {
            parts.push((latency, Cause::Latency));
            reasons.push(format!(
                "self time p50 {:.1} ms → {:.1} ms, p95 {:.1} ms → {:.1} ms",
                before.self_p50 * 1e3,
                after.self_p50 * 1e3,
                before.self_p95 * 1e3,
                after.self_p95 * 1e3
            ));
        }
    }
    if a.is_some_and(|a| a.own_errors >= MIN_ERRORS) && after.error_rate > before.error_rate {
        parts.push((5.0 * (after.error_rate - before.error_rate), Cause::Errors));
        reasons.push(format!(
            "own errors {:.1}% → {:.1}%",
            before.error_rate * 100.0,
            after.error_rate * 100.0
        ));
    }
    // A call to an instrumented service that stopped is the callee's drop too, and counted
    // there.
    let reaches = |s: Option<&OperationStats>| s.is_some_and(|s| s.reaches_service);
    if calls(b) >= 2.0 * MIN_CALLS && before.rate > 0.0 && !reaches(b) && !reaches(a) {
        let drop = 1.0 - after.rate / before.rate;
        if drop >= 0.5 {
            parts.push((2.0 * drop, Cause::Throughput));
            reasons.push(format!("calls {:.2}/s → {:.2}/s", before.rate, after.rate));
        }
    }
    let total = parts.iter().map(|p| p.0).sum();
    let cause = parts
        .iter()
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .map_or(Cause::Latency, |p| p.1);
    (total, cause, reasons)
}

/// Compares the windows; `service`, when given, limits suspects to it and what it depends on.
pub async fn analyse(
    ctx: &Session,
    w: RcaWindows,
    service: Option<&str>,
) -> Result<Report, EvalError> {
    let w = RcaWindows {
        baseline: observed(ctx, w.baseline).await?,
        ..w
    };
    let scope = match service {
        Some(s) => Some(downstream(ctx, w, s).await?),
        None => None,
    };
    let in_scope = |svc: &str| scope.as_ref().is_none_or(|s| s.contains(svc));
    let mut suspects: BTreeMap<String, Suspect> = BTreeMap::new();

    let ran = blame_spans(ctx, w, &in_scope, &mut suspects).await?;
    let (after_waits, before_waits) = (waits(ctx, w.window).await?, waits(ctx, w.baseline).await?);
    blame_waits(&before_waits, &after_waits, &in_scope, &mut suspects);
    let log_patterns = log_surges(ctx, w.window, w.baseline, &ran, &in_scope).await?;
    blame_logs(&log_patterns, &in_scope, &mut suspects);
    let (after_levels, before_levels) =
        (levels(ctx, w.window).await?, levels(ctx, w.baseline).await?);
    let mut metrics = shifts(&before_levels, &after_levels, &in_scope);
    blame_metrics(
        &before_levels,
        &after_levels,
        &metrics,
        &in_scope,
        &mut suspects,
    );

    let mut scored: Vec<Suspect> = suspects
        .into_values()
        .map(|mut s| {
            s.score = s.contributions.total();
            s
        })
        .collect();
    // Every instrumented call and message between services, seen in either window.
    let edges = after_waits
        .keys()
        .chain(before_waits.keys())
        .cloned()
        .collect();
    propagation::demote(&mut scored, &edges, REPORT_THRESHOLD);
    let mut ranked: Vec<Suspect> = scored
        .into_iter()
        .filter(|s| s.score >= REPORT_THRESHOLD)
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.service.cmp(&b.service))
    });
    ranked.truncate(MAX_SUSPECTS);

    let mut attributes = Vec::new();
    for s in ranked
        .iter()
        .take(ATTRIBUTE_SUSPECTS)
        .filter(|s| !s.operation.is_empty())
    {
        let slow_ns = s.before.self_p95.max(s.after.self_p50) * 1e9;
        attributes
            .extend(over_represented(ctx, w.window, &s.service, &s.operation, slow_ns).await?);
    }
    attributes.truncate(MAX_EVIDENCE);
    let mut log_patterns = log_patterns;
    log_patterns.truncate(MAX_EVIDENCE);
    metrics.truncate(MAX_EVIDENCE);
    Ok(Report {
        suspects: ranked,
        threshold: REPORT_THRESHOLD,
        attributes,
        log_patterns,
        metrics,
    })
}

/// Each service's operation that changed most, with the other operations' reasons folded in;
/// returns the services that had spans in the baseline.
async fn blame_spans(
    ctx: &Session,
    w: RcaWindows,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
    suspects: &mut BTreeMap<String, Suspect>,
) -> Result<BTreeSet<String>, EvalError> {
    let (after_ops, before_ops) = (
        operations(ctx, w.window).await?,
        operations(ctx, w.baseline).await?,
    );
    let keys: BTreeSet<&(String, String)> = after_ops.keys().chain(before_ops.keys()).collect();
    let mut changed = Vec::new();
    for key in keys {
        if !in_scope(&key.0) {
            continue;
        }
        let (b, a) = (before_ops.get(key), after_ops.get(key));
        let (before, after) = (Figures::of(b, w.baseline), Figures::of(a, w.window));
        let (score, cause, reasons) = score(&before, &after, b, a);
        if score > 0.0 {
            changed.push((score, cause, reasons, key, before, after, a));
        }
    }
    changed.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.3.cmp(y.3)));
    for (score, cause, reasons, key, before, after, a) in changed {
        let s = suspects
            .entry(key.0.clone())
            .or_insert_with(|| Suspect::new(&key.0));
        if s.operation.is_empty() {
            // The strongest operation of the service.
            s.operation = key.1.clone();
            s.contributions.spans = score;
            s.weigh(score, cause);
            s.reasons = reasons;
            (s.before, s.after) = (before, after);
            s.trace_ids = a
                .map(|a| [&a.slowest_trace, &a.error_trace])
                .into_iter()
                .flatten()
                .filter(|t| !t.is_empty())
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
        } else {
            s.reasons
                .extend(reasons.into_iter().map(|r| format!("{}: {r}", key.1)));
        }
    }
    Ok(before_ops.into_keys().map(|(service, _)| service).collect())
}

/// Waits in front of a service that grew, blamed on that service (the strongest pair).
fn blame_waits(
    before: &Waits,
    after: &Waits,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
    suspects: &mut BTreeMap<String, Suspect>,
) {
    let mut grew: Vec<(f64, &str, &str, f64, f64)> = after
        .iter()
        .filter(|((_, callee), _)| in_scope(callee))
        .filter_map(|(key, a)| {
            let b = before.get(key)?;
            let enough = a.count >= MIN_CALLS && b.count >= MIN_CALLS;
            (enough && a.p50 - b.p50 >= MIN_LATENCY_CHANGE).then(|| {
                let score = ((a.p50 + WAIT_FLOOR) / (b.p50 + WAIT_FLOOR)).ln();
                (score, key.0.as_str(), key.1.as_str(), b.p50, a.p50)
            })
        })
        .collect();
    grew.sort_by(|x, y| y.0.total_cmp(&x.0));
    for (score, caller, callee, b, a) in grew {
        let s = suspects
            .entry(callee.to_string())
            .or_insert_with(|| Suspect::new(callee));
        s.reasons.push(format!(
            "wait on the way in from {caller}: p50 {:.1} ms → {:.1} ms",
            b * 1e3,
            a * 1e3
        ));
        if score > s.contributions.network {
            s.contributions.network = score;
            s.weigh(score, Cause::Network);
        }
    }
}

/// Surging log patterns, blamed where each points.
fn blame_logs(
    surges: &[LogSurge],
    in_scope: &(dyn Fn(&str) -> bool + Sync),
    suspects: &mut BTreeMap<String, Suspect>,
) {
    for l in surges
        .iter()
        .filter(|l| in_scope(&l.blamed) && l.score > 0.0)
    {
        let s = suspects
            .entry(l.blamed.clone())
            .or_insert_with(|| Suspect::new(&l.blamed));
        let (cause, reason) = if l.blamed == l.service {
            let cause = if l.severity == "info" {
                Cause::Latency
            } else {
                Cause::Errors
            };
            (
                cause,
                format!(
                    "{} log {:.2}/s → {:.2}/s: {}",
                    l.severity, l.before_rate, l.after_rate, l.pattern
                ),
            )
        } else {
            (
                Cause::Logic,
                format!(
                    "{} rejects its output {:.2}/s → {:.2}/s: {}",
                    l.service, l.before_rate, l.after_rate, l.pattern
                ),
            )
        };
        if s.log_patterns.len() < SUSPECT_EVIDENCE {
            s.log_patterns.push(l.pattern.clone());
            s.reasons.push(reason);
            if !l.trace_id.is_empty() && !s.trace_ids.contains(&l.trace_id) {
                s.trace_ids.push(l.trace_id.clone());
            }
        }
        // The strongest pattern counts; the others are its echoes more often than not.
        if l.score > s.contributions.logs {
            s.contributions.logs = l.score;
            s.weigh(l.score, cause);
        }
    }
}

/// Resource series that rose, and consumer lag that grew.
fn blame_metrics(
    before: &Levels,
    after: &Levels,
    moved: &[MetricShift],
    in_scope: &(dyn Fn(&str) -> bool + Sync),
    suspects: &mut BTreeMap<String, Suspect>,
) {
    for m in moved
        .iter()
        .filter(|m| is_resource(&m.metric) && m.after > m.before)
    {
        let s = suspects
            .entry(m.service.clone())
            .or_insert_with(|| Suspect::new(&m.service));
        let score = m.shift.ln();
        if s.metrics.len() < SUSPECT_EVIDENCE {
            s.metrics.push(m.metric.clone());
            s.reasons.push(format!(
                "{} {:.3} → {:.3} ({:.1} spreads)",
                m.metric, m.before, m.after, m.shift
            ));
        }
        if score > s.contributions.metrics {
            s.contributions.metrics = score;
            s.weigh(score, Cause::Resource);
        }
    }
    // Consumer lag that grew: the service stopped keeping up with its messages.
    for ((svc, metric), a) in after {
        if metric != CONSUMER_LAG_METRIC || !in_scope(svc) {
            continue;
        }
        let b = before
            .get(&(svc.clone(), metric.clone()))
            .map_or(0.0, |l| l.value);
        if a.value - b >= 10.0 {
            let lag = ((a.value + 1.0) / (b.max(0.0) + 1.0)).ln();
            let s = suspects
                .entry(svc.clone())
                .or_insert_with(|| Suspect::new(svc));
            s.reasons
                .push(format!("consumer lag {b:.0} → {:.0} messages", a.value));
            s.contributions.metrics += lag;
            s.weigh(lag, Cause::Throughput);
        }
    }
}

/// `w` from its first span on: rates over a baseline that began before the telemetry did
/// would look low.
async fn observed(ctx: &Session, w: Window) -> Result<Window, EvalError> {
    let sql = sql!(
        "SELECT CAST(min(time) AS BIGINT) AS first FROM spans WHERE {}",
        w.sql()
    );
    let mut start = w.start;
    for b in ctx.fetch(&sql).await? {
        let first = floats(&b, "first")?;
        if b.num_rows() > 0 && !first.is_null(0) {
            start = start.max(first.value(0) as i64);
        }
    }
    Ok(Window { start, end: w.end })
}

/// `service` and every service it calls or sends messages to, directly or not, in either window.
async fn downstream(
    ctx: &Session,
    w: RcaWindows,
    service: &str,
) -> Result<BTreeSet<String>, EvalError> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for window in [w.window, w.baseline] {
        for e in edges(ctx, window).await? {
            graph.entry(e.caller).or_default().insert(e.callee);
        }
    }
    let mut seen = BTreeSet::from([service.to_string()]);
    let mut todo = vec![service.to_string()];
    while let Some(s) = todo.pop() {
        for next in graph.get(&s).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_names_are_their_serialised_names() {
        for c in [
            Cause::Latency,
            Cause::Errors,
            Cause::Throughput,
            Cause::Network,
            Cause::Resource,
            Cause::Logic,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
