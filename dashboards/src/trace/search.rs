//! `GET /api/v1/traces?service=&operation=&min_duration=&max_duration=&status=&attr.k=v&start=&end=&limit=`:
//! the traces with a span matching every filter, newest first, each summarised (root,
//! duration, spans, errors, services). The newest part of the window is searched first, and
//! the search stops once it has found enough traces.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vigil_store::Session;
use vigil_store::query::{self, Sql, Window, eq, list, lit};
use vigil_store::sql;
use vigil_store::units::HumanDuration;

use super::span::rfc3339;
use crate::error::ApiError;
use crate::json::objects;
use crate::state::ApiState;
use crate::window::window;

/// Traces returned when `limit` is not given, and the most that can be asked for.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1_000;
/// How far from a found trace's last matching span its other spans are looked for.
const TRACE_MARGIN_NS: i64 = 3_600 * 1_000_000_000;
/// The newest parts of a window searched first, as time back from its end: most searches
/// want the latest traces, and a part that already holds enough of them ends the search
/// without reading the older ones.
const SLICES_NS: [i64; 3] = [
    15 * 60 * 1_000_000_000,
    3_600 * 1_000_000_000,
    4 * 3_600 * 1_000_000_000,
];

/// What to look for; every filter holds for one span of each trace found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceQuery {
    /// `service.name`.
    pub service: Option<String>,
    /// Span name.
    pub operation: Option<String>,
    /// Shortest span duration, ns.
    pub min_duration: Option<i64>,
    /// Longest span duration, ns.
    pub max_duration: Option<i64>,
    /// `ERROR`, `OK` or `UNSET`.
    pub status: Option<String>,
    /// Span or resource attributes that must hold these values.
    pub attributes: Vec<(String, String)>,
    /// The time window spans started in.
    pub window: Window,
    /// At most this many traces.
    pub limit: usize,
}

/// Most `attr.<name>` filters one search may have.
pub const MAX_ATTRIBUTE_FILTERS: usize = 16;

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// Parameter `name`'s duration in nanoseconds.
pub(super) fn duration_ns(name: &str, text: &str) -> Result<i64, ApiError> {
    let d = HumanDuration::from_str(text).map_err(|e| bad(format!("{name}: {e}")))?;
    Ok(i64::try_from(d.0.as_nanos()).unwrap_or(i64::MAX))
}

fn time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            bad(format!(
                "{name}: {e} (want RFC 3339, e.g. 2026-11-28T04:00:00Z)"
            ))
        })
}

impl TraceQuery {
    /// Reads the query string of `GET /api/v1/traces`; unknown parameters are refused.
    pub fn from_params(params: &HashMap<String, String>) -> Result<TraceQuery, ApiError> {
        let mut q = TraceQuery {
            limit: DEFAULT_LIMIT,
            ..TraceQuery::default()
        };
        let (mut start, mut end) = (None, None);
        for (key, value) in params {
            match key.as_str() {
                "service" => q.service = Some(value.clone()),
                "operation" => q.operation = Some(value.clone()),
                "min_duration" => q.min_duration = Some(duration_ns(key, value)?),
                "max_duration" => q.max_duration = Some(duration_ns(key, value)?),
                "status" => {
                    let s = value.to_ascii_uppercase();
                    if query::StatusCode::parse(&s).is_none() {
                        return Err(bad(format!(
                            "status must be error, ok or unset, got {value:?}"
                        )));
                    }
                    q.status = Some(s);
                }
                "start" => start = Some(time(key, value)?),
                "end" => end = Some(time(key, value)?),
                "limit" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| bad(format!("limit must be a number, got {value:?}")))?;
                    q.limit = n.clamp(1, MAX_LIMIT);
                }
                other => match other.strip_prefix("attr.") {
                    Some(name) if !name.is_empty() => {
                        q.attributes.push((name.to_string(), value.clone()));
                    }
                    _ => {
                        return Err(bad(format!(
                            "unknown parameter {other:?}; use service, operation, min_duration, \
                             max_duration, status, attr.<name>, start, end or limit"
                        )));
                    }
                },
            }
        }
        if q.attributes.len() > MAX_ATTRIBUTE_FILTERS {
            return Err(bad(format!(
                "at most {MAX_ATTRIBUTE_FILTERS} attr.<name> filters, got {}",
                q.attributes.len()
            )));
        }
        q.attributes.sort();
        q.window = window(start, end, chrono::Duration::hours(1))?;
        Ok(q)
    }

    /// The SQL condition a matching span meets.
    pub fn span_filter(&self) -> Sql {
        let mut sql = self.window.sql();
        for (column, value) in [
            ("service_name", &self.service),
            ("span_name", &self.operation),
            ("status_code", &self.status),
        ] {
            if let Some(v) = value {
                sql.push(sql!(" AND {}", eq(column, v)));
            }
        }
        if let Some(min) = self.min_duration {
            sql.push(sql!(" AND duration_ns >= {}", min));
        }
        if let Some(max) = self.max_duration {
            sql.push(sql!(" AND duration_ns <= {}", max));
        }
        for (name, value) in &self.attributes {
            let (k, v) = (lit(name), lit(value));
            sql.push(sql!(
                " AND (attributes[{}] = {} OR resource_attributes[{}] = {})",
                k,
                v,
                k,
                v
            ));
        }
        sql
    }
}

/// `w` cut into its newest parts (see [`SLICES_NS`]) and the rest, newest first.
fn slices(w: Window) -> Vec<Window> {
    let mut out = Vec::new();
    let mut end = w.end;
    for back in SLICES_NS {
        let start = w.end.saturating_sub(back).max(w.start);
        if start < end {
            out.push(Window { start, end });
            end = start;
        }
    }
    if w.start < end {
        out.push(Window {
            start: w.start,
            end,
        });
    }
    out
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Found {
    /// Trace ids, newest first (by their last matching span).
    pub ids: Vec<String>,
    /// Where the found traces' spans lie: within the margin of their matching spans.
    pub around: Window,
}

/// The traces matching `q`, newest first, searching the newest part of the window first.
pub async fn matching(ctx: &Session, q: &TraceQuery) -> Result<Found, ApiError> {
    let mut found = Found::default();
    let mut seen = HashSet::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for slice in slices(q.window) {
        let part = TraceQuery {
            window: slice,
            ..q.clone()
        };
        let rows = ctx
            .query(
                sql!(
                    "SELECT trace_id, CAST(max(time) AS BIGINT) AS last FROM spans WHERE {} \
                 GROUP BY trace_id ORDER BY last DESC LIMIT {}",
                    part.span_filter(),
                    q.limit
                )
                .as_str(),
                q.limit,
            )
            .await?;
        for o in objects(&rows.batches) {
            let (Some(id), Some(at)) = (
                o.get("trace_id").and_then(Value::as_str),
                o.get("last").and_then(Value::as_i64),
            ) else {
                continue;
            };
            // A trace that matched in a newer part is listed there already.
            if found.ids.len() < q.limit && seen.insert(id.to_string()) {
                found.ids.push(id.to_string());
                (first, last) = (first.min(at), last.max(at));
            }
        }
        if found.ids.len() >= q.limit {
            break;
        }
    }
    if !found.ids.is_empty() {
        found.around = Window {
            start: first.saturating_sub(TRACE_MARGIN_NS),
            end: last.saturating_add(TRACE_MARGIN_NS),
        };
    }
    Ok(found)
}

/// The traces matching `q`, newest first, summarised.
pub async fn find(state: &ApiState, q: &TraceQuery) -> Result<Vec<Value>, ApiError> {
    let ctx = crate::reads::session(state)?;
    let found = matching(&ctx, q).await?;
    if found.ids.is_empty() {
        return Ok(Vec::new());
    }
    let summary = ctx
        .query(
            sql!(
                "SELECT trace_id, CAST(min(time) AS BIGINT) AS start_ns, \
             CAST(max(end_time) AS BIGINT) AS end_ns, count(*) AS span_count, \
             sum(CASE WHEN status_code = {} THEN 1 ELSE 0 END) AS error_count, \
             array_agg(DISTINCT service_name) AS services, \
             first_value(service_name ORDER BY (parent_span_id = '') DESC, time) AS root_service, \
             first_value(span_name ORDER BY (parent_span_id = '') DESC, time) AS root_operation \
             FROM spans WHERE {} AND trace_id IN ({}) GROUP BY trace_id",
                query::StatusCode::Error,
                found.around.sql(),
                list(&found.ids)
            )
            .as_str(),
            found.ids.len(),
        )
        .await?;
    let mut by_id: HashMap<String, Value> = objects(&summary.batches)
        .into_iter()
        .filter_map(|mut o| {
            let id = o.get("trace_id")?.as_str()?.to_string();
            let start = o.remove("start_ns")?.as_i64()?;
            let end = o.remove("end_ns")?.as_i64()?;
            o.insert("start".into(), json!(rfc3339(start)));
            o.insert("duration_ns".into(), json!(end - start));
            if let Some(Value::Array(services)) = o.get_mut("services") {
                services.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            Some((id, Value::Object(o)))
        })
        .collect();
    Ok(found.ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// The handler.
pub async fn handle(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let q = TraceQuery::from_params(&params)?;
    let traces = find(&state, &q).await?;
    Ok(Json(json!({ "traces": traces })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_become_one_span_condition() {
        let q = TraceQuery::from_params(&params(&[
            ("service", "payment"),
            ("min_duration", "250ms"),
            ("status", "error"),
            ("attr.host.name", "node-'3'"),
            ("start", "2026-11-28T04:00:00Z"),
            ("end", "2026-11-28T05:00:00Z"),
        ]))
        .unwrap_or_else(|e| panic!("{e:?}"));
        let sql = q.span_filter().to_string();
        assert!(sql.starts_with("time >= '2026-11-28T04:00:00"), "{sql}");
        assert!(sql.contains("service_name = 'payment'"), "{sql}");
        assert!(sql.contains("status_code = 'ERROR'"), "{sql}");
        assert!(sql.contains("duration_ns >= 250000000"), "{sql}");
        assert!(
            sql.contains("attributes['host.name'] = 'node-''3'''"),
            "quotes are doubled: {sql}"
        );
    }

    #[test]
    fn windows_are_searched_newest_part_first() {
        const MIN: i64 = 60 * 1_000_000_000;
        let w = |start: i64, end: i64| Window { start, end };
        let end = 1_000 * MIN;
        assert_eq!(
            slices(w(end - 600 * MIN, end)),
            vec![
                w(end - 15 * MIN, end),
                w(end - 60 * MIN, end - 15 * MIN),
                w(end - 240 * MIN, end - 60 * MIN),
                w(end - 600 * MIN, end - 240 * MIN),
            ]
        );
        // A short window is one part; an empty one none.
        assert_eq!(slices(w(end - 5 * MIN, end)), vec![w(end - 5 * MIN, end)]);
        assert_eq!(
            slices(w(end - 30 * MIN, end)),
            vec![w(end - 15 * MIN, end), w(end - 30 * MIN, end - 15 * MIN)]
        );
        assert!(slices(w(end, end)).is_empty());
    }

    #[test]
    fn bad_parameters_are_refused_by_name() {
        for (pairs, want) in [
            (vec![("colour", "red")], "unknown parameter \"colour\""),
            (vec![("min_duration", "fast")], "min_duration"),
            (vec![("status", "broken")], "status must be"),
            (vec![("start", "yesterday")], "start"),
            (
                vec![
                    ("start", "2026-11-28T05:00:00Z"),
                    ("end", "2026-11-28T04:00:00Z"),
                ],
                "start must be before end",
            ),
        ] {
            let e = TraceQuery::from_params(&params(&pairs))
                .err()
                .map(|e| e.message().to_string())
                .unwrap_or_default();
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
    }
}
