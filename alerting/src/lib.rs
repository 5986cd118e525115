//! Alert lifecycle, routing, grouping, silences, receivers and durable delivery.
//!
//! This crate knows nothing about how an alert was computed: it takes alerts (labels,
//! annotations, state) and gets them to people exactly as their tools expect. So far it holds
//! the alert model (`alert.rs`) and how state changes are kept in the store's `alerts` table
//! (`history.rs`); routing and receivers arrive with their own issue.

pub mod alert;
pub mod history;

pub use alert::{Alert, AlertState, Fingerprint, Labels};
