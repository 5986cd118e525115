//! `GET /api/v1/traces/{trace_id}`: a trace's spans in tree order and the logs that carry its id.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::json::objects;
use crate::sql;
use crate::state::ApiState;

/// Most spans and logs returned for one trace.
const MAX_ITEMS: usize = 100_000;

fn valid_trace_id(id: &str) -> Option<String> {
    let id = id.to_ascii_lowercase();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

fn str_field<'a>(o: &'a Map<String, Value>, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Orders spans depth-first from the roots, children by start time, adding `depth` to each.
/// Spans whose parent is missing from the trace are treated as roots.
pub fn tree_order(spans: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    let index: HashMap<String, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (str_field(s, "span_id").to_string(), i))
        .collect();
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        let parent = index
            .get(str_field(s, "parent_span_id"))
            .copied()
            .filter(|p| *p != i);
        children.entry(parent).or_default().push(i);
    }
    let time = |i: &usize| {
        spans[*i]
            .get("time")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for list in children.values_mut() {
        list.sort_by_key(time);
    }
    let mut order = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = children
        .get(&None)
        .map(|r| r.iter().rev().map(|i| (*i, 0)).collect())
        .unwrap_or_default();
    let mut seen = vec![false; spans.len()];
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        order.push((i, depth));
        if let Some(kids) = children.get(&Some(i)) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    // Spans caught in a parent cycle are still returned, after the tree.
    order.extend((0..spans.len()).filter(|i| !seen[*i]).map(|i| (i, 0)));
    let mut slots: Vec<Option<Map<String, Value>>> = spans.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|(i, depth)| {
            let mut s = slots[i].take()?;
            s.insert("depth".into(), json!(depth));
            Some(s)
        })
        .collect()
}

/// The handler.
pub async fn handle(
    State(state): State<ApiState>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = valid_trace_id(&trace_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("trace id must be 32 hex digits, got {trace_id:?}"),
        )
    })?;
    let ctx = state.store.session()?;
    let timeout = state.config.query_timeout.0;
    let spans = sql::run(
        &ctx,
        &format!("SELECT * FROM spans WHERE trace_id = '{id}' ORDER BY time"),
        MAX_ITEMS,
        timeout,
    )
    .await?;
    let logs = sql::run(
        &ctx,
        &format!("SELECT * FROM logs WHERE trace_id = '{id}' ORDER BY time"),
        MAX_ITEMS,
        timeout,
    )
    .await?;
    let spans = tree_order(objects(&spans.batches));
    let logs = objects(&logs.batches);
    if spans.is_empty() && logs.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no spans or logs with trace id {id}"),
        ));
    }
    Ok(Json(
        json!({ "trace_id": id, "span_count": spans.len(), "spans": spans, "logs": logs }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, time: &str) -> Map<String, Value> {
        json!({"span_id": id, "parent_span_id": parent, "time": time})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn spans_come_depth_first_with_children_by_time() {
        let spans = vec![
            span("c2", "root", "3"),
            span("root", "", "1"),
            span("g1", "c1", "4"),
            span("c1", "root", "2"),
            span("orphan", "missing", "0"),
        ];
        let ordered: Vec<(String, u64)> = tree_order(spans)
            .iter()
            .map(|s| {
                (
                    str_field(s, "span_id").to_string(),
                    s["depth"].as_u64().unwrap_or(99),
                )
            })
            .collect();
        let expect = [("orphan", 0), ("root", 0), ("c1", 1), ("g1", 2), ("c2", 1)];
        assert_eq!(
            ordered,
            expect
                .iter()
                .map(|(a, b)| (a.to_string(), *b))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn trace_ids_are_validated() {
        assert_eq!(
            valid_trace_id("0AF7651916CD43DD8448EB211C80319C").as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert!(valid_trace_id("abc").is_none());
        assert!(valid_trace_id("zzf7651916cd43dd8448eb211c80319c").is_none());
    }
}
