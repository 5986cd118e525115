//! Root-cause analysis: what changed between a baseline window and an anomaly window.
//!
//! Suspects are ranked from the spans: each operation's *self* time and *own* errors (so a
//! slow or failing leaf is blamed, not the callers waiting on it), operations that stopped
//! taking work, and growing consumer lag. Each suspect carries its numbers before and after,
//! exemplar traces, and the evidence around it: attribute values over-represented among its
//! slow or failed spans, new or surging log patterns of its service, and metric series of its
//! service that shifted at the same time.

pub mod attributes;
pub mod metric_shifts;
pub mod operations;
pub mod patterns;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use vigil_store::Session;

use crate::eval::group::CONSUMER_LAG_METRIC;
use arrow::array::Array;

use crate::eval::EvalError;
use crate::topology::edges;
use attributes::{AttributeValue, over_represented};
use metric_shifts::{Level, levels};
use operations::{OperationStats, operations};
use patterns::patterns;
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
/// Suspects whose attributes are examined.
const ATTRIBUTE_SUSPECTS: usize = 3;
/// Log patterns and metric shifts returned.
const MAX_EVIDENCE: usize = 10;

/// The windows to compare and where to look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RcaWindows {
    /// When things went wrong.
    pub window: Window,
    /// What normal looked like.
    pub baseline: Window,
}

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

/// A ranked suspect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suspect {
    /// The service to look at.
    pub service: String,
    /// Its operation that changed most (empty for service-wide evidence such as lag).
    pub operation: String,
    /// How strongly it changed (the larger the likelier).
    pub score: f64,
    /// What changed, in words.
    pub reasons: Vec<String>,
    /// The operation in the baseline.
    pub before: Figures,
    /// The operation in the anomaly window.
    pub after: Figures,
    /// Traces showing it: the slowest span's and an own error's.
    pub trace_ids: Vec<String>,
}

/// A log pattern that appeared or surged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSurge {
    /// The service logging it.
    pub service: String,
    /// The body with variable parts as `<*>`.
    pub pattern: String,
    /// Records per second in the baseline.
    pub before_rate: f64,
    /// Records per second in the anomaly window.
    pub after_rate: f64,
    /// One record.
    pub sample: String,
    /// A trace carrying one.
    pub trace_id: String,
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

/// What changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Suspects, likeliest first.
    pub suspects: Vec<Suspect>,
    /// Attribute values over-represented among the top suspects' slow or failed spans.
    pub attributes: Vec<AttributeValue>,
    /// New or surging log patterns.
    pub log_patterns: Vec<LogSurge>,
    /// Metric series that shifted.
    pub metrics: Vec<MetricShift>,
}

/// How much one operation changed, with the reasons.
fn score(
    before: &Figures,
    after: &Figures,
    b: Option<&OperationStats>,
    a: Option<&OperationStats>,
) -> (f64, Vec<String>) {
    let mut score = 0.0;
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
            score += latency;
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
        score += 5.0 * (after.error_rate - before.error_rate);
        reasons.push(format!(
            "own errors {:.1}% → {:.1}%",
            before.error_rate * 100.0,
            after.error_rate * 100.0
        ));
    }
    if calls(b) >= 2.0 * MIN_CALLS && before.rate > 0.0 {
        let drop = 1.0 - after.rate / before.rate;
        if drop >= 0.5 {
            score += 2.0 * drop;
            reasons.push(format!("calls {:.2}/s → {:.2}/s", before.rate, after.rate));
        }
    }
    (score, reasons)
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
    let (after_ops, before_ops) = (
        operations(ctx, w.window).await?,
        operations(ctx, w.baseline).await?,
    );
    let (after_levels, before_levels) =
        (levels(ctx, w.window).await?, levels(ctx, w.baseline).await?);
    let scope = match service {
        Some(s) => Some(downstream(ctx, w, s).await?),
        None => None,
    };
    let in_scope = |svc: &str| scope.as_ref().is_none_or(|s| s.contains(svc));

    let keys: BTreeSet<&(String, String)> = after_ops.keys().chain(before_ops.keys()).collect();
    let mut suspects: Vec<Suspect> = Vec::new();
    for key in keys {
        if !in_scope(&key.0) {
            continue;
        }
        let (b, a) = (before_ops.get(key), after_ops.get(key));
        let (before, after) = (Figures::of(b, w.baseline), Figures::of(a, w.window));
        let (score, reasons) = score(&before, &after, b, a);
        if score <= 0.0 {
            continue;
        }
        let trace_ids = a
            .map(|a| [&a.slowest_trace, &a.error_trace])
            .into_iter()
            .flatten()
            .filter(|t| !t.is_empty())
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        suspects.push(Suspect {
            service: key.0.clone(),
            operation: key.1.clone(),
            score,
            reasons,
            before,
            after,
            trace_ids,
        });
    }
    // Consumer lag that grew: the service stopped keeping up with its messages.
    for ((svc, metric), after) in &after_levels {
        if metric != CONSUMER_LAG_METRIC || !in_scope(svc) {
            continue;
        }
        let before = before_levels
            .get(&(svc.clone(), metric.clone()))
            .map_or(0.0, |l| l.value);
        if after.value - before >= 10.0 {
            let lag = ((after.value + 1.0) / (before.max(0.0) + 1.0)).ln();
            suspects.push(Suspect {
                service: svc.clone(),
                operation: String::new(),
                score: lag,
                reasons: vec![format!(
                    "consumer lag {before:.0} → {:.0} messages",
                    after.value
                )],
                before: Figures::default(),
                after: Figures::default(),
                trace_ids: Vec::new(),
            });
        }
    }
    suspects.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.service.cmp(&b.service))
    });
    // One entry per service: its strongest evidence, the rest of its reasons folded in.
    let mut ranked: Vec<Suspect> = Vec::new();
    for s in suspects {
        match ranked.iter_mut().find(|r| r.service == s.service) {
            Some(r) => {
                for reason in s.reasons {
                    let reason = if s.operation.is_empty() {
                        reason
                    } else {
                        format!("{}: {reason}", s.operation)
                    };
                    r.reasons.push(reason);
                }
            }
            None => ranked.push(s),
        }
    }
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

    let log_patterns = log_surges(ctx, w, &in_scope).await?;
    let metrics = metric_shifts(&before_levels, &after_levels, &in_scope);
    Ok(Report {
        suspects: ranked,
        attributes,
        log_patterns,
        metrics,
    })
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

/// Patterns at least three times as frequent as in the baseline (or new, of a service that
/// logged in the baseline), busiest first.
async fn log_surges(
    ctx: &Session,
    w: RcaWindows,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<LogSurge>, EvalError> {
    let (after, before) = (
        patterns(ctx, w.window).await?,
        patterns(ctx, w.baseline).await?,
    );
    let (secs_after, secs_before) = (w.window.seconds().max(1.0), w.baseline.seconds().max(1.0));
    // A service that logged nothing in the baseline is new, not its patterns.
    let known: BTreeSet<&str> = before.keys().map(|(svc, _)| svc.as_str()).collect();
    let mut out: Vec<LogSurge> = after
        .into_iter()
        .filter(|((svc, _), a)| in_scope(svc) && known.contains(svc.as_str()) && a.count >= 3.0)
        .filter_map(|(key, a)| {
            let before_rate = before.get(&key).map_or(0.0, |b| b.count / secs_before);
            let after_rate = a.count / secs_after;
            (after_rate >= 3.0 * before_rate).then_some(LogSurge {
                service: key.0,
                pattern: key.1,
                before_rate,
                after_rate,
                sample: a.sample,
                trace_id: a.trace_id,
            })
        })
        .collect();
    out.sort_by(|a, b| (b.after_rate - b.before_rate).total_cmp(&(a.after_rate - a.before_rate)));
    out.truncate(MAX_EVIDENCE);
    Ok(out)
}

/// Series whose level moved at least three baseline spreads (and 10%), largest first.
fn metric_shifts(
    before: &BTreeMap<(String, String), Level>,
    after: &BTreeMap<(String, String), Level>,
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
    out.truncate(MAX_EVIDENCE);
    out
}
