//! What a rollup row holds about a group of spans (count, errors, the fastest and the slowest,
//! an erroring trace, the duration sketch), how spans are added to it and how two are merged.

use super::sketch::DurationSketch;

/// The figures of a group of spans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// How many spans.
    pub spans: u64,
    /// How many had status ERROR.
    pub errors: u64,
    /// Duration of the fastest, ns.
    pub fastest_ns: i64,
    /// Duration of the slowest, ns.
    pub slowest_ns: i64,
    /// Trace of the slowest (the smallest trace id among equals, so merging in any order
    /// gives the same).
    pub slowest_trace_id: String,
    /// The greatest trace id among the erroring spans; empty when none erred.
    pub error_trace_id: String,
    /// Their durations.
    pub sketch: DurationSketch,
}

impl Figures {
    /// Counts one span.
    pub fn add_span(&mut self, duration_ns: i64, error: bool, trace_id: &str) {
        self.spans += 1;
        self.sketch.insert(duration_ns);
        if self.spans == 1 || duration_ns < self.fastest_ns {
            self.fastest_ns = duration_ns;
        }
        if self.spans == 1 || self.is_slower(duration_ns, trace_id) {
            self.slowest_ns = duration_ns;
            self.slowest_trace_id.clear();
            self.slowest_trace_id.push_str(trace_id);
        }
        if error {
            self.errors += 1;
            self.note_error_trace(trace_id);
        }
    }

    /// Whether a span of `duration_ns` in `trace_id` replaces the slowest.
    fn is_slower(&self, duration_ns: i64, trace_id: &str) -> bool {
        duration_ns > self.slowest_ns
            || (duration_ns == self.slowest_ns && trace_id < self.slowest_trace_id.as_str())
    }

    fn note_error_trace(&mut self, trace_id: &str) {
        if trace_id > self.error_trace_id.as_str() {
            self.error_trace_id.clear();
            self.error_trace_id.push_str(trace_id);
        }
    }

    /// Adds `other`'s spans.
    pub fn merge(&mut self, other: &Figures) {
        if other.spans == 0 {
            return;
        }
        if self.spans == 0 || other.fastest_ns < self.fastest_ns {
            self.fastest_ns = other.fastest_ns;
        }
        if self.spans == 0 || self.is_slower(other.slowest_ns, &other.slowest_trace_id) {
            self.slowest_ns = other.slowest_ns;
            self.slowest_trace_id.clone_from(&other.slowest_trace_id);
        }
        self.spans += other.spans;
        self.errors += other.errors;
        self.note_error_trace(&other.error_trace_id);
        self.sketch.merge(other.sketch.offset, &other.sketch.counts);
    }

    /// The `q` quantile of the durations in nanoseconds, between the fastest and the
    /// slowest (so exact when they are equal).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let estimate = self.sketch.quantile(q)?;
        Some(estimate.clamp(self.fastest_ns as f64, self.slowest_ns as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_figures_match_counting_every_span_once() {
        let spans = [
            (5_000, false, "a1"),
            (9_000, true, "b2"),
            (9_000, false, "c3"),
            (1_000, true, "d4"),
            (7_000, true, "a9"),
        ];
        let mut all = Figures::default();
        let (mut left, mut right) = (Figures::default(), Figures::default());
        for (i, (d, e, t)) in spans.iter().enumerate() {
            all.add_span(*d, *e, t);
            if i % 2 == 0 { &mut left } else { &mut right }.add_span(*d, *e, t);
        }
        assert_eq!((all.spans, all.errors), (5, 3));
        assert_eq!(
            (all.slowest_ns, all.slowest_trace_id.as_str()),
            (9_000, "b2")
        );
        assert_eq!(all.error_trace_id, "d4");
        let mut merged = Figures::default();
        merged.merge(&right);
        merged.merge(&left);
        merged.merge(&Figures::default());
        assert_eq!(
            (merged.spans, merged.errors, merged.slowest_ns),
            (all.spans, all.errors, all.slowest_ns)
        );
        assert_eq!(merged.error_trace_id, all.error_trace_id);
        assert_eq!(merged.quantile(0.5), all.quantile(0.5));
        assert_eq!(merged.quantile(1.0), Some(9_000.0));
        assert_eq!(merged.quantile(0.0), Some(1_000.0));
        assert_eq!(merged.fastest_ns, 1_000);
    }
}
