//! Isolation forest (Liu, Ting & Zhou, 2008) as a linfa estimator over `ndarray`: each tree
//! isolates a random subsample with random axis-parallel splits; anomalies are isolated in
//! few splits. Score `s(x) = 2^(-E[h(x)] / c(ψ))`, with `c(n)` the average path length of an
//! unsuccessful search in a binary search tree of `n` points.

use linfa::dataset::{DatasetBase, Records};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, Array2, ArrayBase, ArrayView1, Data, Ix2};

use super::rng::Rng;

/// Euler–Mascheroni constant.
const EULER: f64 = 0.577_215_664_901_532_9;

/// `c(n)`: `2 H(n-1) - 2 (n-1) / n` for `n > 2`, 1 for `n = 2`, 0 below; `H(i) ≈ ln i + γ`.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER) - 2.0 * (n - 1.0) / n
        }
    }
}

/// Why a forest could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum IForestError {
    /// No rows, or no features.
    #[error("an isolation forest needs at least one row and one feature")]
    Empty,
    /// Invalid parameters.
    #[error("invalid parameters: {0}")]
    Params(String),
    /// From linfa.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

/// Hyper-parameters; the defaults are the paper's: 100 trees of 256 samples, height limit
/// `ceil(log2 256)` = 8.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForestParams {
    /// Trees.
    pub trees: usize,
    /// Subsample size ψ per tree.
    pub sample_size: usize,
    /// Seed for subsampling and splits.
    pub seed: u64,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            trees: 100,
            sample_size: 256,
            seed: 42,
        }
    }
}

/// One node of a tree stored in pre-order: a split's left child is the next node, its right
/// child `right` nodes further on. A leaf has `feature == LEAF` and the points it holds in
/// `right`. All trees share one array of 8-byte nodes (eight to a cache line), which is what
/// scoring many forests per window waits on.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// The split value, rounded to `f32` before the sample is split on it.
    value: f32,
    feature: u16,
    right: u16,
}

/// `Node::feature` of a leaf.
const LEAF: u16 = u16::MAX;

/// The largest subsample: a subtree then fits in `u16` offsets.
pub const MAX_SAMPLE_SIZE: usize = 16_384;

/// A fitted forest.
#[derive(Debug, Clone)]
pub struct IsolationForest {
    /// Every tree's nodes, tree after tree.
    nodes: Vec<Node>,
    /// Where each tree starts in `nodes`.
    roots: Vec<usize>,
    /// `c(n)` for every leaf size `n` up to ψ.
    leaf_depth: Vec<f64>,
    /// `c(ψ)`, the normaliser of path lengths.
    norm: f64,
    features: usize,
}

fn leaf(tree: &mut Vec<Node>, size: usize) {
    tree.push(Node {
        value: 0.0,
        feature: LEAF,
        right: u16::try_from(size).unwrap_or(u16::MAX),
    });
}

/// Appends the subtree isolating `rows` to `tree`, in pre-order.
fn build(
    tree: &mut Vec<Node>,
    data: &[Vec<f64>],
    rows: &mut [usize],
    depth: usize,
    limit: usize,
    rng: &mut Rng,
) {
    if depth >= limit || rows.len() <= 1 {
        return leaf(tree, rows.len());
    }
    // A random feature among those that still vary here: draw without replacement until one
    // does (usually the first), so a node costs one pass over its rows, not one per feature.
    let mut candidates: Vec<usize> = (0..data[rows[0]].len()).collect();
    let (feature, lo, hi) = loop {
        if candidates.is_empty() {
            return leaf(tree, rows.len());
        }
        let f = candidates.swap_remove(rng.below(candidates.len()));
        let (lo, hi) = rows
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(data[r][f]), hi.max(data[r][f]))
            });
        if hi > lo {
            break (f, lo, hi);
        }
    };
    let value = (lo + rng.unit() * (hi - lo)) as f32;
    let mut split = 0;
    for i in 0..rows.len() {
        if data[rows[i]][feature] < f64::from(value) {
            rows.swap(i, split);
            split += 1;
        }
    }
    let at = tree.len();
    tree.push(Node {
        value,
        // `fit` refuses more features than `u16` holds.
        feature: u16::try_from(feature).unwrap_or(LEAF - 1),
        right: 0,
    });
    let (l, r) = rows.split_at_mut(split);
    build(tree, data, l, depth + 1, limit, rng);
    tree[at].right = u16::try_from(tree.len() - at).unwrap_or(u16::MAX);
    build(tree, data, r, depth + 1, limit, rng);
}

/// Which way `x` goes at a split.
fn next(node: &Node, at: usize, x: &[f64]) -> usize {
    let left = x
        .get(node.feature as usize)
        .is_some_and(|v| *v < f64::from(node.value));
    if left {
        at + 1
    } else {
        at + usize::from(node.right)
    }
}

impl IsolationForest {
    /// `h(x)` in every tree: edges to the leaf, plus `c(size)` for the points the leaf did
    /// not separate. The trees are walked in step, one level at a time, so the memory reads
    /// of different trees overlap instead of waiting on each other.
    fn depths(&self, x: &[f64]) -> Vec<f64> {
        let mut h = vec![0.0; self.roots.len()];
        let mut at = self.roots.clone();
        let mut walking: Vec<usize> = (0..at.len()).collect();
        let mut depth = 0.0;
        while !walking.is_empty() {
            walking.retain(|&t| match self.nodes.get(at[t]) {
                Some(node) if node.feature != LEAF => {
                    at[t] = next(node, at[t], x);
                    true
                }
                node => {
                    let size = node.map_or(0, |n| usize::from(n.right));
                    h[t] = depth
                        + self
                            .leaf_depth
                            .get(size)
                            .copied()
                            .unwrap_or_else(|| average_path_length(size));
                    false
                }
            });
            depth += 1.0;
        }
        h
    }

    /// The anomaly score of `x` in (0, 1]: near 1 is anomalous, below 0.5 normal.
    pub fn score(&self, x: ArrayView1<f64>) -> f64 {
        let x = contiguous(&x);
        self.normalise(self.depths(&x).iter().sum())
    }

    /// `2^(-E[h] / c(ψ))` from the summed path lengths.
    fn normalise(&self, total: f64) -> f64 {
        let mean = total / self.roots.len().max(1) as f64;
        if self.norm > 0.0 {
            2f64.powf(-mean / self.norm)
        } else {
            0.5
        }
    }

    /// The score of `x` and each feature's share of the splits that isolated it, weighted
    /// towards short paths (a feature that isolates the point quickly matters most).
    pub fn explain(&self, x: ArrayView1<f64>) -> (f64, Vec<f64>) {
        let x = contiguous(&x);
        let h = self.depths(&x);
        let mut contributions = vec![0.0; self.features];
        // The second walk finds the nodes the first one brought into the cache.
        for (&root, h) in self.roots.iter().zip(&h) {
            let weight = 1.0 / h.max(1.0);
            let mut at = root;
            while let Some(node) = self.nodes.get(at).filter(|n| n.feature != LEAF) {
                if let Some(c) = contributions.get_mut(node.feature as usize) {
                    *c += weight;
                }
                at = next(node, at, &x);
            }
        }
        let sum: f64 = contributions.iter().sum();
        if sum > 0.0 {
            contributions.iter_mut().for_each(|c| *c /= sum);
        }
        (self.normalise(h.iter().sum()), contributions)
    }
}

/// `x`'s values in order, borrowed when they already are.
fn contiguous<'a>(x: &'a ArrayView1<f64>) -> std::borrow::Cow<'a, [f64]> {
    match x.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(x.to_vec()),
    }
}

impl<D: Data<Elem = f64>, T> Fit<ArrayBase<D, Ix2>, T, IForestError> for IsolationForestParams {
    type Object = IsolationForest;

    fn fit(
        &self,
        dataset: &DatasetBase<ArrayBase<D, Ix2>, T>,
    ) -> Result<IsolationForest, IForestError> {
        let records = dataset.records();
        let (n, features) = (records.nsamples(), records.nfeatures());
        if n == 0 || features == 0 {
            return Err(IForestError::Empty);
        }
        if self.trees == 0 || !(2..=MAX_SAMPLE_SIZE).contains(&self.sample_size) {
            return Err(IForestError::Params(format!(
                "needs at least one tree and a sample size from 2 to {MAX_SAMPLE_SIZE}"
            )));
        }
        if features >= usize::from(LEAF) {
            return Err(IForestError::Params(format!(
                "at most {} features",
                LEAF - 1
            )));
        }
        let data: Vec<Vec<f64>> = records.rows().into_iter().map(|r| r.to_vec()).collect();
        let psi = self.sample_size.min(n);
        let limit = (psi as f64).log2().ceil() as usize;
        let mut rng = Rng::new(self.seed);
        let mut all: Vec<usize> = (0..n).collect();
        let mut nodes = Vec::with_capacity(self.trees * 2 * psi);
        let mut roots = Vec::with_capacity(self.trees);
        let mut rows = Vec::with_capacity(psi);
        for _ in 0..self.trees {
            // Partial Fisher–Yates: the first ψ entries are a sample without replacement.
            for i in 0..psi {
                let j = i + rng.below(n - i);
                all.swap(i, j);
            }
            rows.clear();
            rows.extend_from_slice(&all[..psi]);
            roots.push(nodes.len());
            build(&mut nodes, &data, &mut rows, 0, limit, &mut rng);
        }
        Ok(IsolationForest {
            nodes,
            roots,
            leaf_depth: (0..=psi).map(average_path_length).collect(),
            norm: average_path_length(psi),
            features,
        })
    }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for IsolationForest {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        for (row, out) in x.rows().into_iter().zip(y.iter_mut()) {
            *out = self.score(row);
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}

/// Rows of `x` as a dataset without targets.
pub fn dataset(x: Array2<f64>) -> DatasetBase<Array2<f64>, ()> {
    DatasetBase::new(x, ())
}

#[cfg(test)]
mod tests {
    use linfa::traits::Predict;
    use ndarray::Array2;

    use super::*;

    /// 2-D standard normal points (Box–Muller) with `outliers` far ones at radius 6–8.
    fn gaussian(n: usize, outliers: usize, seed: u64) -> (Array2<f64>, Vec<bool>) {
        let mut rng = Rng::new(seed);
        let mut x = Array2::zeros((n, 2));
        let mut labels = vec![false; n];
        for i in 0..n {
            let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
            let r = (-2.0 * u1.ln()).sqrt();
            let angle = 2.0 * std::f64::consts::PI * u2;
            let (mut a, mut b) = (r * angle.cos(), r * angle.sin());
            if i < outliers {
                let radius = 6.0 + 2.0 * rng.unit();
                a = radius * angle.cos();
                b = radius * angle.sin();
                labels[i] = true;
            }
            x[[i, 0]] = a;
            x[[i, 1]] = b;
        }
        (x, labels)
    }

    /// Area under the ROC curve: the chance a random outlier outscores a random inlier.
    fn auc(scores: &[f64], labels: &[bool]) -> f64 {
        let pos: Vec<f64> = scores
            .iter()
            .zip(labels)
            .filter(|(_, l)| **l)
            .map(|(s, _)| *s)
            .collect();
        let neg: Vec<f64> = scores
            .iter()
            .zip(labels)
            .filter(|(_, l)| !**l)
            .map(|(s, _)| *s)
            .collect();
        let wins: f64 = pos
            .iter()
            .map(|p| {
                neg.iter()
                    .map(|n| {
                        if p > n {
                            1.0
                        } else if p == n {
                            0.5
                        } else {
                            0.0
                        }
                    })
                    .sum::<f64>()
            })
            .sum();
        wins / (pos.len() * neg.len()) as f64
    }

    #[test]
    fn c_of_n_follows_the_paper() {
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // c(256) = 2 (ln 255 + γ) - 2 · 255/256
        let expected = 2.0 * (255f64.ln() + EULER) - 2.0 * 255.0 / 256.0;
        assert!((average_path_length(256) - expected).abs() < 1e-12);
        assert!((average_path_length(256) - 10.244_770_920_116_851).abs() < 1e-9);
    }

    #[test]
    fn separates_far_outliers_from_a_gaussian() {
        let (x, labels) = gaussian(5000, 50, 7);
        let forest = IsolationForestParams::default()
            .fit(&dataset(x.clone()))
            .unwrap();
        let scores = forest.predict(&x);
        let auc = auc(scores.as_slice().unwrap(), &labels);
        assert!(auc > 0.95, "AUC {auc}");
        // A point at the centre scores as normal; one far away as anomalous.
        assert!(forest.score(ndarray::arr1(&[0.0, 0.0]).view()) < 0.5);
        assert!(forest.score(ndarray::arr1(&[9.0, 9.0]).view()) > 0.6);
    }

    #[test]
    fn scores_are_two_to_the_minus_mean_path_over_c() {
        // A single tree over two distinct points: each is isolated by one split, h = 1,
        // and c(2) = 1, so s = 2^-1.
        let x = ndarray::arr2(&[[0.0], [1.0]]);
        let params = IsolationForestParams {
            trees: 1,
            sample_size: 2,
            seed: 1,
        };
        let forest = params.fit(&dataset(x)).unwrap();
        assert!((forest.score(ndarray::arr1(&[0.0]).view()) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn deterministic_under_a_fixed_seed() {
        let (x, _) = gaussian(1000, 10, 3);
        let a = IsolationForestParams::default()
            .fit(&dataset(x.clone()))
            .unwrap()
            .predict(&x);
        let b = IsolationForestParams::default()
            .fit(&dataset(x.clone()))
            .unwrap()
            .predict(&x);
        assert_eq!(a, b);
        let other = IsolationForestParams {
            seed: 9,
            ..Default::default()
        };
        assert_ne!(a, other.fit(&dataset(x.clone())).unwrap().predict(&x));
    }

    #[test]
    fn the_feature_that_isolates_gets_the_credit() {
        // Outlier only in feature 1.
        let (mut x, _) = gaussian(2000, 0, 5);
        x[[0, 1]] = 12.0;
        x[[0, 0]] = 0.0;
        let forest = IsolationForestParams::default()
            .fit(&dataset(x.clone()))
            .unwrap();
        let (score, contributions) = forest.explain(x.row(0));
        assert!(score > 0.6, "{score}");
        assert!(contributions[1] > contributions[0], "{contributions:?}");
    }
}
