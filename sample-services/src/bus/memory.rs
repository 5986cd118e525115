//! The in-process broker: partitioned topics, consumer groups, one in-flight message per
//! partition (per-key order), redelivery on nack, drop or ack timeout, and bounded queues.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Backlog, Bus, BusError, Delivery, Message, Settle, Subscription, partition_of};

/// Settings of the in-process broker.
#[derive(Debug, Clone)]
pub struct MemoryBusConfig {
    /// Partitions per topic: the unit of ordering and of parallelism within a group.
    pub partitions: usize,
    /// Messages a group's partition holds (queued plus in flight) before publishers wait.
    pub capacity: usize,
    /// How long a delivery may stay unsettled before it is redelivered.
    pub ack_wait: Duration,
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        MemoryBusConfig {
            partitions: 8,
            capacity: 1024,
            ack_wait: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    message: Arc<Message>,
    attempt: u32,
    ready_at: Instant,
}

#[derive(Debug)]
struct InFlight {
    token: u64,
    deadline: Instant,
    pending: Pending,
}

#[derive(Debug, Default)]
struct Partition {
    queue: VecDeque<Pending>,
    in_flight: Option<InFlight>,
}

impl Partition {
    fn held(&self) -> usize {
        self.queue.len() + usize::from(self.in_flight.is_some())
    }

    /// Puts an in-flight message back at the head of the queue for another attempt.
    fn requeue(&mut self, ready_at: Instant) {
        if let Some(f) = self.in_flight.take() {
            self.queue.push_front(Pending {
                attempt: f.pending.attempt + 1,
                ready_at,
                ..f.pending
            });
        }
    }
}

#[derive(Debug)]
struct Group {
    partitions: Vec<Partition>,
    next: usize,
}

#[derive(Debug, Default)]
struct State {
    topics: HashMap<String, HashMap<String, Group>>,
    next_token: u64,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    config: MemoryBusConfig,
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent queues behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn settle(
        &self,
        topic: &str,
        group: &str,
        partition: usize,
        token: u64,
        retry: Option<Duration>,
    ) {
        let mut state = self.lock();
        let Some(p) = state
            .topics
            .get_mut(topic)
            .and_then(|t| t.get_mut(group))
            .and_then(|g| g.partitions.get_mut(partition))
        else {
            return;
        };
        // A delivery that timed out and was handed out again no longer owns the partition.
        if p.in_flight.as_ref().is_none_or(|f| f.token != token) {
            return;
        }
        match retry {
            None => p.in_flight = None,
            Some(delay) => p.requeue(Instant::now() + delay),
        }
        drop(state);
        self.changed.notify_waiters();
    }
}

/// The in-process broker. Clones share one broker.
#[derive(Debug, Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

impl MemoryBus {
    /// A broker with `config`.
    pub fn new(config: MemoryBusConfig) -> Self {
        MemoryBus {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
                changed: Notify::new(),
            }),
        }
    }

    /// Shuts the broker down: waiting publishers and consumers get [`BusError::Closed`].
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_waiters();
    }
}

impl Bus for MemoryBus {
    type Sub = MemorySubscription;

    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        let partition = partition_of(&message.key, self.shared.config.partitions);
        let message = Arc::new(message);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if state.closed {
                    return Err(BusError::Closed);
                }
                let capacity = self.shared.config.capacity.max(1);
                let groups = state.topics.entry(topic.to_string()).or_default();
                if groups
                    .values()
                    .all(|g| g.partitions[partition].held() < capacity)
                {
                    let now = Instant::now();
                    for g in groups.values_mut() {
                        g.partitions[partition].queue.push_back(Pending {
                            message: message.clone(),
                            attempt: 1,
                            ready_at: now,
                        });
                    }
                    drop(state);
                    self.shared.changed.notify_waiters();
                    return Ok(());
                }
            }
            changed.await;
        }
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<MemorySubscription, BusError> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(BusError::Closed);
        }
        let partitions = self.shared.config.partitions.max(1);
        state
            .topics
            .entry(topic.to_string())
            .or_default()
            .entry(group.to_string())
            .or_insert_with(|| Group {
                partitions: (0..partitions).map(|_| Partition::default()).collect(),
                next: 0,
            });
        Ok(MemorySubscription {
            shared: self.shared.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
        })
    }

    async fn backlog(&self, topic: &str, group: &str) -> Result<Backlog, BusError> {
        let state = self.shared.lock();
        if state.closed {
            return Err(BusError::Closed);
        }
        let partitions = state
            .topics
            .get(topic)
            .and_then(|t| t.get(group))
            .map_or(&[][..], |g| &g.partitions[..]);
        Ok(Backlog {
            queued: partitions.iter().map(|p| p.queue.len() as u64).sum(),
            in_flight: partitions.iter().filter(|p| p.in_flight.is_some()).count() as u64,
        })
    }
}

/// One member of a consumer group of the in-process broker.
#[derive(Debug)]
pub struct MemorySubscription {
    shared: Arc<Shared>,
    topic: String,
    group: String,
}

enum Poll {
    Ready(Delivery),
    Wait(Option<Instant>),
}

impl MemorySubscription {
    fn poll(&self) -> Result<Poll, BusError> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(BusError::Closed);
        }
        let token = state.next_token;
        let Some(group) = state
            .topics
            .get_mut(&self.topic)
            .and_then(|t| t.get_mut(&self.group))
        else {
            return Err(BusError::Broker(format!(
                "group {} of {} vanished",
                self.group, self.topic
            )));
        };
        let now = Instant::now();
        let n = group.partitions.len();
        let mut wake: Option<Instant> = None;
        for step in 0..n {
            let index = (group.next + step) % n;
            let p = &mut group.partitions[index];
            if p.in_flight.as_ref().is_some_and(|f| f.deadline <= now) {
                p.requeue(now);
            }
            if let Some(f) = &p.in_flight {
                wake = Some(wake.map_or(f.deadline, |w| w.min(f.deadline)));
                continue;
            }
            let Some(head) = p.queue.front() else {
                continue;
            };
            if head.ready_at > now {
                wake = Some(wake.map_or(head.ready_at, |w| w.min(head.ready_at)));
                continue;
            }
            let Some(pending) = p.queue.pop_front() else {
                continue;
            };
            let delivery = Delivery::new(
                self.topic.clone(),
                index,
                pending.message.clone(),
                pending.attempt,
                Box::new(MemorySettle {
                    shared: self.shared.clone(),
                    topic: self.topic.clone(),
                    group: self.group.clone(),
                    partition: index,
                    token,
                    settled: false,
                }),
            );
            p.in_flight = Some(InFlight {
                token,
                deadline: now + self.shared.config.ack_wait,
                pending,
            });
            group.next = (index + 1) % n;
            state.next_token += 1;
            return Ok(Poll::Ready(delivery));
        }
        Ok(Poll::Wait(wake))
    }
}

impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.poll()? {
                Poll::Ready(d) => return Ok(d),
                Poll::Wait(Some(at)) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                Poll::Wait(None) => changed.await,
            }
        }
    }
}

struct MemorySettle {
    shared: Arc<Shared>,
    topic: String,
    group: String,
    partition: usize,
    token: u64,
    settled: bool,
}

impl MemorySettle {
    fn finish(&mut self, retry: Option<Duration>) {
        self.settled = true;
        self.shared
            .settle(&self.topic, &self.group, self.partition, self.token, retry);
    }
}

impl Settle for MemorySettle {
    fn ack(mut self: Box<Self>) {
        self.finish(None);
    }

    fn nack(mut self: Box<Self>, delay: Duration) {
        self.finish(Some(delay));
    }
}

impl Drop for MemorySettle {
    /// A delivery dropped unsettled (its consumer failed) is redelivered at once.
    fn drop(&mut self) {
        if !self.settled {
            self.finish(Some(Duration::ZERO));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(key: &str, n: u32) -> Message {
        Message {
            key: key.into(),
            headers: Default::default(),
            payload: n.to_le_bytes().to_vec(),
        }
    }

    fn num(d: &Delivery) -> u32 {
        u32::from_le_bytes(d.message.payload[..4].try_into().unwrap())
    }

    fn bus(capacity: usize, ack_wait: Duration) -> MemoryBus {
        MemoryBus::new(MemoryBusConfig {
            partitions: 4,
            capacity,
            ack_wait,
        })
    }

    #[tokio::test]
    async fn every_group_gets_every_message_and_keys_keep_their_order() {
        let bus = bus(100, Duration::from_secs(30));
        let mut a = bus.subscribe("orders", "billing").await.unwrap();
        let mut b = bus.subscribe("orders", "shipping").await.unwrap();
        for n in 0..20 {
            bus.publish("orders", msg(&format!("k{}", n % 3), n))
                .await
                .unwrap();
        }
        for sub in [&mut a, &mut b] {
            let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
            for _ in 0..20 {
                let d = sub.next().await.unwrap();
                seen.entry(d.message.key.clone()).or_default().push(num(&d));
                d.ack();
            }
            for list in seen.values() {
                assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
            }
            assert_eq!(seen.values().map(Vec::len).sum::<usize>(), 20);
        }
        assert_eq!(bus.backlog("orders", "billing").await.unwrap().lag(), 0);
    }

    #[tokio::test]
    async fn a_partition_holds_back_until_its_delivery_is_settled() {
        let bus = bus(100, Duration::from_secs(30));
        let mut c1 = bus.subscribe("t", "g").await.unwrap();
        let mut c2 = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", msg("same", 1)).await.unwrap();
        bus.publish("t", msg("same", 2)).await.unwrap();
        let first = c1.next().await.unwrap();
        assert_eq!(num(&first), 1);
        let blocked = tokio::time::timeout(Duration::from_millis(50), c2.next()).await;
        assert!(blocked.is_err(), "second message of the key must wait");
        first.ack();
        assert_eq!(num(&c2.next().await.unwrap()), 2);
    }

    #[tokio::test]
    async fn nack_drop_and_ack_timeout_redeliver_with_a_higher_attempt() {
        let bus = bus(100, Duration::from_millis(300));
        let mut sub = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", msg("k", 7)).await.unwrap();

        let d = sub.next().await.unwrap();
        assert_eq!(d.attempt, 1);
        let nacked = Instant::now();
        d.nack(Duration::from_millis(100));
        let d = sub.next().await.unwrap();
        assert_eq!((num(&d), d.attempt), (7, 2));
        assert!(Instant::now() - nacked >= Duration::from_millis(100));

        drop(d);
        let d = sub.next().await.unwrap();
        assert_eq!(d.attempt, 3);

        // Held past the ack wait: handed out again; the stale ack is ignored.
        let again = sub.next().await.unwrap();
        assert_eq!(again.attempt, 4);
        d.ack();
        assert_eq!(bus.backlog("t", "g").await.unwrap().lag(), 1);
        again.ack();
        assert_eq!(bus.backlog("t", "g").await.unwrap().lag(), 0);
    }

    #[tokio::test]
    async fn publishers_wait_for_room_and_close_releases_everyone() {
        let bus = bus(2, Duration::from_secs(30));
        let mut sub = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", msg("k", 1)).await.unwrap();
        bus.publish("t", msg("k", 2)).await.unwrap();
        assert_eq!(bus.backlog("t", "g").await.unwrap().lag(), 2);
        let third = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.publish("t", msg("k", 3)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !third.is_finished(),
            "a full partition must hold the publisher"
        );
        sub.next().await.unwrap().ack();
        third.await.unwrap().unwrap();
        assert_eq!(bus.backlog("t", "g").await.unwrap().lag(), 2);

        let waiting = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.publish("t", msg("k", 4)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        bus.close();
        assert!(matches!(waiting.await.unwrap(), Err(BusError::Closed)));
        assert!(matches!(sub.next().await, Err(BusError::Closed)));
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of("order-1", 8), partition_of("order-1", 8));
        let used: std::collections::HashSet<usize> = (0..100)
            .map(|i| partition_of(&format!("order-{i}"), 8))
            .collect();
        assert_eq!(used.len(), 8);
    }
}
