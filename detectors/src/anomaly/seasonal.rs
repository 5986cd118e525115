//! Seasonal baselines: the periods a series' history repeats with (a periodogram), and an
//! MSTL decomposition with an ETS trend (augurs) forecasting the next points with prediction
//! intervals. Refit every `refit_every` points on the last `history`; a series without a
//! period has no seasonal baseline (the rolling baselines cover it).

use std::collections::VecDeque;

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::seasons::PeriodogramDetector;
use augurs::{Fit, Predict};

/// The quantile of the standard normal at the interval level, to turn an interval's width
/// back into a standard deviation.
const Z_AT_LEVEL: f64 = 2.576;
/// Prediction interval level asked of the forecast.
const LEVEL: f64 = 0.99;

/// How the seasonal baseline learns.
#[derive(Debug, Clone, PartialEq)]
pub struct SeasonalConfig {
    /// Points the decomposition is fitted on.
    pub history: usize,
    /// Points between fits; each fit forecasts twice as many, so a late refit still has a
    /// forecast to score with.
    pub refit_every: usize,
    /// Shortest period looked for.
    pub min_period: u32,
    /// A period must show this many whole cycles in the history to count.
    pub min_cycles: usize,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        SeasonalConfig {
            history: 2000,
            refit_every: 100,
            min_period: 4,
            min_cycles: 3,
        }
    }
}

/// The baseline's forecast for one point: its centre and the spread the prediction interval
/// implies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    /// Point forecast.
    pub mean: f64,
    /// Standard deviation implied by the interval.
    pub std: f64,
}

/// A streaming seasonal baseline for one series.
#[derive(Debug, Clone)]
pub struct SeasonalBaseline {
    config: SeasonalConfig,
    history: VecDeque<f64>,
    periods: Vec<usize>,
    forecast: VecDeque<Option<Expected>>,
    since_fit: usize,
    /// Points from one fit to the next: `refit_every`, longer before a staggered first fit.
    wait: usize,
}

impl SeasonalBaseline {
    /// An empty baseline.
    pub fn new(config: SeasonalConfig) -> Self {
        SeasonalBaseline {
            history: VecDeque::with_capacity(config.history + 1),
            config: config.clone(),
            periods: Vec::new(),
            forecast: VecDeque::new(),
            since_fit: 0,
            wait: config.refit_every,
        }
    }

    /// The periods found at the last fit (none: no seasonality).
    pub fn periods(&self) -> &[usize] {
        &self.periods
    }

    /// What the baseline expects of the next point, if it has a seasonal forecast for it.
    pub fn expected(&self) -> Option<Expected> {
        self.forecast.front().copied().flatten()
    }

    /// Records `x`, the point `expected` was about.
    pub fn push(&mut self, x: f64) {
        self.forecast.pop_front();
        if self.history.len() == self.config.history {
            self.history.pop_front();
        }
        self.history.push_back(x);
        self.since_fit += 1;
    }

    /// Whether a fit is due: `refit_every` points since the last one, with enough history
    /// for the shortest period's cycles.
    pub fn due(&self) -> bool {
        let enough = self.history.len() >= self.config.min_period as usize * self.config.min_cycles;
        enough && self.since_fit >= self.wait
    }

    /// Delays the first fit by `points`, so baselines started together fit at different
    /// times.
    pub fn stagger(&mut self, points: usize) {
        self.wait = self.config.refit_every + points;
    }

    /// Finds the periods and forecasts the next points; without a period (or when the fit
    /// fails) there is no forecast until the next fit.
    pub fn refit(&mut self) {
        self.since_fit = 0;
        self.wait = self.config.refit_every;
        self.forecast.clear();
        let y: Vec<f64> = self.history.iter().copied().collect();
        self.periods = periods(&y, &self.config);
        if self.periods.is_empty() {
            return;
        }
        // A numeric corner case inside the decomposition or the optimiser must cost this
        // series its forecast, not the monitor (which runs every series in one task).
        let fitted =
            std::panic::catch_unwind(|| forecast(&y, &self.periods, self.config.refit_every * 2));
        self.forecast = fitted.ok().flatten().unwrap_or_default();
    }
}

/// Forecasts `horizon` points after `y` with an MSTL decomposition over `periods` and an ETS
/// trend; a point whose forecast is not finite has none.
fn forecast(y: &[f64], periods: &[usize], horizon: usize) -> Option<VecDeque<Option<Expected>>> {
    let model = MSTLModel::new(periods.to_vec(), AutoETS::non_seasonal().into_trend_model());
    let f = model.fit(y).ok()?.predict(horizon, Some(LEVEL)).ok()?;
    let intervals = f.intervals?;
    Some(
        f.point
            .iter()
            .zip(intervals.lower.iter().zip(&intervals.upper))
            .map(|(&mean, (&lo, &hi))| {
                let std = ((hi - lo) / (2.0 * Z_AT_LEVEL)).max(0.0);
                (mean.is_finite() && std.is_finite()).then_some(Expected { mean, std })
            })
            .collect(),
    )
}

/// Autocorrelation a period must reach to count as seasonality.
const MIN_ACF: f64 = 0.3;
/// Periodogram peaks checked, strongest first.
const CANDIDATES: usize = 5;

/// The autocorrelation of `y` (already centred, with sum of squares `ss`) at `lag`.
fn acf(y: &[f64], ss: f64, lag: usize) -> f64 {
    if lag >= y.len() || ss <= 0.0 {
        return 0.0;
    }
    y.iter().zip(&y[lag..]).map(|(a, b)| a * b).sum::<f64>() / ss
}

/// The periods `y` repeats with (at most two, shortest first), found the AutoPeriod way
/// (Vlachos, Yu & Castelli 2005): the periodogram's strongest peaks are candidates, each is
/// moved uphill on the autocorrelation to its nearest peak, and kept when that peak is high
/// enough. Each needs `min_cycles` whole cycles in `y`.
fn periods(y: &[f64], config: &SeasonalConfig) -> Vec<usize> {
    let max = y.len() / config.min_cycles.max(2);
    if max <= config.min_period as usize {
        return Vec::new();
    }
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let centred: Vec<f64> = y.iter().map(|v| v - mean).collect();
    let ss: f64 = centred.iter().map(|v| v * v).sum();
    let at = |lag: usize| acf(&centred, ss, lag);
    let periodogram = PeriodogramDetector::builder()
        .min_period(config.min_period)
        .max_period(u32::try_from(max).unwrap_or(u32::MAX))
        .build()
        .periodogram(y);
    let mut found: Vec<(usize, f64)> = Vec::new();
    let strongest: Vec<_> = periodogram.peaks(0.0).collect();
    for candidate in strongest.iter().rev().take(CANDIDATES) {
        let mut lag = candidate.period as usize;
        loop {
            let (here, up, down) = (at(lag), at(lag + 1), at(lag.saturating_sub(1)));
            if up > here && lag < max {
                lag += 1;
            } else if down > here && lag > config.min_period as usize {
                lag -= 1;
            } else {
                break;
            }
        }
        // A climb that ends at either bound found no peak, only a slope.
        if lag <= config.min_period as usize || lag >= max {
            continue;
        }
        let strength = at(lag);
        let near = |p: usize| p.abs_diff(lag) * 10 <= lag;
        if strength >= MIN_ACF && !found.iter().any(|(p, _)| near(*p)) {
            found.push((lag, strength));
        }
    }
    // A multiple of a shorter period is that period again.
    let shorter: Vec<usize> = found.iter().map(|(p, _)| *p).collect();
    found.retain(|(p, _)| {
        !shorter.iter().any(|&q| {
            let k = (*p as f64 / q as f64).round();
            k >= 2.0 && (*p as f64 - k * q as f64).abs() * 10.0 <= *p as f64
        })
    });
    found.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut periods: Vec<usize> = found.into_iter().take(2).map(|(p, _)| p).collect();
    periods.sort_unstable();
    periods
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(i: usize) -> f64 {
        100.0
            + 30.0 * (i as f64 * std::f64::consts::TAU / 48.0).sin()
            + ((i * 7919) % 13) as f64 * 0.3
    }

    #[test]
    fn a_daily_cycle_is_found_and_forecast_within_its_interval() {
        let mut b = SeasonalBaseline::new(SeasonalConfig {
            history: 480,
            refit_every: 48,
            ..SeasonalConfig::default()
        });
        for i in 0..480 {
            b.push(daily(i));
            if b.due() {
                b.refit();
            }
        }
        assert_eq!(b.periods(), [48]);
        let mut inside = 0;
        for i in 480..576 {
            let e = b.expected().unwrap_or(Expected {
                mean: f64::NAN,
                std: 0.0,
            });
            if (daily(i) - e.mean).abs() <= 3.0 * e.std.max(1.0) {
                inside += 1;
            }
            b.push(daily(i));
            if b.due() {
                b.refit();
            }
        }
        assert!(inside >= 90, "{inside} of 96 inside the interval");
    }

    #[test]
    fn white_noise_has_no_seasonal_baseline() {
        let mut b = SeasonalBaseline::new(SeasonalConfig::default());
        let mut s = 7u64;
        for _ in 0..600 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            b.push((s >> 33) as f64 / 2f64.powi(31));
            if b.due() {
                b.refit();
            }
        }
        assert!(b.expected().is_none(), "{:?}", b.periods());
    }
}
