//! `GET /api/v1/service-map?start=&end=`: the services and dependencies that talked in a
//! window (default the last 15 minutes) and the edges between them: calls (parent/child across
//! services, CLIENT spans to uninstrumented dependencies) and messaging (producer → consumer,
//! also across traces), each with rate, error rate, latency and, for messaging, delivery lag.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::Duration;
use serde_json::{Value, json};
use vigil_detectors::topology::edges;

use crate::error::ApiError;
use crate::red::RedQuery;
use crate::state::ApiState;
use crate::trace::span::rfc3339;
use crate::window::window;

/// The handler (`service` keeps the edges that touch it).
pub async fn handle(
    State(state): State<ApiState>,
    Query(q): Query<RedQuery>,
) -> Result<Json<Value>, ApiError> {
    let w = window(q.start, q.end, Duration::minutes(15))?;
    let ctx = crate::reads::session(&state)?;
    let found: Vec<_> = edges(&ctx, w)
        .await?
        .into_iter()
        .filter(|e| {
            q.service
                .as_ref()
                .is_none_or(|s| *s == e.caller || *s == e.callee)
        })
        .collect();
    let mut nodes: BTreeMap<&str, bool> = BTreeMap::new();
    for e in &found {
        nodes.entry(&e.caller).or_insert(true);
        *nodes.entry(&e.callee).or_insert(e.instrumented) &= e.instrumented;
    }
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|(service, instrumented)| json!({"service": service, "instrumented": instrumented}))
        .collect();
    Ok(Json(json!({
        "window": {"start": rfc3339(w.start), "end": rfc3339(w.end)},
        "nodes": nodes,
        "edges": found,
    })))
}
