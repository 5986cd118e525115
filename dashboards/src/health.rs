//! `/healthz`, `/readyz` and Vigil's own Prometheus `/metrics`.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use vigil_store::exposition::Exposition;

use crate::state::ApiState;

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: every listener is up and the WAL was replayed.
pub async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

/// Prometheus text exposition of the store's, the query API's and every registered
/// component's figures.
pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let mut page = Exposition::new();
    state.store.render_metrics(&mut page);
    state.gate.render(&mut page);
    for source in &state.metrics {
        source(&mut page);
    }
    let out = page.into_text();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
