//! SLO evaluation: good and total events counted per minute and kept for the SLO's period
//! (only the last minutes are re-read at each evaluation), burn rates over each alert's long
//! and short windows, and the error budget left.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil_store::Session;
use vigil_store::alert::Labels;

use super::lifecycle::Breach;
use super::{EvalError, selector_conditions};
use crate::rules::Slo;
use crate::rules::slo::{BurnAlert, EventFilter};
use crate::rules::template::format_value;
use crate::rules::threshold::Unit;
use vigil_store::query::{Sql, StatusCode, Window, all, eq, floats, nanos};
use vigil_store::sql;

/// Width of a counting bucket (ns).
pub const BUCKET_NS: i64 = 60_000_000_000;
/// Buckets re-read at each evaluation, for spans that arrive late.
const LATE_BUCKETS: i64 = 2;

/// Events in a bucket or window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Every event.
    pub total: u64,
    /// Good events.
    pub good: u64,
}

impl Counts {
    /// Bad events.
    pub fn bad(&self) -> u64 {
        self.total.saturating_sub(self.good)
    }

    /// How many times faster than allowed the budget burns: the bad share over `1 - objective`.
    pub fn burn_rate(&self, objective: f64) -> Option<f64> {
        (self.total > 0).then(|| self.bad() as f64 / self.total as f64 / (1.0 - objective))
    }
}

/// One burn-rate alert's current reading.
#[derive(Debug, Clone, Serialize)]
pub struct BurnStatus {
    /// Long window, e.g. `1h`.
    pub long: String,
    /// Short window, e.g. `5m`.
    pub short: String,
    /// Burn rate that breaches.
    pub threshold: f64,
    /// `severity` of its alert.
    pub severity: String,
    /// Burn rate over the long window (none without events).
    pub long_rate: Option<f64>,
    /// Burn rate over the short window.
    pub short_rate: Option<f64>,
    /// Both rates above the threshold.
    pub breaching: bool,
}

/// An SLO's current reading.
#[derive(Debug, Clone, Serialize)]
pub struct SloStatus {
    /// SLO name.
    pub name: String,
    /// Service.
    pub service: String,
    /// Objective as a percentage, e.g. 99.9.
    pub objective: f64,
    /// Period, e.g. `30d`.
    pub period: String,
    /// Events over the period.
    pub events: Counts,
    /// Share of good events over the period (none without events).
    pub sli: Option<f64>,
    /// Share of the period's error budget not yet spent (1 = untouched, below 0 = overspent).
    pub error_budget_remaining: f64,
    /// Each burn-rate alert's reading.
    pub burn_rates: Vec<BurnStatus>,
    /// When this was computed.
    pub evaluated_at: DateTime<Utc>,
}

/// Per-minute event counts of one SLO.
#[derive(Debug, Default)]
pub struct SloCounts {
    buckets: BTreeMap<i64, Counts>,
    loaded_until: Option<i64>,
}

fn floor(ns: i64) -> i64 {
    ns.div_euclid(BUCKET_NS) * BUCKET_NS
}

fn filter_sql(f: &EventFilter, out: &mut Vec<Sql>) {
    if let Some(op) = &f.operation {
        out.push(eq("span_name", op));
    }
    if let Some(kind) = f.span_kind {
        out.push(sql!("span_kind = {}", kind));
    }
    out.extend(selector_conditions(None, &f.attributes));
}

/// The query counting `slo`'s total and good events per bucket in `window`.
pub fn counts_query(slo: &Slo, window: Window) -> Sql {
    let mut total = vec![window.sql()];
    total.extend(selector_conditions(slo.total.service.as_deref(), []));
    filter_sql(
        &EventFilter {
            operation: slo.total.operation.clone(),
            span_kind: slo.total.span_kind,
            attributes: slo.total.attributes.clone(),
            ..EventFilter::default()
        },
        &mut total,
    );
    let mut good = Vec::new();
    filter_sql(&slo.good, &mut good);
    if slo.good.not_error {
        good.push(sql!("status_code <> {}", StatusCode::Error));
    }
    if let Some(max) = slo.good.max_duration {
        good.push(sql!("duration_ns < {}", max.0.as_nanos()));
    }
    sql!(
        "SELECT date_bin(INTERVAL '{} seconds', time, TIMESTAMP '1970-01-01T00:00:00Z') AS bucket, \
         count(*) AS total, sum(CASE WHEN {} THEN 1 ELSE 0 END) AS good \
         FROM spans WHERE {} GROUP BY 1",
        BUCKET_NS / 1_000_000_000,
        all(good),
        all(total)
    )
}

impl SloCounts {
    /// Reads what changed since the last refresh (the whole period the first time) up to `now`.
    pub async fn refresh(
        &mut self,
        ctx: &Session,
        slo: &Slo,
        now: DateTime<Utc>,
    ) -> Result<(), EvalError> {
        let end = nanos(now);
        let period = i64::try_from(slo.period.0.as_nanos()).unwrap_or(i64::MAX);
        let start = match self.loaded_until {
            None => floor(end.saturating_sub(period)),
            Some(t) => floor(t) - LATE_BUCKETS * BUCKET_NS,
        };
        let batches = ctx.fetch(&counts_query(slo, Window { start, end })).await?;
        let mut fresh = Vec::new();
        for b in &batches {
            let bucket = b
                .column_by_name("bucket")
                .and_then(|c| {
                    arrow::array::AsArray::as_primitive_opt::<
                        arrow::datatypes::TimestampNanosecondType,
                    >(c)
                    .cloned()
                })
                .ok_or_else(|| EvalError::Shape("bucket is not a timestamp".into()))?;
            let (total, good) = (floats(b, "total")?, floats(b, "good")?);
            for i in 0..b.num_rows() {
                fresh.push((
                    bucket.value(i),
                    Counts {
                        total: total.value(i) as u64,
                        good: good.value(i) as u64,
                    },
                ));
            }
        }
        self.replace(start, end.saturating_sub(period), fresh);
        self.loaded_until = Some(end);
        Ok(())
    }

    /// Replaces every bucket from `start` on with `fresh` and forgets those before `keep_from`.
    pub fn replace(&mut self, start: i64, keep_from: i64, fresh: Vec<(i64, Counts)>) {
        self.buckets
            .retain(|b, _| *b < start && *b >= floor(keep_from));
        self.buckets.extend(fresh);
    }

    /// Events in buckets that start at or after `floor(since)`.
    pub fn since(&self, since: i64) -> Counts {
        self.buckets
            .range(floor(since)..)
            .fold(Counts::default(), |acc, (_, c)| Counts {
                total: acc.total + c.total,
                good: acc.good + c.good,
            })
    }
}

/// The reading of `slo` at `now` from `counts`, and the burn alerts that breach.
pub fn assess(
    slo: &Slo,
    counts: &SloCounts,
    now: DateTime<Utc>,
) -> (SloStatus, Vec<Option<Breach>>) {
    let end = nanos(now);
    let window = |d: std::time::Duration| {
        end.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    };
    let events = counts.since(window(slo.period.0));
    let allowed = (1.0 - slo.objective) * events.total as f64;
    let error_budget_remaining = if events.total == 0 {
        1.0
    } else {
        1.0 - events.bad() as f64 / allowed
    };
    let service = slo.total.service.clone().unwrap_or_default();
    let mut burn_rates = Vec::new();
    let mut breaches = Vec::new();
    for a in &slo.alerts {
        let long_rate = counts.since(window(a.long.0)).burn_rate(slo.objective);
        let short_rate = counts.since(window(a.short.0)).burn_rate(slo.objective);
        let breaching = long_rate.is_some_and(|r| r > a.burn_rate)
            && short_rate.is_some_and(|r| r > a.burn_rate);
        breaches.push(breaching.then(|| {
            breach(
                slo,
                &service,
                a,
                long_rate,
                short_rate,
                error_budget_remaining,
            )
        }));
        burn_rates.push(BurnStatus {
            long: a.long.to_string(),
            short: a.short.to_string(),
            threshold: a.burn_rate,
            severity: a.severity.clone(),
            long_rate,
            short_rate,
            breaching,
        });
    }
    let status = SloStatus {
        name: slo.name.clone(),
        service,
        objective: slo.objective * 100.0,
        period: slo.period.to_string(),
        events,
        sli: (events.total > 0).then(|| events.good as f64 / events.total as f64),
        error_budget_remaining,
        burn_rates,
        evaluated_at: now,
    };
    (status, breaches)
}

/// The alert labels of one burn-rate alert.
pub fn burn_labels(slo: &Slo, service: &str, a: &BurnAlert) -> Labels {
    let mut labels = slo.labels.clone();
    labels.extend([
        ("alertname".to_string(), "SLOBurnRate".to_string()),
        ("slo".to_string(), slo.name.clone()),
        ("service".to_string(), service.to_string()),
        ("severity".to_string(), a.severity.clone()),
        ("window".to_string(), format!("{}/{}", a.long, a.short)),
    ]);
    labels
}

fn breach(
    slo: &Slo,
    service: &str,
    a: &BurnAlert,
    long_rate: Option<f64>,
    short_rate: Option<f64>,
    remaining: f64,
) -> Breach {
    let rate = long_rate.unwrap_or(0.0);
    let summary = format!(
        "{} is burning its error budget {}x too fast over {} ({}x over {}); {} of the {} budget left",
        slo.name,
        format_value(rate, None),
        a.long,
        format_value(short_rate.unwrap_or(0.0), None),
        a.short,
        format_value(remaining, Some(Unit::Ratio)),
        slo.period
    );
    Breach {
        labels: burn_labels(slo, service, a),
        annotations: [("summary".to_string(), summary)].into(),
        value: rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse;

    const NOW: i64 = 1_800_000_000; // a whole minute

    fn slo(alerts: &str) -> Slo {
        let text = format!(
            "groups:\n  - name: g\n    slos:\n      - name: checkout\n        service: gateway\n        objective: 99\n        period: 1h\n        good: {{ not_error: true }}\n        alerts: {alerts}\n"
        );
        parse("t.yaml", &text)
            .unwrap()
            .groups
            .remove(0)
            .slos
            .remove(0)
    }

    /// 60 events a minute for the last hour; the last 10 minutes have 30 bad a minute.
    fn counts() -> SloCounts {
        let mut c = SloCounts::default();
        let fresh = (1..=60)
            .map(|m| {
                let bad = if m <= 10 { 30 } else { 0 };
                (
                    (NOW - m * 60) * 1_000_000_000,
                    Counts {
                        total: 60,
                        good: 60 - bad,
                    },
                )
            })
            .collect();
        c.replace(0, 0, fresh);
        c
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    #[test]
    fn burn_rates_over_both_windows_and_budget() {
        let s = slo(
            "[{ long: 1h, short: 5m, burn_rate: 14.4, severity: page }, { long: 1h, short: 5m, burn_rate: 6, severity: ticket }]",
        );
        let (status, breaches) = assess(&s, &counts(), now());
        // Long window: 300 bad of 3600 = 8.33% against a 1% budget → 8.33x.
        let long = status.burn_rates[0].long_rate.unwrap();
        assert!((long - 300.0 / 3600.0 / 0.01).abs() < 1e-9, "{long}");
        // Short window: 150 bad of 300 = 50% → 50x.
        let short = status.burn_rates[0].short_rate.unwrap();
        assert!((short - 50.0).abs() < 1e-9, "{short}");
        // 14.4x: the short window burns fast enough, the long one not: no alert.
        assert!(!status.burn_rates[0].breaching);
        assert!(breaches[0].is_none());
        // 6x: both windows above it.
        assert!(status.burn_rates[1].breaching);
        let b = breaches[1].as_ref().unwrap();
        assert_eq!(b.labels["alertname"], "SLOBurnRate");
        assert_eq!(b.labels["severity"], "ticket");
        assert_eq!(b.labels["window"], "1h/5m");
        // Budget over the 1h period: 36 bad allowed, 300 spent.
        assert!((status.error_budget_remaining - (1.0 - 300.0 / 36.0)).abs() < 1e-9);
        assert_eq!(
            status.events,
            Counts {
                total: 3600,
                good: 3300
            }
        );
        assert!((status.sli.unwrap() - 3300.0 / 3600.0).abs() < 1e-12);
    }

    #[test]
    fn replace_rereads_recent_buckets_and_forgets_old_ones() {
        let mut c = counts();
        let recent = (NOW - 120) * 1_000_000_000;
        c.replace(
            recent,
            (NOW - 1800) * 1_000_000_000,
            vec![(recent, Counts { total: 1, good: 1 })],
        );
        // Kept: minutes 30..=3 back (28 buckets of 60), plus the re-read bucket; minute 1 is gone.
        assert_eq!(c.since(0).total, 28 * 60 + 1);
        assert_eq!(Counts { total: 0, good: 0 }.burn_rate(0.99), None);
    }
}
