//! OTLP/gRPC receiver: the Trace, Metrics and Logs `Export` services, gzip accepted.
//!
//! The services are written against tonic's server primitives rather than the generated
//! servers so that the codec can reserve the request's memory (against the ingest budget)
//! *before* protobuf decoding expands it: an over-budget request is refused with
//! RESOURCE_EXHAUSTED + RetryInfo having cost only its wire bytes.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tonic::body::Body;
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::codegen::{BoxFuture, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::ingest::{Admission, ExportRequest, Ingest};
use crate::stats::Transport;

/// The gRPC service and method names of an export request type.
pub trait GrpcExport: ExportRequest {
    /// Fully qualified service name.
    const SERVICE: &'static str;
    /// The `Export` method's path.
    const PATH: &'static str;
}

impl GrpcExport for ExportTraceServiceRequest {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
}

impl GrpcExport for ExportMetricsServiceRequest {
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
}

impl GrpcExport for ExportLogsServiceRequest {
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
}

/// A decoded request and the memory reserved for it.
#[derive(Debug)]
pub struct Admitted<R> {
    request: R,
    admission: Admission,
}

/// Encodes responses with prost; decodes requests only after admission.
#[derive(Debug)]
struct AdmittingCodec<R> {
    ingest: Ingest,
    _request: PhantomData<fn() -> R>,
}

#[derive(Debug)]
struct ResponseEncoder<T>(PhantomData<fn(T)>);

impl<T: prost::Message> Encoder for ResponseEncoder<T> {
    type Item = T;
    type Error = Status;
    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        if buf.remaining_mut() < item.encoded_len() {
            buf.reserve(item.encoded_len());
        }
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

#[derive(Debug)]
struct AdmittingDecoder<R> {
    ingest: Ingest,
    _request: PhantomData<fn() -> R>,
}

impl<R: GrpcExport> Decoder for AdmittingDecoder<R> {
    type Item = Admitted<R>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Admitted<R>>, Status> {
        let admission = self.ingest.admit::<R>(buf.remaining()).map_err(|err| {
            self.ingest.refused(R::SIGNAL, Transport::Grpc, &err);
            err.to_grpc_status()
        })?;
        let request = R::decode(buf)
            .map_err(|e| Status::invalid_argument(format!("malformed protobuf request: {e}")))?;
        Ok(Some(Admitted { request, admission }))
    }
}

impl<R: GrpcExport> Codec for AdmittingCodec<R> {
    type Encode = R::Response;
    type Decode = Admitted<R>;
    type Encoder = ResponseEncoder<R::Response>;
    type Decoder = AdmittingDecoder<R>;
    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }
    fn decoder(&mut self) -> Self::Decoder {
        AdmittingDecoder {
            ingest: self.ingest.clone(),
            _request: PhantomData,
        }
    }
}

struct ExportMethod<R> {
    ingest: Ingest,
    _request: PhantomData<fn() -> R>,
}

impl<R: GrpcExport> UnaryService<Admitted<R>> for ExportMethod<R> {
    type Response = R::Response;
    type Future = BoxFuture<Response<R::Response>, Status>;
    fn call(&mut self, request: Request<Admitted<R>>) -> Self::Future {
        let ingest = self.ingest.clone();
        Box::pin(async move {
            let Admitted { request, admission } = request.into_inner();
            let result = ingest.export(request, admission, Transport::Grpc).await;
            result.map(Response::new).map_err(|err| {
                ingest.refused(R::SIGNAL, Transport::Grpc, &err);
                err.to_grpc_status()
            })
        })
    }
}

/// One OTLP gRPC service (traces, metrics or logs) over an [`Ingest`].
#[derive(Debug)]
pub struct OtlpService<R> {
    ingest: Ingest,
    max_message_bytes: usize,
    _request: PhantomData<fn() -> R>,
}

impl<R> Clone for OtlpService<R> {
    fn clone(&self) -> Self {
        OtlpService {
            ingest: self.ingest.clone(),
            max_message_bytes: self.max_message_bytes,
            _request: PhantomData,
        }
    }
}

impl<R: GrpcExport> OtlpService<R> {
    /// The service, decoding at most `max_message_bytes` per message.
    pub fn new(ingest: Ingest, max_message_bytes: usize) -> Self {
        OtlpService {
            ingest,
            max_message_bytes,
            _request: PhantomData,
        }
    }
}

impl<R: GrpcExport> NamedService for OtlpService<R> {
    const NAME: &'static str = R::SERVICE;
}

impl<R, B> tower::Service<http::Request<B>> for OtlpService<R>
where
    R: GrpcExport,
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != R::PATH {
            return Box::pin(async {
                Ok(Status::unimplemented("only Export is served").into_http())
            });
        }
        let ingest = self.ingest.clone();
        let max = self.max_message_bytes;
        Box::pin(async move {
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let codec = AdmittingCodec::<R> {
                ingest: ingest.clone(),
                _request: PhantomData,
            };
            let mut grpc = Grpc::new(codec)
                .apply_compression_config(gzip, gzip)
                .apply_max_message_size_config(Some(max), None);
            let method = ExportMethod::<R> {
                ingest,
                _request: PhantomData,
            };
            Ok(grpc.unary(method, req).await)
        })
    }
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
