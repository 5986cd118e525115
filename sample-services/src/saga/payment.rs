//! The payment service: charges the card once stock is reserved.

use crate::bus::{Bus, BusError};
use crate::consumer::RetryPolicy;
use crate::event::{Event, EventType};

use super::{Consumer, Ctx, SagaPayload, decide, emit, spawn_consumer};

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
    let payload = SagaPayload::of(&event)?;
    let authorized = authorize(&payload);
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
