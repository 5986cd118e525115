//! The SQL API answers reads (JSON and Arrow), refuses writes, DDL and file access, and
//! `vigil query` prints a readable table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::process::Command;

use common::Vigil;
use common::otlp::tagged_request;
use prost::Message;
use serde_json::json;

#[test]
fn sql_is_read_only_and_vigil_query_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let vigil = Vigil::start(dir.path(), &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/v1/traces", vigil.http))
            .header("content-type", "application/x-protobuf")
            .body(tagged_request("sql", 7, 3, 0).encode_to_vec())
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let answer = vigil.sql("SELECT service_name, count(*) AS n FROM spans GROUP BY service_name");
    assert_eq!(
        answer["columns"],
        json!([{"name": "service_name", "type": "Utf8"}, {"name": "n", "type": "Int64"}])
    );
    assert_eq!(answer["rows"], json!([["sql", 3]]));

    for refused in [
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO spans SELECT * FROM spans",
        "DROP TABLE spans",
        "COPY (SELECT 1) TO '/tmp/vigil-copy.csv'",
        "CREATE EXTERNAL TABLE etc STORED AS CSV LOCATION '/etc/passwd'",
        "SELECT * FROM '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let (status, body) = vigil.sql_raw(refused);
        assert_eq!(status, 400, "{refused} -> {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{refused} -> {body}"
        );
    }
    assert!(!std::path::Path::new("/tmp/vigil-copy.csv").exists());

    // A row cap and a syntax error.
    let (status, body) = common::web::post_json(
        &format!("http://{}/api/v1/sql", vigil.api),
        &json!({"sql": "SELECT * FROM spans", "limit": 2}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["rows"].as_array().unwrap().len(), 2);
    assert_eq!(body["truncated"], true);
    let (status, body) = vigil.sql_raw("SELEC 1");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("SELEC"), "{body}");

    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "query",
            "--url",
            &format!("http://{}", vigil.api),
            "SELECT span_name, attributes['batch'] AS batch FROM spans ORDER BY span_id",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| span_name | batch |"), "{table}");
    assert!(table.contains("| tagged    | 7     |"), "{table}");
    assert!(table.trim_end().ends_with("(3 rows)"), "{table}");

    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "query",
            "--url",
            &format!("http://{}", vigil.api),
            "DELETE FROM spans",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only read-only queries"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, metrics) = common::web::get_text(&format!("http://{}/metrics", vigil.api));
    assert_eq!(status, 200);
    for name in [
        "vigil_ingest_items_accepted_total{signal=\"spans\",transport=\"http\"} 3",
        "vigil_wal_bytes_total",
        "vigil_tail_rows{signal=\"spans\"} 3",
        "vigil_wal_queue_depth",
        "vigil_ingest_ack_duration_seconds_count{signal=\"spans\",transport=\"http\"} 1",
        "vigil_ingest_ack_duration_seconds_bucket{signal=\"spans\",transport=\"http\",le=\"+Inf\"} 1",
        "vigil_query_duration_seconds_bucket{reader=\"users\",le=\"+Inf\"}",
        "vigil_queries_refused_total{reader=\"users\",reason=\"memory\"} 0",
        "vigil_api_queries_limit 4",
        "vigil_build_info{version=",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "vigil_memory_resident_bytes ",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    promtool_accepts(&metrics);
}

/// `promtool check metrics` (Debian's `prometheus` package; scripts/test.sh installs it)
/// finds nothing wrong with `text`: it parses, and names, types and help follow the
/// Prometheus conventions.
fn promtool_accepts(text: &str) {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test.sh installs the Debian package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
