//! `GET /api/v1/rca?service=&start=&end=&baseline_start=&baseline_end=` and
//! `GET /api/v1/alerts/{fingerprint}/rca`: what changed between a baseline and an anomaly
//! window — ranked suspects with their evidence (see `vigil_detectors::rca`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_detectors::rca::{RcaWindows, analyse};
use vigil_store::{ReadLimits, Reader};

use crate::error::ApiError;
use crate::state::ApiState;
use crate::trace::span::rfc3339;
use crate::window::window;

/// How much of what went before the anomaly window is the baseline, unless told.
const BASELINE: Duration = Duration::hours(1);

/// Parameters of `GET /api/v1/rca`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RcaQuery {
    /// The symptom's service: suspects are it and what it depends on.
    pub service: Option<String>,
    /// Anomaly window start, RFC 3339; default 15 minutes before `end`.
    pub start: Option<DateTime<Utc>>,
    /// Anomaly window end; default now.
    pub end: Option<DateTime<Utc>>,
    /// Baseline start; default one hour before `baseline_end`. The baseline may lie before
    /// or after the anomaly window (a known-good period), but not overlap it.
    pub baseline_start: Option<DateTime<Utc>>,
    /// Baseline end; default the anomaly window's start.
    pub baseline_end: Option<DateTime<Utc>>,
}

async fn report(
    state: &ApiState,
    windows: RcaWindows,
    service: Option<&str>,
) -> Result<Value, ApiError> {
    // An analysis runs a handful of queries: it gets four query timeouts in all.
    let ctx = state.store.session(
        Reader::Users,
        ReadLimits::within(state.config.query_timeout.0 * 4),
    )?;
    let report = analyse(&ctx, windows, service).await?;
    let mut out = json!(report);
    for s in out["suspects"].as_array_mut().into_iter().flatten() {
        let urls: Vec<String> = s["trace_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|t| format!("/api/v1/traces/{t}"))
            .collect();
        s["trace_urls"] = json!(urls);
    }
    out["window"] =
        json!({"start": rfc3339(windows.window.start), "end": rfc3339(windows.window.end)});
    out["baseline"] =
        json!({"start": rfc3339(windows.baseline.start), "end": rfc3339(windows.baseline.end)});
    out["service"] = json!(service);
    Ok(out)
}

/// `GET /api/v1/rca`.
pub async fn handle(
    State(state): State<ApiState>,
    Query(q): Query<RcaQuery>,
) -> Result<Json<Value>, ApiError> {
    let w = window(q.start, q.end, Duration::minutes(15))?;
    let baseline_end = q
        .baseline_end
        .unwrap_or_else(|| DateTime::from_timestamp_nanos(w.start));
    let baseline = window(q.baseline_start, Some(baseline_end), BASELINE)?;
    let windows = RcaWindows {
        window: w,
        baseline,
    };
    if windows.overlap() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the baseline must not overlap the anomaly window: end it before the window starts or start it after the window ends",
        ));
    }
    Ok(Json(report(&state, windows, q.service.as_deref()).await?))
}

/// `GET /api/v1/alerts/{fingerprint}/rca`: the alert's active span (from a little before it
/// became active until it resolved, or now) against the quarter of an hour before, scoped to
/// its `service`: the report its pages link to.
pub async fn for_alert(
    State(state): State<ApiState>,
    Path(fingerprint): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let alert = state
        .alerts()
        .into_iter()
        .find(|a| a.fingerprint.to_string() == fingerprint)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no current alert with fingerprint {fingerprint:?}"),
            )
        })?;
    let windows = RcaWindows::around(&alert, Utc::now());
    let service = alert.labels.get("service").map(String::as_str);
    let mut out = report(&state, windows, service).await?;
    out["alert"] = json!(alert);
    Ok(Json(out))
}
