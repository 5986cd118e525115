//! Bayesian online changepoint detection (Adams & MacKay 2007) for one series: a posterior
//! over the run length (points since the last change), updated point by point, with a
//! normal model of unknown mean and variance per run (normal-inverse-gamma prior, Student-t
//! predictive) and a constant hazard. Each point may also be an outlier that belongs to no
//! level (a small share, spread over a wide range), so one spike does not end a run. A
//! level shift shows as the posterior moving to a run that started a few points ago and has
//! held since.
//!
//! Written here rather than taken from augurs' `changepoint` feature: that wraps the
//! `changepoint` crate, which brings a second `ndarray`, `nalgebra`, `peroxide` and two
//! versions of `rv` into the build for a hundred lines of arithmetic.

use std::collections::VecDeque;

use super::univariate::NoiseFloor;

/// How changes are modelled.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangepointConfig {
    /// Expected points between changes (the hazard is its inverse).
    pub expected_run: f64,
    /// Run lengths tracked one by one. Longer runs share one slot, which bounds the cost per
    /// point; it must exceed `recent`.
    pub exact_runs: usize,
    /// Points that describe the level of the runs longer than `exact_runs` (the latest ones).
    pub max_run: usize,
    /// Points a new level must have held for before it counts as a change.
    pub min_held: usize,
    /// Changes that started longer ago than this are old news.
    pub recent: usize,
    /// Points used to set the prior's centre and spread before anything is scored.
    pub warm_up: usize,
    /// Share of points that are outliers, explained by no level.
    pub outlier_share: f64,
    /// Width of the range outliers spread over, in the prior's standard deviations.
    pub outlier_width: f64,
}

impl Default for ChangepointConfig {
    fn default() -> Self {
        ChangepointConfig {
            expected_run: 250.0,
            exact_runs: 16,
            max_run: 120,
            min_held: 2,
            recent: 6,
            warm_up: 10,
            outlier_share: 0.01,
            outlier_width: 100.0,
        }
    }
}

/// The sufficient statistics of one run (normal-inverse-gamma posterior) with its
/// predictive density's parameters, which change only when a point joins the run.
#[derive(Debug, Clone, Copy)]
struct Run {
    mean: f64,
    kappa: f64,
    alpha: f64,
    beta: f64,
    /// Points in the run; with the prior's `alpha = 1` the predictive's degrees of freedom
    /// are `2 + points`.
    points: usize,
    /// The predictive's density at its centre.
    peak: f64,
    /// `1 / (dof · scale²)`, so `z² / dof` is one multiplication.
    inv_spread: f64,
}

impl Run {
    fn new(mean: f64, beta: f64, constants: &[f64]) -> Run {
        Run {
            mean,
            kappa: 1.0,
            alpha: 1.0,
            beta,
            points: 0,
            peak: 0.0,
            inv_spread: 0.0,
        }
        .with_predictive(constants)
    }

    /// Sets the Student-t predictive's parameters from the statistics.
    fn with_predictive(mut self, constants: &[f64]) -> Run {
        let dof = 2.0 * self.alpha;
        let scale2 = self.beta * (self.kappa + 1.0) / (self.alpha * self.kappa);
        let constant = constants
            .get(self.points)
            .copied()
            .unwrap_or_else(|| t_constant(dof));
        self.peak = constant / scale2.sqrt();
        self.inv_spread = 1.0 / (dof * scale2);
        self
    }

    /// Student-t predictive density of `x`.
    fn predictive(&self, x: f64) -> f64 {
        let u = (x - self.mean).powi(2) * self.inv_spread;
        let exponent = -(self.alpha + 0.5);
        self.peak * (exponent * u.ln_1p()).exp()
    }

    /// The prior after the points `level` describes, as if each had been added in turn.
    fn after(&self, level: &Level, constants: &[f64]) -> Run {
        let n = level.values.len() as f64;
        if n == 0.0 {
            return *self;
        }
        let (mean, squares) = level.moments();
        Run {
            mean: (self.kappa * self.mean + n * mean) / (self.kappa + n),
            kappa: self.kappa + n,
            alpha: self.alpha + n / 2.0,
            beta: self.beta
                + squares / 2.0
                + self.kappa * n * (mean - self.mean).powi(2) / (2.0 * (self.kappa + n)),
            points: self.points + level.values.len(),
            peak: 0.0,
            inv_spread: 0.0,
        }
        .with_predictive(constants)
    }

    fn updated(&self, x: f64, constants: &[f64]) -> Run {
        Run {
            mean: (self.kappa * self.mean + x) / (self.kappa + 1.0),
            kappa: self.kappa + 1.0,
            alpha: self.alpha + 0.5,
            beta: self.beta + self.kappa * (x - self.mean).powi(2) / (2.0 * (self.kappa + 1.0)),
            points: self.points + 1,
            peak: 0.0,
            inv_spread: 0.0,
        }
        .with_predictive(constants)
    }
}

/// The Student-t density's normalising constant for unit scale:
/// `Γ((ν + 1) / 2) / (Γ(ν / 2) √(νπ))`.
fn t_constant(dof: f64) -> f64 {
    (ln_gamma((dof + 1.0) / 2.0) - ln_gamma(dof / 2.0) - 0.5 * (dof * std::f64::consts::PI).ln())
        .exp()
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, n = 9; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |s, (i, c)| s + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The latest points with running sums, so the level of a long run costs no more per point
/// than a short one. Sums are kept relative to `origin` (the prior's mean) so they stay exact
/// for values far from zero, and are recomputed once per pass through the window.
#[derive(Debug, Clone)]
struct Level {
    values: VecDeque<f64>,
    capacity: usize,
    origin: f64,
    sum: f64,
    squares: f64,
    since_exact: usize,
}

impl Level {
    fn new(capacity: usize, origin: f64) -> Level {
        Level {
            values: VecDeque::with_capacity(capacity + 1),
            capacity: capacity.max(1),
            origin,
            sum: 0.0,
            squares: 0.0,
            since_exact: 0,
        }
    }

    fn push(&mut self, x: f64) {
        let y = x - self.origin;
        self.values.push_back(x);
        self.sum += y;
        self.squares += y * y;
        if self.values.len() > self.capacity
            && let Some(old) = self.values.pop_front()
        {
            let y = old - self.origin;
            self.sum -= y;
            self.squares -= y * y;
        }
        self.since_exact += 1;
        if self.since_exact >= self.capacity {
            let origin = self.origin;
            self.sum = self.values.iter().map(|v| v - origin).sum();
            self.squares = self.values.iter().map(|v| (v - origin).powi(2)).sum();
            self.since_exact = 0;
        }
    }

    /// The mean and the sum of squared deviations from it.
    fn moments(&self) -> (f64, f64) {
        let n = self.values.len().max(1) as f64;
        let mean = self.sum / n;
        (
            self.origin + mean,
            (self.squares - n * mean * mean).max(0.0),
        )
    }
}

/// One run length's share of the posterior and its statistics.
#[derive(Debug, Clone, Copy)]
struct Slot {
    probability: f64,
    run: Run,
}

/// The detector's state for one series.
#[derive(Debug, Clone)]
pub struct Changepoints {
    config: ChangepointConfig,
    /// The first points, until the prior is set.
    warm: Vec<f64>,
    prior: Option<Run>,
    /// The run-length posterior for short runs, newest first: `slots[r]` is the run that has
    /// lasted `r` points.
    slots: VecDeque<Slot>,
    /// The posterior of every run longer than the slots, whose level is `level`'s.
    long: f64,
    level: Level,
    /// `t_constant(2 + n)` for every run size `n` the posterior can hold.
    constants: Vec<f64>,
    /// The smallest standard deviation the prior assumes, given its mean.
    floor: NoiseFloor,
    /// Density of a point as an outlier.
    outlier: f64,
}

/// What the posterior says after a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Probability that a new level began between `min_held` and `recent` points ago.
    pub probability: f64,
    /// The most probable run length; runs longer than `exact_runs` count as `exact_runs`.
    pub run_length: usize,
}

impl Changepoints {
    /// A detector whose prior spread is at least `floor`.
    pub fn new(config: ChangepointConfig, floor: NoiseFloor) -> Self {
        Changepoints {
            warm: Vec::with_capacity(config.warm_up),
            prior: None,
            slots: VecDeque::with_capacity(config.exact_runs + 2),
            long: 0.0,
            level: Level::new(config.max_run, 0.0),
            constants: Vec::new(),
            config,
            floor,
            outlier: 0.0,
        }
    }

    /// Run lengths kept apart; longer ones share the long slot.
    fn exact_runs(&self) -> usize {
        self.config.exact_runs.max(self.config.recent + 1)
    }

    /// Learns `x` and returns the posterior's verdict (none while warming up or for a value
    /// that is not finite, which is skipped).
    pub fn update(&mut self, x: f64) -> Option<Verdict> {
        if !x.is_finite() {
            return None;
        }
        let Some(prior) = self.prior else {
            self.warm.push(x);
            if self.warm.len() >= self.config.warm_up.max(2) {
                self.set_prior();
            }
            return None;
        };
        self.step(x, prior);
        let (lo, hi) = (
            self.config.min_held,
            self.config.recent.max(self.config.min_held),
        );
        let probability = self
            .slots
            .iter()
            .take(hi)
            .skip(lo)
            .map(|s| s.probability)
            .sum();
        let run_length = self
            .slots
            .iter()
            .map(|s| s.probability)
            .chain([self.long])
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(r, _)| r);
        Some(Verdict {
            probability,
            run_length,
        })
    }

    /// Sets the prior from the warm-up points and runs them through the posterior.
    fn set_prior(&mut self) {
        let n = self.warm.len() as f64;
        let mean = self.warm.iter().sum::<f64>() / n;
        let var = self.warm.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let beta = var.max(self.floor.of(mean).powi(2)).max(f64::MIN_POSITIVE);
        let longest = self.exact_runs().max(self.config.max_run);
        self.constants = (0..=longest)
            .map(|points| t_constant(2.0 + points as f64))
            .collect();
        let prior = Run::new(mean, beta, &self.constants);
        self.prior = Some(prior);
        let share = self.config.outlier_share.clamp(0.0, 0.5);
        self.outlier = share / (self.config.outlier_width.max(1.0) * beta.sqrt());
        self.restart(prior, None);
        for v in std::mem::take(&mut self.warm) {
            self.step(v, prior);
        }
    }

    /// Forgets everything but the prior and, if given, one point.
    fn restart(&mut self, prior: Run, x: Option<f64>) {
        self.slots.clear();
        self.long = 0.0;
        self.level = Level::new(self.config.max_run, prior.mean);
        let run = match x {
            Some(x) => {
                self.level.push(x);
                prior.updated(x, &self.constants)
            }
            None => prior,
        };
        self.slots.push_back(Slot {
            probability: 1.0,
            run,
        });
    }

    /// One point through the posterior, in place: every run grows by `x` or ends before it.
    fn step(&mut self, x: f64, prior: Run) {
        let hazard = 1.0 / self.config.expected_run.max(1.0);
        let keep = 1.0 - self.config.outlier_share.clamp(0.0, 0.5);
        let likelihood = |run: &Run| keep * run.predictive(x) + self.outlier;
        let long = self.long * likelihood(&prior.after(&self.level, &self.constants));
        let mut change = long * hazard;
        let mut total = long;
        self.long = long * (1.0 - hazard);
        for slot in &mut self.slots {
            let w = slot.probability * likelihood(&slot.run);
            change += w * hazard;
            slot.probability = w * (1.0 - hazard);
            total += w;
            slot.run = slot.run.updated(x, &self.constants);
        }
        self.slots.push_front(Slot {
            probability: change,
            run: prior,
        });
        if self.slots.len() > self.exact_runs()
            && let Some(oldest) = self.slots.pop_back()
        {
            self.long += oldest.probability;
        }
        self.level.push(x);
        if total > 0.0 && total.is_finite() {
            self.slots.iter_mut().for_each(|s| s.probability /= total);
            self.long /= total;
        } else {
            // Nothing explains the point (it underflowed everywhere): start afresh from it.
            self.restart(prior, Some(x));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floor(absolute: f64) -> NoiseFloor {
        NoiseFloor {
            relative: 0.0,
            absolute,
        }
    }

    fn noise(i: usize) -> f64 {
        // Deterministic, roughly uniform in [-1, 1].
        ((i as f64) * 12.9898).sin() * 43_758.545_3 % 1.0
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        for (x, want) in [
            (1.0, 0.0),
            (2.0, 0.0),
            (0.5, std::f64::consts::PI.sqrt().ln()),
            (5.0, 24f64.ln()),
            (10.5, 13.940_625_219_403_763),
        ] {
            assert!((ln_gamma(x) - want).abs() < 1e-10, "{x}: {}", ln_gamma(x));
        }
    }

    #[test]
    fn the_student_t_constant_matches_closed_forms() {
        // ν = 1 is the Cauchy density, ν = 2 has Γ(3/2) = √π / 2, and ν → ∞ is the normal.
        assert!((t_constant(1.0) - std::f64::consts::FRAC_1_PI).abs() < 1e-12);
        assert!((t_constant(2.0) - 1.0 / 8f64.sqrt()).abs() < 1e-12);
        let normal = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        assert!((t_constant(1e7) - normal).abs() < 1e-7);
        // The tabled density of a run equals the textbook one.
        let constants: Vec<f64> = (0..10).map(|n| t_constant(2.0 + n as f64)).collect();
        let run = Run::new(3.0, 2.0, &constants).updated(4.0, &constants);
        let (dof, scale2) = (3.0, run.beta * (run.kappa + 1.0) / (run.alpha * run.kappa));
        let x: f64 = 5.5;
        let want = t_constant(dof) / scale2.sqrt()
            * (1.0 + (x - run.mean).powi(2) / (dof * scale2)).powf(-(dof + 1.0) / 2.0);
        assert!(
            (run.predictive(x) - want).abs() < 1e-12 * want,
            "{}",
            run.predictive(x)
        );
    }

    #[test]
    fn a_long_run_from_running_sums_equals_one_grown_point_by_point() {
        let constants: Vec<f64> = (0..200).map(|n| t_constant(2.0 + n as f64)).collect();
        let prior = Run::new(1_000.0, 0.5, &constants);
        let mut level = Level::new(40, prior.mean);
        let mut grown = prior;
        for i in 0..140 {
            let x = 1_000.0 + 3.0 * noise(i) + (i / 70) as f64;
            level.push(x);
            // Only the latest 40 points describe the long run.
            grown = if i >= 100 {
                grown.updated(x, &constants)
            } else {
                prior
            };
        }
        let summed = prior.after(&level, &constants);
        for (a, b) in [
            (summed.mean, grown.mean),
            (summed.kappa, grown.kappa),
            (summed.alpha, grown.alpha),
            (summed.beta, grown.beta),
            (summed.peak, grown.peak),
        ] {
            assert!(
                (a - b).abs() < 1e-9 * b.abs(),
                "{summed:?} against {grown:?}"
            );
        }
        assert_eq!(summed.points, 40);
    }

    #[test]
    fn a_level_shift_is_found_once_it_holds_and_noise_is_not() {
        let mut d = Changepoints::new(ChangepointConfig::default(), floor(0.01));
        let mut quiet = 0.0f64;
        for i in 0..300 {
            let v = d.update(10.0 + noise(i));
            if i >= 50 {
                quiet = quiet.max(v.map_or(0.0, |v| v.probability));
            }
        }
        assert!(quiet < 0.2, "noise alone reached {quiet}");
        // A shift of 3 standard deviations of the noise (uniform in ±1: sd 0.58).
        let after: Vec<Verdict> = (300..306)
            .filter_map(|i| d.update(11.7 + noise(i)))
            .collect();
        assert!(after[0].probability < 0.5, "{after:?}");
        let found = after.iter().position(|v| v.probability > 0.9);
        assert!(matches!(found, Some(1..=3)), "{after:?}");
        // Held long enough, the new level is simply the current run.
        for i in 306..330 {
            d.update(11.7 + noise(i));
        }
        let settled = d.update(11.7).unwrap();
        assert!(settled.probability < 0.1, "{settled:?}");
        // Long runs share one slot, so the longest is reported as `exact_runs`.
        let long = ChangepointConfig::default().exact_runs;
        assert!(settled.run_length >= long.min(20), "{settled:?}");
    }

    #[test]
    fn a_single_spike_is_not_a_change() {
        let mut d = Changepoints::new(ChangepointConfig::default(), floor(0.01));
        for i in 0..300 {
            d.update(10.0 + noise(i));
        }
        let mut worst = 0.0f64;
        for (k, i) in (300..310).enumerate() {
            let x = if k == 0 { 30.0 } else { 10.0 + noise(i) };
            worst = worst.max(d.update(x).unwrap().probability);
        }
        assert!(worst < 0.5, "{worst}");
    }

    #[test]
    fn flat_series_and_missing_values_are_handled() {
        let mut d = Changepoints::new(ChangepointConfig::default(), floor(0.5));
        for _ in 0..50 {
            assert!(d.update(5.0).is_none_or(|v| v.probability < 0.1));
        }
        assert_eq!(d.update(f64::NAN), None);
        assert!(d.update(5.0).unwrap().probability < 0.1);
        assert!(d.slots.len() <= ChangepointConfig::default().exact_runs);
    }
}
