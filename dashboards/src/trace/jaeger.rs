//! Jaeger's query HTTP API over Vigil's spans, so Jaeger's UI, Grafana's Jaeger data source
//! and other Jaeger clients read Vigil: `/api/services`, `/api/services/{service}/operations`,
//! `/api/operations?service=`, `/api/traces/{id}` and `/api/traces?service=…` (times in µs,
//! durations in Go's notation, `tags` as a JSON object), each answered in Jaeger's
//! `{data, total, limit, offset, errors}` envelope.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Map, Value, json};
use vigil_store::query::{self, SpanKind, Sql, Window, eq, list, nanos};
use vigil_store::sql;

use super::search::{TraceQuery, duration_ns, matching};
use super::span::{Span, read, trace_id};
use crate::error::ApiError;
use crate::json::objects;
use crate::state::ApiState;

/// How far back service and operation lists look.
const CATALOG_WINDOW_NS: i64 = 7 * 86_400 * 1_000_000_000;
/// Most spans of one trace returned.
const MAX_TRACE_SPANS: usize = 200_000;
/// Most traces one search returns in full.
const MAX_SEARCH_TRACES: usize = 100;

fn envelope(data: Value) -> Json<Value> {
    let total = data.as_array().map_or(0, Vec::len);
    Json(json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null}))
}

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// The last week, where service and operation names are looked up (in `span_rollup`: a row
/// per minute, service, operation and kind rather than a row per span).
fn catalog_window() -> Window {
    let end = nanos(Utc::now());
    Window {
        start: end - CATALOG_WINDOW_NS,
        end: end + 1,
    }
}

async fn strings(state: &ApiState, sql: &Sql) -> Result<Vec<Value>, ApiError> {
    let ctx = crate::reads::session(state)?;
    let result = ctx.query(sql.as_str(), 100_000).await?;
    Ok(objects(&result.batches)
        .into_iter()
        .filter_map(|mut o| o.remove("name"))
        .collect())
}

/// `GET /api/services`.
pub async fn services(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let sql = sql!(
        "SELECT DISTINCT service_name AS name FROM span_rollup WHERE {} ORDER BY name",
        catalog_window().sql()
    );
    Ok(envelope(Value::Array(strings(&state, &sql).await?)))
}

fn operations_sql(service: &str) -> Sql {
    sql!(
        "SELECT DISTINCT span_name AS name, span_kind AS kind FROM span_rollup WHERE {} \
         AND {} ORDER BY name, kind",
        catalog_window().sql(),
        eq("service_name", service)
    )
}

/// `GET /api/services/{service}/operations`: names only.
pub async fn service_operations(
    State(state): State<ApiState>,
    Path(service): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut names = strings(&state, &operations_sql(&service)).await?;
    names.dedup();
    Ok(envelope(Value::Array(names)))
}

/// `GET /api/operations?service=&spanKind=`: names with their span kind.
pub async fn operations(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let service = params
        .get("service")
        .ok_or_else(|| bad("service is required".into()))?;
    let want_kind = params.get("spanKind").map(|k| k.to_ascii_lowercase());
    let ctx = crate::reads::session(&state)?;
    let result = ctx.query(operations_sql(service).as_str(), 100_000).await?;
    let ops: Vec<Value> = objects(&result.batches)
        .into_iter()
        .filter_map(|o| {
            let name = o.get("name")?.as_str()?.to_string();
            let kind = jaeger_kind(o.get("kind")?.as_str()?);
            want_kind
                .as_ref()
                .is_none_or(|w| w == kind)
                .then(|| json!({"name": name, "spanKind": kind}))
        })
        .collect();
    Ok(envelope(Value::Array(ops)))
}

/// `GET /api/traces/{id}`.
pub async fn trace(
    State(state): State<ApiState>,
    Path(raw_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = trace_id(&raw_id)
        .ok_or_else(|| bad(format!("trace id must be 32 hex digits, got {raw_id:?}")))?;
    let ctx = crate::reads::session(&state)?;
    let (spans, _) = read(&ctx, &eq("trace_id", &id), MAX_TRACE_SPANS).await?;
    if spans.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("trace not found: {id}"),
        ));
    }
    Ok(envelope(json!([jaeger_trace(&id, &spans)])))
}

/// `GET /api/traces?service=&operation=&tags=&start=&end=&minDuration=&maxDuration=&limit=`.
pub async fn search(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let q = search_query(&params)?;
    let ctx = crate::reads::session(&state)?;
    let found = matching(&ctx, &q).await?;
    let ids = found.ids;
    if ids.is_empty() {
        return Ok(envelope(json!([])));
    }
    let (spans, _) = read(
        &ctx,
        &sql!("{} AND trace_id IN ({})", found.around.sql(), list(&ids)),
        MAX_TRACE_SPANS,
    )
    .await?;
    let mut by_trace: HashMap<String, Vec<Span>> = HashMap::new();
    for s in spans {
        by_trace.entry(s.trace_id.clone()).or_default().push(s);
    }
    let traces: Vec<Value> = ids
        .iter()
        .filter_map(|id| Some(jaeger_trace(id, by_trace.get(id)?)))
        .collect();
    Ok(envelope(Value::Array(traces)))
}

/// Jaeger's search parameters as a [`TraceQuery`].
fn search_query(params: &HashMap<String, String>) -> Result<TraceQuery, ApiError> {
    let mut ours: HashMap<String, String> = HashMap::new();
    let (mut min, mut max) = (None, None);
    let micros = |name: &str, v: &str| -> Result<String, ApiError> {
        let us: i64 = v.parse().map_err(|_| {
            bad(format!(
                "{name} must be microseconds since the epoch, got {v:?}"
            ))
        })?;
        Ok(chrono::DateTime::from_timestamp_micros(us)
            .ok_or_else(|| bad(format!("{name} out of range")))?
            .to_rfc3339())
    };
    for (key, value) in params {
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "service" | "operation" => {
                ours.insert(key.clone(), value.clone());
            }
            "start" | "end" => {
                ours.insert(key.clone(), micros(key, value)?);
            }
            "minDuration" => min = Some(duration_ns(key, value)?),
            "maxDuration" => max = Some(duration_ns(key, value)?),
            "limit" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| bad(format!("limit must be a number, got {value:?}")))?;
                ours.insert("limit".into(), n.min(MAX_SEARCH_TRACES).to_string());
            }
            "tags" => {
                let tags: BTreeMap<String, Value> = serde_json::from_str(value)
                    .map_err(|e| bad(format!("tags must be a JSON object: {e}")))?;
                for (k, v) in tags {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    if k == "error" && v == "true" {
                        ours.insert("status".into(), "error".into());
                    } else {
                        ours.insert(format!("attr.{k}"), v);
                    }
                }
            }
            // Jaeger UI sends these; they change nothing here.
            "lookback" | "spanKind" => {}
            other => return Err(bad(format!("unknown parameter {other:?}"))),
        }
    }
    let mut q = TraceQuery::from_params(&ours)?;
    q.min_duration = min;
    q.max_duration = max;
    Ok(q)
}

fn jaeger_kind(kind: &str) -> &'static str {
    match SpanKind::parse(kind) {
        Some(SpanKind::Server) => "server",
        Some(SpanKind::Client) => "client",
        Some(SpanKind::Producer) => "producer",
        Some(SpanKind::Consumer) => "consumer",
        Some(SpanKind::Internal) => "internal",
        Some(SpanKind::Unspecified) | None => "unspecified",
    }
}

fn tag(key: &str, value: &Value) -> Value {
    match value {
        Value::Bool(b) => json!({"key": key, "type": "bool", "value": b}),
        Value::Number(n) if n.is_i64() => json!({"key": key, "type": "int64", "value": n}),
        Value::Number(n) => json!({"key": key, "type": "float64", "value": n}),
        Value::String(s) => json!({"key": key, "type": "string", "value": s}),
        other => json!({"key": key, "type": "string", "value": other.to_string()}),
    }
}

fn tags(attributes: &Map<String, Value>) -> Vec<Value> {
    attributes.iter().map(|(k, v)| tag(k, v)).collect()
}

/// One trace in Jaeger's JSON model: spans with references, tags and logs, and one process
/// per distinct service and resource.
pub fn jaeger_trace(id: &str, spans: &[Span]) -> Value {
    // One process per distinct service and resource, numbered in order of appearance.
    let mut processes: Vec<(&str, &Map<String, Value>)> = Vec::new();
    let mut process_ids: Vec<String> = Vec::with_capacity(spans.len());
    for s in spans {
        let at = processes
            .iter()
            .position(|(name, attrs)| *name == s.service_name && **attrs == s.resource_attributes)
            .unwrap_or_else(|| {
                processes.push((&s.service_name, &s.resource_attributes));
                processes.len() - 1
            });
        process_ids.push(format!("p{}", at + 1));
    }
    let mut out_spans = Vec::with_capacity(spans.len());
    for (s, process_id) in spans.iter().zip(process_ids) {
        let mut references = Vec::new();
        if !s.parent_span_id.is_empty() {
            references.push(json!({"refType": "CHILD_OF", "traceID": s.trace_id,
                                   "spanID": s.parent_span_id}));
        }
        for l in &s.links {
            references.push(json!({"refType": "FOLLOWS_FROM", "traceID": l["trace_id"],
                                   "spanID": l["span_id"]}));
        }
        let mut span_tags = tags(&s.attributes);
        span_tags.push(tag("span.kind", &json!(jaeger_kind(&s.span_kind))));
        if s.status_code != query::StatusCode::Unset.as_str() {
            span_tags.push(tag("otel.status_code", &json!(s.status_code)));
        }
        if s.status_code == query::StatusCode::Error.as_str() {
            span_tags.push(tag("error", &json!(true)));
            if !s.status_message.is_empty() {
                span_tags.push(tag("otel.status_description", &json!(s.status_message)));
            }
        }
        let logs: Vec<Value> = s
            .events
            .iter()
            .map(|e| {
                let mut fields = vec![tag("event", &e["name"])];
                if let Some(attrs) = e["attributes"].as_object() {
                    fields.extend(tags(attrs));
                }
                json!({"timestamp": e["time_unix_nano"].as_i64().unwrap_or(s.start_ns) / 1_000,
                       "fields": fields})
            })
            .collect();
        out_spans.push(json!({
            "traceID": s.trace_id,
            "spanID": s.span_id,
            "flags": 1,
            "operationName": s.span_name,
            "references": references,
            "startTime": s.start_ns / 1_000,
            "duration": s.duration_ns() / 1_000,
            "tags": span_tags,
            "logs": logs,
            "processID": process_id,
            "warnings": null,
        }));
    }
    let processes: Map<String, Value> = processes
        .iter()
        .enumerate()
        .map(|(i, (service, attrs))| {
            (
                format!("p{}", i + 1),
                json!({"serviceName": service, "tags": tags(attrs)}),
            )
        })
        .collect();
    json!({"traceID": id, "spans": out_spans, "processes": processes, "warnings": null})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaeger_search_parameters_map_onto_the_shared_filter() {
        let params: HashMap<String, String> = [
            ("service", "payment"),
            ("start", "1764302400000000"),
            ("end", "1764306000000000"),
            ("minDuration", "1.2s"),
            ("tags", r#"{"error":"true","http.route":"/pay"}"#),
            ("limit", "5000"),
            ("lookback", "1h"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let q = search_query(&params).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(q.service.as_deref(), Some("payment"));
        assert_eq!(q.status.as_deref(), Some("ERROR"));
        assert_eq!(q.min_duration, Some(1_200_000_000));
        assert_eq!(
            q.attributes,
            [("http.route".to_string(), "/pay".to_string())]
        );
        assert_eq!(q.limit, MAX_SEARCH_TRACES);
        assert_eq!(q.window.start, 1_764_302_400_000_000_000);
    }
}
