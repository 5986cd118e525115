#!/usr/bin/env python3
"""Sends traces, logs and metrics to a running Vigil three ways and prints what it sent.

1. the OpenTelemetry Python SDK with the OTLP/gRPC exporters (service "py-grpc");
2. the SDK with the OTLP/HTTP protobuf exporters (service "py-http");
3. hand-built OTLP/JSON bodies posted to /v1/* (service "py-json"), one of them gzipped,
   using the JSON encoding rules: hex ids, enums as integers, int64 as strings or numbers.

The manifest on stdout lets the calling test compare Vigil's SQL answers with what was sent.
"""

import argparse
import gzip
import json
import time
import urllib.request

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

TRACES = 4


def sdk_round(service, spans, logs, metrics):
    resource = Resource.create({"service.name": service, "service.version": "1.2.3"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    reader = PeriodicExportingMetricReader(metrics, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    tracer = tracer_provider.get_tracer("py-e2e", "0.1")
    logger = logger_provider.get_logger("py-e2e")
    traces = []
    for i in range(TRACES):
        attrs = {"correlation_id": f"{service}-c{i}", "http.method": "GET", "retry": 2, "ratio": 0.5, "cached": True}
        with tracer.start_as_current_span("GET /stock", kind=SpanKind.SERVER, attributes=attrs) as root:
            root.add_event("cache miss", {"key": f"sku-{i}"})
            with tracer.start_as_current_span("db query", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}) as child:
                logger.emit(
                    severity_number=SeverityNumber.WARN,
                    severity_text="WARN",
                    body=f"low stock for sku-{i}",
                    attributes={"sku": f"sku-{i}"},
                )
                traces.append({
                    "trace_id": format_trace_id(root.get_span_context().trace_id),
                    "root_span_id": format_span_id(root.get_span_context().span_id),
                    "child_span_id": format_span_id(child.get_span_context().span_id),
                    "correlation_id": attrs["correlation_id"],
                })
    meter = meter_provider.get_meter("py-e2e")
    counter = meter.create_counter("stock_checks", unit="1")
    counter.add(5, {"warehouse": "w1"})
    counter.add(6, {"warehouse": "w1"})
    histogram = meter.create_histogram("db_latency", unit="ms", explicit_bucket_boundaries_advisory=[1.0, 10.0, 100.0])
    for v in [0.5, 5, 50, 500, 5]:
        histogram.record(v)
    gauge = meter.create_gauge("pool_size")
    gauge.set(12, {"pool": "main"})

    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()
    return {
        "spans": 2 * TRACES,
        "logs": TRACES,
        "traces": traces,
        "counter": {"name": "stock_checks", "value": 11.0},
        "gauge": {"name": "pool_size", "value": 12.0},
        "histogram": {"name": "db_latency", "count": 5, "sum": 560.5, "bucket_counts": [1, 2, 1, 1], "bounds": [1.0, 10.0, 100.0]},
    }


def post(url, body, gzipped=False):
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        reply = json.loads(resp.read() or b"{}")
        assert resp.status == 200, resp.status
        assert resp.headers["Content-Type"].startswith("application/json"), resp.headers["Content-Type"]
        return reply


def json_round(http):
    service = "py-json"
    now = time.time_ns()
    trace_id = "5b8efff798038103d269b633813fc60c"
    span_id = "eee19b7ec3c1b174"
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    traces = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "hand-built", "version": "7"}, "spans": [{
        "traceId": trace_id,
        "spanId": span_id,
        "name": "json span",
        "kind": 2,
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": now + 1_000_000,
        "attributes": [
            {"key": "count", "value": {"intValue": "42"}},
            {"key": "big", "value": {"intValue": 9007199254740993}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}},
            {"key": "correlation.id", "value": {"stringValue": "json-corr"}},
        ],
        "status": {"code": 2, "message": "boom"},
    }]}]}]}
    logs = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"scope": {"name": "hand-built"}, "logRecords": [{
        "timeUnixNano": str(now + 500_000),
        "observedTimeUnixNano": str(now + 600_000),
        "severityNumber": 17,
        "severityText": "ERROR",
        "body": {"stringValue": "json log"},
        "traceId": trace_id,
        "spanId": span_id,
        "attributes": [{"key": "exception.type", "value": {"stringValue": "Timeout"}}],
    }]}]}]}
    metrics = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"scope": {"name": "hand-built"}, "metrics": [
        {"name": "json_requests", "unit": "1", "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
            {"asInt": "17", "timeUnixNano": str(now), "startTimeUnixNano": str(now - 10**9), "attributes": [{"key": "code", "value": {"intValue": 200}}]}]}},
        {"name": "json_latency", "unit": "s", "histogram": {"aggregationTemporality": 1, "dataPoints": [
            {"count": "3", "sum": 0.6, "bucketCounts": ["1", "2"], "explicitBounds": [0.25], "timeUnixNano": str(now),
             "exemplars": [{"asDouble": 0.3, "timeUnixNano": str(now), "traceId": trace_id, "spanId": span_id}]}]}},
    ]}]}]}
    replies = [
        post(f"{http}/v1/traces", traces),
        post(f"{http}/v1/logs", logs, gzipped=True),
        post(f"{http}/v1/metrics", metrics),
    ]
    for r in replies:
        assert not r.get("partialSuccess", {}).get("rejectedSpans"), r
    return {"spans": 1, "logs": 1, "trace_id": trace_id, "span_id": span_id}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grpc", required=True, help="OTLP/gRPC endpoint, e.g. http://127.0.0.1:4317")
    parser.add_argument("--http", required=True, help="OTLP/HTTP base URL, e.g. http://127.0.0.1:4318")
    args = parser.parse_args()
    manifest = {
        "py-grpc": sdk_round("py-grpc", GrpcSpans(endpoint=args.grpc, insecure=True), GrpcLogs(endpoint=args.grpc, insecure=True),
                             GrpcMetrics(endpoint=args.grpc, insecure=True)),
        "py-http": sdk_round("py-http", HttpSpans(endpoint=f"{args.http}/v1/traces"), HttpLogs(endpoint=f"{args.http}/v1/logs"),
                             HttpMetrics(endpoint=f"{args.http}/v1/metrics")),
        "py-json": json_round(args.http),
    }
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
