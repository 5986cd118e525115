//! The NATS JetStream broker: one stream per topic (subjects `vigil.<topic>.<partition>`,
//! file storage, interest retention bounded by `max_messages` with new messages refused when
//! full), and per consumer group one durable pull consumer per partition with one unacked
//! message at a time, so a key's messages are processed in order while partitions proceed
//! in parallel. A process pulls each partition once per group and hands the deliveries to
//! whichever of its members is free.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, RetentionPolicy};
use async_nats::jetstream::{self, Context};
use futures::StreamExt as _;
use tokio::sync::{Mutex, mpsc, watch};

use super::{Backlog, Bus, BusError, Delivery, Message, Settle, Subscription, partition_of};

/// Header carrying the message key (NATS subjects carry only its partition).
const KEY: &str = "vigil-key";

/// Settings of the JetStream broker.
#[derive(Debug, Clone)]
pub struct NatsBusConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Partitions per topic.
    pub partitions: usize,
    /// Unacknowledged messages a topic's stream holds before publishers wait.
    pub max_messages: i64,
    /// How long a delivery may stay unsettled before JetStream redelivers it.
    pub ack_wait: Duration,
}

impl NatsBusConfig {
    /// Defaults for the server at `url`: 8 partitions, 100,000 messages, 30 s ack wait.
    pub fn new(url: &str) -> Self {
        NatsBusConfig {
            url: url.to_string(),
            partitions: 8,
            max_messages: 100_000,
            ack_wait: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
struct Inner {
    js: Context,
    config: NatsBusConfig,
    streams: Mutex<HashMap<String, jetstream::stream::Stream>>,
    /// Per (topic, group), the deliveries of its partition consumers, shared by the members
    /// this process runs: one pull stream per partition however many members there are.
    groups: Mutex<HashMap<(String, String), Deliveries>>,
    closed: watch::Sender<bool>,
}

/// Deliveries of one consumer group's partitions, taken by whichever member asks first.
type Deliveries = Arc<Mutex<mpsc::Receiver<Delivery>>>;

impl Inner {
    /// Resolves once the bus is closed (at once if it already is).
    async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = rx.wait_for(|closed| *closed).await;
    }
}

/// A [`Bus`] over NATS JetStream.
#[derive(Debug, Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

fn broker(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Broker(format!("{what}: {e}"))
}

/// A stream or consumer name for `s`: JetStream names may not contain `.`, `*`, `>` or
/// whitespace.
fn name_of(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Header values may not contain line breaks.
fn header_value(v: &str) -> String {
    v.replace(['\r', '\n'], " ")
}

impl NatsBus {
    /// Connects to the server.
    pub async fn connect(config: NatsBusConfig) -> Result<NatsBus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(&config.url)
            .await
            .map_err(|e| broker(&format!("connecting to {}", config.url), e))?;
        Ok(NatsBus {
            inner: Arc::new(Inner {
                js: jetstream::new(client),
                config,
                streams: Mutex::new(HashMap::new()),
                groups: Mutex::new(HashMap::new()),
                closed: watch::Sender::new(false),
            }),
        })
    }

    /// Stops every subscription; later calls fail with [`BusError::Closed`].
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    fn check_open(&self) -> Result<(), BusError> {
        if *self.inner.closed.borrow() {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }

    /// The stream of `topic`, created (or looked up) on first use and cached after, so
    /// publishing costs no extra round trip to the server.
    async fn stream(&self, topic: &str) -> Result<jetstream::stream::Stream, BusError> {
        let mut known = self.inner.streams.lock().await;
        if let Some(stream) = known.get(topic) {
            return Ok(stream.clone());
        }
        let name = format!("vigil_{}", name_of(topic));
        let stream = self
            .inner
            .js
            .get_or_create_stream(StreamConfig {
                name: name.clone(),
                subjects: vec![format!("vigil.{topic}.*")],
                retention: RetentionPolicy::Interest,
                discard: DiscardPolicy::New,
                max_messages: self.inner.config.max_messages,
                ..Default::default()
            })
            .await
            .map_err(|e| broker(&format!("creating stream {name}"), e))?;
        known.insert(topic.to_string(), stream.clone());
        Ok(stream)
    }

    fn consumer_name(topic: &str, group: &str, partition: usize) -> String {
        format!("{}-{}-{partition}", name_of(group), name_of(topic))
    }
}

/// How long a publisher waits before trying again when the stream is full.
const FULL_BACKOFF: Duration = Duration::from_millis(20);

impl Bus for NatsBus {
    type Sub = NatsSubscription;

    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.check_open()?;
        self.stream(topic).await?;
        let partition = partition_of(&message.key, self.inner.config.partitions);
        let subject = format!("vigil.{topic}.{partition}");
        let mut headers = HeaderMap::new();
        headers.insert(KEY, header_value(&message.key));
        for (k, v) in &message.headers {
            headers.insert(k.as_str(), header_value(v));
        }
        loop {
            let sent = self
                .inner
                .js
                .publish_with_headers(
                    subject.clone(),
                    headers.clone(),
                    message.payload.clone().into(),
                )
                .await
                .map_err(|e| broker(&format!("publishing to {subject}"), e))?;
            match sent.await {
                Ok(_) => return Ok(()),
                // A full stream refuses new messages: wait for consumers to make room.
                Err(e) if e.to_string().contains("maximum messages") => {
                    self.check_open()?;
                    tokio::time::sleep(FULL_BACKOFF).await;
                }
                Err(e) => return Err(broker(&format!("publishing to {subject}"), e)),
            }
        }
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<NatsSubscription, BusError> {
        self.check_open()?;
        let mut groups = self.inner.groups.lock().await;
        let key = (topic.to_string(), group.to_string());
        if let Some(rx) = groups.get(&key) {
            return Ok(NatsSubscription {
                rx: rx.clone(),
                bus: self.clone(),
            });
        }
        let stream = self.stream(topic).await?;
        let (tx, rx) = mpsc::channel(self.inner.config.partitions.max(1));
        for partition in 0..self.inner.config.partitions {
            let name = Self::consumer_name(topic, group, partition);
            let consumer: jetstream::consumer::PullConsumer = stream
                .get_or_create_consumer(
                    &name,
                    pull::Config {
                        durable_name: Some(name.clone()),
                        filter_subject: format!("vigil.{topic}.{partition}"),
                        deliver_policy: DeliverPolicy::New,
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: self.inner.config.ack_wait,
                        max_ack_pending: 1,
                        max_deliver: -1,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| broker(&format!("creating consumer {name}"), e))?;
            let messages = consumer
                .messages()
                .await
                .map_err(|e| broker(&format!("consuming {name}"), e))?;
            let (tx, inner, topic) = (tx.clone(), self.inner.clone(), topic.to_string());
            tokio::spawn(async move {
                let mut messages = messages;
                loop {
                    let next = tokio::select! {
                        () = inner.closed() => return,
                        m = messages.next() => m,
                    };
                    let delivery = match next {
                        Some(Ok(m)) => delivery(&topic, partition, m),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, consumer = %name, "JetStream consumer error");
                            continue;
                        }
                        None => return,
                    };
                    if tx.send(delivery).await.is_err() {
                        return;
                    }
                }
            });
        }
        let rx = Arc::new(Mutex::new(rx));
        groups.insert(key, rx.clone());
        Ok(NatsSubscription {
            rx,
            bus: self.clone(),
        })
    }

    async fn backlog(&self, topic: &str, group: &str) -> Result<Backlog, BusError> {
        self.check_open()?;
        let stream = self.stream(topic).await?;
        let mut backlog = Backlog::default();
        for partition in 0..self.inner.config.partitions {
            let name = Self::consumer_name(topic, group, partition);
            let info = stream
                .consumer_info(&name)
                .await
                .map_err(|e| broker(&format!("consumer {name}"), e))?;
            backlog.queued += info.num_pending;
            backlog.in_flight += info.num_ack_pending as u64;
        }
        Ok(backlog)
    }
}

fn delivery(topic: &str, partition: usize, m: jetstream::Message) -> Delivery {
    let attempt = m
        .info()
        .map_or(1, |i| u32::try_from(i.delivered).unwrap_or(u32::MAX));
    let mut key = String::new();
    let mut headers = std::collections::BTreeMap::new();
    if let Some(h) = &m.message.headers {
        for (name, values) in h.iter() {
            let Some(value) = values.first() else {
                continue;
            };
            if AsRef::<str>::as_ref(name) == KEY {
                key = value.as_str().to_string();
            } else {
                headers.insert(name.to_string(), value.as_str().to_string());
            }
        }
    }
    let message = Arc::new(Message {
        key,
        headers,
        payload: m.message.payload.to_vec(),
    });
    Delivery::new(
        topic.to_string(),
        partition,
        message,
        attempt,
        Box::new(NatsSettle(m)),
    )
}

struct NatsSettle(jetstream::Message);

impl Settle for NatsSettle {
    fn ack(self: Box<Self>) {
        let m = self.0;
        tokio::spawn(async move {
            // A lost ack means redelivery after the ack wait, which consumers dedupe.
            if let Err(e) = m.ack().await {
                tracing::warn!(error = %e, "JetStream ack failed");
            }
        });
    }

    fn nack(self: Box<Self>, delay: Duration) {
        let m = self.0;
        tokio::spawn(async move {
            if let Err(e) = m.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(error = %e, "JetStream nak failed; redelivery waits for the ack wait");
            }
        });
    }
}

/// One member of a consumer group on JetStream: deliveries of every partition of the topic,
/// shared with the group's other members in this process.
#[derive(Debug)]
pub struct NatsSubscription {
    rx: Deliveries,
    bus: NatsBus,
}

impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        self.bus.check_open()?;
        tokio::select! {
            () = self.bus.inner.closed() => Err(BusError::Closed),
            d = async { self.rx.lock().await.recv().await } => d.ok_or(BusError::Closed),
        }
    }
}
