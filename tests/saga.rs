//! The sample services' saga, instrumented with the real OpenTelemetry SDK, exports to the
//! running binary: every service's spans and logs arrive, one correlation id spans the whole
//! transaction in one trace, consumer spans link to their producers, and declined or
//! out-of-stock orders show their compensation path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use vigil_sample_services::saga::SERVICES;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::Vigil;
use serde_json::Value;
use vigil_sample_services::bus::memory::{MemoryBus, MemoryBusConfig};
use vigil_sample_services::consumer::RetryPolicy;
use vigil_sample_services::deployment::Saga;
use vigil_sample_services::gateway;
use vigil_sample_services::saga::order::OrderStatus;
use vigil_sample_services::saga::{Item, OrderRequest};
use vigil_sample_services::telemetry::Export;

fn request(qty: u32, card: &str) -> OrderRequest {
    OrderRequest {
        customer_id: "cust-7".into(),
        items: vec![Item {
            sku: "widget".into(),
            qty,
            unit_price_cents: 2_500,
        }],
        card: card.into(),
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

fn check(vigil: &Vigil, ok: &str, short: &str, declined: &str) {
    for svc in SERVICES {
        assert!(
            vigil.count(&format!(
                "SELECT count(*) FROM spans WHERE service_name = '{svc}'"
            )) > 0,
            "no spans from {svc}"
        );
    }
    let services = |table: &str, cid: &str| {
        strings(&vigil.sql(&format!(
            "SELECT DISTINCT service_name FROM {table} WHERE correlation_id = '{cid}' ORDER BY 1"
        )))
    };
    let all: BTreeSet<String> = SERVICES.iter().map(|s| s.to_string()).collect();
    assert_eq!(services("spans", ok), all, "spans of the completed order");
    assert_eq!(services("logs", ok), all, "logs of the completed order");
    assert_eq!(
        vigil.count(&format!(
            "SELECT count(DISTINCT trace_id) FROM spans WHERE correlation_id = '{ok}'"
        )),
        1,
        "the transaction is one trace across the broker"
    );

    let chain = vigil.sql(&format!(
        "SELECT service_name, span_kind, span_name FROM spans \
         WHERE correlation_id = '{ok}' AND span_kind IN ('SERVER', 'CLIENT') ORDER BY time"
    ));
    assert_eq!(
        chain["rows"],
        serde_json::json!([
            ["gateway", "SERVER", "POST /orders"],
            ["gateway", "CLIENT", "order.place"],
            ["order", "SERVER", "order.place"],
            ["order", "CLIENT", "order-db"],
            ["inventory", "CLIENT", "stock-db"],
            ["payment", "CLIENT", "card-processor"],
            ["shipping", "CLIENT", "carrier-api"],
            ["notification", "CLIENT", "email-provider"]
        ]),
        "the HTTP call chain, then each service's call to its dependency, in saga order"
    );

    // Every consumer span continues its producer's trace and links to the producer span.
    let consumers = vigil.sql(&format!(
        "SELECT trace_id, parent_span_id, links FROM spans \
         WHERE correlation_id = '{ok}' AND span_kind = 'CONSUMER'"
    ));
    let producers = strings(&vigil.sql(&format!(
        "SELECT span_id FROM spans WHERE correlation_id = '{ok}' AND span_kind = 'PRODUCER'"
    )));
    let rows = consumers["rows"].as_array().unwrap();
    // Each event reaches every group on its topic: OrderPlaced and OrderCompleted go to
    // inventory + notification, InventoryReserved to payment + order, PaymentProcessed to
    // shipping + inventory, ShipmentCreated to order.
    assert_eq!(producers.len(), 5);
    assert_eq!(rows.len(), 9);
    for row in rows {
        let links: Value = serde_json::from_str(row[2].as_str().unwrap()).unwrap();
        let linked = links[0]["span_id"].as_str().unwrap();
        assert_eq!(links[0]["trace_id"], row[0]);
        assert_eq!(linked, row[1].as_str().unwrap(), "parent and link agree");
        assert!(producers.contains(linked), "link to a stored producer span");
    }

    let events = |cid: &str| {
        strings(&vigil.sql(&format!(
            "SELECT DISTINCT attributes['event.type'] FROM spans \
             WHERE correlation_id = '{cid}' AND span_kind = 'PRODUCER'"
        )))
    };
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        events(ok),
        set(&[
            "InventoryReserved",
            "OrderCompleted",
            "OrderPlaced",
            "PaymentProcessed",
            "ShipmentCreated"
        ])
    );
    assert_eq!(
        events(declined),
        set(&[
            "InventoryReleased",
            "InventoryReserved",
            "OrderCancelled",
            "OrderPlaced",
            "PaymentFailed"
        ]),
        "a declined payment releases stock and cancels the order"
    );
    assert_eq!(
        events(short),
        set(&["InventoryFailed", "OrderCancelled", "OrderPlaced"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saga_is_traced_end_to_end_through_vigil() {
    let dir = tempfile::tempdir().unwrap();
    let vigil = tokio::task::block_in_place(|| Vigil::start(dir.path(), &[]));
    let bus = MemoryBus::new(MemoryBusConfig::default());
    let saga = Saga::start(
        &bus,
        RetryPolicy::default(),
        [("widget".to_string(), 100)],
        &Export::to(&vigil.grpc),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let app = gateway::router(saga.gateway.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let place = |qty: u32, card: &str| {
        let req = client
            .post(format!("{gateway}/orders"))
            .json(&request(qty, card));
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 202);
            let body: Value = resp.json().await.unwrap();
            body["order_id"].as_str().unwrap().to_string()
        }
    };
    let ok = place(2, "visa").await;
    let short = place(500, "visa").await;
    let declined = place(1, "declined").await;
    let bad = client
        .post(format!("{gateway}/orders"))
        .json(&serde_json::json!({"customer_id": "c", "items": [], "card": "visa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    tokio::time::timeout(Duration::from_secs(20), async {
        while [&ok, &short, &declined]
            .iter()
            .any(|id| saga.orders.status(id) == Some(OrderStatus::Pending))
            || saga.sent.completed.load(Ordering::Relaxed)
                + saga.sent.cancelled.load(Ordering::Relaxed)
                < 3
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every order reaches an end");
    let status: Value = client
        .get(format!("{gateway}/orders/{declined}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "cancelled");
    assert_eq!(status["reason"], "card declined");
    assert_eq!(saga.orders.status(&ok), Some(OrderStatus::Completed));
    tokio::task::block_in_place(|| saga.flush());
    tokio::task::block_in_place(|| check(&vigil, &ok, &short, &declined));
    bus.close();
    for c in saga.consumers {
        c.stopped().await.unwrap();
    }
}
