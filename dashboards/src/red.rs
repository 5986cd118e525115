//! `GET /api/v1/services?start=&end=&service=`: rate, errors and duration (p50/p95/p99) per
//! service (its SERVER and CONSUMER spans) and per operation over a window (default the last
//! 15 minutes), each beside the same figures for the window just before, with exemplar traces.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vigil_detectors::features::{Feature, Observation, extract};

use crate::error::ApiError;
use crate::state::ApiState;
use crate::trace::span::rfc3339;
use crate::window::window;

/// Filters of `GET /api/v1/services`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedQuery {
    /// RFC 3339; default 15 minutes before `end`.
    pub start: Option<DateTime<Utc>>,
    /// RFC 3339; default now.
    pub end: Option<DateTime<Utc>>,
    /// Only this service.
    pub service: Option<String>,
}

/// The features that describe traffic, by name (`request_rate`, `error_rate`, `latency_p95`…;
/// latencies in seconds).
fn figures(o: Option<&Observation>) -> Value {
    let Some(o) = o else {
        return Value::Null;
    };
    let map: Map<String, Value> = Feature::ALL
        .into_iter()
        .filter(|f| *f != Feature::Metric)
        .map(|f| (f.name().to_string(), json!(o.values[f.index()])))
        .collect();
    Value::Object(map)
}

/// The handler.
pub async fn handle(
    State(state): State<ApiState>,
    Query(q): Query<RedQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = window(q.start, q.end, Duration::minutes(15))?;
    let before = now.previous();
    let ctx = crate::reads::session(&state)?;
    let keep = |o: &Observation| q.service.as_ref().is_none_or(|s| *s == o.key.service);
    let current: Vec<Observation> = extract(&ctx, now, &[])
        .await?
        .into_iter()
        .filter(keep)
        .collect();
    let earlier: BTreeMap<_, Observation> = extract(&ctx, before, &[])
        .await?
        .into_iter()
        .filter(keep)
        .map(|o| (o.key.clone(), o))
        .collect();
    // `extract` lists each service's own series first, then its operations.
    let mut services: Vec<Value> = Vec::new();
    for o in &current {
        let entry = json!({
            "figures": figures(Some(o)),
            "previous": figures(earlier.get(&o.key)),
            "trace_ids": o.trace_ids,
        });
        if o.key.operation.is_empty() {
            let mut service = entry;
            service["service"] = json!(o.key.service);
            service["operations"] = json!([]);
            services.push(service);
        } else if let Some(service) = services
            .iter_mut()
            .rev()
            .find(|s| s["service"] == o.key.service)
        {
            let mut op = entry;
            op["operation"] = json!(o.key.operation);
            if let Some(ops) = service["operations"].as_array_mut() {
                ops.push(op);
            }
        }
    }
    Ok(Json(json!({
        "window": {"start": rfc3339(now.start), "end": rfc3339(now.end)},
        "previous_window": {"start": rfc3339(before.start), "end": rfc3339(before.end)},
        "services": services,
    })))
}
