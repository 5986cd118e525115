//! NAB scoring: per-row weights from the scaled sigmoid (true positives worth most at a
//! window's left edge, false positives costing less right after a window), one threshold per
//! profile swept over the whole corpus, normalised so the null detector scores 0 and the
//! perfect one 100.

use serde::Serialize;

use super::corpus::LabeledSeries;

/// A cost profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    /// NAB's name for it.
    pub name: &'static str,
    /// Weight of a true positive.
    pub tp: f64,
    /// Weight of a missed window.
    pub fn_: f64,
    /// Weight of a false positive.
    pub fp: f64,
}

/// NAB's three profiles.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fn_: 1.0,
        fp: 0.11,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fn_: 1.0,
        fp: 0.22,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fn_: 2.0,
        fp: 0.11,
    },
];

/// `2 * sigmoid(-5y) - 1`, and -1 beyond y = 3.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// A profile's result over a set of files.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileScore {
    /// The profile.
    pub profile: &'static str,
    /// The best threshold found (rows scoring at least this are detections).
    pub threshold: f64,
    /// Raw score at that threshold.
    pub raw: f64,
    /// Raw score of the null detector.
    pub null: f64,
    /// Raw score of the perfect detector.
    pub perfect: f64,
    /// `100 (raw - null) / (perfect - null)`.
    pub normalized: f64,
    /// Windows with a detection.
    pub true_positives: usize,
    /// Windows without one.
    pub false_negatives: usize,
    /// Detections outside every window.
    pub false_positives: usize,
}

impl ProfileScore {
    /// Column titles matching the `Display` form.
    pub const HEADER: &'static str = "profile                score  threshold   TP   FN     FP";
}

impl std::fmt::Display for ProfileScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<20} {:>7.1} {:>10.4} {:>4} {:>4} {:>6}",
            self.profile,
            self.normalized,
            self.threshold,
            self.true_positives,
            self.false_negatives,
            self.false_positives
        )
    }
}

/// What a scored row contributes when detected.
#[derive(Debug, Clone, Copy)]
struct Row {
    score: f64,
    /// Global window index for a row inside a window.
    window: Option<usize>,
    /// Scaled-sigmoid weight before the profile's weights.
    weight: f64,
}

/// The rows of one file that count (after probation), with their weights.
fn rows(series: &LabeledSeries, scores: &[f64], first_window: usize, out: &mut Vec<Row>) {
    let mut prev: Option<(usize, usize)> = None;
    let mut w = 0;
    for (i, &score) in scores.iter().enumerate().take(series.values.len()) {
        while w < series.windows.len() && i > series.windows[w].1 {
            prev = Some(series.windows[w]);
            w += 1;
        }
        let inside = series.windows.get(w).filter(|(l, _)| i >= *l);
        let (window, weight) = match (inside, prev) {
            (Some(&(left, right)), _) => {
                let width = (right - left + 1) as f64;
                let y = -((right - i + 1) as f64) / width;
                (
                    Some(first_window + w),
                    scaled_sigmoid(y) / scaled_sigmoid(-1.0),
                )
            }
            (None, None) => (None, -1.0),
            (None, Some((left, right))) => {
                let width = (right - left + 1) as f64;
                let past = i.abs_diff(right) as f64 / (width - 1.0).max(1.0);
                (None, scaled_sigmoid(past))
            }
        };
        if i >= series.probation() {
            out.push(Row {
                score,
                window,
                weight,
            });
        }
    }
}

/// Scores `scores[f]` (one anomaly score per row of `series[f]`) under `profile`, sweeping
/// the single threshold that maximises the total over all files.
pub fn score(series: &[LabeledSeries], scores: &[Vec<f64>], profile: Profile) -> ProfileScore {
    let mut all = Vec::new();
    let mut windows = 0;
    for (s, sc) in series.iter().zip(scores) {
        rows(s, sc, windows, &mut all);
        windows += s.windows.len();
    }
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    let null = -profile.fn_ * windows as f64;
    let perfect = profile.tp * windows as f64;
    let mut best_window = vec![f64::NAN; windows];
    let mut total = null;
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best = (total, f64::INFINITY, 0usize, 0usize);
    let mut i = 0;
    while i < all.len() {
        let threshold = all[i].score;
        while i < all.len() && all[i].score == threshold {
            let r = all[i];
            match r.window {
                Some(w) => {
                    let gain = r.weight * profile.tp;
                    if best_window[w].is_nan() {
                        total += profile.fn_ + gain;
                        best_window[w] = gain;
                        tp += 1;
                    } else if gain > best_window[w] {
                        total += gain - best_window[w];
                        best_window[w] = gain;
                    }
                }
                None => {
                    total += r.weight * profile.fp;
                    fp += 1;
                }
            }
            i += 1;
        }
        if total > best.0 {
            best = (total, threshold, tp, fp);
        }
    }
    let (raw, threshold, true_positives, false_positives) = best;
    ProfileScore {
        profile: profile.name,
        threshold,
        raw,
        null,
        perfect,
        normalized: if perfect > null {
            100.0 * (raw - null) / (perfect - null)
        } else {
            0.0
        },
        true_positives,
        false_negatives: windows - true_positives,
        false_positives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, windows: Vec<(usize, usize)>) -> LabeledSeries {
        LabeledSeries {
            name: "cat/file.csv".into(),
            timestamps: Vec::new(),
            values: vec![0.0; n],
            windows,
        }
    }

    #[test]
    fn null_scores_zero_and_perfect_one_hundred() {
        let s = vec![series(100, vec![(40, 49), (70, 79)]), series(50, vec![])];
        let null = vec![vec![0.0; 100], vec![0.0; 50]];
        let mut perfect = null.clone();
        perfect[0][40] = 1.0;
        perfect[0][70] = 1.0;
        for p in PROFILES {
            assert_eq!(score(&s, &null, p).normalized, 0.0, "{}", p.name);
            let top = score(&s, &perfect, p);
            assert!((top.normalized - 100.0).abs() < 1e-9, "{}: {top:?}", p.name);
            assert_eq!((top.true_positives, top.false_positives), (2, 0));
        }
    }

    #[test]
    fn a_hand_worked_file() {
        // 20 rows, probation 3, one window over rows 8..=11 (width 4). Detections: row 2
        // (in probation, ignored), row 9 (inside) and row 15 (after the window).
        let s = vec![series(20, vec![(8, 11)])];
        let mut scores = vec![0.0; 20];
        scores[2] = 0.95;
        scores[9] = 0.9;
        scores[15] = 0.8;
        // Row 9: y = -(11 - 9 + 1)/4 = -0.75 → scaledSigmoid(-0.75)/scaledSigmoid(-1) =
        // 0.954045/0.986614 = 0.966989. Adding row 15 would cost
        // 0.11 × scaledSigmoid(4/3) = -0.109720, so the best threshold is 0.9.
        let r = score(&s, &[scores.clone()], PROFILES[0]);
        assert!((r.raw - 0.966_989_087_800_060_5).abs() < 1e-12, "{r:?}");
        assert_eq!(r.threshold, 0.9);
        assert!((r.normalized - 98.349_454_390_003_02).abs() < 1e-9);
        // reward_low_FN_rate: null = -2, perfect = 1.
        let low_fn = score(&s, &[scores], PROFILES[2]);
        assert!((low_fn.normalized - 98.899_636_260_002_01).abs() < 1e-9);
    }

    #[test]
    fn scaled_sigmoid_matches_its_definition() {
        assert!((scaled_sigmoid(0.0) - 0.0).abs() < 1e-12);
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298_151_430_3).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }
}
