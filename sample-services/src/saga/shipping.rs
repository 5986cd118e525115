//! The shipping service: books a shipment for every paid order.

use std::time::Duration;

use crate::bus::{Bus, BusError};
use crate::consumer::RetryPolicy;
use crate::ctx::Dependency;
use crate::event::{Event, EventType};

use super::{Consumer, Ctx, SagaPayload, emit, next_event, spawn_consumer};

/// The carrier shipments are booked with.
pub const CARRIER_API: Dependency = Dependency {
    name: "carrier-api",
    min: Duration::from_millis(3),
    max: Duration::from_millis(10),
};

async fn handle<B: Bus>(ctx: Ctx<B>, event: Event) -> Result<(), String> {
    if event.event_type != EventType::PaymentProcessed {
        return Ok(());
    }
    let payload = SagaPayload::receive(&ctx, &event)?;
    ctx.call(&CARRIER_API, || Ok(())).await?;
    emit(
        &ctx,
        &next_event(&event, EventType::ShipmentCreated, &payload)?,
    )
    .await
}

/// Starts the shipping service's consumers.
pub async fn start<B: Bus>(ctx: &Ctx<B>, policy: RetryPolicy) -> Result<Vec<Consumer>, BusError> {
    Ok(vec![spawn_consumer(ctx, "payments", policy, handle).await?])
}
