//! The `span_rollup` table: spans counted per minute, service, operation and kind (count,
//! errors, the slowest and an erroring trace, a duration sketch), written beside each spans
//! file as it is flushed or compacted, so rates, errors and percentiles over hours read
//! thousands of rows instead of millions of spans.

pub mod figures;
pub mod minutes;
pub mod sidecar;
pub mod sketch;
mod table;

pub use figures::Figures;
pub use minutes::{Key, MINUTE_NS, aggregate, rows};
pub use table::RollupTable;

/// The SQL name of the table.
pub const TABLE: &str = "span_rollup";
