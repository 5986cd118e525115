//! The gateway: the HTTP front door (`POST /orders`, `GET /orders/{id}`), traced as SERVER
//! spans that continue any trace context the caller sends, calling the order service through
//! a CLIENT span, and measured with the HTTP server metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use opentelemetry::context::FutureExt as _;
use opentelemetry::logs::Severity;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use serde_json::json;

use crate::bus::Bus;
use crate::saga::order::{self, Orders};
use crate::saga::{Ctx, OrderRequest};
use crate::telemetry::{self, Telemetry};

/// What the gateway talks to.
#[derive(Debug)]
pub struct Gateway<B> {
    /// The gateway's own context (`service.name` = gateway).
    pub ctx: Ctx<B>,
    /// The order service it calls.
    pub order: Ctx<B>,
    /// The order service's orders, for status lookups.
    pub orders: Orders,
}

/// The gateway's routes.
pub fn router<B: Bus>(gateway: Arc<Gateway<B>>) -> Router {
    let telemetry = gateway.ctx.telemetry.clone();
    Router::new()
        .route("/orders", post(place::<B>))
        .route("/orders/{id}", get(status::<B>))
        .with_state(gateway)
        .layer(middleware::from_fn_with_state(telemetry, measure))
}

/// Records `http.server.request.duration` and `http.server.active_requests`.
async fn measure(
    State(telemetry): State<Arc<Telemetry>>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_string();
    let route = route.map_or_else(String::new, |r| r.as_str().to_string());
    let active = [
        KeyValue::new("http.request.method", method.clone()),
        KeyValue::new("http.route", route.clone()),
    ];
    let instruments = &telemetry.instruments;
    instruments.http_active.add(1, &active);
    let started = Instant::now();
    let response = next.run(request).await;
    instruments.http_active.add(-1, &active);
    let mut labels = active.to_vec();
    labels.push(KeyValue::new(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    ));
    instruments
        .http_duration
        .record(started.elapsed().as_secs_f64(), &labels);
    response
}

fn server_span(
    telemetry: &Telemetry,
    headers: &HeaderMap,
    method: &str,
    route: &str,
    path: &str,
) -> Context {
    let carrier: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let parent = telemetry::extract(&carrier);
    let tracer = telemetry.tracer();
    let span = tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes(telemetry.span_attributes(vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("http.route", route.to_string()),
            KeyValue::new("url.path", path.to_string()),
        ]))
        .start_with_context(tracer, &parent);
    parent.with_span(span)
}

fn respond(
    telemetry: &Telemetry,
    cx: &Context,
    status: StatusCode,
    body: serde_json::Value,
) -> Response {
    let span = cx.span();
    telemetry.annotate(
        &span,
        KeyValue::new("http.response.status_code", i64::from(status.as_u16())),
    );
    if status.is_server_error() {
        telemetry.fail(
            &span,
            body["error"].as_str().unwrap_or_default().to_string(),
        );
    }
    span.end();
    (status, Json(body)).into_response()
}

fn invalid(request: &OrderRequest) -> Option<&'static str> {
    if request.items.is_empty() {
        Some("an order needs at least one item")
    } else if request.items.iter().any(|i| i.qty == 0) {
        Some("every item needs a quantity of at least 1")
    } else if request.customer_id.is_empty() {
        Some("customer_id is required")
    } else {
        None
    }
}

async fn place<B: Bus>(
    State(gw): State<Arc<Gateway<B>>>,
    headers: HeaderMap,
    Json(request): Json<OrderRequest>,
) -> Response {
    let telemetry = &gw.ctx.telemetry;
    gw.ctx.arrive("POST /orders").await;
    let cx = server_span(telemetry, &headers, "POST", "/orders", "/orders");
    if let Some(reason) = invalid(&request) {
        return respond(
            telemetry,
            &cx,
            StatusCode::BAD_REQUEST,
            json!({ "error": reason }),
        );
    }
    if let Err(e) = gw.ctx.faults("POST /orders").with_context(cx.clone()).await {
        return respond(
            telemetry,
            &cx,
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": e }),
        );
    }
    let tracer = telemetry.tracer();
    let call = tracer
        .span_builder("order.place")
        .with_kind(SpanKind::Client)
        .with_attributes(telemetry.span_attributes(vec![
            KeyValue::new("rpc.system", "in-process"),
            KeyValue::new("rpc.service", "order"),
            KeyValue::new("rpc.method", "place"),
        ]))
        .start_with_context(tracer, &cx);
    let call_cx = cx.with_span(call);
    let placed = order::place(&gw.order, &gw.orders, request)
        .with_context(call_cx.clone())
        .await;
    let call_span = call_cx.span();
    match placed {
        Ok(order_id) => {
            call_span.end();
            telemetry.annotate(
                &cx.span(),
                KeyValue::new("correlation_id", order_id.clone()),
            );
            telemetry.log(
                &cx,
                Severity::Info,
                format!("accepted order {order_id}"),
                &order_id,
                &[("http.route", "/orders".to_string())],
            );
            respond(
                telemetry,
                &cx,
                StatusCode::ACCEPTED,
                json!({ "order_id": order_id, "status": "pending" }),
            )
        }
        Err(e) => {
            telemetry.fail(&call_span, e.clone());
            call_span.end();
            respond(
                telemetry,
                &cx,
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": e }),
            )
        }
    }
}

async fn status<B: Bus>(
    State(gw): State<Arc<Gateway<B>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let cx = server_span(
        &gw.ctx.telemetry,
        &headers,
        "GET",
        "/orders/{id}",
        &format!("/orders/{id}"),
    );
    let telemetry = &gw.ctx.telemetry;
    telemetry.annotate(&cx.span(), KeyValue::new("correlation_id", id.clone()));
    match gw.orders.status(&id) {
        Some(status) => {
            let mut body = serde_json::to_value(status).unwrap_or_default();
            body["order_id"] = json!(id);
            respond(telemetry, &cx, StatusCode::OK, body)
        }
        None => respond(
            telemetry,
            &cx,
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no order {id}") }),
        ),
    }
}
