//! Alert lifecycle, routing, grouping, silences, receivers and durable delivery.
//!
//! This crate knows nothing about how an alert was computed: it takes alerts (labels,
//! annotations, state) and gets them to people exactly as their tools expect.
//! It holds no code yet: the alert model and receivers arrive with their own issue.
