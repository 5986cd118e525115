//! `GET /api/v1/correlations/{correlation_id}?start=&end=`: one business transaction that
//! crossed the broker, stitched together: the traces carrying the correlation id, every trace
//! a consumer started from one of their messages (followed through span links, also when the
//! new trace lost the correlation id), all their spans and logs on one timeline, and each
//! producer → consumer hop with the time the message waited in between.

use std::collections::{BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_store::Session;
use vigil_store::query::{self, SpanKind, Sql, Window, eq, list, lit};
use vigil_store::sql;

use crate::error::ApiError;
use crate::json::objects;
use crate::state::ApiState;
use crate::trace::span::{Span, read, rfc3339};
use crate::window::window;

/// Most spans of one transaction.
const MAX_SPANS: usize = 100_000;
/// Most logs of one transaction.
const MAX_LOGS: usize = 10_000;
/// Rounds of following links into new traces (one per hop).
const MAX_HOPS: usize = 16;

/// The time filter of the view.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// RFC 3339; default one day before `end`.
    pub start: Option<DateTime<Utc>>,
    /// RFC 3339; default now.
    pub end: Option<DateTime<Utc>>,
}

/// A message's trip from a producer span to the consumer span that handled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// Producing service.
    pub producer_service: String,
    /// The producer span.
    pub producer_span_id: String,
    /// Its trace.
    pub producer_trace_id: String,
    /// Consuming service.
    pub consumer_service: String,
    /// The consumer span.
    pub consumer_span_id: String,
    /// Its trace.
    pub consumer_trace_id: String,
    /// `messaging.destination.name` of the consumer (or producer) span.
    pub destination: String,
    /// From the producer span's end to the consumer span's start: time spent queued.
    pub queued_ns: i64,
    /// Whether the consumer started a trace of its own.
    pub new_trace: bool,
}

/// The stitched transaction.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// Its spans, by start time.
    pub spans: Vec<Span>,
    /// Its traces, in order of their first span.
    pub trace_ids: Vec<String>,
    /// Producer → consumer hops, in order of the consumer's start.
    pub hops: Vec<Hop>,
}

/// Trace ids of spans (not in `known`) whose links point into one of the `known` traces.
async fn linked_traces(
    ctx: &Session,
    w: Window,
    known: &BTreeSet<String>,
) -> Result<BTreeSet<String>, ApiError> {
    let any_link = Sql::join(
        known
            .iter()
            .map(|t| sql!("links LIKE {}", lit(&format!("%{t}%")))),
        " OR ",
    );
    let result = ctx
        .query(
            sql!(
                "SELECT DISTINCT trace_id FROM spans WHERE {} AND links <> '[]' \
             AND trace_id NOT IN ({}) AND ({})",
                w.sql(),
                list(known),
                any_link
            )
            .as_str(),
            MAX_SPANS,
        )
        .await?;
    Ok(objects(&result.batches)
        .iter()
        .filter_map(|o| o.get("trace_id")?.as_str().map(str::to_string))
        .collect())
}

/// Stitches the transaction `id` in `w`.
pub async fn stitch(ctx: &Session, id: &str, w: Window) -> Result<Transaction, ApiError> {
    let seed = ctx
        .query(
            sql!(
                "SELECT DISTINCT trace_id FROM spans WHERE {} AND {}",
                w.sql(),
                eq("correlation_id", id)
            )
            .as_str(),
            MAX_SPANS,
        )
        .await?;
    let mut traces: BTreeSet<String> = objects(&seed.batches)
        .iter()
        .filter_map(|o| o.get("trace_id")?.as_str().map(str::to_string))
        .collect();
    for _ in 0..MAX_HOPS {
        if traces.is_empty() {
            break;
        }
        let more = linked_traces(ctx, w, &traces).await?;
        if more.is_empty() {
            break;
        }
        traces.extend(more);
    }
    if traces.is_empty() {
        return Ok(Transaction {
            spans: Vec::new(),
            trace_ids: Vec::new(),
            hops: Vec::new(),
        });
    }
    let (mut spans, _) = read(
        ctx,
        &sql!("{} AND trace_id IN ({})", w.sql(), list(&traces)),
        MAX_SPANS,
    )
    .await?;
    spans.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
    let mut trace_ids: Vec<String> = Vec::new();
    for s in &spans {
        if !trace_ids.contains(&s.trace_id) {
            trace_ids.push(s.trace_id.clone());
        }
    }
    let hops = hops(&spans);
    Ok(Transaction {
        spans,
        trace_ids,
        hops,
    })
}

/// Every consumer span whose parent or linked span is a producer span of the transaction.
fn hops(spans: &[Span]) -> Vec<Hop> {
    let by_id: HashMap<(&str, &str), &Span> = spans
        .iter()
        .map(|s| ((s.trace_id.as_str(), s.span_id.as_str()), s))
        .collect();
    let destination = |s: &Span| {
        s.attributes
            .get("messaging.destination.name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut out = Vec::new();
    for c in spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Consumer.as_str())
    {
        let mut sources: Vec<(&str, &str)> = vec![(c.trace_id.as_str(), c.parent_span_id.as_str())];
        sources.extend(
            c.links
                .iter()
                .filter_map(|l| Some((l.get("trace_id")?.as_str()?, l.get("span_id")?.as_str()?))),
        );
        let Some(p) = sources
            .into_iter()
            .filter_map(|k| by_id.get(&k))
            .find(|p| p.span_kind == SpanKind::Producer.as_str())
        else {
            continue;
        };
        let mut to = destination(c);
        if to.is_empty() {
            to = destination(p);
        }
        out.push(Hop {
            producer_service: p.service_name.clone(),
            producer_span_id: p.span_id.clone(),
            producer_trace_id: p.trace_id.clone(),
            consumer_service: c.service_name.clone(),
            consumer_span_id: c.span_id.clone(),
            consumer_trace_id: c.trace_id.clone(),
            destination: to,
            queued_ns: c.start_ns - p.end_ns,
            new_trace: c.trace_id != p.trace_id,
        });
    }
    out
}

/// The handler.
pub async fn handle(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(range): Query<Range>,
) -> Result<Json<Value>, ApiError> {
    let w = window(range.start, range.end, Duration::days(1))?;
    let ctx = crate::reads::session(&state)?;
    let t = stitch(&ctx, &id, w).await?;
    if t.spans.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no spans with correlation id {id:?} between {} and {}",
                rfc3339(w.start),
                rfc3339(w.end)
            ),
        ));
    }
    let logs = ctx
        .query(
            sql!(
                "SELECT CAST(time AS BIGINT) AS time_ns, service_name, trace_id, span_id, \
             severity_text, body FROM logs WHERE {} AND ({} OR trace_id IN ({})) \
             ORDER BY time",
                w.sql(),
                eq("correlation_id", &id),
                list(&t.trace_ids)
            )
            .as_str(),
            MAX_LOGS,
        )
        .await?;
    let mut timeline: Vec<(i64, Value)> = t
        .spans
        .iter()
        .map(|s| {
            (
                s.start_ns,
                json!({"type": "span", "time": rfc3339(s.start_ns), "trace_id": s.trace_id,
                       "span_id": s.span_id, "parent_span_id": s.parent_span_id,
                       "service": s.service_name, "operation": s.span_name, "kind": s.span_kind,
                       "status": s.status_code, "duration_ns": s.duration_ns()}),
            )
        })
        .collect();
    for mut log in objects(&logs.batches) {
        let at = log.remove("time_ns").and_then(|v| v.as_i64()).unwrap_or(0);
        log.insert("type".into(), json!("log"));
        log.insert("time".into(), json!(rfc3339(at)));
        timeline.push((at, Value::Object(log)));
    }
    for h in &t.hops {
        let consumer_start = t
            .spans
            .iter()
            .find(|s| s.span_id == h.consumer_span_id && s.trace_id == h.consumer_trace_id)
            .map_or(0, |s| s.start_ns);
        let mut hop = json!(h);
        hop["type"] = json!("queued");
        hop["time"] = json!(rfc3339(consumer_start - h.queued_ns));
        timeline.push((consumer_start - h.queued_ns, hop));
    }
    timeline.sort_by_key(|(at, _)| *at);
    let start = t.spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = t.spans.iter().map(|s| s.end_ns).max().unwrap_or(start);
    let services: BTreeSet<&str> = t.spans.iter().map(|s| s.service_name.as_str()).collect();
    Ok(Json(json!({
        "correlation_id": id,
        "start": rfc3339(start),
        "duration_ns": end - start,
        "trace_ids": t.trace_ids,
        "services": services,
        "span_count": t.spans.len(),
        "error_count": t.spans.iter().filter(|s| s.status_code == query::StatusCode::Error.as_str()).count(),
        "hops": t.hops,
        "queued_ns": t.hops.iter().map(|h| h.queued_ns.max(0)).sum::<i64>(),
        "timeline": timeline.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })))
}
