//! The payment service: charges the card once stock is reserved.

use std::time::Duration;

use crate::bus::{Bus, BusError};
use crate::consumer::RetryPolicy;
use crate::ctx::Dependency;
use crate::event::{Event, EventType};

use super::{Consumer, Ctx, SagaPayload, decide, emit, spawn_consumer};

/// The card processor payments are authorized with.
pub const CARD_PROCESSOR: Dependency = Dependency {
    name: "card-processor",
    min: Duration::from_millis(2),
    max: Duration::from_millis(8),
};

/// Charges above this many cents are declined.
pub const LIMIT_CENTS: u64 = 500_000;

/// Authorizes the charge for an order, or says why it is declined.
pub fn authorize(payload: &SagaPayload) -> Result<(), String> {
    if payload.order.card == "declined" {
        Err("card declined".into())
    } else if payload.order.amount_cents > LIMIT_CENTS {
        Err(format!(
            "amount {} over the limit of {LIMIT_CENTS} cents",
            payload.order.amount_cents
        ))
    } else {
        Ok(())
    }
}

async fn handle<B: Bus>(ctx: Ctx<B>, event: Event) -> Result<(), String> {
    if event.event_type != EventType::InventoryReserved {
        return Ok(());
    }
    let payload = SagaPayload::receive(&ctx, &event)?;
    let authorized = ctx
        .call(&CARD_PROCESSOR, || Ok(authorize(&payload)))
        .await?;
    let next = decide(
        &event,
        payload,
        authorized,
        EventType::PaymentProcessed,
        EventType::PaymentFailed,
    )?;
    emit(&ctx, &next).await
}

/// Starts the payment service's consumers.
pub async fn start<B: Bus>(ctx: &Ctx<B>, policy: RetryPolicy) -> Result<Vec<Consumer>, BusError> {
    Ok(vec![
        spawn_consumer(ctx, "inventory", policy, handle).await?,
    ])
}
