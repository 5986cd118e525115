//! The NATS JetStream bus against a real `nats-server`: it keeps the same `Bus` contract as
//! the in-process broker (every group sees every message, per-key order, headers and keys
//! survive, nack redelivers with the attempt count, backlog is reported, a full stream makes
//! publishers wait, close ends subscriptions).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::nats::NatsServer;
use vigil_sample_services::bus::nats::{NatsBus, NatsBusConfig};
use vigil_sample_services::bus::{Bus, BusError, Message, Subscription};

fn msg(key: &str, n: u32) -> Message {
    Message {
        key: key.into(),
        headers: BTreeMap::from([(
            "traceparent".to_string(),
            format!("00-{n:032x}-{n:016x}-01"),
        )]),
        payload: n.to_le_bytes().to_vec(),
    }
}

fn num(m: &Message) -> u32 {
    u32::from_le_bytes(m.payload[..4].try_into().unwrap())
}

async fn bus(server: &NatsServer, max_messages: i64) -> NatsBus {
    NatsBus::connect(NatsBusConfig {
        max_messages,
        partitions: 4,
        ..NatsBusConfig::new(&server.url)
    })
    .await
    .unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("in time")
}

#[tokio::test]
async fn every_group_gets_every_message_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path());
    let bus = bus(&server, 10_000).await;
    let mut a = bus.subscribe("orders", "billing").await.unwrap();
    let mut b = bus.subscribe("orders", "shipping").await.unwrap();
    for n in 0..30 {
        bus.publish("orders", msg(&format!("k{}", n % 3), n))
            .await
            .unwrap();
    }
    for sub in [&mut a, &mut b] {
        let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
        for _ in 0..30 {
            let d = within(sub.next()).await.unwrap();
            assert_eq!(d.attempt, 1);
            assert_eq!(
                d.message.headers["traceparent"],
                format!("00-{0:032x}-{0:016x}-01", num(&d.message))
            );
            seen.entry(d.message.key.clone())
                .or_default()
                .push(num(&d.message));
            d.ack();
        }
        assert_eq!(seen.len(), 3, "keys survive the broker");
        for list in seen.values() {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
    }
    within(async {
        while bus.backlog("orders", "billing").await.unwrap().lag() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    bus.close();
    assert!(matches!(a.next().await, Err(BusError::Closed)));
}

#[tokio::test]
async fn a_nack_redelivers_with_the_attempt_count_and_backlog_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path());
    let bus = bus(&server, 10_000).await;
    let mut sub = bus.subscribe("payments", "svc").await.unwrap();
    bus.publish("payments", msg("k", 7)).await.unwrap();
    bus.publish("payments", msg("k", 8)).await.unwrap();
    let first = within(sub.next()).await.unwrap();
    assert_eq!(num(&first.message), 7);
    let backlog = bus.backlog("payments", "svc").await.unwrap();
    assert_eq!((backlog.queued, backlog.in_flight), (1, 1));
    first.nack(Duration::from_millis(100));
    let again = within(sub.next()).await.unwrap();
    assert_eq!(
        num(&again.message),
        7,
        "the same key waits for the retried message"
    );
    assert_eq!(again.attempt, 2);
    again.ack();
    let next = within(sub.next()).await.unwrap();
    assert_eq!(num(&next.message), 8);
    next.ack();
}

#[tokio::test]
async fn a_full_stream_makes_publishers_wait_for_room() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path());
    let bus = bus(&server, 5).await;
    let mut sub = bus.subscribe("t", "g").await.unwrap();
    for n in 0..5 {
        bus.publish("t", msg(&format!("k{n}"), n)).await.unwrap();
    }
    let blocked = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish("t", msg("k9", 9)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!blocked.is_finished(), "the sixth message waits");
    let d = within(sub.next()).await.unwrap();
    d.ack();
    within(blocked).await.unwrap().unwrap();
}
