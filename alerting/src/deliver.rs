//! Delivery of pending notifications. One queue in outbox order; a notification goes out
//! only when every earlier one of its group to the same integration is done, so a group's
//! notifications arrive in order. Each integration has at most `max_concurrency` in flight
//! and starts at most `rate_limit` per second. Failures are retried with backoff (never
//! sooner than `Retry-After`); permanent failures are set aside in the outbox. A
//! notification leaves the outbox only after the receiver took it: delivery is at least once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::config::AlertingConfig;
use crate::nflog::IntegrationId;
use crate::outbox::{Failed, Outbox, Pending};
use crate::retry::{Backoff, Outcome};
use crate::send::Sender;
use crate::sync::lock;
use vigil_store::exposition::Exposition;
use vigil_store::query::after;

/// A pending notification as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingStatus {
    /// Outbox position.
    pub seq: u64,
    /// `receiver/kind/index`.
    pub integration: String,
    /// The alert group.
    pub group_key: String,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Alerts in it.
    pub alerts: usize,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Counts per integration since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Notifications the receiver took.
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Notifications given up as permanent failures.
    pub failed: u64,
}

/// What delivery is doing, for `GET /api/v1/notifications` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeliveryStatus {
    /// Every notification not yet delivered, oldest first.
    pub pending: Vec<PendingStatus>,
    /// Per integration.
    pub counters: BTreeMap<String, Counters>,
}

impl DeliveryStatus {
    /// Writes notifications pending, delivered, retried and failed per integration to `page`.
    pub fn render(&self, page: &mut Exposition) {
        let mut pending: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &self.pending {
            *pending.entry(&p.integration).or_default() += 1;
        }
        let mut family = page.gauge(
            "vigil_notifications_pending",
            "Notifications in the outbox not yet delivered.",
        );
        for (integration, n) in &pending {
            family.sample(&[("integration", integration)], *n as f64);
        }
        type Family = (&'static str, &'static str, fn(&Counters) -> u64);
        let counters: [Family; 3] = [
            (
                "vigil_notifications_delivered_total",
                "Notifications a receiver took.",
                |c| c.delivered,
            ),
            (
                "vigil_notifications_retried_total",
                "Delivery attempts that failed and were retried.",
                |c| c.retried,
            ),
            (
                "vigil_notifications_failed_total",
                "Notifications given up as permanent failures.",
                |c| c.failed,
            ),
        ];
        for (name, help, get) in counters {
            let mut family = page.counter(name, help);
            for (integration, c) in &self.counters {
                family.sample(&[("integration", integration)], get(c) as f64);
            }
        }
    }
}

/// `(max_concurrency, rate_limit)` of an integration; one at a time, unpaced, when it is no
/// longer configured (its sends then fail as such).
fn integration_limits(config: &AlertingConfig, id: &IntegrationId) -> (usize, Option<f64>) {
    config
        .receiver(&id.receiver)
        .and_then(|r| r.integrations().into_iter().find(|i| &i.id == id))
        .map_or((1, None), |i| (i.max_concurrency, i.rate_limit))
}

struct Entry {
    pending: Pending,
    attempts: u32,
    next_at: DateTime<Utc>,
    last_error: Option<String>,
    in_flight: bool,
}

/// The delivery task's state.
pub struct Delivery {
    outbox: Arc<Mutex<Outbox>>,
    config: watch::Receiver<Arc<AlertingConfig>>,
    sender: Arc<Sender>,
    backoff: Backoff,
    status: Arc<Mutex<DeliveryStatus>>,
    entries: BTreeMap<u64, Entry>,
    /// When each integration last started a send.
    started: HashMap<String, DateTime<Utc>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("pending", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Delivery of `pending` (from [`Outbox::open`]) and of whatever arrives later.
    pub fn new(
        outbox: Arc<Mutex<Outbox>>,
        config: watch::Receiver<Arc<AlertingConfig>>,
        sender: Arc<Sender>,
        backoff: Backoff,
        pending: Vec<Pending>,
    ) -> Delivery {
        let mut d = Delivery {
            outbox,
            config,
            sender,
            backoff,
            status: Arc::new(Mutex::new(DeliveryStatus::default())),
            entries: BTreeMap::new(),
            started: HashMap::new(),
        };
        d.add(pending, Utc::now());
        d
    }

    /// The status the task keeps current.
    pub fn status(&self) -> Arc<Mutex<DeliveryStatus>> {
        Arc::clone(&self.status)
    }

    fn add(&mut self, pending: Vec<Pending>, now: DateTime<Utc>) {
        for p in pending {
            self.entries.insert(
                p.seq,
                Entry {
                    pending: p,
                    attempts: 0,
                    next_at: now,
                    last_error: None,
                    in_flight: false,
                },
            );
        }
    }

    /// Sends until `incoming` closes and everything has been delivered or given up.
    pub async fn run(mut self, mut incoming: mpsc::UnboundedReceiver<Vec<Pending>>) {
        let (done_tx, mut done) = mpsc::unbounded_channel::<(u64, Outcome)>();
        let mut open = true;
        loop {
            let now = Utc::now();
            let wake = self.start_due(now, &done_tx);
            self.publish();
            if !open && self.entries.is_empty() {
                return;
            }
            let sleep = wake.map_or(Duration::from_secs(3600), |w| {
                (w - now).to_std().unwrap_or(Duration::ZERO)
            });
            tokio::select! {
                batch = incoming.recv(), if open => match batch {
                    Some(batch) => self.add(batch, Utc::now()),
                    None => open = false,
                },
                Some((seq, outcome)) = done.recv() => self.finish(seq, outcome, Utc::now()),
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Starts every notification that may go now; returns when to look again.
    fn start_due(
        &mut self,
        now: DateTime<Utc>,
        done: &mpsc::UnboundedSender<(u64, Outcome)>,
    ) -> Option<DateTime<Utc>> {
        let mut wake: Option<DateTime<Utc>> = None;
        let mut soonest = |t: DateTime<Utc>| wake = Some(wake.map_or(t, |w| w.min(t)));
        let mut busy_groups: HashSet<(String, String)> = HashSet::new();
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        for e in self.entries.values().filter(|e| e.in_flight) {
            *in_flight
                .entry(e.pending.integration.to_string())
                .or_default() += 1;
        }
        let config = Arc::clone(&self.config.borrow());
        // (max_concurrency, rate_limit) per integration, looked up once per pass.
        let mut limits: HashMap<String, (usize, Option<f64>)> = HashMap::new();
        let seqs: Vec<u64> = self.entries.keys().copied().collect();
        for seq in seqs {
            let Some(e) = self.entries.get(&seq) else {
                continue;
            };
            let id = e.pending.integration.to_string();
            let group = (id.clone(), e.pending.notification.group_key.clone());
            // Earlier notifications of the group go first.
            if !busy_groups.insert(group) || e.in_flight {
                continue;
            }
            if e.next_at > now {
                soonest(e.next_at);
                continue;
            }
            let (limit, rate) = *limits
                .entry(id.clone())
                .or_insert_with(|| integration_limits(&config, &e.pending.integration));
            if in_flight.get(&id).copied().unwrap_or(0) >= limit {
                continue;
            }
            if let Some(rate) = rate {
                let gap = Duration::from_secs_f64(1.0 / rate);
                if let Some(last) = self.started.get(&id)
                    && after(*last, gap) > now
                {
                    soonest(after(*last, gap));
                    continue;
                }
            }
            *in_flight.entry(id.clone()).or_default() += 1;
            self.started.insert(id, now);
            let Some(e) = self.entries.get_mut(&seq) else {
                continue;
            };
            e.in_flight = true;
            let (sender, config, pending, done) = (
                Arc::clone(&self.sender),
                Arc::clone(&config),
                e.pending.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                let outcome = sender.send(&config, &pending).await;
                // The delivery task only stops once nothing is in flight.
                let _ = done.send((pending.seq, outcome));
            });
        }
        wake
    }

    /// Records the outcome of a send.
    fn finish(&mut self, seq: u64, outcome: Outcome, now: DateTime<Utc>) {
        let Some(mut e) = self.entries.remove(&seq) else {
            return;
        };
        e.in_flight = false;
        e.attempts += 1;
        let id = e.pending.integration.to_string();
        let mut status = lock(&self.status);
        let counters = status.counters.entry(id.clone()).or_default();
        let outbox = lock(&self.outbox);
        let kept = match outcome {
            Outcome::Delivered => {
                counters.delivered += 1;
                outbox.delivered(seq).map(|()| false)
            }
            Outcome::Retry { error, after: wait } => {
                counters.retried += 1;
                tracing::warn!(integration = %id, seq, attempts = e.attempts, %error, "notification not delivered, will retry");
                e.next_at = after(now, self.backoff.delay(e.attempts, wait, fastrand::f64()));
                e.last_error = Some(error);
                Ok(true)
            }
            Outcome::Permanent { error } => {
                counters.failed += 1;
                tracing::error!(integration = %id, seq, %error, "notification refused for good");
                outbox
                    .failed(&Failed {
                        pending: e.pending.clone(),
                        failed_at: now,
                        attempts: e.attempts,
                        error,
                    })
                    .map(|()| false)
            }
        };
        match kept {
            Ok(false) => {}
            Ok(true) => {
                self.entries.insert(seq, e);
            }
            Err(err) => {
                // The outbox could not record it: keep the notification and try later.
                tracing::error!(integration = %id, seq, error = %err, "outbox not updated");
                e.next_at = after(now, self.backoff.max);
                self.entries.insert(seq, e);
            }
        }
    }

    fn publish(&self) {
        let pending = self
            .entries
            .values()
            .map(|e| PendingStatus {
                seq: e.pending.seq,
                integration: e.pending.integration.to_string(),
                group_key: e.pending.notification.group_key.clone(),
                status: e.pending.notification.status().as_str(),
                alerts: e.pending.notification.alerts.len(),
                queued_at: e.pending.queued_at,
                attempts: e.attempts,
                next_attempt: e.next_at,
                last_error: e.last_error.clone(),
            })
            .collect();
        lock(&self.status).pending = pending;
    }
}
