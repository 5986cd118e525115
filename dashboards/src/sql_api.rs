//! `POST /api/v1/sql`: JSON rows or an Arrow IPC stream.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::json;
use crate::state::ApiState;

/// Media type of an Arrow IPC stream response.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One read-only statement.
    pub sql: String,
    /// Most rows wanted (capped by the server's `max_rows`).
    pub limit: Option<usize>,
}

/// Runs the query; answers JSON unless the client accepts an Arrow stream.
pub async fn handle(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(req): Json<SqlRequest>,
) -> Result<Response, ApiError> {
    let ctx = crate::reads::session(&state)?;
    let max_rows = req
        .limit
        .unwrap_or(state.config.max_rows)
        .min(state.config.max_rows);
    let result = ctx.query(&req.sql, max_rows).await?;
    let wants_arrow = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(ARROW_STREAM));
    if wants_arrow {
        let mut buf = Vec::new();
        {
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &result.schema)
                .map_err(ApiError::internal)?;
            for b in &result.batches {
                writer.write(b).map_err(ApiError::internal)?;
            }
            writer.finish().map_err(ApiError::internal)?;
        }
        return Ok(([(header::CONTENT_TYPE, ARROW_STREAM)], buf).into_response());
    }
    let columns: Vec<_> = result
        .schema
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() }))
        .collect();
    Ok(Json(json!({
        "columns": columns,
        "rows": json::rows(&result.batches),
        "truncated": result.truncated,
    }))
    .into_response())
}
