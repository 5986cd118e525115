//! Service level objectives: an objective over a period, good and total events defined over
//! spans, and the multi-window multi-burn-rate alerts derived from them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use vigil_store::units::HumanDuration;

use super::selector::SpanSelector;
use vigil_store::query::SpanKind;

/// Which spans count as events, and which of them are good.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Span name; none means every operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// Span kind; none means every kind.
    #[serde(default)]
    pub span_kind: Option<SpanKind>,
    /// Span attributes that must have these values.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Good only if the status is not ERROR.
    #[serde(default)]
    pub not_error: bool,
    /// Good only if faster than this.
    #[serde(default)]
    pub max_duration: Option<HumanDuration>,
}

/// One burn-rate alert: fires when the budget burns `burn_rate` times faster than the
/// objective allows over both the long and the short window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnAlert {
    /// The long window, e.g. 1h.
    pub long: HumanDuration,
    /// The short window, e.g. 5m.
    pub short: HumanDuration,
    /// Burn rate threshold, e.g. 14.4.
    pub burn_rate: f64,
    /// `severity` label, e.g. `page` or `ticket`.
    pub severity: String,
}

fn burn(long: u64, short: u64, burn_rate: f64, severity: &str) -> BurnAlert {
    BurnAlert {
        long: HumanDuration(Duration::from_secs(long)),
        short: HumanDuration(Duration::from_secs(short)),
        burn_rate,
        severity: severity.into(),
    }
}

/// The default burn-rate alerts: page on 1h/5m at 14.4x and 6h/30m at 6x; ticket on 1d/2h at
/// 3x and 3d/6h at 1x.
pub fn default_burn_alerts() -> Vec<BurnAlert> {
    const H: u64 = 3600;
    vec![
        burn(H, 300, 14.4, "page"),
        burn(6 * H, 1800, 6.0, "page"),
        burn(24 * H, 2 * H, 3.0, "ticket"),
        burn(72 * H, 6 * H, 1.0, "ticket"),
    ]
}

fn default_period() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 24 * 3600))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    name: String,
    service: String,
    objective: f64,
    #[serde(default = "default_period")]
    period: HumanDuration,
    #[serde(default)]
    total: EventFilter,
    good: EventFilter,
    #[serde(default)]
    alerts: Option<Vec<BurnAlert>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// A validated SLO.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSlo")]
pub struct Slo {
    /// Unique name.
    pub name: String,
    /// The events counted: spans of the service matching `total`.
    pub total: SpanSelector,
    /// What makes an event good, on top of `total`.
    pub good: EventFilter,
    /// Target share of good events, as a ratio (99.9 → 0.999).
    pub objective: f64,
    /// The period the objective and its error budget cover.
    pub period: HumanDuration,
    /// Burn-rate alerts (the defaults unless given).
    pub alerts: Vec<BurnAlert>,
    /// Extra labels on its alerts.
    pub labels: BTreeMap<String, String>,
}

impl TryFrom<RawSlo> for Slo {
    type Error = String;

    fn try_from(r: RawSlo) -> Result<Slo, String> {
        let fail = |why: String| Err(format!("slo {:?}: {why}", r.name));
        if !(r.objective > 0.0 && r.objective < 100.0) {
            return fail(format!(
                "objective is a percentage above 0 and below 100, e.g. 99.9; got {}",
                r.objective
            ));
        }
        if !r.good.not_error && r.good.max_duration.is_none() && r.good.attributes.is_empty() {
            return fail(
                "`good` must narrow `total`: set not_error, max_duration or attributes".into(),
            );
        }
        if r.total.not_error || r.total.max_duration.is_some() {
            return fail(
                "`total` counts every matching span; put not_error and max_duration under `good`"
                    .into(),
            );
        }
        let alerts = r.alerts.unwrap_or_else(default_burn_alerts);
        for a in &alerts {
            if a.short.0 >= a.long.0 || a.burn_rate <= 0.0 {
                return fail(format!(
                    "burn alert {}/{} at {}x: the short window must be shorter than the long one and the rate above 0",
                    a.long, a.short, a.burn_rate
                ));
            }
            if a.long.0 > r.period.0 {
                return fail(format!(
                    "burn alert window {} is longer than the period {}",
                    a.long, r.period
                ));
            }
        }
        Ok(Slo {
            total: SpanSelector {
                service: Some(r.service),
                operation: r.total.operation,
                span_kind: r.total.span_kind,
                attributes: r.total.attributes,
            },
            name: r.name,
            good: r.good,
            objective: r.objective / 100.0,
            period: r.period,
            alerts,
            labels: r.labels,
        })
    }
}
