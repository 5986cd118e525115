//! A mergeable duration histogram with logarithmic buckets: the part of a rollup row that
//! percentiles are read from, within about 1% relative error however many rows are merged.
//!
//! Bucket `i` holds durations in `(γ^i, γ^(i+1)]` nanoseconds with `γ = 2^(1/32)`, the
//! buckets of an OpenTelemetry exponential histogram at scale 5. Counts are kept densely from
//! the lowest to the highest bucket used, which for one series' minute of latencies is a few
//! hundred buckets at most.

/// Buckets per doubling of the duration.
const BUCKETS_PER_DOUBLING: f64 = 32.0;

/// The bucket a duration in nanoseconds falls into (durations under 1 ns count as 1 ns).
pub fn bucket_of(duration_ns: i64) -> i32 {
    let v = duration_ns.max(1) as f64;
    (v.log2() * BUCKETS_PER_DOUBLING).ceil() as i32 - 1
}

/// The value a quantile falling into bucket `i` is reported as: the bucket's geometric
/// middle, at most `2^(1/64) - 1` (1.09%) away from any value in it.
fn middle_of(bucket: i32) -> f64 {
    ((f64::from(bucket) + 0.5) / BUCKETS_PER_DOUBLING).exp2()
}

/// Counts per bucket, from `offset` on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurationSketch {
    /// The bucket of `counts[0]`.
    pub offset: i32,
    /// How many durations fell into each bucket from `offset` on.
    pub counts: Vec<u64>,
}

impl DurationSketch {
    /// Counts one duration.
    pub fn insert(&mut self, duration_ns: i64) {
        self.add(bucket_of(duration_ns), 1);
    }

    /// Adds `n` to bucket `bucket`, growing the range as needed.
    fn add(&mut self, bucket: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = bucket;
            self.counts.push(0);
        } else if bucket < self.offset {
            let grow = (self.offset - bucket) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = bucket;
        }
        let at = (bucket - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += n;
    }

    /// Adds another sketch's counts, given as its offset and counts.
    pub fn merge(&mut self, offset: i32, counts: &[u64]) {
        let Some(last) = counts.iter().rposition(|c| *c > 0) else {
            return;
        };
        let first = counts.iter().position(|c| *c > 0).unwrap_or(0);
        // Touch both ends first so the range grows once.
        self.add(offset + first as i32, 0);
        self.add(offset + last as i32, 0);
        for (i, c) in counts.iter().enumerate().take(last + 1).skip(first) {
            self.add(offset + i as i32, *c);
        }
    }

    /// How many durations were counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0 ≤ q ≤ 1) in nanoseconds: the middle of the bucket holding the
    /// value of rank `q·(n−1)`, as the query engine's percentiles rank; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (total - 1) as f64).floor() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                return Some(middle_of(self.offset + i as i32));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_lands_in_the_bucket_whose_bounds_hold_it() {
        let gamma = (1.0 / BUCKETS_PER_DOUBLING).exp2();
        for v in [1i64, 2, 3, 1_000, 12_345_678, 3_600_000_000_000] {
            let b = bucket_of(v);
            let (low, high) = (gamma.powi(b), gamma.powi(b + 1));
            assert!(
                low < v as f64 * (1.0 + 1e-9) && v as f64 <= high * (1.0 + 1e-9),
                "{v}"
            );
            assert!((middle_of(b) / v as f64 - 1.0).abs() < 0.011, "{v}");
        }
        assert_eq!(bucket_of(0), bucket_of(1));
        assert_eq!(bucket_of(-5), bucket_of(1));
    }

    #[test]
    fn quantiles_are_within_one_percent_of_the_exact_ones() {
        let mut sketch = DurationSketch::default();
        let values: Vec<i64> = (1..=10_000).map(|i| i * 1_000).collect();
        for v in &values {
            sketch.insert(*v);
        }
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            let exact = values[(q * (values.len() - 1) as f64) as usize] as f64;
            let got = sketch.quantile(q).unwrap();
            assert!((got / exact - 1.0).abs() < 0.011, "q{q}: {got} vs {exact}");
        }
        assert_eq!(sketch.total(), 10_000);
        assert_eq!(DurationSketch::default().quantile(0.5), None);
    }

    #[test]
    fn merging_equals_counting_everything_in_one_sketch() {
        let (mut a, mut b, mut all) = Default::default();
        let split = |v: i64| v % 3 == 0;
        for v in (0..500).map(|i| 1_000 + i * i * 997) {
            let part: &mut DurationSketch = if split(v) { &mut a } else { &mut b };
            part.insert(v);
            DurationSketch::insert(&mut all, v);
        }
        let mut merged = DurationSketch::default();
        for s in [&b, &a] {
            merged.merge(s.offset, &s.counts);
        }
        let trim = |s: &DurationSketch| {
            let first = s.counts.iter().position(|c| *c > 0).unwrap();
            (s.offset + first as i32, s.counts[first..].to_vec())
        };
        assert_eq!(trim(&merged), trim(&all));
        merged.merge(7, &[0, 0]);
        assert_eq!(merged.total(), 500);
    }
}
