//! The saga's domain events: an immutable JSON envelope (id, type, time, correlation and
//! causation ids, schema version) around a typed payload.

use serde::{Deserialize, Serialize};

/// Version of the envelope and payload layout written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened, in the order fulfilment saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// The gateway accepted an order.
    OrderPlaced,
    /// Stock was set aside for the order.
    InventoryReserved,
    /// Not enough stock: the order cannot proceed.
    InventoryFailed,
    /// The customer was charged.
    PaymentProcessed,
    /// The charge was declined.
    PaymentFailed,
    /// Compensation: reserved stock was put back.
    InventoryReleased,
    /// A shipment was booked.
    ShipmentCreated,
    /// The saga finished successfully.
    OrderCompleted,
    /// Compensation: the order was cancelled.
    OrderCancelled,
}

impl EventType {
    /// The topic events of this type are published to.
    pub fn topic(self) -> &'static str {
        match self {
            EventType::OrderPlaced | EventType::OrderCompleted | EventType::OrderCancelled => {
                "orders"
            }
            EventType::InventoryReserved
            | EventType::InventoryFailed
            | EventType::InventoryReleased => "inventory",
            EventType::PaymentProcessed | EventType::PaymentFailed => "payments",
            EventType::ShipmentCreated => "shipments",
        }
    }
}

/// One immutable event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id; consumers deduplicate on it.
    pub event_id: String,
    /// What happened.
    pub event_type: EventType,
    /// Layout version ([`SCHEMA_VERSION`] when written by this build).
    pub schema_version: u32,
    /// When it happened, RFC 3339 UTC.
    pub occurred_at: String,
    /// The business transaction (order) this event belongs to.
    pub correlation_id: String,
    /// The id of the event that caused this one; empty for the first event of a saga.
    pub causation_id: String,
    /// Type-specific details (order id, items, amounts, reasons…).
    pub payload: serde_json::Value,
}

/// Why an event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or not an event (or, writing, not serializable).
    #[error("malformed event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a newer build with a layout this one does not know.
    #[error("event schema version {0} is newer than {SCHEMA_VERSION}")]
    UnknownVersion(u32),
}

impl Event {
    /// An event of `event_type` caused by `cause` (none for the first of a saga), in
    /// transaction `correlation_id`.
    pub fn new(
        event_type: EventType,
        correlation_id: &str,
        cause: Option<&Event>,
        payload: serde_json::Value,
    ) -> Event {
        Event {
            event_id: new_id(),
            event_type,
            schema_version: SCHEMA_VERSION,
            occurred_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            correlation_id: correlation_id.to_string(),
            causation_id: cause.map(|c| c.event_id.clone()).unwrap_or_default(),
            payload,
        }
    }

    /// The next event of the same saga, caused by this one.
    pub fn follow(&self, event_type: EventType, payload: serde_json::Value) -> Event {
        Event::new(event_type, &self.correlation_id, Some(self), payload)
    }

    /// The JSON bytes sent over the bus.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EventError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Reads an event from the bus.
    pub fn from_bytes(bytes: &[u8]) -> Result<Event, EventError> {
        let event: Event = serde_json::from_slice(bytes)?;
        if event.schema_version > SCHEMA_VERSION {
            return Err(EventError::UnknownVersion(event.schema_version));
        }
        Ok(event)
    }
}

/// A random 128-bit id as 32 hex digits.
pub fn new_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_chain_their_causes() {
        let placed = Event::new(
            EventType::OrderPlaced,
            "ord-1",
            None,
            serde_json::json!({"order_id": "ord-1", "items": [{"sku": "a", "qty": 2}]}),
        );
        let reserved = placed.follow(EventType::InventoryReserved, serde_json::json!({}));
        assert_eq!(reserved.causation_id, placed.event_id);
        assert_eq!(reserved.correlation_id, "ord-1");
        assert_ne!(reserved.event_id, placed.event_id);
        let back = Event::from_bytes(&reserved.to_bytes().unwrap()).unwrap();
        assert_eq!(back, reserved);
        let json: serde_json::Value = serde_json::from_slice(&placed.to_bytes().unwrap()).unwrap();
        assert_eq!(json["event_type"], "OrderPlaced");
        assert_eq!(json["schema_version"], 1);
        assert!(json["occurred_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        let mut e = Event::new(EventType::OrderPlaced, "c", None, serde_json::json!({}));
        e.schema_version = SCHEMA_VERSION + 1;
        assert!(matches!(
            Event::from_bytes(&e.to_bytes().unwrap()),
            Err(EventError::UnknownVersion(_))
        ));
        assert!(matches!(
            Event::from_bytes(b"{not json"),
            Err(EventError::Malformed(_))
        ));
    }
}
