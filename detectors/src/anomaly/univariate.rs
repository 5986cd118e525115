//! The streaming detector for one univariate series. Surprises are measured against the
//! history, in standard deviations: how far the value is from its rolling mean, how far the
//! change from the previous value is from the usual change, optionally how far it is from
//! the seasonal forecast, and how novel its level and the route to it are. The largest
//! becomes a score in [0, 1), reported only when it exceeds every score of the recent past,
//! so one incident yields one detection rather than a burst.

use std::collections::VecDeque;

use super::novelty::{LevelNovelty, NoveltyConfig};
use super::rolling::Rolling;
use super::seasonal::{SeasonalBaseline, SeasonalConfig};

/// One parameter set for every series.
#[derive(Debug, Clone, PartialEq)]
pub struct UnivariateConfig {
    /// Values (and changes) the baseline is estimated from.
    pub window: usize,
    /// Weight of the change surprise relative to the value surprise.
    pub change_weight: f64,
    /// The surprise (in standard deviations) that scores 0.5.
    pub half_score: f64,
    /// A score is reported only if it exceeds every score of this many previous points.
    pub suppress: usize,
    /// Points needed before anything is scored.
    pub warm_up: usize,
    /// The smallest spread a surprise is measured in, so a series that barely moves does not
    /// make a meaningless change look huge.
    pub floor: NoiseFloor,
    /// The seasonal baseline, when the series' periods are worth learning (none: only the
    /// rolling baselines). Off by default: on NAB it cost about a point when measured (49.9
    /// against 51.1 standard, before novelty), since its forecasts add false positives on
    /// the many series without a stable cycle; the live monitor uses it, where periodic load
    /// is common.
    pub seasonal: Option<SeasonalConfig>,
    /// Weight of the surprise against the seasonal forecast.
    pub seasonal_weight: f64,
    /// Level-transition novelty (none: off). Its levels are fixed by the first points'
    /// range, which suits a series that keeps its range; the live monitor leaves it off,
    /// since service traffic drifts with load and every new level would look novel.
    pub novelty: Option<NoveltyConfig>,
}

/// The smallest standard deviation assumed: `max(relative * |mean|, absolute)`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NoiseFloor {
    /// Share of the mean's magnitude.
    pub relative: f64,
    /// In the series' unit.
    pub absolute: f64,
}

impl NoiseFloor {
    /// The floor for a series around `mean`.
    pub fn of(&self, mean: f64) -> f64 {
        (self.relative * mean.abs()).max(self.absolute)
    }
}

impl Default for UnivariateConfig {
    fn default() -> Self {
        UnivariateConfig {
            window: 2000,
            change_weight: 0.8,
            half_score: 3.0,
            suppress: 400,
            warm_up: 2,
            floor: NoiseFloor::default(),
            seasonal: None,
            seasonal_weight: 1.0,
            novelty: Some(NoveltyConfig::default()),
        }
    }
}

/// Which surprise dominated a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The value departed from its rolling mean.
    Level,
    /// The value departed from the seasonal forecast for its point in the cycle.
    Seasonal,
    /// The change from the previous value departed from the usual change.
    Change,
    /// The value reached a level never reached before, or by a route rarely taken.
    Novelty,
}

/// The score of one point and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The score in [0, 1) as reported (0 when suppressed).
    pub score: f64,
    /// The score before suppression.
    pub raw: f64,
    /// Which surprise dominated.
    pub cause: Cause,
    /// What the value was compared with: the seasonal forecast when that surprise
    /// dominated, else the rolling mean.
    pub expected: f64,
}

/// The detector's state for one series.
#[derive(Debug, Clone)]
pub struct UnivariateDetector {
    config: UnivariateConfig,
    values: Rolling,
    changes: Rolling,
    last: Option<f64>,
    recent: VecDeque<f64>,
    seasonal: Option<SeasonalBaseline>,
    novelty: Option<LevelNovelty>,
}

/// `|x - mean| / std` over `r`, with `std` at least `floor` (0 when there is no spread and `x`
/// is the mean; large when there is no spread and `x` is not).
fn surprise(r: &Rolling, x: f64, floor: f64) -> f64 {
    const FLAT: f64 = 10.0;
    let (mean, std) = (r.mean(), r.std().max(floor));
    if std > 0.0 {
        (x - mean).abs() / std
    } else if x == mean {
        0.0
    } else {
        FLAT
    }
}

impl UnivariateDetector {
    /// A fresh detector.
    pub fn new(config: UnivariateConfig) -> Self {
        UnivariateDetector {
            values: Rolling::new(config.window),
            changes: Rolling::new(config.window),
            last: None,
            recent: VecDeque::with_capacity(config.suppress + 1),
            seasonal: config.seasonal.clone().map(SeasonalBaseline::new),
            novelty: config.novelty.clone().map(LevelNovelty::new),
            config,
        }
    }

    /// Whether the seasonal baseline is due to be refitted.
    pub fn seasonal_due(&self) -> bool {
        self.seasonal.as_ref().is_some_and(SeasonalBaseline::due)
    }

    /// Refits the seasonal baseline (periods and forecast), which scoring then uses.
    pub fn refit_seasonal(&mut self) {
        if let Some(b) = self.seasonal.as_mut() {
            b.refit();
        }
    }

    /// Delays the seasonal baseline's first fit by `points`.
    pub fn stagger(&mut self, points: usize) {
        if let Some(b) = self.seasonal.as_mut() {
            b.stagger(points);
        }
    }

    /// Whether enough history has been seen to score.
    pub fn warmed_up(&self) -> bool {
        self.values.len() >= self.config.warm_up.max(2)
    }

    /// Scores `x` from earlier points only, then learns it.
    pub fn update(&mut self, x: f64) -> Scored {
        let mut expected = self.values.mean();
        let change = self.last.map_or(0.0, |l| x - l);
        let forecast = self.seasonal.as_ref().and_then(SeasonalBaseline::expected);
        let mut candidates = [
            (0.0, Cause::Level),
            (0.0, Cause::Change),
            (0.0, Cause::Seasonal),
            (0.0, Cause::Novelty),
        ];
        if let Some(n) = self.novelty.as_mut() {
            candidates[3].0 = n.update(x);
        }
        if self.warmed_up() {
            let floor = self.config.floor.of(expected);
            candidates[0].0 = surprise(&self.values, x, floor);
            candidates[1].0 = surprise(&self.changes, change, floor) * self.config.change_weight;
            if let Some(f) = forecast {
                let std = f.std.max(self.config.floor.of(f.mean));
                candidates[2].0 = if std > 0.0 {
                    (x - f.mean).abs() / std * self.config.seasonal_weight
                } else {
                    0.0
                };
            }
        }
        self.values.push(x);
        self.changes.push(change);
        self.last = Some(x);
        if let Some(b) = self.seasonal.as_mut() {
            b.push(x);
        }
        let (s, cause) =
            candidates.into_iter().fold(
                (0.0, Cause::Level),
                |best, c| if c.0 > best.0 { c } else { best },
            );
        if let (Cause::Seasonal, Some(f)) = (cause, forecast) {
            expected = f.mean;
        }
        let raw = s / (s + self.config.half_score);
        let score = if self.recent.iter().all(|&r| raw > r) {
            raw
        } else {
            0.0
        };
        if self.config.suppress > 0 {
            if self.recent.len() == self.config.suppress {
                self.recent.pop_front();
            }
            self.recent.push_back(raw);
        }
        Scored {
            score,
            raw,
            cause,
            expected,
        }
    }
}

/// Scores every point of `values` from earlier points only.
pub fn score_series(values: &[f64], config: &UnivariateConfig) -> Vec<f64> {
    let mut d = UnivariateDetector::new(config.clone());
    values
        .iter()
        .map(|&v| {
            let score = d.update(v).score;
            if d.seasonal_due() {
                d.refit_seasonal();
            }
            score
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(i: usize) -> f64 {
        // A deterministic wiggle in [-1, 1].
        ((i as f64) * 1.7).sin()
    }

    #[test]
    fn a_spike_scores_high_and_its_echo_is_suppressed() {
        let mut d = UnivariateDetector::new(UnivariateConfig {
            novelty: None,
            ..UnivariateConfig::default()
        });
        let mut quiet = 0.0f64;
        for i in 0..500 {
            quiet = quiet.max(d.update(10.0 + noise(i)).raw);
        }
        let spike = d.update(30.0);
        assert!(
            spike.score > 0.7 && spike.score > quiet,
            "{spike:?} vs {quiet}"
        );
        assert_eq!(spike.cause, Cause::Level);
        assert!((spike.expected - 10.0).abs() < 0.2);
        // The same spike again shortly after is not a new maximum.
        d.update(10.0);
        assert_eq!(d.update(30.0).score, 0.0);
    }

    #[test]
    fn a_first_step_beyond_a_wide_range_is_novel() {
        let mut d = UnivariateDetector::new(UnivariateConfig::default());
        // A square wave between 0 and 10: mean 5, spread 5, every value on one of two levels.
        for i in 0..600 {
            d.update(if i % 2 == 0 { 0.0 } else { 10.0 });
        }
        // 13 is barely more than half a spread above the mean, but nothing ever got there.
        let s = d.update(13.0);
        assert_eq!(s.cause, Cause::Novelty);
        assert!(s.score > 0.7, "{s:?}");
    }

    #[test]
    fn a_sudden_step_in_a_trend_is_a_change() {
        let mut d = UnivariateDetector::new(UnivariateConfig::default());
        for i in 0..1000 {
            d.update(i as f64 + 0.1 * noise(i));
        }
        // On a ramp the level is always far from the mean; the change is what stands out.
        let s = d.update(1000.0 + 40.0);
        assert_eq!(s.cause, Cause::Change);
        assert!(s.raw > 0.9, "{s:?}");
    }

    #[test]
    fn nothing_scores_before_warm_up_and_flat_series_stay_quiet() {
        let mut d = UnivariateDetector::new(UnivariateConfig::default());
        assert_eq!(d.update(5.0).raw, 0.0);
        for _ in 0..100 {
            assert_eq!(d.update(5.0).raw, 0.0);
        }
        assert!(d.update(6.0).raw > 0.7);
    }
}
