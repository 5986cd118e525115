//! The third phase of `vigil bench ingest`: the same ingest load while heavy SQL queries run
//! over what it wrote (full scans grouped by a per-span value, a sort of every span with no
//! limit, a self-join, an aggregation holding every span id), printed beside ingest alone:
//! reads run on their own lower-priority threads in their own memory pool, so ingest keeps
//! most of its throughput and its acknowledgement latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::{Driven, Server, drive};
use crate::cli::IngestBenchArgs;

/// The heavy queries, one client each, each asked again as soon as it is answered.
const HEAVY: [&str; 4] = [
    "SELECT span_id, span_name, count(*), max(duration_ns) FROM spans GROUP BY span_id, span_name",
    "SELECT trace_id, span_id, duration_ns FROM spans ORDER BY duration_ns DESC, span_id",
    "SELECT count(*) FROM spans a JOIN spans b ON a.trace_id = b.trace_id",
    "SELECT trace_id, array_agg(span_id) FROM spans GROUP BY trace_id ORDER BY trace_id",
];

/// Ingest beside the heavy queries, and how the queries were answered (status → count).
pub struct Beside {
    driven: Driven,
    answers: BTreeMap<u16, usize>,
}

/// Drives `server` as the first phase did while the heavy queries run against its API.
pub async fn beside_heavy_queries(
    server: &Server,
    requests: Arc<Vec<ExportTraceServiceRequest>>,
    args: &IngestBenchArgs,
) -> anyhow::Result<Beside> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for sql in HEAVY {
        let (url, stop) = (format!("{}/api/v1/sql", server.api), stop.clone());
        readers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let status = client
                    .post(&url)
                    .json(&serde_json::json!({ "sql": sql, "limit": 100 }))
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16());
                statuses.push(status);
            }
            statuses
        }));
    }
    let driven = drive(&server.grpc, requests, args.clients, args.seconds).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = BTreeMap::new();
    for r in readers {
        for status in r.await? {
            *answers.entry(status).or_insert(0) += 1;
        }
    }
    Ok(Beside {
        driven: driven?,
        answers,
    })
}

/// Prints ingest with the heavy queries beside ingest alone.
pub fn print(alone: &Driven, beside: &Beside) {
    let with = &beside.driven;
    println!();
    println!(
        "{:<44} {:>14} {:>14}",
        "ingest beside reads", "alone", "4 heavy queries"
    );
    println!(
        "{:<44} {:>14.0} {:>14.0}",
        "acknowledged spans/s", alone.rate, with.rate
    );
    println!(
        "{:<44} {:>14.1} {:>14.1}",
        "p99 acknowledgement (ms)",
        alone.p99.as_secs_f64() * 1e3,
        with.p99.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>29.1}%",
        "throughput with queries / alone",
        100.0 * with.rate / alone.rate.max(1.0)
    );
    println!(
        "{:<44} {:>29.2}x",
        "p99 with queries / alone",
        with.p99.as_secs_f64() / alone.p99.as_secs_f64().max(1e-9)
    );
    let answers: Vec<String> = beside
        .answers
        .iter()
        .map(|(status, n)| format!("{n} x {status}"))
        .collect();
    println!(
        "{:<44} {:>29}",
        "heavy queries answered",
        answers.join(", ")
    );
    println!("targets: throughput with queries >= 80% of alone, p99 <= 2x");
}
