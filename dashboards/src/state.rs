//! What every handler of the query API shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use vigil_detectors::anomaly::runner::Detector;
use vigil_detectors::eval::Engine;
use vigil_store::Store;

use crate::config::ApiConfig;
use crate::gate::Gate;
use crate::trace::cache::TraceCache;
use vigil_store::exposition::Exposition;

/// Renders extra Prometheus text (from components this crate does not know) into `/metrics`.
pub type MetricsSource = Arc<dyn Fn(&mut Exposition) + Send + Sync>;

/// Alerts from elsewhere than the rule engine (posted by other rule engines), listed beside
/// the rule engine's own.
pub type AlertSource = Arc<dyn Fn() -> Vec<vigil_alerting::Alert> + Send + Sync>;

/// Shared handler state. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// The store queries run against.
    pub store: Store,
    /// Limits and addresses.
    pub config: ApiConfig,
    /// Other components' metrics.
    pub metrics: Vec<MetricsSource>,
    /// Set once every listener is up.
    pub ready: Arc<AtomicBool>,
    /// The rule engine, for rules, alerts and SLOs.
    pub rules: Engine,
    /// The live anomaly detector, for its status.
    pub anomalies: Detector,
    /// Alerts posted by other rule engines.
    pub posted_alerts: AlertSource,
    /// Large traces analysed recently, for their later pages.
    pub traces: TraceCache,
    /// How many requests may read the store at once.
    pub gate: Gate,
}

impl ApiState {
    /// Every current alert: the rule engine's, then those other rule engines posted.
    pub fn alerts(&self) -> Vec<vigil_alerting::Alert> {
        let mut all = self.rules.status().alerts();
        all.extend((self.posted_alerts)());
        all
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish()
    }
}
