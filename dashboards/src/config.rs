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
    /// Longest a SQL query may run.
    pub query_timeout: HumanDuration,
    /// Most rows a SQL response carries (a request's `limit` may lower it, never raise it).
    pub max_rows: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            query_timeout: HumanDuration(Duration::from_secs(30)),
            max_rows: 10_000,
        }
    }
}
