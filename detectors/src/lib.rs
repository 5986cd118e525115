//! SLA/SLO rule evaluation and anomaly detection over windows read from the store.
//!
//! This crate reads Arrow `RecordBatch`es through the store's SQL session and produces alert
//! and anomaly rows; it does no network IO and knows nothing about how alerts are delivered.
//! It holds no code yet: rule evaluation and the detectors arrive with their own issues.
