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

use super::univariate::NoiseFloor;

/// How changes are modelled.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangepointConfig {
    /// Expected points between changes (the hazard is its inverse).
    pub expected_run: f64,
    /// Longest run length tracked; longer runs are folded into it, which bounds the cost per
    /// point.
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
            max_run: 120,
            min_held: 2,
            recent: 6,
            warm_up: 10,
            outlier_share: 0.01,
            outlier_width: 100.0,
        }
    }
}

/// The sufficient statistics of one run (normal-inverse-gamma posterior).
#[derive(Debug, Clone, Copy)]
struct Run {
    mean: f64,
    kappa: f64,
    alpha: f64,
    beta: f64,
}

impl Run {
    /// Student-t predictive log density of `x`.
    fn log_predictive(&self, x: f64) -> f64 {
        let dof = 2.0 * self.alpha;
        let scale2 = self.beta * (self.kappa + 1.0) / (self.alpha * self.kappa);
        let z2 = (x - self.mean).powi(2) / scale2;
        ln_gamma((dof + 1.0) / 2.0)
            - ln_gamma(dof / 2.0)
            - 0.5 * (dof * std::f64::consts::PI * scale2).ln()
            - (dof + 1.0) / 2.0 * (1.0 + z2 / dof).ln()
    }

    fn updated(&self, x: f64) -> Run {
        Run {
            mean: (self.kappa * self.mean + x) / (self.kappa + 1.0),
            kappa: self.kappa + 1.0,
            alpha: self.alpha + 0.5,
            beta: self.beta + self.kappa * (x - self.mean).powi(2) / (2.0 * (self.kappa + 1.0)),
        }
    }
}

/// `ln(e^a + e^b)` without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
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

/// The detector's state for one series.
#[derive(Debug, Clone)]
pub struct Changepoints {
    config: ChangepointConfig,
    /// The first points, until the prior is set.
    warm: Vec<f64>,
    prior: Option<Run>,
    /// Run-length posterior: `probability[r]` that the current run has lasted `r` points.
    probability: Vec<f64>,
    runs: Vec<Run>,
    /// The smallest standard deviation the prior assumes, given its mean.
    floor: NoiseFloor,
    /// Log density of a point as an outlier.
    log_outlier: f64,
}

/// What the posterior says after a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Probability that a new level began between `min_held` and `recent` points ago.
    pub probability: f64,
    /// The most probable run length.
    pub run_length: usize,
}

impl Changepoints {
    /// A detector whose prior spread is at least `floor`.
    pub fn new(config: ChangepointConfig, floor: NoiseFloor) -> Self {
        Changepoints {
            warm: Vec::with_capacity(config.warm_up),
            config,
            prior: None,
            probability: Vec::new(),
            runs: Vec::new(),
            floor,
            log_outlier: f64::NEG_INFINITY,
        }
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
                let n = self.warm.len() as f64;
                let mean = self.warm.iter().sum::<f64>() / n;
                let var = self.warm.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                let prior = Run {
                    mean,
                    kappa: 1.0,
                    alpha: 1.0,
                    beta: var.max(self.floor.of(mean).powi(2)).max(f64::MIN_POSITIVE),
                };
                self.prior = Some(prior);
                let share = self.config.outlier_share.clamp(0.0, 0.5);
                let width = self.config.outlier_width.max(1.0) * prior.beta.sqrt();
                self.log_outlier = share.ln() - width.ln();
                self.probability = vec![1.0];
                self.runs = vec![prior];
                for v in std::mem::take(&mut self.warm) {
                    self.step(v, prior);
                }
            }
            return None;
        };
        self.step(x, prior);
        let (lo, hi) = (
            self.config.min_held,
            self.config.recent.max(self.config.min_held),
        );
        let probability = self
            .probability
            .iter()
            .enumerate()
            .filter(|(r, _)| (lo..hi).contains(r))
            .map(|(_, p)| p)
            .sum();
        let run_length = self
            .probability
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(r, _)| r);
        Some(Verdict {
            probability,
            run_length,
        })
    }

    fn step(&mut self, x: f64, prior: Run) {
        let hazard = 1.0 / self.config.expected_run.max(1.0);
        let keep = (1.0 - self.config.outlier_share.clamp(0.0, 0.5)).ln();
        let logs: Vec<f64> = self
            .runs
            .iter()
            .map(|r| log_add(keep + r.log_predictive(x), self.log_outlier))
            .collect();
        // Scaled by the largest predictive so nothing underflows; normalising removes it.
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut grown = Vec::with_capacity(self.probability.len() + 1);
        let mut change = 0.0;
        for (p, l) in self.probability.iter().zip(&logs) {
            let w = p * (l - top).exp();
            grown.push(w * (1.0 - hazard));
            change += w * hazard;
        }
        let mut probability = Vec::with_capacity(grown.len() + 1);
        probability.push(change);
        probability.extend(grown);
        let mut runs = Vec::with_capacity(self.runs.len() + 1);
        runs.push(prior);
        runs.extend(self.runs.iter().map(|r| r.updated(x)));
        let max = self.config.max_run.max(self.config.recent + 1);
        if probability.len() > max {
            // The longest runs merge into one, which keeps the longer statistics.
            let tail: f64 = probability[max - 1..].iter().sum();
            probability.truncate(max);
            probability[max - 1] = tail;
            runs.truncate(max);
        }
        let total: f64 = probability.iter().sum();
        if total > 0.0 && total.is_finite() {
            probability.iter_mut().for_each(|p| *p /= total);
            self.probability = probability;
            self.runs = runs;
        } else {
            // Nothing explains the point (it underflowed everywhere): start afresh from it.
            self.probability = vec![1.0];
            self.runs = vec![prior.updated(x)];
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
        assert!(settled.run_length >= 20, "{settled:?}");
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
        assert!(d.probability.len() <= ChangepointConfig::default().max_run);
    }
}
