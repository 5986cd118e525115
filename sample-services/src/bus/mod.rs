//! The message bus the services talk over: messages, deliveries and the `Bus` contract that
//! every broker implementation keeps.
//!
//! Contract: topics are split into partitions by message key, so messages with one key are
//! delivered in publish order; every consumer group sees every message of a topic; a partition
//! hands out its next message only after the previous one is settled; a delivery that is
//! nacked, dropped unsettled, or not acked within the ack wait is redelivered with its attempt
//! count raised (at-least-once). Queues are bounded: publishing waits for room.

pub mod memory;
pub mod nats;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Header carrying the W3C trace context of the producer span.
pub const TRACEPARENT: &str = "traceparent";
/// Header carrying W3C trace state.
pub const TRACESTATE: &str = "tracestate";
/// Header carrying W3C baggage.
pub const BAGGAGE: &str = "baggage";
/// Header carrying the business transaction's correlation id.
pub const CORRELATION_ID: &str = "correlation_id";

/// One message as published: a partitioning key, headers and an opaque payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Partitioning key: messages with equal keys keep their order.
    pub key: String,
    /// Headers such as [`TRACEPARENT`] and [`CORRELATION_ID`].
    pub headers: BTreeMap<String, String>,
    /// The serialized event.
    pub payload: Vec<u8>,
}

/// Errors of a bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus was shut down.
    #[error("the bus is closed")]
    Closed,
    /// The broker refused or failed an operation.
    #[error("broker error: {0}")]
    Broker(String),
}

/// The messages of a topic a consumer group has not yet acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Waiting to be delivered: the group's queue depth.
    pub queued: u64,
    /// Delivered, not yet acknowledged.
    pub in_flight: u64,
}

impl Backlog {
    /// Everything not yet acknowledged: the group's lag.
    pub fn lag(&self) -> u64 {
        self.queued + self.in_flight
    }
}

/// How a delivery ends.
pub trait Settle: Send {
    /// Processing succeeded: the message is done for this group.
    fn ack(self: Box<Self>);
    /// Processing failed: deliver the message again after `delay`.
    fn nack(self: Box<Self>, delay: Duration);
}

/// A message handed to one consumer of a group, to be acked or nacked.
pub struct Delivery {
    /// Topic the message was published to.
    pub topic: String,
    /// Partition of the topic it came from.
    pub partition: usize,
    /// The message.
    pub message: Arc<Message>,
    /// 1 on first delivery, then 2, 3, … on redeliveries.
    pub attempt: u32,
    settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("key", &self.message.key)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl Delivery {
    /// A delivery settled through `settle`.
    pub fn new(
        topic: String,
        partition: usize,
        message: Arc<Message>,
        attempt: u32,
        settle: Box<dyn Settle>,
    ) -> Self {
        Delivery {
            topic,
            partition,
            message,
            attempt,
            settle,
        }
    }

    /// Marks the message processed.
    pub fn ack(self) {
        self.settle.ack();
    }

    /// Asks for redelivery after `delay`.
    pub fn nack(self, delay: Duration) {
        self.settle.nack(delay);
    }
}

/// A stream of deliveries for one consumer group member.
pub trait Subscription: Send {
    /// The next delivery; `Err(Closed)` once the bus shuts down.
    fn next(&mut self) -> impl Future<Output = Result<Delivery, BusError>> + Send;
}

/// A broker: publish to topics, consume them as members of consumer groups.
pub trait Bus: Clone + Send + Sync + 'static {
    /// The subscription type of this broker.
    type Sub: Subscription + 'static;

    /// Publishes `message` to `topic`, waiting while the topic's queues are full.
    fn publish(
        &self,
        topic: &str,
        message: Message,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Joins consumer group `group` of `topic`. Members of one group share its messages;
    /// each group receives every message published after the group first subscribed.
    fn subscribe(
        &self,
        topic: &str,
        group: &str,
    ) -> impl Future<Output = Result<Self::Sub, BusError>> + Send;

    /// What `group` has not yet acknowledged on `topic`; `Err(Closed)` once the bus shuts
    /// down.
    fn backlog(
        &self,
        topic: &str,
        group: &str,
    ) -> impl Future<Output = Result<Backlog, BusError>> + Send;
}

/// The partition of `key` among `partitions` (FNV-1a, stable across runs and brokers).
pub fn partition_of(key: &str, partitions: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % partitions.max(1) as u64) as usize
}
