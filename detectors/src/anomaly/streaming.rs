//! Streaming scoring of one univariate series: each point is scored by an isolation forest
//! trained only on earlier points. Points become shingles (the last `shingle` values,
//! scaled by the recent history's spread) so temporal context counts; the forest is refit
//! every `refit_every` points on the last `history` shingles.

use linfa::traits::Fit;
use ndarray::{Array1, Array2};

use super::iforest::{IsolationForest, IsolationForestParams, dataset};

/// How the streaming detector works.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Values per shingle.
    pub shingle: usize,
    /// Shingles the forest is trained on.
    pub history: usize,
    /// Refit after this many new points.
    pub refit_every: usize,
    /// Points needed before the first fit (earlier points score 0).
    pub warm_up: usize,
    /// The forest.
    pub forest: IsolationForestParams,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            shingle: 8,
            history: 2000,
            refit_every: 100,
            warm_up: 200,
            forest: IsolationForestParams::default(),
        }
    }
}

/// The shingle ending at `i` (earlier values repeat the first one at the start).
fn shingle(values: &[f64], i: usize, len: usize) -> Vec<f64> {
    (0..len)
        .map(|k| values[i.saturating_sub(len - 1 - k)])
        .collect()
}

/// Scores every point of `values` from earlier points only.
pub fn score_series(values: &[f64], config: &StreamConfig) -> Vec<f64> {
    let mut scores = vec![0.0; values.len()];
    let mut model: Option<IsolationForest> = None;
    let mut since_fit = 0;
    for (i, out) in scores.iter_mut().enumerate() {
        if i >= config.warm_up && (model.is_none() || since_fit >= config.refit_every) {
            let from = i.saturating_sub(config.history);
            let rows: Vec<Vec<f64>> = (from..i)
                .map(|j| shingle(values, j, config.shingle))
                .collect();
            let flat: Vec<f64> = rows.iter().flatten().copied().collect();
            if let Ok(x) = Array2::from_shape_vec((rows.len(), config.shingle), flat) {
                model = config.forest.fit(&dataset(x)).ok();
            }
            since_fit = 0;
        }
        if let Some(m) = &model {
            *out = m.score(Array1::from(shingle(values, i, config.shingle)).view());
        }
        since_fit += 1;
    }
    scores
}
