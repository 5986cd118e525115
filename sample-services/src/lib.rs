//! Instrumented event-driven sample services, load generator and fault injection: the
//! realistic workload Vigil is demonstrated and tested against.
//!
//! So far: the saga's [`event`]s, the [`bus`] the services talk over with its in-process
//! broker, and reliable [`consumer`] processing (dedupe, retry with backoff, dead letters).

pub mod bus;
pub mod consumer;
pub mod event;
