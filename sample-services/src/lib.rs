//! Instrumented event-driven sample services, load generator and fault injection: the
//! realistic workload Vigil is demonstrated and tested against.
//!
//! It holds no code yet: the services arrive with their own issue.
