//! The read-side toolkit every crate over the store uses: time windows, SQL text built only
//! from static text and escaped values (`sql!`), what a statement must be to run, typed column
//! readers, and the spellings of stored enumerated values.

pub mod columns;
pub mod sql;
pub mod statement;
pub mod time;
pub mod values;
pub mod window;

pub use columns::{ColumnError, floats, strings, text, to_strings};
pub use sql::{Sql, SqlArg, all, attribute, eq, list, lit};
pub use time::{after, nanos, rfc3339};
pub use values::{Severity, SpanKind, StatusCode};
pub use window::Window;
