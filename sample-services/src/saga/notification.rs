//! The notification service: tells the customer how their order ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bus::{Bus, BusError};
use crate::consumer::RetryPolicy;
use crate::event::{Event, EventType};

use super::{Consumer, Ctx, spawn_consumer};

/// Notifications sent, by outcome.
#[derive(Debug, Default)]
pub struct Sent {
    /// "Your order shipped" messages.
    pub completed: AtomicU64,
    /// "Your order was cancelled" messages.
    pub cancelled: AtomicU64,
}

/// Starts the notification service's consumer, counting what it sends in `sent`.
pub async fn start<B: Bus>(
    ctx: &Ctx<B>,
    policy: RetryPolicy,
    sent: Arc<Sent>,
) -> Result<Vec<Consumer>, BusError> {
    Ok(vec![
        spawn_consumer(ctx, "orders", policy, move |_, e: Event| {
            match e.event_type {
                EventType::OrderCompleted => sent.completed.fetch_add(1, Ordering::Relaxed),
                EventType::OrderCancelled => sent.cancelled.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
            async { Ok(()) }
        })
        .await?,
    ])
}
