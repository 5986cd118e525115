//! Anomaly detection: the isolation forest (`iforest.rs`), and the streaming detector that
//! scores univariate series point by point from earlier points only (`streaming.rs`).

pub mod iforest;
pub mod rng;
pub mod streaming;

pub use iforest::{IsolationForest, IsolationForestParams, average_path_length};
