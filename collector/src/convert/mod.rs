//! OTLP export requests → Arrow `RecordBatch`es in the store's schemas.
//!
//! Conversion is total: every OTLP field lands in a column, a map column or a JSON column.
//! Items that break the protocol's rules (ids of the wrong length) are counted as rejected,
//! with a reason, and the rest of the request is kept: the OTLP partial-success contract.

mod common;
pub mod correlation;
pub mod ids;
mod json;
mod logs;
mod metrics;
pub mod repeated;
mod spans;
pub mod values;

use arrow::array::RecordBatch;

pub use correlation::CorrelationIndex;
pub use logs::convert_logs;
pub use metrics::convert_metrics;
pub use spans::convert_traces;

/// How many rejection reasons a response carries, at most.
const MAX_REASONS: usize = 5;

/// The result of converting one export request.
#[derive(Debug, Default)]
pub struct Converted {
    /// The accepted items, or `None` when there were none.
    pub batch: Option<RecordBatch>,
    /// Items in the request.
    pub received: u64,
    /// Items refused for breaking the protocol's rules.
    pub rejected: u64,
    /// Why, for the first few.
    pub reasons: Vec<String>,
}

impl Converted {
    pub(crate) fn reject(&mut self, reason: String) {
        self.rejected += 1;
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason);
        }
    }

    /// The partial-success message: empty when nothing was rejected.
    pub fn message(&self, what: &str) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let more = if self.rejected as usize > self.reasons.len() {
            "; …"
        } else {
            ""
        };
        format!(
            "rejected {} {what}: {}{more}",
            self.rejected,
            self.reasons.join("; ")
        )
    }
}
