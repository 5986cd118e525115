//! The query API's reads: a governed store session per request, and the middleware that
//! passes requests through the [`crate::gate::Gate`], queueing them for up to `[api] queue_wait` before
//! answering 429 with `Retry-After`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vigil_store::{ReadLimits, Reader, Refusal, Session};

use crate::error::ApiError;
use crate::state::ApiState;

/// A session for one request of the query API: users' memory pool, the API's query timeout.
pub fn session(state: &ApiState) -> Result<Session, ApiError> {
    Ok(state.store.session(
        Reader::Users,
        ReadLimits::within(state.config.query_timeout.0),
    )?)
}

/// Middleware over the routes that read the store: waits for a free slot, or answers 429.
pub async fn admit(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let wait = state.config.queue_wait.0;
    match state.gate.enter(wait).await {
        Some(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        None => {
            state.store.count_refusal(Reader::Users, Refusal::Busy);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{} queries are running and none finished within {:?}; retry later",
                    state.gate.limit(),
                    wait
                ),
            )
            .into_response();
            let retry = wait.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&retry.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}
