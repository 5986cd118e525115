//! SLA/SLO rule evaluation and anomaly detection over windows read from the store.
//!
//! This crate reads Arrow `RecordBatch`es through the store's SQL session and produces alert
//! and anomaly rows; it does no network IO and knows nothing about how alerts are delivered.
//! [`rules`] is the rule file format (SLI rules, SQL rules, SLOs) and its validation;
//! [`eval`] evaluates rules on a schedule and keeps their alerts; [`rca`] ranks what changed,
//! and [`alert_rca`] puts that ranking on each firing alert's page.

pub mod alert_rca;
pub mod anomaly;
pub mod eval;
pub mod features;
pub mod nab;
pub mod rca;
pub mod rules;
pub mod topology;
