//! Ingest faster than the memory budget allows, with the anomaly detector and the example rules
//! running and four heavy SQL queries reading at once: clients get retryable refusals with
//! Retry-After, every heavy query completes or fails with a clear error, RSS stays under the
//! budget plus a stated margin, and everything acknowledged is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::Vigil;
use common::otlp::tagged_request;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

const MIB: u64 = 1 << 20;
const MEMORY_LIMIT_MIB: u64 = 64;
/// What Vigil's heap may hold beyond `--memory-limit`: the runtime and thread stacks, network
/// buffers, DataFusion's footer cache, allocator slack (README, "Memory"). (The executable's
/// own pages, file-backed RSS, are not counted.)
const MARGIN_MIB: u64 = 64;
const SPANS_PER_REQUEST: usize = 2000;
const CLIENTS: usize = 10;
const GRPC_CLIENTS: usize = 4;

/// The detector on short windows, so it reads several during the test; queries time out at 5 s.
const CONFIG: &str = r#"
[api]
query_timeout = "5s"

[anomaly]
window = "2s"
delay = "1s"
"#;

/// Full scans grouped by a value nearly every span has its own, a sort of every span with no
/// limit, a self-join of spans and a grouped aggregation holding every span id.
const HEAVY: [&str; 4] = [
    "SELECT span_id, attributes['batch'] AS batch, count(*), max(duration_ns) FROM spans \
     GROUP BY span_id, batch",
    "SELECT trace_id, span_id, duration_ns FROM spans ORDER BY duration_ns DESC, span_id",
    "SELECT count(*) FROM spans a JOIN spans b ON a.trace_id = b.trace_id",
    "SELECT trace_id, array_agg(span_id) FROM spans GROUP BY trace_id ORDER BY trace_id",
];

/// Anonymous resident memory (heap and stacks) of `pid`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    refused: AtomicU64,
    refused_without_retry_after: AtomicU64,
    grpc_refused: AtomicU64,
    grpc_refused_without_retry_info: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_retryably_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let limit = format!("{MEMORY_LIMIT_MIB}MiB");
    let config = dir.path().join("vigil.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let vigil = tokio::task::block_in_place(|| {
        Vigil::start(
            &dir.path().join("data"),
            &[
                "--memory-limit",
                &limit,
                "--config",
                config.to_str().unwrap(),
                "--rules",
                "config/rules",
            ],
        )
    });
    let pid = vigil.pid();
    let url = format!("{}/v1/traces", vigil.http);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));

    let wire = tagged_request("overload-0", 0, SPANS_PER_REQUEST, 400).encoded_len();
    assert!(wire as u64 > MIB / 2, "request of {wire} bytes");

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (url, stop, tally, next, acked) = (
            url.clone(),
            stop.clone(),
            tally.clone(),
            next.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let batch = next.fetch_add(1, Ordering::Relaxed);
                let body = tagged_request(
                    &format!("overload-{batch}"),
                    batch,
                    SPANS_PER_REQUEST,
                    400 + c % 8,
                )
                .encode_to_vec();
                let r = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        acked.lock().unwrap().push(batch);
                    }
                    429 | 503 => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                        if r.headers().get("retry-after").is_none() {
                            tally
                                .refused_without_retry_after
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("unexpected status {other}"),
                }
            }
        }));
    }
    for _ in 0..GRPC_CLIENTS {
        let (grpc, stop, tally, next, acked) = (
            vigil.grpc.clone(),
            stop.clone(),
            tally.clone(),
            next.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut client = TraceServiceClient::connect(grpc).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let batch = next.fetch_add(1, Ordering::Relaxed);
                match client
                    .export(tagged_request(
                        &format!("overload-{batch}"),
                        batch,
                        SPANS_PER_REQUEST,
                        400,
                    ))
                    .await
                {
                    Ok(_) => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        acked.lock().unwrap().push(batch);
                    }
                    Err(status)
                        if matches!(status.code(), Code::ResourceExhausted | Code::Unavailable) =>
                    {
                        tally.grpc_refused.fetch_add(1, Ordering::Relaxed);
                        if status
                            .get_details_retry_info()
                            .and_then(|r| r.retry_delay)
                            .is_none()
                        {
                            tally
                                .grpc_refused_without_retry_info
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(status) => panic!("unexpected gRPC status {status:?}"),
                }
            }
        }));
    }
    let answers = Arc::new(std::sync::Mutex::new(Vec::new()));
    for sql in HEAVY {
        let (api, stop, answers) = (vigil.api.clone(), stop.clone(), answers.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(format!("http://{api}/api/v1/sql"))
                    .json(&serde_json::json!({ "sql": sql }))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                answers.lock().unwrap().push((sql, status, body));
            }
        }));
    }
    let mut max_rss = 0;
    for _ in 0..160 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        max_rss = max_rss.max(rss_bytes(pid));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, refused) = (
        tally.ok.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
    );
    // Written past the test harness's capture, so every run shows its peak.
    let _ = writeln!(
        std::io::stderr(),
        "overload: accepted {ok} requests, refused {refused}; peak anonymous RSS {} MiB (limit {MEMORY_LIMIT_MIB} MiB + margin {MARGIN_MIB} MiB)",
        max_rss / MIB
    );
    let answers = answers.lock().unwrap().clone();
    for (sql, status, body) in &answers {
        let error = body["error"].as_str().unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "heavy query {status}: {:.60}… {:.160}",
            sql.replace('\n', " "),
            error
        );
        match status {
            200 => assert!(body["rows"].is_array(), "{sql}: {body}"),
            408 => assert!(error.contains("did not finish within 5s"), "{sql}: {error}"),
            422 => assert!(
                error.contains("of memory; narrow the time range or raise [limits] memory_limit"),
                "{sql}: {error}"
            ),
            other => panic!("{sql}: unexpected status {other}: {body}"),
        }
    }
    assert!(answers.len() >= HEAVY.len(), "every heavy query answered");
    assert!(ok > 0, "nothing was accepted");
    assert!(refused > 0, "the load never exceeded the budget");
    assert_eq!(
        tally.refused_without_retry_after.load(Ordering::Relaxed),
        0,
        "every refusal carries Retry-After"
    );
    assert!(
        max_rss < (MEMORY_LIMIT_MIB + MARGIN_MIB) * MIB,
        "peak anonymous RSS {} MiB",
        max_rss / MIB
    );

    let acked = acked.lock().unwrap().clone();
    tokio::task::block_in_place(|| {
        // Every refusal a client saw is counted once in /metrics.
        let (_, metrics) = common::web::get_text(&format!("http://{}/metrics", vigil.api));
        let counted: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("vigil_ingest_requests_refused_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(
            counted as u64,
            refused + tally.grpc_refused.load(Ordering::Relaxed),
            "refused requests in /metrics"
        );
        let stored = vigil.count("SELECT count(*) FROM spans WHERE service_name LIKE 'overload-%'");
        assert_eq!(
            stored,
            acked.len() as u64 * SPANS_PER_REQUEST as u64,
            "every acknowledged span is stored, nothing else"
        );
        assert_eq!(
            common::web::get_status(&format!("http://{}/readyz", vigil.api)).unwrap(),
            200
        );
    });
}
