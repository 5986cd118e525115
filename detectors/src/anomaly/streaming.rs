//! A streaming isolation forest over one univariate series: each point is scored by a
//! forest trained only on earlier points. Points become shingles (the last `shingle`
//! values) so temporal context counts; the forest is refit every `refit_every` points on
//! the last `history` shingles.

use std::collections::VecDeque;

use linfa::traits::Fit;
use ndarray::{Array2, ArrayView1};

use super::iforest::{IsolationForest, IsolationForestParams, dataset};

/// How the streaming forest works.
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

/// The forest and the recent values it is trained on.
#[derive(Debug, Clone)]
pub struct ShingleForest {
    config: StreamConfig,
    /// The last `history + shingle - 1` values, oldest first.
    values: VecDeque<f64>,
    model: Option<IsolationForest>,
    since_fit: usize,
    seen: usize,
}

impl ShingleForest {
    /// An untrained forest.
    pub fn new(config: StreamConfig) -> Self {
        ShingleForest {
            values: VecDeque::with_capacity(config.history + config.shingle),
            config,
            model: None,
            since_fit: 0,
            seen: 0,
        }
    }

    /// Whether the forest has been fitted.
    pub fn warmed_up(&self) -> bool {
        self.model.is_some()
    }

    /// The shingle ending at `values[end]` (earlier values repeat the first one).
    fn shingle(&self, end: usize, out: &mut Vec<f64>) {
        let len = self.config.shingle;
        out.extend((0..len).map(|k| self.values[end.saturating_sub(len - 1 - k)]));
    }

    fn refit(&mut self) {
        let len = self.config.shingle;
        let first = self.values.len().saturating_sub(self.config.history);
        let rows = self.values.len() - first;
        let mut flat = Vec::with_capacity(rows * len);
        for end in first..self.values.len() {
            self.shingle(end, &mut flat);
        }
        if let Ok(x) = Array2::from_shape_vec((rows, len), flat) {
            self.model = self.config.forest.fit(&dataset(x)).ok();
        }
        self.since_fit = 0;
    }

    /// Scores `x` against the forest of earlier points (0 while warming up), then adds it.
    pub fn update(&mut self, x: f64) -> f64 {
        if self.seen >= self.config.warm_up
            && (self.model.is_none() || self.since_fit >= self.config.refit_every)
        {
            self.refit();
        }
        self.values.push_back(x);
        if self.values.len() > self.config.history + self.config.shingle - 1 {
            self.values.pop_front();
        }
        self.seen += 1;
        self.since_fit += 1;
        let Some(model) = &self.model else {
            return 0.0;
        };
        let mut row = Vec::with_capacity(self.config.shingle);
        self.shingle(self.values.len() - 1, &mut row);
        model.score(ArrayView1::from(&row))
    }
}

/// Scores every point of `values` from earlier points only.
pub fn score_series(values: &[f64], config: &StreamConfig) -> Vec<f64> {
    let mut forest = ShingleForest::new(config.clone());
    values.iter().map(|&v| forest.update(v)).collect()
}
