//! Instrumented event-driven sample services, load generator and fault injection: the
//! realistic workload Vigil is demonstrated and tested against.
//!
//! So far: the saga's [`event`]s, the [`bus`] the services talk over with its in-process
//! broker, reliable [`consumer`] processing (dedupe, retry with backoff, dead letters), and
//! the fulfilment [`saga`] the services run, and the HTTP [`gateway`] in front of it.

pub mod bus;
pub mod consumer;
pub mod event;
pub mod gateway;
pub mod saga;
pub mod telemetry;
