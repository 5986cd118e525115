//! The order fulfilment saga: each service consumes the events it reacts to and emits the
//! next ones. OrderPlaced → InventoryReserved | InventoryFailed → PaymentProcessed |
//! PaymentFailed → ShipmentCreated → OrderCompleted, with InventoryReleased and OrderCancelled
//! as compensations.

pub mod inventory;
pub mod notification;
pub mod order;
pub mod payment;
pub mod shipping;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::logs::Severity;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};

use crate::bus::{Bus, BusError, CORRELATION_ID, Message};
use crate::consumer::{self, RetryPolicy};
use crate::consumer_stats::ConsumerStats;
pub use crate::ctx::Ctx;
use crate::event::{Event, EventType};
use crate::instruments::ConsumerInstruments;
use crate::telemetry;

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Stock keeping unit.
    pub sku: String,
    /// How many.
    pub qty: u32,
    /// Price of one, in cents.
    pub unit_price_cents: u64,
}

/// What a customer asks for at the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Who orders.
    pub customer_id: String,
    /// What they order.
    pub items: Vec<Item>,
    /// Payment card token; the payment service declines `"declined"`.
    pub card: String,
}

/// An order as the saga's events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order id, also the saga's correlation id.
    pub order_id: String,
    /// Who ordered.
    pub customer_id: String,
    /// What was ordered.
    pub items: Vec<Item>,
    /// Payment card token.
    pub card: String,
    /// Total to charge, in cents.
    pub amount_cents: u64,
}

/// The payload of every saga event: the order, and why when something failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaPayload {
    /// The order the event is about.
    pub order: Order,
    /// Failure reason (out of stock, card declined…); empty on success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl SagaPayload {
    /// Reads the payload of `event`.
    pub fn of(event: &Event) -> Result<SagaPayload, String> {
        SagaPayload::deserialize(&event.payload)
            .map_err(|e| format!("{:?} payload: {e}", event.event_type))
    }

    /// Reads the payload of `event` as its consumer does, checking it: an amount its items do
    /// not add up to (a producer's wrong result) is logged as a validation warning and
    /// replaced by the items' total.
    pub fn receive<B>(ctx: &Ctx<B>, event: &Event) -> Result<SagaPayload, String> {
        let mut payload = SagaPayload::of(event)?;
        let total = items_total(&payload.order.items);
        if payload.order.amount_cents != total {
            ctx.telemetry.log(
                &Context::current(),
                Severity::Warn,
                format!(
                    "validation failed for {:?} {}: amount_cents {} does not match the items' total {}; using the items' total",
                    event.event_type, event.event_id, payload.order.amount_cents, total
                ),
                &event.correlation_id,
                &[("event.type", format!("{:?}", event.event_type))],
            );
            payload.order.amount_cents = total;
        }
        Ok(payload)
    }

    /// As an event payload.
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        serde_json::to_value(self).map_err(|e| e.to_string())
    }
}

/// What `items` cost, in cents.
pub fn items_total(items: &[Item]) -> u64 {
    items
        .iter()
        .map(|i| u64::from(i.qty).saturating_mul(i.unit_price_cents))
        .sum()
}

/// `event` as a producer with a wrong result sends it: the amount off by a decimal place.
fn miscomputed(event: &Event) -> Event {
    let mut wrong = event.clone();
    if let Some(amount) = wrong.payload.pointer_mut("/order/amount_cents")
        && let Some(cents) = amount.as_u64()
    {
        *amount = serde_json::json!(cents.saturating_mul(10));
    }
    wrong
}

/// Publishes `event` to its topic in a PRODUCER span (child of the current context), keyed
/// by its correlation id so a saga's events keep their order, with the span's trace context
/// and the correlation id (also as baggage) in the headers.
pub async fn emit<B: Bus>(ctx: &Ctx<B>, event: &Event) -> Result<(), String> {
    let wrong;
    let event = if ctx.chaos.wrong_result(ctx.service()) {
        wrong = miscomputed(event);
        &wrong
    } else {
        event
    };
    let topic = event.event_type.topic();
    let tracer = ctx.telemetry.tracer();
    let span = tracer
        .span_builder(format!("send {topic}"))
        .with_kind(SpanKind::Producer)
        .with_attributes(ctx.telemetry.span_attributes(vec![
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.destination.name", topic),
            KeyValue::new("messaging.message.id", event.event_id.clone()),
            KeyValue::new("correlation_id", event.correlation_id.clone()),
            KeyValue::new("event.type", format!("{:?}", event.event_type)),
        ]))
        .start_with_context(tracer, &Context::current());
    let cx = Context::current_with_span(span).with_baggage(vec![KeyValue::new(
        CORRELATION_ID,
        event.correlation_id.clone(),
    )]);
    let mut headers = BTreeMap::from([(CORRELATION_ID.to_string(), event.correlation_id.clone())]);
    telemetry::inject(&cx, &mut headers);
    let published = async {
        let message = Message {
            key: event.correlation_id.clone(),
            headers,
            payload: event.to_bytes().map_err(|e| e.to_string())?,
        };
        // A duplicate fault publishes the same message again, as a producer retrying after
        // a lost acknowledgement does; consumers must not process it twice.
        let copies = ctx.chaos.copies(ctx.service());
        for _ in 1..copies {
            ctx.bus
                .publish(topic, message.clone())
                .await
                .map_err(|e| e.to_string())?;
        }
        ctx.bus
            .publish(topic, message)
            .await
            .map_err(|e| e.to_string())?;
        ctx.telemetry.instruments.sent.add(
            copies as u64,
            &[KeyValue::new("messaging.destination.name", topic)],
        );
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = &published {
        ctx.telemetry.fail(&cx.span(), e.clone());
    }
    cx.span().end();
    published
}

/// The event that follows `cause` in its saga, with `payload`.
pub fn next_event(
    cause: &Event,
    event_type: EventType,
    payload: &SagaPayload,
) -> Result<Event, String> {
    Ok(cause.follow(event_type, payload.to_json()?))
}

/// The event that follows `cause`: `ok` when `result` succeeded, else `failed` carrying
/// the reason.
pub fn decide(
    cause: &Event,
    payload: SagaPayload,
    result: Result<(), String>,
    ok: EventType,
    failed: EventType,
) -> Result<Event, String> {
    match result {
        Ok(()) => next_event(cause, ok, &payload),
        Err(reason) => next_event(cause, failed, &SagaPayload { reason, ..payload }),
    }
}

/// A running consumer of one service: its stats, its task and its metrics.
#[derive(Debug)]
pub struct Consumer {
    /// Service (consumer group) name.
    pub service: &'static str,
    /// Topic consumed.
    pub topic: &'static str,
    /// What it did so far.
    pub stats: Arc<ConsumerStats>,
    /// The group members' tasks; they end when the bus closes.
    pub tasks: Vec<JoinHandle<()>>,
    /// Its observed metrics, reported while the consumer lives.
    pub instruments: ConsumerInstruments,
}

impl Consumer {
    /// Waits until every member has stopped.
    pub async fn stopped(self) -> Result<(), tokio::task::JoinError> {
        for task in self.tasks {
            task.await?;
        }
        Ok(())
    }
}

/// Members per consumer group: as many as partitions, so every partition can have a
/// delivery in flight.
const MEMBERS: usize = 8;

/// How often a consumer group's backlog is sampled for its gauges.
const BACKLOG_SAMPLE: Duration = Duration::from_millis(500);

/// Subscribes the service of `ctx` to `topic` as a consumer group named after the service
/// with [`MEMBERS`] members, each running `handle(ctx, event)` for its deliveries.
pub async fn spawn_consumer<B, F, Fut>(
    ctx: &Ctx<B>,
    topic: &'static str,
    policy: RetryPolicy,
    handle: F,
) -> Result<Consumer, BusError>
where
    B: Bus,
    F: Fn(Ctx<B>, Event) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let service = ctx.service();
    let stats = Arc::new(ConsumerStats::default());
    let mut tasks = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        let sub = ctx.bus.subscribe(topic, service).await?;
        let (ctx, stats, policy, handle) =
            (ctx.clone(), stats.clone(), policy.clone(), handle.clone());
        tasks.push(tokio::spawn(async move {
            let run_ctx = ctx.clone();
            consumer::run(&run_ctx, topic, sub, policy, &stats, move |e| {
                handle(ctx.clone(), e)
            })
            .await;
        }));
    }
    let (bus, sampled) = (ctx.bus.clone(), stats.clone());
    tokio::spawn(async move {
        while let Ok(backlog) = bus.backlog(topic, service).await {
            sampled.lag.store(backlog.lag(), Ordering::Relaxed);
            sampled.queued.store(backlog.queued, Ordering::Relaxed);
            tokio::time::sleep(BACKLOG_SAMPLE).await;
        }
    });
    Ok(Consumer {
        service,
        topic,
        instruments: ConsumerInstruments::observe(ctx.telemetry.meter(), topic, service, &stats),
        stats,
        tasks,
    })
}

/// The services, in the order [`crate::deployment::Saga::start`] creates them.
pub const SERVICES: [&str; 6] = [
    "gateway",
    "order",
    "inventory",
    "payment",
    "shipping",
    "notification",
];
