//! The rule engine: loads the rule files, evaluates each group on its own interval against
//! the store, writes alert state changes to the `alerts` table, reloads the files when asked
//! to (keeping the last good rules when they are invalid) and publishes its status.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use vigil_store::alert::Alert;
use vigil_store::alert::history::history_batch;
use vigil_store::file_stamp::FileStamp;
use vigil_store::query::after;
use vigil_store::{Signal, Store};

use super::group::{GroupState, SloState};
use super::source::{LoadedGroup, RuleSource};
use super::status::{ReloadStatus, Status};
use crate::rules::RuleError;

/// Receives a group's current alerts after each of its evaluations (and alerts resolved by a
/// reload), each with when it counts as resolved unless sent again: four evaluation
/// intervals, at least four minutes, as Prometheus tells Alertmanager.
pub type AlertSink = Arc<dyn Fn(Vec<(Alert, DateTime<Utc>)>) + Send + Sync>;

/// Shortest time an alert stays valid without being sent again.
const MIN_RESEND: Duration = Duration::from_secs(60);

/// A handle on the running engine: its status, and reload requests. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    status: Arc<Mutex<Status>>,
    reloads: Option<mpsc::UnboundedSender<bool>>,
}

impl Engine {
    /// An engine with no rules (its status is empty).
    pub fn idle() -> Engine {
        Engine::default()
    }

    /// Loads the rules in `source` (an invalid file is an error: there are no last good rules
    /// yet) and evaluates them against `store` until `shutdown` is notified, handing the
    /// alerts to `sink` if there is one.
    pub fn start(
        store: Store,
        source: RuleSource,
        shutdown: Arc<Notify>,
        sink: Option<AlertSink>,
    ) -> Result<(Engine, JoinHandle<()>), RuleError> {
        let stamps = source.stamps()?;
        let loaded = source.load(&stamps)?;
        let (reloads, requests) = mpsc::unbounded_channel();
        let engine = Engine {
            status: Arc::default(),
            reloads: Some(reloads),
        };
        let mut runner = Runner {
            store,
            source,
            stamps,
            groups: Vec::new(),
            reload: ReloadStatus::default(),
            history_failures: 0,
            status: engine.status.clone(),
            sink,
        };
        runner.install(loaded);
        runner.publish();
        let task = tokio::spawn(async move { runner.run(requests, shutdown).await });
        Ok((engine, task))
    }

    /// Asks the engine to re-read its rule files: when `forced`, even if none changed (as on
    /// SIGHUP); otherwise only if a file was added, removed or edited.
    pub fn reload(&self, forced: bool) {
        if let Some(reloads) = &self.reloads {
            // Fails only once the engine has stopped, when there is nothing to reload.
            let _ = reloads.send(forced);
        }
    }

    /// The latest status: groups, rules, SLOs, alerts and reloads.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

struct Runner {
    store: Store,
    source: RuleSource,
    stamps: Vec<FileStamp>,
    groups: Vec<GroupState>,
    reload: ReloadStatus,
    history_failures: u64,
    status: Arc<Mutex<Status>>,
    sink: Option<AlertSink>,
}

impl Runner {
    async fn run(mut self, mut reloads: mpsc::UnboundedReceiver<bool>, shutdown: Arc<Notify>) {
        let stop = shutdown.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        loop {
            let next = self.groups.iter().map(|g| g.next_due).min();
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = due => {}
                Some(forced) = reloads.recv() => {
                    let removed = self.check_reload(forced);
                    if let Some(sink) = self.sink.as_ref().filter(|_| !removed.is_empty()) {
                        let now = Utc::now();
                        sink(removed.iter().map(|a| (a.clone(), now)).collect());
                    }
                    self.write_history(removed).await;
                }
                () = &mut stop => break,
            }
            for i in 0..self.groups.len() {
                if self.groups[i].next_due <= Instant::now() {
                    self.evaluate(i).await;
                }
            }
            self.publish();
        }
    }

    async fn evaluate(&mut self, i: usize) {
        let now = Utc::now();
        let changes = match self.store.session(
            vigil_store::Reader::Internal,
            vigil_store::ReadLimits::INTERNAL,
        ) {
            Ok(ctx) => {
                let g = &mut self.groups[i];
                match AssertUnwindSafe(g.evaluate(&ctx, now)).catch_unwind().await {
                    Ok(changes) => changes,
                    Err(_) => {
                        tracing::error!(group = %g.name, "rule group evaluation panicked");
                        Vec::new()
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no query session for rule evaluation");
                Vec::new()
            }
        };
        let g = &mut self.groups[i];
        g.next_due += g.interval;
        while g.next_due <= Instant::now() {
            g.next_due += g.interval;
            g.missed += 1;
        }
        if let Some(sink) = &self.sink {
            let valid = after(now, 4 * g.interval.max(MIN_RESEND));
            let alerts = g.status().alerts();
            sink(alerts.into_iter().map(|a| (a, valid)).collect());
        }
        self.write_history(changes).await;
    }

    async fn write_history(&mut self, changes: Vec<Alert>) {
        if changes.is_empty() {
            return;
        }
        for a in &changes {
            tracing::info!(alert = %a.name(), state = a.state.as_str(), fingerprint = %a.fingerprint, value = ?a.value, "alert state changed");
        }
        let n = changes.len() as u64;
        let result = match history_batch(&changes) {
            Ok(batch) => self
                .store
                .append(Signal::Alerts, batch)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            self.history_failures += n;
            tracing::warn!(error = %e, rows = n, "alert history not written");
        }
    }

    /// Reloads the rules if `forced` or a file changed; returns the alerts resolved because
    /// their rule went away.
    fn check_reload(&mut self, forced: bool) -> Vec<Alert> {
        let attempt = self.source.stamps().and_then(|stamps| {
            if !forced && stamps == self.stamps {
                return Ok(None);
            }
            let loaded = self.source.load(&stamps);
            // A broken file is reported once, and retried when it changes again.
            self.stamps = stamps;
            loaded.map(Some)
        });
        match attempt {
            Ok(None) => Vec::new(),
            Ok(Some(loaded)) => {
                let removed = self.install(loaded);
                tracing::info!(groups = self.groups.len(), "rules reloaded");
                removed
            }
            Err(e) => {
                let message = e.to_string();
                if self.reload.last_error.as_deref() != Some(&message) {
                    self.reload.failures += 1;
                    tracing::warn!(error = %message, "rule reload failed; keeping the last good rules");
                    self.reload.last_error = Some(message);
                }
                Vec::new()
            }
        }
    }

    /// Puts `loaded` in force, carrying over the alerts of rules and the counts of SLOs that
    /// kept their names; returns the alerts of rules that are gone, resolved.
    fn install(&mut self, loaded: Vec<LoadedGroup>) -> Vec<Alert> {
        let now = Utc::now();
        let mut old = std::mem::take(&mut self.groups);
        for LoadedGroup { file, group } in loaded {
            let mut fresh = GroupState::new(file, group);
            if let Some(pos) = old.iter().position(|g| g.name == fresh.name) {
                let mut prev = old.swap_remove(pos);
                if prev.interval == fresh.interval {
                    fresh.next_due = prev.next_due;
                }
                for r in &mut fresh.rules {
                    if let Some(p) = prev.rules.iter_mut().find(|p| p.rule.alert == r.rule.alert) {
                        std::mem::swap(&mut r.alerts, &mut p.alerts);
                    }
                }
                for s in &mut fresh.slos {
                    if let Some(p) = prev.slos.iter_mut().find(|p| p.slo.name == s.slo.name)
                        && same_events(p, s)
                    {
                        std::mem::swap(&mut s.counts, &mut p.counts);
                        std::mem::swap(&mut s.alerts, &mut p.alerts);
                    }
                }
                old.push(prev);
            }
            self.groups.push(fresh);
        }
        self.reload.files = self
            .source
            .embedded
            .iter()
            .map(|(name, _)| name.clone())
            .chain(self.stamps.iter().map(|s| s.path().display().to_string()))
            .collect();
        self.reload.successes += 1;
        self.reload.last_success = Some(now);
        self.reload.last_error = None;
        old.into_iter()
            .flat_map(|mut g| {
                g.rules
                    .iter_mut()
                    .flat_map(|r| r.alerts.resolve_all(now))
                    .chain(
                        g.slos
                            .iter_mut()
                            .flat_map(|s| s.alerts.iter_mut().flat_map(|a| a.resolve_all(now))),
                    )
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn publish(&self) {
        let status = Status {
            groups: self.groups.iter().map(GroupState::status).collect(),
            reload: self.reload.clone(),
            history_failures: self.history_failures,
        };
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

/// True if both SLOs count the same events over the same period (so counts carry over).
fn same_events(a: &SloState, b: &SloState) -> bool {
    a.slo.total == b.slo.total
        && a.slo.good == b.slo.good
        && a.slo.period == b.slo.period
        && a.slo.alerts == b.slo.alerts
}
