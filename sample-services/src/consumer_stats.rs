//! What a consumer group's members did, shared by them and read by the metric instruments:
//! the event ids processed recently (for dedupe), their counts and the group's backlog.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

/// What a consumer group's members did, shared by them: the event ids they processed
/// recently (for dedupe), their counts, and the group's backlog when last sampled.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Event ids processed recently.
    pub seen: Mutex<Seen>,
    /// Messages not yet acknowledged by the group.
    pub lag: AtomicU64,
    /// Messages waiting to be delivered to the group.
    pub queued: AtomicU64,
    /// Messages handled successfully.
    pub processed: AtomicU64,
    /// Redeliveries of already processed events, acknowledged without handling.
    pub duplicates: AtomicU64,
    /// Failed attempts that were scheduled for retry.
    pub retries: AtomicU64,
    /// Messages sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
}

/// The event ids a consumer has processed recently (bounded, oldest forgotten first).
#[derive(Debug)]
pub struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Default for Seen {
    /// Remembers the last 100,000 ids.
    fn default() -> Self {
        Seen::new(100_000)
    }
}

impl Seen {
    /// Remembers up to `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        Seen {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// True if `id` was processed.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Records `id` as processed.
    pub fn insert(&mut self, id: &str) {
        if self.ids.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
    }
}
