//! OTLP/gRPC receiver: the Trace, Metrics and Logs `Export` services, gzip accepted.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::ingest::{ExportRequest, Ingest};
use crate::stats::Transport;

/// Implements all three OTLP gRPC services over one [`Ingest`].
#[derive(Clone, Debug)]
pub struct OtlpGrpc {
    ingest: Ingest,
}

impl OtlpGrpc {
    async fn export<R: ExportRequest>(
        &self,
        request: Request<R>,
    ) -> Result<Response<R::Response>, Status> {
        let req = request.into_inner();
        let result = async {
            let _admission = self.ingest.admit(req.encoded_len())?;
            self.ingest.export(req, Transport::Grpc).await
        }
        .await;
        result.map(Response::new).map_err(|err| {
            self.ingest.refused(R::SIGNAL, Transport::Grpc, &err);
            err.to_grpc_status()
        })
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        OtlpGrpc::export(self, request).await
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        OtlpGrpc::export(self, request).await
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        OtlpGrpc::export(self, request).await
    }
}

/// The three services, ready to add to a tonic server, decoding at most `max_message_bytes` per message.
pub fn services(
    ingest: Ingest,
    max_message_bytes: usize,
) -> (
    TraceServiceServer<OtlpGrpc>,
    MetricsServiceServer<OtlpGrpc>,
    LogsServiceServer<OtlpGrpc>,
) {
    let svc = OtlpGrpc { ingest };
    (
        TraceServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
        MetricsServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
        LogsServiceServer::new(svc)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
    )
}

/// tonic refuses a message over the size limit with OUT_OF_RANGE before any handler runs;
/// OTLP prescribes RESOURCE_EXHAUSTED for it, so the status is rewritten on the way out.
pub fn oversize_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let oversize = headers.get("grpc-status").is_some_and(|v| v == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.replace("%20", " ").contains("message length too large"));
    if oversize {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    response
}
