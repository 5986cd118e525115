//! Traces for investigation: a trace with its shape and logs, trace search, and the same
//! through Jaeger's HTTP API.

pub mod cache;
pub mod jaeger;
pub mod search;
pub mod span;
pub mod tree;
pub mod view;
