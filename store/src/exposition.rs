//! Vigil's self-metrics in the Prometheus text exposition format (0.0.4): the one writer every
//! component renders through, so names, escaping and number formats are right everywhere, and
//! the histogram type components observe latencies into.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

/// A `/metrics` page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// The page's text.
    pub fn into_text(self) -> String {
        self.text
    }

    fn family<'a>(&'a mut self, name: &'a str, kind: Kind, help: &str) -> Family<'a> {
        let mut escaped = String::with_capacity(help.len());
        for c in help.chars() {
            match c {
                '\\' => escaped.push_str("\\\\"),
                '\n' => escaped.push_str("\\n"),
                c => escaped.push(c),
            }
        }
        let _ = writeln!(
            self.text,
            "# HELP {name} {escaped}\n# TYPE {name} {}",
            kind.as_str()
        );
        Family { page: self, name }
    }

    /// Starts a counter family (`name` ends in `_total`).
    pub fn counter<'a>(&'a mut self, name: &'a str, help: &str) -> Family<'a> {
        self.family(name, Kind::Counter, help)
    }

    /// Starts a gauge family.
    pub fn gauge<'a>(&'a mut self, name: &'a str, help: &str) -> Family<'a> {
        self.family(name, Kind::Gauge, help)
    }

    /// Starts a histogram family.
    pub fn histogram<'a>(&'a mut self, name: &'a str, help: &str) -> Family<'a> {
        self.family(name, Kind::Histogram, help)
    }

    /// Starts a counter or gauge family.
    pub fn scalar<'a>(&'a mut self, kind: Single, name: &'a str, help: &str) -> Family<'a> {
        match kind {
            Single::Counter => self.counter(name, help),
            Single::Gauge => self.gauge(name, help),
        }
    }

    /// A counter or gauge with one unlabelled sample.
    pub fn single(&mut self, kind: Single, name: &str, help: &str, value: f64) {
        self.scalar(kind, name, help).sample(&[], value);
    }
}

/// A family of plain samples: a counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Single {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One metric family's samples being written.
pub struct Family<'a> {
    page: &'a mut Exposition,
    name: &'a str,
}

impl Family<'_> {
    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], extra: Option<(&str, &str)>, v: f64) {
        let out = &mut self.page.text;
        out.push_str(self.name);
        out.push_str(suffix);
        let all = labels.iter().copied().chain(extra);
        let mut first = true;
        for (k, value) in all {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        if !first {
            out.push('}');
        }
        let _ = writeln!(out, " {}", Number(v));
    }

    /// One sample with `labels`.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.line("", labels, None, value);
        self
    }

    /// One histogram series with `labels`: its cumulative buckets, sum and count.
    pub fn observed(&mut self, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        let mut cumulative = 0u64;
        for (i, bound) in h.bounds.iter().enumerate() {
            cumulative += h.counts[i].load(Ordering::Relaxed);
            let le = Number(*bound).to_string();
            self.line("_bucket", labels, Some(("le", &le)), cumulative as f64);
        }
        let count = h.count.load(Ordering::Relaxed);
        self.line("_bucket", labels, Some(("le", "+Inf")), count as f64);
        self.line(
            "_sum",
            labels,
            None,
            f64::from_bits(h.sum.load(Ordering::Relaxed)),
        );
        self.line("_count", labels, None, count as f64);
        self
    }
}

/// A sample value as the format writes it: `+Inf`, `-Inf`, `NaN`, whole numbers without a
/// fraction.
struct Number(f64);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            write!(f, "{v}")
        }
    }
}

/// Most buckets a histogram has.
const MAX_BUCKETS: usize = 16;

/// Observations counted into buckets with fixed upper bounds; cheap to observe from any
/// thread, and usable in a `static`.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: [AtomicU64; MAX_BUCKETS],
    count: AtomicU64,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

/// Bucket bounds for latencies of quick operations (an acknowledged write), in seconds.
pub const FAST_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds for latencies of queries, in seconds.
pub const QUERY_SECONDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Histogram {
    /// An empty histogram over `bounds` (ascending, at most 16; any beyond are ignored).
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        let bounds = if bounds.len() > MAX_BUCKETS {
            bounds.split_at(MAX_BUCKETS).0
        } else {
            bounds
        };
        Histogram {
            bounds,
            counts: [const { AtomicU64::new(0) }; MAX_BUCKETS],
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `value`.
    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_escape_and_format_as_the_text_format_says() {
        let mut page = Exposition::new();
        page.counter("x_total", "Line one\nback\\slash")
            .sample(&[("a", "q\"uote"), ("b", "new\nline\\")], 3.0)
            .sample(&[], f64::INFINITY);
        page.gauge("g", "A gauge.").sample(&[], 0.25);
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.5, 0.5, 7.0] {
            h.observe(v);
        }
        page.histogram("lat_seconds", "Latency.")
            .observed(&[("op", "read")], &h);
        assert_eq!(
            page.into_text(),
            "# HELP x_total Line one\\nback\\\\slash\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"uote\",b=\"new\\nline\\\\\"} 3\n\
             x_total +Inf\n\
             # HELP g A gauge.\n# TYPE g gauge\ng 0.25\n\
             # HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{op=\"read\",le=\"0.1\"} 1\n\
             lat_seconds_bucket{op=\"read\",le=\"1\"} 3\n\
             lat_seconds_bucket{op=\"read\",le=\"+Inf\"} 4\n\
             lat_seconds_sum{op=\"read\"} 8.05\n\
             lat_seconds_count{op=\"read\"} 4\n"
        );
    }
}
