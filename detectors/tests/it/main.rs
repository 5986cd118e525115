//! The detectors' integration tests, in one binary: the crate is optimised even in debug
//! builds, and each test binary would compile the query engine's generic code again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod fixtures;
mod measures;
mod nab;
mod rca;
mod rollup;
mod spans;
mod topology;
