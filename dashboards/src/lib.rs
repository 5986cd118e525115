//! Vigil's read side: the HTTP query API (SQL, traces, rules, alerts, SLOs, anomalies), health and
//! Prometheus self-metrics.
//!
//! Everything here reads through the store's DataFusion session; nothing here writes.

pub mod anomalies_api;
pub mod config;
pub mod correlation;
pub mod error;
pub mod gate;
pub mod health;
pub mod json;
pub mod logs_api;
pub mod rca_api;
pub mod reads;
pub mod red;
pub mod rules_api;
pub mod service_map;
pub mod sql_api;
pub mod state;
pub mod trace;
pub mod window;

use axum::routing::{get, post};
use axum::{Router, middleware};

pub use config::ApiConfig;
pub use state::{AlertSource, ApiState, MetricsSource};

/// Every route of the query API.
pub fn router(state: ApiState) -> Router {
    let reads = Router::new()
        .route("/api/v1/sql", post(sql_api::handle))
        .route("/api/v1/traces", get(trace::search::handle))
        .route("/api/v1/traces/{trace_id}", get(trace::view::handle))
        .route("/api/services", get(trace::jaeger::services))
        .route(
            "/api/services/{service}/operations",
            get(trace::jaeger::service_operations),
        )
        .route("/api/operations", get(trace::jaeger::operations))
        .route("/api/traces", get(trace::jaeger::search))
        .route("/api/traces/{trace_id}", get(trace::jaeger::trace))
        .route("/api/v1/alerts/{fingerprint}/rca", get(rca_api::for_alert))
        .route("/api/v1/rca", get(rca_api::handle))
        .route("/api/v1/anomalies", get(anomalies_api::anomalies))
        .route("/api/v1/services", get(red::handle))
        .route("/api/v1/service-map", get(service_map::handle))
        .route("/api/v1/logs", get(logs_api::handle))
        .route(
            "/api/v1/correlations/{correlation_id}",
            get(correlation::handle),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), reads::admit));
    Router::new()
        .merge(reads)
        .route("/api/v1/alerts", get(rules_api::alerts))
        .route("/api/v1/rules", get(rules_api::rules))
        .route("/api/v1/slos", get(rules_api::slos))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
}
