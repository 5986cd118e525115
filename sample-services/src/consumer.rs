//! Reliable consumption: deduplicate by `event_id`, retry failures with exponential backoff
//! and jitter, and send messages that keep failing to the topic's dead-letter topic; each
//! delivery is traced as a CONSUMER span and its outcome logged.

use std::future::Future;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opentelemetry::context::FutureExt as _;
use opentelemetry::logs::Severity;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};

use crate::bus::{Bus, BusError, Delivery, Message, Subscription};
use crate::consumer_stats::{ConsumerStats, Seen};
use crate::ctx::Ctx;
use crate::event::Event;
use crate::telemetry::{self, Telemetry};

/// Header naming why a message was dead-lettered.
pub const DEAD_LETTER_REASON: &str = "dead_letter_reason";
/// Header giving how many attempts a dead-lettered message had.
pub const DEAD_LETTER_ATTEMPTS: &str = "dead_letter_attempts";

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// How failures are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Deliveries before a message is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt `attempt` (1-based): exponential, capped, with "equal
    /// jitter" (half fixed, half random) so retries of many messages do not align.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let half = exp / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled and acked.
    Processed,
    /// Already processed: acked without handling.
    Duplicate,
    /// Failed; will be redelivered.
    Retried(String),
    /// Failed for the last time, or unreadable: moved to the dead-letter topic.
    DeadLettered(String),
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Retried(_) => "retried",
            Outcome::DeadLettered(_) => "dead_lettered",
        }
    }
}

/// One consumer's processing state: what it processed, how it retries, what it counts and
/// how it reports.
#[derive(Debug)]
pub struct Processor<'a, B> {
    ctx: &'a Ctx<B>,
    policy: RetryPolicy,
    stats: &'a ConsumerStats,
}

impl<'a, B: Bus> Processor<'a, B> {
    /// A processor for the service of `ctx` (which also receives its dead letters), counting
    /// and deduplicating in `stats`.
    pub fn new(ctx: &'a Ctx<B>, policy: RetryPolicy, stats: &'a ConsumerStats) -> Self {
        Processor { ctx, policy, stats }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.stats.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one delivery in a CONSUMER span that continues the producer's trace and links
    /// to the producer span: dedupe, run `handle` (with the span as current context), then
    /// ack, retry or dead-letter, logging what happened.
    pub async fn process<F, Fut>(
        &mut self,
        delivery: Delivery,
        handle: F,
    ) -> Result<Outcome, BusError>
    where
        F: FnOnce(Event) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let telemetry = &*self.ctx.telemetry;
        self.ctx.arrive(&handler_name(&delivery.topic)).await;
        let cx = consumer_span(telemetry, &delivery);
        let labels = [
            KeyValue::new("messaging.destination.name", delivery.topic.clone()),
            KeyValue::new("messaging.consumer.group.name", telemetry.service),
        ];
        let started = Instant::now();
        telemetry.instruments.in_flight.add(1, &labels[..1]);
        let outcome = self
            .settle(delivery, &cx, handle)
            .with_context(cx.clone())
            .await;
        telemetry.instruments.in_flight.add(-1, &labels[..1]);
        if let Ok(o) = &outcome {
            let mut labels = labels.to_vec();
            labels.push(KeyValue::new("outcome", o.name()));
            telemetry
                .instruments
                .process_duration
                .record(started.elapsed().as_secs_f64(), &labels);
        }
        if let Ok(Outcome::Retried(reason) | Outcome::DeadLettered(reason)) = &outcome {
            telemetry.fail(&cx.span(), reason.clone());
        }
        cx.span().end();
        outcome
    }
    async fn settle<F, Fut>(
        &mut self,
        delivery: Delivery,
        cx: &Context,
        handle: F,
    ) -> Result<Outcome, BusError>
    where
        F: FnOnce(Event) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let event = match Event::from_bytes(&delivery.message.payload) {
            Ok(e) => e,
            // Retrying cannot make malformed bytes readable.
            Err(e) => {
                let cid = delivery.message.key.clone();
                self.ctx.telemetry.log(
                    cx,
                    Severity::Error,
                    format!("dead-lettered unreadable message: {e}"),
                    &cid,
                    &[],
                );
                return dead_letter(&self.ctx.bus, delivery, e.to_string(), self.stats).await;
            }
        };
        let cid = event.correlation_id.clone();
        let what = [
            ("event.type", format!("{:?}", event.event_type)),
            ("event.id", event.event_id.clone()),
        ];
        let (span, telemetry) = (cx.span(), &self.ctx.telemetry);
        telemetry.annotate(
            &span,
            KeyValue::new("messaging.message.id", what[1].1.clone()),
        );
        telemetry.annotate(&span, KeyValue::new("correlation_id", cid.clone()));
        telemetry.annotate(&span, KeyValue::new("event.type", what[0].1.clone()));
        if self.seen().contains(&event.event_id) {
            self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            self.ctx.telemetry.log(
                cx,
                Severity::Info,
                format!("duplicate {:?} ignored", event.event_type),
                &cid,
                &what,
            );
            delivery.ack();
            return Ok(Outcome::Duplicate);
        }
        let id = event.event_id.clone();
        let handler = handler_name(&delivery.topic);
        let faults = self.ctx.delivery_faults(&handler, delivery.partition);
        let handled = match faults.await {
            Ok(()) => handle(event).await,
            Err(injected) => Err(injected),
        };
        match handled {
            Ok(()) => {
                self.seen().insert(&id);
                self.stats.processed.fetch_add(1, Ordering::Relaxed);
                self.ctx.telemetry.log(
                    cx,
                    Severity::Info,
                    format!("handled {}", what[0].1),
                    &cid,
                    &what,
                );
                delivery.ack();
                Ok(Outcome::Processed)
            }
            Err(reason) if delivery.attempt >= self.policy.max_attempts => {
                self.ctx.telemetry.log(
                    cx,
                    Severity::Error,
                    format!(
                        "dead-lettered after {} attempts: {reason}",
                        delivery.attempt
                    ),
                    &cid,
                    &what,
                );
                dead_letter(&self.ctx.bus, delivery, reason, self.stats).await
            }
            Err(reason) => {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                let delay = self.policy.backoff(delivery.attempt);
                self.ctx.telemetry.log(
                    cx,
                    Severity::Warn,
                    format!(
                        "attempt {} failed, retrying in {delay:?}: {reason}",
                        delivery.attempt
                    ),
                    &cid,
                    &what,
                );
                delivery.nack(delay);
                Ok(Outcome::Retried(reason))
            }
        }
    }
}

/// The name of the handler consuming `topic`: its CONSUMER span's name.
pub fn handler_name(topic: &str) -> String {
    format!("process {topic}")
}

fn consumer_span(telemetry: &Telemetry, delivery: &Delivery) -> Context {
    let parent = telemetry::extract(&delivery.message.headers);
    let producer = parent.span().span_context().clone();
    let tracer = telemetry.tracer();
    let mut builder = tracer
        .span_builder(handler_name(&delivery.topic))
        .with_kind(SpanKind::Consumer)
        .with_attributes(telemetry.span_attributes(vec![
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", delivery.topic.clone()),
            KeyValue::new("messaging.consumer.group.name", telemetry.service),
            KeyValue::new(
                "messaging.destination.partition.id",
                delivery.partition.to_string(),
            ),
            KeyValue::new("messaging.delivery.attempt", i64::from(delivery.attempt)),
        ]));
    if producer.is_valid() {
        builder = builder.with_links(vec![Link::with_context(producer)]);
    }
    let span = builder.start_with_context(tracer, &parent);
    parent.with_span(span)
}

async fn dead_letter<B: Bus>(
    bus: &B,
    delivery: Delivery,
    reason: String,
    stats: &ConsumerStats,
) -> Result<Outcome, BusError> {
    let mut message: Message = (*delivery.message).clone();
    message
        .headers
        .insert(DEAD_LETTER_REASON.into(), reason.clone());
    message
        .headers
        .insert(DEAD_LETTER_ATTEMPTS.into(), delivery.attempt.to_string());
    // Unacked until the dead letter is published: a failure here means redelivery, not loss.
    bus.publish(&dead_letter_topic(&delivery.topic), message)
        .await?;
    stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
    delivery.ack();
    Ok(Outcome::DeadLettered(reason))
}

/// How often a stalled consumer looks whether its stall is over.
const STALL_POLL: Duration = Duration::from_millis(50);

/// Runs the consumer of `topic` for the service of `ctx` until the bus closes: every
/// delivery of `sub` goes through [`Processor::process`]; while a stall fault holds the
/// consumer it takes nothing.
pub async fn run<B, S, F, Fut>(
    ctx: &Ctx<B>,
    topic: &str,
    mut sub: S,
    policy: RetryPolicy,
    stats: &ConsumerStats,
    mut handle: F,
) where
    B: Bus,
    S: Subscription,
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let handler = handler_name(topic);
    let mut processor = Processor::new(ctx, policy, stats);
    loop {
        while ctx.chaos.stalled(ctx.service(), &handler) {
            tokio::time::sleep(STALL_POLL).await;
        }
        let Ok(delivery) = sub.next().await else {
            break;
        };
        if processor.process(delivery, &mut handle).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::bus::memory::{MemoryBus, MemoryBusConfig};
    use crate::chaos::{Chaos, FaultKind, FaultSpec};
    use crate::event::EventType;
    use crate::telemetry::Export;

    fn message(event: &Event) -> Message {
        Message {
            key: event.correlation_id.clone(),
            headers: Default::default(),
            payload: event.to_bytes().unwrap(),
        }
    }

    fn ctx(bus: &MemoryBus) -> Ctx<MemoryBus> {
        let telemetry = Arc::new(Telemetry::new("svc", &Export::none()).unwrap());
        Ctx {
            bus: bus.clone(),
            chaos: Chaos::new([telemetry.clone()]),
            telemetry,
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        }
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_and_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            assert!(p.backoff(30) <= Duration::from_secs(1));
        }
    }

    #[tokio::test]
    async fn duplicates_are_acked_without_handling_them_twice() {
        let bus = MemoryBus::new(MemoryBusConfig::default());
        let mut sub = bus.subscribe("orders", "svc").await.unwrap();
        let e = Event::new(EventType::OrderPlaced, "c1", None, serde_json::json!({}));
        bus.publish("orders", message(&e)).await.unwrap();
        bus.publish("orders", message(&e)).await.unwrap();
        let (stats, ctx) = (ConsumerStats::default(), ctx(&bus));
        let mut processor = Processor::new(&ctx, fast(), &stats);
        let mut handled = 0;
        for expected in [Outcome::Processed, Outcome::Duplicate] {
            let d = sub.next().await.unwrap();
            let out = processor
                .process(d, |_| {
                    handled += 1;
                    async { Ok(()) }
                })
                .await
                .unwrap();
            assert_eq!(out, expected);
        }
        assert_eq!(handled, 1);
        assert_eq!(stats.duplicates.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn failures_retry_then_dead_letter_with_the_reason() {
        let bus = MemoryBus::new(MemoryBusConfig::default());
        let mut sub = bus.subscribe("payments", "svc").await.unwrap();
        let mut dlq = bus.subscribe("payments.dlq", "ops").await.unwrap();
        let e = Event::new(
            EventType::PaymentProcessed,
            "c2",
            None,
            serde_json::json!({}),
        );
        bus.publish("payments", message(&e)).await.unwrap();
        let (stats, ctx) = (ConsumerStats::default(), ctx(&bus));
        let mut processor = Processor::new(&ctx, fast(), &stats);
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let d = sub.next().await.unwrap();
            outcomes.push(
                processor
                    .process(d, |_| async { Err("card processor down".to_string()) })
                    .await
                    .unwrap(),
            );
        }
        assert!(matches!(outcomes[0], Outcome::Retried(_)));
        assert!(matches!(outcomes[1], Outcome::Retried(_)));
        assert!(matches!(outcomes[2], Outcome::DeadLettered(_)));
        let dead = dlq.next().await.unwrap();
        assert_eq!(
            dead.message.headers[DEAD_LETTER_REASON],
            "card processor down"
        );
        assert_eq!(dead.message.headers[DEAD_LETTER_ATTEMPTS], "3");
        assert_eq!(Event::from_bytes(&dead.message.payload).unwrap(), e);
        assert_eq!(bus.backlog("payments", "svc").await.unwrap().lag(), 0);
        assert_eq!(stats.retries.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dead_lettered.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn unreadable_messages_go_straight_to_the_dead_letter_topic() {
        let bus = MemoryBus::new(MemoryBusConfig::default());
        let mut sub = bus.subscribe("orders", "svc").await.unwrap();
        let mut dlq = bus.subscribe("orders.dlq", "ops").await.unwrap();
        let garbage = Message {
            key: "k".into(),
            headers: Default::default(),
            payload: b"not an event".to_vec(),
        };
        bus.publish("orders", garbage).await.unwrap();
        let (stats, ctx) = (ConsumerStats::default(), ctx(&bus));
        let mut processor = Processor::new(&ctx, fast(), &stats);
        let d = sub.next().await.unwrap();
        let out = processor.process(d, |_| async { Ok(()) }).await.unwrap();
        assert!(matches!(out, Outcome::DeadLettered(r) if r.contains("malformed")));
        assert_eq!(dlq.next().await.unwrap().attempt, 1);
    }

    #[tokio::test]
    async fn run_consumes_until_the_bus_closes_and_not_while_stalled() {
        let bus = MemoryBus::new(MemoryBusConfig::default());
        let sub = bus.subscribe("orders", "svc").await.unwrap();
        let stats = Arc::new(ConsumerStats::default());
        let ctx = ctx(&bus);
        let stall = ctx
            .chaos
            .start(FaultSpec {
                service: "svc".into(),
                operation: None,
                partition: None,
                kind: FaultKind::Stall {},
                duration_secs: None,
            })
            .unwrap();
        let task = {
            let (ctx, stats) = (ctx.clone(), stats.clone());
            tokio::spawn(async move {
                run(&ctx, "orders", sub, fast(), &stats, |_| async { Ok(()) }).await;
            })
        };
        for n in 0..3 {
            let e = Event::new(
                EventType::OrderPlaced,
                &format!("c{n}"),
                None,
                serde_json::json!({}),
            );
            bus.publish("orders", message(&e)).await.unwrap();
        }
        tokio::time::sleep(STALL_POLL * 4).await;
        assert_eq!(stats.processed.load(Ordering::Relaxed), 0, "stalled");
        assert_eq!(bus.backlog("orders", "svc").await.unwrap().queued, 3);
        ctx.chaos.stop(stall.id).unwrap();
        while stats.processed.load(Ordering::Relaxed) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bus.close();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn injected_errors_fail_the_handler_without_running_it() {
        let bus = MemoryBus::new(MemoryBusConfig::default());
        let mut sub = bus.subscribe("orders", "svc").await.unwrap();
        let e = Event::new(EventType::OrderPlaced, "c9", None, serde_json::json!({}));
        bus.publish("orders", message(&e)).await.unwrap();
        let (stats, ctx) = (ConsumerStats::default(), ctx(&bus));
        ctx.chaos
            .start(FaultSpec {
                service: "svc".into(),
                operation: Some(handler_name("orders")),
                partition: None,
                kind: FaultKind::Errors { rate: 1.0 },
                duration_secs: None,
            })
            .unwrap();
        let mut processor = Processor::new(&ctx, fast(), &stats);
        let mut ran = false;
        let out = processor
            .process(sub.next().await.unwrap(), |_| {
                ran = true;
                async { Ok(()) }
            })
            .await
            .unwrap();
        assert_eq!(out, Outcome::Retried("injected error".into()));
        assert!(!ran);
    }
}
