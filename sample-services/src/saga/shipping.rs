//! The shipping service: books a shipment for every paid order.

use crate::bus::{Bus, BusError};
use crate::consumer::RetryPolicy;
use crate::event::{Event, EventType};

use super::{Consumer, Ctx, SagaPayload, emit, next_event, spawn_consumer};

async fn handle<B: Bus>(ctx: Ctx<B>, event: Event) -> Result<(), String> {
    if event.event_type != EventType::PaymentProcessed {
        return Ok(());
    }
    let payload = SagaPayload::of(&event)?;
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
