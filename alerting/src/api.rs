//! The notification HTTP API: alerts posted by other rule engines (Alertmanager's v2 shape),
//! silences, and what delivery is doing. Served beside the query API; the `/api/v2` paths
//! are Alertmanager's, so `amtool` and Prometheus can talk to Vigil directly.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use crate::postable::PostableAlert;
use crate::service::Notifier;
use crate::silence::{ApiMatcher, NewSilence, Silence, SilenceError};
use crate::sync::lock;

/// Every route of the notification API.
pub fn router(notifier: Notifier) -> Router {
    Router::new()
        .route("/api/v1/alerts", post(post_alerts))
        .route("/api/v2/alerts", post(post_alerts))
        .route("/api/v1/silences", get(list_silences).post(create_silence))
        .route("/api/v2/silences", get(list_silences).post(create_silence))
        .route("/api/v1/silences/{id}", delete(expire_silence))
        .route("/api/v2/silence/{id}", delete(expire_silence))
        .route("/api/v1/notifications", get(notifications))
        .with_state(notifier)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"status": "error", "error": message}))).into_response()
}

/// `POST /api/v1/alerts`: a JSON array of alerts in Alertmanager's v2 shape. All or none:
/// one invalid alert refuses the request with its index and the reason.
async fn post_alerts(
    State(n): State<Notifier>,
    body: Result<Json<Vec<PostableAlert>>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(posted) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let now = Utc::now();
    let mut alerts = Vec::with_capacity(posted.len());
    for (i, p) in posted.into_iter().enumerate() {
        match p.into_alert(i, now) {
            Ok(a) => alerts.push(a),
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    n.post(alerts);
    Json(json!({"status": "success"})).into_response()
}

/// A silence as the API shows it: Alertmanager's v2 `gettableSilence`.
fn shown(s: &Silence) -> serde_json::Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(Utc::now())},
        "updatedAt": s.updated_at,
        "matchers": s.spec.matchers,
        "startsAt": s.spec.starts_at,
        "endsAt": s.spec.ends_at,
        "createdBy": s.spec.created_by,
        "comment": s.spec.comment,
    })
}

async fn list_silences(State(n): State<Notifier>) -> Response {
    let all = lock(n.silences()).list();
    Json(all.iter().map(shown).collect::<Vec<_>>()).into_response()
}

fn silence_error(e: SilenceError) -> Response {
    match e {
        SilenceError::Invalid(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        SilenceError::NotFound(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        SilenceError::Store(_) | SilenceError::Encode(_) | SilenceError::Unreadable { .. } => {
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// `POST /api/v1/silences`: `{matchers: [{name, value, isRegex, isEqual}], startsAt,
/// endsAt, createdBy, comment}` → `{silenceID}`.
async fn create_silence(
    State(n): State<Notifier>,
    body: Result<Json<NewSilence>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(spec) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let created = lock(n.silences()).create(spec, Utc::now());
    match created {
        Ok(id) => Json(json!({"silenceID": id})).into_response(),
        Err(e) => silence_error(e),
    }
}

async fn expire_silence(State(n): State<Notifier>, Path(id): Path<String>) -> Response {
    let expired = lock(n.silences()).expire(&id, Utc::now());
    match expired {
        Ok(()) => Json(json!({"status": "success"})).into_response(),
        Err(e) => silence_error(e),
    }
}

/// `GET /api/v1/notifications`: pending deliveries with their attempts and last error,
/// permanent failures, and counts per integration.
async fn notifications(State(n): State<Notifier>) -> Response {
    let delivery = n.delivery();
    match n.failures() {
        Ok(failed) => {
            let failed: Vec<serde_json::Value> = failed
                .iter()
                .map(|f| {
                    json!({
                        "seq": f.pending.seq,
                        "integration": f.pending.integration.to_string(),
                        "groupKey": f.pending.notification.group_key,
                        "queuedAt": f.pending.queued_at,
                        "failedAt": f.failed_at,
                        "attempts": f.attempts,
                        "error": f.error,
                    })
                })
                .collect();
            Json(json!({
                "status": "success",
                "data": {
                    "config": n.config_status(),
                    "pending": delivery.pending,
                    "failed": failed,
                    "counters": delivery.counters,
                },
            }))
            .into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Matchers written as strings (`service="payment"`), as the CLI takes them, in the API's
/// shape.
pub fn api_matchers(written: &[String]) -> Result<Vec<ApiMatcher>, SilenceError> {
    written
        .iter()
        .map(|w| {
            w.parse()
                .map(|m| ApiMatcher::from_matcher(&m))
                .map_err(|e: crate::matcher::MatcherError| SilenceError::Invalid(e.to_string()))
        })
        .collect()
}
