//! `correlation_id` extraction and inheritance across spans, links, logs and export requests.
//!
//! An item's own attributes win (`correlation_id`, `correlation.id`, `app.correlation_id`,
//! `messaging.message.conversation_id`, or a copied baggage entry `baggage.correlation_id`).
//! Otherwise it inherits from its parent span, a span it links to, or any span of its trace
//! seen recently. "Recently" is a bounded memory of spans and traces, so memory use is fixed
//! however long Vigil runs.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::values::string_value;

/// Attribute keys that carry a correlation id, in order of preference.
pub const KEYS: [&str; 5] = [
    "correlation_id",
    "correlation.id",
    "app.correlation_id",
    "messaging.message.conversation_id",
    "baggage.correlation_id",
];

/// The correlation id an item states itself: the non-empty string value of the most
/// preferred key present.
pub fn explicit(attrs: &[KeyValue]) -> Option<&str> {
    let mut best: Option<(usize, &str)> = None;
    for kv in attrs {
        // Most attributes differ in length from every key: skip them without comparing bytes.
        if !KEYS.iter().any(|k| k.len() == kv.key.len()) {
            continue;
        }
        let Some(rank) = KEYS.iter().position(|k| *k == kv.key) else {
            continue;
        };
        if best.is_some_and(|(b, _)| b <= rank) {
            continue;
        }
        if let Some(s) = string_value(kv) {
            best = Some((rank, s));
        }
    }
    best.map(|(_, s)| s)
}

struct Bounded<K> {
    map: HashMap<K, Arc<str>>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone> Bounded<K> {
    fn new(capacity: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn insert(&mut self, key: K, value: Arc<str>) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<Arc<str>>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.map.get(key).cloned()
    }
}

/// Recently seen span → correlation id and trace → correlation id associations.
pub struct CorrelationIndex {
    spans: Bounded<String>,
    traces: Bounded<String>,
}

impl std::fmt::Debug for CorrelationIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorrelationIndex")
            .field("spans", &self.spans.map.len())
            .field("traces", &self.traces.map.len())
            .finish()
    }
}

impl CorrelationIndex {
    /// Remembers at most `capacity` spans and `capacity` traces.
    pub fn new(capacity: usize) -> Self {
        CorrelationIndex {
            spans: Bounded::new(capacity),
            traces: Bounded::new(capacity),
        }
    }

    /// Records that span `span_id` of `trace_id` belongs to `cid`.
    pub fn remember(&mut self, trace_id: &str, span_id: &str, cid: &Arc<str>) {
        if !span_id.is_empty() {
            self.spans.insert(span_id.to_string(), cid.clone());
        }
        if !trace_id.is_empty() && self.traces.get(trace_id).is_none() {
            self.traces.insert(trace_id.to_string(), cid.clone());
        }
    }

    /// The correlation id of span `span_id`, if known.
    pub fn span(&self, span_id: &str) -> Option<Arc<str>> {
        if span_id.is_empty() {
            None
        } else {
            self.spans.get(span_id)
        }
    }

    /// The correlation id of trace `trace_id`, if known.
    pub fn trace(&self, trace_id: &str) -> Option<Arc<str>> {
        if trace_id.is_empty() {
            None
        } else {
            self.traces.get(trace_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn explicit_keys_are_checked_in_order() {
        assert_eq!(
            explicit(&[kv("x", "1"), kv("correlation.id", "c1")]),
            Some("c1")
        );
        assert_eq!(
            explicit(&[
                kv("messaging.message.conversation_id", "m"),
                kv("correlation_id", "c")
            ]),
            Some("c")
        );
        assert_eq!(explicit(&[kv("correlation_id", "")]), None);
    }

    #[test]
    fn the_index_forgets_the_oldest_beyond_capacity() {
        let mut idx = CorrelationIndex::new(2);
        let c: Arc<str> = Arc::from("c");
        idx.remember("t1", "s1", &c);
        idx.remember("t1", "s2", &c);
        idx.remember("t2", "s3", &c);
        assert!(idx.span("s1").is_none());
        assert_eq!(idx.span("s3").as_deref(), Some("c"));
        assert_eq!(idx.trace("t1").as_deref(), Some("c"));
    }
}
