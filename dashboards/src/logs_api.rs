//! `GET /api/v1/logs?q=&service=&severity=&trace_id=&start=&end=&limit=`: log records whose body
//! holds every word of `q` (case-insensitive), at or above a severity, newest first, each with
//! the address of its trace.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_store::query::{Severity, Sql, eq, lit};
use vigil_store::sql;

use crate::error::ApiError;
use crate::json::objects;
use crate::state::ApiState;
use crate::trace::span::{rfc3339, trace_id};
use crate::window::window;

/// Records returned when `limit` is not given, and the most that can be asked for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// Most words `q` may hold.
const MAX_WORDS: usize = 32;

/// Filters of `GET /api/v1/logs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Words the body must all contain, case-insensitively.
    pub q: Option<String>,
    /// `service.name`.
    pub service: Option<String>,
    /// Lowest severity: trace, debug, info, warn, error or fatal.
    pub severity: Option<String>,
    /// Only records of this trace.
    pub trace_id: Option<String>,
    /// RFC 3339; default one hour before `end`.
    pub start: Option<DateTime<Utc>>,
    /// RFC 3339; default now.
    pub end: Option<DateTime<Utc>>,
    /// At most this many (default 100, at most 1,000).
    pub limit: Option<usize>,
}

/// The SQL answering `f`.
fn query(f: &LogQuery) -> Result<Sql, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let w = window(f.start, f.end, Duration::hours(1))?;
    let mut sql = sql!(
        "SELECT CAST(time AS BIGINT) AS time_ns, service_name, severity_text, severity_number, \
         body, trace_id, span_id, correlation_id, attributes FROM logs WHERE {}",
        w.sql()
    );
    let words: Vec<&str> = f.q.as_deref().unwrap_or("").split_whitespace().collect();
    if words.len() > MAX_WORDS {
        return Err(bad(format!(
            "q may hold at most {MAX_WORDS} words, got {}",
            words.len()
        )));
    }
    for word in words {
        sql.push(sql!(
            " AND strpos(lower(body), {}) > 0",
            lit(&word.to_lowercase())
        ));
    }
    if let Some(s) = &f.service {
        sql.push(sql!(" AND {}", eq("service_name", s)));
    }
    if let Some(name) = &f.severity {
        let n = Severity::from_name(name).ok_or_else(|| {
            bad(format!(
                "severity must be trace, debug, info, warn, error or fatal, got {name:?}"
            ))
        })?;
        sql.push(sql!(" AND severity_number >= {}", n));
    }
    if let Some(t) = &f.trace_id {
        let id =
            trace_id(t).ok_or_else(|| bad(format!("trace_id must be 32 hex digits, got {t:?}")))?;
        sql.push(sql!(" AND {}", eq("trace_id", &id)));
    }
    let limit = f.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    sql.push(sql!(" ORDER BY time DESC LIMIT {}", limit));
    Ok(sql)
}

/// The handler.
pub async fn handle(
    State(state): State<ApiState>,
    Query(f): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let sql = query(&f)?;
    let ctx = crate::reads::session(&state)?;
    let result = ctx.query(sql.as_str(), MAX_LIMIT).await?;
    let logs: Vec<Value> = objects(&result.batches)
        .into_iter()
        .map(|mut o| {
            let at = o.remove("time_ns").and_then(|v| v.as_i64()).unwrap_or(0);
            o.insert("time".into(), json!(rfc3339(at)));
            let trace = o.get("trace_id").and_then(Value::as_str).unwrap_or("");
            if !trace.is_empty() {
                let url = format!("/api/v1/traces/{trace}");
                o.insert("trace_url".into(), json!(url));
            }
            Value::Object(o)
        })
        .collect();
    Ok(Json(json!({ "logs": logs })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_severity_and_trace_become_conditions() {
        let sql = query(&LogQuery {
            q: Some("Card  DECLINED".into()),
            severity: Some("warn".into()),
            trace_id: Some("5B8EFFF798038103D269B633813FC60C".into()),
            ..LogQuery::default()
        })
        .unwrap_or_else(|e| panic!("{}", e.message()));
        assert!(sql.contains("strpos(lower(body), 'card') > 0"), "{sql}");
        assert!(sql.contains("strpos(lower(body), 'declined') > 0"), "{sql}");
        assert!(sql.contains("severity_number >= 13"), "{sql}");
        assert!(
            sql.contains("trace_id = '5b8efff798038103d269b633813fc60c'"),
            "{sql}"
        );
        let bad = query(&LogQuery {
            severity: Some("loud".into()),
            ..LogQuery::default()
        });
        assert!(bad.is_err());
    }
}
