//! `kill -9` during sustained ingest, twice; after each restart every acknowledged span is
//! queryable exactly once, whether it had reached Parquet or was still only in the WAL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Vigil;
use common::otlp::tagged_request;
use prost::Message;

const SPANS_PER_REQUEST: usize = 50;
const CLIENTS: usize = 4;

/// Sends tagged requests until told to stop or the server goes away; returns acknowledged batch numbers.
async fn ingest_until_killed(url: String, next: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Vec<u64> {
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    'requests: while !stop.load(Ordering::Relaxed) {
        let batch = next.fetch_add(1, Ordering::Relaxed);
        let body = tagged_request("crash", batch, SPANS_PER_REQUEST, 0).encode_to_vec();
        // Like an exporter: retry the same request while the server asks for it.
        loop {
            match client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(body.clone())
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => {
                    acked.push(batch);
                    break;
                }
                Ok(r) if r.status() == 429 || r.status() == 503 => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Ok(r) => panic!("unexpected status {}", r.status()),
                Err(_) => break 'requests, // killed
            }
        }
    }
    acked
}

async fn crash_cycle(dir: &std::path::Path, next: &Arc<AtomicU64>, all_acked: &Mutex<Vec<u64>>) {
    let vigil = tokio::task::block_in_place(|| Vigil::start(dir, &["--flush-interval", "1s"]));
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/v1/traces", vigil.http);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(ingest_until_killed(url.clone(), next.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    vigil.kill9();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let acked = c.await.unwrap();
        all_acked.lock().unwrap().extend(acked);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let next = Arc::new(AtomicU64::new(1));
    let acked = Mutex::new(Vec::new());
    for _ in 0..2 {
        crash_cycle(dir.path(), &next, &acked).await;
    }
    let acked = acked.into_inner().unwrap();
    assert!(
        acked.len() > 20,
        "too little traffic to prove anything: {} requests",
        acked.len()
    );

    let vigil = tokio::task::block_in_place(|| Vigil::start(dir.path(), &[]));
    tokio::task::block_in_place(|| {
        let list = acked
            .iter()
            .map(|b| format!("'{b}'"))
            .collect::<Vec<_>>()
            .join(",");
        let found = vigil.count(&format!("SELECT count(*) FROM spans WHERE service_name = 'crash' AND attributes['batch'] IN ({list})"));
        let expected = (acked.len() * SPANS_PER_REQUEST) as u64;
        assert_eq!(
            found,
            expected,
            "acknowledged {} requests ({expected} spans), found {found} of their spans",
            acked.len()
        );
        // Nothing duplicated or torn, acknowledged or not: each stored batch is whole, once.
        let broken = vigil.count(
            "SELECT count(*) FROM (SELECT attributes['batch'] AS b, count(*) AS n FROM spans WHERE service_name = 'crash' GROUP BY 1) WHERE n <> 50",
        );
        assert_eq!(broken, 0, "some batch is stored partially or twice");
        let parquet = vigil.count("SELECT count(*) FROM spans WHERE service_name = 'crash'");
        eprintln!(
            "acknowledged {} requests, {} spans stored in all",
            acked.len(),
            parquet
        );
    });
}
