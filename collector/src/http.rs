//! OTLP/HTTP receiver: `POST /v1/traces`, `/v1/metrics`, `/v1/logs`, protobuf or JSON, gzip or not.
//!
//! Responses use the request's encoding. Errors carry a `google.rpc.Status` body (protobuf
//! or JSON), retryable refusals a `Retry-After` header, as the OTLP specification says.

use std::io::Read;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use flate2::read::GzDecoder;
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::error::IngestError;
use crate::ingest::{ExportRequest, Ingest};
use crate::stats::Transport;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Clone, Debug)]
struct HttpState {
    ingest: Ingest,
    max_request_bytes: usize,
}

/// The OTLP/HTTP routes, refusing bodies over `max_request_bytes` (compressed or decompressed).
pub fn router(ingest: Ingest, max_request_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(handle::<ExportTraceServiceRequest>))
        .route("/v1/metrics", post(handle::<ExportMetricsServiceRequest>))
        .route("/v1/logs", post(handle::<ExportLogsServiceRequest>))
        .layer(DefaultBodyLimit::disable())
        .with_state(HttpState {
            ingest,
            max_request_bytes,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        PROTOBUF => Ok(Encoding::Protobuf),
        JSON => Ok(Encoding::Json),
        "" => Err(IngestError::UnsupportedMediaType(format!(
            "missing Content-Type; OTLP/HTTP accepts {PROTOBUF} or {JSON}"
        ))),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Type {other:?}; OTLP/HTTP accepts {PROTOBUF} or {JSON}"
        ))),
    }
}

fn too_large(limit: usize, what: &str) -> IngestError {
    IngestError::TooLarge(format!("{what} is larger than the {limit}-byte limit"))
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Bodies are read to their end (and discarded) up to this multiple of the limit, so that a
/// client still writing an oversize body receives the 413 instead of a reset connection.
const DRAIN_FACTOR: usize = 4;

/// Reads and discards a body, up to `DRAIN_FACTOR` times `limit` bytes.
async fn drain(body: Body, limit: usize) {
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen = seen.saturating_add(chunk.len());
        if seen > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
}

/// The request body, decompressed when `Content-Encoding` says gzip; never more than `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut stream = body.into_data_stream();
    let mut raw = Vec::with_capacity(content_length(headers).unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            IngestError::InvalidArgument(format!("could not read request body: {e}"))
        })?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            raw.extend_from_slice(&chunk);
        } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
    if seen > limit {
        return Err(too_large(limit, "request body"));
    }
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" => {
            let mut out = Vec::new();
            let mut decoder = GzDecoder::new(&raw[..]).take(limit as u64 + 1);
            decoder
                .read_to_end(&mut out)
                .map_err(|e| IngestError::InvalidArgument(format!("invalid gzip body: {e}")))?;
            if out.len() > limit {
                return Err(too_large(limit, "decompressed request body"));
            }
            Ok(out)
        }
        other => Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Encoding {other:?}; use gzip or none"
        ))),
    }
}

fn decode<R: ExportRequest>(bytes: &[u8], enc: Encoding) -> Result<R, IngestError> {
    match enc {
        Encoding::Protobuf => R::decode(bytes).map_err(|e| {
            IngestError::InvalidArgument(format!(
                "malformed protobuf {}: {e}",
                std::any::type_name::<R>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("request")
            ))
        }),
        Encoding::Json => {
            if bytes.is_empty() {
                return Ok(R::default());
            }
            serde_json::from_slice(bytes)
                .map_err(|e| IngestError::InvalidArgument(format!("invalid OTLP JSON: {e}")))
        }
    }
}

async fn handle<R: ExportRequest>(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut enc = Encoding::Json;
    let mut body = Some(body);
    let limit = state.max_request_bytes;
    let result = async {
        enc = encoding(&headers)?;
        let hinted = content_length(&headers).unwrap_or(0);
        let mut admission = state.ingest.admit::<R>(hinted.min(limit))?;
        let bytes = read_body(&headers, body.take().unwrap_or_default(), limit).await?;
        if bytes.len() > hinted {
            admission.merge(state.ingest.admit::<R>(bytes.len() - hinted)?);
        }
        let req = decode::<R>(&bytes, enc)?;
        drop(bytes);
        state.ingest.export(req, admission, Transport::Http).await
    }
    .await;
    if let Some(unread) = body {
        // Refused before reading: consume the body anyway so the client sees the answer.
        drain(unread, limit).await;
    }
    match result {
        Ok(resp) => encode_ok::<R>(&resp, enc),
        Err(err) => {
            state.ingest.refused(R::SIGNAL, Transport::Http, &err);
            error_response(&err, enc)
        }
    }
}

fn encode_ok<R: ExportRequest>(resp: &R::Response, enc: Encoding) -> Response {
    match enc {
        Encoding::Protobuf => {
            ([(header::CONTENT_TYPE, PROTOBUF)], resp.encode_to_vec()).into_response()
        }
        Encoding::Json => match serde_json::to_value(resp) {
            Ok(mut value) => {
                strip_nulls(&mut value);
                ([(header::CONTENT_TYPE, JSON)], value.to_string()).into_response()
            }
            Err(e) => error_response(&IngestError::Internal(e.to_string()), enc),
        },
    }
}

/// OTLP/JSON omits unset fields: a full success is `{}`, not `{"partialSuccess": null}`.
fn strip_nulls(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

fn error_response(err: &IngestError, enc: Encoding) -> Response {
    let status = tonic_types::pb::Status {
        code: err.grpc_code() as i32,
        message: err.to_string(),
        details: vec![],
    };
    let mut response = match enc {
        Encoding::Protobuf => (
            err.http_status(),
            [(header::CONTENT_TYPE, PROTOBUF)],
            status.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => {
            let body = serde_json::json!({ "code": status.code, "message": status.message });
            (
                err.http_status(),
                [(header::CONTENT_TYPE, JSON)],
                body.to_string(),
            )
                .into_response()
        }
    };
    if let Some(after) = err.retry_after() {
        let secs = after.as_secs().max(1).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    response
}
