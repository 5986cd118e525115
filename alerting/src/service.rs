//! The notification service: takes alerts (from the rule engine and the API), runs the
//! dispatcher on its timers, makes each dispatch durable in the outbox before handing it to
//! delivery, keeps the silences, and swaps configurations on reload.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use crate::config::AlertingConfig;
use crate::deliver::{Delivery, DeliveryStatus};
use crate::dispatch::Dispatcher;
use crate::outbox::{Failed, Outbox, OutboxError, Pending};
use crate::posted::PostedAlerts;
use crate::retry::Backoff;
use crate::send::{Sender, SenderError};
use crate::silence::{SilenceError, Silences};
use crate::sync::lock;
use vigil_store::alert::Alert;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The outbox could not be opened.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The silences could not be read.
    #[error(transparent)]
    Silences(#[from] SilenceError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Sender(#[from] SenderError),
}

/// Settings that are not part of the routing file.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Outbox, notification log and silences live here.
    pub dir: std::path::PathBuf,
    /// Vigil's own address, for links in notifications.
    pub external_url: String,
    /// Longest a single delivery attempt may take.
    pub timeout: Duration,
    /// Certificate authorities (PEM) trusted for HTTPS receivers besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Spacing of retries.
    pub backoff: Backoff,
}

/// How the routing configuration in force came to be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// When the configuration in force was loaded.
    pub loaded_at: DateTime<Utc>,
    /// Why the last reload failed, if it did (the configuration in force stays).
    pub last_error: Option<String>,
    /// Successful reloads.
    pub reloads: u64,
    /// Failed reloads.
    pub failures: u64,
}

/// The running service, shared with the API.
#[derive(Debug, Clone)]
pub struct Notifier {
    alerts: mpsc::UnboundedSender<Vec<(Alert, DateTime<Utc>)>>,
    config: Arc<watch::Sender<Arc<AlertingConfig>>>,
    config_status: Arc<Mutex<ConfigStatus>>,
    silences: Arc<Mutex<Silences>>,
    outbox: Arc<Mutex<Outbox>>,
    delivery: Arc<Mutex<DeliveryStatus>>,
    posted: Arc<Mutex<PostedAlerts>>,
}

impl Notifier {
    /// Starts the service on the current tokio runtime: resumes what the outbox holds.
    pub fn start(
        config: AlertingConfig,
        options: ServiceOptions,
    ) -> Result<Notifier, ServiceError> {
        let (outbox, pending, log) = Outbox::open(&options.dir)?;
        let silences = Arc::new(Mutex::new(Silences::open(
            &options.dir.join("silences.json"),
        )?));
        let outbox = Arc::new(Mutex::new(outbox));
        let config = Arc::new(config);
        let (config_tx, config_rx) = watch::channel(Arc::clone(&config));
        let sender = Arc::new(Sender::new(options.timeout, options.ca_file.as_deref())?);
        let delivery = Delivery::new(
            Arc::clone(&outbox),
            config_rx.clone(),
            sender,
            options.backoff,
            pending,
        );
        let status = delivery.status();
        let (to_delivery, delivery_rx) = mpsc::unbounded_channel();
        tokio::spawn(delivery.run(delivery_rx));
        let (alerts, alerts_rx) = mpsc::unbounded_channel();
        let dispatcher = Dispatcher::new(config, log, options.external_url);
        tokio::spawn(dispatch_loop(
            dispatcher,
            alerts_rx,
            config_rx,
            Arc::clone(&silences),
            Arc::clone(&outbox),
            to_delivery,
        ));
        Ok(Notifier {
            alerts,
            config: Arc::new(config_tx),
            config_status: Arc::new(Mutex::new(ConfigStatus {
                loaded_at: Utc::now(),
                last_error: None,
                reloads: 0,
                failures: 0,
            })),
            silences,
            outbox,
            delivery: status,
            posted: Arc::default(),
        })
    }

    /// Hands over the current state of some alerts, each with when it counts as resolved if
    /// not submitted again.
    pub fn submit(&self, alerts: Vec<(Alert, DateTime<Utc>)>) {
        // Only fails once the service has stopped, when there is no one left to notify.
        let _ = self.alerts.send(alerts);
    }

    /// Hands over alerts posted by another rule engine, and keeps them for listing.
    pub fn post(&self, alerts: Vec<(Alert, DateTime<Utc>)>) {
        lock(&self.posted).record(&alerts, Utc::now());
        self.submit(alerts);
    }

    /// Alerts other rule engines posted: firing, or resolved in the last 15 minutes.
    pub fn posted(&self) -> Vec<Alert> {
        lock(&self.posted).current(Utc::now())
    }

    /// Replaces the routing configuration.
    pub fn reload(&self, config: AlertingConfig) {
        self.config.send_replace(Arc::new(config));
        let mut s = lock(&self.config_status);
        s.loaded_at = Utc::now();
        s.last_error = None;
        s.reloads += 1;
    }

    /// Records a reload that failed; the configuration in force stays.
    pub fn reload_failed(&self, error: String) {
        let mut s = lock(&self.config_status);
        s.last_error = Some(error);
        s.failures += 1;
    }

    /// How the configuration in force came to be.
    pub fn config_status(&self) -> ConfigStatus {
        lock(&self.config_status).clone()
    }

    /// The current routing configuration.
    pub fn config(&self) -> Arc<AlertingConfig> {
        Arc::clone(&self.config.borrow())
    }

    /// The silences.
    pub fn silences(&self) -> &Arc<Mutex<Silences>> {
        &self.silences
    }

    /// What delivery is doing.
    pub fn delivery(&self) -> DeliveryStatus {
        lock(&self.delivery).clone()
    }

    /// Notifications given up for good, newest first.
    pub fn failures(&self) -> Result<Vec<Failed>, OutboxError> {
        lock(&self.outbox).failures()
    }
}

/// Feeds the dispatcher and flushes it when a group is due.
async fn dispatch_loop(
    mut dispatcher: Dispatcher,
    mut alerts: mpsc::UnboundedReceiver<Vec<(Alert, DateTime<Utc>)>>,
    mut config: watch::Receiver<Arc<AlertingConfig>>,
    silences: Arc<Mutex<Silences>>,
    outbox: Arc<Mutex<Outbox>>,
    delivery: mpsc::UnboundedSender<Vec<Pending>>,
) {
    loop {
        let now = Utc::now();
        if dispatcher.next_flush().is_some_and(|t| t <= now) {
            flush(&mut dispatcher, now, &silences, &outbox, &delivery);
        }
        let wait = dispatcher
            .next_flush()
            .map_or(Duration::from_secs(3600), |t| {
                (t - Utc::now()).to_std().unwrap_or(Duration::ZERO)
            });
        tokio::select! {
            batch = alerts.recv() => match batch {
                Some(batch) => {
                    let now = Utc::now();
                    for (alert, expires) in &batch {
                        dispatcher.insert(alert, *expires, now);
                    }
                }
                None => return,
            },
            changed = config.changed() => match changed {
                Ok(()) => dispatcher.set_config(Arc::clone(&config.borrow_and_update())),
                Err(_) => return,
            },
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Flushes the due groups and queues their dispatches durably for delivery.
fn flush(
    dispatcher: &mut Dispatcher,
    now: DateTime<Utc>,
    silences: &Mutex<Silences>,
    outbox: &Mutex<Outbox>,
    delivery: &mpsc::UnboundedSender<Vec<Pending>>,
) {
    let silences = lock(silences);
    let mut outbox = lock(outbox);
    let mut queued = Vec::new();
    dispatcher.flush_due(
        now,
        &|labels| silences.silenced(labels, now),
        &mut |dispatches| {
            match outbox.push(dispatches, now) {
                Ok(pending) => {
                    queued.extend(pending);
                    true
                }
                Err(e) => {
                    // Not durable, so not notified: the group's next flush makes it again.
                    tracing::error!(error = %e, "notifications could not be queued");
                    false
                }
            }
        },
    );
    if queued.is_empty() {
        return;
    }
    if let Err(e) = outbox.save_log(dispatcher.log()) {
        // The pending entries replay into the log on the next start.
        tracing::error!(error = %e, "notification log not saved");
    }
    // Delivery stops only with the service.
    let _ = delivery.send(queued);
}
