//! What the store keeps: the three telemetry signals plus the alert and anomaly history, and the names
//! their tables carry.

use std::fmt;

/// One kind of telemetry; each has its own Arrow schema, table, WAL records and Parquet tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Trace spans, table `spans`.
    Spans,
    /// Log records, table `logs`.
    Logs,
    /// Metric data points, table `metrics`.
    Metrics,
    /// Alert state changes, table `alerts`: Vigil's own history, not telemetry.
    Alerts,
    /// Anomalies the detectors found, table `anomalies`: Vigil's own history, not telemetry.
    Anomalies,
}

impl Signal {
    /// How many there are.
    pub const COUNT: usize = 5;

    /// Every signal, in a fixed order (also the index order of per-signal arrays).
    pub const ALL: [Signal; Signal::COUNT] = [
        Signal::Spans,
        Signal::Logs,
        Signal::Metrics,
        Signal::Alerts,
        Signal::Anomalies,
    ];

    /// The signals OTLP carries (every one but Vigil's own histories).
    pub const TELEMETRY: [Signal; 3] = [Signal::Spans, Signal::Logs, Signal::Metrics];

    /// The SQL table name and the directory name under `parquet/`.
    pub fn table_name(self) -> &'static str {
        match self {
            Signal::Spans => "spans",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Alerts => "alerts",
            Signal::Anomalies => "anomalies",
        }
    }

    /// Position in [`Signal::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The tag byte used in WAL records.
    pub(crate) fn tag(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Signal::tag`].
    pub(crate) fn from_tag(tag: u8) -> Option<Signal> {
        Signal::ALL.get(usize::from(tag)).copied()
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.table_name())
    }
}
