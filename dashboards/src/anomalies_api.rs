//! `GET /api/v1/anomalies`: anomalies from the `anomalies` table, filtered, newest first, with
//! the detector's status (which series are still warming up and cannot report yet).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_detectors::anomaly::runner::DetectorStatus;
use vigil_store::query::{Sql, eq};
use vigil_store::sql;

use crate::error::ApiError;
use crate::json::objects;
use crate::rules_api::success;
use crate::state::ApiState;
use crate::window::window;

/// Anomalies returned when `limit` is not given, and the most that can be asked for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Warming series listed in the status (the count is always exact).
const MAX_WARMING_LISTED: usize = 50;

/// Filters of `GET /api/v1/anomalies`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyFilter {
    /// `service.name`.
    pub service: Option<String>,
    /// Span name; empty string for service-wide series.
    pub operation: Option<String>,
    /// The top contributing feature, e.g. `latency_p95`.
    pub feature: Option<String>,
    /// Lowest score returned.
    pub min_score: Option<f64>,
    /// RFC 3339; default one hour before `end`.
    pub start: Option<DateTime<Utc>>,
    /// RFC 3339; default now.
    pub end: Option<DateTime<Utc>>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// The SQL answering `f`.
fn query(f: &AnomalyFilter) -> Result<Sql, ApiError> {
    let window = window(f.start, f.end, Duration::hours(1))?;
    let mut sql = sql!("SELECT * FROM anomalies WHERE {}", window.sql());
    for (column, value) in [
        ("service_name", &f.service),
        ("operation", &f.operation),
        ("top_feature", &f.feature),
    ] {
        if let Some(v) = value {
            sql.push(sql!(" AND {}", eq(column, v)));
        }
    }
    if let Some(min) = f.min_score {
        if !(0.0..=1.0).contains(&min) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "min_score must be between 0 and 1",
            ));
        }
        sql.push(sql!(" AND score >= {}", min));
    }
    let limit = f.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    sql.push(sql!(" ORDER BY time DESC, score DESC LIMIT {}", limit));
    Ok(sql)
}

fn status(s: &DetectorStatus) -> Value {
    let warming: Vec<Value> = s
        .monitor
        .warming
        .iter()
        .take(MAX_WARMING_LISTED)
        .map(|(k, seen)| json!({ "service": k.service, "operation": k.operation, "windows_seen": seen }))
        .collect();
    json!({
        "enabled": s.enabled,
        "window_seconds": s.window_seconds,
        "sensitivity": s.sensitivity,
        "warm_up_windows": s.warm_up,
        "series": s.monitor.series,
        "warming_up": s.monitor.warming_up,
        "warming": warming,
        "peer_groups": s.peer_groups,
        "last_window_end": s.last_window_end,
        "last_duration_seconds": s.last_duration.as_secs_f64(),
        "windows": s.windows,
        "anomalies": s.anomalies,
        "failures": s.failures,
        "last_error": s.last_error,
    })
}

/// The handler.
pub async fn anomalies(
    State(state): State<ApiState>,
    Query(filter): Query<AnomalyFilter>,
) -> Result<Json<Value>, ApiError> {
    let sql = query(&filter)?;
    let ctx = crate::reads::session(&state)?;
    let result = ctx.query(sql.as_str(), MAX_LIMIT).await?;
    Ok(success(json!({
        "anomalies": objects(&result.batches),
        "detector": status(&state.anomalies.status()),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_quoted_conditions() {
        let f = AnomalyFilter {
            service: Some("pay'ment".into()),
            feature: Some("latency_p95".into()),
            min_score: Some(0.9),
            start: Some("2026-01-01T00:00:00Z".parse().unwrap_or_default()),
            end: Some("2026-01-01T01:00:00Z".parse().unwrap_or_default()),
            limit: Some(5000),
            ..AnomalyFilter::default()
        };
        let sql = query(&f).unwrap_or_default();
        assert!(sql.contains("service_name = 'pay''ment'"), "{sql}");
        assert!(sql.contains("top_feature = 'latency_p95'"), "{sql}");
        assert!(sql.contains("score >= 0.9"), "{sql}");
        assert!(sql.ends_with("LIMIT 1000"), "{sql}");
        let bad = AnomalyFilter {
            min_score: Some(2.0),
            ..AnomalyFilter::default()
        };
        assert!(query(&bad).is_err());
    }
}
