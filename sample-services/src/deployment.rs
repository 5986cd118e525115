//! Every service of the saga and the HTTP gateway in front of it, started together on one
//! bus, each with its own telemetry, and the faults that can be injected into them.

use std::sync::Arc;

use crate::bus::{Bus, BusError};
use crate::chaos::Chaos;
use crate::consumer::RetryPolicy;
use crate::ctx::Ctx;
use crate::gateway::Gateway;
use crate::saga::{Consumer, SERVICES, inventory, notification, order, payment, shipping};
use crate::telemetry::{Export, Telemetry, TelemetryError};

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
    /// The faults that can be injected into the services.
    pub chaos: Arc<Chaos>,
}

impl<B: Bus> Saga<B> {
    /// Subscribes and starts every service; the inventory starts with `stock`; telemetry is
    /// exported as `export` says.
    pub async fn start(
        bus: &B,
        policy: RetryPolicy,
        stock: impl IntoIterator<Item = (String, u64)>,
        export: &Export,
    ) -> Result<Saga<B>, SagaError> {
        let telemetry = SERVICES
            .iter()
            .map(|s| Telemetry::new(s, export).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let chaos = Chaos::new(telemetry.iter().cloned());
        let ctx = |i: usize| Ctx {
            bus: bus.clone(),
            telemetry: telemetry[i].clone(),
            chaos: chaos.clone(),
        };
        let [g, o, i, p, s, n] = [0, 1, 2, 3, 4, 5].map(ctx);
        let orders = order::Orders::default();
        let inventory = inventory::Inventory::new(stock);
        let sent = Arc::new(notification::Sent::default());
        let mut consumers = order::start(&o, policy.clone(), orders.clone()).await?;
        consumers.extend(inventory::start(&i, policy.clone(), inventory.clone()).await?);
        consumers.extend(payment::start(&p, policy.clone()).await?);
        consumers.extend(shipping::start(&s, policy.clone()).await?);
        consumers.extend(notification::start(&n, policy, sent.clone()).await?);
        let gateway = Arc::new(Gateway {
            ctx: g,
            order: o,
            orders: orders.clone(),
        });
        Ok(Saga {
            gateway,
            orders,
            inventory,
            sent,
            consumers,
            telemetry,
            chaos,
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

    use super::*;
    use crate::bus::memory::{MemoryBus, MemoryBusConfig};
    use crate::saga::order::OrderStatus;
    use crate::saga::{Item, OrderRequest};

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
            &Export::none(),
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
            c.stopped().await.unwrap();
        }
    }
}
