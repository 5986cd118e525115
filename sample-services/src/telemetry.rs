//! Per-service OpenTelemetry: each service has its own tracer and logger providers (its own
//! `service.name`) exporting OTLP/gRPC, and carries trace context and baggage across the bus
//! in message headers (W3C `traceparent`, `tracestate`, `baggage`).

use std::collections::BTreeMap;

use opentelemetry::Context;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{LogExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// Instrumentation scope name of every span and log the services emit.
pub const SCOPE: &str = "vigil-sample-services";

/// Errors setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An OTLP exporter could not be built.
    #[error("building the OTLP exporter for {endpoint}: {message}")]
    Exporter {
        /// The collector endpoint.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
}

/// One service's tracer and logger.
#[derive(Debug)]
pub struct Telemetry {
    /// The service's name (`service.name`).
    pub service: &'static str,
    tracer: SdkTracer,
    logger: SdkLogger,
    tracer_provider: SdkTracerProvider,
    logger_provider: SdkLoggerProvider,
}

impl Telemetry {
    /// Telemetry for `service`, exporting OTLP/gRPC to `endpoint` (e.g.
    /// `http://127.0.0.1:4317`); with no endpoint, spans and logs are created (context still
    /// propagates) but not exported.
    pub fn new(service: &'static str, endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
        let resource = Resource::builder().with_service_name(service).build();
        let mut tracer_provider = SdkTracerProvider::builder().with_resource(resource.clone());
        let mut logger_provider = SdkLoggerProvider::builder().with_resource(resource);
        if let Some(endpoint) = endpoint {
            let failed = |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Exporter {
                endpoint: endpoint.to_string(),
                message: e.to_string(),
            };
            let spans = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(failed)?;
            let logs = LogExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(failed)?;
            tracer_provider = tracer_provider.with_batch_exporter(spans);
            logger_provider = logger_provider.with_batch_exporter(logs);
        }
        let tracer_provider = tracer_provider.build();
        let logger_provider = logger_provider.build();
        Ok(Telemetry {
            service,
            tracer: tracer_provider.tracer(SCOPE),
            logger: logger_provider.logger(SCOPE),
            tracer_provider,
            logger_provider,
        })
    }

    /// The service's tracer.
    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// Emits a log record in the span of `cx`, with the transaction's `correlation_id`.
    pub fn log(
        &self,
        cx: &Context,
        severity: Severity,
        body: String,
        correlation_id: &str,
        attributes: &[(&'static str, String)],
    ) {
        let mut record = self.logger.create_log_record();
        record.set_severity_number(severity);
        record.set_severity_text(severity.name());
        record.set_body(body.into());
        record.add_attribute("correlation_id", correlation_id.to_string());
        for (key, value) in attributes {
            record.add_attribute(*key, value.clone());
        }
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            record.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        }
        self.logger.emit(record);
    }

    /// Exports everything still buffered.
    pub fn flush(&self) {
        // Export failures are the SDK's to report; the services keep running without them.
        let _ = self.tracer_provider.force_flush();
        let _ = self.logger_provider.force_flush();
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.tracer_provider.shutdown();
        let _ = self.logger_provider.shutdown();
    }
}

struct Headers<'a>(&'a mut BTreeMap<String, String>);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

struct ReadHeaders<'a>(&'a BTreeMap<String, String>);

impl Extractor for ReadHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Writes the trace context and baggage of `cx` into message headers.
pub fn inject(cx: &Context, headers: &mut BTreeMap<String, String>) {
    TraceContextPropagator::new().inject_context(cx, &mut Headers(headers));
    BaggagePropagator::new().inject_context(cx, &mut Headers(headers));
}

/// Reads the trace context and baggage a producer put in message headers.
pub fn extract(headers: &BTreeMap<String, String>) -> Context {
    let cx = TraceContextPropagator::new().extract(&ReadHeaders(headers));
    BaggagePropagator::new().extract_with_context(&cx, &ReadHeaders(headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::trace::Tracer as _;

    #[tokio::test]
    async fn trace_context_and_baggage_survive_the_headers() {
        let t = Telemetry::new("order", None).unwrap();
        let span = t.tracer().start("send orders");
        let cx = Context::current_with_span(span)
            .with_baggage(vec![KeyValue::new("correlation_id", "ord-1")]);
        let mut headers = BTreeMap::new();
        inject(&cx, &mut headers);
        assert!(headers["traceparent"].starts_with("00-"), "{headers:?}");
        assert!(headers["baggage"].contains("correlation_id=ord-1"));
        let back = extract(&headers);
        assert_eq!(
            back.span().span_context().trace_id(),
            cx.span().span_context().trace_id()
        );
        assert!(back.span().span_context().is_remote());
        assert_eq!(
            back.baggage().get("correlation_id").map(|v| v.to_string()),
            Some("ord-1".into())
        );
    }
}
