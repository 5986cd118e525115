//! Anomaly detection: the isolation forest (`iforest.rs`), its streaming use over shingles
//! (`streaming.rs`), and the univariate detector that scores a series point by point from
//! earlier points only (`univariate.rs`, with its seasonal baseline in `seasonal.rs` and
//! level-transition novelty in `novelty.rs`), the live monitor of every series
//! (`monitor.rs`), peer outliers among a consumer's partitions (`peers.rs`) and the task
//! that runs them every window (`runner.rs`).

pub mod changepoint;
pub mod history;
pub mod iforest;
pub mod monitor;
pub mod novelty;
pub mod peers;
pub mod rng;
pub mod rolling;
pub mod runner;
pub mod seasonal;
pub mod streaming;
pub mod univariate;

pub use iforest::{IsolationForest, IsolationForestParams, average_path_length};
