//! Per-service OpenTelemetry: each service has its own tracer, logger and meter providers
//! (its own `service.name`) exporting OTLP/gRPC, and carries trace context and baggage across
//! the bus in message headers (W3C `traceparent`, `tracestate`, `baggage`).

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanRef, Status};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{self, SdkLogRecord, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{self, SdkTracer, SdkTracerProvider};

use crate::instruments::Instruments;

/// Spans and logs a service buffers before the SDK drops new ones (unless
/// `OTEL_BSP_MAX_QUEUE_SIZE` / `OTEL_BLRP_MAX_QUEUE_SIZE` say otherwise): the SDK's 2,048 is
/// under one export interval at a few hundred orders per second.
const QUEUE: usize = 65_536;

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

/// Where and how often telemetry is exported.
#[derive(Debug, Clone)]
pub struct Export {
    /// OTLP/gRPC endpoint such as `http://127.0.0.1:4317`; none keeps telemetry in-process
    /// (spans and logs are still created and context still propagates).
    pub endpoint: Option<String>,
    /// How often metrics are exported.
    pub metric_interval: Duration,
    /// Sparse instrumentation, as on many real systems: spans carry no status and no
    /// attributes (names, kinds, parents and links only), so a fault must be found from logs
    /// and metrics.
    pub sparse: bool,
}

impl Export {
    /// Export to `endpoint` with metrics every 10 s.
    pub fn to(endpoint: &str) -> Export {
        Export {
            endpoint: Some(endpoint.to_string()),
            metric_interval: Duration::from_secs(10),
            sparse: false,
        }
    }

    /// Export nothing.
    pub fn none() -> Export {
        Export {
            endpoint: None,
            metric_interval: Duration::from_secs(10),
            sparse: false,
        }
    }
}

/// One service's tracer, logger and meter.
#[derive(Debug)]
pub struct Telemetry {
    /// The service's name (`service.name`).
    pub service: &'static str,
    /// The service's metric instruments.
    pub instruments: Instruments,
    sparse: bool,
    tracer: SdkTracer,
    logger: SdkLogger,
    meter: Meter,
    tracer_provider: SdkTracerProvider,
    logger_provider: SdkLoggerProvider,
    meter_provider: SdkMeterProvider,
}

impl Telemetry {
    /// Telemetry for `service`, exported as `export` says.
    pub fn new(service: &'static str, export: &Export) -> Result<Telemetry, TelemetryError> {
        let resource = Resource::builder().with_service_name(service).build();
        let mut tracer_provider = SdkTracerProvider::builder().with_resource(resource.clone());
        let mut logger_provider = SdkLoggerProvider::builder().with_resource(resource.clone());
        let mut meter_provider = SdkMeterProvider::builder().with_resource(resource);
        if let Some(endpoint) = &export.endpoint {
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
            let metrics = MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(failed)?;
            let mut span_batches = trace::BatchConfigBuilder::default();
            let mut log_batches = logs::BatchConfigBuilder::default();
            if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
                span_batches = span_batches.with_max_queue_size(QUEUE);
            }
            if std::env::var_os("OTEL_BLRP_MAX_QUEUE_SIZE").is_none() {
                log_batches = log_batches.with_max_queue_size(QUEUE);
            }
            tracer_provider = tracer_provider.with_span_processor(
                trace::BatchSpanProcessor::builder(spans)
                    .with_batch_config(span_batches.build())
                    .build(),
            );
            logger_provider = logger_provider.with_log_processor(
                logs::BatchLogProcessor::builder(logs)
                    .with_batch_config(log_batches.build())
                    .build(),
            );
            meter_provider = meter_provider.with_reader(
                PeriodicReader::builder(metrics)
                    .with_interval(export.metric_interval)
                    .build(),
            );
        }
        let tracer_provider = tracer_provider.build();
        let logger_provider = logger_provider.build();
        let meter_provider = meter_provider.build();
        let meter = meter_provider.meter(SCOPE);
        Ok(Telemetry {
            service,
            sparse: export.sparse,
            instruments: Instruments::new(&meter),
            tracer: tracer_provider.tracer(SCOPE),
            logger: logger_provider.logger(SCOPE),
            meter,
            tracer_provider,
            logger_provider,
            meter_provider,
        })
    }

    /// The service's meter, for instruments observed from state (gauges, counters kept
    /// elsewhere).
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The service's tracer.
    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// `attributes` for a new span: none under sparse instrumentation.
    pub fn span_attributes(&self, attributes: Vec<KeyValue>) -> Vec<KeyValue> {
        if self.sparse { Vec::new() } else { attributes }
    }

    /// Sets an attribute on `span`, unless instrumentation is sparse.
    pub fn annotate(&self, span: &SpanRef<'_>, attribute: KeyValue) {
        if !self.sparse {
            span.set_attribute(attribute);
        }
    }

    /// Marks `span` failed with `message`, unless instrumentation is sparse.
    pub fn fail(&self, span: &SpanRef<'_>, message: String) {
        if !self.sparse {
            span.set_status(Status::error(message));
        }
    }

    fn new_record(
        &self,
        severity: Severity,
        body: String,
        attributes: &[(&'static str, String)],
    ) -> SdkLogRecord {
        let mut record = self.logger.create_log_record();
        record.set_severity_number(severity);
        record.set_severity_text(severity.name());
        record.set_body(body.into());
        for (key, value) in attributes {
            record.add_attribute(*key, value.clone());
        }
        record
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
        let mut record = self.new_record(severity, body, attributes);
        record.add_attribute("correlation_id", correlation_id.to_string());
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            record.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        }
        self.logger.emit(record);
    }

    /// Emits a log record outside any trace, e.g. an operational event of the service.
    pub fn record(&self, severity: Severity, body: String, attributes: &[(&'static str, String)]) {
        self.logger
            .emit(self.new_record(severity, body, attributes));
    }

    /// Exports everything still buffered, metrics included.
    pub fn flush(&self) {
        // Export failures are the SDK's to report; the services keep running without them.
        let _ = self.tracer_provider.force_flush();
        let _ = self.logger_provider.force_flush();
        let _ = self.meter_provider.force_flush();
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.tracer_provider.shutdown();
        let _ = self.logger_provider.shutdown();
        let _ = self.meter_provider.shutdown();
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
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::trace::Tracer as _;

    #[tokio::test]
    async fn trace_context_and_baggage_survive_the_headers() {
        let t = Telemetry::new("order", &Export::none()).unwrap();
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
