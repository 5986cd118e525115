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

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};

use crate::bus::{Bus, BusError, CORRELATION_ID, Message};
use crate::consumer::{self, ConsumerStats, RetryPolicy};
use crate::event::{Event, EventType};
use crate::gateway::Gateway;
use crate::telemetry::{self, Telemetry, TelemetryError};

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

    /// As an event payload.
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        serde_json::to_value(self).map_err(|e| e.to_string())
    }
}

/// What a service's handlers work with: the bus and the service's telemetry.
#[derive(Debug, Clone)]
pub struct Ctx<B> {
    /// The bus.
    pub bus: B,
    /// The service's tracer and logger.
    pub telemetry: Arc<Telemetry>,
}

/// Publishes `event` to its topic in a PRODUCER span (child of the current context), keyed
/// by its correlation id so a saga's events keep their order, with the span's trace context
/// and the correlation id (also as baggage) in the headers.
pub async fn emit<B: Bus>(ctx: &Ctx<B>, event: &Event) -> Result<(), String> {
    let topic = event.event_type.topic();
    let tracer = ctx.telemetry.tracer();
    let span = tracer
        .span_builder(format!("send {topic}"))
        .with_kind(SpanKind::Producer)
        .with_attributes(vec![
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.destination.name", topic),
            KeyValue::new("messaging.message.id", event.event_id.clone()),
            KeyValue::new("correlation_id", event.correlation_id.clone()),
            KeyValue::new("event.type", format!("{:?}", event.event_type)),
        ])
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
        ctx.bus
            .publish(topic, message)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = &published {
        cx.span().set_status(Status::error(e.clone()));
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

/// A running consumer of one service: its stats and its task.
#[derive(Debug)]
pub struct Consumer {
    /// Service (consumer group) name.
    pub service: &'static str,
    /// Topic consumed.
    pub topic: &'static str,
    /// What it did so far.
    pub stats: Arc<ConsumerStats>,
    /// The consuming task; ends when the bus closes.
    pub task: JoinHandle<()>,
}

/// Subscribes the service of `ctx` to `topic` (as a consumer group named after the service)
/// and spawns its consumer running `handle(ctx, event)` for each event.
pub async fn spawn_consumer<B, F, Fut>(
    ctx: &Ctx<B>,
    topic: &'static str,
    policy: RetryPolicy,
    mut handle: F,
) -> Result<Consumer, BusError>
where
    B: Bus,
    F: FnMut(Ctx<B>, Event) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let service = ctx.telemetry.service;
    let sub = ctx.bus.subscribe(topic, service).await?;
    let stats = Arc::new(ConsumerStats::default());
    let task = {
        let (ctx, stats) = (ctx.clone(), stats.clone());
        tokio::spawn(async move {
            let (bus, telemetry) = (ctx.bus.clone(), ctx.telemetry.clone());
            consumer::run(bus, sub, policy, &stats, &telemetry, move |e| {
                handle(ctx.clone(), e)
            })
            .await;
        })
    };
    Ok(Consumer {
        service,
        topic,
        stats,
        task,
    })
}

/// Every service of the saga, running on one bus.
#[derive(Debug)]
pub struct Saga<B> {
    /// The HTTP gateway in front of the order service.
    pub gateway: Arc<Gateway<B>>,
    /// The order service's orders.
    pub orders: order::Orders,
    /// The inventory service's stock.
    pub inventory: inventory::Inventory,
    /// What the notification service sent.
    pub sent: Arc<notification::Sent>,
    /// Every consumer of every service.
    pub consumers: Vec<Consumer>,
    /// Every service's telemetry.
    pub telemetry: Vec<Arc<Telemetry>>,
}

impl<B: Bus> Saga<B> {
    /// Subscribes and starts every service; the inventory starts with `stock`; telemetry is
    /// exported to the OTLP/gRPC `endpoint` if there is one.
    pub async fn start(
        bus: &B,
        policy: RetryPolicy,
        stock: impl IntoIterator<Item = (String, u64)>,
        endpoint: Option<&str>,
    ) -> Result<Saga<B>, SagaError> {
        let ctx = |service| -> Result<Ctx<B>, SagaError> {
            Ok(Ctx {
                bus: bus.clone(),
                telemetry: Arc::new(Telemetry::new(service, endpoint)?),
            })
        };
        let (o, i, p, s, n) = (
            ctx("order")?,
            ctx("inventory")?,
            ctx("payment")?,
            ctx("shipping")?,
            ctx("notification")?,
        );
        let orders = order::Orders::default();
        let inventory = inventory::Inventory::new(stock);
        let sent = Arc::new(notification::Sent::default());
        let mut consumers = order::start(&o, policy.clone(), orders.clone()).await?;
        consumers.extend(inventory::start(&i, policy.clone(), inventory.clone()).await?);
        consumers.extend(payment::start(&p, policy.clone()).await?);
        consumers.extend(shipping::start(&s, policy.clone()).await?);
        consumers.extend(notification::start(&n, policy, sent.clone()).await?);
        let gateway = Arc::new(Gateway {
            telemetry: Arc::new(Telemetry::new("gateway", endpoint)?),
            order: o.clone(),
            orders: orders.clone(),
        });
        let mut telemetry: Vec<Arc<Telemetry>> = [&o, &i, &p, &s, &n]
            .iter()
            .map(|c| c.telemetry.clone())
            .collect();
        telemetry.push(gateway.telemetry.clone());
        Ok(Saga {
            gateway,
            orders,
            inventory,
            sent,
            consumers,
            telemetry,
        })
    }

    /// Exports all buffered telemetry of every service.
    pub fn flush(&self) {
        for t in &self.telemetry {
            t.flush();
        }
    }
}

/// Why the saga could not start.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// A subscription failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::order::OrderStatus;
    use super::*;
    use crate::bus::memory::{MemoryBus, MemoryBusConfig};

    fn request(sku: &str, qty: u32, card: &str) -> OrderRequest {
        OrderRequest {
            customer_id: "cust-1".into(),
            items: vec![Item {
                sku: sku.into(),
                qty,
                unit_price_cents: 1_000,
            }],
            card: card.into(),
        }
    }

    #[tokio::test]
    async fn orders_complete_or_are_compensated() {
        let bus = MemoryBus::new(MemoryBusConfig::default());
        let saga = Saga::start(
            &bus,
            RetryPolicy::default(),
            [("widget".to_string(), 10)],
            None,
        )
        .await
        .unwrap();
        let place = |qty: u32, card: &'static str| {
            order::place(
                &saga.gateway.order,
                &saga.orders,
                request("widget", qty, card),
            )
        };
        let ok = place(3, "visa").await.unwrap();
        let short = place(50, "visa").await.unwrap();
        let declined = place(2, "declined").await.unwrap();
        let done = |id: &str| saga.orders.status(id) != Some(OrderStatus::Pending);
        tokio::time::timeout(Duration::from_secs(10), async {
            while !(done(&ok) && done(&short) && done(&declined))
                || saga.sent.completed.load(Ordering::Relaxed)
                    + saga.sent.cancelled.load(Ordering::Relaxed)
                    < 3
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(saga.orders.status(&ok), Some(OrderStatus::Completed));
        assert!(matches!(
            saga.orders.status(&short),
            Some(OrderStatus::Cancelled { reason }) if reason.contains("out of stock")
        ));
        assert!(matches!(
            saga.orders.status(&declined),
            Some(OrderStatus::Cancelled { reason }) if reason.contains("declined")
        ));
        // Only the completed order keeps its stock; the declined one was released.
        assert_eq!(saga.inventory.on_hand("widget"), 7);
        assert_eq!(saga.sent.completed.load(Ordering::Relaxed), 1);
        assert_eq!(saga.sent.cancelled.load(Ordering::Relaxed), 2);
        bus.close();
        for c in saga.consumers {
            c.task.await.unwrap();
        }
    }
}
