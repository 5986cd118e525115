//! `GET /api/v1/alerts`, `/api/v1/rules` and `/api/v1/slos`: the rule engine's current state,
//! in the `{"status": "success", "data": …}` envelope Prometheus' API uses.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_alerting::AlertState;

use crate::error::ApiError;
use crate::state::ApiState;

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFilter {
    /// `pending`, `firing` or `resolved`.
    pub state: Option<String>,
    /// The `alertname` label.
    pub alertname: Option<String>,
    /// The `service` label.
    pub service: Option<String>,
    /// The `severity` label.
    pub severity: Option<String>,
    /// The alert's fingerprint (16 hex digits), as notifications link to it.
    pub fingerprint: Option<String>,
}

/// The Prometheus API envelope around `data`.
pub fn success(data: Value) -> Json<Value> {
    Json(json!({ "status": "success", "data": data }))
}

/// Current alerts (pending, firing, and resolved in the last 15 minutes) of the rule engine,
/// then those other rule engines posted, filtered.
pub async fn alerts(
    State(state): State<ApiState>,
    Query(filter): Query<AlertFilter>,
) -> Result<Json<Value>, ApiError> {
    let wanted = match filter.state.as_deref() {
        None => None,
        Some("pending") => Some(AlertState::Pending),
        Some("firing") => Some(AlertState::Firing),
        Some("resolved") => Some(AlertState::Resolved),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown state {other:?}; use pending, firing or resolved"),
            ));
        }
    };
    let label_is = |a: &vigil_alerting::Alert, name: &str, want: &Option<String>| {
        want.as_ref()
            .is_none_or(|w| a.labels.get(name).is_some_and(|v| v == w))
    };
    let alerts: Vec<_> = state
        .alerts()
        .into_iter()
        .filter(|a| wanted.is_none_or(|s| a.state == s))
        .filter(|a| {
            label_is(a, "alertname", &filter.alertname)
                && label_is(a, "service", &filter.service)
                && label_is(a, "severity", &filter.severity)
                && filter
                    .fingerprint
                    .as_ref()
                    .is_none_or(|f| a.fingerprint.to_string() == *f)
        })
        .collect();
    Ok(success(json!({ "alerts": alerts })))
}

/// Every group and rule: last evaluation, duration, health, error, alerts; and rule file
/// loading.
pub async fn rules(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let status = state.rules.status();
    Ok(success(
        json!({ "groups": status.groups, "reload": status.reload }),
    ))
}

/// Every SLO's last reading: events, SLI, error budget left and burn rates.
pub async fn slos(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(success(json!({ "slos": state.rules.status().slos() })))
}
