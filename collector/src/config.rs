//! `[otlp]` section of the configuration file: where the receivers listen and what they accept.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use vigil_store::units::ByteSize;

/// OTLP receiver settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// OTLP/gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address.
    pub http_addr: SocketAddr,
    /// Largest request accepted, compressed and decompressed alike (larger: HTTP 413 / gRPC RESOURCE_EXHAUSTED).
    pub max_request_size: ByteSize,
    /// Concurrent gRPC requests per client connection; more wait in the connection's queue.
    pub grpc_concurrency_per_connection: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_request_size: ByteSize(16 << 20),
            grpc_concurrency_per_connection: 64,
        }
    }
}
