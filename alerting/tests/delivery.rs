//! Delivery against real local HTTP receivers: a receiver that fails for a while gets every
//! notification exactly once and each group's in order; one that refuses for good leaves a
//! recorded permanent failure; a restart resumes what was pending.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::dispatch;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::Utc;
use tokio::sync::{mpsc, watch};
use vigil_alerting::config::AlertingConfig;
use vigil_alerting::deliver::{Delivery, DeliveryStatus};
use vigil_alerting::dispatch::Dispatch;
use vigil_alerting::outbox::Outbox;
use vigil_alerting::retry::Backoff;
use vigil_alerting::send::Sender;

#[derive(Default)]
struct Receiver {
    /// Requests answered 503 before the receiver comes up.
    down_for: AtomicUsize,
    /// (groupKey, marker annotation) of every payload taken.
    taken: Mutex<Vec<(String, String)>>,
    /// Requests seen, taken or not.
    seen: AtomicUsize,
    /// Requests `/slow` is answering right now, and the most it ever answered at once.
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// When each request to `/slow` arrived.
    arrivals: Mutex<Vec<Instant>>,
}

/// Takes 300 ms to answer, so concurrent deliveries overlap.
async fn slow(State(r): State<Arc<Receiver>>) -> StatusCode {
    r.arrivals.lock().unwrap().push(Instant::now());
    let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    r.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.in_flight.fetch_sub(1, Ordering::SeqCst);
    StatusCode::OK
}

async fn hook(State(r): State<Arc<Receiver>>, body: String) -> axum::response::Response {
    r.seen.fetch_add(1, Ordering::SeqCst);
    if r.down_for
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "0")],
            "down",
        )
            .into_response();
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], "4");
    let marker = v["alerts"][0]["annotations"]["marker"]
        .as_str()
        .unwrap_or("")
        .to_string();
    r.taken
        .lock()
        .unwrap()
        .push((v["groupKey"].as_str().unwrap().to_string(), marker));
    StatusCode::OK.into_response()
}

async fn refuse() -> impl IntoResponse {
    (StatusCode::BAD_REQUEST, "unknown integration key")
}

async fn receiver(down_for: usize) -> (Arc<Receiver>, String) {
    let state = Arc::new(Receiver {
        down_for: AtomicUsize::new(down_for),
        ..Receiver::default()
    });
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/refuse", post(refuse))
        .route("/slow", post(slow))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, format!("http://{addr}"))
}

fn config(base: &str) -> Arc<AlertingConfig> {
    let yaml = format!(
        "route: {{receiver: team}}\nreceivers:\n  - name: team\n    max_concurrency: 2\n    webhook_configs: [{{url: '{base}/hook'}}]\n  - name: broken\n    webhook_configs: [{{url: '{base}/refuse'}}]\n  - name: narrow\n    max_concurrency: 2\n    webhook_configs: [{{url: '{base}/slow'}}]\n  - name: paced\n    max_concurrency: 8\n    rate_limit: 4\n    webhook_configs: [{{url: '{base}/slow'}}]\n"
    );
    Arc::new(AlertingConfig::parse("test.yml", &yaml).unwrap())
}

const FAST: Backoff = Backoff {
    initial: Duration::from_millis(20),
    max: Duration::from_millis(100),
    jitter: 0.2,
};

/// Runs delivery of what the outbox in `dir` holds plus `more` until nothing is pending.
async fn deliver(dir: &std::path::Path, base: &str, more: Vec<Dispatch>) -> DeliveryStatus {
    let (mut outbox, pending, _) = Outbox::open(dir).unwrap();
    let more = outbox.push(more, Utc::now()).unwrap();
    let (_config_tx, config_rx) = watch::channel(config(base));
    let sender = Arc::new(Sender::new(Duration::from_secs(5), None).unwrap());
    let delivery = Delivery::new(
        Arc::new(Mutex::new(outbox)),
        config_rx,
        sender,
        FAST,
        pending,
    );
    let status = delivery.status();
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(more).unwrap();
    drop(tx);
    tokio::time::timeout(Duration::from_secs(30), delivery.run(rx))
        .await
        .expect("delivery finished");
    status.lock().unwrap().clone()
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_each_notification_once_in_group_order() {
    let (r, base) = receiver(5).await;
    let dir = tempfile::tempdir().unwrap();
    let mut batch = Vec::new();
    for i in 0..4 {
        batch.push(dispatch("team", "A", &format!("a{i}")));
        if i < 2 {
            batch.push(dispatch("team", "B", &format!("b{i}")));
        }
    }
    let status = deliver(dir.path(), &base, batch).await;
    let taken = r.taken.lock().unwrap().clone();
    assert_eq!(taken.len(), 6, "{taken:?}");
    let of = |g: &str| -> Vec<String> {
        taken
            .iter()
            .filter(|(k, _)| k.contains(&format!("\"{g}\"")))
            .map(|(_, m)| m.clone())
            .collect()
    };
    assert_eq!(of("A"), ["a0", "a1", "a2", "a3"]);
    assert_eq!(of("B"), ["b0", "b1"]);
    assert_eq!(r.seen.load(Ordering::SeqCst), 11);
    let c = status.counters["team/webhook/0"];
    assert_eq!((c.delivered, c.retried, c.failed), (6, 5, 0));
    assert!(status.pending.is_empty());
    // Nothing is left to resume.
    let (_, pending, _) = Outbox::open(dir.path()).unwrap();
    assert!(pending.is_empty());
}

#[tokio::test]
async fn a_refusal_is_a_recorded_permanent_failure_and_pending_work_resumes_after_a_restart() {
    let (r, base) = receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    // Queued before a "crash": in the outbox, never sent.
    {
        let (mut outbox, _, _) = Outbox::open(dir.path()).unwrap();
        outbox
            .push(vec![dispatch("team", "A", "before")], Utc::now())
            .unwrap();
    }
    let status = deliver(dir.path(), &base, vec![dispatch("broken", "A", "x")]).await;
    assert_eq!(
        *r.taken.lock().unwrap(),
        [("{}:{alertname=\"A\"}".to_string(), "before".to_string())]
    );
    assert_eq!(status.counters["broken/webhook/0"].failed, 1);
    let (outbox, pending, _) = Outbox::open(dir.path()).unwrap();
    assert!(pending.is_empty());
    let failures = outbox.failures().unwrap();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0]
            .error
            .contains("HTTP 400: unknown integration key"),
        "{}",
        failures[0].error
    );
}

/// Six groups' notifications to one receiver: at most `max_concurrency` of them are in flight
/// at once, and with `rate_limit` they start no faster than the rate allows.
#[tokio::test]
async fn concurrency_and_rate_limits_bound_a_receiver() {
    let groups: Vec<String> = (0..6).map(|i| format!("G{i}")).collect();

    let (r, base) = receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    let batch = groups.iter().map(|g| dispatch("narrow", g, "")).collect();
    let status = deliver(dir.path(), &base, batch).await;
    assert_eq!(status.counters["narrow/webhook/0"].delivered, 6);
    assert_eq!(r.peak.load(Ordering::SeqCst), 2, "max_concurrency: 2");

    let (r, base) = receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    let batch = groups.iter().map(|g| dispatch("paced", g, "")).collect();
    let status = deliver(dir.path(), &base, batch).await;
    assert_eq!(status.counters["paced/webhook/0"].delivered, 6);
    let arrivals = r.arrivals.lock().unwrap().clone();
    // 4 per second: each start at least 250 ms after the one before (less a little for
    // the clock the limiter reads being a different one).
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(230), "starts {gap:?} apart");
    }
    // Without the rate limit all six would have overlapped (max_concurrency 8).
    assert!(r.peak.load(Ordering::SeqCst) <= 2);
}
