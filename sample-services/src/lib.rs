//! Instrumented event-driven sample services, load generator and fault injection: the
//! realistic workload Vigil is demonstrated and tested against.
//!
//! The saga's [`event`]s; the [`bus`] the services talk over, with its in-process broker;
//! reliable [`consumer`] processing (dedupe, retry with backoff, dead letters); the
//! fulfilment [`saga`] the services run, each with its [`ctx`] and traced dependencies, and
//! the HTTP [`gateway`] in front of it; a generated call [`graph`] of synchronous services; each service's CPU core ([`cpu`]); per-service [`telemetry`] and
//! metric [`instruments`];
//! fault injection ([`chaos`], driven over the [`admin`] API); and the [`load`] generator.

pub mod admin;
pub mod bus;
pub mod chaos;
pub mod consumer;
pub mod consumer_stats;
pub mod cpu;
pub mod ctx;
pub mod deployment;
pub mod event;
pub mod gateway;
pub mod graph;
pub mod instruments;
pub mod load;
pub mod saga;
pub mod telemetry;
