//! The real OpenTelemetry Python SDK (gRPC and HTTP/protobuf exporters) and hand-built OTLP/JSON
//! send to the running binary; SQL returns exactly what was sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Vigil, web};
use serde_json::{Value, json};

/// The Python with the OTel SDK: `VIGIL_TEST_PYTHON`, else the repository's `.venv` (made by `scripts/test.sh`).
fn python() -> PathBuf {
    std::env::var_os("VIGIL_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

fn check_sdk_service(vigil: &Vigil, service: &str, sent: &Value) {
    let n = |v: &Value| v.as_u64().unwrap();
    assert_eq!(
        vigil.count(&format!(
            "SELECT count(*) FROM spans WHERE service_name = '{service}'"
        )),
        n(&sent["spans"])
    );
    assert_eq!(
        vigil.count(&format!(
            "SELECT count(*) FROM logs WHERE service_name = '{service}'"
        )),
        n(&sent["logs"])
    );
    for t in sent["traces"].as_array().unwrap() {
        let root = vigil.sql(&format!(
            "SELECT span_name, span_kind, attributes['retry'], attributes['ratio'], attributes['cached'], correlation_id, \
             resource_attributes['service.version'], scope_version, events \
             FROM spans WHERE trace_id = '{}' AND span_id = '{}'",
            t["trace_id"].as_str().unwrap(),
            t["root_span_id"].as_str().unwrap()
        ));
        let row = &root["rows"][0];
        assert_eq!(row[0], "GET /stock", "{service}: {root}");
        assert_eq!(row[1], "SERVER");
        assert_eq!(row[2], "2");
        assert_eq!(row[3], "0.5");
        assert_eq!(row[4], "true");
        assert_eq!(row[5], t["correlation_id"]);
        assert_eq!(row[6], "1.2.3");
        assert_eq!(row[7], "0.1");
        assert!(row[8].as_str().unwrap().contains("cache miss"));
        let child = vigil.sql(&format!(
            "SELECT parent_span_id, correlation_id, attributes['db.system'] FROM spans WHERE span_id = '{}'",
            t["child_span_id"].as_str().unwrap()
        ));
        assert_eq!(
            child["rows"][0],
            json!([t["root_span_id"], t["correlation_id"], "postgresql"])
        );
        let log = vigil.sql(&format!(
            "SELECT span_id, severity_number, body, attributes['sku'], correlation_id FROM logs WHERE trace_id = '{}'",
            t["trace_id"].as_str().unwrap()
        ));
        assert_eq!(log["rows"].as_array().unwrap().len(), 1);
        assert_eq!(log["rows"][0][0], t["child_span_id"]);
        assert_eq!(log["rows"][0][1], 13);
        assert!(
            log["rows"][0][2]
                .as_str()
                .unwrap()
                .starts_with("low stock for sku-")
        );
        assert_eq!(log["rows"][0][4], t["correlation_id"]);
    }
    let latest = |name: &Value, cols: &str| {
        vigil.sql(&format!(
            "SELECT {cols} FROM metrics WHERE service_name = '{service}' AND metric_name = '{}' ORDER BY time DESC LIMIT 1",
            name.as_str().unwrap()
        ))["rows"][0]
            .clone()
    };
    let c = &sent["counter"];
    assert_eq!(
        latest(
            &c["name"],
            "metric_type, value, is_monotonic, attributes['warehouse']"
        ),
        json!(["sum", c["value"], true, "w1"])
    );
    let g = &sent["gauge"];
    assert_eq!(
        latest(&g["name"], "metric_type, value, attributes['pool']"),
        json!(["gauge", g["value"], "main"])
    );
    let h = &sent["histogram"];
    assert_eq!(
        latest(
            &h["name"],
            "metric_type, count, sum, bucket_counts, explicit_bounds"
        ),
        json!([
            "histogram",
            h["count"],
            h["sum"],
            h["bucket_counts"],
            h["bounds"]
        ])
    );
}

fn check_json_service(vigil: &Vigil, sent: &Value) {
    let trace_id = sent["trace_id"].as_str().unwrap();
    let span = vigil.sql(&format!(
        "SELECT span_name, span_kind, status_code, status_message, attributes['count'], attributes['big'], attributes['tags'], \
         correlation_id, scope_name, scope_version, duration_ns FROM spans WHERE trace_id = '{trace_id}'"
    ));
    assert_eq!(
        span["rows"][0],
        json!([
            "json span",
            "SERVER",
            "ERROR",
            "boom",
            "42",
            "9007199254740993",
            "[\"a\",1]",
            "json-corr",
            "hand-built",
            "7",
            1_000_000
        ])
    );
    let log = vigil.sql(&format!(
        "SELECT body, severity_number, severity_text, span_id, correlation_id, attributes['exception.type'] FROM logs WHERE trace_id = '{trace_id}'"
    ));
    assert_eq!(
        log["rows"][0],
        json!([
            "json log",
            17,
            "ERROR",
            sent["span_id"],
            "json-corr",
            "Timeout"
        ])
    );
    let sum = vigil.sql(
        "SELECT value, is_monotonic, temporality, attributes['code'], start_time IS NOT NULL FROM metrics \
         WHERE service_name = 'py-json' AND metric_name = 'json_requests'",
    );
    assert_eq!(
        sum["rows"][0],
        json!([17.0, true, "CUMULATIVE", "200", true])
    );
    let hist = vigil.sql(
        "SELECT count, sum, bucket_counts, explicit_bounds, temporality, exemplar_trace_ids FROM metrics \
         WHERE service_name = 'py-json' AND metric_name = 'json_latency'",
    );
    assert_eq!(
        hist["rows"][0],
        json!([3, 0.6, [1, 2], [0.25], "DELTA", [trace_id]])
    );

    let (status, trace) = web::get_json(&format!("http://{}/api/v1/traces/{trace_id}", vigil.api));
    assert_eq!(status, 200);
    assert_eq!(trace["spans"].as_array().unwrap().len(), 1);
    assert_eq!(trace["logs"][0]["body"], "json log");
}

#[test]
fn python_sdk_and_otlp_json_exports_are_stored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let vigil = Vigil::start(dir.path(), &[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/send_otlp.py");
    let out = Command::new(python())
        .arg(&script)
        .args(["--grpc", &vigil.grpc, "--http", &vigil.http])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} with {}: {e} (run scripts/test.sh to create .venv)",
                script.display(),
                python().display()
            )
        });
    assert!(
        out.status.success(),
        "send_otlp.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_json::from_slice(&out.stdout).expect("manifest JSON");
    check_sdk_service(&vigil, "py-grpc", &manifest["py-grpc"]);
    check_sdk_service(&vigil, "py-http", &manifest["py-http"]);
    check_json_service(&vigil, &manifest["py-json"]);
}
