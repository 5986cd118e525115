//! Alert lifecycle, routing, grouping, silences, receivers and durable delivery.
//!
//! This crate knows nothing about how an alert was computed: it takes alerts (labels,
//! annotations, state: the model in `vigil_store::alert`, which the rule engine shares) and
//! gets them to people exactly as their tools expect: the
//! notification configuration (`config.rs`: routing tree in `route.rs`, label matchers in
//! `matcher.rs`, inhibition in `inhibit.rs`, time intervals in `time_interval.rs`), grouping
//! and timing (`dispatch.rs`, deduplicated by the notification log in `nflog.rs`), what a
//! receiver is handed (`notification.rs`) and in which format (`payload/`), the durable outbox
//! (`outbox.rs`), sending (`send.rs`) and delivery with retries (`deliver.rs`, `retry.rs`),
//! silences (`silence.rs`), Alertmanager's API v2 alert shape (`postable.rs`), and the running
//! service that ties them together (`service.rs`) with its HTTP API (`api.rs`).

pub mod api;
pub mod config;
pub mod deliver;
pub mod dispatch;
pub mod inhibit;
pub mod matcher;
pub mod nflog;
pub mod notification;
pub mod outbox;
pub mod payload;
pub mod postable;
pub mod posted;
pub mod retry;
pub mod route;
pub mod send;
pub mod service;
pub mod silence;
pub mod sync;
#[cfg(test)]
mod testing;
pub mod time_interval;

pub use notification::{GroupStatus, Notification};
pub use vigil_store::alert::{Alert, AlertState, Fingerprint, Labels};
