//! `[api]` section of the configuration file: the query API's address and limits.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_store::units::HumanDuration;

/// Query API settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address of the query API, `/metrics`, `/healthz` and `/readyz`.
    pub http_addr: SocketAddr,
    /// Longest one request may read (SQL, traces, logs, services…; an RCA gets four times
    /// this) before it is cancelled and answered 408.
    pub query_timeout: HumanDuration,
    /// Most rows a SQL response carries (a request's `limit` may lower it, never raise it).
    pub max_rows: usize,
    /// Requests that may read the store at once (SQL, traces, logs, RCA…); more wait.
    pub max_concurrent_queries: usize,
    /// Longest a request waits for one of the running ones to finish before it is answered
    /// 429 with `Retry-After`.
    pub queue_wait: HumanDuration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            query_timeout: HumanDuration(Duration::from_secs(30)),
            max_rows: 10_000,
            max_concurrent_queries: 4,
            queue_wait: HumanDuration(Duration::from_secs(2)),
        }
    }
}
