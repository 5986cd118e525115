//! The order service: places orders, and closes them when the saga completes or fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use serde::Serialize;

use crate::bus::{Bus, BusError};
use crate::consumer::RetryPolicy;
use crate::ctx::Dependency;
use crate::event::{Event, EventType, new_id};

use super::{
    Consumer, Ctx, Order, OrderRequest, SagaPayload, emit, items_total, next_event, spawn_consumer,
};

/// The order service's database.
pub const ORDER_DB: Dependency = Dependency {
    name: "order-db",
    min: Duration::from_micros(500),
    max: Duration::from_millis(2),
};

/// The handler (and span name) placing orders.
pub const PLACE: &str = "order.place";

/// Where an order stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OrderStatus {
    /// The saga is running.
    Pending,
    /// Shipped.
    Completed,
    /// Cancelled, and why.
    Cancelled {
        /// What failed.
        reason: String,
    },
}

/// The orders one order service knows.
#[derive(Debug, Clone, Default)]
pub struct Orders(Arc<Mutex<HashMap<String, OrderStatus>>>);

impl Orders {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, OrderStatus>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The status of `order_id`, if it exists.
    pub fn status(&self, order_id: &str) -> Option<OrderStatus> {
        self.lock().get(order_id).cloned()
    }

    fn close(&self, order_id: &str, status: OrderStatus) -> bool {
        let mut orders = self.lock();
        match orders.get_mut(order_id) {
            Some(s) if *s == OrderStatus::Pending => {
                *s = status;
                true
            }
            _ => false,
        }
    }
}

/// Places an order in a SERVER span of the order service (child of the caller's current
/// context): records it as pending and emits OrderPlaced. Returns the order id.
pub async fn place<B: Bus>(
    ctx: &Ctx<B>,
    orders: &Orders,
    request: OrderRequest,
) -> Result<String, String> {
    let order_id = format!("ord-{}", &new_id()[..16]);
    ctx.arrive(PLACE).await;
    let tracer = ctx.telemetry.tracer();
    let span = tracer
        .span_builder(PLACE)
        .with_kind(SpanKind::Server)
        .with_attributes(ctx.telemetry.span_attributes(vec![
            KeyValue::new("rpc.system", "in-process"),
            KeyValue::new("rpc.method", "place"),
            KeyValue::new("correlation_id", order_id.clone()),
        ]))
        .start_with_context(tracer, &Context::current());
    let cx = Context::current_with_span(span);
    let placed = record_and_emit(ctx, orders, request, order_id)
        .with_context(cx.clone())
        .await;
    if let Err(e) = &placed {
        ctx.telemetry.fail(&cx.span(), e.clone());
    }
    cx.span().end();
    placed
}

async fn record_and_emit<B: Bus>(
    ctx: &Ctx<B>,
    orders: &Orders,
    request: OrderRequest,
    order_id: String,
) -> Result<String, String> {
    let amount_cents = items_total(&request.items);
    let order = Order {
        order_id: order_id.clone(),
        customer_id: request.customer_id,
        items: request.items,
        card: request.card,
        amount_cents,
    };
    let payload = SagaPayload {
        order,
        reason: String::new(),
    };
    let event = Event::new(EventType::OrderPlaced, &order_id, None, payload.to_json()?);
    ctx.faults(PLACE).await?;
    ctx.call(&ORDER_DB, || {
        orders.lock().insert(order_id.clone(), OrderStatus::Pending);
        Ok(())
    })
    .await?;
    emit(ctx, &event).await?;
    Ok(order_id)
}

async fn on_event<B: Bus>(ctx: Ctx<B>, orders: Orders, event: Event) -> Result<(), String> {
    let next = match event.event_type {
        EventType::ShipmentCreated => EventType::OrderCompleted,
        EventType::InventoryFailed | EventType::InventoryReleased => EventType::OrderCancelled,
        _ => return Ok(()),
    };
    let payload = SagaPayload::receive(&ctx, &event)?;
    let status = if next == EventType::OrderCompleted {
        OrderStatus::Completed
    } else if payload.reason.is_empty() {
        OrderStatus::Cancelled {
            reason: "payment failed".into(),
        }
    } else {
        OrderStatus::Cancelled {
            reason: payload.reason.clone(),
        }
    };
    if orders.close(&payload.order.order_id, status) {
        emit(&ctx, &next_event(&event, next, &payload)?).await?;
    }
    Ok(())
}

/// Starts the order service's consumers over `orders`.
pub async fn start<B: Bus>(
    ctx: &Ctx<B>,
    policy: RetryPolicy,
    orders: Orders,
) -> Result<Vec<Consumer>, BusError> {
    let mut consumers = Vec::new();
    for topic in ["inventory", "shipments"] {
        let orders = orders.clone();
        consumers.push(
            spawn_consumer(ctx, topic, policy.clone(), move |c, e| {
                on_event(c, orders.clone(), e)
            })
            .await?,
        );
    }
    Ok(consumers)
}
