//! Anomaly detection: the isolation forest (`iforest.rs`), its streaming use over shingles
//! (`streaming.rs`), and the univariate detector that scores a series point by point from
//! earlier points only (`univariate.rs`, with its seasonal baseline in `seasonal.rs` and
//! level-transition novelty in `novelty.rs`).

pub mod history;
pub mod iforest;
pub mod monitor;
pub mod novelty;
pub mod rng;
pub mod rolling;
pub mod runner;
pub mod seasonal;
pub mod streaming;
pub mod univariate;

pub use iforest::{IsolationForest, IsolationForestParams, average_path_length};
