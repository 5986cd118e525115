//! What the logs say changed: patterns new or surging against the baseline, each scored by
//! how much it grew and how severe it is (errors and exceptions most), and blamed on the
//! service that logged it, or, when the pattern rejects its input (a validation failure), on
//! the service that sent that input: the service of the logging span's parent, or of the
//! callee under it when the caller rejects a response.

use std::collections::BTreeSet;

use serde::Serialize;
use vigil_store::Session;

use crate::eval::EvalError;
use crate::rca::patterns::{PatternCount, pattern_of_body, patterns};
use vigil_store::query::{Severity, SpanKind, Window, floats, lit, strings, text};
use vigil_store::sql;

/// Records added to both windows' counts before their rates are compared: a pattern going
/// from none to a handful is remarkable, but not infinitely.
const PSEUDO_COUNT: f64 = 1.0;
/// Fewest records in the window for a pattern to count.
const MIN_RECORDS: f64 = 3.0;
/// How many times its baseline rate a pattern must reach.
const SURGE: f64 = 3.0;
/// How far before the window a logging span's parent may have started.
const PARENT_LOOKBACK_NS: i64 = 60 * 1_000_000_000;
/// Words of a message that rejects its input rather than reporting its own failure.
const REJECTION: [&str; 8] = [
    "validation",
    "invalid",
    "mismatch",
    "does not match",
    "inconsistent",
    "rejected",
    "malformed",
    "unexpected value",
];

/// A log pattern that appeared or surged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSurge {
    /// The service logging it.
    pub service: String,
    /// The body with variable parts as `<*>`.
    pub pattern: String,
    /// `error` (errors and exceptions), `warn` or `info` (anything lower).
    pub severity: &'static str,
    /// Records per second in the baseline.
    pub before_rate: f64,
    /// Records per second in the anomaly window.
    pub after_rate: f64,
    /// One record.
    pub sample: String,
    /// A trace carrying one.
    pub trace_id: String,
    /// The service it points at: the logging service, or the sender of the input it rejects.
    pub blamed: String,
    /// How strongly it points there: severity weight × log of the growth of its rate (one
    /// record added to each window's count).
    pub score: f64,
}

/// Severity name and weight of a pattern.
fn severity(c: &PatternCount) -> (&'static str, f64) {
    if c.exceptions > 0.0 || c.severity >= f64::from(Severity::Error.number()) {
        ("error", 1.0)
    } else if c.severity >= f64::from(Severity::Warn.number()) {
        ("warn", 0.6)
    } else {
        ("info", 0.25)
    }
}

/// Whether `pattern` rejects the input its service was given.
pub fn rejects_input(pattern: &str) -> bool {
    let lower = pattern.to_lowercase();
    REJECTION.iter().any(|w| lower.contains(w))
}

/// Patterns at least [`SURGE`] times as frequent in `window` as in `baseline` (or new), of
/// services `in_scope` that were running in the baseline (`ran`: they had spans then, or
/// logged), strongest first.
pub async fn log_surges(
    ctx: &Session,
    window: Window,
    baseline: Window,
    ran: &BTreeSet<String>,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<LogSurge>, EvalError> {
    let (after, before) = (patterns(ctx, window).await?, patterns(ctx, baseline).await?);
    let (secs_after, secs_before) = (window.seconds().max(1.0), baseline.seconds().max(1.0));
    // A service that did not run in the baseline is new, not its patterns; one that ran
    // without logging is not (its first errors are news).
    let known: BTreeSet<&str> = before
        .keys()
        .map(|(svc, _)| svc.as_str())
        .chain(ran.iter().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    for ((service, pattern), a) in after {
        if !in_scope(&service) || !known.contains(service.as_str()) || a.count < MIN_RECORDS {
            continue;
        }
        let before_count = before
            .get(&(service.clone(), pattern.clone()))
            .map_or(0.0, |b| b.count);
        let (before_rate, after_rate) = (before_count / secs_before, a.count / secs_after);
        if after_rate < SURGE * before_rate {
            continue;
        }
        let (name, weight) = severity(&a);
        let blamed = if rejects_input(&pattern) {
            sender(ctx, window, &service, &pattern)
                .await?
                .unwrap_or_else(|| service.clone())
        } else {
            service.clone()
        };
        out.push(LogSurge {
            score: weight
                * (((a.count + PSEUDO_COUNT) / secs_after)
                    / ((before_count + PSEUDO_COUNT) / secs_before))
                    .ln(),
            service,
            pattern,
            severity: name,
            before_rate,
            after_rate,
            sample: a.sample,
            trace_id: a.trace_id,
            blamed,
        });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(out)
}

/// The other service that sent most of the inputs `service` logged `pattern` about: for a
/// record in a CLIENT span (a response the caller rejects), the service of the span under
/// it (the callee's); otherwise the service of its span's parent (who sent the request or
/// message).
async fn sender(
    ctx: &Session,
    w: Window,
    service: &str,
    pattern: &str,
) -> Result<Option<String>, EvalError> {
    let wider = Window {
        start: w.start.saturating_sub(PARENT_LOOKBACK_NS),
        end: w.end,
    };
    let sql = sql!(
        "WITH l AS (SELECT trace_id, span_id FROM logs \
                    WHERE {} AND service_name = {} AND {} = {}), \
         s AS (SELECT trace_id, span_id, parent_span_id, span_kind FROM spans WHERE {}), \
         o AS (SELECT trace_id, span_id, parent_span_id, service_name FROM spans WHERE {}), \
         senders AS ( \
           SELECT p.service_name FROM l \
             JOIN s ON l.trace_id = s.trace_id AND l.span_id = s.span_id \
             JOIN o p ON s.trace_id = p.trace_id AND s.parent_span_id = p.span_id \
           WHERE s.span_kind <> {} \
           UNION ALL \
           SELECT k.service_name FROM l \
             JOIN s ON l.trace_id = s.trace_id AND l.span_id = s.span_id \
             JOIN o k ON s.trace_id = k.trace_id AND k.parent_span_id = s.span_id \
           WHERE s.span_kind = {}) \
         SELECT service_name AS sender, count(*) AS n FROM senders \
         WHERE service_name <> {} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
        w.sql(),
        lit(service),
        pattern_of_body(),
        lit(pattern),
        w.sql(),
        wider.sql(),
        SpanKind::Client,
        SpanKind::Client,
        lit(service)
    );
    for b in ctx.fetch(&sql).await? {
        let (sender, n) = (strings(&b, "sender")?, floats(&b, "n")?);
        if b.num_rows() > 0 && n.value(0) > 0.0 {
            return Ok(Some(text(&sender, 0).to_string()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_failures_reject_input_and_own_failures_do_not() {
        assert!(rejects_input(
            "validation failed for InventoryReserved <*>: amount_cents <*> does not match"
        ));
        assert!(rejects_input("Invalid price in response"));
        assert!(!rejects_input("unexpected exception in process orders"));
        assert!(!rejects_input(
            "attempt <*> failed, retrying in <*>ms: injected error"
        ));
    }

    #[test]
    fn errors_and_exceptions_weigh_most() {
        let c = |severity: f64, exceptions: f64| PatternCount {
            count: 1.0,
            sample: String::new(),
            trace_id: String::new(),
            severity,
            exceptions,
        };
        assert_eq!(severity(&c(17.0, 0.0)), ("error", 1.0));
        assert_eq!(severity(&c(9.0, 1.0)), ("error", 1.0));
        assert_eq!(severity(&c(13.0, 0.0)).0, "warn");
        assert_eq!(severity(&c(9.0, 0.0)).0, "info");
    }
}
