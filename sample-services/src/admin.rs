//! The services' admin HTTP API for fault injection: `GET /admin/faults` lists the running
//! faults, `POST /admin/faults` starts one (a [`FaultSpec`] as JSON), `DELETE
//! /admin/faults/{id}` stops one and `DELETE /admin/faults` stops them all.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::json;

use crate::chaos::{Chaos, ChaosError, FaultSpec};

/// The admin routes over `chaos`.
pub fn router(chaos: Arc<Chaos>) -> Router {
    Router::new()
        .route("/admin/faults", get(list).post(start).delete(stop_all))
        .route("/admin/faults/{id}", delete(stop))
        .with_state(chaos)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn refused(e: ChaosError) -> Response {
    let status = match e {
        ChaosError::NotFound(_) => StatusCode::NOT_FOUND,
        ChaosError::UnknownService(_) | ChaosError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

async fn list(State(chaos): State<Arc<Chaos>>) -> Response {
    Json(json!({ "faults": chaos.list() })).into_response()
}

async fn start(
    State(chaos): State<Arc<Chaos>>,
    spec: Result<Json<FaultSpec>, JsonRejection>,
) -> Response {
    let Json(spec) = match spec {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match chaos.start(spec) {
        Ok(fault) => (StatusCode::CREATED, Json(fault)).into_response(),
        Err(e) => refused(e),
    }
}

async fn stop(State(chaos): State<Arc<Chaos>>, Path(id): Path<u64>) -> Response {
    match chaos.stop(id) {
        Ok(fault) => Json(fault).into_response(),
        Err(e) => refused(e),
    }
}

async fn stop_all(State(chaos): State<Arc<Chaos>>) -> Response {
    Json(json!({ "stopped": chaos.stop_all() })).into_response()
}
