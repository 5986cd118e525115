//! Quantiles: exact ones over samples (linear interpolation between closest ranks, numpy's
//! default) and estimates from histogram buckets (Prometheus' `histogram_quantile`).

/// The `q` quantile (0..=1) of `values`, which it sorts; `None` when empty.
pub fn exact(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(values[lo] + (values[hi] - values[lo]) * frac)
}

/// The `q` quantile from explicit-bucket `counts` (one more than `bounds`, the last bucket
/// unbounded above). Within a bucket observations are assumed spread evenly; the first
/// bucket starts at 0 (or its bound if that is negative); a rank in the unbounded bucket
/// answers the highest finite bound. `None` when there are no observations.
pub fn from_buckets(bounds: &[f64], counts: &[f64], q: f64) -> Option<f64> {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 || counts.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut seen = 0.0;
    for (i, count) in counts.iter().enumerate() {
        if seen + count >= rank && *count > 0.0 {
            let Some(upper) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let lower = if i == 0 {
                upper.min(0.0)
            } else {
                bounds[i - 1]
            };
            return Some(lower + (upper - lower) * (rank - seen) / count);
        }
        seen += count;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_quantiles_interpolate_between_ranks() {
        let mut v = vec![40.0, 10.0, 30.0, 20.0, 50.0];
        assert_eq!(exact(&mut v, 0.5), Some(30.0));
        // pos = 0.95 * 4 = 3.8 → 40 + 0.8 * 10
        assert_eq!(exact(&mut v, 0.95), Some(48.0));
        assert_eq!(exact(&mut v, 0.0), Some(10.0));
        assert_eq!(exact(&mut v, 1.0), Some(50.0));
        assert_eq!(exact(&mut [], 0.5), None);
        assert_eq!(exact(&mut [7.0], 0.99), Some(7.0));
    }

    #[test]
    fn bucket_quantiles_follow_histogram_quantile() {
        // Buckets (0,0.1] 10, (0.1,0.5] 30, (0.5,1] 50, (1,+Inf) 10: 100 observations.
        let bounds = [0.1, 0.5, 1.0];
        let counts = [10.0, 30.0, 50.0, 10.0];
        // rank 50: 40 seen before the third bucket, 10 of its 50 → 0.5 + 0.5 * 10/50
        assert!((from_buckets(&bounds, &counts, 0.5).unwrap() - 0.6).abs() < 1e-12);
        // rank 5 in the first bucket: 0 + 0.1 * 5/10
        assert!((from_buckets(&bounds, &counts, 0.05).unwrap() - 0.05).abs() < 1e-12);
        // rank 95 falls in +Inf: the highest finite bound.
        assert_eq!(from_buckets(&bounds, &counts, 0.95), Some(1.0));
        assert_eq!(from_buckets(&bounds, &[0.0; 4], 0.5), None);
        assert_eq!(from_buckets(&bounds, &[1.0; 3], 0.5), None);
    }
}
