//! Vigil's OTLP receivers: gRPC (tonic) and HTTP (axum), protobuf and JSON, and the
//! conversion of OTLP requests into the store's Arrow batches.
//!
//! The collector owns the wire: decoding, limits, backpressure and status codes. It hands
//! the store nothing but `RecordBatch`es, and answers success only after the store says the
//! rows are durable. Overload is refused with OTLP's retryable codes, never absorbed.

pub mod config;
pub mod convert;
pub mod error;
pub mod grpc;
pub mod http;
pub mod ingest;
pub mod stats;

use std::future::Future;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use config::CollectorConfig;
pub use error::IngestError;
pub use ingest::Ingest;
pub use stats::{IngestStats, Transport};

/// Serves OTLP/gRPC on `listener` until `shutdown` completes.
pub async fn serve_grpc(
    listener: TcpListener,
    ingest: Ingest,
    config: &CollectorConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let max = config.max_request_size.0 as usize;
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(config.grpc_concurrency_per_connection.max(1))
        .layer(tower::util::MapResponseLayer::new(
            grpc::oversize_is_resource_exhausted,
        ))
        .add_service(grpc::OtlpService::<ExportTraceServiceRequest>::new(
            ingest.clone(),
            max,
        ))
        .add_service(grpc::OtlpService::<ExportMetricsServiceRequest>::new(
            ingest.clone(),
            max,
        ))
        .add_service(grpc::OtlpService::<ExportLogsServiceRequest>::new(
            ingest, max,
        ))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

/// Serves OTLP/HTTP on `listener` until `shutdown` completes.
pub async fn serve_http(
    listener: TcpListener,
    ingest: Ingest,
    config: &CollectorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = http::router(ingest, config.max_request_size.0 as usize);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
