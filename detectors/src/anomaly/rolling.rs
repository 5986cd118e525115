//! A fixed-size window of recent values with their running mean and standard deviation.

use std::collections::VecDeque;

/// The last `capacity` values pushed, with O(1) mean and variance.
#[derive(Debug, Clone)]
pub struct Rolling {
    values: VecDeque<f64>,
    capacity: usize,
    /// Values are summed relative to this shift so large levels keep their precision.
    shift: f64,
    sum: f64,
    sum_sq: f64,
    /// Pushes since the sums were last recomputed from the values (bounds rounding drift).
    since_exact: usize,
}

impl Rolling {
    /// An empty window of `capacity` (at least 1) values.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Rolling {
            values: VecDeque::with_capacity(capacity),
            capacity,
            shift: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            since_exact: 0,
        }
    }

    /// Adds `x`, dropping the oldest value when full.
    pub fn push(&mut self, x: f64) {
        if self.values.is_empty() {
            self.shift = x;
        }
        if self.values.len() == self.capacity
            && let Some(old) = self.values.pop_front()
        {
            let d = old - self.shift;
            self.sum -= d;
            self.sum_sq -= d * d;
        }
        self.values.push_back(x);
        let d = x - self.shift;
        self.sum += d;
        self.sum_sq += d * d;
        self.since_exact += 1;
        if self.since_exact >= self.capacity {
            self.recompute();
        }
    }

    fn recompute(&mut self) {
        self.shift = self.mean();
        let shift = self.shift;
        self.sum = self.values.iter().map(|v| v - shift).sum();
        self.sum_sq = self.values.iter().map(|v| (v - shift).powi(2)).sum();
        self.since_exact = 0;
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether `capacity` values are held.
    pub fn is_full(&self) -> bool {
        self.values.len() == self.capacity
    }

    /// Mean of the values held (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            return 0.0;
        }
        self.shift + self.sum / self.values.len() as f64
    }

    /// Population standard deviation of the values held (0 when empty).
    pub fn std(&self) -> f64 {
        let n = self.values.len() as f64;
        if n == 0.0 {
            return 0.0;
        }
        let m = self.sum / n;
        (self.sum_sq / n - m * m).max(0.0).sqrt()
    }

    /// The values held, oldest first.
    pub fn values(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.values.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_std_follow_the_window() {
        let mut r = Rolling::new(3);
        for x in [1.0, 2.0, 3.0, 4.0] {
            r.push(x);
        }
        assert!(r.is_full());
        assert!((r.mean() - 3.0).abs() < 1e-12);
        assert!((r.std() - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn large_levels_keep_precision() {
        let mut r = Rolling::new(100);
        for i in 0..10_000 {
            r.push(1e12 + f64::from(i % 2));
        }
        assert!((r.std() - 0.5).abs() < 1e-6, "{}", r.std());
    }
}
