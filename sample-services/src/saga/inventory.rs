//! The inventory service: reserves stock for placed orders and releases it when payment fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::bus::{Bus, BusError};
use crate::consumer::RetryPolicy;
use crate::ctx::Dependency;
use crate::event::{Event, EventType};

use super::{Consumer, Ctx, Item, SagaPayload, decide, emit, next_event, spawn_consumer};

/// The inventory service's database.
pub const STOCK_DB: Dependency = Dependency {
    name: "stock-db",
    min: Duration::from_micros(500),
    max: Duration::from_millis(3),
};

/// Stock on hand and what each order holds.
#[derive(Debug, Default)]
pub struct Stock {
    on_hand: HashMap<String, u64>,
    reserved: HashMap<String, Vec<Item>>,
}

/// Shared stock of one inventory service.
#[derive(Debug, Clone, Default)]
pub struct Inventory(Arc<Mutex<Stock>>);

impl Inventory {
    /// Inventory holding `on_hand` units per sku.
    pub fn new(on_hand: impl IntoIterator<Item = (String, u64)>) -> Self {
        Inventory(Arc::new(Mutex::new(Stock {
            on_hand: on_hand.into_iter().collect(),
            reserved: HashMap::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Stock> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Units of `sku` on hand.
    pub fn on_hand(&self, sku: &str) -> u64 {
        self.lock().on_hand.get(sku).copied().unwrap_or(0)
    }

    /// Reserves the order's items; the same order twice reserves once. Err names the
    /// first sku that is short.
    pub fn reserve(&self, order_id: &str, items: &[Item]) -> Result<(), String> {
        let mut stock = self.lock();
        if stock.reserved.contains_key(order_id) {
            return Ok(());
        }
        let mut wanted: HashMap<&str, u64> = HashMap::new();
        for item in items {
            *wanted.entry(item.sku.as_str()).or_default() += u64::from(item.qty);
        }
        for (sku, qty) in &wanted {
            let have = stock.on_hand.get(*sku).copied().unwrap_or(0);
            if have < *qty {
                return Err(format!("out of stock: {sku} (wanted {qty}, have {have})"));
            }
        }
        for (sku, qty) in wanted {
            if let Some(have) = stock.on_hand.get_mut(sku) {
                *have -= qty;
            }
        }
        stock.reserved.insert(order_id.to_string(), items.to_vec());
        Ok(())
    }

    /// Puts an order's reserved items back; false if it held none.
    pub fn release(&self, order_id: &str) -> bool {
        let mut stock = self.lock();
        let Some(items) = stock.reserved.remove(order_id) else {
            return false;
        };
        for item in items {
            *stock.on_hand.entry(item.sku).or_default() += u64::from(item.qty);
        }
        true
    }
}

async fn on_order<B: Bus>(ctx: Ctx<B>, inventory: Inventory, event: Event) -> Result<(), String> {
    if event.event_type != EventType::OrderPlaced {
        return Ok(());
    }
    let payload = SagaPayload::receive(&ctx, &event)?;
    let order = &payload.order;
    // Err: the database did not answer, so the event is retried; Ok(Err): out of stock.
    let reserved = ctx
        .call(&STOCK_DB, || {
            Ok(inventory.reserve(&order.order_id, &order.items))
        })
        .await?;
    let next = decide(
        &event,
        payload,
        reserved,
        EventType::InventoryReserved,
        EventType::InventoryFailed,
    )?;
    emit(&ctx, &next).await
}

async fn on_payment<B: Bus>(ctx: Ctx<B>, inventory: Inventory, event: Event) -> Result<(), String> {
    if event.event_type != EventType::PaymentFailed {
        return Ok(());
    }
    let payload = SagaPayload::receive(&ctx, &event)?;
    let order_id = &payload.order.order_id;
    if !ctx
        .call(&STOCK_DB, || Ok(inventory.release(order_id)))
        .await?
    {
        // Already released by an earlier delivery of this event.
        return Ok(());
    }
    emit(
        &ctx,
        &next_event(&event, EventType::InventoryReleased, &payload)?,
    )
    .await
}

/// Starts the inventory service's consumers over `inventory`.
pub async fn start<B: Bus>(
    ctx: &Ctx<B>,
    policy: RetryPolicy,
    inventory: Inventory,
) -> Result<Vec<Consumer>, BusError> {
    let inv = inventory.clone();
    Ok(vec![
        spawn_consumer(ctx, "orders", policy.clone(), move |c, e| {
            on_order(c, inv.clone(), e)
        })
        .await?,
        spawn_consumer(ctx, "payments", policy, move |c, e| {
            on_payment(c, inventory.clone(), e)
        })
        .await?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, qty: u32) -> Item {
        Item {
            sku: sku.into(),
            qty,
            unit_price_cents: 100,
        }
    }

    #[test]
    fn reservations_are_all_or_nothing_idempotent_and_released_once() {
        let inv = Inventory::new([("a".to_string(), 5), ("b".to_string(), 1)]);
        let err = inv
            .reserve("o1", &[item("a", 2), item("b", 2)])
            .unwrap_err();
        assert!(err.contains("out of stock: b"), "{err}");
        assert_eq!((inv.on_hand("a"), inv.on_hand("b")), (5, 1));
        inv.reserve("o2", &[item("a", 2), item("a", 1)]).unwrap();
        inv.reserve("o2", &[item("a", 2), item("a", 1)]).unwrap();
        assert_eq!(inv.on_hand("a"), 2);
        assert!(inv.release("o2"));
        assert!(!inv.release("o2"));
        assert_eq!(inv.on_hand("a"), 5);
    }
}
