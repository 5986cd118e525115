//! `GET /api/v1/traces/{trace_id}`: the span tree (depth, self time, critical path), span
//! events and the trace's logs interleaved by time, and the traces it links to and that link
//! to it. Spans come a page at a time (`limit`, `offset`), so huge traces stay fast; the
//! pages after the first come from the snapshot the first took (see [`super::cache`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use vigil_store::Session;
use vigil_store::query::{self, Window, eq, lit};
use vigil_store::sql;

use super::cache::Analysed;
use super::span::{Span, read, rfc3339, trace_id};
use super::tree::{Node, Shape, analyse};
use crate::error::ApiError;
use crate::json::objects;
use crate::state::ApiState;

/// Most spans of one trace analysed.
const MAX_SPANS: usize = 200_000;
/// Spans per page unless `limit` says otherwise, and the most a page may hold.
const DEFAULT_PAGE: usize = 5_000;
const MAX_PAGE: usize = 50_000;
/// Most logs of one trace returned.
const MAX_LOGS: usize = 10_000;
/// Most spans of other traces listed as linking here.
const MAX_LINKED_FROM: usize = 100;
/// How long after a trace ends a span in another trace may still link to it (a consumer
/// picking up a message late).
const LINK_HORIZON_NS: i64 = 3_600 * 1_000_000_000;

/// Paging of the span list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Spans per page (default 5,000, at most 50,000).
    pub limit: Option<usize>,
    /// Spans to skip, in tree order.
    pub offset: Option<usize>,
}

/// The handler.
pub async fn handle(
    State(state): State<ApiState>,
    Path(raw_id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let id = trace_id(&raw_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("trace id must be 32 hex digits, got {raw_id:?}"),
        )
    })?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let offset = page.offset.unwrap_or(0);
    // A page after the first comes from the snapshot the first page took, if still held.
    let cached = (offset > 0).then(|| state.traces.get(&id)).flatten();
    let trace = match cached {
        Some(trace) => trace,
        None => {
            let trace = Arc::new(load(&state, &id).await?);
            if trace.spans.len() > limit {
                state.traces.put(&id, trace.clone());
            }
            trace
        }
    };
    // Rendered straight from the snapshot, borrowing rather than copying it.
    Ok(Json(TraceView::new(&id, &trace, offset, limit)).into_response())
}

/// The view's JSON.
#[derive(Serialize)]
struct TraceView<'a> {
    trace_id: &'a str,
    start: String,
    duration_ns: i64,
    span_count: usize,
    error_count: usize,
    services: Vec<&'a str>,
    truncated: bool,
    critical_path: Vec<CriticalStep<'a>>,
    offset: usize,
    next_offset: Option<usize>,
    spans: Vec<SpanView<'a>>,
    timeline: Vec<TimelineItem<'a>>,
    logs: &'a [Map<String, Value>],
    linked_from: &'a [Value],
}

/// One span on the critical path.
#[derive(Serialize)]
struct CriticalStep<'a> {
    span_id: &'a str,
    service: &'a str,
    operation: &'a str,
    critical_ns: i64,
}

/// One span as the view shows it.
#[derive(Serialize)]
struct SpanView<'a> {
    span_id: &'a str,
    parent_span_id: &'a str,
    depth: usize,
    service: &'a str,
    operation: &'a str,
    kind: &'a str,
    status: Status<'a>,
    start: String,
    start_offset_ns: i64,
    duration_ns: i64,
    self_ns: i64,
    critical_ns: i64,
    attributes: &'a Map<String, Value>,
    resource_attributes: &'a Map<String, Value>,
    events: &'a [Value],
    links: &'a [Value],
    correlation_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Status<'a> {
    code: &'a str,
    message: &'a str,
}

/// A span event or a log, on the timeline; `type` says which.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum TimelineItem<'a> {
    Event(EventItem<'a>),
    Log(&'a Map<String, Value>),
}

#[derive(Serialize)]
struct EventItem<'a> {
    time: String,
    time_ns: i64,
    span_id: &'a str,
    service: &'a str,
    name: &'a Value,
    attributes: &'a Value,
}

impl<'a> TraceView<'a> {
    /// The page of `trace` from `offset`, at most `limit` spans.
    fn new(id: &'a str, trace: &'a Analysed, offset: usize, limit: usize) -> TraceView<'a> {
        let Analysed {
            spans,
            truncated,
            shape,
            logs,
            linked_from,
        } = trace;
        let (start, end) = bounds(spans).unwrap_or((0, 0));
        let shown = shape.order.get(offset..).unwrap_or_default();
        let shown = &shown[..shown.len().min(limit)];
        let next_offset = (offset + shown.len() < spans.len()).then_some(offset + shown.len());
        let mut services: Vec<&str> = spans.iter().map(|s| s.service_name.as_str()).collect();
        services.sort_unstable();
        services.dedup();
        TraceView {
            trace_id: id,
            start: rfc3339(start),
            duration_ns: end - start,
            span_count: spans.len(),
            error_count: spans
                .iter()
                .filter(|s| s.status_code == query::StatusCode::Error.as_str())
                .count(),
            services,
            truncated: *truncated,
            critical_path: shape
                .critical_path
                .iter()
                .map(|(i, ns)| {
                    let s = &spans[*i];
                    CriticalStep {
                        span_id: &s.span_id,
                        service: &s.service_name,
                        operation: &s.span_name,
                        critical_ns: *ns,
                    }
                })
                .collect(),
            offset,
            next_offset,
            spans: shown
                .iter()
                .map(|(i, depth)| SpanView::new(&spans[*i], *depth, shape, *i, start))
                .collect(),
            timeline: timeline(spans, shown, logs),
            logs,
            linked_from,
        }
    }
}

impl<'a> SpanView<'a> {
    fn new(s: &'a Span, depth: usize, shape: &Shape, i: usize, trace_start: i64) -> SpanView<'a> {
        SpanView {
            span_id: &s.span_id,
            parent_span_id: &s.parent_span_id,
            depth,
            service: &s.service_name,
            operation: &s.span_name,
            kind: &s.span_kind,
            status: Status {
                code: &s.status_code,
                message: &s.status_message,
            },
            start: rfc3339(s.start_ns),
            start_offset_ns: s.start_ns - trace_start,
            duration_ns: s.duration_ns(),
            self_ns: shape.self_ns[i],
            critical_ns: shape.critical_ns[i],
            attributes: &s.attributes,
            resource_attributes: &s.resource_attributes,
            events: &s.events,
            links: &s.links,
            correlation_id: s.correlation_id.as_deref(),
        }
    }
}

/// Reads trace `id` (its spans, logs and the spans linking to it) and analyses its tree.
async fn load(state: &ApiState, id: &str) -> Result<Analysed, ApiError> {
    let ctx = crate::reads::session(state)?;
    let (spans, truncated) = read(&ctx, &eq("trace_id", id), MAX_SPANS).await?;
    let logs = ctx
        .query(
            sql!(
                "SELECT CAST(time AS BIGINT) AS time_ns, service_name, span_id, severity_text, \
             severity_number, body, attributes FROM logs WHERE {} ORDER BY time",
                eq("trace_id", id)
            )
            .as_str(),
            MAX_LOGS,
        )
        .await?;
    let logs: Vec<Map<String, Value>> = objects(&logs.batches)
        .into_iter()
        .map(|mut log| {
            let at = log.get("time_ns").and_then(Value::as_i64).unwrap_or(0);
            log.insert("time".into(), json!(rfc3339(at)));
            log
        })
        .collect();
    if spans.is_empty() && logs.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no spans or logs with trace id {id}"),
        ));
    }
    let nodes: Vec<Node> = spans
        .iter()
        .map(|s| Node {
            span_id: &s.span_id,
            parent_span_id: &s.parent_span_id,
            start: s.start_ns,
            end: s.end_ns,
        })
        .collect();
    let shape = analyse(&nodes);
    let linked_from = match bounds(&spans) {
        Some((start, end)) => linked_from(&ctx, id, start, end).await?,
        None => Vec::new(),
    };
    Ok(Analysed {
        spans,
        truncated,
        shape,
        logs,
        linked_from,
    })
}

/// When the spans start and end; `None` without spans.
fn bounds(spans: &[Span]) -> Option<(i64, i64)> {
    let start = spans.iter().map(|s| s.start_ns).min()?;
    let end = spans.iter().map(|s| s.end_ns).max()?;
    Some((start, end))
}

/// The shown spans' events and the trace's logs, by time.
fn timeline<'a>(
    spans: &'a [Span],
    shown: &[(usize, usize)],
    logs: &'a [Map<String, Value>],
) -> Vec<TimelineItem<'a>> {
    let mut items: Vec<(i64, TimelineItem)> = Vec::new();
    for (i, _) in shown {
        let s = &spans[*i];
        for e in &s.events {
            let at = e["time_unix_nano"].as_i64().unwrap_or(s.start_ns);
            items.push((
                at,
                TimelineItem::Event(EventItem {
                    time: rfc3339(at),
                    time_ns: at,
                    span_id: &s.span_id,
                    service: &s.service_name,
                    name: &e["name"],
                    attributes: &e["attributes"],
                }),
            ));
        }
    }
    for log in logs {
        let at = log.get("time_ns").and_then(Value::as_i64).unwrap_or(0);
        items.push((at, TimelineItem::Log(log)));
    }
    items.sort_by_key(|(at, _)| *at);
    items.into_iter().map(|(_, v)| v).collect()
}

/// Spans of other traces whose links point into trace `id` (consumers of its messages).
async fn linked_from(
    ctx: &Session,
    id: &str,
    start: i64,
    end: i64,
) -> Result<Vec<Value>, ApiError> {
    let window = Window {
        start,
        end: end.saturating_add(LINK_HORIZON_NS),
    };
    let sql = sql!(
        "SELECT trace_id, span_id, service_name, span_name, CAST(time AS BIGINT) AS start_ns \
         FROM spans WHERE {} AND trace_id <> {} AND links LIKE {} \
         ORDER BY time LIMIT {}",
        window.sql(),
        lit(id),
        lit(&format!("%{id}%")),
        MAX_LINKED_FROM
    );
    let result = ctx.query(sql.as_str(), MAX_LINKED_FROM).await?;
    Ok(objects(&result.batches)
        .into_iter()
        .map(|mut o| {
            let at = o.remove("start_ns").and_then(|v| v.as_i64()).unwrap_or(0);
            o.insert("start".into(), json!(rfc3339(at)));
            Value::Object(o)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_interleaves_shown_spans_events_and_logs_by_time_each_typed() {
        let span = |id: &str, event_at: i64| Span {
            span_id: id.into(),
            service_name: "payment".into(),
            start_ns: 100,
            events: vec![json!({"time_unix_nano": event_at, "name": "retry", "attributes": {}})],
            ..Span::default()
        };
        let spans = [span("a", 300), span("b", 150)];
        let log: Map<String, Value> =
            serde_json::from_value(json!({"time_ns": 200, "body": "declined"})).unwrap();
        // Only span a is on the page.
        let items = timeline(&spans, &[(0, 0)], std::slice::from_ref(&log));
        let got = serde_json::to_value(&items).unwrap();
        assert_eq!(
            got,
            json!([
                {"type": "log", "time_ns": 200, "body": "declined"},
                {"type": "event", "time": rfc3339(300), "time_ns": 300, "span_id": "a",
                 "service": "payment", "name": "retry", "attributes": {}},
            ])
        );
    }
}
