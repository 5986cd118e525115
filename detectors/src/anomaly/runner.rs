//! The live anomaly detector: every window (10 s by default, aligned to the clock) it reads
//! the window that just ended from the store, scores every series with the [`Monitor`] and
//! every consumer's partitions against each other with the [`PeerMonitor`], writes the
//! anomalies to the `anomalies` table and publishes its status.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use vigil_store::exposition::{Exposition, Single};
use vigil_store::units::HumanDuration;
use vigil_store::{Signal, Store};

use super::history::anomalies_batch;
use super::monitor::{Monitor, MonitorConfig, MonitorStatus};
use super::peers::{PeerConfig, PeerMonitor};
use crate::features::{WatchedMetric, extract, extract_partitions};
use vigil_store::query::Window;

/// `[anomaly]`: the live anomaly detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Whether to run it (its window reads draw on the share of `[limits] memory_limit`
    /// reserved for the rule engine and the detector).
    pub enabled: bool,
    /// Length of each feature window.
    pub window: HumanDuration,
    /// How long after a window ends it is read, so late telemetry is included: OTel SDKs
    /// batch spans and logs for 5 s by default, and a window read before its last batch
    /// arrives sees a dip in traffic that is not there.
    pub delay: HumanDuration,
    /// Score in [0, 1] from which a window is an anomaly.
    pub sensitivity: f64,
    /// Windows a series must have been seen before it reports anomalies.
    pub warm_up: usize,
    /// Windows of history the baselines and forests learn from.
    pub history: usize,
    /// Metrics watched besides the span, log and lag features, each series on its own.
    pub metrics: Vec<WatchedMetric>,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        let m = MonitorConfig::default();
        AnomalyConfig {
            enabled: true,
            window: HumanDuration(Duration::from_secs(10)),
            delay: HumanDuration(Duration::from_secs(7)),
            sensitivity: m.sensitivity,
            warm_up: m.warm_up,
            history: m.history,
            metrics: Vec::new(),
        }
    }
}

impl AnomalyConfig {
    fn monitor(&self) -> MonitorConfig {
        MonitorConfig {
            sensitivity: self.sensitivity,
            warm_up: self.warm_up,
            history: self.history.max(2),
            ..MonitorConfig::default()
        }
    }

    fn peers(&self) -> PeerConfig {
        PeerConfig {
            sensitivity: self.sensitivity,
            ..PeerConfig::default()
        }
    }
}

/// The models the detector keeps between windows.
struct Models {
    series: Monitor,
    peers: PeerMonitor,
}

/// What one window's scoring leaves for the status.
struct Scored {
    anomalies: u64,
    monitor: MonitorStatus,
    peer_groups: usize,
}

/// What the detector is doing, for the API and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectorStatus {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Length of each window, in seconds.
    pub window_seconds: f64,
    /// The sensitivity in force.
    pub sensitivity: f64,
    /// Windows needed before a series reports.
    pub warm_up: usize,
    /// Models and warm-up.
    pub monitor: MonitorStatus,
    /// Peer groups compared (consumer operations with partitions).
    pub peer_groups: usize,
    /// End of the last window scored.
    pub last_window_end: Option<DateTime<Utc>>,
    /// How long the last window took (read, score, write).
    pub last_duration: Duration,
    /// Windows scored.
    pub windows: u64,
    /// Anomalies found.
    pub anomalies: u64,
    /// Windows that failed.
    pub failures: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
}

impl DetectorStatus {
    /// Writes the detector's self-metrics to `page`.
    pub fn render(&self, page: &mut Exposition) {
        for (kind, name, help, v) in [
            (
                Single::Counter,
                "vigil_anomaly_windows_total",
                "Feature windows scored.",
                self.windows as f64,
            ),
            (
                Single::Counter,
                "vigil_anomalies_total",
                "Anomalies found.",
                self.anomalies as f64,
            ),
            (
                Single::Counter,
                "vigil_anomaly_window_failures_total",
                "Windows that could not be scored.",
                self.failures as f64,
            ),
            (
                Single::Gauge,
                "vigil_anomaly_series",
                "Series with a model.",
                self.monitor.series as f64,
            ),
            (
                Single::Gauge,
                "vigil_anomaly_peer_groups",
                "Consumer operations whose partitions are compared with each other.",
                self.peer_groups as f64,
            ),
            (
                Single::Gauge,
                "vigil_anomaly_series_warming_up",
                "Series still learning (no anomalies yet).",
                self.monitor.warming_up as f64,
            ),
            (
                Single::Gauge,
                "vigil_anomaly_window_duration_seconds",
                "Time the last window took to read, score and record.",
                self.last_duration.as_secs_f64(),
            ),
        ] {
            page.single(kind, name, help, v);
        }
    }
}

/// A handle on the running detector's status. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    status: Arc<Mutex<DetectorStatus>>,
}

impl Detector {
    /// A detector that does not run.
    pub fn idle() -> Detector {
        Detector::default()
    }

    /// Starts scoring windows of `store` until `shutdown` is notified.
    pub fn start(
        store: Store,
        config: AnomalyConfig,
        shutdown: Arc<Notify>,
    ) -> (Detector, JoinHandle<()>) {
        let detector = Detector::default();
        let status = detector.status.clone();
        {
            let mut s = lock(&status);
            s.enabled = true;
            s.window_seconds = config.window.0.as_secs_f64();
            s.sensitivity = config.sensitivity;
            s.warm_up = config.warm_up;
        }
        let task = tokio::spawn(run(store, config, status, shutdown));
        (detector, task)
    }

    /// The latest status.
    pub fn status(&self) -> DetectorStatus {
        lock(&self.status).clone()
    }
}

fn lock(m: &Mutex<DetectorStatus>) -> std::sync::MutexGuard<'_, DetectorStatus> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The end of the newest whole window that ended at least `delay` before `now`.
fn last_complete(now: DateTime<Utc>, window: Duration, delay: Duration) -> i64 {
    let w = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX).max(1);
    let d = i64::try_from(delay.as_nanos()).unwrap_or(0);
    let t = vigil_store::query::nanos(now) - d;
    t - t.rem_euclid(w)
}

async fn run(
    store: Store,
    config: AnomalyConfig,
    status: Arc<Mutex<DetectorStatus>>,
    shutdown: Arc<Notify>,
) {
    let stop = shutdown.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    let window = config.window.0.max(Duration::from_millis(100));
    let len = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
    let mut models = Some(Models {
        series: Monitor::new(config.monitor()),
        peers: PeerMonitor::new(config.peers()),
    });
    let mut next_end = last_complete(Utc::now(), window, config.delay.0) + len;
    loop {
        let due = DateTime::from_timestamp_nanos(next_end) + config.delay.0;
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => break,
        }
        let started = Instant::now();
        let w = Window {
            start: next_end - len,
            end: next_end,
        };
        let result = score(&store, w, &config.metrics, &mut models).await;
        let mut s = lock(&status);
        s.windows += 1;
        s.last_window_end = Some(DateTime::from_timestamp_nanos(w.end));
        s.last_duration = started.elapsed();
        match result {
            Ok(scored) => {
                s.anomalies += scored.anomalies;
                s.monitor = scored.monitor;
                s.peer_groups = scored.peer_groups;
            }
            Err(e) => {
                s.failures += 1;
                if s.last_error.as_deref() != Some(&e) {
                    tracing::warn!(error = %e, "anomaly detection window failed");
                }
                s.last_error = Some(e);
            }
        }
        drop(s);
        // A slow window skips the ones it overran rather than falling further behind.
        next_end = (next_end + len).max(last_complete(Utc::now(), window, config.delay.0));
        if models.is_none() {
            break;
        }
    }
}

/// Reads, scores and records one window; the models are scored off the async runtime.
async fn score(
    store: &Store,
    window: Window,
    watched: &[WatchedMetric],
    models: &mut Option<Models>,
) -> Result<Scored, String> {
    let ctx = store
        .session(
            vigil_store::Reader::Internal,
            vigil_store::ReadLimits::INTERNAL,
        )
        .map_err(|e| e.to_string())?;
    let observations = extract(&ctx, window, watched)
        .await
        .map_err(|e| e.to_string())?;
    let members = extract_partitions(&ctx, window)
        .await
        .map_err(|e| e.to_string())?;
    let Some(mut m) = models.take() else {
        return Err("the models were lost".into());
    };
    let (m, anomalies, monitor) = tokio::task::spawn_blocking(move || {
        let mut anomalies = m.series.observe(window, observations);
        anomalies.extend(m.peers.observe(window, members));
        let status = m.series.status();
        (m, anomalies, status)
    })
    .await
    .map_err(|e| format!("scoring panicked: {e}"))?;
    for a in &anomalies {
        tracing::info!(service = %a.key.service, operation = %a.key.operation, score = a.score, top = a.top_feature.name(), "anomaly");
    }
    let written = if anomalies.is_empty() {
        Ok(())
    } else {
        match anomalies_batch(&anomalies) {
            Ok(batch) => store
                .append(Signal::Anomalies, batch)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    // Training happens once the window's anomalies are out, so it never delays them.
    let m = tokio::task::spawn_blocking(move || {
        let mut m = m;
        m.series.refit_due();
        m
    })
    .await
    .map_err(|e| format!("refitting panicked: {e}"))?;
    let peer_groups = m.peers.groups();
    *models = Some(m);
    written.map(|()| Scored {
        anomalies: anomalies.len() as u64,
        monitor,
        peer_groups,
    })
}
