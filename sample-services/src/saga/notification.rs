//! The notification service: tells the customer how their order ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::bus::{Bus, BusError};
use crate::consumer::RetryPolicy;
use crate::ctx::Dependency;
use crate::event::{Event, EventType};

use super::{Consumer, Ctx, spawn_consumer};

/// The provider customer emails are sent through.
pub const EMAIL_PROVIDER: Dependency = Dependency {
    name: "email-provider",
    min: Duration::from_millis(1),
    max: Duration::from_millis(4),
};

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
        spawn_consumer(ctx, "orders", policy, move |ctx, e: Event| {
            let sent = sent.clone();
            async move {
                let counter = match e.event_type {
                    EventType::OrderCompleted => &sent.completed,
                    EventType::OrderCancelled => &sent.cancelled,
                    _ => return Ok(()),
                };
                ctx.call(&EMAIL_PROVIDER, || Ok(())).await?;
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await?,
    ])
}
